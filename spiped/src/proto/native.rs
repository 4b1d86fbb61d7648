//! Native protocol. Owner: protocol helper. See docs/PROTOCOL.md part 1.
use ring::rand::SecureRandom;

use super::{Handshake, HandshakeError, SessionConfig};

/// Starts a native-protocol handshake.
pub fn start(_cfg: &SessionConfig, _rng: &dyn SecureRandom) -> Result<Box<dyn Handshake>, HandshakeError> {
    todo!("native protocol")
}

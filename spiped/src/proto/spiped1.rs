//! spiped 1.x wire compatibility. Owner: compat helper. See docs/PROTOCOL.md part 2.
use ring::rand::SecureRandom;

use super::{Handshake, HandshakeError, SessionConfig};

/// Starts a spiped 1.x handshake.
pub fn start(_cfg: &SessionConfig, _rng: &dyn SecureRandom) -> Result<Box<dyn Handshake>, HandshakeError> {
    todo!("spiped1 protocol")
}

//! Test-only trivial protocol for exercising the I/O layer without real cryptography:
//! handshake = "HI" from the initiator, "OK" from the responder; record = 2-byte big-endian
//! length + bytes; length 0 = close record. Never shipped (`#[cfg(test)]`).

use ring::rand::SecureRandom;

use crate::proto::{Handshake, HandshakeError, Opened, ProtocolKind, RecordError, Role, SessionConfig, Transport};

pub(crate) struct NullHandshake {
    role: Role,
    sent: bool,
    got: bool,
}

pub(crate) fn start(
    _k: ProtocolKind,
    cfg: &SessionConfig,
    _rng: &dyn SecureRandom,
) -> Result<Box<dyn Handshake>, HandshakeError> {
    Ok(Box::new(NullHandshake { role: cfg.role, sent: false, got: false }))
}

impl Handshake for NullHandshake {
    fn write_to(&mut self, out: &mut Vec<u8>) {
        let may_send = self.role == Role::Initiator || self.got;
        if may_send && !self.sent {
            out.extend_from_slice(if self.role == Role::Initiator { b"HI" } else { b"OK" });
            self.sent = true;
        }
    }
    fn read_from(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        if self.got || input.len() < 2 {
            return Ok(0);
        }
        let want: &[u8] = if self.role == Role::Initiator { b"OK" } else { b"HI" };
        if &input[..2] != want {
            return Err(HandshakeError::AuthFailed);
        }
        self.got = true;
        Ok(2)
    }
    fn is_done(&self) -> bool {
        self.sent && self.got
    }
    fn into_transport(self: Box<Self>) -> Result<Box<dyn Transport>, HandshakeError> {
        if !self.is_done() {
            return Err(HandshakeError::NotFinished);
        }
        Ok(Box::new(NullTransport { closed: false }))
    }
}

pub(crate) struct NullTransport {
    closed: bool,
}

const MAX: usize = 16 * 1024;

impl Transport for NullTransport {
    fn max_plaintext(&self) -> usize {
        MAX
    }
    fn sealed_len(&self, len: usize) -> usize {
        len + 2
    }
    fn max_record_len(&self) -> usize {
        MAX + 2
    }
    fn seal(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, RecordError> {
        if plain.is_empty() || plain.len() > MAX {
            return Err(RecordError::TooLarge(plain.len()));
        }
        if out.len() < plain.len() + 2 {
            return Err(RecordError::BufferTooSmall(out.len()));
        }
        out[..2].copy_from_slice(&(plain.len() as u16).to_be_bytes());
        out[2..2 + plain.len()].copy_from_slice(plain);
        Ok(plain.len() + 2)
    }
    fn seal_close(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecordError> {
        out[..2].copy_from_slice(&[0, 0]);
        Ok(Some(2))
    }
    fn open(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, RecordError> {
        if input.len() < 2 {
            return Ok(Opened::Incomplete { need: 2 });
        }
        if self.closed {
            return Err(RecordError::AfterClose);
        }
        let len = u16::from_be_bytes([input[0], input[1]]) as usize;
        if len == 0 {
            self.closed = true;
            return Ok(Opened::Close { consumed: 2 });
        }
        if len > MAX {
            return Err(RecordError::TooLarge(len));
        }
        if input.len() < 2 + len {
            return Ok(Opened::Incomplete { need: 2 + len });
        }
        out[..len].copy_from_slice(&input[2..2 + len]);
        Ok(Opened::Data { consumed: 2 + len, len })
    }
    fn peer_eof(&self, leftover: usize) -> Result<(), RecordError> {
        if self.closed && leftover == 0 {
            Ok(())
        } else {
            Err(RecordError::Truncated)
        }
    }
}

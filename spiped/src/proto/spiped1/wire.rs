//! spiped 1.x wire formats: the fixed-size handshake messages and the 1060-byte data packet.
//!
//! Contract: these are zero-copy views in the style of smoltcp. `new_unchecked` wraps bytes,
//! `check_len` proves that no accessor can panic, `new_checked` does both; everything read from
//! the network goes through `new_checked`. Getters need `T: AsRef<[u8]>`, setters
//! `T: AsMut<[u8]>`. Nothing here does cryptography; the views only name the byte ranges of
//! docs/PROTOCOL.md (part 2) so that no other code uses a magic offset.

/// Length of each side's handshake nonce (message 1 and 1').
pub const NONCE_LEN: usize = 32;
/// Length of a Diffie-Hellman public value in group 14: 2048 bits, big-endian, left-zero-padded.
pub const DH_VALUE_LEN: usize = 256;
/// Length of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// Length of handshake message 2 (client) and 3 (server): y || HMAC(dhmac, y).
pub const DH_MSG_LEN: usize = DH_VALUE_LEN + MAC_LEN;
/// spiped's `PCRYPT_MAXDSZ`: the most plaintext one packet carries.
pub const PCRYPT_MAXDSZ: usize = 1024;
/// Encrypted part of a packet: padded payload plus the big-endian u32 payload length.
pub const PCRYPT_CIPHERTEXT_LEN: usize = PCRYPT_MAXDSZ + 4;
/// spiped's `PCRYPT_ESZ`: every packet on the wire is exactly this long, whatever its payload.
pub const PCRYPT_ESZ: usize = PCRYPT_CIPHERTEXT_LEN + MAC_LEN;

mod field {
    use core::ops::Range;

    /// Message 2/3: the sender's public value y.
    pub const DH_Y: Range<usize> = 0..super::DH_VALUE_LEN;
    /// Message 2/3: HMAC-SHA256(dhmac_sender, y).
    pub const DH_MAC: Range<usize> = super::DH_VALUE_LEN..super::DH_MSG_LEN;

    /// Packet: AES-256-CTR(payload || zero padding || be32 length).
    pub const PKT_CIPHERTEXT: Range<usize> = 0..super::PCRYPT_CIPHERTEXT_LEN;
    /// Packet: HMAC-SHA256(H, ciphertext || be64 packet number).
    pub const PKT_MAC: Range<usize> = super::PCRYPT_CIPHERTEXT_LEN..super::PCRYPT_ESZ;

    /// Decrypted packet body: the big-endian u32 payload length after the padded payload.
    pub const BODY_LEN: Range<usize> = super::PCRYPT_MAXDSZ..super::PCRYPT_CIPHERTEXT_LEN;
}

/// A view was asked to wrap fewer bytes than its fixed wire size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// Bytes the message needs.
    pub need: usize,
    /// Bytes that were given.
    pub got: usize,
}

/// Handshake message 2 (client to server) or 3 (server to client): `y || HMAC(dhmac, y)`.
#[derive(Debug, Clone, Copy)]
pub struct DhMessage<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DhMessage<T> {
    /// Wraps `buffer` without checking its length; accessors may panic if it is short.
    pub const fn new_unchecked(buffer: T) -> Self {
        DhMessage { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        let msg = Self::new_unchecked(buffer);
        msg.check_len()?;
        Ok(msg)
    }

    /// Proves that every accessor stays in bounds (`len >= DH_MSG_LEN`).
    pub fn check_len(&self) -> Result<(), Truncated> {
        let got = self.buffer.as_ref().len();
        if got < DH_MSG_LEN {
            return Err(Truncated {
                need: DH_MSG_LEN,
                got,
            });
        }
        Ok(())
    }

    /// The sender's public value, 256 bytes big-endian.
    pub fn y(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DH_Y]
    }

    /// The sender's MAC over [`Self::y`].
    pub fn mac(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DH_MAC]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DhMessage<T> {
    /// The public value, writable.
    pub fn y_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DH_Y]
    }

    /// The MAC, writable.
    pub fn mac_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DH_MAC]
    }
}

/// One 1060-byte data packet: `AES-CTR(payload || pad || be32 len) || HMAC(H, ct || be64 pnum)`.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length; accessors may panic if it is short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        let pkt = Self::new_unchecked(buffer);
        pkt.check_len()?;
        Ok(pkt)
    }

    /// Proves that every accessor stays in bounds (`len >= PCRYPT_ESZ`).
    pub fn check_len(&self) -> Result<(), Truncated> {
        let got = self.buffer.as_ref().len();
        if got < PCRYPT_ESZ {
            return Err(Truncated {
                need: PCRYPT_ESZ,
                got,
            });
        }
        Ok(())
    }

    /// The 1028 encrypted bytes.
    pub fn ciphertext(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PKT_CIPHERTEXT]
    }

    /// The packet's MAC.
    pub fn mac(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PKT_MAC]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The encrypted bytes, writable (the sealer encrypts in place here).
    pub fn ciphertext_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PKT_CIPHERTEXT]
    }

    /// The MAC, writable.
    pub fn mac_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PKT_MAC]
    }
}

/// Reads the payload length from a decrypted 1028-byte packet body.
///
/// # Panics
/// If `body` is shorter than [`PCRYPT_CIPHERTEXT_LEN`] (callers pass a fixed-size array).
pub fn body_len(body: &[u8]) -> u32 {
    let mut len = [0u8; 4];
    len.copy_from_slice(&body[field::BODY_LEN]);
    u32::from_be_bytes(len)
}

/// Writes the payload length into a 1028-byte packet body.
///
/// # Panics
/// If `body` is shorter than [`PCRYPT_CIPHERTEXT_LEN`] (callers pass a fixed-size slice).
pub fn set_body_len(body: &mut [u8], len: u32) {
    body[field::BODY_LEN].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes are spiped's: 288-byte DH messages and 1060-byte packets (36 bytes of overhead).
    #[test]
    fn spiped1_sizes_match_spiped() {
        assert_eq!(DH_MSG_LEN, 288);
        assert_eq!(PCRYPT_ESZ, 1060);
        assert_eq!(PCRYPT_ESZ - PCRYPT_MAXDSZ, 36);
    }

    /// Short buffers are refused by `new_checked`, so accessors on checked views cannot panic.
    #[test]
    fn spiped1_views_refuse_short_buffers() {
        assert_eq!(
            DhMessage::new_checked(&[0u8; DH_MSG_LEN - 1][..]).unwrap_err(),
            Truncated {
                need: DH_MSG_LEN,
                got: DH_MSG_LEN - 1
            }
        );
        assert_eq!(
            Packet::new_checked(&[0u8; 10][..]).unwrap_err(),
            Truncated {
                need: PCRYPT_ESZ,
                got: 10
            }
        );
        assert!(Packet::new_checked(&[0u8; PCRYPT_ESZ][..]).is_ok());
    }

    /// Setters write exactly the named ranges and getters read them back; a buffer pre-filled
    /// with garbage proves that every byte of the message is covered by some field.
    #[test]
    fn spiped1_views_round_trip_every_byte() {
        let mut buf = [0xa5u8; DH_MSG_LEN];
        let mut msg = DhMessage::new_checked(&mut buf[..]).unwrap();
        msg.y_mut().fill(1);
        msg.mac_mut().fill(2);
        assert!(msg.y().iter().all(|&b| b == 1));
        assert!(msg.mac().iter().all(|&b| b == 2));
        assert!(buf.iter().all(|&b| b == 1 || b == 2));

        let mut buf = [0xa5u8; PCRYPT_ESZ];
        let mut pkt = Packet::new_checked(&mut buf[..]).unwrap();
        pkt.ciphertext_mut().fill(3);
        pkt.mac_mut().fill(4);
        set_body_len(pkt.ciphertext_mut(), 0x0102_0304);
        assert_eq!(body_len(pkt.ciphertext()), 0x0102_0304);
        assert!(buf[..PCRYPT_MAXDSZ].iter().all(|&b| b == 3));
        assert!(buf[PCRYPT_CIPHERTEXT_LEN..].iter().all(|&b| b == 4));
    }
}

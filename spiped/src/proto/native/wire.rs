//! Byte layouts of the native protocol (docs/PROTOCOL.md part 1, "Messages" and "Records").
//!
//! Every message is parsed by exact (type, length) before any cryptography touches it: the
//! parsers below check the magic, version, type, length and flag bits, and hand back borrowed
//! views of the fixed-size fields. They never panic and never allocate. Emitters write every byte
//! of their output (tests prove it by emitting over garbage).

use super::super::{HandshakeError, RecordError, Role};
use super::{MAX_PLAINTEXT, RECORD_HEADER_LEN, VERSION};

/// First four bytes of every native `Hello`. A spiped 1.x peer sends 32 random bytes instead, so
/// a mismatch almost certainly means "the other end runs `--protocol spiped1`".
pub const MAGIC: [u8; 4] = *b"spNP";

/// Length of a `Hello` without a share: magic (4) || version (1) || role (1) || flags (1) ||
/// nonce (32). An initiator's `Hello` is always this long.
pub const HELLO_LEN: usize = 39;

/// Length of a `Hello` that carries an X25519 public key after the nonce (a responder's only).
pub const MAX_HELLO_LEN: usize = HELLO_LEN + SHARE_LEN;

/// Length of a nonce.
pub const NONCE_LEN: usize = 32;

/// Length of an X25519 public key.
pub const SHARE_LEN: usize = 32;

/// Length of a key-confirmation MAC (HMAC-SHA256). It is always the last field of a key share.
pub const MAC_LEN: usize = 32;

/// Handshake frame header: type (1) || body length (2, big-endian).
pub const FRAME_HEADER_LEN: usize = 3;

/// Frame type of the initiator's key share.
pub const MSG_INIT_KEY_SHARE: u8 = 0x10;

/// Frame type of the responder's key share.
pub const MSG_RESP_KEY_SHARE: u8 = 0x11;

/// `flags` bit (of a key share or a responder's `Hello`): an X25519 public key follows. All
/// other bits are reserved and must be zero.
pub const FLAG_X25519: u8 = 0x01;

/// Most suite identifiers an initiator may offer. Eight leaves room for future suites while
/// bounding the message: see [`MAX_KEY_SHARE_BODY`].
pub const MAX_SUITES: usize = 8;

/// Largest key-share body: flags (1) + count (1) + 8 suites + share (32) + MAC (32) = 74 bytes.
/// With the 3-byte frame header, 77 bytes: more than the longest `Hello` (71), so a handshake
/// buffers at most 77 bytes of peer input at a time.
pub const MAX_KEY_SHARE_BODY: usize = 2 + MAX_SUITES + SHARE_LEN + MAC_LEN;

/// Largest handshake message we ever buffer.
pub const MAX_HANDSHAKE_MSG: usize = FRAME_HEADER_LEN + MAX_KEY_SHARE_BODY;
const _: () = assert!(MAX_HELLO_LEN <= MAX_HANDSHAKE_MSG);

/// Record type: application data, 1 ..= 16384 plaintext bytes.
pub const RECORD_DATA: u8 = 0x01;

/// Record type: authenticated end of this direction, 0 plaintext bytes.
pub const RECORD_CLOSE: u8 = 0x02;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const ROLE: usize = 5;
    pub const FLAGS: usize = 6;
    pub const NONCE: Range<usize> = 7..39;
    pub const SHARE: Range<usize> = 39..71;
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Initiator => 0x01,
        Role::Responder => 0x02,
    }
}

/// A parsed `Hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloRepr {
    /// The sender's role.
    pub role: Role,
    /// The sender's fresh nonce.
    pub nonce: [u8; NONCE_LEN],
    /// A responder's X25519 public key, sent early (version 2); never an initiator's.
    pub share: Option<[u8; SHARE_LEN]>,
}

impl HelloRepr {
    /// Checks the fixed part of a `Hello` (its first [`HELLO_LEN`] bytes, or fewer: only what is
    /// there is checked) and returns the whole message's length. Magic first, then version, then
    /// role, then flags: a spiped 1.x peer (32 random bytes, then a 32-byte MAC) fails with
    /// [`HandshakeError::BadMagic`], a native peer of another version with
    /// [`HandshakeError::BadVersion`], however the rest is laid out.
    pub fn len(head: &[u8]) -> Result<usize, HandshakeError> {
        if let Some(magic) = head.get(field::MAGIC) {
            if magic != MAGIC {
                return Err(HandshakeError::BadMagic);
            }
        } else if !MAGIC.starts_with(head) {
            return Err(HandshakeError::BadMagic);
        }
        if let Some(&v) = head.get(field::VERSION) {
            if v != VERSION {
                return Err(HandshakeError::BadVersion(v, VERSION));
            }
        }
        let role = match head.get(field::ROLE) {
            None => return Ok(HELLO_LEN),
            Some(&b) => parse_role(b)?,
        };
        let Some(&flags) = head.get(field::FLAGS) else { return Ok(HELLO_LEN) };
        let has_share = parse_flags(flags, "reserved flag bits set in Hello")?;
        match (has_share, role) {
            (false, _) => Ok(HELLO_LEN),
            (true, Role::Responder) => Ok(MAX_HELLO_LEN),
            (true, Role::Initiator) => Err(HandshakeError::Malformed("initiator Hello carries an X25519 share")),
        }
    }

    /// Parses a whole `Hello` (exactly [`HelloRepr::len`] bytes).
    pub fn parse(bytes: &[u8]) -> Result<HelloRepr, HandshakeError> {
        if bytes.len() < HELLO_LEN || bytes.len() != Self::len(bytes)? {
            return Err(HandshakeError::Malformed("Hello of the wrong length"));
        }
        let role = parse_role(bytes[field::ROLE])?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[field::NONCE]);
        let share = bytes.get(field::SHARE).map(|s| {
            let mut share = [0u8; SHARE_LEN];
            share.copy_from_slice(s);
            share
        });
        Ok(HelloRepr { role, nonce, share })
    }

    /// Appends the whole `Hello` ([`HELLO_LEN`] bytes, or [`MAX_HELLO_LEN`] with a share).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(role_byte(self.role));
        out.push(if self.share.is_some() { FLAG_X25519 } else { 0 });
        out.extend_from_slice(&self.nonce);
        if let Some(share) = &self.share {
            out.extend_from_slice(share);
        }
    }
}

fn parse_role(b: u8) -> Result<Role, HandshakeError> {
    match b {
        0x01 => Ok(Role::Initiator),
        0x02 => Ok(Role::Responder),
        _ => Err(HandshakeError::Malformed("unknown role byte in Hello")),
    }
}

/// Checks a handshake frame header against the type we expect next and returns the whole
/// frame's length (header included). The length is checked against [`MAX_KEY_SHARE_BODY`] here,
/// before we wait for the body.
pub fn frame_len(header: &[u8], expected_type: u8) -> Result<usize, HandshakeError> {
    let (&ty, rest) = header
        .split_first()
        .ok_or(HandshakeError::Malformed("empty frame"))?;
    if ty != expected_type {
        return Err(HandshakeError::UnexpectedMessage(ty));
    }
    let len_bytes: [u8; 2] = rest
        .get(..2)
        .and_then(|s| s.try_into().ok())
        .ok_or(HandshakeError::Malformed("short frame header"))?;
    let len = usize::from(u16::from_be_bytes(len_bytes));
    if len > MAX_KEY_SHARE_BODY {
        return Err(HandshakeError::TooLarge(FRAME_HEADER_LEN + len));
    }
    Ok(FRAME_HEADER_LEN + len)
}

fn parse_flags(flags: u8, reserved: &'static str) -> Result<bool, HandshakeError> {
    if flags & !FLAG_X25519 != 0 {
        return Err(HandshakeError::Malformed(reserved));
    }
    Ok(flags & FLAG_X25519 != 0)
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<&[u8; N], HandshakeError> {
    bytes
        .try_into()
        .map_err(|_| HandshakeError::Malformed("key share field has the wrong length"))
}

/// The parts both key shares begin and end with: checks the whole frame's type and length and
/// the flags, and returns whether a share is present and the body after the flags byte.
fn key_share_body(frame: &[u8], ty: u8) -> Result<(bool, &[u8]), HandshakeError> {
    let len = frame_len(frame, ty)?;
    if frame.len() != len {
        return Err(HandshakeError::Malformed("key share frame length mismatch"));
    }
    let (&flags, rest) = frame[FRAME_HEADER_LEN..]
        .split_first()
        .ok_or(HandshakeError::Malformed("empty key share"))?;
    Ok((parse_flags(flags, "reserved flag bits set in key share")?, rest))
}

/// The tail of a key share, `[X25519 public (32)] || MAC (32)`, which must be all of `rest`.
type ShareAndMac<'a> = (Option<&'a [u8; SHARE_LEN]>, &'a [u8; MAC_LEN]);

fn share_and_mac(rest: &[u8], has_share: bool) -> Result<ShareAndMac<'_>, HandshakeError> {
    let share_len = if has_share { SHARE_LEN } else { 0 };
    if rest.len() != share_len + MAC_LEN {
        return Err(HandshakeError::Malformed(
            "key share length does not match its flags",
        ));
    }
    let (share, mac) = rest.split_at(share_len);
    Ok((if has_share { Some(fixed(share)?) } else { None }, fixed(mac)?))
}

fn write_header(out: &mut Vec<u8>, ty: u8, body_len: usize) {
    out.push(ty);
    // Body lengths are bounded by MAX_KEY_SHARE_BODY (74), far below u16::MAX.
    out.extend_from_slice(&(body_len as u16).to_be_bytes());
}

/// The initiator's key share:
/// `0x10 || len (2) || flags (1) || n (1) || suites (n) || [X25519 public (32)] || MAC_I (32)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitKeyShareRepr<'a> {
    /// Suite identifiers in the initiator's preference order (unknown ones are skipped).
    pub suites: &'a [u8],
    /// The initiator's X25519 public key, absent with `-f`.
    pub share: Option<&'a [u8; SHARE_LEN]>,
    /// MAC_I.
    pub mac: &'a [u8; MAC_LEN],
}

impl<'a> InitKeyShareRepr<'a> {
    /// Parses a whole frame (header included); its length must match the flags and the count
    /// exactly.
    pub fn parse(frame: &'a [u8]) -> Result<Self, HandshakeError> {
        let (has_share, rest) = key_share_body(frame, MSG_INIT_KEY_SHARE)?;
        let (&n, rest) = rest
            .split_first()
            .ok_or(HandshakeError::Malformed("key share has no suite count"))?;
        let n = usize::from(n);
        if n == 0 || n > MAX_SUITES {
            return Err(HandshakeError::Malformed(
                "suite list must hold 1 to 8 entries",
            ));
        }
        if rest.len() < n {
            return Err(HandshakeError::Malformed(
                "key share length does not match its flags",
            ));
        }
        let (suites, rest) = rest.split_at(n);
        let (share, mac) = share_and_mac(rest, has_share)?;
        Ok(InitKeyShareRepr { suites, share, mac })
    }

    /// Appends the whole frame to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let body_len = 2 + self.suites.len() + self.share.map_or(0, |_| SHARE_LEN) + MAC_LEN;
        write_header(out, MSG_INIT_KEY_SHARE, body_len);
        out.push(if self.share.is_some() { FLAG_X25519 } else { 0 });
        out.push(self.suites.len() as u8);
        out.extend_from_slice(self.suites);
        if let Some(share) = self.share {
            out.extend_from_slice(share);
        }
        out.extend_from_slice(self.mac);
    }
}

/// The responder's key share:
/// `0x11 || len (2) || flags (1) || suite (1) || [X25519 public (32)] || MAC_R (32)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespKeyShareRepr<'a> {
    /// The chosen suite identifier.
    pub suite: u8,
    /// The responder's X25519 public key, absent unless both sides do the exchange.
    pub share: Option<&'a [u8; SHARE_LEN]>,
    /// MAC_R.
    pub mac: &'a [u8; MAC_LEN],
}

impl<'a> RespKeyShareRepr<'a> {
    /// Parses a whole frame (header included); its length must match the flags exactly.
    pub fn parse(frame: &'a [u8]) -> Result<Self, HandshakeError> {
        let (has_share, rest) = key_share_body(frame, MSG_RESP_KEY_SHARE)?;
        let (&suite, rest) = rest
            .split_first()
            .ok_or(HandshakeError::Malformed("key share has no suite"))?;
        let (share, mac) = share_and_mac(rest, has_share)?;
        Ok(RespKeyShareRepr { suite, share, mac })
    }

    /// Appends the whole frame to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let body_len = 2 + self.share.map_or(0, |_| SHARE_LEN) + MAC_LEN;
        write_header(out, MSG_RESP_KEY_SHARE, body_len);
        out.push(if self.share.is_some() { FLAG_X25519 } else { 0 });
        out.push(self.suite);
        if let Some(share) = self.share {
            out.extend_from_slice(share);
        }
        out.extend_from_slice(self.mac);
    }
}

/// What a record header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Application data of the given plaintext length (1 ..= 16384).
    Data(usize),
    /// Authenticated end of this direction.
    Close,
}

/// Parses a record header `type (1) || plaintext length (2, big-endian)`, rejecting unknown
/// types, empty data records, close records with a payload and lengths over
/// [`MAX_PLAINTEXT`] before the body is awaited.
pub fn parse_record_header(header: &[u8; RECORD_HEADER_LEN]) -> Result<RecordKind, RecordError> {
    let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
    match header[0] {
        RECORD_DATA if len == 0 => Err(RecordError::Empty),
        RECORD_DATA if len > MAX_PLAINTEXT => Err(RecordError::TooLarge(len)),
        RECORD_DATA => Ok(RecordKind::Data(len)),
        RECORD_CLOSE if len != 0 => Err(RecordError::CloseWithPayload(len)),
        RECORD_CLOSE => Ok(RecordKind::Close),
        other => Err(RecordError::UnknownType(other)),
    }
}

/// Writes a record header.
pub fn emit_record_header(kind: RecordKind, out: &mut [u8; RECORD_HEADER_LEN]) {
    let (ty, len) = match kind {
        RecordKind::Data(len) => (RECORD_DATA, len),
        RecordKind::Close => (RECORD_CLOSE, 0),
    };
    out[0] = ty;
    // Callers pass len <= MAX_PLAINTEXT (16384) < u16::MAX.
    out[1..3].copy_from_slice(&(len as u16).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Hello round-trips with and without a share; its length is told by its fixed part.
    #[test]
    fn hello_round_trip() {
        for share in [None, Some([9u8; 32])] {
            let repr = HelloRepr { role: Role::Responder, nonce: [7; 32], share };
            let mut buf = vec![];
            repr.emit(&mut buf);
            assert_eq!(&buf[..7], &[b's', b'p', b'N', b'P', VERSION, 0x02, u8::from(share.is_some())]);
            assert_eq!(buf.len(), if share.is_some() { MAX_HELLO_LEN } else { HELLO_LEN });
            assert_eq!(HelloRepr::len(&buf[..HELLO_LEN]), Ok(buf.len()));
            assert_eq!(HelloRepr::parse(&buf).unwrap(), repr);
        }
    }

    /// Magic is checked before version, version before role, role before flags, and each as
    /// soon as its byte is there: a spiped 1.x nonce reads as BadMagic, a future version as
    /// BadVersion, a bad role byte, reserved flags or an initiator's share as Malformed.
    #[test]
    fn hello_rejections_in_order() {
        let mut buf = vec![];
        HelloRepr { role: Role::Initiator, nonce: [1; 32], share: None }.emit(&mut buf);
        let mut b = buf.clone();
        b[0] ^= 1;
        b[4] = 9;
        assert_eq!(HelloRepr::parse(&b), Err(HandshakeError::BadMagic));
        assert_eq!(HelloRepr::len(&b[..1]), Err(HandshakeError::BadMagic));
        assert_eq!(HelloRepr::len(b"G"), Err(HandshakeError::BadMagic), "HTTP fails at its first byte");
        let mut b = buf.clone();
        b[4] = 1;
        b[5] = 7;
        assert_eq!(HelloRepr::parse(&b), Err(HandshakeError::BadVersion(1, VERSION)));
        assert_eq!(HelloRepr::len(&b[..5]), Err(HandshakeError::BadVersion(1, VERSION)));
        let mut b = buf.clone();
        b[5] = 0;
        assert!(matches!(HelloRepr::parse(&b), Err(HandshakeError::Malformed(_))));
        let mut b = buf.clone();
        b[6] = 0x02;
        assert!(matches!(HelloRepr::parse(&b), Err(HandshakeError::Malformed(_))));
        let mut b = buf.clone();
        b[6] = FLAG_X25519;
        assert_eq!(HelloRepr::len(&b), Err(HandshakeError::Malformed("initiator Hello carries an X25519 share")));
        b.extend_from_slice(&[5; 32]);
        assert!(HelloRepr::parse(&b).is_err());
        // A responder's Hello whose flag and length disagree.
        let mut r = vec![];
        HelloRepr { role: Role::Responder, nonce: [1; 32], share: Some([5; 32]) }.emit(&mut r);
        assert!(HelloRepr::parse(&r[..HELLO_LEN]).is_err());
        r[6] = 0;
        assert!(HelloRepr::parse(&r).is_err());
        for cut in 0..HELLO_LEN {
            assert!(HelloRepr::parse(&buf[..cut]).is_err());
            assert_eq!(HelloRepr::len(&buf[..cut]), Ok(HELLO_LEN), "a clean prefix asks for the rest");
        }
    }

    /// Both key shares round-trip with and without an X25519 share, and their lengths are exact.
    #[test]
    fn key_shares_round_trip() {
        let share = [3u8; 32];
        let mac = [4u8; 32];
        for s in [Some(&share), None] {
            let i = InitKeyShareRepr {
                suites: &[1, 2],
                share: s,
                mac: &mac,
            };
            let mut out = vec![];
            i.emit(&mut out);
            assert_eq!(out.len(), 3 + 2 + 2 + s.map_or(0, |_| 32) + 32);
            assert_eq!(InitKeyShareRepr::parse(&out).unwrap(), i);
            let r = RespKeyShareRepr {
                suite: 2,
                share: s,
                mac: &mac,
            };
            let mut out = vec![];
            r.emit(&mut out);
            assert_eq!(RespKeyShareRepr::parse(&out).unwrap(), r);
        }
    }

    /// Length fields that disagree with the flags, reserved bits, a zero or oversized suite
    /// count, a wrong type and an oversized length are all rejected without panicking.
    #[test]
    fn key_share_rejections() {
        let mac = [4u8; 32];
        let mut good = vec![];
        InitKeyShareRepr {
            suites: &[1, 2],
            share: None,
            mac: &mac,
        }
        .emit(&mut good);
        // Truncated by one byte (with the header adjusted so the frame is self-consistent).
        let mut short = good[..good.len() - 1].to_vec();
        short[2] -= 1;
        assert!(matches!(
            InitKeyShareRepr::parse(&short),
            Err(HandshakeError::Malformed(_))
        ));
        let mut flags = good.clone();
        flags[3] = 0x80;
        assert!(matches!(
            InitKeyShareRepr::parse(&flags),
            Err(HandshakeError::Malformed(_))
        ));
        let mut flags = good.clone();
        flags[3] = FLAG_X25519; // claims a share that is not there
        assert!(matches!(
            InitKeyShareRepr::parse(&flags),
            Err(HandshakeError::Malformed(_))
        ));
        let mut zero = good.clone();
        zero[4] = 0;
        assert!(matches!(
            InitKeyShareRepr::parse(&zero),
            Err(HandshakeError::Malformed(_))
        ));
        let mut many = good.clone();
        many[4] = 9;
        assert!(matches!(
            InitKeyShareRepr::parse(&many),
            Err(HandshakeError::Malformed(_))
        ));
        assert_eq!(
            RespKeyShareRepr::parse(&good),
            Err(HandshakeError::UnexpectedMessage(MSG_INIT_KEY_SHARE))
        );
        assert_eq!(
            frame_len(&[MSG_INIT_KEY_SHARE, 0xff, 0xff], MSG_INIT_KEY_SHARE),
            Err(HandshakeError::TooLarge(3 + 0xffff))
        );
        for cut in 0..good.len() {
            assert!(InitKeyShareRepr::parse(&good[..cut]).is_err());
        }
    }

    /// Record headers: every rejection reason has its own error, decided from 3 bytes.
    #[test]
    fn record_header_table() {
        let table: &[([u8; 3], Result<RecordKind, RecordError>)] = &[
            ([RECORD_DATA, 0, 1], Ok(RecordKind::Data(1))),
            ([RECORD_DATA, 0x40, 0], Ok(RecordKind::Data(16384))),
            ([RECORD_DATA, 0x40, 1], Err(RecordError::TooLarge(16385))),
            ([RECORD_DATA, 0, 0], Err(RecordError::Empty)),
            ([RECORD_CLOSE, 0, 0], Ok(RecordKind::Close)),
            ([RECORD_CLOSE, 0, 5], Err(RecordError::CloseWithPayload(5))),
            ([0x00, 0, 1], Err(RecordError::UnknownType(0))),
            ([0x17, 0, 1], Err(RecordError::UnknownType(0x17))),
        ];
        for (h, want) in table {
            assert_eq!(&parse_record_header(h), want, "header {h:02x?}");
        }
        let mut h = [0xAA; 3];
        emit_record_header(RecordKind::Data(300), &mut h);
        assert_eq!(h, [RECORD_DATA, 1, 44]);
        emit_record_header(RecordKind::Close, &mut h);
        assert_eq!(h, [RECORD_CLOSE, 0, 0]);
    }
}

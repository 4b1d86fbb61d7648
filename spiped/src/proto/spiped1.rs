//! spiped 1.x, byte for byte (`--protocol spiped1`): lets either end be Colin Percival's spiped.
//!
//! Contract (the full description with byte layouts is docs/PROTOCOL.md (part 2)):
//! - Both sides send their 32-byte nonce at once ([`start`] queues it); neither waits for the
//!   peer's nonce first.
//! - The client (initiator) sends message 2 = y_C || HMAC(dhmac_C, y_C) once it has the server's
//!   nonce. The server (responder) validates message 2 in spiped's order (MAC, then y < p, then
//!   with `-g` y != 1) *before* it computes its own DH value, so an unauthenticated peer cannot
//!   make it do a modexp; only then it sends message 3.
//! - `-f` sends y = 1 and skips every modexp; y_SC is then 1 on both ends.
//! - [`Handshake::is_done`] turns true once the peer's DH message is authenticated and ours is
//!   handed out; the shared-secret modexp and dk_2 run in [`Handshake::into_transport`], after
//!   the I/O layer has written our last message, so both ends compute y_SC in parallel.
//! - Traffic: fixed 1060-byte packets, encrypt-then-MAC with per-direction packet numbers that
//!   never appear on the wire. The MAC is checked before decryption and the packet number only
//!   advances after authentication.
//! - The wire has no close record: [`Transport::seal_close`] returns `None` (a bare TCP FIN ends
//!   a direction), and [`Transport::peer_eof`] accepts a FIN at a packet boundary. Truncation at a
//!   packet boundary is therefore undetectable in this protocol; a FIN in the middle of a packet
//!   is reported as [`RecordError::Truncated`] (spiped itself silently treats it as EOF).
//!
//! Per-packet work allocates nothing: sealing and opening use the caller's buffers plus one
//! 1036-byte stack buffer for the MAC input.

pub mod dh;
pub mod wire;

use std::sync::Arc;

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes256;
use ring::hmac;
use ring::rand::SecureRandom;
use zeroize::{Zeroize, Zeroizing};

use super::{Handshake, HandshakeError, Opened, Pfs, RecordError, Role, SessionConfig, Transport};
use crate::key::PreSharedKey;
use dh::PrivateExponent;
use wire::{
    DhMessage, Packet, DH_MSG_LEN, DH_VALUE_LEN, NONCE_LEN, PCRYPT_CIPHERTEXT_LEN, PCRYPT_ESZ,
    PCRYPT_MAXDSZ,
};

/// AES-256 in CTR mode with a 128-bit big-endian counter; IV = be64(pnum) || be64(0).
type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Bytes of dk_1: dhmac_C || dhmac_S.
const DK1_LEN: usize = 64;
/// Bytes of dk_2: E_C || H_C || E_S || H_S.
const DK2_LEN: usize = 128;
/// Length of each key inside dk_1 and dk_2.
const SUBKEY_LEN: usize = 32;
/// PBKDF2 iterations spiped uses for both KDF calls (it is a KDF here, not a password hash).
const PBKDF2_ITERATIONS: core::num::NonZeroU32 = match core::num::NonZeroU32::new(1) {
    Some(n) => n,
    None => unreachable!(),
};
/// The MAC input of a packet: ciphertext || be64 pnum.
const PACKET_MAC_INPUT_LEN: usize = PCRYPT_CIPHERTEXT_LEN + 8;

/// Starts a spiped 1.x handshake in `cfg.role`.
///
/// All randomness is drawn here (our nonce and, unless `-f`, our 32 exponent bytes); the
/// expensive modexp is deferred: the client does it when the server's nonce arrives, the server
/// only after message 2 authenticated.
pub fn start(
    cfg: &SessionConfig,
    rng: &dyn SecureRandom,
) -> Result<Box<dyn Handshake>, HandshakeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| HandshakeError::Rng)?;
    let exponent = match cfg.pfs {
        Pfs::Disabled => None,
        Pfs::Preferred | Pfs::Required => {
            let mut priv_bytes = Zeroizing::new([0u8; dh::PRIV_LEN]);
            rng.fill(&mut priv_bytes[..])
                .map_err(|_| HandshakeError::Rng)?;
            Some(PrivateExponent::from_random(&priv_bytes))
        }
    };
    Ok(Box::new(Spiped1Handshake::new(cfg, nonce, exponent)))
}

/// Fills a fixed-size message from a stream that may arrive in arbitrary pieces.
struct Accum<const N: usize> {
    buf: [u8; N],
    filled: usize,
}

impl<const N: usize> Accum<N> {
    fn new() -> Self {
        Accum {
            buf: [0u8; N],
            filled: 0,
        }
    }

    /// Copies as much of `input` as still fits; returns how many bytes were taken.
    fn fill(&mut self, input: &[u8]) -> usize {
        let take = (N - self.filled).min(input.len());
        self.buf[self.filled..self.filled + take].copy_from_slice(&input[..take]);
        self.filled += take;
        take
    }

    fn is_full(&self) -> bool {
        self.filled == N
    }
}

/// The two DH MAC keys of dk_1.
struct DhMacKeys {
    local: hmac::Key,
    peer: hmac::Key,
}

/// Handshake states. Each is consumed by the step that leaves it, so a stale state cannot be
/// reused; a failure leaves [`State::Failed`] behind.
enum State {
    /// Waiting for the peer's 32-byte nonce.
    ExpectNonce { peer_nonce: Accum<NONCE_LEN> },
    /// Waiting for the peer's 288-byte DH message (message 3 on the client, 2 on the server).
    ExpectDh {
        peer_nonce: [u8; NONCE_LEN],
        macs: Box<DhMacKeys>,
        msg: Box<Accum<DH_MSG_LEN>>,
    },
    /// The peer's DH message authenticated and validated; the transport is ready once the
    /// outbox is drained. The shared-secret modexp and dk_2 are left to `into_transport`, which
    /// the I/O layer calls only after it wrote our last message: the server's message 3 is on
    /// the wire while both ends compute y_SC at the same time (one modexp less on the critical
    /// path of every connection).
    Done {
        peer_nonce: [u8; NONCE_LEN],
        y_peer: Box<[u8; DH_VALUE_LEN]>,
    },
    /// A step failed; the connection must be closed.
    Failed,
}

struct Spiped1Handshake {
    role: Role,
    pfs: Pfs,
    key: Arc<PreSharedKey>,
    nonce: [u8; NONCE_LEN],
    exponent: Option<PrivateExponent>,
    /// Bytes queued for the peer: at most nonce + one DH message (320 bytes).
    outbox: Vec<u8>,
    state: State,
}

impl Spiped1Handshake {
    fn new(cfg: &SessionConfig, nonce: [u8; NONCE_LEN], exponent: Option<PrivateExponent>) -> Self {
        let mut outbox = Vec::with_capacity(NONCE_LEN + DH_MSG_LEN);
        // Message 1 / 1': our nonce, sent immediately whatever the role.
        outbox.extend_from_slice(&nonce);
        Spiped1Handshake {
            role: cfg.role,
            pfs: cfg.pfs,
            key: Arc::clone(&cfg.key),
            nonce,
            exponent,
            outbox,
            state: State::ExpectNonce {
                peer_nonce: Accum::new(),
            },
        }
    }

    /// (nonce_C, nonce_S): every KDF input is client-first whichever side computes it.
    fn ordered_nonces<'a>(
        &'a self,
        peer: &'a [u8; NONCE_LEN],
    ) -> (&'a [u8; NONCE_LEN], &'a [u8; NONCE_LEN]) {
        match self.role {
            Role::Initiator => (&self.nonce, peer),
            Role::Responder => (peer, &self.nonce),
        }
    }

    /// Appends our DH message (y || HMAC(dhmac_local, y)) to the outbox.
    fn queue_dh_message(&mut self, macs: &DhMacKeys) {
        let y = match &self.exponent {
            Some(x) => dh::public_value(x),
            None => dh::one_be(),
        };
        let mut msg = [0u8; DH_MSG_LEN];
        let mut view = DhMessage::new_unchecked(&mut msg[..]);
        view.y_mut().copy_from_slice(&y);
        view.mac_mut()
            .copy_from_slice(hmac::sign(&macs.local, &y).as_ref());
        self.outbox.extend_from_slice(&msg);
    }

    /// spiped's `proto_crypt_dh_validate`: MAC (constant time), then y < p, then with `-g`
    /// y != 1. Returns y.
    fn validate_peer_dh(
        &self,
        macs: &DhMacKeys,
        msg: &[u8; DH_MSG_LEN],
    ) -> Result<[u8; DH_VALUE_LEN], HandshakeError> {
        let view = DhMessage::new_checked(&msg[..])
            .map_err(|_| HandshakeError::Malformed("short Diffie-Hellman message"))?;
        hmac::verify(&macs.peer, view.y(), view.mac()).map_err(|_| HandshakeError::AuthFailed)?;
        if !dh::is_below_prime(view.y()) {
            return Err(HandshakeError::BadKeyShare(
                "Diffie-Hellman value is not below the group prime",
            ));
        }
        let mut y = [0u8; DH_VALUE_LEN];
        y.copy_from_slice(view.y());
        if self.pfs == Pfs::Required && y == dh::one_be() {
            return Err(HandshakeError::PfsRequired);
        }
        Ok(y)
    }

    /// One step of the state machine on `input`; returns bytes consumed.
    fn step(&mut self, state: State, input: &[u8]) -> Result<(State, usize), HandshakeError> {
        match state {
            State::ExpectNonce { mut peer_nonce } => {
                let used = peer_nonce.fill(input);
                if !peer_nonce.is_full() {
                    return Ok((State::ExpectNonce { peer_nonce }, used));
                }
                let peer = peer_nonce.buf;
                let (nonce_c, nonce_s) = self.ordered_nonces(&peer);
                let macs = Box::new(derive_dh_macs(&self.key, nonce_c, nonce_s, self.role));
                if self.role == Role::Initiator {
                    // Message 2: the client commits to its DH value as soon as it has both nonces.
                    self.queue_dh_message(&macs);
                }
                Ok((
                    State::ExpectDh {
                        peer_nonce: peer,
                        macs,
                        msg: Box::new(Accum::new()),
                    },
                    used,
                ))
            }
            State::ExpectDh {
                peer_nonce,
                macs,
                mut msg,
            } => {
                let used = msg.fill(input);
                if !msg.is_full() {
                    return Ok((
                        State::ExpectDh {
                            peer_nonce,
                            macs,
                            msg,
                        },
                        used,
                    ));
                }
                let y_peer = self.validate_peer_dh(&macs, &msg.buf)?;
                if self.role == Role::Responder {
                    // Message 3, only now that message 2 is authenticated.
                    self.queue_dh_message(&macs);
                }
                Ok((
                    State::Done {
                        peer_nonce,
                        y_peer: Box::new(y_peer),
                    },
                    used,
                ))
            }
            done @ State::Done { .. } => Ok((done, 0)),
            State::Failed => Err(HandshakeError::Malformed("handshake already failed")),
        }
    }
}

impl Handshake for Spiped1Handshake {
    fn write_to(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.outbox);
        self.outbox.clear();
    }

    fn read_from(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut used = 0;
        loop {
            let state = std::mem::replace(&mut self.state, State::Failed);
            let was_done = matches!(state, State::Done { .. });
            let (next, n) = self.step(state, &input[used..])?;
            used += n;
            let progressed = n > 0 && !matches!(next, State::Done { .. });
            self.state = next;
            if was_done || !progressed || used == input.len() {
                return Ok(used);
            }
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. }) && self.outbox.is_empty()
    }

    fn into_transport(self: Box<Self>) -> Result<Box<dyn Transport>, HandshakeError> {
        if !self.outbox.is_empty() {
            return Err(HandshakeError::NotFinished);
        }
        let (peer_nonce, y_peer) = match &self.state {
            State::Done { peer_nonce, y_peer } => (peer_nonce, y_peer),
            _ => return Err(HandshakeError::NotFinished),
        };
        // y_SC: 1 if we skipped the exchange (-f), else y_peer^x (1 if the peer used -f).
        let y_sc = match &self.exponent {
            Some(x) => Zeroizing::new(dh::shared_secret(y_peer, x)),
            None => Zeroizing::new(dh::one_be()),
        };
        let (nonce_c, nonce_s) = self.ordered_nonces(peer_nonce);
        let dk2 = derive_dk2(&self.key, nonce_c, nonce_s, &y_sc);
        Ok(Box::new(Spiped1Transport::from_dk2(self.role, &dk2)))
    }
}

/// dk_1 = PBKDF2-HMAC-SHA256(K, nonce_C || nonce_S, 1 iteration, 64 bytes), split into
/// dhmac_C || dhmac_S and mapped to (local, peer) by role.
fn derive_dh_macs(
    key: &PreSharedKey,
    nonce_c: &[u8; NONCE_LEN],
    nonce_s: &[u8; NONCE_LEN],
    role: Role,
) -> DhMacKeys {
    let dk1 = derive_dk1(key, nonce_c, nonce_s);
    let c = hmac::Key::new(hmac::HMAC_SHA256, &dk1[..SUBKEY_LEN]);
    let s = hmac::Key::new(hmac::HMAC_SHA256, &dk1[SUBKEY_LEN..]);
    match role {
        Role::Initiator => DhMacKeys { local: c, peer: s },
        Role::Responder => DhMacKeys { local: s, peer: c },
    }
}

fn derive_dk1(
    key: &PreSharedKey,
    nonce_c: &[u8; NONCE_LEN],
    nonce_s: &[u8; NONCE_LEN],
) -> Zeroizing<[u8; DK1_LEN]> {
    let mut salt = [0u8; 2 * NONCE_LEN];
    salt[..NONCE_LEN].copy_from_slice(nonce_c);
    salt[NONCE_LEN..].copy_from_slice(nonce_s);
    let mut dk1 = Zeroizing::new([0u8; DK1_LEN]);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ITERATIONS,
        &salt,
        key.as_bytes(),
        &mut dk1[..],
    );
    dk1
}

/// dk_2 = PBKDF2-HMAC-SHA256(K, nonce_C || nonce_S || y_SC, 1 iteration, 128 bytes).
fn derive_dk2(
    key: &PreSharedKey,
    nonce_c: &[u8; NONCE_LEN],
    nonce_s: &[u8; NONCE_LEN],
    y_sc: &[u8; DH_VALUE_LEN],
) -> Zeroizing<[u8; DK2_LEN]> {
    let mut salt = Zeroizing::new([0u8; 2 * NONCE_LEN + DH_VALUE_LEN]);
    salt[..NONCE_LEN].copy_from_slice(nonce_c);
    salt[NONCE_LEN..2 * NONCE_LEN].copy_from_slice(nonce_s);
    salt[2 * NONCE_LEN..].copy_from_slice(y_sc);
    let mut dk2 = Zeroizing::new([0u8; DK2_LEN]);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ITERATIONS,
        &salt[..],
        key.as_bytes(),
        &mut dk2[..],
    );
    dk2
}

/// One direction's keys and packet counter.
struct Direction {
    /// Expanded AES-256 key E (the `aes` crate wipes it on drop).
    cipher: Aes256,
    /// HMAC-SHA256 key H.
    mac: hmac::Key,
    /// Next packet number; never on the wire, so a replayed, dropped or reordered packet fails
    /// its MAC.
    pnum: u64,
}

impl Direction {
    /// From one 64-byte half of dk_2: E (32 bytes) || H (32 bytes).
    fn new(half: &[u8]) -> Self {
        let cipher = Aes256::new_from_slice(&half[..SUBKEY_LEN]).expect("E is 32 bytes");
        let mac = hmac::Key::new(hmac::HMAC_SHA256, &half[SUBKEY_LEN..2 * SUBKEY_LEN]);
        Direction {
            cipher,
            mac,
            pnum: 0,
        }
    }

    /// XORs the packet's keystream into `body` (1028 bytes): counter block be64(pnum) || be64(i).
    fn apply_keystream(&self, body: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&self.pnum.to_be_bytes());
        let core = ctr::CtrCore::<Aes256, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.cipher.clone(),
            &iv.into(),
        );
        let mut ctr = Aes256Ctr::from_core(core);
        ctr.apply_keystream(body);
    }

    /// Fills `mac_input` with ciphertext || be64(pnum).
    fn mac_input(&self, ciphertext: &[u8], mac_input: &mut [u8; PACKET_MAC_INPUT_LEN]) {
        mac_input[..PCRYPT_CIPHERTEXT_LEN].copy_from_slice(ciphertext);
        mac_input[PCRYPT_CIPHERTEXT_LEN..].copy_from_slice(&self.pnum.to_be_bytes());
    }
}

/// The traffic phase of a spiped 1.x connection.
struct Spiped1Transport {
    send: Direction,
    recv: Direction,
}

impl Spiped1Transport {
    /// Splits dk_2: client-to-server uses (E_C, H_C) = dk_2[0..64], server-to-client
    /// (E_S, H_S) = dk_2[64..128].
    fn from_dk2(role: Role, dk2: &[u8; DK2_LEN]) -> Self {
        let c2s = Direction::new(&dk2[..2 * SUBKEY_LEN]);
        let s2c = Direction::new(&dk2[2 * SUBKEY_LEN..]);
        match role {
            Role::Initiator => Spiped1Transport {
                send: c2s,
                recv: s2c,
            },
            Role::Responder => Spiped1Transport {
                send: s2c,
                recv: c2s,
            },
        }
    }
}

impl Transport for Spiped1Transport {
    fn max_plaintext(&self) -> usize {
        PCRYPT_MAXDSZ
    }

    fn sealed_len(&self, _len: usize) -> usize {
        PCRYPT_ESZ
    }

    fn max_record_len(&self) -> usize {
        PCRYPT_ESZ
    }

    fn seal(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, RecordError> {
        if plain.is_empty() {
            return Err(RecordError::Empty);
        }
        if plain.len() > PCRYPT_MAXDSZ {
            return Err(RecordError::TooLarge(plain.len()));
        }
        if out.len() < PCRYPT_ESZ {
            return Err(RecordError::BufferTooSmall(out.len()));
        }
        if self.send.pnum == u64::MAX {
            return Err(RecordError::CounterExhausted);
        }
        let dir = &mut self.send;
        let mut pkt = Packet::new_unchecked(&mut out[..PCRYPT_ESZ]);
        let body = pkt.ciphertext_mut();
        body[..plain.len()].copy_from_slice(plain);
        body[plain.len()..PCRYPT_MAXDSZ].fill(0);
        // Cannot truncate: plain.len() <= PCRYPT_MAXDSZ was checked above.
        wire::set_body_len(body, plain.len() as u32);
        dir.apply_keystream(body);
        let mut mac_input = [0u8; PACKET_MAC_INPUT_LEN];
        dir.mac_input(pkt.ciphertext(), &mut mac_input);
        let tag = hmac::sign(&dir.mac, &mac_input);
        pkt.mac_mut().copy_from_slice(tag.as_ref());
        dir.pnum += 1;
        Ok(PCRYPT_ESZ)
    }

    fn seal_close(&mut self, _out: &mut [u8]) -> Result<Option<usize>, RecordError> {
        // spiped 1.x ends a direction with shutdown(SHUT_WR) and nothing else.
        Ok(None)
    }

    fn open(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, RecordError> {
        let pkt = match Packet::new_checked(input) {
            Ok(pkt) => pkt,
            Err(_) => return Ok(Opened::Incomplete { need: PCRYPT_ESZ }),
        };
        if out.len() < PCRYPT_MAXDSZ {
            return Err(RecordError::BufferTooSmall(out.len()));
        }
        let dir = &mut self.recv;
        let mut mac_input = [0u8; PACKET_MAC_INPUT_LEN];
        dir.mac_input(pkt.ciphertext(), &mut mac_input);
        // Verify before decrypting; the counter advances only after authentication.
        hmac::verify(&dir.mac, &mac_input, pkt.mac()).map_err(|_| RecordError::BadRecordMac)?;
        let body = &mut mac_input[..PCRYPT_CIPHERTEXT_LEN];
        dir.apply_keystream(body);
        dir.pnum = dir
            .pnum
            .checked_add(1)
            .ok_or(RecordError::CounterExhausted)?;
        let len = wire::body_len(body);
        let result = match len {
            0 => Err(RecordError::Empty),
            l if l as usize > PCRYPT_MAXDSZ => Err(RecordError::TooLarge(l as usize)),
            l => {
                let l = l as usize;
                out[..l].copy_from_slice(&body[..l]);
                Ok(Opened::Data {
                    consumed: PCRYPT_ESZ,
                    len: l,
                })
            }
        };
        mac_input.zeroize();
        result
    }

    fn peer_eof(&self, leftover: usize) -> Result<(), RecordError> {
        // No close record exists on this wire: a FIN at a packet boundary is a clean end (and a
        // truncation there is undetectable). A FIN inside a packet cannot be a clean end.
        if leftover == 0 {
            Ok(())
        } else {
            Err(RecordError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    include!("../../tests/vectors/spiped1_kat.rs");

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len() % 2 == 0);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arr<const N: usize>(s: &str) -> [u8; N] {
        unhex(s).try_into().unwrap()
    }

    fn kat_key() -> Arc<PreSharedKey> {
        Arc::new(PreSharedKey::from_file_bytes(b""))
    }

    fn cfg(role: Role, pfs: Pfs, key: &Arc<PreSharedKey>) -> SessionConfig {
        SessionConfig {
            role,
            pfs,
            key: Arc::clone(key),
            keys: None,
        }
    }

    /// A handshake with fixed nonce and exponent bytes, for transcript known answers.
    fn fixed(role: Role, pfs: Pfs, nonce: &str, priv_hex: &str) -> Box<Spiped1Handshake> {
        let exponent = (pfs != Pfs::Disabled).then(|| PrivateExponent::from_random(&arr(priv_hex)));
        Box::new(Spiped1Handshake::new(
            &cfg(role, pfs, &kat_key()),
            arr(nonce),
            exponent,
        ))
    }

    /// Both transports of an in-memory handshake, or the side that failed and why.
    type PairResult = Result<(Box<dyn Transport>, Box<dyn Transport>), (Role, HandshakeError)>;

    fn drain(h: &mut dyn Handshake) -> Vec<u8> {
        let mut v = Vec::new();
        h.write_to(&mut v);
        v
    }

    /// Runs two handshakes against each other in memory, delivering in `chunk`-byte pieces.
    /// Returns both transports or the first error (with the side that raised it).
    fn run(mut a: Box<dyn Handshake>, mut b: Box<dyn Handshake>, chunk: usize) -> PairResult {
        let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            a.write_to(&mut to_b);
            b.write_to(&mut to_a);
            if a.is_done() && b.is_done() && to_a.is_empty() && to_b.is_empty() {
                let ta = a.into_transport().unwrap();
                let tb = b.into_transport().unwrap();
                return Ok((ta, tb));
            }
            let n = to_b.len().min(chunk);
            let used = b.read_from(&to_b[..n]).map_err(|e| (Role::Responder, e))?;
            to_b.drain(..used);
            let n = to_a.len().min(chunk);
            let used = a.read_from(&to_a[..n]).map_err(|e| (Role::Initiator, e))?;
            to_a.drain(..used);
        }
        panic!("handshake did not finish");
    }

    fn pair(ci: Pfs, si: Pfs) -> PairResult {
        let rng = SystemRandom::new();
        let k = kat_key();
        run(
            start(&cfg(Role::Initiator, ci, &k), &rng).unwrap(),
            start(&cfg(Role::Responder, si, &k), &rng).unwrap(),
            7,
        )
    }

    fn seal_one(t: &mut dyn Transport, plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0xeeu8; t.sealed_len(plain.len())];
        let n = t.seal(plain, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn open_one(t: &mut dyn Transport, pkt: &[u8]) -> Result<Vec<u8>, RecordError> {
        let mut out = vec![0u8; t.max_plaintext()];
        match t.open(pkt, &mut out)? {
            Opened::Data { consumed, len } => {
                assert_eq!(consumed, PCRYPT_ESZ);
                Ok(out[..len].to_vec())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// K is SHA-256 of the key file; spiped's own tests use `-k /dev/null`.
    #[test]
    fn spiped1_kat_key_file_of_dev_null() {
        assert_eq!(kat_key().as_bytes()[..], unhex(KAT_K)[..]);
    }

    /// The group-14 constant is the one the vector script checked against OpenSSL and the
    /// RFC 3526 formula.
    #[test]
    fn spiped1_group14_prime_matches_kat() {
        let p = dh::prime_for_test();
        assert_eq!(&p[..8], &[0xff; 8]);
        assert_eq!(&p[248..], &[0xff; 8]);
        // 2^65537 mod p from Python's pow pins the whole modulus, not just its ends.
        assert_eq!(dh::modexp_for_test(2, 65537)[..], unhex(KAT_POW2_65537)[..]);
        assert!(!dh::is_below_prime(&p));
        let mut p_minus_1 = p;
        p_minus_1[255] -= 1;
        assert!(dh::is_below_prime(&p_minus_1));
    }

    /// dk_1 = PBKDF2(K, nonce_C || nonce_S, 1, 64), split dhmac_C || dhmac_S.
    #[test]
    fn spiped1_kat_dk1() {
        let dk1 = derive_dk1(&kat_key(), &arr(KAT_NONCE_C), &arr(KAT_NONCE_S));
        assert_eq!(dk1[..], unhex(KAT_DK1)[..]);
    }

    /// dk_2 for y_SC = 1 (a `-f` side) and for a real group element.
    #[test]
    fn spiped1_kat_dk2_both_kinds_of_y_sc() {
        let k = kat_key();
        let nopfs = derive_dk2(&k, &arr(KAT_NONCE_C), &arr(KAT_NONCE_S), &dh::one_be());
        assert_eq!(nopfs[..], unhex(KAT_DK2_NOPFS)[..]);
        let pfs = derive_dk2(&k, &arr(KAT_NONCE_C), &arr(KAT_NONCE_S), &arr(KAT_Y_SC));
        assert_eq!(pfs[..], unhex(KAT_DK2_PFS)[..]);
    }

    /// Both sides' DH computations (x = 2^258 + priv) agree with Python's pow.
    #[test]
    fn spiped1_kat_modexp() {
        let xc = PrivateExponent::from_random(&arr(KAT_PRIV_C));
        let xs = PrivateExponent::from_random(&arr(KAT_PRIV_S));
        let yc = dh::public_value(&xc);
        let ys = dh::public_value(&xs);
        assert_eq!(yc[..], unhex(KAT_MSG2)[..DH_VALUE_LEN]);
        assert_eq!(ys[..], unhex(KAT_MSG3)[..DH_VALUE_LEN]);
        assert_eq!(dh::shared_secret(&ys, &xc)[..], unhex(KAT_Y_SC)[..]);
        assert_eq!(dh::shared_secret(&yc, &xs)[..], unhex(KAT_Y_SC)[..]);
    }

    /// Every byte we send in a PFS handshake equals the independently computed transcript:
    /// nonce first, then message 2 (client) / message 3 (server), and the resulting traffic keys
    /// produce the known-answer packet.
    #[test]
    fn spiped1_kat_full_transcript() {
        let mut c = fixed(Role::Initiator, Pfs::Preferred, KAT_NONCE_C, KAT_PRIV_C);
        let mut s = fixed(Role::Responder, Pfs::Preferred, KAT_NONCE_S, KAT_PRIV_S);
        assert_eq!(drain(c.as_mut()), unhex(KAT_NONCE_C));
        assert_eq!(drain(s.as_mut()), unhex(KAT_NONCE_S));
        assert_eq!(c.read_from(&unhex(KAT_NONCE_S)).unwrap(), NONCE_LEN);
        assert_eq!(drain(c.as_mut()), unhex(KAT_MSG2));
        // The server has nothing to say after the client's nonce: it waits for message 2.
        assert_eq!(s.read_from(&unhex(KAT_NONCE_C)).unwrap(), NONCE_LEN);
        assert!(drain(s.as_mut()).is_empty());
        assert_eq!(s.read_from(&unhex(KAT_MSG2)).unwrap(), DH_MSG_LEN);
        assert_eq!(drain(s.as_mut()), unhex(KAT_MSG3));
        assert_eq!(c.read_from(&unhex(KAT_MSG3)).unwrap(), DH_MSG_LEN);
        assert!(c.is_done() && s.is_done());
        let mut ct = c.into_transport().unwrap();
        let mut st = s.into_transport().unwrap();
        // Advance the client's send counter to the KAT's packet number.
        for _ in 0..KAT_PACKET_PNUM {
            let p = seal_one(ct.as_mut(), b"x");
            assert_eq!(open_one(st.as_mut(), &p).unwrap(), b"x");
        }
        let pkt = seal_one(ct.as_mut(), &unhex(KAT_PACKET_PAYLOAD));
        assert_eq!(pkt, unhex(KAT_PACKET));
        assert_eq!(
            open_one(st.as_mut(), &pkt).unwrap(),
            unhex(KAT_PACKET_PAYLOAD)
        );
    }

    /// A `-f` client sends y = 1 with a valid MAC (255 zero bytes, then 0x01).
    #[test]
    fn spiped1_kat_nopfs_message2() {
        let mut c = fixed(Role::Initiator, Pfs::Disabled, KAT_NONCE_C, KAT_PRIV_C);
        drain(c.as_mut());
        c.read_from(&unhex(KAT_NONCE_S)).unwrap();
        assert_eq!(drain(c.as_mut()), unhex(KAT_MSG2_NOPFS));
    }

    /// The packet layout on its own: fixed E/H keys from dk_2, packet number 7, known payload.
    #[test]
    fn spiped1_kat_packet_bytes() {
        let dk2: [u8; DK2_LEN] = arr(KAT_DK2_PFS);
        let mut t = Spiped1Transport::from_dk2(Role::Initiator, &dk2);
        t.send.pnum = KAT_PACKET_PNUM;
        let mut out = [0x5au8; PCRYPT_ESZ + 3];
        assert_eq!(
            t.seal(&unhex(KAT_PACKET_PAYLOAD), &mut out).unwrap(),
            PCRYPT_ESZ
        );
        assert_eq!(out[..PCRYPT_ESZ], unhex(KAT_PACKET)[..]);
        assert_eq!(out[PCRYPT_ESZ..], [0x5a; 3], "seal wrote past the packet");
        let mut r = Spiped1Transport::from_dk2(Role::Responder, &dk2);
        r.recv.pnum = KAT_PACKET_PNUM;
        assert_eq!(
            open_one(&mut r, &out[..PCRYPT_ESZ]).unwrap(),
            unhex(KAT_PACKET_PAYLOAD)
        );
    }

    /// Every -f/-g/default combination either completes and carries data both ways, or is
    /// refused exactly where spiped refuses it (-g against a -f peer).
    #[test]
    fn spiped1_handshake_all_pfs_combinations() {
        use Pfs::*;
        for ci in [Preferred, Disabled, Required] {
            for si in [Preferred, Disabled, Required] {
                let r = pair(ci, si);
                let expect_refusal =
                    (ci == Required && si == Disabled) || (si == Required && ci == Disabled);
                if expect_refusal {
                    let (side, err) = r.err().unwrap();
                    assert_eq!(err, HandshakeError::PfsRequired, "{ci:?}/{si:?}");
                    assert_eq!(
                        side,
                        if si == Required {
                            Role::Responder
                        } else {
                            Role::Initiator
                        }
                    );
                    continue;
                }
                let (mut c, mut s) = r.unwrap_or_else(|e| panic!("{ci:?}/{si:?}: {e:?}"));
                let p = seal_one(c.as_mut(), b"hello");
                assert_eq!(p.len(), 1060);
                assert_eq!(open_one(s.as_mut(), &p).unwrap(), b"hello");
                let p = seal_one(s.as_mut(), &[7u8; 1024]);
                assert_eq!(open_one(c.as_mut(), &p).unwrap(), vec![7u8; 1024]);
            }
        }
    }

    /// The server queues message 3 only after message 2 arrived and verified: a server fed a
    /// bad message 2 never sends anything but its nonce (and so never runs its modexp).
    #[test]
    fn spiped1_server_validates_before_its_dh() {
        let mut s = fixed(Role::Responder, Pfs::Preferred, KAT_NONCE_S, KAT_PRIV_S);
        drain(s.as_mut());
        s.read_from(&unhex(KAT_NONCE_C)).unwrap();
        let mut bad = unhex(KAT_MSG2);
        bad[DH_MSG_LEN - 1] ^= 1;
        assert_eq!(s.read_from(&bad), Err(HandshakeError::AuthFailed));
        assert!(drain(s.as_mut()).is_empty());
        assert!(!s.is_done());
        // A failed handshake stays failed.
        assert!(s.read_from(&[0]).is_err());
    }

    /// A peer with another key fails the MAC of message 2 at the server.
    #[test]
    fn spiped1_wrong_key_rejected() {
        let rng = SystemRandom::new();
        let k1 = kat_key();
        let k2 = Arc::new(PreSharedKey::from_file_bytes(b"other key"));
        let r = run(
            start(&cfg(Role::Initiator, Pfs::Preferred, &k1), &rng).unwrap(),
            start(&cfg(Role::Responder, Pfs::Preferred, &k2), &rng).unwrap(),
            1000,
        );
        assert_eq!(
            r.err().unwrap(),
            (Role::Responder, HandshakeError::AuthFailed)
        );
    }

    /// Builds message 2 for an arbitrary y with a valid MAC under the KAT nonces.
    fn msg2_with_y(y: [u8; DH_VALUE_LEN]) -> Vec<u8> {
        let macs = derive_dh_macs(
            &kat_key(),
            &arr(KAT_NONCE_C),
            &arr(KAT_NONCE_S),
            Role::Initiator,
        );
        let mut m = y.to_vec();
        m.extend_from_slice(hmac::sign(&macs.local, &y).as_ref());
        m
    }

    fn server_after_nonce(pfs: Pfs) -> Box<Spiped1Handshake> {
        let mut s = fixed(Role::Responder, pfs, KAT_NONCE_S, KAT_PRIV_S);
        drain(s.as_mut());
        s.read_from(&unhex(KAT_NONCE_C)).unwrap();
        s
    }

    /// y >= p is refused even with a valid MAC (y = p and y = 2^2048 - 1).
    #[test]
    fn spiped1_y_not_below_prime_rejected() {
        for y in [dh::prime_for_test(), [0xff; DH_VALUE_LEN]] {
            let mut s = server_after_nonce(Pfs::Preferred);
            assert!(matches!(
                s.read_from(&msg2_with_y(y)),
                Err(HandshakeError::BadKeyShare(_))
            ));
        }
    }

    /// y == 1 is accepted by default (spiped interop with -f peers) but refused with -g.
    #[test]
    fn spiped1_y_one_rejected_only_with_g() {
        let mut s = server_after_nonce(Pfs::Required);
        assert_eq!(
            s.read_from(&msg2_with_y(dh::one_be())),
            Err(HandshakeError::PfsRequired)
        );
        let mut s = server_after_nonce(Pfs::Preferred);
        assert_eq!(s.read_from(&msg2_with_y(dh::one_be())), Ok(DH_MSG_LEN));
        assert!(!drain(s.as_mut()).is_empty());
    }

    /// Bytes after the handshake are left unconsumed (they are the first data packet), and the
    /// handshake is not done before its last message was handed out.
    #[test]
    fn spiped1_handshake_leaves_trailing_bytes() {
        let mut c = fixed(Role::Initiator, Pfs::Disabled, KAT_NONCE_C, KAT_PRIV_C);
        let mut s = fixed(Role::Responder, Pfs::Disabled, KAT_NONCE_S, KAT_PRIV_S);
        let mut to_s = drain(c.as_mut());
        let to_c = drain(s.as_mut());
        c.read_from(&to_c).unwrap();
        to_s.extend(drain(c.as_mut()));
        to_s.extend_from_slice(&[9u8; 100]);
        assert_eq!(s.read_from(&to_s).unwrap(), NONCE_LEN + DH_MSG_LEN);
        assert!(!s.is_done(), "message 3 is still queued");
        assert!(!drain(s.as_mut()).is_empty());
        assert!(s.is_done());
    }

    /// A flipped bit anywhere in a packet fails the MAC; nothing is delivered.
    #[test]
    fn spiped1_flipped_bit_rejected() {
        let (mut c, mut s) = pair(Pfs::Disabled, Pfs::Disabled).unwrap();
        let p = seal_one(c.as_mut(), b"secret");
        for bit in [0, 8 * 500 + 3, 8 * 1027, 8 * 1059 + 7] {
            let mut q = p.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(open_one(s.as_mut(), &q), Err(RecordError::BadRecordMac));
        }
        // The failures did not advance the counter: the genuine packet still opens.
        assert_eq!(open_one(s.as_mut(), &p).unwrap(), b"secret");
    }

    /// A replayed or reordered packet fails: the packet number is implicit.
    #[test]
    fn spiped1_replayed_and_reordered_rejected() {
        let (mut c, mut s) = pair(Pfs::Disabled, Pfs::Disabled).unwrap();
        let p0 = seal_one(c.as_mut(), b"zero");
        let p1 = seal_one(c.as_mut(), b"one");
        assert_eq!(open_one(s.as_mut(), &p1), Err(RecordError::BadRecordMac));
        assert_eq!(open_one(s.as_mut(), &p0).unwrap(), b"zero");
        assert_eq!(open_one(s.as_mut(), &p0), Err(RecordError::BadRecordMac));
        assert_eq!(open_one(s.as_mut(), &p1).unwrap(), b"one");
    }

    /// A correctly authenticated packet claiming length 0 or more than 1024 is refused, as
    /// spiped does; and our sealer refuses to produce either.
    #[test]
    fn spiped1_bad_lengths_rejected() {
        let dk2 = [0x42u8; DK2_LEN];
        for (len, want) in [
            (0u32, RecordError::Empty),
            (1025, RecordError::TooLarge(1025)),
            (u32::MAX, RecordError::TooLarge(u32::MAX as usize)),
        ] {
            // Forge with the sender's own keys, bypassing the sealer's checks.
            let t = Spiped1Transport::from_dk2(Role::Initiator, &dk2);
            let mut pkt = [0u8; PCRYPT_ESZ];
            wire::set_body_len(&mut pkt[..PCRYPT_CIPHERTEXT_LEN], len);
            t.send.apply_keystream(&mut pkt[..PCRYPT_CIPHERTEXT_LEN]);
            let mut mi = [0u8; PACKET_MAC_INPUT_LEN];
            t.send.mac_input(&pkt[..PCRYPT_CIPHERTEXT_LEN], &mut mi);
            pkt[PCRYPT_CIPHERTEXT_LEN..].copy_from_slice(hmac::sign(&t.send.mac, &mi).as_ref());
            let mut r = Spiped1Transport::from_dk2(Role::Responder, &dk2);
            assert_eq!(open_one(&mut r, &pkt), Err(want));
        }
        let (mut c, _) = pair(Pfs::Disabled, Pfs::Disabled).unwrap();
        let mut out = [0u8; PCRYPT_ESZ];
        assert_eq!(c.seal(&[], &mut out), Err(RecordError::Empty));
        assert_eq!(
            c.seal(&[0; 1025], &mut out),
            Err(RecordError::TooLarge(1025))
        );
        assert_eq!(
            c.seal(b"x", &mut out[..100]),
            Err(RecordError::BufferTooSmall(100))
        );
    }

    /// Partial packets ask for more input; EOF is clean only at a packet boundary, and there is
    /// no close record on this wire.
    #[test]
    fn spiped1_incomplete_eof_and_close() {
        let (mut c, mut s) = pair(Pfs::Disabled, Pfs::Disabled).unwrap();
        let p = seal_one(c.as_mut(), b"abc");
        let mut out = [0u8; PCRYPT_MAXDSZ];
        assert_eq!(
            s.open(&p[..1059], &mut out),
            Ok(Opened::Incomplete { need: PCRYPT_ESZ })
        );
        assert_eq!(s.peer_eof(0), Ok(()));
        assert_eq!(s.peer_eof(1059), Err(RecordError::Truncated));
        assert_eq!(c.seal_close(&mut out), Ok(None));
        assert_eq!(s.max_plaintext(), 1024);
        assert_eq!(s.sealed_len(1), 1060);
        assert_eq!(s.max_record_len(), 1060);
    }

    /// Asking for the transport before the handshake finished is an API error, not a panic.
    #[test]
    fn spiped1_into_transport_too_early() {
        let c = fixed(Role::Initiator, Pfs::Preferred, KAT_NONCE_C, KAT_PRIV_C);
        assert_eq!(c.into_transport().err(), Some(HandshakeError::NotFinished));
    }
}

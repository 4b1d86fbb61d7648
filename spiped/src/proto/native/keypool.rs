//! X25519 key pairs computed ahead of need.
//!
//! The scalar multiplication that turns a fresh private key into its public key costs about
//! 27 µs here. A [`KeyPool`] moves that work off the connections: one background thread per
//! daemon ([`KeyPool::fill`], started by the acceptor at the lowest CPU priority) sleeps until
//! the pool is short, computes one pair at a time, and a handshake [`KeyPool::take`]s a finished
//! pair instead of computing one. Because the filler runs at idle priority, it uses only CPU
//! time nothing else wants: on a loaded machine the pool drains and handshakes compute their
//! own pairs, exactly as without a pool.
//!
//! (Until 2026-12-06 the workers refilled the pool themselves when about to block. That put a
//! 27-40 µs computation in the gaps of the very connection that had spent the pair, between two
//! of its messages, and measurably delayed it; a separate idle-priority thread does not.)
//!
//! The responder also [`KeyPool::lend`]s a pair when it starts, to put the public key in its
//! `Hello` (protocol version 2, docs/PROTOCOL.md): the initiator can then compute its agreement
//! while the rest of the handshake is in flight. A lent pair is not yet spent:
//! - if the peer proves the key and sends a share, [`Lent::consume`] hands the pair to that
//!   connection's one agreement, and the pool refills the gap (work for an authenticated peer);
//! - otherwise (wrong key, garbage, timeout, a `-f` peer) dropping the [`Lent`] puts the pair
//!   back. Its public key has been seen, which is harmless: a public key is public, and the
//!   private key still serves at most one agreement.
//!
//! Lent pairs count as present when the pool decides whether it is short, so the rule of no
//! X25519 for a peer that has not proven the key holds for the refills too: a flood of peers
//! without the key can borrow every pair (then later handshakes send no share in `Hello` and
//! compute theirs after MAC_I, as in version 1), but it never makes the filler compute one, not
//! even later.
//!
//! What it does not change:
//! - a pooled pair is an ordinary ephemeral X25519 key, used for one agreement and consumed by
//!   it (ring's `EphemeralPrivateKey` cannot be used twice);
//! - forward secrecy: an unused pooled private key belongs to no session yet; once used it is
//!   gone with the agreement, exactly like one drawn on demand.

use std::sync::{Arc, Condvar, Mutex};

use ring::agreement::{EphemeralPrivateKey, X25519};
use ring::rand::SecureRandom;

use super::wire::SHARE_LEN;
use crate::limits::KEY_POOL;
use crate::proto::HandshakeError;

/// One ephemeral X25519 key pair whose public half is already computed.
pub struct KeyPair {
    pub(crate) private: EphemeralPrivateKey,
    pub(crate) public: [u8; SHARE_LEN],
}

impl KeyPair {
    /// Draws a private key from `rng` and computes its public key (one scalar multiplication).
    pub fn generate(rng: &dyn SecureRandom) -> Result<KeyPair, HandshakeError> {
        let private = EphemeralPrivateKey::generate(&X25519, rng).map_err(|_| HandshakeError::Rng)?;
        let public = public_key(&private)?;
        Ok(KeyPair { private, public })
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

/// The public key of `private` (one scalar multiplication).
pub(crate) fn public_key(private: &EphemeralPrivateKey) -> Result<[u8; SHARE_LEN], HandshakeError> {
    let public = private.compute_public_key().map_err(|_| HandshakeError::Rng)?;
    public.as_ref().try_into().map_err(|_| HandshakeError::Rng)
}

/// Up to [`KEY_POOL`] ready key pairs, shared by a daemon's workers and filled by one thread.
#[derive(Debug, Default)]
pub struct KeyPool {
    inner: Mutex<Inner>,
    /// Signalled when a pair is spent, so the filler wakes.
    spent: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    pairs: Vec<KeyPair>,
    /// Pairs lent to responders that have not yet used or returned them.
    lent: usize,
    /// Pairs computed so far (for tests).
    made: u64,
}

impl Inner {
    /// Below [`KEY_POOL`], counting pairs lent.
    fn short(&self) -> bool {
        self.pairs.len() + self.lent < KEY_POOL
    }
}

/// A pair lent by [`KeyPool::lend`]: used by [`Lent::consume`], or back in the pool on drop.
pub struct Lent {
    /// `Some` until consumed.
    pair: Option<KeyPair>,
    pool: Arc<KeyPool>,
}

impl Lent {
    /// The public half, for the responder's `Hello`.
    pub fn public(&self) -> [u8; SHARE_LEN] {
        self.pair.as_ref().expect("a Lent holds its pair until consumed").public
    }

    /// Spends the pair on this connection's agreement: it does not go back, and the pool may
    /// refill in its place.
    pub fn consume(mut self) -> KeyPair {
        let pair = self.pair.take().expect("a Lent holds its pair until consumed");
        self.pool.inner().lent -= 1;
        self.pool.spent.notify_one();
        pair
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(pair) = self.pair.take() {
            let mut inner = self.pool.inner();
            inner.lent -= 1;
            inner.pairs.push(pair);
        }
    }
}

impl std::fmt::Debug for Lent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent").finish_non_exhaustive()
    }
}

impl KeyPool {
    /// An empty pool; the filler thread (`fill`) fills it.
    pub fn new() -> KeyPool {
        KeyPool {
            inner: Mutex::new(Inner { pairs: Vec::with_capacity(KEY_POOL), lent: 0, made: 0 }),
            spent: Condvar::new(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves valid contents; keep using them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ready pair, if there is one. The caller must use it for at most one agreement.
    pub fn take(&self) -> Option<KeyPair> {
        let pair = self.inner().pairs.pop();
        if pair.is_some() {
            self.spent.notify_one();
        }
        pair
    }

    /// Lends a ready pair, if there is one, until the returned [`Lent`] is consumed or dropped.
    pub fn lend(self: &Arc<Self>) -> Option<Lent> {
        let mut inner = self.inner();
        let pair = inner.pairs.pop()?;
        inner.lent += 1;
        Some(Lent { pair: Some(pair), pool: self.clone() })
    }

    /// Pairs ready now.
    pub fn len(&self) -> usize {
        self.inner().pairs.len()
    }

    /// True when no pair is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the pool, counting pairs lent, is below [`KEY_POOL`].
    pub fn wants(&self) -> bool {
        self.inner().short()
    }

    /// Pairs computed since the pool was made.
    pub fn made(&self) -> u64 {
        self.inner().made
    }

    /// Computes one pair (outside the lock, so a handshake can take a pair meanwhile) if the
    /// pool wants one. Returns whether it did the work. One caller at a time: the filler
    /// thread, or a test.
    pub fn refill_one(&self, rng: &dyn SecureRandom) -> Result<bool, HandshakeError> {
        if !self.wants() {
            return Ok(false);
        }
        let pair = KeyPair::generate(rng)?;
        let mut inner = self.inner();
        inner.made += 1;
        // Only the one filler adds pairs, and nothing else raises pairs + lent, so the pool
        // is still short here.
        inner.pairs.push(pair);
        Ok(true)
    }

    /// The filler thread's loop: sleeps until the pool is short, then [`Self::refill_one`].
    /// Returns only if the generator fails; the caller logs it, and handshakes then compute
    /// their own pairs.
    pub fn fill(&self, rng: &dyn SecureRandom) -> HandshakeError {
        loop {
            {
                let mut inner = self.inner();
                while !inner.short() {
                    inner = self.spent.wait(inner).unwrap_or_else(|p| p.into_inner());
                }
            }
            if let Err(e) = self.refill_one(rng) {
                return e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    /// The filler fills the pool, then sleeps; it refills exactly what was spent (taken or
    /// consumed), and never what is only lent.
    #[test]
    fn filler_refills_what_was_spent_and_nothing_lent() {
        let pool = Arc::new(KeyPool::new());
        let p = pool.clone();
        std::thread::spawn(move || p.fill(&SystemRandom::new()));
        let settle = |made: u64| {
            let t0 = std::time::Instant::now();
            while pool.made() < made || pool.len() + pool.inner().lent < KEY_POOL {
                assert!(t0.elapsed() < std::time::Duration::from_secs(10), "filler stalled at {}", pool.made());
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        settle(KEY_POOL as u64);
        assert!(pool.take().is_some() && pool.take().is_some());
        settle(KEY_POOL as u64 + 2);
        let lent: Vec<Lent> = std::iter::from_fn(|| pool.lend()).collect();
        lent.into_iter().take(3).for_each(|l| {
            l.consume();
        });
        settle(KEY_POOL as u64 + 5);
        let lent: Vec<Lent> = std::iter::from_fn(|| pool.lend()).collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(pool.made(), KEY_POOL as u64 + 5, "lent pairs were refilled");
        drop(lent);
        assert_eq!(pool.len(), KEY_POOL);
    }

    #[test]
    fn refills_up_to_the_limit_and_no_further() {
        let pool = KeyPool::new();
        let rng = SystemRandom::new();
        for _ in 0..KEY_POOL {
            assert!(pool.refill_one(&rng).unwrap());
        }
        assert_eq!(pool.len(), KEY_POOL);
        assert!(!pool.wants());
        assert!(!pool.refill_one(&rng).unwrap(), "a full pool does no work");
        assert!(pool.take().is_some());
        assert!(pool.wants(), "a taken pair is refilled");
    }

    /// Borrowing every pair and giving them all back (what a flood of peers without the key
    /// does) leaves the pool full and never asks for a refill; a consumed pair is refilled.
    #[test]
    fn lent_pairs_come_back_and_are_never_refilled_while_out() {
        let pool = Arc::new(KeyPool::new());
        let rng = SystemRandom::new();
        while pool.refill_one(&rng).unwrap() {}
        let lent: Vec<Lent> = std::iter::from_fn(|| pool.lend()).collect();
        assert_eq!(lent.len(), KEY_POOL);
        assert!(pool.is_empty());
        assert!(!pool.wants(), "pairs out on loan are not refilled");
        assert!(!pool.refill_one(&rng).unwrap());
        let publics: Vec<_> = lent.iter().map(Lent::public).collect();
        drop(lent);
        assert_eq!(pool.len(), KEY_POOL, "dropped loans go back");
        assert!(!pool.wants());
        let l = pool.lend().unwrap();
        assert!(publics.contains(&l.public()));
        let pair = l.consume();
        assert_eq!(public_key(&pair.private).unwrap(), pair.public);
        assert_eq!(pool.len(), KEY_POOL - 1);
        assert!(pool.wants(), "a consumed loan is refilled");
    }

    #[test]
    fn pairs_are_distinct_and_public_halves_match_their_private_keys() {
        let pool = KeyPool::new();
        let rng = SystemRandom::new();
        pool.refill_one(&rng).unwrap();
        pool.refill_one(&rng).unwrap();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_ne!(a.public, b.public);
        assert_eq!(public_key(&a.private).unwrap(), a.public);
        assert_eq!(public_key(&b.private).unwrap(), b.public);
    }
}

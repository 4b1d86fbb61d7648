//! The per-lcore connection table: 5-tuple → backend, state and last-seen time.
//!
//! Contract:
//! - One table per lcore, owned by its [`crate::pipeline::Pipeline`]: no locks, no atomics, and
//!   no allocation after [`ConnTable::new`]. Time is passed in (`now_ns`, any monotonic clock).
//! - **Layout**: open addressing over buckets of [`WAYS`] = 8 slots. A bucket's hot data is one
//!   cache line in its own array: 8 tags (32-bit hash fingerprints, 0 = free) and 8 metadata
//!   words (state and last-seen tick). A lookup reads that line and, on a tag match, the one
//!   56-byte entry holding the full key and backend; an insert into a full bucket (a new-flow
//!   flood against a full table) chooses its victim from the line alone and writes one entry,
//!   instead of reading all 8 entries. Cost: [`BYTES_PER_ENTRY`] = 64 bytes per tracked flow
//!   (56 entry + 8 in the bucket line), v4 and v6 alike (v4 addresses are stored IPv4-mapped).
//!   The bucket count is a power of two ≥ capacity / 8.
//! - **Identity, not index**: an entry stores the backend's address (stable across config
//!   reloads) and, as a cache, its index in the snapshot that resolved it. The pipeline checks
//!   the cached index against the current snapshot and re-resolves by address when a reload
//!   moved it; a flow whose backend is gone goes to the new Maglev choice.
//! - **New entries** only for a TCP SYN without ACK or any UDP packet (the pipeline's gate). A
//!   TCP packet without an entry is not inserted (Katran): it goes to the Maglev choice, which
//!   is what keeps most connections alive when a load balancer restarts or ECMP reshuffles.
//! - **States and idle timeouts** ([`Timeouts`]): `Syn` (until the client's first non-SYN
//!   packet), `Established`, `Closing` (after a FIN or RST: short timeout, port reuse safe:
//!   a SYN on a closing entry starts it over in `Syn`, and the pipeline schedules it afresh),
//!   `Udp`. An entry idle longer than its state's timeout is dead: lookups ignore it, inserts
//!   reuse it, [`ConnTable::expire`] frees it incrementally.
//! - **Flood resistance**: when a bucket is full, a new flow may only replace an expired entry
//!   or the oldest entry still in `Syn` state — never an `Established`, `Closing` or `Udp` one.
//!   If none is replaceable the insert fails ([`Insert::Full`]); the pipeline then forwards the
//!   packet by its Maglev choice untracked and counts it (a full table degrades to stateless
//!   consistent hashing, like Katran under flood, instead of dropping).
//! - **Time** is kept in ticks of 2^22 ns (≈ 4.2 ms; timeouts are whole seconds); a slot keeps
//!   the low 29 bits of its last-seen tick next to its 3-bit state, and ages are computed with
//!   wrapping subtraction modulo 2^29 ticks (≈ 26 days), longer than any timeout
//!   (`limits::MAX_TIMEOUT_SECS`, 7 days). `expire` sweeps the whole table far more often than
//!   that, so an entry can never alias.

use std::net::IpAddr;
use std::ops::Range;

use crate::maglev::{Hash64, SEED_FLOW};
use crate::pipeline::Prefetch;

/// Slots per bucket: 8 tags and 8 metadata words of 4 bytes = one 64-byte cache line.
pub const WAYS: usize = 8;

/// Memory per tracked flow: a 56-byte entry plus its share (8 bytes) of the bucket line.
pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<Bucket>() / WAYS;

/// Smallest table (one bucket).
pub const MIN_CAPACITY: usize = WAYS;

/// Largest table per lcore: 2^27 entries = 8 GiB at 64 B each.
pub const MAX_CAPACITY: usize = 1 << 27;

/// log2 of the tick length in nanoseconds.
const TICK_SHIFT: u32 = 22;

/// Converts a monotonic time in nanoseconds to table ticks.
#[inline]
pub fn ticks(now_ns: u64) -> u32 {
    (now_ns >> TICK_SHIFT) as u32
}

/// Converts seconds to ticks (saturating at 2^28 ticks, ≈ 13 days, so that ages modulo 2^29
/// stay comparable with every timeout).
fn secs_to_ticks(secs: u32) -> u32 {
    let t = (u64::from(secs) * 1_000_000_000) >> TICK_SHIFT;
    t.min(1 << 28) as u32
}

/// A flow's 5-tuple as seen from the client: source = client, destination = VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address (IPv4-mapped for IPv4).
    pub src: [u8; 16],
    /// VIP (IPv4-mapped for IPv4).
    pub dst: [u8; 16],
    /// Client port (0 for protocols without ports).
    pub sport: u16,
    /// VIP port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// True for an IPv6 flow (keeps a v6 flow with v4-mapped addresses distinct).
    pub v6: bool,
}

impl FlowKey {
    /// A key from addresses of one family.
    pub fn new(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> FlowKey {
        FlowKey {
            src: crate::maglev::backend_key(src),
            dst: crate::maglev::backend_key(dst),
            sport,
            dport,
            proto,
            v6: src.is_ipv6(),
        }
    }

    /// The flow hash: [`hash64`](crate::maglev::hash64) with [`SEED_FLOW`] over the key's 38
    /// bytes `src ‖ dst ‖ sport (BE) ‖ dport (BE) ‖ proto ‖ v6`. Used both for the Maglev slot
    /// and for the table bucket and tag. Computed word by word ([`Hash64`]), the same value
    /// without building the byte string (it runs for every packet; a test pins the equality).
    #[inline]
    pub fn hash(&self) -> u64 {
        const START: Hash64 = Hash64::start(SEED_FLOW, FLOW_KEY_BYTES);
        let (src, dst) = (u128::from_le_bytes(self.src), u128::from_le_bytes(self.dst));
        let ports = u64::from(u16::from_le_bytes(self.sport.to_be_bytes())) | u64::from(u16::from_le_bytes(self.dport.to_be_bytes())) << 16;
        let tail = ports | u64::from(self.proto) << 32 | u64::from(self.v6) << 40;
        START.word(src as u64).word((src >> 64) as u64).word(dst as u64).word((dst >> 64) as u64).word(tail).finish()
    }

    /// The key as the byte string [`Self::hash`] hashes.
    pub fn to_bytes(&self) -> [u8; FLOW_KEY_BYTES] {
        let mut b = [0u8; FLOW_KEY_BYTES];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32..34].copy_from_slice(&self.sport.to_be_bytes());
        b[34..36].copy_from_slice(&self.dport.to_be_bytes());
        b[36] = self.proto;
        b[37] = u8::from(self.v6);
        b
    }
}

/// Length of a flow key's byte form ([`FlowKey::to_bytes`]).
pub const FLOW_KEY_BYTES: usize = 38;

/// Connection state, as far as a one-directional (DSR) observer can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Slot unused.
    Free = 0,
    /// TCP: SYN seen, no other client packet yet.
    Syn = 1,
    /// TCP: the client sent a non-SYN packet after its SYN.
    Established = 2,
    /// TCP: FIN or RST seen.
    Closing = 3,
    /// UDP: any packet.
    Udp = 4,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Syn,
            2 => State::Established,
            3 => State::Closing,
            4 => State::Udp,
            _ => State::Free,
        }
    }
}

/// Idle timeouts per state, in seconds (config `[conntrack]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `tcp_syn_timeout`.
    pub tcp_syn: u32,
    /// `tcp_established`.
    pub tcp_established: u32,
    /// `tcp_closing`.
    pub tcp_closing: u32,
    /// `udp`.
    pub udp: u32,
}

impl Default for Timeouts {
    /// 5 s SYN, 900 s established (IPVS: 15 min), 10 s closing, 30 s UDP (Katran).
    fn default() -> Self {
        Timeouts { tcp_syn: 5, tcp_established: 900, tcp_closing: 10, udp: 30 }
    }
}

/// Timeouts in ticks, indexed by `State as usize`.
#[derive(Clone, Copy, Debug)]
struct TickTimeouts([u32; 5]);

impl From<Timeouts> for TickTimeouts {
    fn from(t: Timeouts) -> Self {
        TickTimeouts([
            0,
            secs_to_ticks(t.tcp_syn),
            secs_to_ticks(t.tcp_established),
            secs_to_ticks(t.tcp_closing),
            secs_to_ticks(t.udp),
        ])
    }
}

/// TCP flags the table cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSignal {
    /// SYN set.
    pub syn: bool,
    /// ACK set.
    pub ack: bool,
    /// FIN set.
    pub fin: bool,
    /// RST set.
    pub rst: bool,
}

/// One tracked flow's key and backend: 56 bytes (see [`BYTES_PER_ENTRY`]). Its state and
/// last-seen time live in its bucket's line ([`Bucket::meta`]), so deciding whether a slot is
/// live, expired or evictable never reads the entry.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Entry {
    src: [u8; 16],
    dst: [u8; 16],
    backend: [u8; 16],
    sport: u16,
    dport: u16,
    backend_index: u16,
    proto: u8,
    v6: bool,
}

const EMPTY: Entry = Entry { src: [0; 16], dst: [0; 16], backend: [0; 16], sport: 0, dport: 0, backend_index: 0, proto: 0, v6: false };

impl Entry {
    #[inline]
    fn matches(&self, k: &FlowKey) -> bool {
        self.sport == k.sport && self.dport == k.dport && self.proto == k.proto && self.v6 == k.v6 && self.src == k.src && self.dst == k.dst
    }
}

/// Bits of [`Bucket::meta`] that hold the [`State`]; the rest is the last-seen tick.
const STATE_BITS: u32 = 3;
const STATE_MASK: u32 = (1 << STATE_BITS) - 1;

/// A slot's metadata word: last-seen tick (its low 29 bits) above the state.
#[inline]
fn meta(state: State, now: u32) -> u32 {
    now << STATE_BITS | state as u32
}

#[inline]
fn meta_state(m: u32) -> State {
    State::from_u8((m & STATE_MASK) as u8)
}

/// Ticks since the slot was last seen, modulo 2^29 (see the module docs on time).
#[inline]
fn meta_age(m: u32, now: u32) -> u32 {
    (now << STATE_BITS).wrapping_sub(m & !STATE_MASK) >> STATE_BITS
}

/// One bucket's hot line, exactly one cache line: the tags (32-bit hash fingerprints, 0 = free)
/// and the metadata (state, last seen) of its [`WAYS`] slots. A lookup reads this line and, on a
/// tag match, the one entry; an insert into a full bucket picks its victim from this line alone.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u32; WAYS],
    meta: [u32; WAYS],
}

const EMPTY_BUCKET: Bucket = Bucket { tags: [0; WAYS], meta: [0; WAYS] };

/// A live flow found by [`ConnTable::lookup`]: its entry and its metadata word.
#[derive(Debug)]
pub struct EntryMut<'a> {
    entry: &'a mut Entry,
    meta: &'a mut u32,
}

impl EntryMut<'_> {
    /// The connection state.
    pub fn state(&self) -> State {
        meta_state(*self.meta)
    }

    /// The backend's stable identity (address as [`crate::maglev::backend_key`]).
    pub fn backend(&self) -> [u8; 16] {
        self.entry.backend
    }

    /// The backend's index in the snapshot that last resolved it (a cache: verify it).
    pub fn backend_index(&self) -> u16 {
        self.entry.backend_index
    }

    /// Points the flow at another backend (after a reload removed or moved its backend).
    pub fn set_backend(&mut self, backend: [u8; 16], index: u16) {
        self.entry.backend = backend;
        self.entry.backend_index = index;
    }

    /// Records a packet of this flow at `now` and advances the state machine: a non-SYN TCP
    /// packet after the SYN establishes, FIN or RST moves to `Closing`, a new SYN on a closing
    /// entry (port reuse) starts over in `Syn`.
    pub fn update(&mut self, tcp: Option<TcpSignal>, now_ns: u64) {
        let state = self.state();
        let next = match tcp {
            None => state,
            Some(f) => match state {
                _ if f.rst || f.fin => State::Closing,
                State::Closing if f.syn && !f.ack => State::Syn,
                State::Syn if !f.syn => State::Established,
                s => s,
            },
        };
        *self.meta = meta(next, ticks(now_ns));
    }
}

/// What [`ConnTable::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Stored in a free or expired slot.
    Inserted,
    /// Stored over the oldest SYN-state entry of a full bucket.
    EvictedSyn,
    /// Bucket full of live non-SYN entries: not stored (forward untracked).
    Full,
}

/// `n` copies of `fill` in a new allocation whose address range `advise` sees before the
/// first write.
fn filled<T: Copy>(n: usize, fill: T, advise: &mut impl FnMut(Range<usize>)) -> Box<[T]> {
    let mut v = Vec::with_capacity(n);
    let spare = v.spare_capacity_mut();
    let start = spare.as_ptr() as usize;
    advise(start..start + std::mem::size_of_val(spare));
    v.resize(n, fill);
    v.into_boxed_slice()
}

/// The connection table (see the module docs).
#[derive(Debug)]
pub struct ConnTable {
    buckets: Box<[Bucket]>,
    entries: Box<[Entry]>,
    mask: usize,
    timeouts: TickTimeouts,
    live: usize,
    cursor: usize,
    /// Time up to which [`ConnTable::expire_paced`] has examined its share of slots.
    swept_to_ns: u64,
}

/// How long one full sweep of [`ConnTable::expire_paced`] over the table takes: every slot is
/// examined once per second. Timeouts are whole seconds, and an expired entry is dead to
/// lookups and free for inserts before it is swept, so this only bounds how long the `entries`
/// gauge counts the dead. Unpaced, a fixed budget per lcore loop swept a 1 M-slot table several
/// hundred times a second on an idle lcore (8 MiB of bucket lines each time), evicting the hot
/// flows' lines between two packets.
pub const EXPIRE_SWEEP_NS: u64 = 1_000_000_000;

impl ConnTable {
    /// A table for at least `capacity` flows (rounded up to a power-of-two number of buckets of
    /// [`WAYS`]; clamped to [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]). Allocates
    /// `capacity() * BYTES_PER_ENTRY` bytes now and never again.
    pub fn new(capacity: usize, timeouts: Timeouts) -> ConnTable {
        Self::with_advice(capacity, timeouts, |_| {})
    }

    /// [`ConnTable::new`], but `advise` first sees the address range of each of the two arrays,
    /// allocated and not yet written, so the caller can ask the kernel for huge pages there
    /// (the runtime does: a table of millions of flows touched at random misses the TLB on
    /// almost every packet with 4 KiB pages). Both arrays are then written in full, so every
    /// page is faulted in here, never on the packet path.
    pub fn with_advice(capacity: usize, timeouts: Timeouts, mut advise: impl FnMut(Range<usize>)) -> ConnTable {
        let cap = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        let buckets = cap.div_ceil(WAYS).next_power_of_two();
        ConnTable {
            buckets: filled(buckets, EMPTY_BUCKET, &mut advise),
            entries: filled(buckets * WAYS, EMPTY, &mut advise),
            mask: buckets - 1,
            timeouts: timeouts.into(),
            live: 0,
            cursor: 0,
            swept_to_ns: 0,
        }
    }

    /// Changes the idle timeouts (on a config reload); applies to every entry from now on.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts.into();
    }

    /// Number of entry slots.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes the table holds (entries + bucket lines).
    pub fn memory_bytes(&self) -> usize {
        self.capacity() * BYTES_PER_ENTRY
    }

    /// Slots in use (live or expired but not yet reclaimed).
    pub fn len(&self) -> usize {
        self.live
    }

    /// No slot in use.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    #[inline]
    fn split(&self, hash: u64) -> (usize, u32) {
        ((hash as usize) & self.mask, ((hash >> 32) as u32) | 1)
    }

    /// Prefetches the line of `hash`'s bucket (pass 1 of
    /// [`crate::pipeline::Pipeline::process_burst_with`]).
    #[inline]
    pub fn prefetch_bucket<P: Prefetch>(&self, hash: u64, p: &P) {
        p.prefetch(&self.buckets[self.split(hash).0]);
    }

    /// Prefetches the entry whose tag matches `key`'s, if any (pass 2: the bucket line should be
    /// in cache by now), and says whether there was one. An entry is 56 bytes at a 2-byte
    /// alignment, so it may straddle two lines: both ends are prefetched.
    #[inline]
    pub fn prefetch_entry<P: Prefetch>(&self, hash: u64, p: &P) -> bool {
        let (b, tag) = self.split(hash);
        match self.buckets[b].tags.iter().position(|&t| t == tag) {
            Some(w) => {
                let e = &self.entries[b * WAYS + w];
                p.prefetch(&e.src);
                p.prefetch(&e.v6);
                true
            }
            None => false,
        }
    }

    /// Whether a slot with metadata `m` has been idle longer than its state's timeout.
    #[inline]
    fn expired(&self, m: u32, now: u32) -> bool {
        meta_age(m, now) > self.timeouts.0[meta_state(m) as usize]
    }

    /// The live entry for `key` (whose [`FlowKey::hash`] is `hash`), if any. Does not update
    /// it: call [`EntryMut::update`] once the packet is going to be forwarded.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64, now_ns: u64) -> Option<EntryMut<'_>> {
        let (b, tag) = self.split(hash);
        let now = ticks(now_ns);
        let w = (0..WAYS).find(|&w| self.buckets[b].tags[w] == tag && self.entries[b * WAYS + w].matches(key))?;
        if self.expired(self.buckets[b].meta[w], now) {
            return None;
        }
        Some(EntryMut { entry: &mut self.entries[b * WAYS + w], meta: &mut self.buckets[b].meta[w] })
    }

    /// Stores a new flow (see the module docs for which slot it may take). `state` is `Syn` for
    /// a TCP SYN and `Udp` for UDP. Decides from the bucket line alone; writes one entry.
    pub fn insert(&mut self, key: &FlowKey, hash: u64, state: State, backend: [u8; 16], backend_index: u16, now_ns: u64) -> Insert {
        let (b, tag) = self.split(hash);
        let now = ticks(now_ns);
        let bucket = &self.buckets[b];
        let mut free = None;
        let mut same = None;
        let mut oldest_syn: Option<(usize, u32)> = None;
        for w in 0..WAYS {
            let (t, m) = (bucket.tags[w], bucket.meta[w]);
            if t == 0 {
                free.get_or_insert(w);
                continue;
            }
            if t == tag && self.entries[b * WAYS + w].matches(key) {
                // A stale (expired) entry of the same flow: reuse its slot.
                same = Some(w);
                break;
            }
            if self.expired(m, now) {
                free.get_or_insert(w);
            } else if meta_state(m) == State::Syn {
                let age = meta_age(m, now);
                if oldest_syn.is_none_or(|(_, a)| age > a) {
                    oldest_syn = Some((w, age));
                }
            }
        }
        let (w, outcome) = match (same, free, oldest_syn) {
            (Some(w), _, _) | (None, Some(w), _) => (w, Insert::Inserted),
            (None, None, Some((w, _))) => (w, Insert::EvictedSyn),
            (None, None, None) => return Insert::Full,
        };
        let bucket = &mut self.buckets[b];
        if bucket.tags[w] == 0 {
            self.live += 1;
        }
        bucket.tags[w] = tag;
        bucket.meta[w] = meta(state, now);
        self.entries[b * WAYS + w] = Entry {
            src: key.src,
            dst: key.dst,
            backend,
            sport: key.sport,
            dport: key.dport,
            backend_index,
            proto: key.proto,
            v6: key.v6,
        };
        outcome
    }

    /// [`ConnTable::expire`] at the pace of one full sweep per [`EXPIRE_SWEEP_NS`]: examines the
    /// slots due since the last call (at most `max`, and never more than one sweep's worth
    /// after a long pause). Most calls of a busy-polling loop find nothing due and return at
    /// once. Returns how many entries were freed.
    pub fn expire_paced(&mut self, now_ns: u64, max: usize) -> usize {
        let n = self.entries.len() as u128;
        let behind = now_ns.saturating_sub(self.swept_to_ns).min(EXPIRE_SWEEP_NS);
        // Nothing due (most calls): decided by a multiply, without the 128-bit division below
        // (a library call, about 1 % of a busy lcore's samples when made on every iteration).
        if u128::from(behind) * n < u128::from(EXPIRE_SWEEP_NS) {
            return 0;
        }
        let due = (u128::from(behind) * n / u128::from(EXPIRE_SWEEP_NS)) as usize;
        let k = due.min(max);
        if k == 0 {
            return 0;
        }
        // Account exactly the time worth the slots examined: the remainder stays owed.
        let worth = (k as u128 * u128::from(EXPIRE_SWEEP_NS)).div_ceil(n) as u64;
        self.swept_to_ns = now_ns - behind + worth.min(behind);
        self.expire(now_ns, k)
    }

    /// Frees expired entries, examining at most `budget` slots from where the last call
    /// stopped. Returns how many were freed. Reads only bucket lines.
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let now = ticks(now_ns);
        let n = self.entries.len();
        // n = buckets x WAYS, both powers of two: wrap with a mask, not a division per slot.
        let wrap = n - 1;
        let mut freed = 0;
        for _ in 0..budget.min(n) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) & wrap;
            let (b, w) = (i / WAYS, i % WAYS);
            let (t, m) = (self.buckets[b].tags[w], self.buckets[b].meta[w]);
            if t != 0 && self.expired(m, now) {
                self.buckets[b].tags[w] = 0;
                self.buckets[b].meta[w] = 0;
                self.live -= 1;
                freed += 1;
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const S: u64 = 1_000_000_000;

    /// The word-by-word flow hash is `hash64` over the key's byte form, for IPv4 and IPv6 keys
    /// and ports whose two bytes differ (a swapped byte order would show).
    #[test]
    fn flow_hash_is_hash64_of_the_key_bytes() {
        let keys = [
            FlowKey::new("198.18.0.1".parse().unwrap(), "198.18.100.1".parse().unwrap(), 0x1234, 80, 6),
            FlowKey::new("2001:db8::1".parse().unwrap(), "2001:db8::100".parse().unwrap(), 0xfe01, 0x0203, 17),
            FlowKey::new("0.0.0.0".parse().unwrap(), "255.255.255.255".parse().unwrap(), 0, 65535, 255),
        ];
        for k in keys {
            assert_eq!(k.hash(), crate::maglev::hash64(SEED_FLOW, &k.to_bytes()), "{k:?}");
        }
    }

    fn key(i: u32) -> FlowKey {
        FlowKey::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)), 40000, 80, 6)
    }

    fn be(n: u8) -> [u8; 16] {
        [n; 16]
    }

    const SYN: Option<TcpSignal> = Some(TcpSignal { syn: true, ack: false, fin: false, rst: false });
    const ACK: Option<TcpSignal> = Some(TcpSignal { syn: false, ack: true, fin: false, rst: false });
    const FIN: Option<TcpSignal> = Some(TcpSignal { syn: false, ack: true, fin: true, rst: false });
    const RST: Option<TcpSignal> = Some(TcpSignal { syn: false, ack: false, fin: false, rst: true });

    /// A slot keeps 29 bits of its last-seen tick: ages are right across the point where those
    /// bits wrap (a flow seen just before it is alive just after and dies on time), and the
    /// longest allowed timeout (7 days) still fits the wrap horizon.
    #[test]
    fn ages_survive_the_tick_wrap() {
        let wrap_ns = (1u64 << (29 + TICK_SHIFT)) * 3; // the third time the 29 bits wrap
        let mut t = ConnTable::new(64, Timeouts::default());
        let k = key(1);
        t.insert(&k, k.hash(), State::Udp, be(1), 0, wrap_ns - S / 2);
        assert!(t.lookup(&k, k.hash(), wrap_ns + 2 * S).is_some(), "alive 2.5 s later, across the wrap");
        assert!(t.lookup(&k, k.hash(), wrap_ns + 29 * S).is_some(), "UDP lives 30 s");
        assert!(t.lookup(&k, k.hash(), wrap_ns + 31 * S).is_none(), "dead after 30 s");
        let week = secs_to_ticks(crate::limits::MAX_TIMEOUT_SECS);
        assert!(week < 1 << 28, "7 days = {week} ticks must stay below half the wrap");
    }

    /// Layout: 64 bytes per tracked flow (a 56-byte entry and 8 bytes of its bucket's one
    /// cache line), capacity rounded up to whole power-of-two buckets.
    #[test]
    fn capacity_math() {
        assert_eq!(std::mem::size_of::<Entry>(), 56);
        assert_eq!((std::mem::size_of::<Bucket>(), std::mem::align_of::<Bucket>()), (64, 64));
        assert_eq!(BYTES_PER_ENTRY, 64);
        let t = ConnTable::new(1_048_576, Timeouts::default());
        assert_eq!(t.capacity(), 1_048_576);
        assert_eq!(t.memory_bytes(), 64 << 20);
        assert_eq!(ConnTable::new(1000, Timeouts::default()).capacity(), 1024);
        assert_eq!(ConnTable::new(0, Timeouts::default()).capacity(), WAYS);
    }

    /// An inserted flow is found with its backend; another flow is not.
    #[test]
    fn insert_then_hit() {
        let mut t = ConnTable::new(64, Timeouts::default());
        let k = key(1);
        assert_eq!(t.insert(&k, k.hash(), State::Syn, be(7), 3, 0), Insert::Inserted);
        let e = t.lookup(&k, k.hash(), S).unwrap();
        assert_eq!((e.backend(), e.backend_index(), e.state()), (be(7), 3, State::Syn));
        assert!(t.lookup(&key(2), key(2).hash(), S).is_none());
        // A v6 key with the same bytes is a different flow.
        let k6 = FlowKey { v6: true, ..k };
        assert!(t.lookup(&k6, k6.hash(), S).is_none());
        assert_eq!(t.len(), 1);
    }

    /// Each state has its own idle timeout: SYN 5 s, established 900 s, closing 10 s, UDP 30 s.
    #[test]
    fn timeouts_per_state() {
        let mut t = ConnTable::new(64, Timeouts::default());
        let cases = [(State::Syn, 5u64), (State::Udp, 30)];
        for (i, (st, secs)) in cases.iter().enumerate() {
            let k = key(100 + i as u32);
            t.insert(&k, k.hash(), *st, be(1), 0, 0);
            assert!(t.lookup(&k, k.hash(), secs * S - S / 10).is_some(), "{st:?} alive just before");
            assert!(t.lookup(&k, k.hash(), secs * S + S / 10).is_none(), "{st:?} dead just after");
        }
        let k = key(1);
        t.insert(&k, k.hash(), State::Syn, be(1), 0, 0);
        t.lookup(&k, k.hash(), S).unwrap().update(ACK, S);
        assert_eq!(t.lookup(&k, k.hash(), 2 * S).unwrap().state(), State::Established);
        assert!(t.lookup(&k, k.hash(), 800 * S).is_some(), "established lives 900 s");
        assert!(t.lookup(&k, k.hash(), 902 * S).is_none());
    }

    /// FIN and RST shorten an established flow's life to the closing timeout; a new SYN on a
    /// closing entry starts over.
    #[test]
    fn fin_and_rst_shorten() {
        for sig in [FIN, RST] {
            let mut t = ConnTable::new(64, Timeouts::default());
            let k = key(5);
            t.insert(&k, k.hash(), State::Syn, be(1), 0, 0);
            t.lookup(&k, k.hash(), S).unwrap().update(ACK, S);
            t.lookup(&k, k.hash(), 100 * S).unwrap().update(sig, 100 * S);
            let e = t.lookup(&k, k.hash(), 105 * S).unwrap();
            assert_eq!(e.state(), State::Closing);
            assert!(t.lookup(&k, k.hash(), 111 * S).is_none(), "closing timeout 10 s");
        }
        let mut t = ConnTable::new(64, Timeouts::default());
        let k = key(6);
        t.insert(&k, k.hash(), State::Syn, be(1), 0, 0);
        t.lookup(&k, k.hash(), S).unwrap().update(FIN, S);
        t.lookup(&k, k.hash(), 2 * S).unwrap().update(SYN, 2 * S);
        assert_eq!(t.lookup(&k, k.hash(), 3 * S).unwrap().state(), State::Syn);
    }

    /// A SYN flood against a table full of established flows evicts none of them: inserts fail
    /// (`Full`) and every established flow still hits. SYN entries are the only victims.
    #[test]
    fn syn_flood_does_not_evict_established() {
        let mut t = ConnTable::new(1024, Timeouts::default());
        let mut established = Vec::new();
        let mut i = 0u32;
        // Fill until no insert succeeds any more for a long run.
        let mut fails = 0;
        while fails < 10_000 {
            let k = key(i);
            i += 1;
            if t.insert(&k, k.hash(), State::Syn, be(1), 0, 0) == Insert::Inserted {
                t.lookup(&k, k.hash(), 0).unwrap().update(ACK, 0);
                established.push(k);
                fails = 0;
            } else {
                fails += 1;
            }
        }
        assert_eq!(t.len(), t.capacity(), "table is full");
        let mut full = 0;
        for j in 0..100_000u32 {
            let k = key(10_000_000 + j);
            let r = t.insert(&k, k.hash(), State::Syn, be(2), 1, S);
            assert_ne!(r, Insert::EvictedSyn, "no SYN entries to evict yet");
            if r == Insert::Full {
                full += 1;
            }
        }
        assert_eq!(full, 100_000);
        for k in &established {
            let e = t.lookup(k, k.hash(), 2 * S).expect("established flow survived the flood");
            assert_eq!(e.backend(), be(1));
        }
    }

    /// In a bucket full of SYN entries, a new SYN replaces the oldest one.
    #[test]
    fn syn_replaces_oldest_syn() {
        let mut t = ConnTable::new(WAYS, Timeouts::default());
        let keys: Vec<FlowKey> = (0..WAYS as u32).map(key).collect();
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(t.insert(k, k.hash(), State::Syn, be(1), 0, n as u64 * S / 10), Insert::Inserted);
        }
        let k = key(999);
        assert_eq!(t.insert(&k, k.hash(), State::Syn, be(2), 0, S), Insert::EvictedSyn);
        assert!(t.lookup(&keys[0], keys[0].hash(), S).is_none(), "oldest SYN evicted");
        assert!(t.lookup(&keys[1], keys[1].hash(), S).is_some());
        assert!(t.lookup(&k, k.hash(), S).is_some());
    }

    /// `expire` frees dead entries incrementally, within its budget, and leaves live ones.
    #[test]
    fn expire_is_incremental() {
        let mut t = ConnTable::new(64, Timeouts::default());
        for i in 0..10 {
            let k = key(i);
            t.insert(&k, k.hash(), if i < 5 { State::Syn } else { State::Udp }, be(1), 0, 0);
        }
        assert_eq!(t.len(), 10);
        let mut freed = 0;
        for _ in 0..8 {
            freed += t.expire(10 * S, 8);
        }
        assert_eq!(freed, 5, "the five SYN entries died at 5 s; UDP lives 30 s");
        assert_eq!(t.len(), 5);
        assert_eq!(t.expire(10 * S, 3), 0);
        assert_eq!(t.expire(100 * S, 64), 5);
        assert!(t.is_empty());
    }

    /// `expire_paced` examines `capacity` slots per second of time passed, however often it is
    /// called: a loop calling it every 100 ns examines nothing on most calls, and one full
    /// sweep (every dead entry freed) takes one `EXPIRE_SWEEP_NS`. After a long pause it owes
    /// one sweep at most, handed out `max` slots per call.
    #[test]
    fn paced_expiry_sweeps_once_per_period() {
        let mut t = ConnTable::new(1024, Timeouts::default());
        for i in 0..100 {
            let k = key(i);
            t.insert(&k, k.hash(), State::Syn, be(1), 0, 0);
        }
        let start = 10 * S; // the SYN entries died at 5 s
        t.swept_to_ns = start;
        let (mut freed, mut calls_with_work, mut now) = (0, 0, start);
        let mut examined_by_half = 0;
        while now < start + S {
            now += 100;
            let before = t.cursor;
            freed += t.expire_paced(now, 64);
            calls_with_work += usize::from(t.cursor != before);
            if now == start + S / 2 {
                examined_by_half = t.cursor;
            }
        }
        assert_eq!(freed, 100, "one period sweeps the whole table");
        assert!((500..=513).contains(&examined_by_half), "half the table in half a period: {examined_by_half}");
        assert!(calls_with_work <= 1024, "{calls_with_work} of 10 M calls did any work");
        // A pause of a minute owes one sweep, not sixty; `max` bounds each call.
        for i in 0..100 {
            let k = key(i);
            t.insert(&k, k.hash(), State::Syn, be(1), 0, now);
        }
        let later = now + 60 * S;
        let first = t.cursor;
        t.expire_paced(later, 64);
        assert_eq!(t.cursor, (first + 64) % 1024, "at most max slots per call");
        let mut more = 64;
        while t.expire_paced(later, 64) > 0 || t.cursor != first {
            more += 64;
            assert!(more <= 1024, "more than one sweep handed out after a pause");
        }
        assert_eq!((more, t.len()), (1024, 0));
        t.expire_paced(later, 64);
        assert_eq!(t.cursor, first, "nothing more is owed at the same instant");
    }
}

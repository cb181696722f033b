//! Bounded caches keyed by stripe id: in RAM, of decoded stripes and of anything else
//! derived from a stripe's bytes (the volume keeps the frame tables of compressed and
//! encrypted stripes in one); on a local directory ([`l2`]), of the stored form of
//! stripes. Owns the eviction policy, the byte bounds and the counters; knows nothing of
//! how a stripe is read or decoded (the volume calls in on its read paths).
//!
//! Stripes are immutable (a rewrite gets a new stripe id), so a cached value never goes
//! stale while the volume is open; entries leave to stay under the byte bound or when
//! their stripe is freed.
//!
//! # Policy: S3-FIFO by bytes
//!
//! The RAM cache is S3-FIFO (Yang et al., SOSP 2023), weighed in bytes: a small FIFO
//! queue (a tenth of the bound) takes new entries; one referenced again while there moves
//! to the main FIFO queue on its way out, one that was not leaves and its id goes to a
//! ghost queue (ids and weights only, as many bytes as the main queue holds); an entry
//! whose id is in the ghost queue when it comes back goes straight to the main queue. The
//! main queue gives an entry referenced since its last pass (a frequency of up to 3)
//! another round instead of evicting it. So a scan that reads each stripe once passes
//! through the small queue and leaves the hot entries of the main queue alone, where
//! FIFO and LRU let it push out everything (PERFORMANCE.md, "Cache policy").
//!
//! A reference is a read, not a lookup: the requests of one sequential read of a stripe
//! (a 1 MiB stripe comes as eight 128 KiB requests before the kernel's read-ahead grows)
//! would otherwise count as eight references and promote every stripe of a scan. A
//! lookup given the part of the stripe it reads ([`Touch`]) is taken as the same
//! reference as the one before it when it starts where that one ended.

pub mod l2;

use crate::types::StripeId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Decoded stripe plaintext, shared with readers without copying.
pub type Plain = Arc<Vec<u8>>;

/// What a cached value counts against the cache's byte bound.
pub trait Weigh {
    /// Bytes the value holds.
    fn weight_bytes(&self) -> usize;
}

impl Weigh for Vec<u8> {
    fn weight_bytes(&self) -> usize {
        self.len()
    }
}

/// The part of a stripe one read covers (byte offsets into the stripe's plain bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// First byte read.
    pub from: usize,
    /// One past the last byte read.
    pub end: usize,
}

impl Touch {
    /// `len` bytes at `from`.
    pub fn at(from: usize, len: usize) -> Touch {
        Touch {
            from,
            end: from + len,
        }
    }
}

/// Share of the byte bound given to the small queue, in tenths (S3-FIFO's 10 %).
const SMALL_TENTHS: usize = 1;
/// Highest frequency an entry of the main queue counts (S3-FIFO's 3): the rounds it
/// survives without being referenced again.
const MAX_FREQ: u8 = 3;

/// Counters and sizes of a [`StripeCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups that found their stripe.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries dropped to stay within the bound (not those of freed stripes).
    pub evictions: u64,
    /// Bytes of values inserted.
    pub inserted_bytes: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Entries held now.
    pub entries: u64,
    /// The byte bound.
    pub capacity_bytes: u64,
}

/// A bounded map from stripe id to a shared value: by default the stripe's plaintext.
pub struct StripeCache<V: Weigh = Vec<u8>> {
    capacity_bytes: usize,
    small_target: usize,
    inner: Mutex<Inner<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    inserted_bytes: AtomicU64,
}

struct Entry<V> {
    value: Arc<V>,
    weight: usize,
    /// References since insertion (small queue) or since the last pass (main queue).
    freq: u8,
    is_main: bool,
    /// Matches this entry's place in its queue (earlier places are stale).
    seq: u64,
    /// Where the last read of it ended, if it was given.
    last_end: Option<usize>,
}

/// An id that left the small queue unreferenced, or that a reader saw and did not
/// cache ([`StripeCache::is_wanted`]).
struct Ghost {
    weight: usize,
    seq: u64,
    last_end: Option<usize>,
}

struct Inner<V> {
    entries: HashMap<StripeId, Entry<V>>,
    small: VecDeque<(StripeId, u64)>,
    main: VecDeque<(StripeId, u64)>,
    small_bytes: usize,
    main_bytes: usize,
    ghosts: HashMap<StripeId, Ghost>,
    ghost_order: VecDeque<(StripeId, u64)>,
    ghost_bytes: usize,
    next_seq: u64,
}

/// Whether a read `touch` is a new reference after one that ended at `last_end`.
fn is_new_reference(last_end: Option<usize>, touch: Option<Touch>) -> bool {
    match (last_end, touch) {
        (Some(end), Some(touch)) => touch.from != end,
        _ => true,
    }
}

impl<V> Inner<V> {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn bytes(&self) -> usize {
        self.small_bytes + self.main_bytes
    }

    /// Remembers `id` as a ghost, dropping the oldest ghosts beyond `limit` bytes.
    fn add_ghost(&mut self, id: StripeId, weight: usize, last_end: Option<usize>, limit: usize) {
        if weight > limit {
            return;
        }
        let seq = self.seq();
        if let Some(old) = self.ghosts.insert(
            id,
            Ghost {
                weight,
                seq,
                last_end,
            },
        ) {
            self.ghost_bytes -= old.weight;
        }
        self.ghost_bytes += weight;
        self.ghost_order.push_back((id, seq));
        while self.ghost_bytes > limit {
            let Some((victim, seq)) = self.ghost_order.pop_front() else {
                break;
            };
            if self.ghosts.get(&victim).is_some_and(|g| g.seq == seq) {
                let gone = self.ghosts.remove(&victim).expect("just found");
                self.ghost_bytes -= gone.weight;
            }
        }
        if self.ghost_order.len() > 2 * self.ghosts.len() + 64 {
            let ghosts = &self.ghosts;
            self.ghost_order
                .retain(|(id, seq)| ghosts.get(id).is_some_and(|g| g.seq == *seq));
        }
    }

    fn remove_ghost(&mut self, id: StripeId) -> Option<Ghost> {
        let ghost = self.ghosts.remove(&id)?;
        self.ghost_bytes -= ghost.weight;
        Some(ghost)
    }

    /// Queues hold stale places of entries that moved or left; they are dropped as they
    /// come to the front, and all at once here when they outnumber the live ones.
    fn compact_queues(&mut self) {
        if self.small.len() + self.main.len() <= 2 * self.entries.len() + 64 {
            return;
        }
        let entries = &self.entries;
        let live = |is_main: bool| {
            move |(id, seq): &(StripeId, u64)| {
                entries
                    .get(id)
                    .is_some_and(|e| e.seq == *seq && e.is_main == is_main)
            }
        };
        self.small.retain(live(false));
        self.main.retain(live(true));
    }
}

impl<V: Weigh> StripeCache<V> {
    /// A cache holding at most `capacity_bytes` of values (0 disables it).
    pub fn new(capacity_bytes: usize) -> StripeCache<V> {
        StripeCache {
            capacity_bytes,
            small_target: capacity_bytes / 10 * SMALL_TENTHS,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                small: VecDeque::new(),
                main: VecDeque::new(),
                small_bytes: 0,
                main_bytes: 0,
                ghosts: HashMap::new(),
                ghost_order: VecDeque::new(),
                ghost_bytes: 0,
                next_seq: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            inserted_bytes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        // A panic elsewhere cannot leave the map inconsistent in a way that matters for a
        // cache, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The byte bound.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes the ghost queue may remember: as many as the main queue holds.
    fn ghost_limit(&self) -> usize {
        self.capacity_bytes - self.small_target
    }

    /// The cached value of `id`, counted as a new reference.
    pub fn get(&self, id: StripeId) -> Option<Arc<V>> {
        self.lookup(id, None)
    }

    /// The cached value of `id` for a read of `touch`: a new reference unless it goes on
    /// where the last read of the stripe ended.
    pub fn get_at(&self, id: StripeId, touch: Touch) -> Option<Arc<V>> {
        self.lookup(id, Some(touch))
    }

    fn lookup(&self, id: StripeId, touch: Option<Touch>) -> Option<Arc<V>> {
        let found = {
            let mut inner = self.lock();
            inner.entries.get_mut(&id).map(|entry| {
                if is_new_reference(entry.last_end, touch) {
                    entry.freq = (entry.freq + 1).min(MAX_FREQ);
                }
                entry.last_end = touch.map(|t| t.end);
                entry.value.clone()
            })
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether a value of `id`, not cached, is worth caching for a read of `touch` that
    /// would otherwise not make one (a copy costs the reader): yes when the stripe was
    /// read before, not long ago (its id is a ghost) and this read is a new reference.
    /// Otherwise the id is remembered as a ghost of `weight` bytes, so the next new
    /// reference answers yes: a stripe read once is never copied.
    pub fn is_wanted(&self, id: StripeId, weight: usize, touch: Touch) -> bool {
        let weight = weight.max(1);
        if self.capacity_bytes == 0 || weight > self.capacity_bytes {
            return false;
        }
        let mut inner = self.lock();
        if inner.entries.contains_key(&id) {
            return false;
        }
        if let Some(ghost) = inner.ghosts.get_mut(&id) {
            if is_new_reference(ghost.last_end, Some(touch)) {
                return true;
            }
            ghost.last_end = Some(touch.end);
            return false;
        }
        let limit = self.ghost_limit();
        inner.add_ghost(id, weight, Some(touch.end), limit);
        false
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> CacheStats {
        let (bytes, entries) = {
            let inner = self.lock();
            (inner.bytes(), inner.entries.len())
        };
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            inserted_bytes: self.inserted_bytes.load(Ordering::Relaxed),
            bytes: bytes as u64,
            entries: entries as u64,
            capacity_bytes: self.capacity_bytes as u64,
        }
    }

    /// Caches the value of `id` (counted as a new reference), evicting beyond the bound.
    pub fn insert(&self, id: StripeId, value: Arc<V>) {
        self.insert_touch(id, value, None);
    }

    /// Caches the value of `id` read for `touch`, evicting beyond the bound. It goes to
    /// the main queue when its id is a ghost and `touch` is a new reference, else to the
    /// small queue.
    pub fn insert_at(&self, id: StripeId, value: Arc<V>, touch: Touch) {
        self.insert_touch(id, value, Some(touch));
    }

    fn insert_touch(&self, id: StripeId, value: Arc<V>, touch: Option<Touch>) {
        // An empty value still takes a place: it weighs one byte, so their number is bounded.
        let weight = value.weight_bytes().max(1);
        if self.capacity_bytes == 0 || weight > self.capacity_bytes {
            // Too large to keep: an older value of the id must not stay in its place.
            self.remove(id);
            return;
        }
        self.inserted_bytes
            .fetch_add(weight as u64, Ordering::Relaxed);
        let mut inner = self.lock();
        let last_end = touch.map(|t| t.end);
        if let Some(entry) = inner.entries.get_mut(&id) {
            // Replaced in place (two readers decoded it at once): same queue, new weight.
            let old = std::mem::replace(&mut entry.weight, weight);
            entry.value = value;
            entry.last_end = last_end;
            if entry.is_main {
                inner.main_bytes = inner.main_bytes - old + weight;
            } else {
                inner.small_bytes = inner.small_bytes - old + weight;
            }
        } else {
            let is_main = inner
                .remove_ghost(id)
                .is_some_and(|g| is_new_reference(g.last_end, touch));
            let seq = inner.seq();
            inner.entries.insert(
                id,
                Entry {
                    value,
                    weight,
                    freq: 0,
                    is_main,
                    seq,
                    last_end,
                },
            );
            if is_main {
                inner.main.push_back((id, seq));
                inner.main_bytes += weight;
            } else {
                inner.small.push_back((id, seq));
                inner.small_bytes += weight;
            }
        }
        self.evict(&mut inner);
        inner.compact_queues();
    }

    /// Evicts until the bytes held fit the bound.
    fn evict(&self, inner: &mut Inner<V>) {
        while inner.bytes() > self.capacity_bytes {
            let evicted = if inner.small_bytes > self.small_target || inner.main_bytes == 0 {
                self.evict_small(inner)
            } else {
                self.evict_main(inner)
            };
            if !evicted {
                // Queues empty of live entries while bytes are counted: cannot happen
                // (every entry has a live place); stop rather than spin.
                debug_assert!(false, "cache bytes counted without entries");
                break;
            }
        }
    }

    /// Takes the oldest entry of the small queue: to the main queue when it was
    /// referenced again there, else out (its id to the ghosts). False when the small
    /// queue holds no live entry.
    fn evict_small(&self, inner: &mut Inner<V>) -> bool {
        while let Some((id, seq)) = inner.small.pop_front() {
            let Some(entry) = inner.entries.get_mut(&id) else {
                continue;
            };
            if entry.seq != seq || entry.is_main {
                continue;
            }
            let weight = entry.weight;
            inner.small_bytes -= weight;
            if entry.freq > 0 {
                entry.freq = 0;
                entry.is_main = true;
                inner.main_bytes += weight;
                inner.main.push_back((id, seq));
                return true;
            }
            let entry = inner.entries.remove(&id).expect("just found");
            self.evictions.fetch_add(1, Ordering::Relaxed);
            let limit = self.ghost_limit();
            inner.add_ghost(id, weight, entry.last_end, limit);
            return true;
        }
        // Only the main queue holds entries.
        self.evict_main(inner)
    }

    /// Takes the oldest entry of the main queue: another round when it was referenced
    /// since its last one (one frequency less), else out. False when no live entry is
    /// left in either queue.
    fn evict_main(&self, inner: &mut Inner<V>) -> bool {
        while let Some((id, seq)) = inner.main.pop_front() {
            let Some(entry) = inner.entries.get_mut(&id) else {
                continue;
            };
            if entry.seq != seq || !entry.is_main {
                continue;
            }
            if entry.freq > 0 {
                entry.freq -= 1;
                inner.main.push_back((id, seq));
                continue;
            }
            let entry = inner.entries.remove(&id).expect("just found");
            inner.main_bytes -= entry.weight;
            self.evictions.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if inner.small_bytes > 0 {
            return self.evict_small(inner);
        }
        false
    }

    /// Drops `id` (its stripe was freed).
    pub fn remove(&self, id: StripeId) {
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(&id) {
            if old.is_main {
                inner.main_bytes -= old.weight;
            } else {
                inner.small_bytes -= old.weight;
            }
        }
        inner.remove_ghost(id);
        inner.compact_queues();
    }

    /// Bytes cached now.
    pub fn len_bytes(&self) -> usize {
        self.lock().bytes()
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        let inner = self.lock();
        let (mut small, mut main) = (0, 0);
        for entry in inner.entries.values() {
            if entry.is_main {
                main += entry.weight;
            } else {
                small += entry.weight;
            }
        }
        assert_eq!((small, main), (inner.small_bytes, inner.main_bytes));
        assert!(inner.bytes() <= self.capacity_bytes);
        let ghosts: usize = inner.ghosts.values().map(|g| g.weight).sum();
        assert_eq!(ghosts, inner.ghost_bytes);
        assert!(inner.ghost_bytes <= self.ghost_limit());
        assert!(inner.small.len() + inner.main.len() <= 2 * inner.entries.len() + 64 + 1);
        assert!(inner.ghost_order.len() <= 2 * inner.ghosts.len() + 64 + 1);
        for (id, entry) in &inner.entries {
            let queue = if entry.is_main {
                &inner.main
            } else {
                &inner.small
            };
            assert!(queue.contains(&(*id, entry.seq)), "entry {id} has no place");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(len: usize, tag: u8) -> Arc<Vec<u8>> {
        Arc::new(vec![tag; len])
    }

    #[test]
    fn stays_within_its_bound_and_an_entry_read_once_leaves_first() {
        let cache = StripeCache::new(100);
        for i in 0..10 {
            cache.insert(StripeId(i), value(10, 0));
        }
        assert_eq!(cache.len_bytes(), 100);
        // Stripe 3 is read again; then ten new ones come.
        assert!(cache.get(StripeId(3)).is_some());
        for i in 10..20 {
            cache.insert(StripeId(i), value(10, 0));
            cache.check_invariants();
        }
        assert!(cache.get(StripeId(3)).is_some(), "referenced: kept");
        assert!(cache.get(StripeId(4)).is_none(), "read once: gone");
        cache.remove(StripeId(3));
        assert!(cache.get(StripeId(3)).is_none());
        assert_eq!(cache.len_bytes(), 90);
        cache.insert(StripeId(99), value(101, 0));
        assert!(
            cache.get(StripeId(99)).is_none(),
            "larger than the whole cache"
        );
        let stats = cache.stats();
        assert_eq!(stats.bytes, 90);
        assert_eq!(stats.capacity_bytes, 100);
        assert!(stats.evictions >= 10);
        cache.check_invariants();
    }

    #[test]
    fn a_scan_does_not_push_out_the_hot_set() {
        // Room for 100 stripes; 60 hot ones read in turn, each read followed by one of a
        // scan that never comes back. Between two reads of a hot stripe come 120 others
        // (60 of them new), more than the cache holds: FIFO and LRU miss every hot read.
        // S3-FIFO keeps the hot set in its main queue once each was seen twice.
        let cache = StripeCache::new(100 * 10);
        let (mut hits, mut reads) = (0, 0);
        for step in 0..6_000u64 {
            for id in [StripeId(step % 60), StripeId(1_000 + step)] {
                let found = cache.get(id).is_some();
                if id.0 < 60 && step >= 600 {
                    reads += 1;
                    hits += u32::from(found);
                }
                if !found {
                    cache.insert(id, value(10, 1));
                }
            }
        }
        assert_eq!(hits, reads, "every hot read after the first rounds hits");
        cache.check_invariants();
    }

    #[test]
    fn the_requests_of_one_sequential_read_are_one_reference() {
        let cache = StripeCache::new(100);
        // A stripe of 40 read in four requests: one reference, so it is not promoted.
        cache.insert_at(StripeId(1), value(40, 0), Touch::at(0, 10));
        for from in [10, 20, 30] {
            assert!(cache.get_at(StripeId(1), Touch::at(from, 10)).is_some());
        }
        // Seventy more bytes of a scan push it out of the small queue: gone.
        for i in 2..=8 {
            cache.insert_at(StripeId(i), value(10, 0), Touch::at(0, 10));
        }
        assert!(cache.get_at(StripeId(1), Touch::at(0, 10)).is_none());
        // Read again from its start: a new reference; its ghost puts it in the main queue.
        cache.insert_at(StripeId(1), value(40, 0), Touch::at(0, 10));
        for i in 9..=21 {
            cache.insert_at(StripeId(i), value(10, 0), Touch::at(0, 10));
        }
        assert!(cache.get_at(StripeId(1), Touch::at(10, 10)).is_some());
        cache.check_invariants();
    }

    #[test]
    fn a_stripe_is_wanted_only_when_read_again() {
        let cache: StripeCache = StripeCache::new(100);
        assert!(!cache.is_wanted(StripeId(1), 10, Touch::at(0, 5)));
        assert!(
            !cache.is_wanted(StripeId(1), 10, Touch::at(5, 5)),
            "the same read going on"
        );
        assert!(cache.is_wanted(StripeId(1), 10, Touch::at(0, 5)));
        cache.insert_at(StripeId(1), value(10, 0), Touch::at(0, 5));
        assert!(cache.lock().entries[&StripeId(1)].is_main);
        assert!(!cache.is_wanted(StripeId(1), 10, Touch::at(0, 5)), "cached");
        let off: StripeCache = StripeCache::new(0);
        assert!(!off.is_wanted(StripeId(1), 0, Touch::at(0, 0)));
        off.insert(StripeId(1), value(0, 0));
        assert!(off.get(StripeId(1)).is_none());
        assert_eq!(off.stats().entries, 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, usize),
        Get(u64, usize, usize),
        Want(u64, usize, usize),
        Remove(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..200, 0usize..300).prop_map(|(id, len)| Op::Insert(id, len)),
            4 => (0u64..200, 0usize..300, 1usize..100).prop_map(|(id, f, l)| Op::Get(id, f, l)),
            1 => (0u64..200, 0usize..300, 1usize..100).prop_map(|(id, f, l)| Op::Want(id, f, l)),
            1 => (0u64..200).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Under any sequence of operations the bytes held stay within the bound, the
        /// counts add up, and a lookup returns the last value inserted for its id, never
        /// one of a removed id.
        #[test]
        fn bounds_hold_and_values_are_never_stale(
            capacity in 0usize..2_000,
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let cache: StripeCache = StripeCache::new(capacity);
            let mut last: HashMap<u64, Arc<Vec<u8>>> = HashMap::new();
            let mut version = 0u8;
            for op in ops {
                match op {
                    Op::Insert(id, len) => {
                        version = version.wrapping_add(1);
                        let v = value(len, version);
                        cache.insert_at(StripeId(id), v.clone(), Touch::at(0, len));
                        last.insert(id, v);
                    }
                    Op::Get(id, from, len) => {
                        if let Some(v) = cache.get_at(StripeId(id), Touch::at(from, len)) {
                            let expected = last.get(&id).expect("never inserted or removed");
                            prop_assert!(Arc::ptr_eq(&v, expected));
                        }
                    }
                    Op::Want(id, from, len) => {
                        cache.is_wanted(StripeId(id), len, Touch::at(from, len));
                    }
                    Op::Remove(id) => {
                        cache.remove(StripeId(id));
                        last.remove(&id);
                    }
                }
                cache.check_invariants();
                let stats = cache.stats();
                prop_assert!(stats.bytes as usize <= capacity);
                prop_assert_eq!(stats.bytes as usize, cache.len_bytes());
            }
        }
    }
}

//! Bounded RAM caches keyed by stripe id: of decoded stripes, and of anything else
//! derived from a stripe's bytes (the volume keeps the frame tables of compressed and
//! encrypted stripes in one).
//!
//! Stripes are immutable (a rewrite gets a new stripe id), so a cached value never goes
//! stale; entries leave only to stay under the byte bound or when their stripe is freed.
//! Eviction is first-in-first-out, which suits the sequential reads that dominate.

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

/// A bounded map from stripe id to a shared value: by default the stripe's plaintext.
pub struct StripeCache<V: Weigh = Vec<u8>> {
    capacity_bytes: usize,
    inner: Mutex<Inner<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Inner<V> {
    map: HashMap<StripeId, Arc<V>>,
    order: VecDeque<StripeId>,
    bytes: usize,
}

impl<V: Weigh> StripeCache<V> {
    /// A cache holding at most `capacity_bytes` of values (0 disables it).
    pub fn new(capacity_bytes: usize) -> StripeCache<V> {
        StripeCache {
            capacity_bytes,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        // A panic elsewhere cannot leave the map inconsistent in a way that matters for a
        // cache, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `id`.
    pub fn get(&self, id: StripeId) -> Option<Arc<V>> {
        let found = self.lock().map.get(&id).cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Lookups that found their stripe, and those that did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Caches the value of `id`, evicting the oldest entries beyond the bound.
    pub fn insert(&self, id: StripeId, value: Arc<V>) {
        let len = value.weight_bytes();
        if len > self.capacity_bytes {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.insert(id, value) {
            inner.bytes -= old.weight_bytes();
        } else {
            inner.order.push_back(id);
        }
        inner.bytes += len;
        while inner.bytes > self.capacity_bytes {
            let Some(victim) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&victim) {
                inner.bytes -= old.weight_bytes();
            }
        }
    }

    /// Drops `id` (its stripe was freed).
    pub fn remove(&self, id: StripeId) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&id) {
            inner.bytes -= old.weight_bytes();
            inner.order.retain(|s| *s != id);
        }
    }

    /// Bytes cached now.
    pub fn len_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_bound_and_evicts_oldest_first() {
        let cache = StripeCache::new(10);
        cache.insert(StripeId(1), Arc::new(vec![0; 4]));
        cache.insert(StripeId(2), Arc::new(vec![0; 4]));
        cache.insert(StripeId(3), Arc::new(vec![0; 4]));
        assert!(cache.get(StripeId(1)).is_none());
        assert!(cache.get(StripeId(2)).is_some());
        assert_eq!(cache.len_bytes(), 8);
        cache.remove(StripeId(2));
        assert_eq!(cache.len_bytes(), 4);
        cache.insert(StripeId(4), Arc::new(vec![0; 11]));
        assert!(
            cache.get(StripeId(4)).is_none(),
            "larger than the whole cache"
        );
    }
}

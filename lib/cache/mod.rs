//! A bounded RAM cache of decoded stripes.
//!
//! Stripes are immutable (a rewrite gets a new stripe id), so cached plaintext never goes
//! stale; entries leave only to stay under the byte bound or when their stripe is freed.
//! Eviction is first-in-first-out, which suits the sequential reads that dominate.

use crate::types::StripeId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Decoded stripe plaintext, shared with readers without copying.
pub type Plain = Arc<Vec<u8>>;

/// A bounded map from stripe id to plaintext.
pub struct StripeCache {
    capacity_bytes: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<StripeId, Plain>,
    order: VecDeque<StripeId>,
    bytes: usize,
}

impl StripeCache {
    /// A cache holding at most `capacity_bytes` of plaintext (0 disables it).
    pub fn new(capacity_bytes: usize) -> StripeCache {
        StripeCache {
            capacity_bytes,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map inconsistent in a way that matters for a
        // cache, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached plaintext of `id`.
    pub fn get(&self, id: StripeId) -> Option<Plain> {
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

    /// Caches the plaintext of `id`, evicting the oldest entries beyond the bound.
    pub fn insert(&self, id: StripeId, plain: Plain) {
        if plain.len() > self.capacity_bytes {
            return;
        }
        let mut inner = self.lock();
        let len = plain.len();
        if let Some(old) = inner.map.insert(id, plain) {
            inner.bytes -= old.len();
        } else {
            inner.order.push_back(id);
        }
        inner.bytes += len;
        while inner.bytes > self.capacity_bytes {
            let Some(victim) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&victim) {
                inner.bytes -= old.len();
            }
        }
    }

    /// Drops `id` (its stripe was freed).
    pub fn remove(&self, id: StripeId) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&id) {
            inner.bytes -= old.len();
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

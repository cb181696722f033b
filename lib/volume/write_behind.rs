//! Write-behind of full chunks: a write that completes a chunk hands it to the shard I/O
//! pool and returns, so the next request's bytes cross the kernel boundary while this
//! chunk is encoded and written (one writer then keeps both cores busy).
//!
//! Semantics stay those of the synchronous path: until the chunk is recorded, reads find
//! its bytes in the file's `landing` map; a chunk whose store fails stays there, and the
//! next flush, fsync or close takes it back into the dirty buffers, retries and reports
//! the error. Anything that needs the stored state first waits for it ([`Volume::settle`]
//! for one file, [`Volume::wait_all_landed`] for a commit). At most
//! [`MAX_IN_FLIGHT`] chunks are in flight per volume; a writer beyond that waits.
//!
//! Off unless the owner of an `Arc<Volume>` calls [`Volume::enable_write_behind`] (the
//! mount does); without it every chunk is stored in the writer's thread.

use super::{FileData, FileState, Volume, lock_poisoned};
use crate::meta::BlockMap;
use crate::types::InodeId;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

/// Chunks being stored in the background at most, per volume.
pub(super) const MAX_IN_FLIGHT: usize = 2;

/// A chunk handed to the pool and not yet recorded in the metadata.
pub(super) struct Landing {
    /// The chunk's bytes (holes as zeros), for readers meanwhile.
    pub bytes: Arc<Vec<u8>>,
    /// Which blocks hold data, when the chunk has holes.
    pub written: Option<BlockMap>,
    /// Its store failed: the bytes wait for the next flush. Else it is in flight.
    pub failed: bool,
}

/// How many chunks are in flight, all files together; shared with the jobs so a job can
/// signal its end after it has let go of the volume (see [`Volume::wait_all_landed`]).
#[derive(Default)]
pub(super) struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl InFlight {
    fn wait_below(&self, limit: usize) -> MutexGuard<'_, usize> {
        let mut count = lock_poisoned(&self.count);
        while *count >= limit {
            count = self.changed.wait(count).unwrap_or_else(|p| p.into_inner());
        }
        count
    }

    fn done(&self) {
        *lock_poisoned(&self.count) -= 1;
        self.changed.notify_all();
    }
}

impl Volume {
    /// Lets full chunks be stored on the shard I/O pool while their writer returns (see
    /// the module doc). Call once the volume is shared; later calls change nothing.
    pub fn enable_write_behind(self: &Arc<Self>) {
        let _ = self.this.set(Arc::downgrade(self));
    }

    /// The volume as an `Arc` when write-behind is on.
    pub(super) fn write_behind(&self) -> Option<Arc<Volume>> {
        self.this.get().and_then(Weak::upgrade)
    }

    /// Queues chunk `index` of file `ino` (`bytes`, with its `written` map) for storing on
    /// the pool, waiting while [`MAX_IN_FLIGHT`] chunks are in flight. `file_size` is the
    /// size it was written under (it decides inline storage of chunk 0). The bytes must
    /// already count in `dirty_bytes`; they stop counting once the chunk is recorded.
    pub(super) fn hand_off(
        self: Arc<Self>,
        file: &Arc<FileState>,
        ino: InodeId,
        file_size: u64,
        index: u64,
        bytes: Vec<u8>,
        written: Option<BlockMap>,
    ) {
        *self.in_flight.wait_below(MAX_IN_FLIGHT) += 1;
        let bytes = Arc::new(bytes);
        lock_poisoned(&file.landing).insert(
            index,
            Landing {
                bytes: Arc::clone(&bytes),
                written: written.clone(),
                failed: false,
            },
        );
        let file = Arc::clone(file);
        let in_flight = Arc::clone(&self.in_flight);
        let vol = Arc::clone(&self);
        self.shard_io.spawn(move || {
            let stored = super::stripe_io::contained(
                || vol.store_chunk_sized(ino, index, &bytes, file_size, written.clone()),
                || {
                    Err(crate::error::Error::io(
                        &vol.root,
                        std::io::Error::other("storing a chunk panicked"),
                    ))
                },
            );
            {
                let mut landing = lock_poisoned(&file.landing);
                match stored {
                    Ok(()) => {
                        landing.remove(&index);
                        vol.dirty_bytes
                            .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(inode = %ino, chunk = index, error = %e, "could not store a chunk; keeping it buffered");
                        if let Some(entry) = landing.get_mut(&index) {
                            entry.failed = true;
                        }
                    }
                }
            }
            file.landed.notify_all();
            // Let go of the volume first: once the count is back to zero a closing owner
            // holds the last reference, so the volume (and its lock) goes with it.
            drop(vol);
            in_flight.done();
        });
    }

    /// The bytes of `file`'s landing chunks that a read of `len` bytes at `offset` of a
    /// file of `stripe`-byte chunks touches.
    pub(super) fn landing_in(
        &self,
        file: &FileState,
        offset: u64,
        len: usize,
        stripe: u64,
    ) -> BTreeMap<u64, Arc<Vec<u8>>> {
        if len == 0 {
            return BTreeMap::new();
        }
        let last = offset.saturating_add(len as u64 - 1) / stripe;
        lock_poisoned(&file.landing)
            .range(offset / stripe..=last)
            .map(|(index, landing)| (*index, Arc::clone(&landing.bytes)))
            .collect()
    }

    /// Waits until no chunk of `file` in `chunks` is in flight, and takes the ones whose
    /// store failed back into the dirty buffers (the next flush retries them).
    pub(super) fn settle(
        &self,
        file: &FileState,
        data: &mut FileData,
        chunks: RangeInclusive<u64>,
    ) {
        let mut landing = lock_poisoned(&file.landing);
        while landing.range(chunks.clone()).any(|(_, l)| !l.failed) {
            landing = file.landed.wait(landing).unwrap_or_else(|p| p.into_inner());
        }
        let failed: Vec<u64> = landing.range(chunks).map(|(index, _)| *index).collect();
        for index in failed {
            let Some(Landing { bytes, written, .. }) = landing.remove(&index) else {
                continue;
            };
            if data.dirty.contains_key(&index) {
                // Newer bytes for the chunk (a write settles its chunks first, so this
                // should not happen): they win; the failed ones stop counting.
                self.dirty_bytes
                    .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                continue;
            }
            // Already counted in dirty_bytes.
            let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
            data.dirty.insert(index, bytes);
            if let Some(map) = written {
                data.written.insert(index, map);
            }
        }
    }

    /// Waits until no chunk of any file is in flight (a commit, holding the gate
    /// exclusively so no new one starts).
    pub(super) fn wait_all_landed(&self) {
        drop(self.in_flight.wait_below(1));
    }
}

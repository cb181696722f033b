//! `CrashDisk`: wraps any disk and keeps every put and delete in memory until a sync, so
//! a test can "cut the power" and lose exactly what was not synced (as CrashMonkey's
//! block device does), then reopen the volume on what the disks durably hold.
//!
//! Reads see the unsynced changes, as a page cache would. A sync applies them to the
//! inner disk in the order they were made and syncs it. [`CrashDisk::crash`] forgets
//! them. The wrapper has no sync domain of its own, so the volume syncs each one.

use super::{Disk, DiskRef, DiskSpace};
use crate::types::ShardKey;
use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// Changes since the last sync, by key: the bytes put (`None` for a delete) and when.
type Unsynced = HashMap<ShardKey, (Option<Vec<u8>>, SystemTime)>;

/// A disk that loses every change not yet synced when told to crash.
pub struct CrashDisk {
    inner: DiskRef,
    unsynced: Mutex<Unsynced>,
}

impl CrashDisk {
    /// Wraps `inner`; nothing is pending.
    pub fn new(inner: DiskRef) -> CrashDisk {
        CrashDisk {
            inner,
            unsynced: Mutex::new(HashMap::new()),
        }
    }

    /// The power cut: every put and delete since the last sync is gone. Returns how many
    /// were lost.
    pub fn crash(&self) -> usize {
        let mut unsynced = self.lock();
        let lost = unsynced.len();
        unsynced.clear();
        lost
    }

    fn lock(&self) -> MutexGuard<'_, Unsynced> {
        self.unsynced.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Disk for CrashDisk {
    fn describe(&self) -> String {
        format!("crash:{}", self.inner.describe())
    }

    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
        let bytes = parts.concat();
        self.lock().insert(key, (Some(bytes), SystemTime::now()));
        Ok(())
    }

    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
        match self.lock().get(&key) {
            Some((Some(bytes), _)) => return Ok(bytes.clone()),
            Some((None, _)) => return Err(io::ErrorKind::NotFound.into()),
            None => {}
        }
        self.inner.get_shard(key)
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        self.lock().insert(key, (None, SystemTime::now()));
        Ok(())
    }

    fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
        let mut keys = self.inner.list_shards()?;
        let unsynced = self.lock();
        keys.retain(|key| !unsynced.contains_key(key));
        keys.extend(
            unsynced
                .iter()
                .filter(|(_, (bytes, _))| bytes.is_some())
                .map(|(key, _)| *key),
        );
        keys.sort_unstable();
        Ok(keys)
    }

    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
        match self.lock().get(&key) {
            Some((Some(_), when)) => return Ok(*when),
            Some((None, _)) => return Err(io::ErrorKind::NotFound.into()),
            None => {}
        }
        self.inner.shard_modified(key)
    }

    fn sync(&self) -> io::Result<()> {
        // Held across the writes: a put racing the sync lands before or after it whole.
        let mut unsynced = self.lock();
        for (key, (bytes, _)) in unsynced.iter() {
            match bytes {
                Some(bytes) => self.inner.put_shard(*key, &[bytes])?,
                None => self.inner.delete_shard(*key)?,
            }
        }
        self.inner.sync()?;
        unsynced.clear();
        Ok(())
    }

    fn space(&self) -> io::Result<DiskSpace> {
        self.inner.space()
    }

    fn check_present(&self) -> io::Result<()> {
        self.inner.check_present()
    }

    fn read_label(&self) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_label()
    }

    fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_label(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemDisk;
    use std::sync::Arc;

    /// Shard 0 of stripe `stripe`.
    fn key(stripe: u64) -> ShardKey {
        crate::store::test_support::key(stripe, 0)
    }

    #[test]
    fn unsynced_changes_are_seen_then_lost_in_a_crash_and_synced_ones_kept() {
        let inner: DiskRef = Arc::new(MemDisk::new("m", 1 << 20));
        let disk = CrashDisk::new(inner.clone());
        disk.put_shard(key(1), &[b"one"]).unwrap();
        disk.sync().unwrap();
        disk.put_shard(key(2), &[b"two"]).unwrap();
        disk.delete_shard(key(1)).unwrap();
        assert_eq!(disk.get_shard(key(2)).unwrap(), b"two");
        assert!(disk.get_shard(key(1)).is_err());
        assert_eq!(disk.list_shards().unwrap(), vec![key(2)]);
        assert_eq!(inner.list_shards().unwrap(), vec![key(1)]);
        assert_eq!(disk.crash(), 2);
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"one");
        assert!(disk.get_shard(key(2)).is_err());
        disk.delete_shard(key(1)).unwrap();
        disk.put_shard(key(3), &[b"th", b"ree"]).unwrap();
        disk.sync().unwrap();
        assert_eq!(disk.crash(), 0);
        assert_eq!(inner.list_shards().unwrap(), vec![key(3)]);
        assert_eq!(inner.get_shard(key(3)).unwrap(), b"three");
    }
}

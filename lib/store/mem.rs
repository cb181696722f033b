//! `MemDisk`: a shard store in memory, for tests. Everything is "durable" at once;
//! power-cut behaviour is `CrashDisk`'s job, not this one's.

use super::{Disk, DiskRef, DiskSpace};
use crate::types::ShardKey;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Capacity of each disk made by [`MemDisk::set`].
pub const MEM_SET_CAPACITY_BYTES: u64 = 1 << 30;

#[derive(Debug, Default)]
struct State {
    shards: HashMap<ShardKey, (Vec<u8>, SystemTime)>,
    /// Sum of the stored shard lengths, kept so a put need not walk the map.
    used_bytes: u64,
    label: Option<Vec<u8>>,
}

/// A disk held in memory, with a fixed capacity, for tests.
#[derive(Debug)]
pub struct MemDisk {
    name: String,
    capacity_bytes: u64,
    state: Mutex<State>,
}

impl MemDisk {
    /// An empty disk called `mem:NAME` that holds up to `capacity_bytes` of shard objects.
    pub fn new(name: &str, capacity_bytes: u64) -> MemDisk {
        MemDisk {
            name: name.to_string(),
            capacity_bytes,
            state: Mutex::new(State::default()),
        }
    }

    /// `count` empty disks named "0", "1", … of [`MEM_SET_CAPACITY_BYTES`] each.
    pub fn set(count: usize) -> Vec<DiskRef> {
        (0..count)
            .map(|i| Arc::new(MemDisk::new(&i.to_string(), MEM_SET_CAPACITY_BYTES)) as DiskRef)
            .collect()
    }

    /// Bytes of shard objects stored.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics half-way through an update, so a poisoned state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Disk for MemDisk {
    fn describe(&self) -> String {
        format!("mem:{}", self.name)
    }

    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let mut state = self.lock();
        let replaced = state
            .shards
            .get(&key)
            .map_or(0, |(old, _)| old.len() as u64);
        let used_after = (state.used_bytes - replaced).saturating_add(len as u64);
        if used_after > self.capacity_bytes {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let mut bytes = Vec::with_capacity(len);
        for part in parts {
            bytes.extend_from_slice(part);
        }
        state.shards.insert(key, (bytes, SystemTime::now()));
        state.used_bytes = used_after;
        Ok(())
    }

    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let (bytes, _) = state.shards.get(&key).ok_or_else(not_found)?;
        Ok(bytes.clone())
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        let mut state = self.lock();
        if let Some((bytes, _)) = state.shards.remove(&key) {
            state.used_bytes -= bytes.len() as u64;
        }
        Ok(())
    }

    fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
        let mut keys: Vec<ShardKey> = self.lock().shards.keys().copied().collect();
        keys.sort_unstable();
        Ok(keys)
    }

    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
        let state = self.lock();
        let (_, modified) = state.shards.get(&key).ok_or_else(not_found)?;
        Ok(*modified)
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn space(&self) -> io::Result<DiskSpace> {
        Ok(DiskSpace {
            total_bytes: self.capacity_bytes,
            free_bytes: self.capacity_bytes.saturating_sub(self.lock().used_bytes),
        })
    }

    fn read_label(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().label.clone())
    }

    fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
        self.lock().label = Some(bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::key;

    #[test]
    fn put_get_delete_list_round_trip() {
        let disk = MemDisk::new("t", 1000);
        assert_eq!(disk.describe(), "mem:t");
        let (a, b) = (key(9, 0), key(3, 5));
        disk.put_shard(a, &[b"ab", b"", b"cd"]).unwrap();
        disk.put_shard(b, &[b"xyz"]).unwrap();
        assert_eq!(disk.get_shard(a).unwrap(), b"abcd");
        assert_eq!(disk.list_shards().unwrap(), vec![b, a]);
        assert!(disk.shard_modified(a).unwrap() <= SystemTime::now());
        disk.delete_shard(a).unwrap();
        disk.delete_shard(a).unwrap();
        assert_eq!(
            disk.get_shard(a).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            disk.shard_modified(a).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(disk.list_shards().unwrap(), vec![b]);
        assert_eq!(disk.read_label().unwrap(), None);
        disk.write_label(b"label").unwrap();
        assert_eq!(disk.read_label().unwrap().unwrap(), b"label");
        disk.sync().unwrap();
    }

    #[test]
    fn capacity_is_enforced_with_enospc_and_nothing_left_behind() {
        let disk = MemDisk::new("small", 10);
        disk.put_shard(key(1, 0), &[b"123456"]).unwrap();
        assert_eq!(
            disk.space().unwrap(),
            DiskSpace {
                total_bytes: 10,
                free_bytes: 4
            }
        );
        let err = disk.put_shard(key(2, 0), &[b"12345"]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(
            disk.get_shard(key(2, 0)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(disk.used_bytes(), 6);
        // Replacing an object counts only the difference.
        disk.put_shard(key(1, 0), &[b"1234567890"]).unwrap();
        assert_eq!(disk.space().unwrap().free_bytes, 0);
        disk.delete_shard(key(1, 0)).unwrap();
        assert_eq!(disk.space().unwrap().free_bytes, 10);
        disk.put_shard(key(2, 0), &[b"12345"]).unwrap();
    }

    #[test]
    fn set_makes_independent_disks() {
        let disks = MemDisk::set(3);
        assert_eq!(disks.len(), 3);
        disks[0].put_shard(key(1, 0), &[b"x"]).unwrap();
        assert!(disks[1].list_shards().unwrap().is_empty());
        assert_eq!(disks[2].describe(), "mem:2");
        assert_eq!(
            disks[1].space().unwrap().total_bytes,
            MEM_SET_CAPACITY_BYTES
        );
    }
}

//! `FaultyDisk`: wraps any disk and injects the failures real drives produce, for tests:
//! failed writes and syncs, torn writes, flipped bits, and a drive that vanishes.
//!
//! Controls take `&self` and are plain atomics, so a test can flip them while other
//! threads are using the disk.

use super::{Disk, DiskRef, DiskSpace};
use crate::types::ShardKey;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

/// A failing put budget packed into one word: errno in the high half, count in the low
/// half, so a control and the puts racing it always see a consistent pair.
fn pack(errno: i32, count: u32) -> u64 {
    let errno = if errno > 0 { errno } else { libc::EIO };
    (u64::from(errno.unsigned_abs()) << 32) | u64::from(count)
}

fn errno_of(packed: u64) -> i32 {
    i32::try_from(packed >> 32).unwrap_or(libc::EIO)
}

fn count_of(packed: u64) -> u32 {
    (packed & u64::from(u32::MAX)) as u32
}

/// A disk that fails on command, for tests: failed or torn puts, failed syncs, flipped
/// reads, or a drive that vanishes. Controls take `&self` and are atomics, so a test can
/// change them while other threads use the disk. Faults are checked in this order: vanished,
/// `fail_next_puts`, `fail_puts_after`, `torn_next_put`.
pub struct FaultyDisk {
    inner: DiskRef,
    /// `fail_next_puts`: errno and how many puts still fail.
    fail_next: AtomicU64,
    /// `fail_puts_after`: errno and how many puts may still succeed; 0 when disarmed.
    fail_after: AtomicU64,
    fail_syncs: AtomicU32,
    is_vanished: AtomicBool,
    is_flipping_reads: AtomicBool,
    /// `torn_next_put`: bytes to keep plus one; 0 when disarmed.
    torn_keep: AtomicU64,
    /// `set_put_delay`: microseconds every put waits first.
    put_delay_us: AtomicU64,
    puts: AtomicU64,
    gets: AtomicU64,
    syncs: AtomicU64,
}

impl FaultyDisk {
    /// Wraps `inner` with every fault off.
    pub fn new(inner: DiskRef) -> FaultyDisk {
        FaultyDisk {
            inner,
            fail_next: AtomicU64::new(0),
            fail_after: AtomicU64::new(0),
            fail_syncs: AtomicU32::new(0),
            is_vanished: AtomicBool::new(false),
            is_flipping_reads: AtomicBool::new(false),
            torn_keep: AtomicU64::new(0),
            put_delay_us: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        }
    }

    /// Makes every put wait `delay` first: a slow drive.
    pub fn set_put_delay(&self, delay: std::time::Duration) {
        self.put_delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// The wrapped disk, to inspect what really got written.
    pub fn inner(&self) -> &DiskRef {
        &self.inner
    }

    /// The next `n` puts fail with `errno` (EIO when not positive) and write nothing.
    pub fn fail_next_puts(&self, n: u32, errno: i32) {
        self.fail_next.store(pack(errno, n), Ordering::SeqCst);
    }

    /// Lets `ok` more puts succeed, then fails every put with `errno` (EIO when not
    /// positive) until [`FaultyDisk::clear`].
    pub fn fail_puts_after(&self, ok: u32, errno: i32) {
        self.fail_after.store(pack(errno, ok), Ordering::SeqCst);
    }

    /// The next `n` syncs fail with EIO.
    pub fn fail_next_syncs(&self, n: u32) {
        self.fail_syncs.store(n, Ordering::SeqCst);
    }

    /// While set, every call fails as if the drive was pulled: lookups of a shard report
    /// NotFound, everything else EIO.
    pub fn set_vanished(&self, is_vanished: bool) {
        self.is_vanished.store(is_vanished, Ordering::SeqCst);
    }

    /// While set, `get_shard` returns the object with its middle byte flipped.
    pub fn set_flip_reads(&self, is_flipping: bool) {
        self.is_flipping_reads.store(is_flipping, Ordering::SeqCst);
    }

    /// The next put stores only its first `keep_bytes` bytes and reports success, as a
    /// crash in the middle of the write would leave it.
    pub fn torn_next_put(&self, keep_bytes: usize) {
        let encoded = (keep_bytes as u64).saturating_add(1);
        self.torn_keep.store(encoded, Ordering::SeqCst);
    }

    /// Turns every fault off (counters keep counting).
    pub fn clear(&self) {
        self.fail_next.store(0, Ordering::SeqCst);
        self.fail_after.store(0, Ordering::SeqCst);
        self.fail_syncs.store(0, Ordering::SeqCst);
        self.is_vanished.store(false, Ordering::SeqCst);
        self.is_flipping_reads.store(false, Ordering::SeqCst);
        self.torn_keep.store(0, Ordering::SeqCst);
    }

    /// `put_shard` calls so far, failed ones included.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }

    /// `get_shard` calls so far, failed ones included.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// `sync` calls so far, failed ones included.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    fn vanished(&self) -> bool {
        self.is_vanished.load(Ordering::SeqCst)
    }

    /// Takes one failure from `fail_next_puts`, if any is left.
    fn take_next_put_failure(&self) -> Option<i32> {
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |packed| {
                (count_of(packed) > 0).then(|| packed - 1)
            })
            .ok()
            .map(errno_of)
    }

    /// Spends one success from `fail_puts_after`, or reports the errno once it is spent.
    fn take_after_put_failure(&self) -> Option<i32> {
        let mut failure = None;
        let _ = self
            .fail_after
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |packed| {
                failure = None;
                if packed == 0 {
                    None
                } else if count_of(packed) > 0 {
                    Some(packed - 1)
                } else {
                    failure = Some(errno_of(packed));
                    None
                }
            });
        failure
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Disk for FaultyDisk {
    fn describe(&self) -> String {
        format!("faulty:{}", self.inner.describe())
    }

    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let delay = self.put_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        if self.vanished() {
            return Err(eio());
        }
        if let Some(errno) = self.take_next_put_failure() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if let Some(errno) = self.take_after_put_failure() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let torn = self.torn_keep.swap(0, Ordering::SeqCst);
        if torn == 0 {
            return self.inner.put_shard(key, parts);
        }
        let mut keep = usize::try_from(torn - 1).unwrap_or(usize::MAX);
        let mut kept: Vec<&[u8]> = Vec::with_capacity(parts.len());
        for part in parts {
            let take = keep.min(part.len());
            kept.push(&part[..take]);
            keep -= take;
        }
        self.inner.put_shard(key, &kept)
    }

    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.vanished() {
            return Err(not_found());
        }
        let mut bytes = self.inner.get_shard(key)?;
        if self.is_flipping_reads.load(Ordering::SeqCst) && !bytes.is_empty() {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
        }
        Ok(bytes)
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.delete_shard(key)
    }

    fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.list_shards()
    }

    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
        if self.vanished() {
            return Err(not_found());
        }
        self.inner.shard_modified(key)
    }

    fn sync(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if self.vanished() {
            return Err(eio());
        }
        let failed = self
            .fail_syncs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err(eio());
        }
        self.inner.sync()
    }

    fn stage_sync(&self) -> io::Result<()> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.stage_sync()
    }

    fn synced(&self) -> io::Result<()> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.synced()
    }

    fn check_present(&self) -> io::Result<()> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.check_present()
    }

    fn space(&self) -> io::Result<DiskSpace> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.space()
    }

    fn read_label(&self) -> io::Result<Option<Vec<u8>>> {
        if self.vanished() {
            return Err(eio());
        }
        self.inner.read_label()
    }

    fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
        if self.vanished() {
            return Err(eio());
        }
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

    fn faulty() -> FaultyDisk {
        FaultyDisk::new(Arc::new(MemDisk::new("inner", 1 << 20)))
    }

    #[test]
    fn passes_through_and_counts() {
        let disk = faulty();
        disk.put_shard(key(1), &[b"ab", b"c"]).unwrap();
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"abc");
        assert!(disk.get_shard(key(2)).is_err());
        disk.sync().unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1)]);
        assert_eq!((disk.puts(), disk.gets(), disk.syncs()), (1, 2, 1));
        assert_eq!(disk.describe(), "faulty:mem:inner");
    }

    #[test]
    fn fail_next_puts_fails_n_puts_and_writes_nothing() {
        let disk = faulty();
        disk.fail_next_puts(2, libc::ENOSPC);
        for stripe in 1..=2 {
            let err = disk.put_shard(key(stripe), &[b"x"]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        }
        assert!(disk.inner().list_shards().unwrap().is_empty());
        disk.put_shard(key(3), &[b"x"]).unwrap();
        assert_eq!(disk.inner().list_shards().unwrap(), vec![key(3)]);
        assert_eq!(disk.puts(), 3);
    }

    #[test]
    fn fail_puts_after_lets_ok_through_then_fails_until_cleared() {
        let disk = faulty();
        disk.fail_puts_after(2, libc::EDQUOT);
        disk.put_shard(key(1), &[b"x"]).unwrap();
        disk.put_shard(key(2), &[b"x"]).unwrap();
        for stripe in 3..6 {
            let err = disk.put_shard(key(stripe), &[b"x"]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EDQUOT));
        }
        assert_eq!(disk.inner().list_shards().unwrap().len(), 2);
        disk.clear();
        disk.put_shard(key(6), &[b"x"]).unwrap();
        assert_eq!(disk.inner().list_shards().unwrap().len(), 3);
    }

    #[test]
    fn fail_next_syncs_fails_with_eio() {
        let disk = faulty();
        disk.fail_next_syncs(1);
        assert_eq!(disk.sync().unwrap_err().raw_os_error(), Some(libc::EIO));
        disk.sync().unwrap();
        assert_eq!(disk.syncs(), 2);
    }

    #[test]
    fn vanished_disk_fails_everything_until_it_returns() {
        let disk = faulty();
        disk.put_shard(key(1), &[b"x"]).unwrap();
        disk.set_vanished(true);
        assert_eq!(
            disk.get_shard(key(1)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let eio = Some(libc::EIO);
        assert_eq!(
            disk.put_shard(key(2), &[b"x"]).unwrap_err().raw_os_error(),
            eio
        );
        assert_eq!(disk.sync().unwrap_err().raw_os_error(), eio);
        assert_eq!(disk.list_shards().unwrap_err().raw_os_error(), eio);
        assert_eq!(disk.space().unwrap_err().raw_os_error(), eio);
        assert_eq!(disk.delete_shard(key(1)).unwrap_err().raw_os_error(), eio);
        assert_eq!(disk.read_label().unwrap_err().raw_os_error(), eio);
        assert!(disk.shard_modified(key(1)).is_err());
        disk.set_vanished(false);
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"x");
        assert_eq!(disk.inner().list_shards().unwrap(), vec![key(1)]);
    }

    #[test]
    fn flip_reads_changes_exactly_the_middle_byte() {
        let disk = faulty();
        disk.put_shard(key(1), &[b"abcdefg"]).unwrap();
        disk.set_flip_reads(true);
        let read = disk.get_shard(key(1)).unwrap();
        assert_eq!(read.len(), 7);
        let differing: Vec<usize> = (0..7).filter(|&i| read[i] != b"abcdefg"[i]).collect();
        assert_eq!(differing, vec![3]);
        assert_eq!(disk.inner().get_shard(key(1)).unwrap(), b"abcdefg");
        disk.set_flip_reads(false);
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"abcdefg");
    }

    #[test]
    fn torn_put_keeps_a_prefix_once_and_reports_success() {
        let disk = faulty();
        disk.torn_next_put(5);
        disk.put_shard(key(1), &[b"abc", b"defg", b"hi"]).unwrap();
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"abcde");
        disk.put_shard(key(2), &[b"abc", b"defg"]).unwrap();
        assert_eq!(disk.get_shard(key(2)).unwrap(), b"abcdefg");
        disk.torn_next_put(100);
        disk.put_shard(key(3), &[b"short"]).unwrap();
        assert_eq!(disk.get_shard(key(3)).unwrap(), b"short");
        disk.torn_next_put(0);
        disk.put_shard(key(4), &[b"gone"]).unwrap();
        assert_eq!(disk.get_shard(key(4)).unwrap(), b"");
    }

    #[test]
    fn clear_turns_every_fault_off() {
        let disk = faulty();
        disk.put_shard(key(1), &[b"abc"]).unwrap();
        disk.fail_next_puts(5, libc::EIO);
        disk.fail_puts_after(0, libc::EIO);
        disk.fail_next_syncs(5);
        disk.set_vanished(true);
        disk.set_flip_reads(true);
        disk.torn_next_put(1);
        disk.clear();
        disk.put_shard(key(2), &[b"whole"]).unwrap();
        assert_eq!(disk.get_shard(key(2)).unwrap(), b"whole");
        assert_eq!(disk.get_shard(key(1)).unwrap(), b"abc");
        disk.sync().unwrap();
    }
}

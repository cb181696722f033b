//! Disk-local shard stores: one `Disk` per disk of the volume.
//!
//! Owns how shard objects and disk labels sit on a disk, nothing about what a shard means.
//! `DirDisk` is the real store (a directory, usually a drive's mount point); `MemDisk`
//! and `FaultyDisk` serve tests.

pub mod shard;

use crate::types::ShardKey;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// Space on a disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskSpace {
    /// Capacity of the filesystem or device behind the disk.
    pub total_bytes: u64,
    /// Bytes still available to ArgosFS.
    pub free_bytes: u64,
}

/// One disk's object store. Implementations must be safe to call from many threads.
pub trait Disk: Send + Sync {
    /// Where the disk is, for messages ("/srv/d1", "mem:3").
    fn describe(&self) -> String;
    /// Creates or replaces the shard object `key` with the concatenation of `parts`.
    /// Not durable until [`Disk::sync`].
    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()>;
    /// Reads a whole shard object. `ErrorKind::NotFound` when it does not exist.
    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>>;
    /// Deletes a shard object; deleting a missing one is not an error.
    fn delete_shard(&self, key: ShardKey) -> io::Result<()>;
    /// Every shard object on the disk (for fsck and orphan scans).
    fn list_shards(&self) -> io::Result<Vec<ShardKey>>;
    /// When the shard object was last written.
    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime>;
    /// Makes every write and delete so far durable (data and directory entries).
    fn sync(&self) -> io::Result<()>;
    /// Capacity and free space.
    fn space(&self) -> io::Result<DiskSpace>;
    /// The disk label, if one was written.
    fn read_label(&self) -> io::Result<Option<Vec<u8>>>;
    /// Writes the disk label atomically and durably.
    fn write_label(&self, bytes: &[u8]) -> io::Result<()>;
}

/// A shared handle to a disk.
pub type DiskRef = Arc<dyn Disk>;

/// Writes a file atomically and durably: temp file, fsync, rename, fsync of the directory.
/// On failure the temp file is removed and the old file (if any) is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = (path, bytes);
    todo!("store helper")
}

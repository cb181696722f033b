//! Disk-local shard stores: one `Disk` per disk of the volume.
//!
//! Owns how shard objects and disk labels sit on a disk, nothing about what a shard means:
//! stripes, placement and metadata belong to the layers above. `DirDisk` is the real store
//! (a directory, usually a drive's mount point); `MemDisk` and `FaultyDisk` serve tests.
//! `write_atomic` is the one way the library replaces a whole file. Everything here is
//! created private (directories 0700, files 0600; see `private`).

mod crash;
mod dir;
mod faulty;
pub mod index;
mod label;
mod mem;
mod private;
pub mod record_io;
pub mod shard;

pub use crash::CrashDisk;
pub use dir::{
    BatchDone, BatchOp, DirDisk, IoSettings, LABEL_FILE, Rebuilt, SEGMENT_BYTES, STORE_DIR,
    run_batch,
};
pub use faulty::FaultyDisk;
pub use label::{DiskLabel, LABEL_MAGIC, LABEL_VERSION};
pub use mem::{MEM_SET_CAPACITY_BYTES, MemDisk};
pub use private::{
    Audit, LOOSE_BITS, LoosePath, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, create_private_dir,
    create_private_dir_all, make_dir_private, open_private_append, tighten,
};
pub use record_io::{IoMode, StoreIoSnapshot, StoreIoStats};

use crate::types::ShardKey;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Reads byte ranges of a shard object straight into the caller's buffers: each range
    /// fills its buffers in order from its offset. `NotFound` when the object does not
    /// exist, `UnexpectedEof` when a range passes its end. The default reads the whole
    /// object and copies.
    fn read_shard_ranges(&self, key: ShardKey, ranges: &mut [ShardRange<'_>]) -> io::Result<()> {
        let bytes = self.get_shard(key)?;
        for range in ranges {
            let mut at = range.offset as usize;
            for buf in range.bufs.iter_mut() {
                let src = bytes
                    .get(at..at + buf.len())
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(src);
                at += buf.len();
            }
        }
        Ok(())
    }
    /// The segment store behind this disk when its shard I/O can join a batch of
    /// several disks' I/O handed to the kernel at once ([`run_batch`], io_uring);
    /// `None` (the default) for any other disk, whose I/O runs one call at a time.
    fn batch_target(&self) -> Option<&DirDisk> {
        None
    }
    /// Deletes a shard object; deleting a missing one is not an error.
    fn delete_shard(&self, key: ShardKey) -> io::Result<()>;
    /// Every shard object on the disk (for fsck and orphan scans).
    fn list_shards(&self) -> io::Result<Vec<ShardKey>>;
    /// When the shard object was last written.
    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime>;
    /// Makes every write and delete so far durable (data and directory entries).
    fn sync(&self) -> io::Result<()>;
    /// The first step of a sync, for disks sharing a [`Disk::sync_domain`]: writes out
    /// what the disk keeps beside its shard objects (an index), so that the one `sync` of
    /// the domain, by any of its disks, makes this disk's writes durable too. Then
    /// [`Disk::synced`] finishes. A plain [`Disk::sync`] runs all three steps itself.
    fn stage_sync(&self) -> io::Result<()> {
        Ok(())
    }
    /// The last step of a sync, after a `sync` of the disk's domain succeeded since its
    /// [`Disk::stage_sync`]: upkeep that must wait for durability (freeing the space of
    /// deleted objects).
    fn synced(&self) -> io::Result<()> {
        Ok(())
    }
    /// The filesystem the disk lives on, when [`Disk::sync`] syncs that whole filesystem:
    /// disks sharing one need a single sync per commit and share its free space. `None`:
    /// each disk syncs and counts on its own.
    fn sync_domain(&self) -> Option<u64> {
        None
    }
    /// Capacity and free space.
    fn space(&self) -> io::Result<DiskSpace>;
    /// Whether the disk is still where it was opened: an error when its directory was
    /// removed or replaced, or its drive went away (the open handle outlives them).
    fn check_present(&self) -> io::Result<()> {
        Ok(())
    }
    /// The disk label, if one was written.
    fn read_label(&self) -> io::Result<Option<Vec<u8>>>;
    /// Writes the disk label atomically and durably.
    fn write_label(&self, bytes: &[u8]) -> io::Result<()>;
}

/// One contiguous byte range of a shard object, read into consecutive buffers (see
/// [`Disk::read_shard_ranges`]).
pub struct ShardRange<'a> {
    /// Where the range starts in the object.
    pub offset: u64,
    /// Where its bytes go, in order; their lengths add up to the range's length.
    pub bufs: Vec<&'a mut [u8]>,
}

impl ShardRange<'_> {
    /// The range's length in bytes.
    pub fn len(&self) -> usize {
        self.bufs.iter().map(|b| b.len()).sum()
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Helpers for the store's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::types::{ShardIndex, ShardKey, StripeId};

    /// Shard `index` of stripe `stripe`.
    pub(crate) fn key(stripe: u64, index: u8) -> ShardKey {
        ShardKey {
            stripe: StripeId(stripe),
            index: ShardIndex(index),
        }
    }
}

/// A shared handle to a disk.
pub type DiskRef = Arc<dyn Disk>;

/// Distinguishes temp files of concurrent `write_atomic` calls within one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Removes the temp file unless the rename consumed it.
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: the caller already gets the error that brought us here.
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes a file atomically and durably: temp file, fsync, rename, fsync of the directory.
/// On failure the temp file is removed and the old file (if any) is untouched. The new
/// file has mode 0600 whatever the umask and the old file's mode (a rewrite of an older
/// volume's 0644 superblock makes it private).
///
/// The temp file is `.NAME.tmp.PID.N` in the same directory, so the rename never crosses
/// filesystems. If only the final directory fsync fails, the new content is already in
/// place but may not survive a power cut; the error is returned so the caller treats the
/// write as not durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (tmp_path, mut file) = create_temp(dir, name)?;
    let mut guard = TempGuard {
        path: Some(tmp_path.clone()),
    };
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp_path, path)?;
    guard.path = None;
    sync_dir(dir)
}

/// Opens a fresh temp file next to the target. A name can be taken by a leftover of a
/// crashed process that had the same pid, so a few sequence numbers are tried.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp.{pid}.{seq}"));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Makes the entries of a directory durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomic_creates_and_replaces_without_leaving_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("doc.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(names_in(tmp.path()), vec!["doc.json".to_string()]);
    }

    #[test]
    fn write_atomic_failure_leaves_old_file_and_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("target");
        // A non-empty directory in the way makes the rename fail after the temp is written.
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"old").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"old");
        assert_eq!(names_in(tmp.path()), vec!["target".to_string()]);
    }

    #[test]
    fn write_atomic_writes_private_files_even_over_a_loose_one() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("doc");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, PRIVATE_FILE_MODE);
    }

    #[test]
    fn write_atomic_refuses_a_path_without_file_name() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn write_atomic_in_missing_directory_fails_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("missing").join("doc");
        assert_eq!(
            write_atomic(&path, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(names_in(tmp.path()), Vec::<String>::new());
    }
}

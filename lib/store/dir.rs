//! `DirDisk`: the shard store of one real disk, kept in a directory.
//!
//! ```text
//! DISK/argosfs-disk.json                 the disk label (written with write_atomic)
//! DISK/shards/XX/SSSSSSSSSSSSSSSS.I      one file per shard object
//! DISK/spare/<hex>                       files a new shard takes over by rename
//! ```
//!
//! `XX` is the low byte of the stripe id in hex (a 256-way fan-out keeps directories
//! small), `S…` the stripe id as 16 lowercase hex digits, `I` the shard index in decimal.
//! Any other name under `shards/` is ignored, so temp files and debris never look like
//! shards.
//!
//! Durability: `put_shard` and `delete_shard` do not fsync. [`Disk::sync`] issues one
//! syncfs(2) on the filesystem holding the disk directory, which writes back every dirty
//! file and directory entry of that filesystem and (on Linux 5.8 and later) reports any
//! writeback error raised since the last sync. A shard is durable once a later `sync` has
//! returned Ok. The disk directory and its `shards/` tree must therefore live on one
//! filesystem (no other filesystem mounted below it).
//!
//! Privacy: every directory here is created 0700 and every file 0600 (`super::private`),
//! and `create` sets an existing disk directory to 0700; [`DirDisk::audit`] lists the
//! objects to check.

use super::private::{
    Audit, PRIVATE_FILE_MODE, create_private_dir, create_private_dir_all, make_dir_private,
};
use super::{Disk, DiskSpace, ShardRange, sync_dir, write_atomic};
use crate::types::{ShardIndex, ShardKey, StripeId};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::SystemTime;

/// Name of the label file in the disk directory.
pub const LABEL_FILE: &str = "argosfs-disk.json";
/// Name of the directory holding the shard fan-out.
const SHARDS_DIR: &str = "shards";

/// A shard store in a directory, usually the mount point of one drive.
///
/// Layout: the label in `DISK/argosfs-disk.json`, each shard in
/// `DISK/shards/XX/SSSSSSSSSSSSSSSS.I` (`XX` the low byte of the stripe id in hex, `S…`
/// the stripe id in 16 hex digits, `I` the shard index in decimal).
///
/// Durability: puts and deletes are not fsynced one by one. [`Disk::sync`] issues one
/// syncfs(2) on the filesystem holding the disk directory, which writes back every dirty
/// file and directory entry there and (Linux 5.8+) reports writeback errors raised since
/// the last sync; a shard is durable once a later `sync` returned Ok. The `shards/` tree
/// must therefore be on the same filesystem as the disk directory.
///
/// Holds no lock: every operation works on its own file, so many threads may use one
/// `DirDisk` at once.
#[derive(Debug)]
pub struct DirDisk {
    root: PathBuf,
    shards: PathBuf,
    /// Kept open for syncfs(2) and statvfs, which act on the filesystem behind it.
    dir: File,
    /// Files a new shard can take by rename (see [`DirDisk::start_spares`]).
    spares: Arc<SparePool>,
    filler: Option<std::thread::JoinHandle<()>>,
}

/// Name of the directory of spare files inside a disk directory.
pub const SPARE_DIR: &str = "spare";
/// Empty files the filler thread keeps ready.
const SPARES_WANTED: usize = 128;
/// Files of deleted shards kept for reuse at most.
const SPARES_MAX: usize = 1024;

/// Files made ahead of time by a background thread, and files of deleted shards, that a
/// new shard takes over by rename. Creating a file costs the filesystem an inode
/// allocation (on ext4 without a journal, a scan for recently deleted inodes that
/// dominated the write path in profiles); a rename costs directory entries only.
#[derive(Debug, Default)]
struct SparePool {
    dir: PathBuf,
    files: Mutex<Vec<PathBuf>>,
    wanted: Condvar,
    is_active: AtomicBool,
    is_stopping: AtomicBool,
    next_name: AtomicU64,
}

impl SparePool {
    fn take(&self) -> Option<PathBuf> {
        if !self.is_active.load(Ordering::Acquire) {
            return None;
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let file = files.pop();
        if files.len() < SPARES_WANTED / 2 {
            self.wanted.notify_one();
        }
        file
    }

    fn fresh_name(&self) -> PathBuf {
        self.dir.join(format!(
            "{:016x}",
            self.next_name.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Keeps the file of a deleted shard, emptied, for reuse; false when the pool is full
    /// or off (the bound is checked before the rename, so concurrent deletes may overshoot
    /// it by a few files).
    fn recycle(&self, path: &Path) -> bool {
        if !self.is_active.load(Ordering::Acquire) {
            return false;
        }
        if self.files.lock().unwrap_or_else(|p| p.into_inner()).len() >= SPARES_MAX {
            return false;
        }
        let target = self.fresh_name();
        if fs::rename(path, &target).is_err() {
            return false;
        }
        // Free the deleted shard's blocks now rather than when a new shard takes the
        // file: the space shows as free at once, and deleted bytes do not linger. The
        // file becomes a new shard as it is, so one left 0644 by an older version is
        // made private here, off the write path.
        let emptied = nix::unistd::truncate(&target, 0)
            .map_err(io::Error::from)
            .and_then(|()| {
                fs::set_permissions(&target, fs::Permissions::from_mode(PRIVATE_FILE_MODE))
            });
        if let Err(e) = emptied {
            tracing::debug!(file = %target.display(), error = %e, "cannot empty a recycled shard file");
            let _ = fs::remove_file(&target);
            return true;
        }
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(target);
        true
    }

    /// The filler thread: tops the pool up whenever it runs low.
    fn fill(&self) {
        while !self.is_stopping.load(Ordering::Acquire) {
            let missing = {
                let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
                let files = if files.len() >= SPARES_WANTED {
                    self.wanted
                        .wait_timeout(files, std::time::Duration::from_millis(200))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                } else {
                    files
                };
                SPARES_WANTED.saturating_sub(files.len())
            };
            for _ in 0..missing {
                let path = self.fresh_name();
                let created = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(PRIVATE_FILE_MODE)
                    .open(&path);
                match created {
                    Ok(_) => self
                        .files
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(path),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        tracing::debug!(dir = %self.dir.display(), error = %e, "cannot make spare shard files");
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for DirDisk {
    fn drop(&mut self) {
        self.spares.is_stopping.store(true, Ordering::Release);
        self.spares.wanted.notify_all();
        if let Some(filler) = self.filler.take() {
            let _ = filler.join();
        }
    }
}

impl DirDisk {
    /// Creates (if missing) the disk directory and its 256 fan-out directories, and makes
    /// the new directories durable. An existing disk directory is reused, set to mode 0700
    /// (often a drive's mount point, 0755: the shards must not be readable through it).
    pub fn create(path: &Path) -> io::Result<DirDisk> {
        // Directories that do not exist yet: their entries in their parents need an fsync.
        let mut missing = Vec::new();
        let mut cursor = Some(path);
        while let Some(dir) = cursor {
            if dir.as_os_str().is_empty() || fs::symlink_metadata(dir).is_ok() {
                break;
            }
            missing.push(dir.to_path_buf());
            cursor = dir.parent();
        }
        create_private_dir_all(path)?;
        make_dir_private(path)?;
        let shards = path.join(SHARDS_DIR);
        create_private_dir(&shards)?;
        for fan in 0..=u8::MAX {
            create_private_dir(&shards.join(fan_name(fan)))?;
        }
        sync_dir(&shards)?;
        sync_dir(path)?;
        for dir in &missing {
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        DirDisk::open(path)
    }

    /// Opens an existing disk directory. Refuses a path that is not a directory; missing
    /// fan-out directories are recreated when a shard is written into them.
    pub fn open(path: &Path) -> io::Result<DirDisk> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(DirDisk {
            root: path.to_path_buf(),
            shards: path.join(SHARDS_DIR),
            dir,
            spares: Arc::new(SparePool {
                dir: path.join(SPARE_DIR),
                ..SparePool::default()
            }),
            filler: None,
        })
    }

    /// Lets new shards take spare files by rename, kept ready by a background thread,
    /// and keeps files of deleted shards for reuse (in `DISK/spare/`, empty or holding
    /// freed shard bytes until reused). Only for a volume open for writing: a reader or
    /// fsck must not create files.
    pub fn start_spares(&mut self) -> io::Result<()> {
        if self.filler.is_some() {
            return Ok(());
        }
        let pool = &self.spares;
        create_private_dir(&pool.dir)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(&pool.dir)? {
            found.push(entry?.path());
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        pool.next_name.store(seed, Ordering::Relaxed);
        *pool.files.lock().unwrap_or_else(|p| p.into_inner()) = found;
        pool.is_active.store(true, Ordering::Release);
        let filler_pool = Arc::clone(pool);
        self.filler = Some(
            std::thread::Builder::new()
                .name("argosfs-spares".into())
                .spawn(move || filler_pool.fill())?,
        );
        Ok(())
    }

    /// The disk directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Puts the objects of the disk directory at `path` that must be private into
    /// `audit`: the directory, its label, `shards/` with its fan-out directories, and
    /// `spare/`; with `is_deep`, also everything below `shards/` and `spare/` (a stat per
    /// shard: for fsck, not for every open).
    pub fn audit(path: &Path, is_deep: bool, audit: &mut Audit) {
        audit.configured_dir(path);
        audit.object(&path.join(LABEL_FILE));
        let shards = path.join(SHARDS_DIR);
        let spare = path.join(SPARE_DIR);
        if is_deep {
            audit.tree(&shards);
            audit.tree(&spare);
        } else {
            audit.dir_and_entries(&shards);
            audit.object(&spare);
        }
    }

    /// The file that holds (or would hold) the shard object `key`. For fsck, which
    /// moves foreign or unreadable objects out of the shard tree instead of deleting them.
    pub fn shard_file(&self, key: ShardKey) -> PathBuf {
        self.shard_path(key)
    }

    fn fan_dir(&self, stripe: StripeId) -> PathBuf {
        self.shards.join(fan_name(stripe.0 as u8))
    }

    fn shard_path(&self, key: ShardKey) -> PathBuf {
        self.fan_dir(key.stripe).join(shard_name(key))
    }

    /// Makes `shards/` and a fan-out directory someone removed again (sync() makes the
    /// new entries durable), but never the disk directory itself: when that is gone, the
    /// disk is gone (a failed drive, an unmounted one), and recreating the path would
    /// write shards where no label says which disk they belong to.
    fn recreate_fan(&self, stripe: StripeId) -> io::Result<()> {
        create_private_dir(&self.shards)?;
        create_private_dir(&self.fan_dir(stripe))
    }

    fn open_for_put(&self, key: ShardKey) -> io::Result<(PathBuf, File)> {
        let path = self.shard_path(key);
        if let Some(spare) = self.spares.take() {
            let renamed = match fs::rename(&spare, &path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.recreate_fan(key.stripe)?;
                    fs::rename(&spare, &path)
                }
                other => other,
            };
            if renamed.is_ok() {
                let file = OpenOptions::new().write(true).truncate(true).open(&path)?;
                return Ok((path, file));
            }
        }
        let open = |path: &Path| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(PRIVATE_FILE_MODE)
                .open(path)
        };
        match open(&path) {
            Ok(file) => Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.recreate_fan(key.stripe)?;
                let file = open(&path)?;
                Ok((path, file))
            }
            Err(e) => Err(e),
        }
    }
}

/// Fills `bufs` in order from `offset` of `file` with as few `preadv` calls as the kernel
/// allows; `UnexpectedEof` if the file ends first.
fn read_exact_vectored_at(file: &File, mut offset: u64, bufs: &mut [&mut [u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSliceMut<'_>> = bufs
        .iter_mut()
        .filter(|b| !b.is_empty())
        .map(|b| IoSliceMut::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match nix::sys::uio::preadv(file, rest, offset as i64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                offset += n as u64;
                IoSliceMut::advance_slices(&mut rest, n);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Disk for DirDisk {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
        let (path, mut file) = self.open_for_put(key)?;
        if let Err(e) = write_all_parts(&mut file, parts) {
            // A partial object would only be caught later by its CRC; better not to leave it.
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(())
    }

    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
        fs::read(self.shard_path(key))
    }

    fn read_shard_ranges(&self, key: ShardKey, ranges: &mut [ShardRange<'_>]) -> io::Result<()> {
        let file = File::open(self.shard_path(key))?;
        if ranges.len() > 1 {
            // A small read (a head, then blocks further on): exactly these ranges are
            // wanted and the descriptor lives for this call only, so read-ahead could
            // only add bytes nobody reads (the head's read dragged 16 KiB; a cold 4 KiB
            // read fetched 21 KiB from the disk instead of 14). A read of one range from
            // the start (a whole stripe's worth, say) keeps the kernel's usual
            // behaviour. Only a hint, as below.
            let _ = nix::fcntl::posix_fadvise(
                &file,
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_RANDOM,
            );
        }
        // Start the disk on every range but the first at once, so a cold read of a head
        // and a distant block waits for the disk about once rather than once per range.
        // (Announcing a large first range as well measured no faster.)
        for range in ranges.iter().skip(1) {
            // Only a hint: a failure costs nothing but the overlap.
            let _ = nix::fcntl::posix_fadvise(
                &file,
                range.offset as i64,
                range.len() as i64,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            );
        }
        for range in ranges.iter_mut() {
            read_exact_vectored_at(&file, range.offset, &mut range.bufs)?;
        }
        Ok(())
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        let path = self.shard_path(key);
        if self.spares.recycle(&path) {
            return Ok(());
        }
        match fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
        let mut keys = Vec::new();
        let fans = match fs::read_dir(&self.shards) {
            Ok(fans) => fans,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(e),
        };
        for fan in fans {
            let fan = fan?;
            let Some(fan_byte) = fan.file_name().to_str().and_then(parse_fan_name) else {
                continue;
            };
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(fan.path())? {
                let entry = entry?;
                let Some(key) = entry.file_name().to_str().and_then(parse_shard_name) else {
                    continue;
                };
                // A shard filed under the wrong fan-out could never be read by its key.
                if key.stripe.0 as u8 != fan_byte || !entry.file_type()?.is_file() {
                    continue;
                }
                keys.push(key);
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }

    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
        fs::metadata(self.shard_path(key))?.modified()
    }

    fn sync(&self) -> io::Result<()> {
        nix::unistd::syncfs(&self.dir).map_err(io::Error::from)
    }

    fn sync_domain(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        self.dir.metadata().ok().map(|m| m.dev())
    }

    fn check_present(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let open = self.dir.metadata()?;
        let now = fs::metadata(&self.root)?;
        if (open.dev(), open.ino()) != (now.dev(), now.ino()) {
            return Err(io::Error::other(format!(
                "{} is another directory than the one opened",
                self.root.display()
            )));
        }
        Ok(())
    }

    fn space(&self) -> io::Result<DiskSpace> {
        let stat = nix::sys::statvfs::fstatvfs(&self.dir).map_err(io::Error::from)?;
        // The libc field types differ between platforms, hence the casts.
        let fragment = stat.fragment_size() as u64;
        Ok(DiskSpace {
            total_bytes: (stat.blocks() as u64).saturating_mul(fragment),
            free_bytes: (stat.blocks_available() as u64).saturating_mul(fragment),
        })
    }

    fn read_label(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.root.join(LABEL_FILE)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.root.join(LABEL_FILE), bytes)
    }
}

/// Writes the parts with as few system calls as the kernel allows, without joining them.
fn write_all_parts(file: &mut File, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| IoSlice::new(part))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut rest, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn fan_name(fan: u8) -> String {
    format!("{fan:02x}")
}

fn shard_name(key: ShardKey) -> String {
    format!("{:016x}.{}", key.stripe.0, key.index.0)
}

fn parse_fan_name(name: &str) -> Option<u8> {
    let fan = u8::from_str_radix(name, 16).ok()?;
    (fan_name(fan) == name).then_some(fan)
}

/// Accepts only the exact form `shard_name` writes, so no two names map to one key.
fn parse_shard_name(name: &str) -> Option<ShardKey> {
    let (stripe, index) = name.split_once('.')?;
    if stripe.len() != 16 || !stripe.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let key = ShardKey {
        stripe: StripeId(u64::from_str_radix(stripe, 16).ok()?),
        index: ShardIndex(index.parse().ok()?),
    };
    (shard_name(key) == name).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(stripe: u64, index: u8) -> ShardKey {
        ShardKey {
            stripe: StripeId(stripe),
            index: ShardIndex(index),
        }
    }

    fn spare_count(root: &Path) -> usize {
        fs::read_dir(root.join(SPARE_DIR)).map_or(0, |d| d.count())
    }

    #[test]
    fn spare_files_are_taken_by_new_shards_and_deleted_shards_recycled() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("disk");
        DirDisk::create(&root).unwrap();
        // Without start_spares (readers, fsck) nothing is created.
        let plain = DirDisk::open(&root).unwrap();
        plain.put_shard(key(1, 0), &[b"one"]).unwrap();
        assert!(!root.join(SPARE_DIR).exists());
        drop(plain);

        let mut disk = DirDisk::open(&root).unwrap();
        disk.start_spares().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while spare_count(&root) < SPARES_WANTED && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(spare_count(&root), SPARES_WANTED);
        disk.put_shard(key(2, 0), &[b"two", b"!"]).unwrap();
        assert_eq!(disk.get_shard(key(2, 0)).unwrap(), b"two!");
        // A deleted shard's file goes to the pool, and a new shard overwrites it fully.
        disk.put_shard(key(3, 1), &[&[9u8; 5000]]).unwrap();
        disk.delete_shard(key(3, 1)).unwrap();
        assert!(disk.get_shard(key(3, 1)).is_err());
        disk.put_shard(key(4, 1), &[&[7u8; 5000]]).unwrap();
        let in_use = disk.shard_file(key(4, 1));
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(&in_use).unwrap().ino();
        disk.delete_shard(key(4, 1)).unwrap();
        assert!(!in_use.exists());
        // The same file (the filler may add others meanwhile), emptied.
        let recycled: Vec<u64> = fs::read_dir(root.join(SPARE_DIR))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap())
            .filter(|m| m.ino() == inode)
            .map(|m| m.len())
            .collect();
        assert_eq!(
            recycled,
            [0],
            "the deleted shard's file waits in the pool, empty"
        );
        for stripe in 10..10 + 2 * SPARES_WANTED as u64 {
            disk.put_shard(key(stripe, 0), &[b"short"]).unwrap();
        }
        for stripe in 10..10 + 2 * SPARES_WANTED as u64 {
            assert_eq!(disk.get_shard(key(stripe, 0)).unwrap(), b"short");
        }
        assert!(
            !disk
                .list_shards()
                .unwrap()
                .iter()
                .any(|k| k.stripe == StripeId(3))
        );
        drop(disk); // stops the filler thread
        // A later open adopts the spares left behind.
        let mut again = DirDisk::open(&root).unwrap();
        again.start_spares().unwrap();
        again.put_shard(key(99, 0), &[b"x"]).unwrap();
        assert_eq!(again.get_shard(key(99, 0)).unwrap(), b"x");
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn everything_made_is_private_and_an_existing_disk_directory_made_so() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("mnt");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let mut disk = DirDisk::create(&root).unwrap();
        assert_eq!(
            mode_of(&root),
            0o700,
            "a drive's mount point is made private"
        );
        disk.write_label(b"label").unwrap();
        disk.start_spares().unwrap();
        disk.put_shard(key(1, 0), &[b"one"]).unwrap();
        // A shard file of an older version (0644) is private again once recycled.
        disk.put_shard(key(2, 0), &[b"two"]).unwrap();
        let old = disk.shard_file(key(2, 0));
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(&old).unwrap().ino();
        disk.delete_shard(key(2, 0)).unwrap();
        let recycled: Vec<u32> = fs::read_dir(root.join(SPARE_DIR))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| fs::metadata(p).unwrap().ino() == inode)
            .map(|p| mode_of(&p))
            .collect();
        assert_eq!(recycled, [0o600]);
        // A removed fan-out directory comes back private.
        fs::remove_dir(root.join("shards/03")).unwrap();
        disk.put_shard(key(3, 0), &[b"three"]).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while spare_count(&root) < SPARES_WANTED && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(disk); // stops the filler: nothing changes under the checks below

        for dir in [
            "",
            "shards",
            "shards/00",
            "shards/03",
            "shards/ff",
            SPARE_DIR,
        ] {
            assert_eq!(mode_of(&root.join(dir)), 0o700, "{dir}");
        }
        for file in [
            LABEL_FILE,
            "shards/01/0000000000000001.0",
            "shards/03/0000000000000003.0",
        ] {
            assert_eq!(mode_of(&root.join(file)), 0o600, "{file}");
        }
        let spares: Vec<u32> = fs::read_dir(root.join(SPARE_DIR))
            .unwrap()
            .map(|e| mode_of(&e.unwrap().path()))
            .collect();
        assert!(
            !spares.is_empty() && spares.iter().all(|m| *m == 0o600),
            "{spares:?}"
        );
        let mut audit = Audit::new(10);
        DirDisk::audit(&root, true, &mut audit);
        assert!(audit.is_clean(), "{audit:?}");
        // The audit sees a loosened object in either depth where it looks.
        fs::set_permissions(root.join("shards/ff"), fs::Permissions::from_mode(0o755)).unwrap();
        let mut audit = Audit::new(10);
        DirDisk::audit(&root, false, &mut audit);
        assert_eq!(audit.loose_count, 1, "{audit:?}");
        assert_eq!(audit.loose[0].path, root.join("shards/ff"));
    }

    #[test]
    fn create_lays_out_fan_out_and_open_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a").join("disk");
        let disk = DirDisk::create(&root).unwrap();
        assert_eq!(disk.path(), root);
        for fan in [0u8, 0x7f, 0xff] {
            assert!(root.join("shards").join(format!("{fan:02x}")).is_dir());
        }
        assert_eq!(fs::read_dir(root.join("shards")).unwrap().count(), 256);
        // Creating again over an existing disk is harmless.
        DirDisk::create(&root).unwrap();

        let file = tmp.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = DirDisk::open(&file).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        assert!(DirDisk::create(&file).is_err());
        let err = DirDisk::open(&tmp.path().join("nope")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn put_get_delete_list_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(tmp.path()).unwrap();
        let a = key(0x0123_4567_89ab_cdef, 0);
        let b = key(0x0123_4567_89ab_cdef, 17);
        let c = key(7, 255);
        disk.put_shard(a, &[b"head", b"", b"payload", b"crc!"])
            .unwrap();
        disk.put_shard(b, &[b"bee"]).unwrap();
        disk.put_shard(c, &[]).unwrap();
        assert_eq!(disk.get_shard(a).unwrap(), b"headpayloadcrc!");
        assert_eq!(disk.get_shard(b).unwrap(), b"bee");
        assert_eq!(disk.get_shard(c).unwrap(), b"");
        assert!(tmp.path().join("shards/ef/0123456789abcdef.17").is_file());
        let mut expected = vec![a, b, c];
        expected.sort();
        assert_eq!(disk.list_shards().unwrap(), expected);

        // A put replaces a leftover completely, even a longer one.
        disk.put_shard(a, &[b"short"]).unwrap();
        assert_eq!(disk.get_shard(a).unwrap(), b"short");

        disk.delete_shard(b).unwrap();
        disk.delete_shard(b).unwrap();
        assert_eq!(
            disk.get_shard(b).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            disk.shard_modified(b).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(disk.shard_modified(a).unwrap() <= SystemTime::now());
        let mut expected = vec![a, c];
        expected.sort();
        assert_eq!(disk.list_shards().unwrap(), expected);
        disk.sync().unwrap();

        // Reopening sees the same objects.
        let again = DirDisk::open(tmp.path()).unwrap();
        assert_eq!(again.list_shards().unwrap(), expected);
        assert_eq!(again.get_shard(c).unwrap(), b"");
    }

    #[test]
    fn list_ignores_foreign_names() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(tmp.path()).unwrap();
        let good = key(0x10, 3);
        disk.put_shard(good, &[b"x"]).unwrap();
        let shards = tmp.path().join("shards");
        for junk in [
            "10/0000000000000010.3.tmp",
            "10/.0000000000000010.3",
            "10/0000000000000010.03",
            "10/0000000000000010.256",
            "10/000000000000010.3",
            "10/00000000000000AB.3",
            "10/+000000000000010.3",
            "10/notes.txt",
            // Right name, wrong fan-out: get_shard could never find it.
            "11/0000000000000010.4",
        ] {
            fs::write(shards.join(junk), b"junk").unwrap();
        }
        fs::write(shards.join("README"), b"junk").unwrap();
        fs::create_dir(shards.join("zz")).unwrap();
        fs::create_dir(shards.join("10/0000000000000110.1")).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![good]);
    }

    #[test]
    fn missing_fan_out_is_recreated_on_put_and_missing_tree_lists_empty() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("disk")).unwrap();
        let disk = DirDisk::open(&tmp.path().join("disk")).unwrap();
        assert_eq!(disk.list_shards().unwrap(), Vec::new());
        let k = key(0xabcd, 1);
        disk.put_shard(k, &[b"data"]).unwrap();
        assert_eq!(disk.get_shard(k).unwrap(), b"data");
        assert_eq!(disk.list_shards().unwrap(), vec![k]);
        // A disk directory that vanished is not made again: the write fails.
        fs::remove_dir_all(tmp.path().join("disk")).unwrap();
        let err = disk.put_shard(key(0x1234, 0), &[b"data"]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!tmp.path().join("disk").exists());
    }

    #[test]
    fn label_round_trip_and_space() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(tmp.path()).unwrap();
        assert_eq!(disk.read_label().unwrap(), None);
        disk.write_label(b"label one").unwrap();
        disk.write_label(b"label two").unwrap();
        assert_eq!(disk.read_label().unwrap().unwrap(), b"label two");
        assert_eq!(fs::read(tmp.path().join(LABEL_FILE)).unwrap(), b"label two");
        let space = disk.space().unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.free_bytes <= space.total_bytes);
    }

    #[test]
    fn usable_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = std::sync::Arc::new(DirDisk::create(tmp.path()).unwrap());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let disk = disk.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let k = key(t * 1000 + i, (i % 6) as u8);
                        let body = format!("{t}-{i}");
                        disk.put_shard(k, &[body.as_bytes()]).unwrap();
                        assert_eq!(disk.get_shard(k).unwrap(), body.as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        disk.sync().unwrap();
        assert_eq!(disk.list_shards().unwrap().len(), 200);
    }
}

//! `DirDisk`: the shard store of one real disk, kept in a directory.
//!
//! ```text
//! DISK/argosfs-disk.json                 the disk label (written with write_atomic)
//! DISK/shards/XX/SSSSSSSSSSSSSSSS.I      one file per shard object
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

use super::{Disk, DiskSpace, sync_dir, write_atomic};
use crate::types::{ShardIndex, ShardKey, StripeId};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
}

impl DirDisk {
    /// Creates (if missing) the disk directory and its 256 fan-out directories, and makes
    /// the new directories durable. An existing disk directory is reused as it is.
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
        fs::create_dir_all(path)?;
        let shards = path.join(SHARDS_DIR);
        create_dir_if_missing(&shards)?;
        for fan in 0..=u8::MAX {
            create_dir_if_missing(&shards.join(fan_name(fan)))?;
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
        })
    }

    /// The disk directory.
    pub fn path(&self) -> &Path {
        &self.root
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

    fn open_for_put(&self, key: ShardKey) -> io::Result<(PathBuf, File)> {
        let path = self.shard_path(key);
        let open = |path: &Path| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        };
        match open(&path) {
            Ok(file) => Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Someone removed a fan-out directory; sync() makes the new entry durable.
                fs::create_dir_all(self.fan_dir(key.stripe))?;
                let file = open(&path)?;
                Ok((path, file))
            }
            Err(e) => Err(e),
        }
    }
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

    fn get_shard_ranges(
        &self,
        key: ShardKey,
        ranges: &[(usize, usize)],
    ) -> io::Result<Vec<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        let file = File::open(self.shard_path(key))?;
        ranges
            .iter()
            .map(|&(offset, len)| {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset as u64)?;
                Ok(buf)
            })
            .collect()
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        match fs::remove_file(self.shard_path(key)) {
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

fn create_dir_if_missing(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
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

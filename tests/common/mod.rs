//! Helpers shared by the integration tests: fresh volumes on temporary disk directories.

#![allow(dead_code)]

use argosfs::data::compress::Compression;
use argosfs::store::{DiskRef, FaultyDisk};
use argosfs::types::DiskId;
use argosfs::volume::{Caller, DiskConfig, FormatOptions, KdfStrength, OpenOptions, Volume};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A tmpfs mounted for a test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount(8)'s syntax, "256k") on `dir`, made if missing;
    /// `None` where that is not allowed (not root).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "argosfs-test"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fault controls of each disk of an open volume.
pub type Faults = Arc<Mutex<HashMap<DiskId, Arc<FaultyDisk>>>>;

/// Closes a shared volume: after its commit no background job may hold it any more.
pub fn close_shared(vol: Arc<Volume>) {
    vol.commit().unwrap();
    Arc::try_unwrap(vol)
        .unwrap_or_else(|_| panic!("volume still shared after its commit"))
        .close()
        .unwrap();
}

/// A volume made for one test; the directories go away with it.
pub struct TestVolume {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub disks: Vec<PathBuf>,
    pub passphrase: Option<Vec<u8>>,
}

/// What to make.
#[derive(Clone, Debug)]
pub struct Spec {
    pub disks: usize,
    pub k: u8,
    pub m: u8,
    pub stripe_bytes: u32,
    pub compression: bool,
    pub encryption: bool,
    pub inline_max_bytes: u32,
    /// `None`: the default (k+1).
    pub min_shards: Option<u8>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            disks: 6,
            k: 4,
            m: 2,
            stripe_bytes: 64 << 10,
            compression: false,
            encryption: false,
            inline_max_bytes: 2048,
            min_shards: None,
        }
    }
}

impl Spec {
    pub fn layout(k: u8, m: u8) -> Spec {
        Spec {
            disks: usize::from(k + m),
            k,
            m,
            ..Spec::default()
        }
    }
}

pub fn make(spec: &Spec) -> TestVolume {
    make_in(spec, None)
}

/// [`make`] with the disk directories under `disk_parent` (say, a small tmpfs) instead
/// of the test's temporary directory.
pub fn make_in(spec: &Spec, disk_parent: Option<&Path>) -> TestVolume {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let parent = disk_parent.unwrap_or(dir.path()).to_path_buf();
    let disks: Vec<PathBuf> = (0..spec.disks)
        .map(|i| parent.join(format!("disk{i}")))
        .collect();
    let passphrase = spec
        .encryption
        .then(|| b"correct horse battery staple".to_vec());
    let options = FormatOptions {
        disks: disks
            .iter()
            .enumerate()
            .map(|(i, p)| DiskConfig::parse(DiskId(i as u16), p.to_str().unwrap()).unwrap())
            .collect(),
        layout: Some((spec.k, spec.m)),
        min_shards: spec.min_shards,
        stripe_bytes: spec.stripe_bytes,
        compression: if spec.compression {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        },
        passphrase: passphrase.clone(),
        kdf: KdfStrength::Cheap,
        force: false,
        inline_max_bytes: spec.inline_max_bytes,
    };
    argosfs::volume::format(&root, options).unwrap();
    TestVolume {
        dir,
        root,
        disks,
        passphrase,
    }
}

impl TestVolume {
    pub fn options(&self) -> OpenOptions {
        OpenOptions {
            passphrase: self.passphrase.clone(),
            ..OpenOptions::default()
        }
    }

    pub fn open(&self) -> Volume {
        Volume::open(&self.root, self.options()).unwrap()
    }

    pub fn open_with(&self, options: OpenOptions) -> argosfs::Result<Volume> {
        Volume::open(&self.root, options)
    }

    /// Opens with every disk wrapped in a FaultyDisk; returns the fault controls by disk id.
    pub fn open_faulty(&self) -> (Volume, Faults) {
        let handles: Faults = Arc::default();
        let h = handles.clone();
        let options = OpenOptions {
            disk_wrapper: Some(Arc::new(move |id, disk: DiskRef| {
                let faulty = Arc::new(FaultyDisk::new(disk));
                h.lock().unwrap().insert(id, faulty.clone());
                faulty as DiskRef
            })),
            ..self.options()
        };
        (Volume::open(&self.root, options).unwrap(), handles)
    }

    /// Opens the volume shared, with write-behind on when asked (as the mount does).
    pub fn open_shared(&self, write_behind: bool) -> Arc<Volume> {
        let vol = Arc::new(self.open());
        if write_behind {
            vol.enable_write_behind();
        }
        vol
    }

    /// Every shard object on disk `i` (as its store says once reopened: call with the
    /// volume closed or committed).
    pub fn shard_files(&self, i: usize) -> Vec<Shard> {
        let Ok(disk) = argosfs::store::DirDisk::open(&self.disks[i]) else {
            return Vec::new();
        };
        let keys = argosfs::store::Disk::list_shards(&disk).unwrap();
        keys.into_iter()
            .map(|key| Shard {
                disk: self.disks[i].clone(),
                key,
            })
            .collect()
    }

    /// The segment files of disk `i`'s store.
    pub fn segment_files(&self, i: usize) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.disks[i].join("store"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg."))
            .collect();
        out.sort();
        out
    }

    /// Every shard object on disk `i`, with the shard index its header names.
    pub fn indexed_shard_files(&self, i: usize) -> Vec<(Shard, u8)> {
        let volume = argosfs::volume::Superblock::load(&self.root)
            .unwrap()
            .volume;
        self.shard_files(i)
            .into_iter()
            .map(|shard| {
                let (object, _) =
                    argosfs::store::shard::decode_shard("test", shard.read(), Some(volume))
                        .unwrap();
                (shard, object.header.index.0)
            })
            .collect()
    }
}

/// One shard object in a disk's store, for tests that damage, copy or remove it behind
/// the volume's back (with the volume closed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    /// The disk directory.
    pub disk: PathBuf,
    /// The object.
    pub key: argosfs::types::ShardKey,
}

impl Shard {
    /// The object `key` of the disk directory `disk`.
    pub fn at(disk: &std::path::Path, key: argosfs::types::ShardKey) -> Shard {
        Shard {
            disk: disk.to_path_buf(),
            key,
        }
    }

    fn store(&self) -> argosfs::store::DirDisk {
        argosfs::store::DirDisk::open(&self.disk).unwrap()
    }

    /// Its bytes.
    pub fn read(&self) -> Vec<u8> {
        argosfs::store::Disk::get_shard(&self.store(), self.key).unwrap()
    }

    /// Whether the store holds it.
    pub fn exists(&self) -> bool {
        argosfs::store::Disk::get_shard(&self.store(), self.key).is_ok()
    }

    /// Takes it out of the store, durably.
    pub fn remove(&self) {
        let store = self.store();
        argosfs::store::Disk::delete_shard(&store, self.key).unwrap();
        argosfs::store::Disk::sync(&store).unwrap();
    }

    /// Replaces it with `bytes`, durably.
    pub fn write(&self, bytes: &[u8]) {
        let store = self.store();
        argosfs::store::Disk::put_shard(&store, self.key, &[bytes]).unwrap();
        argosfs::store::Disk::sync(&store).unwrap();
    }

    /// Overwrites bytes at `offset` of the object where it lies in its segment, as bit
    /// rot would (the store's index still says it is there).
    pub fn overwrite_at(&self, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let (segment, at) = self.store().shard_location(self.key).unwrap();
        assert!(
            offset + bytes.len() as u64 <= u64::from(at.len),
            "past the object's end"
        );
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment)
            .unwrap();
        file.write_all_at(bytes, at.offset + offset).unwrap();
        file.sync_all().unwrap();
    }

    /// Makes the store say the object was written `age` ago (an entry appended to the
    /// index log, as the store would write it), for tests of grace periods.
    pub fn backdate(&self, age: std::time::Duration) {
        use argosfs::store::index::{Entry, Location};
        use std::io::Write;
        let (_, at) = self.store().shard_location(self.key).unwrap();
        let written = std::time::SystemTime::now() - age;
        let written = written
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        let entry = Entry::Put(self.key, Location { written, ..at }).encode();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.disk.join("store/index.log"))
            .unwrap();
        log.write_all(&entry).unwrap();
        log.sync_all().unwrap();
    }
}

/// Flips a bit of the payload byte at `offset` of a shard object, in place.
pub fn flip_payload_byte(shard: &Shard, offset: usize) {
    let bytes = shard.read();
    let (object, _) = argosfs::store::shard::decode_shard("test", bytes.clone(), None).unwrap();
    let at = argosfs::store::shard::payload_byte_offset(object.payload().len(), offset);
    shard.overwrite_at(at as u64, &[bytes[at] ^ 0x10]);
}

pub fn root() -> Caller {
    Caller::root()
}

/// Creates `name` in the root directory and writes `data` into it.
pub fn put_file(vol: &Volume, name: &[u8], data: &[u8]) -> argosfs::types::InodeId {
    let c = root();
    let attr = vol
        .create(&c, argosfs::types::InodeId::ROOT, name, 0o644)
        .unwrap();
    vol.write(&c, attr.ino, 0, data).unwrap();
    attr.ino
}

pub fn read_all(vol: &Volume, ino: argosfs::types::InodeId) -> argosfs::Result<Vec<u8>> {
    let size = vol.getattr(ino)?.size;
    vol.read(ino, 0, size as usize)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A POSIX ACL in its xattr form (version 2, then tag/perm/id entries), for tests.
pub fn acl_xattr(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// Runs the library's fsck, check only, with the volume's passphrase (so an encrypted
/// volume's tree is checked too).
pub fn fsck_check(tv: &TestVolume) -> argosfs::fsck::Report {
    argosfs::fsck::check(
        &tv.root,
        &argosfs::fsck::Options {
            passphrase: tv.passphrase.clone(),
            ..argosfs::fsck::Options::default()
        },
        &argosfs::fsck::NoProgress,
    )
    .unwrap()
}

/// Runs a command and requires it to succeed, showing its stderr when it does not.
pub fn run_ok(command: &mut std::process::Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed ({}): {}",
        command.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

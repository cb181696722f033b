//! Inode records: attributes, xattrs, symlink targets, and file chunk references.

use crate::data::StripeInfo;
use crate::types::{DiskId, InodeId, StripeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The kind of an inode, as in the `S_IFMT` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// The volume's own file of packed small-file contents ([`PackedRef`]): in no
    /// directory, never shown to users; each of its chunks is a stripe holding the
    /// contents of many small files.
    Pack,
}

impl FileKind {
    /// The kind named by the `S_IFMT` bits of `mode`.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => FileKind::Regular,
            libc::S_IFDIR => FileKind::Directory,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFBLK => FileKind::BlockDevice,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this kind.
    pub fn type_bits(self) -> u32 {
        match self {
            FileKind::Regular => libc::S_IFREG,
            FileKind::Directory => libc::S_IFDIR,
            FileKind::Symlink => libc::S_IFLNK,
            FileKind::CharDevice => libc::S_IFCHR,
            FileKind::BlockDevice => libc::S_IFBLK,
            FileKind::Fifo => libc::S_IFIFO,
            FileKind::Socket => libc::S_IFSOCK,
            FileKind::Pack => libc::S_IFREG,
        }
    }

    /// The `d_type` value readdir reports.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileKind::Regular => libc::DT_REG,
            FileKind::Directory => libc::DT_DIR,
            FileKind::Symlink => libc::DT_LNK,
            FileKind::CharDevice => libc::DT_CHR,
            FileKind::BlockDevice => libc::DT_BLK,
            FileKind::Fifo => libc::DT_FIFO,
            FileKind::Socket => libc::DT_SOCK,
            FileKind::Pack => libc::DT_REG,
        }
    }
}

/// A point in time with nanoseconds, as stat reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before it).
    pub sec: i64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                sec: d.as_secs() as i64,
                nsec: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                if d.subsec_nanos() == 0 {
                    Timestamp {
                        sec: -(d.as_secs() as i64),
                        nsec: 0,
                    }
                } else {
                    Timestamp {
                        sec: -(d.as_secs() as i64) - 1,
                        nsec: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        if t.sec >= 0 {
            UNIX_EPOCH + std::time::Duration::new(t.sec as u64, t.nsec)
        } else {
            UNIX_EPOCH - std::time::Duration::from_secs(t.sec.unsigned_abs())
                + std::time::Duration::from_nanos(u64::from(t.nsec))
        }
    }
}

/// An inode's attributes. File contents and directory entries live in their own tables
/// so that an attribute change journals a small record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    /// What it is.
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links (directories: 2 + subdirectories).
    pub nlink: u32,
    /// Size in bytes (symlinks: target length).
    pub size: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last content change.
    pub mtime: Timestamp,
    /// Last attribute change.
    pub ctime: Timestamp,
    /// Device number of a character or block device.
    pub rdev: u64,
    /// Extended attributes, names and values as bytes.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Target of a symlink (bytes, never UTF-8 converted); empty otherwise.
    pub target: Vec<u8>,
}

impl Inode {
    /// A fresh inode stamped with the current time.
    pub fn new(kind: FileKind, perm: u32, uid: u32, gid: u32) -> Inode {
        let now = Timestamp::now();
        Inode {
            kind,
            perm: perm & 0o7777,
            uid,
            gid,
            nlink: if kind == FileKind::Directory { 2 } else { 1 },
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
            rdev: 0,
            xattrs: BTreeMap::new(),
            target: Vec::new(),
        }
    }

    /// The full `st_mode` (type and permission bits).
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | self.perm
    }
}

/// Where the bytes of one chunk (stripe-sized piece) of a file are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chunk {
    /// Small file contents kept in the metadata itself (never for encrypted volumes).
    Inline(Vec<u8>),
    /// An erasure-coded stripe on the disks.
    Stripe(StripeRef),
    /// The contents of a small file, packed with others' into a chunk of a pack file.
    Packed(PackedRef),
}

/// Where a packed small file's bytes are: `len` bytes at `offset` of chunk `index` of the
/// pack file `pack` (a [`FileKind::Pack`] inode whose chunk is a stripe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PackedRef {
    /// The pack file.
    pub pack: InodeId,
    /// Its chunk holding the bytes.
    pub index: u64,
    /// Where the file's bytes start in that chunk.
    pub offset: u32,
    /// How many bytes are the file's.
    pub len: u32,
}

impl PackedRef {
    /// The pack chunk this points into.
    pub fn chunk(&self) -> (InodeId, u64) {
        (self.pack, self.index)
    }
}

impl Chunk {
    /// Plaintext bytes of the chunk that count; bytes past this read as zeros.
    pub fn valid_len(&self) -> u64 {
        match self {
            Chunk::Inline(bytes) => bytes.len() as u64,
            Chunk::Stripe(s) => u64::from(s.valid_len),
            Chunk::Packed(p) => u64::from(p.len),
        }
    }
}

/// A reference to an encoded stripe and the disks holding its shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRef {
    /// The stripe (unique; never reused).
    pub id: StripeId,
    /// How it was encoded.
    pub info: StripeInfo,
    /// Disk of each shard, in shard order (k data then m parity); `None` for a shard
    /// that was not written because too few disks could take one (a degraded stripe,
    /// which heal completes).
    pub disks: Vec<Option<DiskId>>,
    /// Plaintext bytes that count (a truncate may shorten it without rewriting).
    pub valid_len: u32,
    /// Which blocks hold written data when the chunk has holes (zeros stored only
    /// because a later block was written); `None`: everything up to `valid_len` is data.
    pub written: Option<BlockMap>,
}

impl StripeRef {
    /// The disk holding shard `index`, if it was written.
    pub fn disk_of(&self, index: usize) -> Option<DiskId> {
        self.disks.get(index).copied().flatten()
    }

    /// The shards that were written, with their disks, in shard order.
    pub fn placed(&self) -> impl Iterator<Item = (usize, DiskId)> + '_ {
        self.disks
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
    }

    /// The shards that were never written.
    pub fn unwritten(&self) -> impl Iterator<Item = usize> + '_ {
        self.disks
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.is_none().then_some(i))
    }

    /// True when some shard was never written: the stripe has less than its redundancy.
    pub fn is_degraded(&self) -> bool {
        self.disks.iter().any(Option::is_none)
    }

    /// True when a shard sits on `disk`.
    pub fn uses(&self, disk: DiskId) -> bool {
        self.disks.contains(&Some(disk))
    }
}

/// Granularity of holes inside a chunk (what SEEK_HOLE and export can see).
pub const HOLE_BLOCK_BYTES: u64 = 4096;

/// A bitmap of the [`HOLE_BLOCK_BYTES`] blocks of a chunk that hold written data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMap(Vec<u64>);

impl BlockMap {
    /// A map where the blocks covering `0..len` are data.
    pub fn filled(len: u64) -> BlockMap {
        let mut map = BlockMap::default();
        map.mark(0, len);
        map
    }

    /// Marks the blocks touching `lo..hi` as data.
    pub fn mark(&mut self, lo: u64, hi: u64) {
        if hi <= lo {
            return;
        }
        for block in lo / HOLE_BLOCK_BYTES..=(hi - 1) / HOLE_BLOCK_BYTES {
            let (word, bit) = ((block / 64) as usize, block % 64);
            if self.0.len() <= word {
                self.0.resize(word + 1, 0);
            }
            self.0[word] |= 1 << bit;
        }
    }

    fn is_data(&self, block: u64) -> bool {
        self.0
            .get((block / 64) as usize)
            .is_some_and(|w| w & (1 << (block % 64)) != 0)
    }

    /// The data ranges within `0..len`, in order.
    pub fn regions(&self, len: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for block in 0..len.div_ceil(HOLE_BLOCK_BYTES) {
            if !self.is_data(block) {
                continue;
            }
            let start = block * HOLE_BLOCK_BYTES;
            let end = (start + HOLE_BLOCK_BYTES).min(len);
            match out.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => out.push((start, end)),
            }
        }
        out
    }

    /// `None` when every block of `0..len` is data (the common case needs no map).
    pub fn normalized(self, len: u64) -> Option<BlockMap> {
        let full = (0..len.div_ceil(HOLE_BLOCK_BYTES)).all(|b| self.is_data(b));
        (!full).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_map_regions() {
        let mut map = BlockMap::default();
        map.mark(100, 200);
        map.mark(8192, 8193);
        map.mark(12288, 20000);
        assert_eq!(map.regions(18000), vec![(0, 4096), (8192, 18000)]);
        assert!(BlockMap::filled(10000).normalized(10000).is_none());
        assert!(map.clone().normalized(20000).is_some());
        assert_eq!(BlockMap::default().regions(4096), vec![]);
    }
}

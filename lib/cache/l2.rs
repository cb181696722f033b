//! The L2 cache: the stored form of stripes in files under a local directory (mount
//! option `l2_cache=PATH`), meant for a device faster than the disks (an SSD in front of
//! HDDs). Owns the entry format, the directory, its byte bound and its writer thread;
//! knows nothing of how a stripe is decoded.
//!
//! What is cached is a stripe's *payload* as the data shards hold it: the plain bytes of
//! a plain stripe, the frame table and frames of a framed one, so on an encrypted volume
//! the sealed frames; no plaintext of an encrypted volume is ever written here. Entries
//! live in `PATH/<volume UUID>/<xx>/<stripe id, 16 hex digits>` (`xx` the id's low byte),
//! directories 0700, files 0600, all reached through a descriptor of the volume's
//! directory taken at open (a later mount over PATH, or a symlink put in its place, is
//! never followed).
//!
//! An entry is never trusted: its header must name this volume, this stripe and exactly
//! the record the metadata holds (lengths, flags, payload CRC), a read of the whole
//! payload must match the record's CRC32C, and a read of part of it the CRC32C of each
//! 4 KiB block it touches. An entry that fails is deleted and counted, and the read goes
//! to the disks. Stripe ids are never reused while a volume's metadata is committed, but
//! the ids handed out after the last commit are handed out again after a crash, so
//! opening deletes every entry whose id is not below the table's `next_stripe`. An I/O
//! error (the directory deleted or its file system full or failing) turns the cache off
//! until the volume is opened again, logged once; reads go on from the disks.
//!
//! Entries are written by one background thread from a bounded queue (a full queue skips
//! the entry, counted), as a temporary file renamed into place and never fsynced: a torn
//! entry after a power cut fails its checks. Recency is kept in memory and in each
//! file's mtime (refreshed on a hit at most once a minute), so it survives a remount;
//! the least recently used entries go when the bound is exceeded.
//!
//! ```text
//! entry file
//! offset size field
//! 0      8    magic        b"ARGL2ST\x1a"
//! 8      2    version      u16 LE, 1
//! 10     2    flags        u16 LE, 0 (an unknown bit: the entry is dropped)
//! 12     4    header_len   u32 LE: where the payload starts (a multiple of 4096)
//! 16     16   volume_id
//! 32     8    stripe id    u64 LE
//! 40     1    stripe flags (StripeInfo::flags)
//! 41     3    reserved     zero
//! 44     4    plain_len    u32 LE
//! 48     4    payload_len  u32 LE
//! 52     4    shard_len    u32 LE
//! 56     4    payload_crc  u32 LE (CRC32C of the whole payload, as the record's)
//! 60     4    block_bytes  u32 LE, 4096
//! 64     4*n  crc32c of each block of the payload (n = ceil(payload_len / 4096))
//! 64+4n  4    crc32c of every header byte before it
//! ..          zero up to header_len
//! header_len  payload_len  the payload
//! ```

use crate::types::{StripeId, VolumeId};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Magic of an entry file.
pub const MAGIC: [u8; 8] = *b"ARGL2ST\x1a";
/// Version of the entry format.
pub const VERSION: u16 = 1;
/// Bytes covered by each block CRC.
pub const BLOCK_BYTES: usize = 4096;
/// Bytes of the header before the block CRCs.
const FIXED_HEADER_BYTES: usize = 64;
/// The payload starts at a multiple of this.
const HEADER_ALIGN: usize = 4096;
/// Bytes of payloads queued for the writer at most; beyond it entries are skipped.
const QUEUE_BYTES: u64 = 32 << 20;
/// Jobs queued for the writer at most.
const QUEUE_JOBS: usize = 512;
/// A hit refreshes an entry's mtime when it is older than this.
const TOUCH_AFTER_SECS: u64 = 60;
/// Default byte bound when `l2_cache_size` is not given.
pub const DEFAULT_CAPACITY_BYTES: u64 = 1 << 30;

/// Where the L2 cache lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Options {
    /// The cache directory (`l2_cache=PATH`); the volume's entries go in a directory
    /// named by its UUID inside.
    pub path: PathBuf,
    /// Bytes of entry files at most (headers included).
    pub capacity_bytes: u64,
}

/// What the metadata records of a stripe's stored payload; an entry must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadInfo {
    /// The stripe's flags (framed, compressed, sealed).
    pub flags: u8,
    /// Plain bytes.
    pub plain_len: u32,
    /// Stored payload bytes.
    pub payload_len: u32,
    /// Bytes of each shard.
    pub shard_len: u32,
    /// CRC32C of the payload.
    pub payload_crc: u32,
}

/// Bytes handed to the writer: parts that, end to end and cut at the payload's length,
/// are the payload (the data shards of a stripe as read, or one copy).
pub type Part = Box<dyn AsRef<[u8]> + Send>;

/// Why an L2 directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// It is there but not fit for use.
    #[error("L2 cache directory {path}: {why}")]
    Unusable {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An I/O error on it.
    #[error("L2 cache directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Counters and sizes of an L2 cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct L2Stats {
    /// Configured, opened and not turned off by an I/O error.
    pub is_enabled: bool,
    /// Reads it answered.
    pub hits: u64,
    /// Reads it did not (no entry).
    pub misses: u64,
    /// Payload bytes it answered with.
    pub hit_bytes: u64,
    /// Entries written.
    pub writes: u64,
    /// Bytes of entry files written.
    pub written_bytes: u64,
    /// Entries not written because the writer's queue was full.
    pub skipped_writes: u64,
    /// Entries deleted to stay within the bound.
    pub evictions: u64,
    /// Entries deleted because their stripe was freed (overwrite, truncate, unlink).
    pub removals: u64,
    /// Entries that failed their checks (deleted; the read went to the disks).
    pub verify_failures: u64,
    /// Entries deleted at open because their stripe id may be handed out again.
    pub dropped_at_open: u64,
    /// I/O errors (the first one turns the cache off).
    pub errors: u64,
    /// Bytes of entry files now.
    pub bytes: u64,
    /// Entries now.
    pub entries: u64,
    /// The byte bound.
    pub capacity_bytes: u64,
}

/// Where the payload of an entry of `payload_len` bytes starts.
pub fn header_len(payload_len: usize) -> usize {
    let blocks = payload_len.div_ceil(BLOCK_BYTES);
    (FIXED_HEADER_BYTES + 4 * blocks + 4).next_multiple_of(HEADER_ALIGN)
}

/// Bytes of the entry file of a payload of `payload_len` bytes.
pub fn entry_len(payload_len: usize) -> u64 {
    (header_len(payload_len) + payload_len) as u64
}

/// The entry's path inside the volume's directory.
fn entry_name(id: StripeId) -> String {
    format!("{:02x}/{:016x}", id.0 & 0xff, id.0)
}

/// The header of an entry for `payload` (its parts end to end).
fn encode_header(volume: VolumeId, id: StripeId, info: &PayloadInfo, blocks: &[u32]) -> Vec<u8> {
    let len = header_len(info.payload_len as usize);
    let mut h = Vec::with_capacity(len);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&(len as u32).to_le_bytes());
    h.extend_from_slice(&volume.0);
    h.extend_from_slice(&id.0.to_le_bytes());
    h.push(info.flags);
    h.extend_from_slice(&[0; 3]);
    h.extend_from_slice(&info.plain_len.to_le_bytes());
    h.extend_from_slice(&info.payload_len.to_le_bytes());
    h.extend_from_slice(&info.shard_len.to_le_bytes());
    h.extend_from_slice(&info.payload_crc.to_le_bytes());
    h.extend_from_slice(&(BLOCK_BYTES as u32).to_le_bytes());
    for crc in blocks {
        h.extend_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h.resize(len, 0);
    h
}

/// Checks an entry's header against what the metadata says; the block CRCs on success.
fn check_header(
    h: &[u8],
    volume: VolumeId,
    id: StripeId,
    info: &PayloadInfo,
) -> Result<Vec<u32>, &'static str> {
    let blocks = (info.payload_len as usize).div_ceil(BLOCK_BYTES);
    let crc_at = FIXED_HEADER_BYTES + 4 * blocks;
    if h.len() != header_len(info.payload_len as usize) {
        return Err("header of the wrong length");
    }
    let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().expect("4 bytes"));
    if h[..8] != MAGIC {
        return Err("bad magic");
    }
    if u16_at(8) != VERSION {
        return Err("unknown version");
    }
    if u16_at(10) != 0 {
        return Err("unknown flags");
    }
    if u32_at(crc_at) != crc32c::crc32c(&h[..crc_at]) {
        return Err("header checksum mismatch");
    }
    if u32_at(12) as usize != h.len() || h[16..32] != volume.0 {
        return Err("header of another layout or volume");
    }
    let found = PayloadInfo {
        flags: h[40],
        plain_len: u32_at(44),
        payload_len: u32_at(48),
        shard_len: u32_at(52),
        payload_crc: u32_at(56),
    };
    if h[32..40] != id.0.to_le_bytes() || found != *info || h[41..44] != [0; 3] {
        return Err("entry of another stripe or another version of it");
    }
    if u32_at(60) as usize != BLOCK_BYTES {
        return Err("unknown block size");
    }
    Ok((0..blocks)
        .map(|b| u32_at(FIXED_HEADER_BYTES + 4 * b))
        .collect())
}

/// The CRC32C of each block of a payload given in parts, and of the whole.
fn payload_crcs(parts: &[&[u8]]) -> (Vec<u32>, u32) {
    let mut blocks = Vec::new();
    let (mut whole, mut block, mut in_block) = (0u32, 0u32, 0usize);
    for part in parts {
        whole = crc32c::crc32c_append(whole, part);
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let take = rest.len().min(BLOCK_BYTES - in_block);
            block = crc32c::crc32c_append(block, &rest[..take]);
            in_block += take;
            rest = &rest[take..];
            if in_block == BLOCK_BYTES {
                blocks.push(block);
                (block, in_block) = (0, 0);
            }
        }
    }
    if in_block > 0 {
        blocks.push(block);
    }
    (blocks, whole)
}

/// One entry as the index knows it.
struct Slot {
    bytes: u64,
    tick: u64,
    /// The file's mtime as last set or seen (Unix seconds).
    stamped_secs: u64,
}

/// The entries on disk, by recency; and the ids queued for writing.
#[derive(Default)]
struct Index {
    slots: HashMap<StripeId, Slot>,
    by_tick: BTreeMap<u64, StripeId>,
    bytes: u64,
    next_tick: u64,
    /// Ids queued for the writer; an id taken out here (its stripe freed) is not written.
    pending: HashMap<StripeId, u64>,
}

impl Index {
    fn insert(&mut self, id: StripeId, bytes: u64, stamped_secs: u64) {
        self.take(id);
        self.next_tick += 1;
        let tick = self.next_tick;
        self.by_tick.insert(tick, id);
        self.bytes += bytes;
        self.slots.insert(
            id,
            Slot {
                bytes,
                tick,
                stamped_secs,
            },
        );
    }

    fn take(&mut self, id: StripeId) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        self.by_tick.remove(&slot.tick);
        self.bytes -= slot.bytes;
        Some(slot)
    }

    /// Makes `id` the most recently used; whether its file's mtime is due a refresh.
    fn touch(&mut self, id: StripeId, now_secs: u64) -> bool {
        self.next_tick += 1;
        let tick = self.next_tick;
        let Some(slot) = self.slots.get_mut(&id) else {
            return false;
        };
        self.by_tick.remove(&slot.tick);
        slot.tick = tick;
        self.by_tick.insert(tick, id);
        if now_secs.saturating_sub(slot.stamped_secs) >= TOUCH_AFTER_SECS {
            slot.stamped_secs = now_secs;
            return true;
        }
        false
    }

    fn oldest(&self) -> Option<StripeId> {
        self.by_tick.values().next().copied()
    }
}

enum Job {
    Write {
        id: StripeId,
        info: PayloadInfo,
        parts: Vec<Part>,
    },
    Touch(StripeId),
    /// Answered once every job before it is done.
    Flush(SyncSender<()>),
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    hit_bytes: AtomicU64,
    writes: AtomicU64,
    written_bytes: AtomicU64,
    skipped_writes: AtomicU64,
    evictions: AtomicU64,
    removals: AtomicU64,
    verify_failures: AtomicU64,
    dropped_at_open: AtomicU64,
    errors: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

struct Shared {
    /// `PATH/<volume UUID>`, for messages.
    path: PathBuf,
    /// That directory, opened once.
    dir: OwnedFd,
    volume: VolumeId,
    capacity_bytes: u64,
    index: Mutex<Index>,
    is_enabled: AtomicBool,
    queued_bytes: AtomicU64,
    counters: Counters,
}

/// How reading an entry failed.
enum Fault {
    /// No file (deleted behind the cache's back, or evicted meanwhile).
    Missing,
    /// The file fails its checks or is short.
    Damaged(&'static str),
    /// The device or file system failed.
    Io(io::Error),
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        match e.kind() {
            io::ErrorKind::NotFound => Fault::Missing,
            io::ErrorKind::UnexpectedEof => Fault::Damaged("entry file cut short"),
            _ => Fault::Io(e),
        }
    }
}

/// The L2 cache of one open volume.
pub struct L2Cache {
    shared: Arc<Shared>,
    jobs: Option<SyncSender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl L2Cache {
    /// Opens (making it if needed) the directory of `volume` inside `options.path`,
    /// deletes the entries of stripe ids at or past `next_stripe` (they may be handed
    /// out again) and leftover temporary files, trims the entries to the bound, and
    /// starts the writer.
    pub fn open(
        options: &L2Options,
        volume: VolumeId,
        next_stripe: u64,
    ) -> Result<L2Cache, L2Error> {
        let base = &options.path;
        let path = base.join(volume.to_string());
        let io_err = |path: &Path, e: io::Error| L2Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let unusable = |why: String| L2Error::Unusable {
            path: path.clone(),
            why,
        };
        if options.capacity_bytes == 0 {
            return Err(unusable("its size is 0".into()));
        }
        crate::store::create_private_dir_all(base).map_err(|e| io_err(base, e))?;
        let base_fd = openat(
            nix::fcntl::AT_FDCWD,
            base.as_path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(base, e.into()))?;
        let name = volume.to_string();
        match mkdirat(&base_fd, name.as_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err(&path, e.into())),
        }
        let dir = openat(
            &base_fd,
            name.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => unusable("not a directory (a symlink?)".into()),
            e => io_err(&path, e.into()),
        })?;
        let stat = fstat(&dir).map_err(|e| io_err(&path, e.into()))?;
        let uid = nix::unistd::geteuid().as_raw();
        if stat.st_uid != uid {
            return Err(unusable(format!(
                "owned by uid {}, not by this process's uid {uid}",
                stat.st_uid
            )));
        }
        if stat.st_mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:04o}", stat.st_mode & 0o7777), "L2 cache directory was open to group or other; made 0700");
            nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(0o700))
                .map_err(|e| io_err(&path, e.into()))?;
        }
        let shared = Shared {
            path: path.clone(),
            dir,
            volume,
            capacity_bytes: options.capacity_bytes,
            index: Mutex::new(Index::default()),
            is_enabled: AtomicBool::new(true),
            queued_bytes: AtomicU64::new(0),
            counters: Counters::default(),
        };
        shared
            .load(next_stripe)
            .map_err(|e| io_err(&path, e.into()))?;
        let (jobs, queue) = sync_channel(QUEUE_JOBS);
        let shared = Arc::new(shared);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("argosfs-l2".into())
            .spawn(move || writer_shared.serve(queue))
            .map_err(|e| io_err(&path, e))?;
        let stats = {
            let index = shared.lock();
            (index.slots.len(), index.bytes)
        };
        tracing::info!(path = %path.display(), entries = stats.0, bytes = stats.1, capacity_bytes = options.capacity_bytes, dropped = shared.counters.dropped_at_open.load(Ordering::Relaxed), "L2 cache opened");
        Ok(L2Cache {
            shared,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    /// The volume's directory of entries.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> L2Stats {
        let s = &self.shared;
        let c = &s.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (bytes, entries) = {
            let index = s.lock();
            (index.bytes, index.slots.len() as u64)
        };
        L2Stats {
            is_enabled: s.is_enabled(),
            hits: load(&c.hits),
            misses: load(&c.misses),
            hit_bytes: load(&c.hit_bytes),
            writes: load(&c.writes),
            written_bytes: load(&c.written_bytes),
            skipped_writes: load(&c.skipped_writes),
            evictions: load(&c.evictions),
            removals: load(&c.removals),
            verify_failures: load(&c.verify_failures),
            dropped_at_open: load(&c.dropped_at_open),
            errors: load(&c.errors),
            bytes,
            entries,
            capacity_bytes: s.capacity_bytes,
        }
    }

    /// Reads the whole payload of stripe `id` into `dest` (`info.payload_len` bytes);
    /// false on a miss or when the entry fails its checks (then deleted).
    pub fn read_whole(&self, id: StripeId, info: &PayloadInfo, dest: &mut [u8]) -> bool {
        if dest.len() != info.payload_len as usize {
            return false;
        }
        self.read(id, info, 0, dest, |_, dest| {
            if crc32c::crc32c(dest) == info.payload_crc {
                Ok(())
            } else {
                Err(Fault::Damaged("payload does not match the stripe's CRC"))
            }
        })
    }

    /// Reads payload bytes `from..from + dest.len()` of stripe `id` into `dest`, each
    /// 4 KiB block they touch checked by its CRC; false on a miss or when the entry fails
    /// its checks (then deleted).
    pub fn read_range(
        &self,
        id: StripeId,
        info: &PayloadInfo,
        from: usize,
        dest: &mut [u8],
    ) -> bool {
        let end = from + dest.len();
        if end > info.payload_len as usize {
            return false;
        }
        if from == 0 && end == info.payload_len as usize {
            return self.read_whole(id, info, dest);
        }
        // The read covers whole blocks, so it goes to a scratch buffer first.
        let first = from / BLOCK_BYTES;
        let block_end = (end.div_ceil(BLOCK_BYTES) * BLOCK_BYTES).min(info.payload_len as usize);
        let mut scratch = vec![0u8; block_end - first * BLOCK_BYTES];
        let found = self.read(
            id,
            info,
            first * BLOCK_BYTES,
            &mut scratch,
            |crcs, bytes| {
                for (i, block) in bytes.chunks(BLOCK_BYTES).enumerate() {
                    if crcs.get(first + i) != Some(&crc32c::crc32c(block)) {
                        return Err(Fault::Damaged("a block does not match its CRC"));
                    }
                }
                Ok(())
            },
        );
        if found {
            let at = from - first * BLOCK_BYTES;
            dest.copy_from_slice(&scratch[at..at + dest.len()]);
        }
        found
    }

    /// Reads `dest.len()` payload bytes at `at` of stripe `id` and checks them with
    /// `check` (given the header's block CRCs); counts the outcome.
    fn read(
        &self,
        id: StripeId,
        info: &PayloadInfo,
        at: usize,
        dest: &mut [u8],
        check: impl FnOnce(&[u32], &[u8]) -> Result<(), Fault>,
    ) -> bool {
        let s = &self.shared;
        if !s.is_enabled() {
            return false;
        }
        if !s.lock().slots.contains_key(&id) {
            bump(&s.counters.misses, 1);
            return false;
        }
        let outcome = s
            .read_entry(id, info, at, dest)
            .and_then(|crcs| check(&crcs, dest));
        match outcome {
            Ok(()) => {
                bump(&s.counters.hits, 1);
                bump(&s.counters.hit_bytes, dest.len() as u64);
                if s.lock().touch(id, crate::types::unix_now())
                    && let Some(jobs) = &self.jobs
                {
                    // Best effort: a full queue only leaves the mtime older.
                    let _ = jobs.try_send(Job::Touch(id));
                }
                true
            }
            Err(Fault::Missing) => {
                bump(&s.counters.misses, 1);
                s.lock().take(id);
                if fstatat(&s.dir, ".", nix::fcntl::AtFlags::empty())
                    .is_ok_and(|st| st.st_nlink == 0)
                {
                    s.disable("its directory was deleted".into());
                }
                false
            }
            Err(Fault::Damaged(why)) => {
                bump(&s.counters.verify_failures, 1);
                tracing::warn!(path = %s.path.display(), stripe = %id, why, "L2 cache entry failed its check; deleted, reading from the disks");
                s.drop_entry(id);
                false
            }
            Err(Fault::Io(e)) => {
                s.disable(format!("reading the entry of stripe {id}: {e}"));
                false
            }
        }
    }

    /// Whether an entry of `payload_len` bytes for stripe `id` would be taken now: the
    /// cache is on, has no entry or queued write of it, and the queue has room.
    pub fn wants(&self, id: StripeId, payload_len: usize) -> bool {
        let s = &self.shared;
        if !s.is_enabled() || entry_len(payload_len) > s.capacity_bytes {
            return false;
        }
        if s.queued_bytes.load(Ordering::Relaxed) + payload_len as u64 > QUEUE_BYTES {
            bump(&s.counters.skipped_writes, 1);
            return false;
        }
        let index = s.lock();
        !index.slots.contains_key(&id) && !index.pending.contains_key(&id)
    }

    /// Queues the payload of stripe `id` (its `parts` end to end, cut at
    /// `info.payload_len`) to be written; skipped (counted) when the queue is full.
    pub fn offer(&self, id: StripeId, info: PayloadInfo, parts: Vec<Part>) {
        let s = &self.shared;
        let Some(jobs) = &self.jobs else {
            return;
        };
        let len = u64::from(info.payload_len);
        {
            let mut index = s.lock();
            if index.slots.contains_key(&id) || index.pending.contains_key(&id) {
                return;
            }
            index.pending.insert(id, len);
        }
        s.queued_bytes.fetch_add(len, Ordering::Relaxed);
        match jobs.try_send(Job::Write { id, info, parts }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                s.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                s.lock().pending.remove(&id);
                bump(&s.counters.skipped_writes, 1);
            }
        }
    }

    /// Deletes the entry of stripe `id` (freed) and cancels a queued write of it.
    pub fn remove(&self, id: StripeId) {
        let s = &self.shared;
        let mut index = s.lock();
        let was_pending = index.pending.remove(&id).is_some();
        if index.take(id).is_some() {
            drop(index);
            bump(&s.counters.removals, 1);
            s.unlink(id);
        } else if was_pending {
            bump(&s.counters.removals, 1);
        }
    }

    /// Waits until every entry queued so far is written (or skipped).
    pub fn flush(&self) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        let (done, wait) = sync_channel(1);
        if jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for L2Cache {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what was queued.
        self.jobs = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the L2 cache writer panicked");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // Every change to the index is whole before the lock is let go.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_enabled(&self) -> bool {
        self.is_enabled.load(Ordering::Acquire)
    }

    /// Turns the cache off for the rest of this open, saying why once.
    fn disable(&self, why: String) {
        bump(&self.counters.errors, 1);
        if self.is_enabled.swap(false, Ordering::AcqRel) {
            tracing::warn!(path = %self.path.display(), reason = %why, "L2 cache off until the volume is opened again; reads go to the disks");
            let mut index = self.lock();
            *index = Index::default();
        }
    }

    /// Forgets and deletes the entry of `id`.
    fn drop_entry(&self, id: StripeId) {
        self.lock().take(id);
        self.unlink(id);
    }

    fn unlink(&self, id: StripeId) {
        match unlinkat(
            &self.dir,
            entry_name(id).as_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                tracing::debug!(path = %self.path.display(), stripe = %id, error = %e, "cannot delete an L2 cache entry")
            }
        }
    }

    /// Reads the header of the entry of `id` (checked) and `dest.len()` payload bytes at
    /// `at`; the block CRCs.
    fn read_entry(
        &self,
        id: StripeId,
        info: &PayloadInfo,
        at: usize,
        dest: &mut [u8],
    ) -> Result<Vec<u32>, Fault> {
        let fd = openat(
            &self.dir,
            entry_name(id).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let file = File::from(fd);
        let mut header = vec![0u8; header_len(info.payload_len as usize)];
        file.read_exact_at(&mut header, 0)?;
        let crcs = check_header(&header, self.volume, id, info).map_err(Fault::Damaged)?;
        file.read_exact_at(dest, (header.len() + at) as u64)?;
        Ok(crcs)
    }

    /// Builds the index from the directory: deletes temporary files and the entries of
    /// ids at or past `next_stripe`, orders the rest by mtime, trims to the bound.
    fn load(&self, next_stripe: u64) -> nix::Result<()> {
        let mut found: Vec<(u64, StripeId, u64)> = Vec::new();
        let mut top = nix::dir::Dir::openat(
            &self.dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let subdirs: Vec<String> = top
            .iter()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        for sub in subdirs {
            let Ok(mut listing) = nix::dir::Dir::openat(
                &self.dir,
                sub.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let names: Vec<String> = listing
                .iter()
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
                .filter(|n| n != "." && n != "..")
                .collect();
            for name in names {
                let rel = format!("{sub}/{name}");
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = unlinkat(&self.dir, rel.as_str(), UnlinkatFlags::NoRemoveDir);
                    continue;
                }
                let Some(id) = (name.len() == 16)
                    .then(|| u64::from_str_radix(&name, 16).ok())
                    .flatten()
                    .map(StripeId)
                    .filter(|id| entry_name(*id) == rel)
                else {
                    continue;
                };
                let Ok(st) = fstatat(
                    &self.dir,
                    rel.as_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                ) else {
                    continue;
                };
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                    continue;
                }
                if id.0 >= next_stripe {
                    self.unlink(id);
                    bump(&self.counters.dropped_at_open, 1);
                    continue;
                }
                if st.st_mode & 0o077 != 0 {
                    let _ = nix::sys::stat::fchmodat(
                        &self.dir,
                        rel.as_str(),
                        Mode::from_bits_truncate(0o600),
                        FchmodatFlags::NoFollowSymlink,
                    );
                }
                found.push((st.st_mtime.max(0) as u64, id, st.st_size.max(0) as u64));
            }
        }
        found.sort();
        let mut index = self.lock();
        for (mtime, id, bytes) in found {
            index.insert(id, bytes, mtime);
        }
        drop(index);
        self.trim();
        Ok(())
    }

    /// Deletes the least recently used entries until the bound holds.
    fn trim(&self) {
        loop {
            let victim = {
                let mut index = self.lock();
                if index.bytes <= self.capacity_bytes {
                    return;
                }
                let Some(victim) = index.oldest() else {
                    return;
                };
                index.take(victim);
                victim
            };
            bump(&self.counters.evictions, 1);
            self.unlink(victim);
        }
    }

    /// The writer thread: runs jobs until the queue closes.
    fn serve(&self, queue: Receiver<Job>) {
        let mut made = [false; 256];
        for job in queue {
            match job {
                Job::Write { id, info, parts } => {
                    let len = u64::from(info.payload_len);
                    if self.is_enabled() {
                        let result = self.write(id, &info, &parts, &mut made);
                        if let Err(e) = result {
                            self.disable(format!("writing the entry of stripe {id}: {e}"));
                        }
                    }
                    self.lock().pending.remove(&id);
                    self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                }
                Job::Touch(id) => {
                    if let Ok(fd) = openat(
                        &self.dir,
                        entry_name(id).as_str(),
                        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        let _ = File::from(fd).set_modified(std::time::SystemTime::now());
                    }
                }
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Writes one entry (skipped when its bytes do not match the record, or its stripe
    /// was freed meanwhile), then trims to the bound.
    fn write(
        &self,
        id: StripeId,
        info: &PayloadInfo,
        parts: &[Part],
        made: &mut [bool; 256],
    ) -> io::Result<()> {
        let mut rest = info.payload_len as usize;
        let mut payload: Vec<&[u8]> = Vec::with_capacity(parts.len());
        for part in parts {
            let bytes = part.as_ref().as_ref();
            let take = bytes.len().min(rest);
            payload.push(&bytes[..take]);
            rest -= take;
        }
        let (blocks, whole) = payload_crcs(&payload);
        if rest > 0 || whole != info.payload_crc {
            tracing::debug!(stripe = %id, "bytes offered to the L2 cache do not match the stripe's record; not cached");
            return Ok(());
        }
        let header = encode_header(self.volume, id, info, &blocks);
        let sub = (id.0 & 0xff) as usize;
        if !made[sub] {
            match mkdirat(
                &self.dir,
                format!("{sub:02x}").as_str(),
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) | Err(Errno::EEXIST) => made[sub] = true,
                Err(e) => return Err(e.into()),
            }
        }
        let final_name = entry_name(id);
        let temp = format!("{sub:02x}/.{:016x}.{}.tmp", id.0, std::process::id());
        let create = || {
            openat(
                &self.dir,
                temp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        let fd = match create() {
            Err(Errno::EEXIST) => {
                let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
                create()
            }
            other => other,
        }
        .map_err(io::Error::from)?;
        let cleanup = |e: io::Error| {
            let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            e
        };
        let mut file = File::from(fd);
        file.write_all(&header).map_err(cleanup)?;
        for bytes in &payload {
            file.write_all(bytes).map_err(cleanup)?;
        }
        drop(file);
        let bytes = (header.len() + info.payload_len as usize) as u64;
        {
            let mut index = self.lock();
            if !index.pending.contains_key(&id) || !self.is_enabled() {
                // Freed (or the cache turned off) while it was written.
                drop(index);
                let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
                return Ok(());
            }
            renameat(&self.dir, temp.as_str(), &self.dir, final_name.as_str())
                .map_err(|e| cleanup(e.into()))?;
            index.insert(id, bytes, crate::types::unix_now());
        }
        bump(&self.counters.writes, 1);
        bump(&self.counters.written_bytes, bytes);
        self.trim();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info_of(payload: &[u8]) -> PayloadInfo {
        PayloadInfo {
            flags: 0,
            plain_len: payload.len() as u32,
            payload_len: payload.len() as u32,
            shard_len: payload.len().div_ceil(4) as u32,
            payload_crc: crc32c::crc32c(payload),
        }
    }

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    fn open(dir: &Path, capacity: u64, next: u64) -> L2Cache {
        let options = L2Options {
            path: dir.to_path_buf(),
            capacity_bytes: capacity,
        };
        L2Cache::open(&options, VolumeId([7; 16]), next).unwrap()
    }

    fn put(l2: &L2Cache, id: u64, payload: &[u8]) {
        let info = info_of(payload);
        assert!(l2.wants(StripeId(id), payload.len()));
        // Two parts with padding after the payload, as data shards come.
        let half = payload.len() / 2;
        let mut second = payload[half..].to_vec();
        second.extend_from_slice(&[0; 100]);
        l2.offer(
            StripeId(id),
            info,
            vec![Box::new(payload[..half].to_vec()), Box::new(second)],
        );
        l2.flush();
    }

    #[test]
    fn entries_are_read_whole_and_in_part_and_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(100_000, 3);
        let info = info_of(&payload);
        {
            let l2 = open(tmp.path(), 1 << 20, 100);
            let mut out = vec![0u8; payload.len()];
            assert!(!l2.read_whole(StripeId(5), &info, &mut out));
            put(&l2, 5, &payload);
            assert!(l2.read_whole(StripeId(5), &info, &mut out));
            assert_eq!(out, payload);
            let mut part = vec![0u8; 5000];
            assert!(l2.read_range(StripeId(5), &info, 4000, &mut part));
            assert_eq!(part, payload[4000..9000]);
            let stats = l2.stats();
            assert_eq!((stats.hits, stats.misses, stats.writes), (2, 1, 1));
            assert_eq!(stats.bytes, entry_len(payload.len()));
        }
        let l2 = open(tmp.path(), 1 << 20, 100);
        let mut out = vec![0u8; payload.len()];
        assert!(l2.read_whole(StripeId(5), &info, &mut out));
        assert_eq!(out, payload);
        // Another version of the stripe's record does not take this entry.
        let other = PayloadInfo {
            payload_crc: info.payload_crc ^ 1,
            ..info
        };
        assert!(!l2.read_whole(StripeId(5), &other, &mut out));
        assert_eq!(l2.stats().verify_failures, 1);
        assert!(!l2.read_whole(StripeId(5), &info, &mut out), "deleted");
    }

    #[test]
    fn the_directory_and_entries_are_private_and_ids_past_next_stripe_are_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(5000, 1);
        {
            let l2 = open(tmp.path(), 1 << 20, 100);
            put(&l2, 7, &payload);
            put(&l2, 70, &payload);
            let dir = l2.path().to_path_buf();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("07")), 0o700);
            assert_eq!(mode(&dir.join(entry_name(StripeId(7)))), 0o600);
        }
        // After a crash the table says next_stripe = 50: stripe 70 may be another now.
        let l2 = open(tmp.path(), 1 << 20, 50);
        let stats = l2.stats();
        assert_eq!((stats.entries, stats.dropped_at_open), (1, 1));
        assert!(!l2.path().join(entry_name(StripeId(70))).exists());
        let mut out = vec![0u8; payload.len()];
        assert!(l2.read_whole(StripeId(7), &info_of(&payload), &mut out));
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bound_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(8192, 2);
        let info = info_of(&payload);
        let one = entry_len(payload.len());
        let l2 = open(tmp.path(), 3 * one, 100);
        put(&l2, 1, &payload);
        put(&l2, 2, &payload);
        put(&l2, 3, &payload);
        let mut out = vec![0u8; payload.len()];
        assert!(l2.read_whole(StripeId(1), &info, &mut out));
        put(&l2, 4, &payload);
        let stats = l2.stats();
        assert_eq!(
            (stats.entries, stats.bytes, stats.evictions),
            (3, 3 * one, 1)
        );
        assert!(!l2.read_whole(StripeId(2), &info, &mut out), "least recent");
        assert!(l2.read_whole(StripeId(1), &info, &mut out));
        // A smaller bound at the next open trims at once.
        drop(l2);
        let l2 = open(tmp.path(), one, 100);
        assert_eq!(l2.stats().entries, 1);
    }

    #[test]
    fn damaged_and_missing_entries_are_misses_and_a_lost_directory_turns_it_off() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(20_000, 9);
        let info = info_of(&payload);
        let l2 = open(tmp.path(), 1 << 20, 100);
        put(&l2, 1, &payload);
        put(&l2, 2, &payload);
        put(&l2, 3, &payload);
        let file = |id| l2.path().join(entry_name(StripeId(id)));
        // A flipped payload byte: the whole read and a read of that block fail.
        let mut bytes1 = std::fs::read(file(1)).unwrap();
        let at = header_len(payload.len()) + 10_000;
        bytes1[at] ^= 1;
        std::fs::write(file(1), &bytes1).unwrap();
        let mut part = vec![0u8; 100];
        assert!(!l2.read_range(StripeId(1), &info, 9_990, &mut part));
        // A file cut short.
        std::fs::write(file(2), &std::fs::read(file(2)).unwrap()[..5000]).unwrap();
        let mut out = vec![0u8; payload.len()];
        assert!(!l2.read_whole(StripeId(2), &info, &mut out));
        assert_eq!(l2.stats().verify_failures, 2);
        assert!(l2.stats().is_enabled);
        // The whole directory deleted: a miss, then off.
        std::fs::remove_dir_all(l2.path()).unwrap();
        assert!(!l2.read_whole(StripeId(3), &info, &mut out));
        let stats = l2.stats();
        assert!(!stats.is_enabled);
        assert_eq!(stats.entries, 0);
        assert!(!l2.wants(StripeId(4), payload.len()));
    }

    #[test]
    fn a_write_into_a_deleted_directory_turns_it_off_and_a_freed_stripe_is_not_written() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(20_000, 4);
        let l2 = open(tmp.path(), 1 << 20, 100);
        put(&l2, 1, &payload);
        l2.remove(StripeId(1));
        assert!(!l2.path().join(entry_name(StripeId(1))).exists());
        assert_eq!(l2.stats().removals, 1);
        std::fs::remove_dir_all(l2.path()).unwrap();
        put(&l2, 2, &payload);
        assert!(!l2.stats().is_enabled);
        assert!(!tmp.path().join(VolumeId([7; 16]).to_string()).exists());
    }

    #[test]
    fn bytes_that_do_not_match_the_record_are_not_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let payload = bytes(5000, 4);
        let l2 = open(tmp.path(), 1 << 20, 100);
        let info = PayloadInfo {
            payload_crc: 1,
            ..info_of(&payload)
        };
        l2.offer(StripeId(1), info, vec![Box::new(payload.clone())]);
        l2.flush();
        assert_eq!(l2.stats().entries, 0);
    }

    #[test]
    fn a_symlink_or_a_size_of_zero_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path(),
            tmp.path().join(VolumeId([7; 16]).to_string()),
        )
        .unwrap();
        let options = L2Options {
            path: tmp.path().to_path_buf(),
            capacity_bytes: 1 << 20,
        };
        let e = L2Cache::open(&options, VolumeId([7; 16]), 1).err().unwrap();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let zero = L2Options {
            capacity_bytes: 0,
            ..options
        };
        assert!(L2Cache::open(&zero, VolumeId([8; 16]), 1).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u64, usize, u8),
        Read(u64, usize, usize),
        Remove(u64),
    }

    fn files_bytes(dir: &Path) -> (u64, u64) {
        let (mut count, mut bytes) = (0, 0);
        for sub in std::fs::read_dir(dir).unwrap().flatten() {
            for file in std::fs::read_dir(sub.path()).unwrap().flatten() {
                count += 1;
                bytes += file.metadata().unwrap().len();
            }
        }
        (count, bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Under any sequence of writes, reads and removals the entry files stay within
        /// the bound, the index agrees with the directory, and a hit returns the bytes
        /// last written for its stripe.
        #[test]
        fn bounds_hold_and_hits_are_never_stale(
            capacity in 8_192u64..120_000,
            ops in proptest::collection::vec(
                prop_oneof![
                    3 => (0u64..30, 0usize..40_000, any::<u8>())
                        .prop_map(|(id, len, seed)| Op::Put(id, len, seed)),
                    3 => (0u64..30, 0usize..40_000, 0usize..10_000)
                        .prop_map(|(id, from, len)| Op::Read(id, from, len)),
                    1 => (0u64..30).prop_map(Op::Remove),
                ],
                1..40,
            ),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let l2 = open(tmp.path(), capacity, 1_000);
            let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Put(id, len, seed) => {
                        // A stripe id is written once while it lives: a new one replaces
                        // it only after it was freed.
                        l2.remove(StripeId(id));
                        let payload = bytes(len, seed);
                        let info = info_of(&payload);
                        if l2.wants(StripeId(id), len) {
                            l2.offer(StripeId(id), info, vec![Box::new(payload.clone())]);
                        }
                        l2.flush();
                        model.insert(id, payload);
                    }
                    Op::Read(id, from, len) => {
                        let Some(payload) = model.get(&id) else { continue };
                        let info = info_of(payload);
                        let from = from.min(payload.len());
                        let len = len.min(payload.len() - from);
                        let mut out = vec![0u8; len];
                        if l2.read_range(StripeId(id), &info, from, &mut out) {
                            prop_assert_eq!(&out[..], &payload[from..from + len]);
                        }
                    }
                    Op::Remove(id) => {
                        l2.remove(StripeId(id));
                        model.remove(&id);
                    }
                }
                let stats = l2.stats();
                prop_assert!(stats.bytes <= capacity);
                prop_assert_eq!(files_bytes(l2.path()), (stats.entries, stats.bytes));
                prop_assert_eq!(stats.verify_failures, 0);
            }
        }
    }
}

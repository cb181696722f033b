//! The Volume: inodes, directories, permissions, xattrs, open files; POSIX-shaped
//! operations over the metadata store and the stripe pipeline.
//!
//! Every tool goes through this API: the FUSE adapter, import/export, fsck and the tests.
//!
//! Locking (always taken in this order, never the reverse):
//! `commit_lock` → `gate` → a file's data lock → `state` → a file's `landing` map.
//! - `state` guards the metadata store, open counts and frees that wait for a commit; it
//!   is held briefly and never across disk I/O except the journal fsync of a commit.
//! - `gate` is shared by anything that writes shards and records references to them, and
//!   exclusive for a commit, so no reference to an unsynced shard enters a committed batch.
//! - a file's data lock (in `FileState`) orders reads and writes of that file's chunks
//!   and guards its dirty buffers; readers of one file never block another file.
//! - a file's `landing` map holds chunks being stored in the background
//!   (`write_behind`); those jobs take `state`, then `landing`, never anything above.

pub mod access;
pub mod acl;
mod attr;
mod data;
mod disk_set;
pub mod disk_stats;
mod format;
mod io_pool;
mod namespace;
mod pack;
mod relocate;
mod store_access;
mod stripe_io;
pub mod superblock;
mod weights;
mod write_behind;

pub use access::Caller;
pub use attr::{SetAttr, SetTime, XATTR_CREATE, XATTR_REPLACE};
pub use disk_stats::{DiskRecord, IoCounters, LatencySummary, Records, VolumeCounters};
pub use format::{FormatOptions, KdfStrength, format};
pub use namespace::{DirEntryOut, RenameFlags};
pub use relocate::{DiskInfo, MoveBatch, Relocated, ShardCheck, StripeAt, StripePlacement};
pub use store_access::audit_root;
pub use superblock::{DiskConfig, DiskState, Layout, Superblock, VolumeKeys};

use crate::cache::StripeCache;
use crate::data::StripeCodec;
use crate::error::{Error, Result};
use crate::meta::{FileKind, Inode, MetaStore, OpenReport, StripeRef, Timestamp};
use crate::store::{DirDisk, DiskLabel, DiskRef, LoosePath};
use crate::types::{DiskId, InodeId, VolumeId};
use disk_set::DiskSet;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, Weak};

/// Name of the lock file in ROOT.
pub const LOCK_FILE: &str = "lock";
/// How long a busy lock is retried before the volume counts as in use.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1500);
/// Name of the scrub state file in ROOT (`crate::maint::scrub_state` owns its bytes).
pub const SCRUB_STATE_FILE: &str = "scrub.state";
/// Name of the metadata directory in ROOT.
pub const META_DIR: &str = "meta";
/// Longest entry name.
pub const NAME_MAX: usize = 255;
/// Largest file size (keeps chunk arithmetic far from overflow).
pub const MAX_FILE_BYTES: u64 = 1 << 60;

/// A function that wraps each opened disk (tests use it to inject faults).
pub type DiskWrapper = Arc<dyn Fn(DiskId, DiskRef) -> DiskRef + Send + Sync>;

/// How to open a volume.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Passphrase of an encrypted volume.
    pub passphrase: Option<Vec<u8>>,
    /// Open without writing anything (shared lock; no journal repair, no orphan cleanup).
    pub read_only: bool,
    /// Wraps each disk after its label was verified.
    pub disk_wrapper: Option<DiskWrapper>,
    /// Journal size that triggers a metadata snapshot (default 64 MiB).
    pub journal_limit_bytes: Option<u64>,
    /// Bytes of decoded stripes kept in RAM (default 64 MiB; 0 turns the cache off).
    pub cache_bytes: Option<usize>,
    /// A persistent L2 cache of stored stripes in a local directory (`crate::cache::l2`).
    /// One that cannot be opened is logged and left out: the volume opens without it.
    pub l2: Option<crate::cache::l2::L2Options>,
    /// Dirty (not yet encoded) file bytes allowed in RAM before writers flush (default 256 MiB).
    pub dirty_limit_bytes: Option<u64>,
    /// Overrides the superblock's `min_shards` for this open (k..=k+m).
    pub min_shards: Option<u8>,
    /// How shard records are read and written: direct I/O, io_uring (mount options
    /// `direct_io`, `io_uring`); each disk falls back on its own where refused.
    pub store_io: crate::store::IoMode,
}

/// Attributes of an inode, as stat reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: InodeId,
    /// Kind.
    pub kind: FileKind,
    /// Permission bits (`0o7777`).
    pub perm: u32,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks of data stored (holes excluded).
    pub blocks: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Change time.
    pub ctime: Timestamp,
    /// Device number.
    pub rdev: u64,
    /// Preferred I/O size (the stripe size).
    pub blksize: u32,
}

impl Attr {
    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | self.perm
    }
}

/// Filesystem-wide numbers, as statfs reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatFs {
    /// Block size used for the counts below.
    pub block_bytes: u32,
    /// Usable capacity in blocks (raw capacity times k/(k+m)).
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks for unprivileged users.
    pub blocks_available: u64,
    /// Inodes in use plus free inode numbers.
    pub files: u64,
    /// Free inode numbers.
    pub files_free: u64,
    /// Longest name.
    pub name_max: u32,
}

/// Counters of the data plane since open.
#[derive(Debug, Default)]
pub struct Stats {
    /// Stripes encoded and written.
    pub stripes_written: AtomicU64,
    /// Stripes read from disks (cache misses).
    pub stripes_read: AtomicU64,
    /// Stripe reads that needed parity because a shard was missing or bad.
    pub degraded_reads: AtomicU64,
    /// Shards found missing, corrupt or unreadable.
    pub shard_errors: AtomicU64,
    /// Journal commits.
    pub commits: AtomicU64,
    /// Stripes written with fewer than k+m shards because disks were missing.
    pub degraded_writes: AtomicU64,
    /// Shard writes that failed with an I/O error (the disk then takes no new shards).
    pub shard_write_failures: AtomicU64,
    /// Frames opened by small reads of compressed or encrypted stripes (which read and
    /// decode only the frames they cover; whole-stripe decodes count in `stripes_read`).
    pub frames_decoded: AtomicU64,
    /// Small files written into pack chunks (`pack`).
    pub files_packed: AtomicU64,
}

/// A plain copy of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Stripes encoded and written.
    pub stripes_written: u64,
    /// Stripes read from disks.
    pub stripes_read: u64,
    /// Degraded stripe reads.
    pub degraded_reads: u64,
    /// Bad or missing shards seen.
    pub shard_errors: u64,
    /// Journal commits.
    pub commits: u64,
    /// Stripes written degraded.
    pub degraded_writes: u64,
    /// Failed shard writes.
    pub shard_write_failures: u64,
    /// Frames opened by small reads.
    pub frames_decoded: u64,
    /// Small files written into pack chunks.
    pub files_packed: u64,
    /// Shard record I/O by mode (direct, io_uring) and fallbacks.
    pub store_io: crate::store::StoreIoSnapshot,
    /// The RAM cache of decoded stripes: counters and sizes.
    pub cache: crate::cache::CacheStats,
    /// The L2 cache (`is_enabled` false when there is none).
    pub l2: crate::cache::l2::L2Stats,
}

/// One disk as the open volume sees it.
struct DiskSlot {
    /// As configured at open; the state changes in `state`.
    config: DiskConfig,
    /// The life-cycle state now ([`Volume::set_disk_state`] changes it).
    state: Mutex<DiskState>,
    /// None when the disk could not be opened (missing, wrong label): reads reconstruct.
    disk: Option<DiskRef>,
    /// Why an active or draining disk could not be opened.
    why_unavailable: Option<String>,
    /// Bytes promised to stripe writes in flight.
    reserved: AtomicU64,
    /// Set after a write failed with an I/O error: no new shards go there until reopen.
    write_failed: AtomicBool,
    /// Writes since the last sync.
    is_dirty: AtomicBool,
    /// Last statvfs of the disk (None: its directory was gone) and when it was taken.
    space_cache: Mutex<Option<(std::time::Instant, Option<crate::store::DiskSpace>)>>,
    /// What the data plane observed of the disk (kept while its directory stays).
    stats: Arc<disk_stats::DiskStats>,
    /// Much slower than its peers ([`weights`]): it gets fewer new shards.
    is_slow: AtomicBool,
}

/// How long a disk's free-space reading is reused by placement.
const SPACE_CACHE_FOR: std::time::Duration = std::time::Duration::from_millis(500);

impl DiskSlot {
    fn new(
        config: DiskConfig,
        opened: Option<Result<DiskRef>>,
        stats: Arc<disk_stats::DiskStats>,
    ) -> DiskSlot {
        let (disk, why_unavailable) = match opened {
            None => (None, None),
            Some(Ok(disk)) => (Some(disk), None),
            Some(Err(e)) => (None, Some(e.to_string())),
        };
        DiskSlot {
            state: Mutex::new(config.state),
            config,
            disk,
            why_unavailable,
            reserved: AtomicU64::new(0),
            write_failed: AtomicBool::new(false),
            is_dirty: AtomicBool::new(false),
            space_cache: Mutex::new(None),
            stats,
            is_slow: AtomicBool::new(false),
        }
    }

    fn state(&self) -> DiskState {
        *lock_poisoned(&self.state)
    }

    /// Open, active, and no shard write failed on it since open: it may take new shards.
    fn takes_new_shards(&self) -> bool {
        self.disk.is_some()
            && self.state() == DiskState::Active
            && !self.write_failed.load(Ordering::Acquire)
    }

    /// What placement knows of this disk. It is writable when it takes new shards and
    /// `is_allowed` (the caller's own exclusions); space as [`DiskSlot::space`] gives
    /// it, less what stripe writes in flight reserved.
    fn candidate(&self, is_fresh: bool, is_allowed: bool) -> crate::placement::Candidate {
        let present = self.space_if_present(is_fresh);
        let space = present.unwrap_or_default();
        let (weight, weight_note) = self.placement_weight(present);
        crate::placement::Candidate {
            id: self.config.id,
            weight,
            weight_note,
            class: self.config.class.clone(),
            domain: self.config.domain.clone(),
            is_writable: is_allowed && self.takes_new_shards() && present.is_some(),
            free_bytes: space
                .free_bytes
                .saturating_sub(self.reserved.load(Ordering::Relaxed)),
            total_bytes: space.total_bytes,
        }
    }

    /// Capacity and free space read now (the cache updated), or why the disk's
    /// directory does not answer.
    fn probe(&self) -> std::io::Result<crate::store::DiskSpace> {
        let Some(disk) = &self.disk else {
            return Ok(crate::store::DiskSpace::default());
        };
        disk.check_present()?;
        let space = disk.space()?;
        *lock_poisoned(&self.space_cache) = Some((std::time::Instant::now(), Some(space)));
        Ok(space)
    }

    /// Capacity and free space, re-read at most every [`SPACE_CACHE_FOR`] unless
    /// `is_fresh` (placement asks for every stripe; a disk that fills up in between
    /// answers ENOSPC, which the write path handles; a shortage is checked afresh).
    /// None when the disk is not open or its directory went away (checked as often as
    /// the space is read).
    fn space_if_present(&self, is_fresh: bool) -> Option<crate::store::DiskSpace> {
        let disk = self.disk.as_ref()?;
        let mut cache = lock_poisoned(&self.space_cache);
        let now = std::time::Instant::now();
        if let Some((at, space)) = *cache
            && !is_fresh
            && now.duration_since(at) < SPACE_CACHE_FOR
        {
            return space;
        }
        let space = match disk.check_present() {
            Ok(()) => Some(disk.space().unwrap_or_default()),
            Err(_) => None,
        };
        *cache = Some((now, space));
        space
    }
}

/// State guarded by the volume's metadata lock.
struct State {
    meta: MetaStore,
    /// Open handles per inode (an unlinked inode lives while this is non-zero).
    opens: HashMap<InodeId, u32>,
    /// Stripes no longer referenced by the open batch: deleted after it commits.
    frees: Vec<StripeRef>,
    /// The pack file of small files' contents, once there is one (`pack`).
    pack: Option<InodeId>,
}

/// Per-file data state: dirty chunk buffers not yet encoded into stripes.
#[derive(Default)]
struct FileState {
    data: RwLock<FileData>,
    /// Full chunks handed to the pool and not yet recorded ([`write_behind`]); outside
    /// the data lock, since the pool finishes them while a writer holds that lock.
    landing: Mutex<BTreeMap<u64, write_behind::Landing>>,
    /// Signalled whenever a chunk of `landing` lands or fails.
    landed: Condvar,
    /// Where the last read of the file ended: a read starting there is taken as part of
    /// a sequential scan, which decodes whole stripes into the cache rather than frames.
    next_read_at: AtomicU64,
}

#[derive(Default)]
struct FileData {
    /// Chunk index to its current plaintext (bytes past the end read as zeros).
    dirty: BTreeMap<u64, Vec<u8>>,
    /// For dirty chunks with holes: which blocks were written (absent: all of them).
    written: BTreeMap<u64, crate::meta::BlockMap>,
}

/// An open ArgosFS volume.
pub struct Volume {
    root: PathBuf,
    sb: Superblock,
    codec: StripeCodec,
    /// The disks now: replaced whole when a disk is added or replaced while open
    /// ([`Volume::change_disks`]); every operation works on the set it took at its start.
    disks: RwLock<Arc<DiskSet>>,
    state: Mutex<State>,
    files: Mutex<HashMap<InodeId, Arc<FileState>>>,
    gate: RwLock<()>,
    commit_lock: Mutex<()>,
    /// Serializes rewrites of the superblock by this process (disk state changes).
    superblock_lock: Mutex<()>,
    cache: StripeCache,
    /// Frame tables of compressed or encrypted stripes, for small reads
    /// (`stripe_io::FRAME_TABLE_CACHE_BYTES`).
    tables: StripeCache<crate::data::FrameTable>,
    /// Stored stripes in a local directory, when configured and usable.
    l2: Option<crate::cache::l2::L2Cache>,
    /// Threads that read or write the shards of one stripe at once.
    shard_io: io_pool::IoPool,
    dirty_bytes: AtomicU64,
    dirty_limit_bytes: u64,
    /// Fewest shards a new stripe is written with (the superblock's, or the open's).
    min_shards: usize,
    /// A degraded write was logged as a warning (later ones log at debug level).
    has_warned_degraded: AtomicBool,
    stats: Stats,
    /// When the slow-disk flags were last recomputed ([`weights`]).
    slow_checked: Mutex<Option<std::time::Instant>>,
    /// The volume's own records and the history loaded at open (`disk_stats`).
    records: disk_stats::VolumeStats,
    /// Set by [`Volume::enable_write_behind`].
    this: OnceLock<Weak<Volume>>,
    /// Chunks being stored in the background, all files together.
    in_flight: Arc<write_behind::InFlight>,
    open_report: OpenReport,
    unavailable_disks: Vec<(DiskId, String)>,
    /// What the audit at open found group- or other-accessible in the backing store.
    loose_paths: Vec<LoosePath>,
    /// The record I/O asked for at open, for every disk opened since, and its counters.
    store_io: crate::store::IoSettings,
    _lock: File,
}

fn lock_poisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug; the data behind it is still consistent at op
    // granularity (ops apply whole), so later calls go on rather than cascade panics.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Threads of the shard I/O pool (measured: spawning threads per stripe instead cost about
/// 0.1 ms per 1 MiB read). Eight read cold files as fast as sixteen did and write 1 MiB
/// requests about 8 % faster, since fewer idle threads spin for work on two cores; four
/// read slower.
const SHARD_IO_THREADS: usize = 8;

/// The pool that reads and writes the shards of a stripe in parallel; its threads block
/// on disk I/O, so it is separate from any pool doing computation.
fn shard_io_pool() -> std::io::Result<io_pool::IoPool> {
    io_pool::IoPool::new(SHARD_IO_THREADS)
}

/// The filesystems a walk over the disks has met: disks sharing one (the same
/// [`crate::store::Disk::sync_domain`]) need one sync per commit and count its space
/// once; a disk without a domain always stands alone.
#[derive(Default)]
pub(super) struct SeenDomains(Vec<u64>);

impl SeenDomains {
    /// Whether a disk of `domain` is the first of its filesystem in this walk.
    pub(super) fn first(&mut self, domain: Option<u64>) -> bool {
        match domain {
            None => true,
            Some(d) if self.0.contains(&d) => false,
            Some(d) => {
                self.0.push(d);
                true
            }
        }
    }
}

/// Takes the volume lock (exclusive for writers, shared for read-only use).
pub fn take_lock(root: &Path, exclusive: bool) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = root.join(LOCK_FILE);
    // A shared lock needs only a read-only descriptor, which also works on read-only media.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(exclusive)
        .create(exclusive)
        .truncate(false)
        .mode(crate::store::PRIVATE_FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    // A lock can be held for a moment by a process that is only passing through: a child
    // forked by the last holder keeps a copy of its descriptor until it execs. So a busy
    // lock is retried briefly before the volume is called in use.
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        let result = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match result {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    root: root.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
}

impl Volume {
    /// Opens the volume at `root`: superblock, lock, key, disks, metadata (with journal
    /// replay). A read-write open also frees inodes a crash left on the orphan list.
    pub fn open(root: &Path, options: OpenOptions) -> Result<Volume> {
        let sb = Superblock::load(root)?;
        let lock = take_lock(root, !options.read_only)?;
        let keys = sb.keys(options.passphrase.as_deref())?;
        let min_shards = options.min_shards.unwrap_or(sb.layout.min_shards);
        sb.layout
            .check_min_shards(min_shards)
            .map_err(Error::Config)?;
        let erasure = crate::data::erasure::codec_by_id(&sb.layout.codec).ok_or_else(|| {
            Error::Config(format!("erasure codec {:?} is not known", sb.layout.codec))
        })?;
        let codec = StripeCodec::new(
            sb.layout.k,
            sb.layout.m,
            sb.compression,
            keys.stripe,
            erasure,
        );
        let records = disk_stats::VolumeStats::open(root, sb.volume, options.read_only);
        let store_io = crate::store::IoSettings {
            mode: options.store_io,
            stats: Arc::default(),
        };
        let mut disks = Vec::new();
        let mut unavailable = Vec::new();
        for config in &sb.disks {
            let opened = config.state.is_in_use().then(|| {
                let opened = open_disk(root, &sb, config, &store_io);
                match (&options.disk_wrapper, opened) {
                    (Some(wrap), Ok(disk)) => Ok(wrap(config.id, disk)),
                    (_, opened) => opened,
                }
            });
            if let Some(Err(e)) = &opened {
                tracing::warn!(disk = %config.id, error = %e, "disk unavailable; reads will reconstruct from the others");
                unavailable.push((config.id, e.to_string()));
            }
            let stats = Arc::new(records.disk(config.id, &config.path));
            disks.push(Arc::new(DiskSlot::new(config.clone(), opened, stats)));
        }
        let (mut meta, report) =
            MetaStore::open(&root.join(META_DIR), keys.meta, !options.read_only)?;
        if let Some(torn) = &report.torn_tail {
            tracing::warn!(offset = torn.offset, bytes = torn.bytes, reason = %torn.reason, "journal had a torn tail; it was not applied");
        }
        if let Some(limit) = options.journal_limit_bytes {
            meta.set_journal_limit(limit);
        }
        let l2 = options.l2.as_ref().and_then(|l2| {
            let next_stripe = meta.table().next_stripe;
            crate::cache::l2::L2Cache::open(l2, sb.volume, next_stripe)
                .inspect_err(|e| tracing::warn!(error = %e, "no L2 cache: reads go to the disks"))
                .ok()
        });
        let opened_dirs = disks.iter().filter(|d| d.disk.is_some());
        let loose_paths =
            store_access::audit_on_open(root, opened_dirs.map(|d| d.config.resolve(root)));
        let volume = Volume {
            root: root.to_path_buf(),
            codec,
            disks: RwLock::new(Arc::new(DiskSet::new(disks))),
            state: Mutex::new(State {
                pack: meta.table().pack_file(),
                meta,
                opens: HashMap::new(),
                frees: Vec::new(),
            }),
            files: Mutex::new(HashMap::new()),
            gate: RwLock::new(()),
            commit_lock: Mutex::new(()),
            superblock_lock: Mutex::new(()),
            cache: StripeCache::new(options.cache_bytes.unwrap_or(64 << 20)),
            tables: StripeCache::new(stripe_io::FRAME_TABLE_CACHE_BYTES),
            l2,
            shard_io: shard_io_pool().map_err(|e| Error::io(root, e))?,
            dirty_bytes: AtomicU64::new(0),
            dirty_limit_bytes: options.dirty_limit_bytes.unwrap_or(256 << 20),
            min_shards: usize::from(min_shards),
            has_warned_degraded: AtomicBool::new(false),
            stats: Stats::default(),
            slow_checked: Mutex::new(None),
            records,
            this: OnceLock::new(),
            in_flight: Arc::default(),
            open_report: report,
            unavailable_disks: unavailable,
            loose_paths,
            store_io,
            sb,
            _lock: lock,
        };
        if !options.read_only {
            volume.free_leftover_orphans()?;
        }
        Ok(volume)
    }

    /// Frees inodes that were unlinked while open when the volume last went down.
    fn free_leftover_orphans(&self) -> Result<()> {
        let orphans: Vec<InodeId> = {
            let state = self.lock_state();
            state.meta.table().orphans.iter().copied().collect()
        };
        if orphans.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = orphans.len(),
            "freeing inodes left unlinked-but-open by the last run"
        );
        {
            let mut state = self.lock_state();
            for ino in orphans {
                self.free_inode(&mut state, ino)?;
            }
        }
        self.commit()
    }

    /// Flushes everything and makes it durable; the volume is closed when this returns.
    pub fn close(self) -> Result<()> {
        self.commit()?;
        // The commit deleted what it freed after its sync: one more sync makes those
        // deletes durable, so the stores give the space back now rather than leaving
        // the objects for fsck.
        {
            let _commit = lock_poisoned(&self.commit_lock);
            let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
            self.sync_dirty_disks(&self.disk_set())?;
        }
        self.save_records()
    }

    /// Fewest shards a new stripe is written with (the superblock's, or this open's).
    pub fn min_shards(&self) -> usize {
        self.min_shards
    }

    /// The volume's root directory path (ROOT).
    pub fn root_path(&self) -> &Path {
        &self.root
    }

    /// The superblock as opened.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The volume UUID.
    pub fn id(&self) -> VolumeId {
        self.sb.volume
    }

    /// What opening the metadata found (snapshot used, records replayed, torn tail).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Disks that could not be opened, with the reason.
    pub fn unavailable_disks(&self) -> &[(DiskId, String)] {
        &self.unavailable_disks
    }

    /// Objects of the backing store that group or other could access when the volume
    /// was opened (ROOT's, and each open disk's own, not each shard): logged as a
    /// warning then; `argosfs-fsck --repair` makes them private.
    pub fn loose_paths(&self) -> &[LoosePath] {
        &self.loose_paths
    }

    /// Data-plane counters since open.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            stripes_written: s.stripes_written.load(Ordering::Relaxed),
            stripes_read: s.stripes_read.load(Ordering::Relaxed),
            degraded_reads: s.degraded_reads.load(Ordering::Relaxed),
            shard_errors: s.shard_errors.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            degraded_writes: s.degraded_writes.load(Ordering::Relaxed),
            shard_write_failures: s.shard_write_failures.load(Ordering::Relaxed),
            frames_decoded: s.frames_decoded.load(Ordering::Relaxed),
            files_packed: s.files_packed.load(Ordering::Relaxed),
            store_io: self.store_io.stats.snapshot(),
            cache: self.cache.stats(),
            l2: self.l2.as_ref().map(|l2| l2.stats()).unwrap_or_default(),
        }
    }

    /// The directory holding this volume's L2 cache entries, when it has one.
    pub fn l2_path(&self) -> Option<&Path> {
        self.l2.as_ref().map(|l2| l2.path())
    }

    /// Waits until the L2 cache has written every stripe offered to it so far (they are
    /// written in the background, after the reads that offered them).
    pub fn flush_l2(&self) {
        if let Some(l2) = &self.l2 {
            l2.flush();
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock_poisoned(&self.state)
    }

    fn file_state(&self, ino: InodeId) -> Arc<FileState> {
        lock_poisoned(&self.files).entry(ino).or_default().clone()
    }

    /// Makes every change so far durable: encodes dirty buffers into stripes, syncs the
    /// disks that took shards, writes the open metadata batch as one journal transaction
    /// and fsyncs it, then deletes the shards that batch stopped referencing.
    ///
    /// Files whose buffered data cannot be stored (a full disk, say) keep it buffered; the
    /// rest commits, and the first such error is returned.
    pub fn commit(&self) -> Result<()> {
        self.commit_for(None)
    }

    /// [`Volume::commit`], failing only for buffered data of `only` when given (what
    /// fsync of one file needs), else for any file's.
    pub(super) fn commit_for(&self, only: Option<InodeId>) -> Result<()> {
        let _commit = lock_poisoned(&self.commit_lock);
        // Write back what the disks already hold before stopping the writers: the sync
        // under the gate below then has only the last moments' shards to flush, so a
        // commit in the middle of a long write stalls it briefly, not for a whole
        // writeback. Errors here do not matter: that sync is the one that counts.
        let mut presynced = SeenDomains::default();
        let disks = self.disk_set();
        for slot in disks.iter().filter(|s| s.is_dirty.load(Ordering::Acquire)) {
            if let Some(disk) = &slot.disk
                && presynced.first(disk.sync_domain())
            {
                let _ = disk.sync();
            }
        }
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let unstored = self
            .flush_all_dirty()
            .into_iter()
            .find(|(ino, _)| only.is_none_or(|o| o == *ino))
            .map(|(_, e)| e);
        // The set now: a disk change waits for the gate, so none happened since.
        self.sync_dirty_disks(&self.disk_set())?;
        let frees = {
            let mut state = self.lock_state();
            self.drop_unused_packs(&mut state)?;
            if !state.meta.has_pending() {
                drop(state);
                self.save_records_if_due();
                return unstored.map_or(Ok(()), Err);
            }
            state.meta.commit()?;
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            std::mem::take(&mut state.frees)
        };
        self.delete_stripes(&frees);
        self.stage_deletes();
        self.prune_file_states();
        self.save_records_if_due();
        unstored.map_or(Ok(()), Err)
    }

    /// Syncs every disk of `disks` written since its last sync (one sync per filesystem).
    /// The caller holds the gate exclusively, so no shard write is in flight.
    fn sync_dirty_disks(&self, disks: &DiskSet) -> Result<()> {
        let dirty: Vec<_> = disks
            .iter()
            .filter(|slot| slot.is_dirty.swap(false, Ordering::AcqRel))
            .filter(|slot| slot.disk.is_some())
            .collect();
        let failed = |slot: &DiskSlot, e: std::io::Error| {
            for slot in &dirty {
                slot.is_dirty.store(true, Ordering::Release);
            }
            slot.stats.note_sync(false);
            tracing::error!(disk = %slot.config.id, error = %e, "disk sync failed; metadata not committed");
            Error::DiskIo {
                disk: slot.config.id,
                source: e,
            }
        };
        // Disks sharing a filesystem get one sync between them, so each first writes out
        // what that sync must cover (its index), then one syncs, then all finish.
        for slot in &dirty {
            let disk = slot.disk.as_ref().expect("filtered");
            disk.stage_sync().map_err(|e| failed(slot, e))?;
        }
        let mut synced = SeenDomains::default();
        let mut finished = Vec::with_capacity(dirty.len());
        for slot in &dirty {
            let disk = slot.disk.as_ref().expect("filtered");
            let is_first = synced.first(disk.sync_domain());
            if is_first {
                disk.sync().map_err(|e| failed(slot, e))?;
                slot.stats.note_sync(true);
            }
            finished.push(is_first); // a sync runs all three steps
        }
        for (slot, _) in dirty.iter().zip(finished).filter(|(_, done)| !done) {
            let disk = slot.disk.as_ref().expect("filtered");
            if let Err(e) = disk.synced() {
                // The commit is durable; only freeing space waits for the next sync.
                tracing::warn!(disk = %slot.config.id, error = %e, "upkeep after a disk sync failed");
            }
        }
        Ok(())
    }

    /// Writes out the stores' notes of the deletes just made (no sync: the next commit's
    /// makes them durable), so the disks say at once what they hold.
    fn stage_deletes(&self) {
        for slot in self.disk_set().iter() {
            if slot.is_dirty.load(Ordering::Acquire)
                && let Some(disk) = &slot.disk
                && let Err(e) = disk.stage_sync()
            {
                tracing::debug!(disk = %slot.config.id, error = %e, "cannot write out deletes yet");
            }
        }
    }

    /// Deletes the shards of stripes that no committed metadata references any more.
    fn delete_stripes(&self, stripes: &[StripeRef]) {
        for stripe in stripes {
            self.cache.remove(stripe.id);
            if let Some(l2) = &self.l2 {
                l2.remove(stripe.id);
            }
            for (index, disk_id) in stripe.placed() {
                let key = crate::types::ShardKey {
                    stripe: stripe.id,
                    index: crate::types::ShardIndex(index as u8),
                };
                if let Err(e) = self.delete_shard_on(disk_id, key) {
                    tracing::warn!(disk = %disk_id, shard = %key, error = %e, "could not delete a freed shard; fsck --remove-orphans will");
                }
            }
        }
    }

    /// Drops per-file states that hold nothing.
    fn prune_file_states(&self) {
        let mut files = lock_poisoned(&self.files);
        files.retain(|_, f| {
            Arc::strong_count(f) > 1
                || f.data
                    .try_read()
                    .map(|d| !d.dirty.is_empty())
                    .unwrap_or(true)
                || !lock_poisoned(&f.landing).is_empty()
        });
    }

    /// The open disk holding shard `index` of `stripe`; `None` when the shard was never
    /// written or its disk is not at hand.
    fn shard_disk(&self, stripe: &StripeRef, index: usize) -> Option<DiskRef> {
        stripe.disk_of(index).and_then(|d| self.disk(d))
    }

    /// The store of disk `id` when it is open.
    fn disk(&self, id: DiskId) -> Option<DiskRef> {
        self.disk_set().disk(id).cloned()
    }

    /// Deletes shard object `key` from disk `id` and marks the disk for the next sync,
    /// which makes the delete durable (and lets the store free its space). A disk not
    /// open is nothing to do.
    pub(super) fn delete_shard_on(
        &self,
        id: DiskId,
        key: crate::types::ShardKey,
    ) -> std::io::Result<()> {
        let disks = self.disk_set();
        let Some(slot) = disks.slot(id) else {
            return Ok(());
        };
        let Some(disk) = &slot.disk else {
            return Ok(());
        };
        disk.delete_shard(key)?;
        slot.is_dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Builds the attributes reported for an inode.
    fn attr_of(&self, state: &State, ino: InodeId, inode: &Inode) -> Attr {
        let stored: u64 = match inode.kind {
            FileKind::Regular => state
                .meta
                .table()
                .chunks
                .get(&ino)
                .map_or(0, |chunks| chunks.values().map(|c| c.valid_len()).sum()),
            FileKind::Directory => 4096,
            FileKind::Symlink => inode.target.len() as u64,
            _ => 0,
        };
        Attr {
            ino,
            kind: inode.kind,
            perm: inode.perm,
            nlink: inode.nlink,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            blocks: stored.div_ceil(512),
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            rdev: inode.rdev,
            blksize: self.sb.layout.stripe_bytes,
        }
    }

    /// Removes an inode whose last link and last handle are gone; its stripes are freed
    /// once the batch commits.
    fn free_inode(&self, state: &mut State, ino: InodeId) -> Result<()> {
        if let Some(chunks) = state.meta.table().chunks.get(&ino) {
            let stripes: Vec<StripeRef> = chunks
                .values()
                .filter_map(|c| match c {
                    crate::meta::Chunk::Stripe(s) => Some(s.clone()),
                    crate::meta::Chunk::Inline(_) | crate::meta::Chunk::Packed(_) => None,
                })
                .collect();
            state.frees.extend(stripes);
        }
        state.meta.record(crate::meta::Op::DropInode { ino })?;
        if let Some(file) = lock_poisoned(&self.files).remove(&ino)
            && let Ok(mut data) = file.data.try_write()
        {
            let mut bytes: usize = data.dirty.values().map(Vec::len).sum();
            // Chunks still in flight land on a freed inode and return their own bytes.
            lock_poisoned(&file.landing).retain(|_, landing| {
                if landing.failed {
                    bytes += landing.bytes.len();
                }
                !landing.failed
            });
            self.dirty_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
            data.dirty.clear();
            data.written.clear();
        }
        Ok(())
    }
}

fn open_disk(
    root: &Path,
    sb: &Superblock,
    config: &DiskConfig,
    io: &crate::store::IoSettings,
) -> Result<DiskRef> {
    let path = config.resolve(root);
    let bad = |why: String| Error::BadDisk {
        disk: config.id,
        path: path.clone(),
        why,
    };
    let disk = DirDisk::open_with(&path, io).map_err(|e| bad(format!("cannot open: {e}")))?;
    DiskLabel::verify(
        &path,
        crate::store::Disk::read_label(&disk),
        sb.volume,
        config.id,
    )
    .map_err(bad)?;
    Ok(Arc::new(disk))
}

/// Validates an entry name: bytes except '/' and NUL, 1..=255 long.
fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Error::NotFound);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Error::Invalid("name contains '/' or NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SeenDomains;

    #[test]
    fn each_filesystem_is_first_once_and_disks_without_one_always() {
        let mut seen = SeenDomains::default();
        assert!(seen.first(Some(7)));
        assert!(!seen.first(Some(7)));
        assert!(seen.first(Some(8)));
        assert!(seen.first(None));
        assert!(seen.first(None));
        assert!(!seen.first(Some(8)));
    }
}

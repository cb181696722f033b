//! `DirDisk`: the shard store of one real disk, kept in a directory as a few large
//! append-only segment files and an index of where each shard object is.
//!
//! ```text
//! DISK/argosfs-disk.json        the disk label (written with write_atomic)
//! DISK/store/seg.NNNNNNNN       segments: shard objects at 4 KiB-aligned offsets
//!                               (512-byte-aligned when under 4 KiB)
//! DISK/store/index              index checkpoint (see `super::index`)
//! DISK/store/index.log          index entries appended since the checkpoint
//! ```
//!
//! A put appends the object to the segment being filled (a new one per open, and a new
//! one every [`SEGMENT_BYTES`]) with one `pwritev` and notes an index entry in memory; a
//! delete drops the key from the in-memory index and notes that. Nothing is fsynced one
//! by one. [`Disk::sync`] runs three steps, which the volume can also run apart when
//! several disks share a filesystem and so one `syncfs` between them:
//! [`Disk::stage_sync`] appends the noted entries to `index.log`; the sync proper is one
//! syncfs(2) on the filesystem holding the disk (writes back the segments, the log and
//! directory entries, and on Linux 5.8+ reports writeback errors); [`Disk::synced`] then
//! punches holes (`FALLOC_FL_PUNCH_HOLE`) over the records of deletes the log now holds
//! durably, removes segments with no live record left, appends a *synced* mark, and now
//! and then writes a checkpoint and starts a fresh log.
//!
//! Crash safety: an object's bytes are written before its entry, and both are durable
//! after the next sync, before which the volume references no shard. Entries after the
//! log's last *synced* mark may name objects that never reached the disk: opening the
//! store reads each such object back and drops the entries that do not verify. A hole is
//! punched only over a record whose delete entry is durable, so no index entry ever
//! points at zeros. A segment written by an earlier open is never appended to again.
//!
//! Privacy: every directory here is created 0700 and every file 0600 (`super::private`);
//! `create` sets an existing disk directory to 0700; [`DirDisk::audit`] lists what to
//! check.

use super::index::{self, ENTRY_LEN, Entry, Location, SECTOR};
use super::private::{Audit, PRIVATE_FILE_MODE, create_private_dir, create_private_dir_all};
use super::record_io::{self, Bounce, IoMode, StoreIoStats, Transfer};
use super::{Disk, DiskSpace, ShardRange, sync_dir, write_atomic};
use crate::store::private::make_dir_private;
use crate::store::shard;
use crate::types::ShardKey;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Name of the label file in the disk directory.
pub const LABEL_FILE: &str = "argosfs-disk.json";
/// Name of the directory holding segments and index.
pub const STORE_DIR: &str = "store";
/// Name of the index checkpoint in the store directory.
const CHECKPOINT_FILE: &str = "index";
/// Name of the index log in the store directory.
const LOG_FILE: &str = "index.log";
/// A segment takes no new record once it holds this many bytes.
#[cfg(not(test))]
pub const SEGMENT_BYTES: u64 = 1 << 30;
/// Small in unit tests, so that they see several segments.
#[cfg(test)]
pub const SEGMENT_BYTES: u64 = 64 << 10;
/// The log is folded into a new checkpoint once it holds more entries than this and
/// than the index has shards.
#[cfg(not(test))]
const CHECKPOINT_AFTER_ENTRIES: u64 = 1 << 16;
#[cfg(test)]
const CHECKPOINT_AFTER_ENTRIES: u64 = 16;
/// Compaction copies at most this many bytes per sync.
const COMPACT_BUDGET_BYTES: u64 = 16 << 20;
/// A sealed segment is compacted once its file takes more than twice the bytes its live
/// records span plus this.
#[cfg(not(test))]
const COMPACT_SLACK_BYTES: u64 = 64 << 20;
#[cfg(test)]
const COMPACT_SLACK_BYTES: u64 = 16 << 10;
/// Bytes of index log allocated ahead of its end, so that a disk that fills up can still
/// log the deletes that free it.
const LOG_PREALLOC_BYTES: u64 = 1 << 20;

/// What [`DirDisk::rebuild_index`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Shard objects indexed.
    pub objects: u64,
    /// Segments read.
    pub segments: u64,
    /// Where the damaged index files were kept.
    pub saved: Vec<PathBuf>,
}

/// A shard store in a directory, usually the mount point of one drive.
///
/// Safe to use from many threads: the index sits behind one mutex held only for map
/// updates, never across I/O; object bytes are read and written with positional I/O on
/// shared segment handles. One process at a time may write a store (the volume's lock
/// sees to that).
#[derive(Debug)]
pub struct DirDisk {
    root: PathBuf,
    store: PathBuf,
    /// Device and inode of `store` when opened: a put checks the directory is still
    /// there (a removed disk directory must fail writes, not fill unlinked files).
    store_id: (u64, u64),
    /// Kept open for syncfs(2) and statvfs, which act on the filesystem behind it.
    dir: File,
    state: Mutex<State>,
    /// Open segment files by number.
    segments: RwLock<HashMap<u32, Arc<Segment>>>,
    /// One sync at a time (the steps must not interleave).
    sync_lock: Mutex<()>,
    /// Whether freed records are punched out (false once the filesystem said it cannot).
    can_punch: AtomicBool,
    /// How records are read and written.
    io: DiskIo,
}

/// How a store reads and writes its records (see `super::io`), as opened and as it went.
#[derive(Debug, Default)]
struct DiskIo {
    /// The offset alignment of O_DIRECT record I/O; 0 while records go through the page
    /// cache (not asked for, refused when probed, or given up after a refusal).
    direct_align: AtomicU64,
    /// Records go through io_uring.
    is_uring: AtomicBool,
    stats: Arc<StoreIoStats>,
}

/// How to open a store's record I/O: the mode asked for and where to count it.
#[derive(Debug, Clone, Default)]
pub struct IoSettings {
    /// Direct I/O, io_uring, both or neither.
    pub mode: IoMode,
    /// Counters shared with the other disks of the volume.
    pub stats: Arc<StoreIoStats>,
}

/// One open segment file.
#[derive(Debug)]
struct Segment {
    file: File,
    /// The same file opened with O_DIRECT, while the store does direct I/O.
    direct: Option<File>,
}

#[derive(Debug)]
struct State {
    index: HashMap<ShardKey, Location>,
    /// Live records per segment.
    live: HashMap<u32, Live>,
    /// The segment being filled: its number and where the next record goes.
    active: Option<(u32, u64)>,
    /// Number for the next new segment.
    next_segment: u32,
    /// Entries not yet appended to the log.
    pending: Vec<u8>,
    /// Records freed since the last stage: their delete entries are still in `pending`.
    freed: Vec<Location>,
    /// Records freed whose delete entries are in the log, waiting for a sync to punch.
    staged_frees: Vec<Location>,
    log: LogState,
}

/// What the store knows of its log file.
#[derive(Debug)]
struct LogState {
    generation: u64,
    /// Bytes of valid log (appends go here); more may be torn debris until cut.
    len: u64,
    /// Entries in the log, for deciding when to checkpoint.
    entries: u64,
    /// The log must be started afresh (missing, or left from an older generation).
    needs_reset: bool,
    /// The log has bytes after `len` that must be cut before the next append.
    needs_cut: bool,
    /// Bytes allocated to the log file (its end included), as far as this open knows.
    allocated: u64,
}

impl DirDisk {
    /// Creates (if missing) the disk directory and an empty store in it, and makes them
    /// durable. An existing disk directory is reused, set to mode 0700 (often a drive's
    /// mount point, 0755: the shards must not be readable through it); an existing store
    /// in it is replaced.
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
        let store = path.join(STORE_DIR);
        match fs::remove_dir_all(&store) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        create_private_dir(&store)?;
        write_atomic(
            &store.join(CHECKPOINT_FILE),
            &index::encode_checkpoint(1, &HashMap::new()),
        )?;
        write_atomic(&store.join(LOG_FILE), &index::log_header(1))?;
        sync_dir(path)?;
        for dir in &missing {
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        DirDisk::open(path)
    }

    /// Opens the store of an existing disk directory. Reading never changes anything on
    /// the disk; the first write or sync does the upkeep opening found due (cutting a torn
    /// log tail, dropping entries of objects that never reached the disk, removing
    /// segments nothing lives in).
    pub fn open(path: &Path) -> io::Result<DirDisk> {
        #[cfg(not(test))]
        let settings = IoSettings::default();
        #[cfg(test)]
        let settings = tests::TEST_IO.with(|s| s.borrow().clone());
        DirDisk::open_with(path, &settings)
    }

    /// [`DirDisk::open`] with the record I/O of `settings`: direct I/O and io_uring are
    /// probed here, and where the filesystem or the kernel refuses, the store reads and
    /// writes through the page cache or with plain system calls instead, saying why once
    /// (a warning naming the disk) and counting the fallback.
    pub fn open_with(path: &Path, settings: &IoSettings) -> io::Result<DirDisk> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        let store = path.join(STORE_DIR);
        let bad = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {what} (argosfs-fsck --repair rebuilds the index from the segments)",
                    store.display()
                ),
            )
        };
        let checkpoint = match fs::read(store.join(CHECKPOINT_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{}: no shard store here (no {STORE_DIR}/{CHECKPOINT_FILE}; a disk of an older ArgosFS keeps shards/ instead)",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        let (generation, mut map) = index::decode_checkpoint(&checkpoint)
            .map_err(|e| bad(format!("{CHECKPOINT_FILE}: {e}")))?;
        let mut log = LogState {
            generation,
            len: index::HEADER_LEN as u64,
            entries: 0,
            needs_reset: true,
            needs_cut: false,
            allocated: 0,
        };
        // Keys put after the log's last synced mark: their objects may not be on disk.
        let mut unverified: HashSet<ShardKey> = HashSet::new();
        match fs::read(store.join(LOG_FILE)) {
            Ok(bytes) => {
                let read =
                    index::decode_log(&bytes).map_err(|e| bad(format!("{LOG_FILE}: {e}")))?;
                if read.generation > generation {
                    return Err(bad(format!(
                        "{LOG_FILE} is of generation {}, newer than the checkpoint's {generation}",
                        read.generation
                    )));
                }
                if read.generation == generation {
                    for entry in &read.entries {
                        match *entry {
                            Entry::Put(key, at) => {
                                map.insert(key, at);
                                unverified.insert(key);
                            }
                            Entry::Delete(key) => {
                                map.remove(&key);
                                unverified.remove(&key);
                            }
                            Entry::Synced => unverified.clear(),
                        }
                    }
                    log = LogState {
                        generation,
                        len: read.valid_len,
                        entries: read.entries.len() as u64,
                        needs_reset: false,
                        needs_cut: read.has_torn_tail,
                        allocated: 0,
                    };
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }

        let mut next_segment = 1;
        let mut live: HashMap<u32, Live> = HashMap::new();
        for entry in fs::read_dir(&store)? {
            let entry = entry?;
            if let Some(number) = entry.file_name().to_str().and_then(parse_segment_name) {
                next_segment = next_segment.max(number.saturating_add(1));
                live.entry(number).or_default();
            }
        }
        for at in map.values() {
            live.entry(at.segment).or_default().add(at);
            next_segment = next_segment.max(at.segment.saturating_add(1));
        }
        let store_id = {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::metadata(&store)?;
            (meta.dev(), meta.ino())
        };
        let disk = DirDisk {
            root: path.to_path_buf(),
            store,
            store_id,
            dir,
            state: Mutex::new(State {
                index: map,
                live,
                active: None,
                next_segment,
                pending: Vec::new(),
                freed: Vec::new(),
                staged_frees: Vec::new(),
                log,
            }),
            segments: RwLock::new(HashMap::new()),
            sync_lock: Mutex::new(()),
            can_punch: AtomicBool::new(true),
            io: DiskIo {
                stats: settings.stats.clone(),
                ..DiskIo::default()
            },
        };
        disk.take_mode(settings.mode);
        disk.verify_unsynced(unverified);
        Ok(disk)
    }

    /// Turns on what `mode` asks for and this disk can do (see `super::io`).
    fn take_mode(&self, mode: IoMode) {
        if mode.is_direct {
            match record_io::probe_direct(&self.dir, &self.store.join(CHECKPOINT_FILE)) {
                Ok(align) => {
                    self.io.direct_align.store(align, Ordering::Relaxed);
                    tracing::info!(disk = %self.root.display(), align, "direct I/O (O_DIRECT) for shard records");
                }
                Err(why) => {
                    self.io.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(disk = %self.root.display(), reason = %why, "direct_io: this disk reads and writes through the page cache instead");
                }
            }
        }
        if mode.is_uring {
            match record_io::uring_status() {
                Ok(()) => self.io.is_uring.store(true, Ordering::Relaxed),
                Err(why) => {
                    self.io.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(disk = %self.root.display(), reason = %why, "io_uring: this disk does its I/O with plain system calls instead");
                }
            }
        }
    }

    /// The record I/O in effect: what was asked for less what fell back.
    pub fn io_mode(&self) -> IoMode {
        IoMode {
            is_direct: self.io.direct_align.load(Ordering::Relaxed) != 0,
            is_uring: self.uses_uring(),
        }
    }

    /// Whether records go through io_uring now (asked for, and the ring still works).
    fn uses_uring(&self) -> bool {
        self.io.is_uring.load(Ordering::Relaxed) && record_io::uring_status().is_ok()
    }

    /// Stops direct I/O on this disk after the kernel refused a direct transfer (a
    /// filesystem that changed its mind, say): once, logged, counted.
    fn give_up_direct(&self, error: &io::Error) {
        if self.io.direct_align.swap(0, Ordering::Relaxed) != 0 {
            self.io.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(disk = %self.root.display(), error = %error, "direct_io: a direct transfer was refused; this disk reads and writes through the page cache from now on");
        }
    }

    /// The O_DIRECT handle and alignment for a record at `offset` spanning `span`
    /// bytes, when direct I/O is on and the record starts and ends on its alignment (a
    /// small record may not, when the device needs 4 KiB: it goes through the cache).
    fn direct_for<'s>(
        &self,
        segment: &'s Segment,
        offset: u64,
        span: u64,
    ) -> Option<(&'s File, u64)> {
        let align = self.io.direct_align.load(Ordering::Relaxed);
        if align == 0 || !offset.is_multiple_of(align) || !span.is_multiple_of(align) {
            return None;
        }
        segment.direct.as_ref().map(|file| (file, align))
    }

    /// Reads back the objects of entries the log did not mark synced and forgets those
    /// that are not whole, verified shard objects of their key (a crash before the sync
    /// that would have made them durable). Their deletes are logged with the next write.
    fn verify_unsynced(&self, keys: HashSet<ShardKey>) {
        for key in keys {
            let intact = self.get_shard(key).is_ok_and(|bytes| {
                shard::decode_shard("", bytes, None).is_ok_and(|(o, _)| o.header.key() == key)
            });
            if !intact {
                tracing::info!(disk = %self.root.display(), shard = %key, "dropping an index entry whose object never reached the disk");
                let mut state = self.lock();
                if let Some(at) = state.index.remove(&key) {
                    state.note_freed(key, at);
                }
            }
        }
    }

    /// Whether an error of [`DirDisk::open`] says the store's index is damaged, which
    /// [`DirDisk::rebuild_index`] may cure (the segments are read, not trusted).
    pub fn is_index_damage(error: &io::Error) -> bool {
        error.kind() == io::ErrorKind::InvalidData
    }

    /// Rebuilds the index of the store in the disk directory `path` from its segments,
    /// for fsck when the index is damaged: every 512-byte boundary of every segment is looked
    /// at, and each whole shard object found there that verifies (frame CRC, any volume)
    /// is indexed; of two objects under one key the later one wins (segments and records
    /// are written in order). Punched-out records read as zeros and are skipped. A
    /// deleted object whose hole was not punched yet comes back, as an orphan fsck
    /// removes. The old index files are kept beside the new ones as `*.damaged.N`.
    pub fn rebuild_index(path: &Path) -> io::Result<Rebuilt> {
        let store = path.join(STORE_DIR);
        let mut numbers: Vec<u32> = fs::read_dir(&store)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(parse_segment_name))
            .collect();
        numbers.sort_unstable();
        let mut map: HashMap<ShardKey, Location> = HashMap::new();
        let mut rebuilt = Rebuilt::default();
        for &number in &numbers {
            let file = File::open(store.join(segment_name(number)))?;
            let len = file.metadata()?.len();
            let mut offset = 0;
            let mut head = [0u8; shard::HEAD_LEN];
            while offset + head.len() as u64 <= len {
                let found = file.read_exact_at(&mut head, offset).ok().and_then(|()| {
                    let object_len = shard::object_len_from_head(&head)? as u64;
                    if offset + object_len > len {
                        return None;
                    }
                    let mut bytes = vec![0u8; object_len as usize];
                    file.read_exact_at(&mut bytes, offset).ok()?;
                    let (object, _) = shard::decode_shard("", bytes, None).ok()?;
                    Some((object.header.key(), object_len as u32))
                });
                match found {
                    Some((key, object_len)) => {
                        let at = Location {
                            segment: number,
                            offset,
                            len: object_len,
                            written: written_now(),
                        };
                        map.insert(key, at);
                        offset += at.span();
                    }
                    None => offset += SECTOR,
                }
            }
            rebuilt.segments += 1;
        }
        rebuilt.objects = map.len() as u64;
        // A generation above any the old files may name, so neither is taken for current.
        let old_generation = |name: &str| -> u64 {
            let bytes = fs::read(store.join(name)).unwrap_or_default();
            index::decode_checkpoint(&bytes)
                .map(|(g, _)| g)
                .or_else(|_| index::decode_log(&bytes).map(|r| r.generation))
                .unwrap_or(0)
        };
        let generation = old_generation(CHECKPOINT_FILE).max(old_generation(LOG_FILE)) + 1;
        let stamp = crate::types::unix_now();
        for name in [CHECKPOINT_FILE, LOG_FILE] {
            let from = store.join(name);
            if from.exists() {
                let to = store.join(format!("{name}.damaged.{stamp}"));
                fs::rename(&from, &to)?;
                rebuilt.saved.push(to);
            }
        }
        write_atomic(
            &store.join(CHECKPOINT_FILE),
            &index::encode_checkpoint(generation, &map),
        )?;
        write_atomic(&store.join(LOG_FILE), &index::log_header(generation))?;
        Ok(rebuilt)
    }

    /// The disk label at `path`, without opening the store: for tools that only ask
    /// whose disk a directory is.
    pub fn label_at(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path.join(LABEL_FILE)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The disk directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Puts the objects of the disk directory at `path` that must be private into
    /// `audit`: the directory, its label, `store/` and what it holds (a few files: the
    /// open's cheap audit and fsck's look at the same).
    pub fn audit(path: &Path, audit: &mut Audit) {
        audit.configured_dir(path);
        audit.object(&path.join(LABEL_FILE));
        audit.tree(&path.join(STORE_DIR));
    }

    /// Where the object `key` is: its segment file and its place there. For fsck's
    /// messages, and for tests that damage objects on purpose.
    pub fn shard_location(&self, key: ShardKey) -> io::Result<(PathBuf, Location)> {
        let at = self.locate(key)?;
        Ok((self.segment_path(at.segment), at))
    }

    /// Bytes the segments take on the filesystem (allocated blocks, holes excluded).
    pub fn allocated_bytes(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let mut total = 0;
        for entry in fs::read_dir(&self.store)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_str()
                .and_then(parse_segment_name)
                .is_some()
            {
                total += entry.metadata()?.blocks() * 512;
            }
        }
        Ok(total)
    }

    /// Fails when the store directory is no longer the one opened (removed with its
    /// disk directory, or replaced).
    fn check_store(&self) -> io::Result<()> {
        check_same_dir(&self.store, self.store_id)
    }

    /// The index log, opened for writing at the offsets the store chooses.
    fn open_log(&self) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .open(self.store.join(LOG_FILE))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics half-way through an update, so a poisoned state is whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn segment_path(&self, number: u32) -> PathBuf {
        self.store.join(segment_name(number))
    }

    fn locate(&self, key: ShardKey) -> io::Result<Location> {
        self.lock()
            .index
            .get(&key)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// The open file of segment `number`, opened on first use.
    fn segment(&self, number: u32) -> io::Result<Arc<Segment>> {
        if let Some(segment) = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&number)
        {
            return Ok(Arc::clone(segment));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.segment_path(number))?;
        let segment = Arc::new(self.with_direct(number, file));
        let mut open = self.segments.write().unwrap_or_else(|p| p.into_inner());
        Ok(Arc::clone(open.entry(number).or_insert(segment)))
    }

    /// Segment `number` open as `file`, and with O_DIRECT too while the store does
    /// direct I/O (a refusal turns direct I/O off for the disk).
    fn with_direct(&self, number: u32, file: File) -> Segment {
        let mut direct = None;
        if self.io.direct_align.load(Ordering::Relaxed) != 0 {
            match record_io::open_direct(&self.segment_path(number), true) {
                Ok(opened) => direct = Some(opened),
                Err(e) => self.give_up_direct(&e),
            }
        }
        Segment { file, direct }
    }

    /// Takes room for a record of `span` bytes starting at a multiple of `align`, counted
    /// live in its segment: the segment and offset to write it at. (Padding before a
    /// large record that follows small ones is left as it is: at most 3.5 KiB.)
    fn reserve(&self, span: u64, align: u64) -> io::Result<(u32, u64, Arc<Segment>)> {
        let mut state = self.lock();
        if let Some((number, end)) = state.active
            && (end == 0 || end.next_multiple_of(align) + span <= SEGMENT_BYTES)
        {
            let end = end.next_multiple_of(align);
            state.active = Some((number, end + span));
            // Counted live from now, so the segment is never taken for empty while the
            // record is being written.
            state.live.entry(number).or_default().add_span(span);
            drop(state);
            return Ok((number, end, self.segment(number)?));
        }
        // A new segment (the previous one is full, or this open has none yet). A number
        // taken by a file someone left is skipped.
        loop {
            let number = state.next_segment;
            state.next_segment = number
                .checked_add(1)
                .ok_or_else(|| io::Error::other("segment numbers exhausted"))?;
            let created = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(PRIVATE_FILE_MODE)
                .open(self.segment_path(number));
            match created {
                Ok(file) => {
                    state.active = Some((number, span));
                    state.live.entry(number).or_default().add_span(span);
                    // The first write of this open: room for the log's entries before
                    // the segments can fill the disk.
                    if !state.log.needs_reset
                        && let Ok(log) = self.open_log()
                    {
                        let end = state.log.len;
                        state.log.keep_room(&log, end);
                    }
                    let segment = Arc::new(self.with_direct(number, file));
                    self.segments
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(number, Arc::clone(&segment));
                    return Ok((number, 0, segment));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes a record holding the concatenation of `parts` at the end of the segment
    /// being filled; nothing names it yet. On failure what was written is given back.
    fn write_record(&self, parts: &[&[u8]]) -> io::Result<Location> {
        let write = self.prepare_write(parts)?;
        let result = run_transfers_results(vec![write.transfer()], self.uses_uring());
        self.finish_write(write, result.into_iter().next())
    }

    /// Takes room for a record holding the concatenation of `parts` (see
    /// [`DirDisk::write_record`]) and readies its bytes: as they are for a write
    /// through the page cache, copied into an aligned buffer padded to the alignment
    /// (within the record's span) for O_DIRECT.
    fn prepare_write<'p>(&self, parts: &'p [&'p [u8]]) -> io::Result<PreparedWrite<'p>> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a shard object of {len} bytes"),
            )
        })?;
        let written = written_now();
        let span = index::span_of(u64::from(len));
        let (number, offset, segment) = self.reserve(span, index::alignment_of(u64::from(len)))?;
        let at = Location {
            segment: number,
            offset,
            len,
            written,
        };
        let mut bounce = None;
        if let Some((_, align)) = self.direct_for(&segment, offset, span) {
            let padded = u64::from(len).next_multiple_of(align).max(align) as usize;
            match Bounce::new(padded) {
                Ok(mut buf) => {
                    let bytes = buf.as_mut_slice();
                    let mut filled = 0;
                    for part in parts {
                        bytes[filled..filled + part.len()].copy_from_slice(part);
                        filled += part.len();
                    }
                    bytes[filled..].fill(0);
                    bounce = Some(buf);
                }
                Err(e) => {
                    self.give_back(&at);
                    return Err(e);
                }
            }
        }
        Ok(PreparedWrite {
            at,
            segment,
            parts,
            bounce,
            stats: self.io.stats.clone(),
        })
    }

    /// Ends a write after its transfer (`None`: it never ran): the record's place, or
    /// the error with the record's room given back. A direct write the kernel refused
    /// turns direct I/O off for the disk and is written again through the page cache.
    fn finish_write(
        &self,
        write: PreparedWrite<'_>,
        result: Option<io::Result<()>>,
    ) -> io::Result<Location> {
        let at = write.at;
        let mut result = result.unwrap_or_else(|| Err(io::Error::other("write not carried out")));
        if let Err(e) = &result
            && write.bounce.is_some()
            && e.raw_os_error() == Some(libc::EINVAL)
        {
            self.give_up_direct(e);
            let again =
                Transfer::write(&write.segment.file, at.offset, write.parts.iter().copied());
            result = run_transfers_results(vec![again], false)
                .into_iter()
                .next()
                .unwrap_or_else(|| Err(io::Error::other("write not carried out")));
        }
        match result {
            Ok(()) => Ok(at),
            Err(e) => {
                self.give_back(&at);
                Err(e)
            }
        }
    }

    /// Gives back the room of a record that was not written.
    fn give_back(&self, at: &Location) {
        self.punch(at.segment, at.offset, at.span());
        self.lock().unlive(at);
    }

    /// Locates `key` and readies reads of `ranges` of its record into their buffers
    /// (through an aligned buffer each for O_DIRECT). `UnexpectedEof` when a range
    /// passes the object's end.
    fn prepare_read<'p, 'b>(
        &self,
        key: ShardKey,
        dest: ReadDest<'p, 'b>,
    ) -> io::Result<PreparedRead<'p, 'b>> {
        let at = self.locate(key)?;
        self.prepare_read_at(at, dest)
    }

    fn prepare_read_at<'p, 'b>(
        &self,
        at: Location,
        dest: ReadDest<'p, 'b>,
    ) -> io::Result<PreparedRead<'p, 'b>> {
        let dest = match dest {
            ReadDest::Whole => ReadDest::Owned(vec![0u8; at.len as usize]),
            other => other,
        };
        let extents: Vec<(u64, usize)> = match &dest {
            ReadDest::Ranges(ranges) => ranges.iter().map(|r| (r.offset, r.len())).collect(),
            ReadDest::Owned(bytes) => vec![(0, bytes.len())],
            ReadDest::Whole => unreachable!("replaced above"),
        };
        for (offset, len) in &extents {
            if offset + *len as u64 > u64::from(at.len) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let segment = self.segment(at.segment)?;
        let mut bounces = Vec::new();
        if let Some((_, align)) = self.direct_for(&segment, at.offset, at.span()) {
            for (offset, len) in &extents {
                let start = at.offset + offset;
                let from = start - start % align;
                let to = (start + *len as u64).next_multiple_of(align);
                bounces.push((
                    Bounce::new((to - from) as usize)?,
                    from,
                    (start - from) as usize,
                ));
            }
        }
        Ok(PreparedRead {
            at,
            segment,
            dest,
            bounces,
            stats: self.io.stats.clone(),
        })
    }

    /// Ends a read after its transfers (one per range, in order; fewer: not run):
    /// copies out of the aligned buffers; a direct read the kernel refused turns direct
    /// I/O off for the disk and is read again through the page cache.
    fn finish_read(
        &self,
        mut read: PreparedRead<'_, '_>,
        results: Vec<io::Result<()>>,
    ) -> io::Result<Option<Vec<u8>>> {
        let ranges = read.extent_count();
        let mut result: io::Result<()> = if results.len() < ranges {
            Err(io::Error::other("read not carried out"))
        } else {
            results.into_iter().collect()
        };
        if let Err(e) = &result
            && !read.bounces.is_empty()
            && e.raw_os_error() == Some(libc::EINVAL)
        {
            self.give_up_direct(e);
            read.bounces.clear();
            result = run_transfers_results(read.transfers(), false)
                .into_iter()
                .collect();
        }
        result?;
        read.copy_out();
        Ok(match read.dest {
            ReadDest::Owned(bytes) => Some(bytes),
            _ => None,
        })
    }

    /// Reads the whole record at `at`.
    fn read_record(&self, at: Location) -> io::Result<Vec<u8>> {
        let mut read = self.prepare_read_at(at, ReadDest::Whole)?;
        let results = run_transfers_results(read.transfers(), self.uses_uring());
        Ok(self
            .finish_read(read, results)?
            .expect("a whole read owns its bytes"))
    }

    /// Appends the noted entries to the log (cutting a torn tail or starting a fresh log
    /// first when opening found one due). Not durable until the sync after it.
    fn stage(&self) -> io::Result<()> {
        if let Err(e) = self.check_store() {
            // The disk went away: nothing written to it can be made durable, and its
            // shards are as lost as the directory. Like a sync of a removed directory,
            // that is not this commit's failure; reads and heal see the shards missing.
            tracing::warn!(disk = %self.root.display(), error = %e, "disk directory gone; its index is not saved");
            return Ok(());
        }
        let mut state = self.lock();
        let log_path = self.store.join(LOG_FILE);
        if state.log.needs_reset {
            // Entries of an older generation are all in the checkpoint already.
            write_atomic(&log_path, &index::log_header(state.log.generation))?;
            state.log.len = index::HEADER_LEN as u64;
            state.log.entries = 0;
            state.log.needs_reset = false;
            state.log.needs_cut = false;
        }
        if state.pending.is_empty() {
            let freed = std::mem::take(&mut state.freed);
            state.staged_frees.extend(freed);
            return Ok(());
        }
        let file = self.open_log()?;
        if state.log.needs_cut {
            file.set_len(state.log.len)?;
            state.log.needs_cut = false;
        }
        let end = state.log.len + state.pending.len() as u64;
        state.log.keep_room(&file, end);
        if let Err(e) = file.write_all_at(&state.pending, state.log.len) {
            // Part of the batch may be there: cut it before the next try.
            state.log.needs_cut = true;
            return Err(e);
        }
        state.log.len += state.pending.len() as u64;
        state.log.entries += (state.pending.len() / ENTRY_LEN) as u64;
        state.pending.clear();
        let freed = std::mem::take(&mut state.freed);
        state.staged_frees.extend(freed);
        Ok(())
    }

    /// After a sync that followed [`DirDisk::stage`]: frees the space of deleted records,
    /// removes empty segments, compacts a little (then syncs again, so the compaction's
    /// own frees wait for nothing), marks the log synced, checkpoints when it is long.
    fn after_sync(&self) -> io::Result<()> {
        if self.check_store().is_err() {
            return Ok(()); // a vanished disk: see `stage`
        }
        self.free_space();
        if self.compact_some(COMPACT_BUDGET_BYTES)? > 0 {
            self.stage()?;
            nix::unistd::syncfs(&self.dir).map_err(io::Error::from)?;
            self.free_space();
        }
        self.mark_synced()
    }

    /// Punches the records whose deletes are durable and removes segments with nothing
    /// left in them.
    fn free_space(&self) {
        let (frees, empty) = {
            let mut state = self.lock();
            let frees = std::mem::take(&mut state.staged_frees);
            // A segment can go once nothing lives in it and no delete in it waits to be
            // logged (its record would still be named by the durable log).
            let waiting: HashSet<u32> = state.freed.iter().map(|at| at.segment).collect();
            let active = state.active.map(|(number, _)| number);
            let empty: Vec<u32> = state
                .live
                .iter()
                .filter(|(number, live)| {
                    live.records == 0 && Some(**number) != active && !waiting.contains(number)
                })
                .map(|(number, _)| *number)
                .collect();
            for number in &empty {
                state.live.remove(number);
            }
            (frees, empty)
        };
        let gone: HashSet<u32> = empty.iter().copied().collect();
        let frees: Vec<Location> = frees
            .into_iter()
            .filter(|at| !gone.contains(&at.segment))
            .collect();
        for (segment, offset, len) in coalesce(frees) {
            self.punch(segment, offset, len);
        }
        for number in &empty {
            self.segments
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(number);
            match fs::remove_file(self.segment_path(*number)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(segment = %self.segment_path(*number).display(), error = %e, "cannot remove an empty segment");
                }
                _ => {}
            }
        }
    }

    /// Compaction: copies the live records of one sealed segment whose file takes much
    /// more room than they need (a filesystem that cannot punch holes, or holes a crash
    /// left unpunched) to the segment being filled, at most `budget` bytes per call. Each
    /// copy is a put under the same key, made only if the key still names the record
    /// copied (a delete or rewrite meanwhile wins); the old records are then freed like
    /// replaced ones, and once none is left the segment is removed after the sync that
    /// makes the copies' entries durable. Bytes copied.
    fn compact_some(&self, budget: u64) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let sealed: Vec<(u32, Live)> = {
            let state = self.lock();
            let active = state.active.map(|(number, _)| number);
            state
                .live
                .iter()
                .filter(|(number, live)| Some(**number) != active && live.records > 0)
                .map(|(number, live)| (*number, *live))
                .collect()
        };
        for (number, live) in sealed {
            let Ok(segment) = self.segment(number) else {
                continue;
            };
            let allocated = segment.file.metadata()?.blocks() * 512;
            if allocated <= 2 * live.bytes + COMPACT_SLACK_BYTES {
                continue;
            }
            let mut records: Vec<(ShardKey, Location)> = self
                .lock()
                .index
                .iter()
                .filter(|(_, at)| at.segment == number)
                .map(|(key, at)| (*key, *at))
                .collect();
            records.sort_unstable_by_key(|(_, at)| at.offset);
            tracing::debug!(disk = %self.root.display(), segment = number, allocated, live = live.bytes, "compacting a segment");
            let mut copied = 0;
            for (key, at) in records {
                if copied >= budget {
                    break;
                }
                let bytes = self.read_record(at)?;
                let new = self.write_record(&[&bytes])?;
                let mut state = self.lock();
                if state.index.get(&key) == Some(&at) {
                    state.note_put(key, new);
                } else {
                    state.unlive(&new);
                    drop(state);
                    self.punch(new.segment, new.offset, new.span());
                }
                copied += at.span();
            }
            return Ok(copied);
        }
        Ok(0)
    }

    /// Gives `len` bytes at `offset` of a segment (freed records) back to the
    /// filesystem. Best effort: a filesystem that cannot punch holes keeps the bytes until
    /// the whole segment empties.
    fn punch(&self, segment: u32, offset: u64, len: u64) {
        if !self.can_punch.load(Ordering::Relaxed) {
            return;
        }
        let Ok(open) = self.segment(segment) else {
            return;
        };
        let punched = nix::fcntl::fallocate(
            &open.file,
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        );
        match punched {
            Ok(()) => {}
            Err(nix::errno::Errno::EOPNOTSUPP) => {
                tracing::info!(disk = %self.root.display(), "the filesystem cannot punch holes: freed space comes back by compaction");
                self.can_punch.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(disk = %self.root.display(), error = %e, "cannot punch a hole over a freed record")
            }
        }
    }

    /// Appends a synced mark (everything logged so far is durable), and folds a long log
    /// into a new checkpoint. The mark itself need not be durable: without it, the next
    /// open only checks a few more objects.
    fn mark_synced(&self) -> io::Result<()> {
        let mut state = self.lock();
        if state.log.needs_reset || state.log.needs_cut {
            return Ok(());
        }
        let log_path = self.store.join(LOG_FILE);
        if state.log.entries > CHECKPOINT_AFTER_ENTRIES
            && state.log.entries > state.index.len() as u64
            && state.pending.is_empty()
        {
            // Everything in the index is durable now (logged and synced) except entries
            // noted since the stage, and there are none: the index is the durable state.
            let generation = state.log.generation + 1;
            let written = write_atomic(
                &self.store.join(CHECKPOINT_FILE),
                &index::encode_checkpoint(generation, &state.index),
            );
            match written {
                Ok(()) => {
                    state.log.generation = generation;
                    state.log.needs_reset = true;
                    state.log.allocated = 0;
                    write_atomic(&log_path, &index::log_header(generation))?;
                    state.log.needs_reset = false;
                    state.log.len = index::HEADER_LEN as u64;
                    state.log.entries = 0;
                    return Ok(());
                }
                // A full disk, say: the log goes on growing until a checkpoint fits.
                Err(e) => {
                    tracing::warn!(disk = %self.root.display(), error = %e, "cannot write an index checkpoint; the log grows on")
                }
            }
        }
        let file = self.open_log()?;
        let mark = Entry::Synced.encode();
        if let Err(e) = file.write_all_at(&mark, state.log.len) {
            state.log.needs_cut = true;
            return Err(e);
        }
        state.log.len += mark.len() as u64;
        state.log.entries += 1;
        Ok(())
    }
}

/// What lives in one segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Live {
    /// Records the index names (or being written).
    records: u64,
    /// Bytes they span.
    bytes: u64,
}

impl Live {
    fn add(&mut self, at: &Location) {
        self.add_span(at.span());
    }

    fn add_span(&mut self, span: u64) {
        self.records += 1;
        self.bytes += span;
    }
}

impl LogState {
    /// Keeps [`LOG_PREALLOC_BYTES`] allocated past `end` of the log `file` while the
    /// filesystem has room: failing only means less reserve.
    fn keep_room(&mut self, file: &File, end: u64) {
        if end + LOG_PREALLOC_BYTES / 2 <= self.allocated {
            return;
        }
        let ahead = nix::fcntl::fallocate(
            file,
            nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            0,
            (end + LOG_PREALLOC_BYTES) as i64,
        );
        self.allocated = match ahead {
            Ok(()) => end + LOG_PREALLOC_BYTES,
            Err(_) => end,
        };
    }
}

impl State {
    /// Notes that the record `at` of `key` no longer holds a live object.
    fn note_freed(&mut self, key: ShardKey, at: Location) {
        self.pending.extend_from_slice(&Entry::Delete(key).encode());
        self.freed.push(at);
        self.unlive(&at);
    }

    /// Counts the record `at` out of its segment's live records.
    fn unlive(&mut self, at: &Location) {
        if let Some(live) = self.live.get_mut(&at.segment) {
            live.records = live.records.saturating_sub(1);
            live.bytes = live.bytes.saturating_sub(at.span());
        }
    }

    /// Points `key` at its new record `at` and notes the put; the record it replaces,
    /// if any, is freed like a deleted one (the put entry supersedes it in the log).
    fn note_put(&mut self, key: ShardKey, at: Location) {
        self.pending
            .extend_from_slice(&Entry::Put(key, at).encode());
        if let Some(old) = self.index.insert(key, at) {
            self.freed.push(old);
            self.unlive(&old);
        }
    }
}

/// A record write made ready by [`DirDisk::prepare_write`].
struct PreparedWrite<'p> {
    at: Location,
    segment: Arc<Segment>,
    parts: &'p [&'p [u8]],
    /// The record padded to the direct I/O alignment, for an O_DIRECT write.
    bounce: Option<Bounce>,
    stats: Arc<StoreIoStats>,
}

impl PreparedWrite<'_> {
    fn transfer(&self) -> Transfer<'_> {
        match (&self.bounce, &self.segment.direct) {
            (Some(buf), Some(direct)) => {
                Transfer::write(direct, self.at.offset, [buf.as_slice()]).counted(&self.stats, true)
            }
            _ => Transfer::write(
                &self.segment.file,
                self.at.offset,
                self.parts.iter().copied(),
            )
            .counted(&self.stats, false),
        }
    }
}

/// Where a record read goes.
enum ReadDest<'p, 'b> {
    /// The whole object, into a buffer of its own (made when the read is readied).
    Whole,
    /// The whole object, into this buffer.
    Owned(Vec<u8>),
    /// Ranges of it, into the caller's buffers.
    Ranges(&'p mut [ShardRange<'b>]),
}

/// A record read made ready by [`DirDisk::prepare_read`].
struct PreparedRead<'p, 'b> {
    at: Location,
    segment: Arc<Segment>,
    dest: ReadDest<'p, 'b>,
    /// For O_DIRECT, per range: an aligned buffer, the aligned offset in the segment it
    /// is read from, and where the range starts in it. Empty: through the page cache.
    bounces: Vec<(Bounce, u64, usize)>,
    stats: Arc<StoreIoStats>,
}

impl PreparedRead<'_, '_> {
    /// The ranges read, as (offset in the object, length).
    fn extents(&self) -> Vec<(u64, usize)> {
        match &self.dest {
            ReadDest::Ranges(ranges) => ranges.iter().map(|r| (r.offset, r.len())).collect(),
            ReadDest::Owned(bytes) => vec![(0, bytes.len())],
            ReadDest::Whole => Vec::new(),
        }
    }

    fn extent_count(&self) -> usize {
        self.extents().len()
    }

    /// One transfer per range.
    fn transfers(&mut self) -> Vec<Transfer<'_>> {
        let base = self.at.offset;
        let stats = &*self.stats;
        if let (false, Some(direct)) = (self.bounces.is_empty(), &self.segment.direct) {
            let lens: Vec<usize> = match &self.dest {
                ReadDest::Ranges(ranges) => ranges.iter().map(|r| r.len()).collect(),
                ReadDest::Owned(bytes) => vec![bytes.len()],
                ReadDest::Whole => Vec::new(),
            };
            return self
                .bounces
                .iter_mut()
                .zip(lens)
                .map(|((buf, from, lead), len)| {
                    Transfer::read(direct, *from, [buf.as_mut_slice()], *lead + len)
                        .counted(stats, true)
                })
                .collect();
        }
        let file = &self.segment.file;
        match &mut self.dest {
            ReadDest::Ranges(ranges) => ranges
                .iter_mut()
                .map(|r| {
                    let len = r.len();
                    Transfer::read(
                        file,
                        base + r.offset,
                        r.bufs.iter_mut().map(|b| &mut **b),
                        len,
                    )
                    .counted(stats, false)
                })
                .collect(),
            ReadDest::Owned(bytes) => {
                let len = bytes.len();
                vec![Transfer::read(file, base, [&mut bytes[..]], len).counted(stats, false)]
            }
            ReadDest::Whole => Vec::new(),
        }
    }

    /// Copies each range out of its aligned buffer (direct reads only).
    fn copy_out(&mut self) {
        if self.bounces.is_empty() {
            return;
        }
        let bounces = &self.bounces;
        let copy = |(buf, _, lead): &(Bounce, u64, usize),
                    dests: &mut dyn Iterator<Item = &mut [u8]>| {
            let mut at = *lead;
            for dest in dests {
                dest.copy_from_slice(&buf.as_slice()[at..at + dest.len()]);
                at += dest.len();
            }
        };
        match &mut self.dest {
            ReadDest::Ranges(ranges) => {
                for (range, bounce) in ranges.iter_mut().zip(bounces) {
                    copy(bounce, &mut range.bufs.iter_mut().map(|b| &mut **b));
                }
            }
            ReadDest::Owned(bytes) => {
                if let Some(bounce) = bounces.first() {
                    copy(bounce, &mut std::iter::once(&mut bytes[..]));
                }
            }
            ReadDest::Whole => {}
        }
    }
}

/// Carries out `transfers` (through a ring when `is_uring`); each one's outcome and
/// when it finished.
fn run_transfers(
    mut transfers: Vec<Transfer<'_>>,
    is_uring: bool,
) -> Vec<(io::Result<()>, Option<Instant>)> {
    record_io::run(&mut transfers, is_uring);
    transfers.into_iter().map(Transfer::outcome).collect()
}

/// The results alone of [`run_transfers`].
fn run_transfers_results(transfers: Vec<Transfer<'_>>, is_uring: bool) -> Vec<io::Result<()>> {
    run_transfers(transfers, is_uring)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// One shard I/O of a batch run by [`run_batch`].
pub enum BatchOp<'a, 'b> {
    /// [`Disk::put_shard`].
    Put {
        /// The disk.
        disk: &'a dyn Disk,
        /// The object's key.
        key: ShardKey,
        /// Its bytes, in parts.
        parts: &'a [&'a [u8]],
    },
    /// [`Disk::get_shard`].
    Get {
        /// The disk.
        disk: &'a dyn Disk,
        /// The object's key.
        key: ShardKey,
    },
    /// [`Disk::read_shard_ranges`].
    Ranges {
        /// The disk.
        disk: &'a dyn Disk,
        /// The object's key.
        key: ShardKey,
        /// What to read, and where to.
        ranges: &'a mut [ShardRange<'b>],
    },
}

/// What one operation of a [`run_batch`] came to.
#[derive(Debug)]
pub struct BatchDone {
    /// The object's bytes for a `Get`; `None` for the others.
    pub result: io::Result<Option<Vec<u8>>>,
    /// From the start of the batch until its I/O completed.
    pub elapsed: Duration,
}

/// Carries out the shard I/O of several disks (a stripe's) at once: the operations of
/// segment stores doing io_uring ([`Disk::batch_target`]) are readied, handed to the
/// kernel in one submission and waited for together; any other disk's operation runs
/// on this thread as its `Disk` method. Results in the order of `ops`.
pub fn run_batch(ops: Vec<BatchOp<'_, '_>>) -> Vec<BatchDone> {
    enum Ready<'a, 'b> {
        Write(&'a DirDisk, ShardKey, PreparedWrite<'a>),
        Read(&'a DirDisk, PreparedRead<'a, 'b>),
    }
    let started = Instant::now();
    let mut done: Vec<Option<BatchDone>> = (0..ops.len()).map(|_| None).collect();
    let mut ready: Vec<(usize, Ready<'_, '_>)> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let result = match op {
            BatchOp::Put { disk, key, parts } => match disk.batch_target() {
                Some(d) => match d.check_store().and_then(|()| d.prepare_write(parts)) {
                    Ok(w) => {
                        ready.push((i, Ready::Write(d, key, w)));
                        continue;
                    }
                    Err(e) => Err(e),
                },
                None => disk.put_shard(key, parts).map(|()| None),
            },
            BatchOp::Get { disk, key } => match disk.batch_target() {
                Some(d) => match d.prepare_read(key, ReadDest::Whole) {
                    Ok(r) => {
                        ready.push((i, Ready::Read(d, r)));
                        continue;
                    }
                    Err(e) => Err(e),
                },
                None => disk.get_shard(key).map(Some),
            },
            BatchOp::Ranges { disk, key, ranges } => match disk.batch_target() {
                Some(d) => match d.prepare_read(key, ReadDest::Ranges(ranges)) {
                    Ok(r) => {
                        ready.push((i, Ready::Read(d, r)));
                        continue;
                    }
                    Err(e) => Err(e),
                },
                None => disk.read_shard_ranges(key, ranges).map(|()| None),
            },
        };
        done[i] = Some(BatchDone {
            result,
            elapsed: started.elapsed(),
        });
    }
    let mut counts = Vec::with_capacity(ready.len());
    let mut transfers = Vec::new();
    for (_, r) in ready.iter_mut() {
        let before = transfers.len();
        match r {
            Ready::Write(_, _, w) => transfers.push(w.transfer()),
            Ready::Read(_, read) => transfers.extend(read.transfers()),
        }
        counts.push(transfers.len() - before);
    }
    let mut outcomes = run_transfers(transfers, true).into_iter();
    for ((i, r), count) in ready.into_iter().zip(counts) {
        let mine: Vec<(io::Result<()>, Option<Instant>)> = outcomes.by_ref().take(count).collect();
        let finished = mine.iter().filter_map(|(_, at)| *at).max();
        let results: Vec<io::Result<()>> = mine.into_iter().map(|(r, _)| r).collect();
        let result = match r {
            Ready::Write(d, key, w) => d.finish_write(w, results.into_iter().next()).map(|at| {
                d.lock().note_put(key, at);
                None
            }),
            Ready::Read(d, read) => d.finish_read(read, results),
        };
        done[i] = Some(BatchDone {
            result,
            elapsed: finished.map_or_else(|| started.elapsed(), |t| t.duration_since(started)),
        });
    }
    done.into_iter()
        .map(|d| d.expect("every operation is done"))
        .collect()
}

impl Disk for DirDisk {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
        self.check_store()?;
        let at = self.write_record(parts)?;
        self.lock().note_put(key, at);
        Ok(())
    }

    fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
        self.read_record(self.locate(key)?)
    }

    fn read_shard_ranges(&self, key: ShardKey, ranges: &mut [ShardRange<'_>]) -> io::Result<()> {
        let is_uring = self.uses_uring();
        let mut read = self.prepare_read(key, ReadDest::Ranges(ranges))?;
        if !is_uring && read.bounces.is_empty() {
            // Start the disk on every range but the first at once, so a cold read of a
            // head and a distant block waits for the disk about once rather than once
            // per range. (A ring has them all in flight anyway.)
            for (offset, len) in read.extents().into_iter().skip(1) {
                // Only a hint: a failure costs nothing but the overlap.
                let _ = nix::fcntl::posix_fadvise(
                    &read.segment.file,
                    (read.at.offset + offset) as i64,
                    len as i64,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
                );
            }
        }
        let results = run_transfers_results(read.transfers(), is_uring);
        self.finish_read(read, results).map(|_| ())
    }

    fn batch_target(&self) -> Option<&DirDisk> {
        self.uses_uring().then_some(self)
    }

    fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(at) = state.index.remove(&key) {
            state.note_freed(key, at);
        }
        Ok(())
    }

    fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
        let mut keys: Vec<ShardKey> = self.lock().index.keys().copied().collect();
        keys.sort_unstable();
        Ok(keys)
    }

    fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
        let at = self.locate(key)?;
        Ok(UNIX_EPOCH + Duration::from_secs(u64::from(at.written)))
    }

    fn stage_sync(&self) -> io::Result<()> {
        // Under the sync lock: a sync running now must not punch holes over records
        // whose deletes this stage logs after its syncfs.
        let _one = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.stage()
    }

    fn sync(&self) -> io::Result<()> {
        let _one = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.stage()?;
        nix::unistd::syncfs(&self.dir).map_err(io::Error::from)?;
        self.after_sync()
    }

    fn synced(&self) -> io::Result<()> {
        let _one = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.after_sync()
    }

    fn sync_domain(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        self.dir.metadata().ok().map(|m| m.dev())
    }

    fn check_present(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let open = self.dir.metadata()?;
        check_same_dir(&self.root, (open.dev(), open.ino()))
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
        DirDisk::label_at(&self.root)
    }

    fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.root.join(LABEL_FILE), bytes)
    }
}

/// Freed records as few ranges as can be punched at once: (segment, offset, length),
/// records that follow each other in a segment merged into one range. Each punch can
/// cost a synchronous discard on a filesystem mounted with `discard` (ext4: about a
/// millisecond), and records of files written and deleted together lie side by side.
fn coalesce(mut frees: Vec<Location>) -> Vec<(u32, u64, u64)> {
    frees.sort_unstable_by_key(|at| (at.segment, at.offset));
    let mut ranges: Vec<(u32, u64, u64)> = Vec::new();
    for at in frees {
        match ranges.last_mut() {
            Some((segment, offset, len))
                if *segment == at.segment && *offset + *len >= at.offset =>
            {
                *len = (*len).max(at.offset + at.span() - *offset);
            }
            _ => ranges.push((at.segment, at.offset, at.span())),
        }
    }
    ranges
}

/// Now, as an index entry's write time (seconds since the epoch, saturating).
fn written_now() -> u32 {
    u32::try_from(crate::types::unix_now()).unwrap_or(u32::MAX)
}

/// Fails when `path` is no longer the directory `opened` (device, inode) names: removed
/// (its drive gone, say) or replaced.
fn check_same_dir(path: &Path, opened: (u64, u64)) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let now = fs::metadata(path)?;
    if (now.dev(), now.ino()) != opened {
        return Err(io::Error::other(format!(
            "{} is another directory than the one opened",
            path.display()
        )));
    }
    Ok(())
}

fn segment_name(number: u32) -> String {
    format!("seg.{number:08x}")
}

/// Accepts only the exact form `segment_name` writes.
fn parse_segment_name(name: &str) -> Option<u32> {
    let hex = name.strip_prefix("seg.")?;
    let number = u32::from_str_radix(hex, 16).ok()?;
    (segment_name(number) == name).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::BLOCK;
    use crate::store::test_support::key;
    use crate::types::{InodeId, ShardIndex, StripeId, VolumeId};
    use std::os::unix::fs::PermissionsExt;

    thread_local! {
        /// The record I/O that `DirDisk::open` gives the disks of a unit test (see
        /// [`in_mode`]).
        pub(super) static TEST_IO: std::cell::RefCell<IoSettings> = std::cell::RefCell::default();
    }

    /// Runs `test` with every disk it opens doing the record I/O of `mode`, then checks
    /// through the counters that the mode really carried the I/O where this machine
    /// has it (direct I/O where the temp directory's filesystem takes O_DIRECT).
    fn in_mode(mode: IoMode, test: fn()) {
        let stats = Arc::new(StoreIoStats::default());
        TEST_IO.with(|s| {
            *s.borrow_mut() = IoSettings {
                mode,
                stats: stats.clone(),
            }
        });
        test();
        TEST_IO.with(|s| *s.borrow_mut() = IoSettings::default());
        let seen = stats.snapshot();
        if mode.is_uring {
            match record_io::uring_status() {
                Ok(()) => assert!(seen.uring_ios > 0 && seen.uring_submissions > 0, "{seen:?}"),
                Err(why) => eprintln!("io_uring not exercised here: {why}"),
            }
        }
        if mode.is_direct {
            let tmp = tempfile::tempdir().unwrap();
            let file = tmp.path().join("probe");
            fs::write(&file, [0u8; 4096]).unwrap();
            match record_io::probe_direct(&File::open(tmp.path()).unwrap(), &file) {
                Ok(_) => assert!(seen.direct_ios > 0 && seen.direct_bytes > 0, "{seen:?}"),
                Err(why) => eprintln!("direct I/O not exercised here: {why}"),
            }
        }
    }

    /// The store's tests again in each mode other than buffered, each in its own test.
    macro_rules! in_every_mode {
        ($($name:ident),* $(,)?) => {
            mod every_mode {
                $(
                    mod $name {
                        use crate::store::IoMode;
                        #[test]
                        fn direct_io() {
                            let mode = IoMode { is_direct: true, is_uring: false };
                            super::super::in_mode(mode, super::super::$name);
                        }
                        #[test]
                        fn io_uring() {
                            let mode = IoMode { is_direct: false, is_uring: true };
                            super::super::in_mode(mode, super::super::$name);
                        }
                        #[test]
                        fn direct_io_and_io_uring() {
                            let mode = IoMode { is_direct: true, is_uring: true };
                            super::super::in_mode(mode, super::super::$name);
                        }
                    }
                )*
            }
        };
    }

    in_every_mode!(
        put_get_ranges_delete_list_round_trip,
        synced_writes_and_deletes_survive_a_reopen_and_unsynced_ones_do_not,
        entries_logged_but_not_synced_are_checked_at_open_and_dropped_when_bad,
        a_torn_log_tail_is_ignored_then_cut_before_the_next_append,
        freed_records_give_their_space_back_and_empty_segments_go,
        without_hole_punching_compaction_gives_the_space_back,
        a_kill_at_any_point_of_a_compaction_loses_nothing,
        a_copy_loses_to_a_delete_or_rewrite_made_meanwhile,
        a_long_log_is_folded_into_a_checkpoint_and_reopens_the_same,
        a_log_of_an_older_generation_is_ignored,
        a_damaged_index_is_rebuilt_from_the_segments,
        everything_made_is_private_and_an_existing_disk_directory_made_so,
        usable_from_many_threads,
        an_object_of_more_blocks_than_one_system_call_takes_round_trips,
        small_records_pack_by_sectors_and_large_ones_start_on_a_block,
        a_batch_over_several_disks_puts_and_reads_like_one_by_one,
    );

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn segments(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(STORE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("seg."))
            .collect();
        names.sort();
        names
    }

    /// A real shard object of `key` with `len` payload bytes, as the volume writes them.
    fn put_object(disk: &DirDisk, key: ShardKey, len: usize) {
        let header = shard::ShardHeader {
            stripe: key.stripe,
            inode: InodeId(7),
            chunk: 0,
            index: key.index,
            k: 4,
            m: 2,
        };
        shard::write_shard(disk, VolumeId([3; 16]), &header, &vec![key.index.0; len]).unwrap();
    }

    #[test]
    fn put_get_ranges_delete_list_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(&tmp.path().join("d")).unwrap();
        disk.put_shard(key(1, 0), &[b"hello ", b"", b"world"])
            .unwrap();
        disk.put_shard(key(2, 5), &[&[9u8; 10_000]]).unwrap();
        assert_eq!(disk.get_shard(key(1, 0)).unwrap(), b"hello world");
        assert_eq!(disk.get_shard(key(2, 5)).unwrap(), vec![9u8; 10_000]);
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0), key(2, 5)]);
        let (mut a, mut b, mut c) = ([0u8; 2], [0u8; 3], [0u8; 5]);
        let mut ranges = [
            ShardRange {
                offset: 6,
                bufs: vec![&mut a, &mut b],
            },
            ShardRange {
                offset: 0,
                bufs: vec![&mut c],
            },
        ];
        disk.read_shard_ranges(key(1, 0), &mut ranges).unwrap();
        assert_eq!((&a, &b, &c), (b"wo", b"rld", b"hello"));
        let mut past = [0u8; 4];
        let err = disk
            .read_shard_ranges(
                key(1, 0),
                &mut [ShardRange {
                    offset: 9,
                    bufs: vec![&mut past],
                }],
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // Replacing an object keeps one entry.
        disk.put_shard(key(1, 0), &[b"again"]).unwrap();
        assert_eq!(disk.get_shard(key(1, 0)).unwrap(), b"again");
        disk.delete_shard(key(1, 0)).unwrap();
        disk.delete_shard(key(1, 0)).unwrap();
        assert_eq!(
            disk.get_shard(key(1, 0)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            disk.shard_modified(key(1, 0)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(disk.shard_modified(key(2, 5)).unwrap() <= SystemTime::now());
        assert_eq!(disk.list_shards().unwrap(), vec![key(2, 5)]);
    }

    #[test]
    fn synced_writes_and_deletes_survive_a_reopen_and_unsynced_ones_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        put_object(&disk, key(1, 0), 5000);
        put_object(&disk, key(1, 1), 100);
        disk.sync().unwrap();
        disk.delete_shard(key(1, 1)).unwrap();
        put_object(&disk, key(2, 0), 100);
        disk.sync().unwrap();
        // Neither logged nor synced: as after a crash, never there.
        put_object(&disk, key(3, 0), 100);
        disk.delete_shard(key(1, 0)).unwrap();
        drop(disk);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0), key(2, 0)]);
        let (object, _) =
            shard::decode_shard("t", disk.get_shard(key(1, 0)).unwrap(), None).unwrap();
        assert_eq!(object.payload(), vec![0u8; 5000]);
        // Writing again goes to a new segment, never after an old one's end.
        let before = segments(&root);
        put_object(&disk, key(4, 0), 10);
        disk.sync().unwrap();
        assert_eq!(segments(&root).len(), before.len() + 1);
    }

    #[test]
    fn entries_logged_but_not_synced_are_checked_at_open_and_dropped_when_bad() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        put_object(&disk, key(1, 0), 100);
        disk.sync().unwrap();
        // Logged (the first step of a sync) but the sync never ran: the log may reach
        // the disk while the segment's bytes do not. Here the bytes are lost on purpose.
        put_object(&disk, key(2, 0), 100);
        put_object(&disk, key(2, 1), 100);
        disk.stage_sync().unwrap();
        let (segment, at) = disk.shard_location(key(2, 1)).unwrap();
        drop(disk);
        let file = OpenOptions::new().write(true).open(&segment).unwrap();
        file.write_all_at(&vec![0u8; at.len as usize], at.offset)
            .unwrap();
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0), key(2, 0)]);
        // The drop is logged with the next sync and holds after another reopen.
        disk.sync().unwrap();
        drop(disk);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0), key(2, 0)]);
    }

    #[test]
    fn a_torn_log_tail_is_ignored_then_cut_before_the_next_append() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        put_object(&disk, key(1, 0), 100);
        disk.sync().unwrap();
        drop(disk);
        let log = root.join(STORE_DIR).join(LOG_FILE);
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(&Entry::Delete(key(1, 0)).encode()[..17]);
        fs::write(&log, &bytes).unwrap();
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0)]);
        put_object(&disk, key(2, 0), 100);
        disk.sync().unwrap();
        drop(disk);
        let read = index::decode_log(&fs::read(&log).unwrap()).unwrap();
        assert!(!read.has_torn_tail);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), vec![key(1, 0), key(2, 0)]);
    }

    #[test]
    fn freed_records_give_their_space_back_and_empty_segments_go() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        // Records of 20 KiB in segments of 64 KiB: several segments.
        for stripe in 0..12 {
            put_object(&disk, key(stripe, 0), 20_000);
        }
        disk.sync().unwrap();
        let full = disk.allocated_bytes().unwrap();
        let count = segments(&root).len();
        assert!(count >= 4, "{count} segments");
        for stripe in 0..9 {
            disk.delete_shard(key(stripe, 0)).unwrap();
        }
        // Deleted but not yet logged: nothing is freed.
        assert_eq!(disk.allocated_bytes().unwrap(), full);
        disk.sync().unwrap();
        let after = disk.allocated_bytes().unwrap();
        assert!(after <= full - 8 * 20_000, "{full} -> {after}");
        assert!(segments(&root).len() < count, "empty segments removed");
        for stripe in 9..12 {
            let (object, _) =
                shard::decode_shard("t", disk.get_shard(key(stripe, 0)).unwrap(), None).unwrap();
            assert_eq!(object.payload().len(), 20_000);
        }
        drop(disk);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap().len(), 3);
    }

    #[test]
    fn freed_records_side_by_side_are_punched_as_one_range() {
        let at = |segment, blocks, len| Location {
            segment,
            offset: blocks * BLOCK,
            len,
            written: 0,
        };
        let frees = vec![
            at(2, 0, 4096),
            at(1, 3, 5000),
            at(1, 0, 4096),
            at(1, 1, 4096),
            at(1, 2, 4000),
            at(1, 9, 4096),
        ];
        assert_eq!(
            coalesce(frees),
            vec![(1, 0, 5 * BLOCK), (1, 9 * BLOCK, BLOCK), (2, 0, BLOCK)]
        );
        assert!(coalesce(Vec::new()).is_empty());
    }

    /// A store on which nothing is punched (as on a filesystem that cannot), with 30
    /// objects of 12,000 payload bytes (five to a 64 KiB test segment), three of every
    /// four deleted and the deletes made durable without compacting.
    fn store_with_dead_space(root: &Path) -> (DirDisk, Vec<ShardKey>) {
        let disk = DirDisk::create(root).unwrap();
        disk.can_punch.store(false, Ordering::Relaxed);
        for stripe in 0..30 {
            put_object(&disk, key(stripe, 1), 12_000);
        }
        disk.sync().unwrap();
        let mut kept = Vec::new();
        for stripe in 0..30 {
            if stripe % 4 == 1 {
                kept.push(key(stripe, 1));
            } else {
                disk.delete_shard(key(stripe, 1)).unwrap();
            }
        }
        disk.stage().unwrap();
        nix::unistd::syncfs(&disk.dir).unwrap();
        disk.free_space();
        (disk, kept)
    }

    fn assert_holds(disk: &DirDisk, kept: &[ShardKey]) {
        assert_eq!(disk.list_shards().unwrap(), kept);
        for key in kept {
            let (object, _) = shard::decode_shard("t", disk.get_shard(*key).unwrap(), None)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(object.payload(), vec![1u8; 12_000], "{key}");
        }
    }

    #[test]
    fn without_hole_punching_compaction_gives_the_space_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let (disk, kept) = store_with_dead_space(&root);
        let before = disk.allocated_bytes().unwrap();
        // Each sync compacts one segment; the next removes what it emptied.
        for _ in 0..12 {
            disk.sync().unwrap();
        }
        let after = disk.allocated_bytes().unwrap();
        assert!(
            after < before / 2,
            "{before} -> {after} bytes for {} live objects",
            kept.len()
        );
        assert_holds(&disk, &kept);
        drop(disk);
        let disk = DirDisk::open(&root).unwrap();
        assert_holds(&disk, &kept);
    }

    #[test]
    fn a_kill_at_any_point_of_a_compaction_loses_nothing() {
        // The process dies (the page cache survives, nothing else runs) after the k-th
        // record copied, with or without the copies' entries logged.
        for is_logged in [false, true] {
            for copies in 1..=6u64 {
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path().join("d");
                let (disk, kept) = store_with_dead_space(&root);
                let copied = disk.compact_some(copies * 12_288).unwrap();
                assert!(copied > 0);
                if is_logged {
                    disk.stage().unwrap();
                }
                drop(disk);
                let disk = DirDisk::open(&root).unwrap();
                assert_holds(&disk, &kept);
                // And the next run finishes the job.
                for _ in 0..12 {
                    disk.sync().unwrap();
                }
                assert_holds(&disk, &kept);
                drop(disk);
                assert_holds(&DirDisk::open(&root).unwrap(), &kept);
            }
        }
    }

    /// Where the kill -9 test's child churns a store (its environment variable).
    const CHURN_DIR_VAR: &str = "ARGOSFS_TEST_CHURN_DIR";

    /// The payload of stripe `id`'s object in the churn: its length and bytes follow
    /// from the id alone, so any object found can be checked.
    fn churn_payload(id: u64) -> Vec<u8> {
        vec![(id % 251) as u8; 3_000 + (id as usize * 7_919) % 14_000]
    }

    /// What the churn has made durable: `live` keys (stripe ids) that must be there,
    /// except those in `deleting` (deletes under way when the child died).
    fn churn_record(dir: &Path) -> (Vec<u64>, Vec<u64>) {
        let Ok(text) = fs::read_to_string(dir.join("record")) else {
            return (Vec::new(), Vec::new());
        };
        let mut lines = text.lines();
        let mut ids = || -> Vec<u64> {
            lines
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        let live = ids();
        let deleting = ids();
        (live, deleting)
    }

    fn write_churn_record(dir: &Path, live: &[u64], deleting: &[u64]) {
        let show = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        let tmp = dir.join("record.tmp");
        let mut file = File::create(&tmp).unwrap();
        std::io::Write::write_fmt(
            &mut file,
            format_args!("{}\n{}\n", show(live), show(deleting)),
        )
        .unwrap();
        file.sync_all().unwrap();
        fs::rename(&tmp, dir.join("record")).unwrap();
    }

    /// The child process of `kill_9_during_writes_and_compaction_loses_nothing_synced`:
    /// puts, deletes and syncs (each sync compacts a little, as hole punching is off)
    /// until it is killed, noting after each sync what is durable.
    #[test]
    #[ignore = "the kill -9 test runs it as its child process"]
    fn churn_child() {
        let Some(dir) = std::env::var_os(CHURN_DIR_VAR).map(PathBuf::from) else {
            return;
        };
        let root = dir.join("d");
        let disk = if root.exists() {
            DirDisk::open(&root).unwrap()
        } else {
            DirDisk::create(&root).unwrap()
        };
        disk.can_punch.store(false, Ordering::Relaxed);
        let mut live: Vec<u64> = (disk.list_shards().unwrap().iter())
            .map(|k| k.stripe.0)
            .collect();
        let mut next = live.iter().max().map_or(1, |m| m + 1);
        loop {
            for _ in 0..6 {
                let header = shard::ShardHeader {
                    stripe: StripeId(next),
                    inode: InodeId(7),
                    chunk: 0,
                    index: ShardIndex(1),
                    k: 4,
                    m: 2,
                };
                shard::write_shard(&disk, VolumeId([3; 16]), &header, &churn_payload(next))
                    .unwrap();
                live.push(next);
                next += 1;
            }
            disk.sync().unwrap();
            // Every fourth object stays for good, so only compaction can empty the
            // oldest segments; the others go a round after they came.
            let deleting: Vec<u64> = (live.iter().copied())
                .filter(|id| id % 4 != 0 && *id + 6 < next)
                .collect();
            write_churn_record(&dir, &live, &deleting);
            for id in &deleting {
                disk.delete_shard(key(*id, 1)).unwrap();
            }
            live.retain(|id| !deleting.contains(id));
            disk.sync().unwrap();
            write_churn_record(&dir, &live, &[]);
        }
    }

    #[test]
    fn kill_9_during_writes_and_compaction_loses_nothing_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let exe = std::env::current_exe().unwrap();
        let mut delay_ms = 40u64;
        for round in 0..16 {
            let mut child = std::process::Command::new(&exe)
                .args(["--exact", "store::dir::tests::churn_child", "--ignored"])
                .env(CHURN_DIR_VAR, dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert!(
                status.code().is_none(),
                "round {round}: the child stopped by itself ({status})"
            );
            delay_ms += 15;
            let (live, deleting) = churn_record(dir);
            let disk = DirDisk::open(&dir.join("d")).unwrap();
            let present: HashSet<u64> = (disk.list_shards().unwrap().iter())
                .map(|k| k.stripe.0)
                .collect();
            for id in live.iter().filter(|id| !deleting.contains(id)) {
                assert!(
                    present.contains(id),
                    "round {round}: synced object {id} lost"
                );
            }
            for id in &present {
                let bytes = disk.get_shard(key(*id, 1)).unwrap();
                let (object, _) = shard::decode_shard("t", bytes, None)
                    .unwrap_or_else(|e| panic!("round {round}: object {id}: {e}"));
                assert_eq!(
                    object.payload(),
                    churn_payload(*id),
                    "round {round}: object {id}"
                );
            }
        }
        let (live, _) = churn_record(dir);
        assert!(
            live.len() > 40,
            "the children did too little: {} objects",
            live.len()
        );
        assert!(
            !segments(&dir.join("d")).contains(&segment_name(0)),
            "the first segment, holding objects kept for good, was never compacted away"
        );
    }

    #[test]
    fn a_copy_loses_to_a_delete_or_rewrite_made_meanwhile() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let (disk, kept) = store_with_dead_space(&root);
        // As if the delete came between the copy's read and its index update: the
        // record the copy read is no longer the key's, so the copy is dropped.
        let victim = kept[0];
        let at = disk.locate(victim).unwrap();
        disk.delete_shard(victim).unwrap();
        let new = disk.write_record(&[&vec![0u8; at.len as usize]]).unwrap();
        {
            let mut state = disk.lock();
            assert_ne!(state.index.get(&victim), Some(&at));
            state.unlive(&new);
        }
        disk.sync().unwrap();
        assert!(disk.get_shard(victim).is_err());
        assert_holds(&disk, &kept[1..]);
    }

    #[test]
    fn a_long_log_is_folded_into_a_checkpoint_and_reopens_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        for stripe in 0..40u64 {
            put_object(&disk, key(stripe, 1), 10);
            if stripe % 3 == 0 {
                disk.delete_shard(key(stripe, 1)).unwrap();
            }
        }
        disk.sync().unwrap();
        disk.sync().unwrap();
        let expected = disk.list_shards().unwrap();
        drop(disk);
        let log = fs::read(root.join(STORE_DIR).join(LOG_FILE)).unwrap();
        let (generation, map) = index::decode_checkpoint(
            &fs::read(root.join(STORE_DIR).join(CHECKPOINT_FILE)).unwrap(),
        )
        .unwrap();
        assert!(generation > 1);
        assert_eq!(map.len(), expected.len());
        assert!(index::decode_log(&log).unwrap().entries.len() < 4);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), expected);
        for key in expected {
            shard::decode_shard("t", disk.get_shard(key).unwrap(), None).unwrap();
        }
    }

    #[test]
    fn a_log_of_an_older_generation_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        for stripe in 0..20u64 {
            put_object(&disk, key(stripe, 0), 10);
        }
        disk.sync().unwrap();
        disk.sync().unwrap();
        drop(disk);
        // As if the crash came between the checkpoint and the fresh log: the old log's
        // entries (here: a delete) are all in the checkpoint already.
        let mut stale = index::log_header(1).to_vec();
        stale.extend_from_slice(&Entry::Delete(key(0, 0)).encode());
        fs::write(root.join(STORE_DIR).join(LOG_FILE), stale).unwrap();
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap().len(), 20);
        put_object(&disk, key(99, 0), 10);
        disk.sync().unwrap();
        drop(disk);
        assert_eq!(
            DirDisk::open(&root).unwrap().list_shards().unwrap().len(),
            21
        );
    }

    #[test]
    fn damaged_index_files_are_errors_naming_them_and_an_old_layout_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        drop(DirDisk::create(&root).unwrap());
        let checkpoint = root.join(STORE_DIR).join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&checkpoint).unwrap();
        bytes[3] ^= 1;
        fs::write(&checkpoint, &bytes).unwrap();
        let err = DirDisk::open(&root).unwrap_err();
        assert!(err.to_string().contains("index"), "{err}");
        let old = tmp.path().join("old");
        fs::create_dir_all(old.join("shards")).unwrap();
        let err = DirDisk::open(&old).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("older ArgosFS"), "{err}");
    }

    #[test]
    fn a_damaged_index_is_rebuilt_from_the_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = DirDisk::create(&root).unwrap();
        for stripe in 0..12 {
            put_object(&disk, key(stripe, 2), 9_000 + stripe as usize);
        }
        disk.sync().unwrap();
        for stripe in 0..4 {
            disk.delete_shard(key(stripe, 2)).unwrap();
        }
        put_object(&disk, key(11, 2), 100); // replaced: the later object wins
        disk.sync().unwrap();
        let expected = disk.list_shards().unwrap();
        drop(disk);
        let checkpoint = root.join(STORE_DIR).join(CHECKPOINT_FILE);
        fs::write(&checkpoint, b"garbage").unwrap();
        let err = DirDisk::open(&root).unwrap_err();
        assert!(DirDisk::is_index_damage(&err), "{err}");

        let rebuilt = DirDisk::rebuild_index(&root).unwrap();
        assert_eq!(rebuilt.objects, expected.len() as u64);
        assert_eq!(rebuilt.saved.len(), 2);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), expected);
        let (object, _) =
            shard::decode_shard("t", disk.get_shard(key(11, 2)).unwrap(), None).unwrap();
        assert_eq!(object.payload().len(), 100);
        // It goes on working: writes, syncs, a reopen.
        put_object(&disk, key(50, 0), 10);
        disk.sync().unwrap();
        drop(disk);
        assert_eq!(
            DirDisk::open(&root).unwrap().list_shards().unwrap().len(),
            expected.len() + 1
        );
    }

    #[test]
    fn everything_made_is_private_and_an_existing_disk_directory_made_so() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("mnt");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let disk = DirDisk::create(&root).unwrap();
        assert_eq!(
            mode_of(&root),
            0o700,
            "a drive's mount point is made private"
        );
        disk.write_label(b"label").unwrap();
        for stripe in 0..10 {
            put_object(&disk, key(stripe, 0), 30_000);
        }
        disk.sync().unwrap();
        assert_eq!(mode_of(&root.join(STORE_DIR)), 0o700);
        let mut files = vec![root.join(LABEL_FILE)];
        files.extend(
            fs::read_dir(root.join(STORE_DIR))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
        assert!(files.len() > 4, "{files:?}");
        for file in &files {
            assert_eq!(mode_of(file), 0o600, "{}", file.display());
        }
        let mut audit = Audit::new(10);
        DirDisk::audit(&root, &mut audit);
        assert!(audit.is_clean(), "{audit:?}");
        fs::set_permissions(&files[2], fs::Permissions::from_mode(0o644)).unwrap();
        let mut audit = Audit::new(10);
        DirDisk::audit(&root, &mut audit);
        assert_eq!(audit.loose.len(), 1, "{audit:?}");
    }

    #[test]
    fn usable_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let disk = Arc::new(DirDisk::create(&root).unwrap());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let disk = Arc::clone(&disk);
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let stripe = t * 1000 + i;
                        put_object(&disk, key(stripe, (i % 6) as u8), 3000 + i as usize);
                        if i % 10 == 0 {
                            disk.sync().unwrap();
                        }
                        if i % 4 == 0 {
                            disk.delete_shard(key(stripe, (i % 6) as u8)).unwrap();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        disk.sync().unwrap();
        let keys = disk.list_shards().unwrap();
        assert_eq!(keys.len(), 8 * 50 - 8 * 13);
        drop(disk);
        let disk = DirDisk::open(&root).unwrap();
        assert_eq!(disk.list_shards().unwrap(), keys);
        for key in keys {
            let (object, _) = shard::decode_shard("t", disk.get_shard(key).unwrap(), None).unwrap();
            assert_eq!(object.header.key(), key);
        }
    }

    #[test]
    fn an_object_of_more_blocks_than_one_system_call_takes_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(&tmp.path().join("d")).unwrap();
        // 4 MiB of payload: 1,026 blocks, 2,053 slices to write (IOV_MAX is 1,024).
        let payload: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        let header = shard::ShardHeader {
            stripe: StripeId(5),
            inode: InodeId(1),
            chunk: 0,
            index: ShardIndex(0),
            k: 1,
            m: 0,
        };
        let volume = VolumeId([1; 16]);
        shard::write_shard(&disk, volume, &header, &payload).unwrap();
        let object = shard::read_shard(&disk, volume, header.key()).unwrap();
        assert!(object.payload() == payload);
        let mut all = vec![0u8; payload.len()];
        shard::read_shard_range_into(&disk, volume, header.key(), payload.len(), 0, &mut all)
            .unwrap();
        assert!(all == payload);
    }

    #[test]
    fn small_records_pack_by_sectors_and_large_ones_start_on_a_block() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(&tmp.path().join("d")).unwrap();
        let sizes = [100usize, 1100, 600, 5000, 10];
        for (n, size) in sizes.iter().enumerate() {
            disk.put_shard(key(n as u64, 0), &[&vec![n as u8; *size]])
                .unwrap();
        }
        let offsets: Vec<u64> = (0..sizes.len())
            .map(|n| disk.shard_location(key(n as u64, 0)).unwrap().1.offset)
            .collect();
        assert_eq!(offsets, [0, 512, 2048, 4096, 4096 + 8192]);
        for (n, size) in sizes.iter().enumerate() {
            assert_eq!(
                disk.get_shard(key(n as u64, 0)).unwrap(),
                vec![n as u8; *size]
            );
        }
    }

    #[test]
    fn label_round_trip_and_space() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        assert_eq!(DirDisk::label_at(&root).unwrap(), None);
        let disk = DirDisk::create(&root).unwrap();
        assert_eq!(disk.read_label().unwrap(), None);
        disk.write_label(b"{}").unwrap();
        assert_eq!(disk.read_label().unwrap(), Some(b"{}".to_vec()));
        assert_eq!(DirDisk::label_at(&root).unwrap(), Some(b"{}".to_vec()));
        let space = disk.space().unwrap();
        assert!(space.total_bytes > 0 && space.free_bytes <= space.total_bytes);
        assert!(disk.check_present().is_ok());
    }

    #[test]
    fn a_batch_over_several_disks_puts_and_reads_like_one_by_one() {
        let tmp = tempfile::tempdir().unwrap();
        let disks: Vec<DirDisk> = (0..4)
            .map(|i| DirDisk::create(&tmp.path().join(format!("d{i}"))).unwrap())
            .collect();
        // A MemDisk among them runs its part on the calling thread.
        let mem = crate::store::MemDisk::new("m", 1 << 30);
        let sizes = [100usize, 5000, 70_000, 4096];
        let payloads: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (0..*n).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let parts: Vec<Vec<&[u8]>> = payloads.iter().map(|p| p.chunks(999).collect()).collect();
        let mut ops: Vec<BatchOp<'_, '_>> = disks
            .iter()
            .zip(&parts)
            .enumerate()
            .map(|(i, (d, p))| BatchOp::Put {
                disk: d as &dyn Disk,
                key: key(1, i as u8),
                parts: p,
            })
            .collect();
        ops.push(BatchOp::Put {
            disk: &mem,
            key: key(1, 9),
            parts: &parts[0],
        });
        for done in run_batch(ops) {
            assert!(done.result.unwrap().is_none());
        }
        let gets: Vec<BatchOp<'_, '_>> = disks
            .iter()
            .enumerate()
            .map(|(i, d)| BatchOp::Get {
                disk: d as &dyn Disk,
                key: key(1, i as u8),
            })
            .chain([BatchOp::Get {
                disk: &mem,
                key: key(1, 9),
            }])
            .collect();
        let got: Vec<Vec<u8>> = run_batch(gets)
            .into_iter()
            .map(|d| d.result.unwrap().unwrap())
            .collect();
        for (i, payload) in payloads.iter().enumerate() {
            assert!(got[i] == *payload, "shard {i}");
            assert!(disks[i].get_shard(key(1, i as u8)).unwrap() == *payload);
        }
        assert!(got[4] == payloads[0]);
        // Ranges: a few bytes of each, one range past the end.
        let (mut a, mut b, mut c) = (vec![0u8; 10], vec![0u8; 3000], vec![0u8; 50]);
        let mut ra = [ShardRange {
            offset: 90,
            bufs: vec![&mut a[..]],
        }];
        let mut rb = [ShardRange {
            offset: 60_000,
            bufs: {
                let (b1, b2) = b.split_at_mut(1000);
                vec![b1, b2]
            },
        }];
        let mut rc = [ShardRange {
            offset: 4090,
            bufs: vec![&mut c[..]],
        }];
        let done = run_batch(vec![
            BatchOp::Ranges {
                disk: &disks[0],
                key: key(1, 0),
                ranges: &mut ra,
            },
            BatchOp::Ranges {
                disk: &disks[2],
                key: key(1, 2),
                ranges: &mut rb,
            },
            BatchOp::Ranges {
                disk: &disks[3],
                key: key(1, 3),
                ranges: &mut rc,
            },
            BatchOp::Get {
                disk: &disks[1],
                key: key(7, 7),
            },
        ]);
        let kinds: Vec<Option<io::ErrorKind>> = done
            .iter()
            .map(|d| d.result.as_ref().err().map(|e| e.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                None,
                Some(io::ErrorKind::UnexpectedEof),
                Some(io::ErrorKind::NotFound)
            ]
        );
        assert_eq!(a, payloads[0][90..]);
        assert!(b == payloads[2][60_000..63_000]);
        // Still there after a sync and a reopen.
        for (i, d) in disks.iter().enumerate() {
            d.sync().unwrap();
            let again = DirDisk::open(d.path()).unwrap();
            assert!(again.get_shard(key(1, i as u8)).unwrap() == payloads[i]);
        }
    }
}

//! What the data plane observes of each disk (heat, latency, errors), kept per disk
//! while the volume is open and in `ROOT/disk-records` between opens, so that
//! `argosfs-health` (and later placement and the autopilot) see what the last mount saw.
//!
//! Owns the counters, the latency histograms and the records file; knows nothing of what
//! the numbers mean (that is `crate::health`'s). The stripe I/O paths call the
//! `note_*` methods of a disk's [`DiskStats`]: each is a few relaxed atomic additions,
//! with no allocation and no lock, and never happens while a lock is held for the I/O.
//!
//! The records file is a checksummed JSON document (`crate::format::json`: magic,
//! format_version, checksum), private (0600) and replaced atomically. Counters
//! accumulate across opens: loaded at open, added to, saved at a commit at most every
//! [`SAVE_EVERY`] and at close. A missing file is no history; a damaged one, or one of
//! another volume, is logged and history starts afresh (it never stops an open). A
//! read-only open saves nothing.

use super::DiskState;
use crate::format::json;
use crate::store::shard::ShardReadError;
use crate::types::{DiskId, VolumeId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// File name of the records in ROOT.
pub const RECORDS_FILE: &str = "disk-records";
/// Magic of the records document.
pub const RECORDS_MAGIC: &str = "argosfs-disk-records";
/// Newest records version this build reads and writes.
pub const RECORDS_VERSION: u32 = 1;
/// Commits save the records at most this often (close always saves).
pub const SAVE_EVERY: Duration = Duration::from_secs(10);
/// Length of one latency window: p50 and p99 describe the current window and the one
/// before it, so between one and two windows of the most recent I/O.
pub const LATENCY_WINDOW: Duration = Duration::from_secs(60);
/// Weight of a new sample in the latency moving average (the older average keeps the
/// rest): about the last 16 operations dominate.
pub const EWMA_WEIGHT: f64 = 1.0 / 16.0;

/// Histogram buckets: four per power of two of microseconds (a reported percentile is
/// at most 25 % above the true one), from 0 µs to 2^26 µs (67 s); slower lands in the
/// last bucket.
const BUCKETS: usize = 4 * 25 + 4;

/// Counters of one disk's shard I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCounters {
    /// Shard reads that returned data (whole shards or ranges of one).
    pub reads: u64,
    /// Bytes those reads returned.
    pub read_bytes: u64,
    /// Shard writes that succeeded.
    pub writes: u64,
    /// Bytes written (whole shard objects).
    pub write_bytes: u64,
    /// Syncs of the disk (commits that flushed its shards).
    pub syncs: u64,
    /// Reads that failed with an I/O error.
    pub read_errors: u64,
    /// Writes that failed with an I/O error (full disks not counted).
    pub write_errors: u64,
    /// Syncs that failed.
    pub sync_errors: u64,
    /// Shards that failed verification when read (frame, block CRC, wrong key or length).
    pub checksum_failures: u64,
    /// Shards the metadata places on the disk that were not there when read.
    pub missing_shards: u64,
}

impl IoCounters {
    /// The sum of two sets of counters (saturating).
    pub fn plus(&self, other: &IoCounters) -> IoCounters {
        IoCounters {
            reads: self.reads.saturating_add(other.reads),
            read_bytes: self.read_bytes.saturating_add(other.read_bytes),
            writes: self.writes.saturating_add(other.writes),
            write_bytes: self.write_bytes.saturating_add(other.write_bytes),
            syncs: self.syncs.saturating_add(other.syncs),
            read_errors: self.read_errors.saturating_add(other.read_errors),
            write_errors: self.write_errors.saturating_add(other.write_errors),
            sync_errors: self.sync_errors.saturating_add(other.sync_errors),
            checksum_failures: self
                .checksum_failures
                .saturating_add(other.checksum_failures),
            missing_shards: self.missing_shards.saturating_add(other.missing_shards),
        }
    }

    /// Read, write and sync errors together.
    pub fn io_errors(&self) -> u64 {
        self.read_errors
            .saturating_add(self.write_errors)
            .saturating_add(self.sync_errors)
    }
}

/// Latency of one kind of operation on one disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Exponentially weighted moving average over every operation (weight
    /// [`EWMA_WEIGHT`] per new one), in microseconds; 0 before the first.
    pub ewma_us: u64,
    /// Median of the latest window, in microseconds (the upper bound of its histogram
    /// bucket); `None` when no operation was ever timed.
    pub p50_us: Option<u64>,
    /// 99th percentile of the latest window, as `p50_us`.
    pub p99_us: Option<u64>,
    /// Operations behind `p50_us`/`p99_us`: those of the latest window that had any (the
    /// window now, else the last one seen, possibly by an earlier mount).
    pub window_samples: u64,
    /// Operations timed since history began (all mounts).
    pub total_samples: u64,
}

/// Counters of the volume as a whole: failures found after a stripe's shards were put
/// together, which no single disk can be blamed for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCounters {
    /// Stripes that failed authentication when decrypted (XChaCha20-Poly1305).
    pub aead_failures: u64,
    /// Stripes whose reassembled payload failed its CRC.
    pub stripe_checksum_failures: u64,
    /// Stripe reads that needed parity because a shard was missing or bad.
    pub degraded_reads: u64,
    /// Stripe reads that failed: too few shards, or a failure above.
    pub failed_reads: u64,
}

impl VolumeCounters {
    fn plus(&self, other: &VolumeCounters) -> VolumeCounters {
        VolumeCounters {
            aead_failures: self.aead_failures.saturating_add(other.aead_failures),
            stripe_checksum_failures: self
                .stripe_checksum_failures
                .saturating_add(other.stripe_checksum_failures),
            degraded_reads: self.degraded_reads.saturating_add(other.degraded_reads),
            failed_reads: self.failed_reads.saturating_add(other.failed_reads),
        }
    }
}

/// One disk as the data plane saw it: what `Volume::disk_records` returns and the
/// records file keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskRecord {
    /// The disk.
    pub id: DiskId,
    /// Its directory as the superblock names it (history follows the directory: a
    /// replaced disk starts afresh).
    pub path: String,
    /// Its state.
    pub state: DiskState,
    /// Why it could not be opened, when it could not.
    pub unavailable: Option<String>,
    /// A shard write failed on it since the volume was opened.
    pub has_failed_write: bool,
    /// Capacity of the filesystem behind it (0 when not open).
    pub total_bytes: u64,
    /// Free bytes there.
    pub free_bytes: u64,
    /// Bytes promised to stripe writes in flight.
    pub reserved_bytes: u64,
    /// Shard I/O counters since history began.
    pub io: IoCounters,
    /// Shard read latency.
    pub read_latency: LatencySummary,
    /// Shard write latency.
    pub write_latency: LatencySummary,
    /// When a scrub last verified every shard of the disk (Unix seconds).
    pub last_scrub_unix: Option<u64>,
    /// When this disk's history began (Unix seconds).
    pub since_unix: u64,
}

/// Every disk's record and the volume's counters: the records file's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// The volume they belong to.
    pub volume: VolumeId,
    /// When they were taken (Unix seconds).
    pub taken_unix: u64,
    /// Every disk of the volume, in superblock order.
    pub disks: Vec<DiskRecord>,
    /// The volume's own counters since history began.
    pub counters: VolumeCounters,
}

impl Records {
    /// Path of the records of the volume at `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(RECORDS_FILE)
    }

    /// Reads the records saved under `root`: `Ok(None)` when there are none, an error
    /// naming what is wrong when the file is damaged.
    pub fn load(root: &Path) -> crate::Result<Option<Records>> {
        let path = Self::path(root);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::Error::io(&path, e)),
        };
        let (records, _): (Records, u32) = json::open(
            &path.display().to_string(),
            &bytes,
            RECORDS_MAGIC,
            RECORDS_VERSION,
        )?;
        Ok(Some(records))
    }

    /// Writes the records atomically and durably (mode 0600).
    pub fn store(&self, root: &Path) -> crate::Result<()> {
        let path = Self::path(root);
        let bytes = json::seal(RECORDS_MAGIC, RECORDS_VERSION, self);
        crate::store::write_atomic(&path, &bytes).map_err(|e| crate::Error::io(&path, e))
    }

    /// The records of `volume` saved under `root`, for an open: none when there are
    /// none, and none (with a warning) when the file is damaged or another volume's.
    pub(super) fn load_for_open(root: &Path, volume: VolumeId) -> Option<Records> {
        match Records::load(root) {
            Ok(Some(records)) if records.volume == volume => Some(records),
            Ok(Some(records)) => {
                tracing::warn!(path = %Self::path(root).display(), found = %records.volume, "disk records belong to another volume; starting them afresh");
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "disk records unreadable; starting them afresh");
                None
            }
        }
    }
}

/// The histogram bucket of a latency: exact below 4 µs, then four per power of two.
fn bucket_of(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let exponent = 63 - us.leading_zeros() as usize; // >= 2
    let mantissa = ((us >> (exponent - 2)) & 3) as usize;
    (4 * (exponent - 1) + mantissa).min(BUCKETS - 1)
}

/// The smallest latency of a bucket, in microseconds.
fn bucket_floor_us(bucket: usize) -> u64 {
    if bucket < 4 {
        return bucket as u64;
    }
    let exponent = bucket / 4 + 1;
    ((4 + bucket % 4) as u64) << (exponent - 2)
}

/// What a percentile falling in `bucket` is reported as: the bucket's upper bound (the
/// last bucket, unbounded, reports its floor).
fn bucket_report_us(bucket: usize) -> u64 {
    if bucket + 1 >= BUCKETS {
        bucket_floor_us(bucket)
    } else {
        bucket_floor_us(bucket + 1)
    }
}

/// Latency samples of one window.
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn clear(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }
}

/// Latency of one kind of operation: a moving average and two alternating windows of
/// histogram. A window is cleared by the first sample that finds it holding an older
/// window's samples; a sample racing that clear may be lost, which a percentile can
/// afford.
struct Latency {
    windows: [Histogram; 2],
    /// The window number each histogram holds (0: none yet).
    epochs: [AtomicU64; 2],
    /// The moving average, as f64 bits.
    ewma_bits: AtomicU64,
    total: AtomicU64,
    /// The summary of the last window that had samples (a mount idle for a while, or
    /// just opened, still reports the latest percentiles it knows).
    last: Mutex<LatencySummary>,
}

impl Latency {
    fn new(base: LatencySummary) -> Latency {
        Latency {
            windows: [Histogram::new(), Histogram::new()],
            epochs: [AtomicU64::new(0), AtomicU64::new(0)],
            ewma_bits: AtomicU64::new((base.ewma_us as f64).to_bits()),
            total: AtomicU64::new(base.total_samples),
            last: Mutex::new(base),
        }
    }

    fn record(&self, window: u64, us: u64) {
        let slot = (window % 2) as usize;
        let held = self.epochs[slot].load(Ordering::Acquire);
        if held != window
            && self.epochs[slot]
                .compare_exchange(held, window, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.windows[slot].clear();
        }
        self.windows[slot].buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        let first = self.total.fetch_add(1, Ordering::Relaxed) == 0;
        let sample = us as f64;
        let mut old = self.ewma_bits.load(Ordering::Relaxed);
        loop {
            let avg = f64::from_bits(old);
            let new = if first {
                sample
            } else {
                avg + EWMA_WEIGHT * (sample - avg)
            };
            match self.ewma_bits.compare_exchange_weak(
                old,
                new.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
    }

    /// The summary now: percentiles over windows `window` and `window - 1`, or the last
    /// ones known when those are empty.
    fn summary(&self, window: u64) -> LatencySummary {
        let mut counts = [0u64; BUCKETS];
        for (slot, histogram) in self.windows.iter().enumerate() {
            let epoch = self.epochs[slot].load(Ordering::Acquire);
            if epoch == 0 || epoch + 1 < window || epoch > window {
                continue;
            }
            for (count, bucket) in counts.iter_mut().zip(&histogram.buckets) {
                *count += bucket.load(Ordering::Relaxed);
            }
        }
        let samples: u64 = counts.iter().sum();
        let ewma = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        let mut last = super::lock_poisoned(&self.last);
        last.ewma_us = if ewma.is_finite() && ewma > 0.0 {
            ewma.round() as u64
        } else {
            0
        };
        last.total_samples = self.total.load(Ordering::Relaxed);
        if samples > 0 {
            last.p50_us = Some(percentile(&counts, samples, 0.50));
            last.p99_us = Some(percentile(&counts, samples, 0.99));
            last.window_samples = samples;
        }
        *last
    }
}

/// The value at quantile `q` of a histogram holding `samples` > 0.
fn percentile(counts: &[u64; BUCKETS], samples: u64, q: f64) -> u64 {
    let rank = ((samples as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return bucket_report_us(bucket);
        }
    }
    bucket_report_us(BUCKETS - 1)
}

/// Live counters of one disk (the ones since open; the history before is in `base`).
#[derive(Default)]
struct LiveCounters {
    reads: AtomicU64,
    read_bytes: AtomicU64,
    writes: AtomicU64,
    write_bytes: AtomicU64,
    syncs: AtomicU64,
    read_errors: AtomicU64,
    write_errors: AtomicU64,
    sync_errors: AtomicU64,
    checksum_failures: AtomicU64,
    missing_shards: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What the data plane observes of one disk while the volume is open: shared by every
/// thread doing I/O on it. Kept across changes of the disk set as long as the disk keeps
/// its directory.
pub struct DiskStats {
    base: IoCounters,
    since_unix: u64,
    live: LiveCounters,
    read: Latency,
    write: Latency,
    /// Unix seconds of the last scrub (0: never).
    last_scrub_unix: AtomicU64,
    /// Where latency windows are counted from.
    origin: Instant,
}

impl DiskStats {
    /// Stats continuing `base` (the disk's saved record), or a fresh history.
    pub(super) fn new(base: Option<&DiskRecord>) -> DiskStats {
        DiskStats {
            base: base.map(|b| b.io).unwrap_or_default(),
            since_unix: base.map_or_else(crate::types::unix_now, |b| b.since_unix),
            live: LiveCounters::default(),
            read: Latency::new(base.map(|b| b.read_latency).unwrap_or_default()),
            write: Latency::new(base.map(|b| b.write_latency).unwrap_or_default()),
            last_scrub_unix: AtomicU64::new(base.and_then(|b| b.last_scrub_unix).unwrap_or(0)),
            origin: Instant::now(),
        }
    }

    /// The latency window `at` falls in (numbered from 1).
    fn window(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs() / LATENCY_WINDOW.as_secs() + 1
    }

    fn elapsed_us(&self, started: Instant) -> (u64, u64) {
        let now = Instant::now();
        let us =
            u64::try_from(now.saturating_duration_since(started).as_micros()).unwrap_or(u64::MAX);
        (self.window(now), us)
    }

    /// A shard read of `bytes` that started at `started` succeeded.
    pub(super) fn note_read(&self, bytes: u64, started: Instant) {
        bump(&self.live.reads, 1);
        bump(&self.live.read_bytes, bytes);
        let (window, us) = self.elapsed_us(started);
        self.read.record(window, us);
    }

    /// A shard read failed: counted by why (missing, I/O error, failed verification).
    pub(super) fn note_read_failure(&self, error: &ShardReadError) {
        match error {
            ShardReadError::Missing => bump(&self.live.missing_shards, 1),
            ShardReadError::Io(_) => bump(&self.live.read_errors, 1),
            ShardReadError::Corrupt(_) => bump(&self.live.checksum_failures, 1),
        }
    }

    /// A shard read returned a shard that does not belong where it was found (a wrong
    /// length): a verification failure.
    pub(super) fn note_bad_shard(&self) {
        bump(&self.live.checksum_failures, 1);
    }

    /// A shard write of `bytes` that started at `started` succeeded.
    pub(super) fn note_write(&self, bytes: u64, started: Instant) {
        bump(&self.live.writes, 1);
        bump(&self.live.write_bytes, bytes);
        let (window, us) = self.elapsed_us(started);
        self.write.record(window, us);
    }

    /// A shard write failed; a full disk (ENOSPC, EDQUOT) is not an I/O error.
    pub(super) fn note_write_failure(&self, error: &std::io::Error) {
        let is_full = matches!(
            error.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        );
        if !is_full {
            bump(&self.live.write_errors, 1);
        }
    }

    /// A sync of the disk succeeded or failed.
    pub(super) fn note_sync(&self, is_ok: bool) {
        if is_ok {
            bump(&self.live.syncs, 1);
        } else {
            bump(&self.live.sync_errors, 1);
        }
    }

    /// A scrub verified the disk at `unix` seconds.
    pub(super) fn note_scrubbed(&self, unix: u64) {
        self.last_scrub_unix.store(unix, Ordering::Relaxed);
    }

    /// The counters since history began.
    pub(super) fn counters(&self) -> IoCounters {
        let l = &self.live;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.base.plus(&IoCounters {
            reads: load(&l.reads),
            read_bytes: load(&l.read_bytes),
            writes: load(&l.writes),
            write_bytes: load(&l.write_bytes),
            syncs: load(&l.syncs),
            read_errors: load(&l.read_errors),
            write_errors: load(&l.write_errors),
            sync_errors: load(&l.sync_errors),
            checksum_failures: load(&l.checksum_failures),
            missing_shards: load(&l.missing_shards),
        })
    }

    /// (read, write) latency now.
    pub(super) fn latency(&self) -> (LatencySummary, LatencySummary) {
        let window = self.window(Instant::now());
        (self.read.summary(window), self.write.summary(window))
    }

    /// When a scrub last verified the disk.
    pub(super) fn last_scrub_unix(&self) -> Option<u64> {
        match self.last_scrub_unix.load(Ordering::Relaxed) {
            0 => None,
            unix => Some(unix),
        }
    }

    /// When this disk's history began.
    pub(super) fn since_unix(&self) -> u64 {
        self.since_unix
    }
}

/// The volume's own counters and the bookkeeping of saving the records.
pub(super) struct VolumeStats {
    base: VolumeCounters,
    aead_failures: AtomicU64,
    stripe_checksum_failures: AtomicU64,
    degraded_reads: AtomicU64,
    failed_reads: AtomicU64,
    /// The records as loaded at open (disks look up their history here).
    loaded: Option<Records>,
    /// When the records were last saved; `None` in a read-only open (never saves).
    last_saved: Option<Mutex<Instant>>,
}

impl VolumeStats {
    /// The volume's stats, continuing the records saved under `root` (for `volume`).
    pub(super) fn open(root: &Path, volume: VolumeId, is_read_only: bool) -> VolumeStats {
        let loaded = Records::load_for_open(root, volume);
        VolumeStats {
            base: loaded.as_ref().map(|r| r.counters).unwrap_or_default(),
            aead_failures: AtomicU64::new(0),
            stripe_checksum_failures: AtomicU64::new(0),
            degraded_reads: AtomicU64::new(0),
            failed_reads: AtomicU64::new(0),
            loaded,
            last_saved: (!is_read_only).then(|| Mutex::new(Instant::now())),
        }
    }

    /// Stats for disk `id` at `path`: its saved history when the path matches.
    pub(super) fn disk(&self, id: DiskId, path: &Path) -> DiskStats {
        let path = path.to_string_lossy();
        let base = self
            .loaded
            .as_ref()
            .and_then(|r| r.disks.iter().find(|d| d.id == id && d.path == path));
        DiskStats::new(base)
    }

    /// A stripe failed to decode: counted by why.
    pub(super) fn note_stripe_failure(&self, error: &crate::data::TransformError) {
        use crate::data::TransformError;
        match error {
            TransformError::Authentication => bump(&self.aead_failures, 1),
            TransformError::Checksum => bump(&self.stripe_checksum_failures, 1),
            _ => {}
        }
        bump(&self.failed_reads, 1);
    }

    /// A stripe read needed parity.
    pub(super) fn note_degraded_read(&self) {
        bump(&self.degraded_reads, 1);
    }

    /// A stripe read failed for too few shards.
    pub(super) fn note_failed_read(&self) {
        bump(&self.failed_reads, 1);
    }

    /// The counters since history began.
    pub(super) fn counters(&self) -> VolumeCounters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.base.plus(&VolumeCounters {
            aead_failures: load(&self.aead_failures),
            stripe_checksum_failures: load(&self.stripe_checksum_failures),
            degraded_reads: load(&self.degraded_reads),
            failed_reads: load(&self.failed_reads),
        })
    }

    /// Whether a save is due (and, if so, counts it as done now). Never true for a
    /// read-only open; always true with `is_forced`.
    pub(super) fn take_save_turn(&self, is_forced: bool) -> bool {
        let Some(last) = &self.last_saved else {
            return false;
        };
        let mut last = super::lock_poisoned(last);
        if !is_forced && last.elapsed() < SAVE_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

impl super::Volume {
    /// Every disk's record now: state, space, and what the data plane observed of it
    /// since its history began (this open and the ones before).
    pub fn disk_records(&self) -> Vec<DiskRecord> {
        self.disk_set()
            .iter()
            .map(|slot| {
                let state = slot.state();
                let present = slot.space_if_present(false);
                let space = present.unwrap_or_default();
                let (read_latency, write_latency) = slot.stats.latency();
                DiskRecord {
                    id: slot.config.id,
                    path: slot.config.path.to_string_lossy().into_owned(),
                    state,
                    unavailable: match (&slot.disk, present) {
                        (None, _) => Some(
                            slot.why_unavailable
                                .clone()
                                .unwrap_or_else(|| format!("{state:?}").to_lowercase()),
                        ),
                        (Some(_), None) => Some("its directory no longer answers".into()),
                        (Some(_), Some(_)) => None,
                    },
                    has_failed_write: slot.write_failed.load(Ordering::Acquire),
                    total_bytes: space.total_bytes,
                    free_bytes: space.free_bytes,
                    reserved_bytes: slot.reserved.load(Ordering::Relaxed),
                    io: slot.stats.counters(),
                    read_latency,
                    write_latency,
                    last_scrub_unix: slot.stats.last_scrub_unix(),
                    since_unix: slot.stats.since_unix(),
                }
            })
            .collect()
    }

    /// Every disk's record and the volume's own counters (AEAD and stripe checksum
    /// failures, degraded and failed reads): what [`Volume::save_records`] stores.
    pub fn records(&self) -> Records {
        Records {
            volume: self.sb.volume,
            taken_unix: crate::types::unix_now(),
            disks: self.disk_records(),
            counters: self.records.counters(),
        }
    }

    /// Stores the records in `ROOT/disk-records` now (a read-only open stores nothing).
    /// Commits do this at most every [`SAVE_EVERY`], and close always.
    pub fn save_records(&self) -> crate::Result<()> {
        if !self.records.take_save_turn(true) {
            return Ok(());
        }
        self.records().store(&self.root)
    }

    /// Saves the records when [`SAVE_EVERY`] has passed since the last save; a failure
    /// is only logged (the records are an observation, not data).
    pub(super) fn save_records_if_due(&self) {
        if self.records.take_save_turn(false)
            && let Err(e) = self.records().store(&self.root)
        {
            tracing::warn!(error = %e, "could not save the disk records");
        }
    }

    /// The stats of disk `id`, when it is in the volume.
    pub(super) fn disk_stats(&self, id: DiskId) -> Option<std::sync::Arc<DiskStats>> {
        self.disk_set().slot(id).map(|slot| slot.stats.clone())
    }

    /// Records that a scrub verified every shard of `disk` at `unix` seconds (kept in
    /// the disk's record from the next save on).
    pub fn note_scrubbed(&self, disk: DiskId, unix: u64) -> crate::Result<()> {
        let set = self.disk_set();
        let slot = set
            .slot(disk)
            .ok_or_else(|| crate::Error::Config(format!("no disk {disk} in this volume")))?;
        slot.stats.note_scrubbed(unix);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_cover_every_latency() {
        let mut previous = 0;
        for us in (0..5000).chain([1 << 20, 1 << 26, u64::MAX]) {
            let b = bucket_of(us);
            assert!(b >= previous, "{us}");
            assert!(bucket_floor_us(b) <= us, "{us} in bucket {b}");
            if b + 1 < BUCKETS {
                assert!(us < bucket_floor_us(b + 1), "{us} in bucket {b}");
            }
            previous = b;
        }
        // Four buckets per doubling: the reported value is within 25 % above.
        for us in [5u64, 100, 999, 12_345, 1_000_000] {
            let reported = bucket_report_us(bucket_of(us));
            assert!(
                reported > us && reported as f64 <= us as f64 * 1.25 + 1.0,
                "{us} -> {reported}"
            );
        }
    }

    #[test]
    fn percentiles_and_average_follow_the_samples() {
        let latency = Latency::new(LatencySummary::default());
        for _ in 0..98 {
            latency.record(1, 100);
        }
        latency.record(1, 10_000);
        latency.record(1, 10_000);
        let s = latency.summary(1);
        assert_eq!(s.window_samples, 100);
        assert_eq!(s.total_samples, 100);
        let p50 = s.p50_us.unwrap();
        assert!((100..=125).contains(&p50), "{s:?}");
        let p99 = s.p99_us.unwrap();
        assert!((10_000..=12_500).contains(&p99), "{s:?}");
        assert!(s.ewma_us > 100 && s.ewma_us < 10_000, "{s:?}");
        // Two windows later the old samples are gone from the window but remembered.
        let later = latency.summary(3);
        assert_eq!(later.p50_us, s.p50_us);
        latency.record(3, 1_000);
        let now = latency.summary(3);
        assert_eq!(now.window_samples, 1);
        assert!((1_000..=1_250).contains(&now.p99_us.unwrap()), "{now:?}");
    }

    #[test]
    fn counters_continue_the_saved_history() {
        let saved = DiskRecord {
            id: DiskId(1),
            path: "/d1".into(),
            state: DiskState::Active,
            unavailable: None,
            has_failed_write: false,
            total_bytes: 0,
            free_bytes: 0,
            reserved_bytes: 0,
            io: IoCounters {
                reads: 5,
                read_bytes: 500,
                ..IoCounters::default()
            },
            read_latency: LatencySummary::default(),
            write_latency: LatencySummary::default(),
            last_scrub_unix: Some(7),
            since_unix: 3,
        };
        let stats = DiskStats::new(Some(&saved));
        stats.note_read(100, Instant::now());
        stats.note_read_failure(&ShardReadError::Missing);
        stats.note_write_failure(&std::io::Error::from_raw_os_error(libc::ENOSPC));
        stats.note_write_failure(&std::io::Error::from_raw_os_error(libc::EIO));
        let c = stats.counters();
        assert_eq!((c.reads, c.read_bytes, c.missing_shards), (6, 600, 1));
        assert_eq!(c.write_errors, 1);
        assert_eq!(stats.last_scrub_unix(), Some(7));
        assert_eq!(stats.since_unix(), 3);
    }
}

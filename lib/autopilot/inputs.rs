//! What the autopilot decides from: one observation of the volume and its disks, what
//! earlier runs saw (memory), and the policy. All three are plain values, saved whole in
//! each run's artifact, so a plan can be computed again from them (`--replay`).

use crate::types::DiskId;
use crate::volume::DiskState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// SMART attributes of one disk, as health read them (or an override supplied them).
/// Absent fields were not reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmartReading {
    /// The drive's own overall verdict (`smart_status.passed`).
    pub passed: Option<bool>,
    /// Reallocated sectors (ATA attribute 5).
    pub reallocated_sectors: Option<u64>,
    /// Sectors pending reallocation (ATA 197).
    pub pending_sectors: Option<u64>,
    /// Offline-uncorrectable sectors (ATA 198).
    pub offline_uncorrectable: Option<u64>,
    /// Media and data integrity errors (NVMe).
    pub media_errors: Option<u64>,
}

impl SmartReading {
    /// The counters a failing drive grows, summed (absent ones count 0).
    pub fn bad_sectors(&self) -> u64 {
        [
            self.reallocated_sectors,
            self.pending_sectors,
            self.offline_uncorrectable,
            self.media_errors,
        ]
        .iter()
        .flatten()
        .sum()
    }
}

/// One disk as observed in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSeen {
    /// The disk.
    pub id: DiskId,
    /// Its failure domain.
    pub domain: String,
    /// Its weight (placement share).
    pub weight: f64,
    /// Its state in the superblock.
    pub state: DiskState,
    /// It could be opened now.
    pub is_available: bool,
    /// A write to it failed since the volume was opened.
    pub has_failed_write: bool,
    /// Shards the metadata places on it, and their bytes.
    pub shards: u64,
    /// Bytes of those shards.
    pub shard_bytes: u64,
    /// Stripes whose shard on it is lost.
    pub degraded_stripes: u64,
    /// Capacity of its filesystem (0: unknown).
    pub total_bytes: u64,
    /// Free bytes there.
    pub free_bytes: u64,
    /// SMART now, when there is any.
    pub smart: Option<SmartReading>,
    /// 99th percentile of its shard read latency in microseconds, when measured.
    pub read_p99_us: Option<f64>,
    /// I/O errors and checksum failures recorded on it since records began.
    pub errors: u64,
}

impl DiskSeen {
    /// Active or draining: its shards are meant to be read.
    pub fn is_in_use(&self) -> bool {
        self.state.is_in_use()
    }

    /// Can take new shards.
    pub fn is_writable(&self) -> bool {
        self.is_available && !self.has_failed_write && self.state == DiskState::Active
    }

    /// Its shards can be read now.
    pub fn is_readable(&self) -> bool {
        self.is_available && self.is_in_use()
    }
}

/// The volume as observed in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When (unix seconds).
    pub now_unix: u64,
    /// Data shards per stripe.
    pub k: u8,
    /// Parity shards per stripe.
    pub m: u8,
    /// Fewest shards a new stripe is written with.
    pub min_shards: u8,
    /// Stripes in the volume.
    pub stripes: u64,
    /// Stripes missing a shard.
    pub degraded_stripes: u64,
    /// Why the metadata or journal failed verification, if it did: then nothing is done.
    pub metadata_problem: Option<String>,
    /// Stripes never scrubbed or last scrubbed longest ago: when (None: never, or no
    /// scrub record).
    pub oldest_scrub_unix: Option<u64>,
    /// Every disk, in superblock order.
    pub disks: Vec<DiskSeen>,
}

impl Observation {
    /// Shards per stripe.
    pub fn width(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// Bytes of shards stored over all disks.
    pub fn stored_bytes(&self) -> u64 {
        self.disks.iter().map(|d| d.shard_bytes).sum()
    }

    /// Disks in use that cannot be read now.
    pub fn lost_disks(&self) -> Vec<&DiskSeen> {
        self.disks
            .iter()
            .filter(|d| d.is_in_use() && !d.is_available)
            .collect()
    }
}

/// What one disk looked like in an earlier run, kept for trends and grace periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskMemory {
    /// Since when (unix) the disk has been seen unavailable, run after run; None once seen
    /// back.
    pub unavailable_since_unix: Option<u64>,
    /// Whether it was available, for the last runs (oldest first; at most
    /// [`MEMORY_RUNS`]).
    pub availability: Vec<bool>,
    /// The bad-sector count of the last runs that read SMART, oldest first (at most
    /// [`MEMORY_RUNS`]).
    pub bad_sectors: Vec<u64>,
    /// Runs in a row whose read latency was far above its peers'.
    pub slow_runs: u32,
}

/// Runs whose readings are kept per disk.
pub const MEMORY_RUNS: usize = 8;

impl DiskMemory {
    /// Times the disk went away or came back over the kept runs and `now`.
    pub fn flaps(&self, now: bool) -> u32 {
        let mut series = self.availability.clone();
        series.push(now);
        series.windows(2).filter(|w| w[0] != w[1]).count() as u32
    }
}

/// Keeps the last [`MEMORY_RUNS`] of `series` after pushing `value`.
fn push_bounded<T>(series: &mut Vec<T>, value: T) {
    series.push(value);
    if series.len() > MEMORY_RUNS {
        series.drain(..series.len() - MEMORY_RUNS);
    }
}

/// A change in a disk's health since the last run, for the event log and hooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthChange {
    /// The disk.
    pub disk: DiskId,
    /// `disk-unavailable`, `disk-available` or `smart-bad-sectors-grew`.
    pub kind: String,
    /// What, in words.
    pub detail: String,
}

impl Memory {
    /// What changed in the disks' health between the last run and `obs`.
    pub fn changes(&self, obs: &Observation) -> Vec<HealthChange> {
        let mut changes = Vec::new();
        for disk in obs.disks.iter().filter(|d| d.is_in_use()) {
            let Some(m) = self.disks.get(&disk.id) else {
                continue;
            };
            match m.availability.last() {
                Some(true) if !disk.is_available => changes.push(HealthChange {
                    disk: disk.id,
                    kind: "disk-unavailable".into(),
                    detail: format!("{} was available at the last run and is not now", disk.id),
                }),
                Some(false) if disk.is_available => changes.push(HealthChange {
                    disk: disk.id,
                    kind: "disk-available".into(),
                    detail: format!("{} is available again", disk.id),
                }),
                _ => {}
            }
            if let (Some(smart), Some(&last)) = (&disk.smart, m.bad_sectors.last())
                && smart.bad_sectors() > last
            {
                changes.push(HealthChange {
                    disk: disk.id,
                    kind: "smart-bad-sectors-grew".into(),
                    detail: format!("{}: bad sectors {last} -> {}", disk.id, smart.bad_sectors()),
                });
            }
        }
        changes
    }

    /// This memory with `obs` added: what the next run starts from.
    pub fn after(&self, obs: &Observation) -> Memory {
        let median = peer_median_p99(obs);
        let mut next = Memory {
            disks: BTreeMap::new(),
            runs: self.runs + 1,
        };
        for disk in &obs.disks {
            let mut m = self.disks.get(&disk.id).cloned().unwrap_or(DiskMemory {
                unavailable_since_unix: None,
                availability: Vec::new(),
                bad_sectors: Vec::new(),
                slow_runs: 0,
            });
            let is_lost = disk.is_in_use() && !disk.is_available;
            m.unavailable_since_unix = if is_lost {
                Some(m.unavailable_since_unix.unwrap_or(obs.now_unix))
            } else {
                None
            };
            if disk.is_in_use() {
                push_bounded(&mut m.availability, disk.is_available);
            }
            if let Some(smart) = &disk.smart {
                push_bounded(&mut m.bad_sectors, smart.bad_sectors());
            }
            m.slow_runs = match (disk.read_p99_us, median) {
                (Some(p99), Some(median)) if p99 >= SLOW_FACTOR * median => m.slow_runs + 1,
                _ => 0,
            };
            next.disks.insert(disk.id, m);
        }
        next
    }
}

/// A disk whose read p99 latency is this many times the median of its peers' is slow.
pub const SLOW_FACTOR: f64 = 4.0;

/// The median read p99 latency of the disks that have one (None with fewer than three,
/// too few to call one slow).
pub fn peer_median_p99(obs: &Observation) -> Option<f64> {
    let mut latencies: Vec<f64> = obs.disks.iter().filter_map(|d| d.read_p99_us).collect();
    if latencies.len() < 3 {
        return None;
    }
    latencies.sort_by(f64::total_cmp);
    Some(latencies[latencies.len() / 2]).filter(|m| *m > 0.0)
}

/// What earlier runs observed, by disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Per disk.
    pub disks: BTreeMap<DiskId, DiskMemory>,
    /// Runs remembered.
    pub runs: u64,
}

/// The limits the autopilot works within.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// A disk gone this long is treated as failed (its shards rebuilt elsewhere); until
    /// then the autopilot waits for it to come back (Ceph waits 10 minutes).
    pub down_after_secs: u64,
    /// Most shard bytes one run may write; None: [`Policy::DEFAULT_BUDGET_PERCENT`] of
    /// the stored bytes (at least [`Policy::MIN_BUDGET_BYTES`]).
    pub budget_bytes: Option<u64>,
    /// A volume whose oldest scrub is older than this is scrubbed.
    pub scrub_every_secs: u64,
    /// The share of the volume one scrub run covers (percent).
    pub scrub_percent: f64,
    /// A disk with less free space than this fraction of its capacity is short of
    /// headroom.
    pub headroom_fraction: f64,
    /// Rebalance when a disk holds more than its weighted share by this fraction.
    pub imbalance_fraction: f64,
}

impl Policy {
    /// Budget per run when none is given: this percentage of the stored bytes.
    pub const DEFAULT_BUDGET_PERCENT: u64 = 5;
    /// The smallest default budget (a small volume still gets repaired in one run).
    pub const MIN_BUDGET_BYTES: u64 = 1 << 30;

    /// The bytes one run may write.
    pub fn budget(&self, stored_bytes: u64) -> u64 {
        self.budget_bytes.unwrap_or_else(|| {
            (stored_bytes / 100 * Self::DEFAULT_BUDGET_PERCENT).max(Self::MIN_BUDGET_BYTES)
        })
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            down_after_secs: 600,
            budget_bytes: None,
            scrub_every_secs: 7 * 86_400,
            scrub_percent: 100.0,
            headroom_fraction: 0.05,
            imbalance_fraction: 0.10,
        }
    }
}

/// Everything a plan is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// This run's observation.
    pub observation: Observation,
    /// What earlier runs saw (before this run's observation was added).
    pub memory: Memory,
    /// The limits.
    pub policy: Policy,
}

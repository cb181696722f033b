//! Health of a volume and of each of its disks: what is observed (the data plane's
//! records, SMART, the survey of stripes, the disks' state and space), and a verdict
//! for each disk and for the volume with the reasons behind it.
//!
//! Three steps, each its own module: [`observe`] gathers an [`Observation`] (from an
//! open volume, a mount's control socket, or the files under ROOT when another process
//! holds the volume); [`assess`] turns it into a [`Report`] by the rules of [`rules`]
//! (pure: the same observation always gives the same report, which the autopilot relies
//! on); [`metrics`] renders a report in Prometheus' text format. SMART comes from
//! [`device`] (smartctl) and [`smart`] (parsing, overrides).
//!
//! Reads only: nothing here changes the volume.

pub mod device;
pub mod metrics;
pub mod observe;
pub mod rules;
pub mod smart;

pub use observe::{Observation, ObserveOptions, observe, observe_open};
pub use smart::{SmartData, SmartOverride};

use crate::maint::Survey;
use crate::types::{DiskId, VolumeId};
use crate::volume::{DiskConfig, DiskRecord, DiskState, VolumeCounters};
use serde::{Deserialize, Serialize};

/// How well a disk or the volume is, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing found.
    Healthy,
    /// Something to watch; every stripe is whole and readable.
    Warning,
    /// Redundancy is reduced (stripes missing shards, a disk lost) or a disk needs
    /// action; the data is still readable.
    Degraded,
    /// A disk is failing or gone, or (for the volume) data is at risk: more disks lost
    /// than the layout tolerates.
    Critical,
}

impl Verdict {
    /// Its name, as in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Warning => "warning",
            Verdict::Degraded => "degraded",
            Verdict::Critical => "critical",
        }
    }

    /// A number for metrics: 0 healthy, 1 warning, 2 degraded, 3 critical.
    pub fn level(self) -> u8 {
        self as u8
    }
}

/// One reason for a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Verdict,
    /// A stable snake_case name of the rule that fired (`smart_pending_sectors`,
    /// `disk_unavailable`, ...), for programs.
    pub code: String,
    /// The disk it is about, if one.
    pub disk: Option<DiskId>,
    /// What was found, in words.
    pub message: String,
    /// The observed value that fired the rule, when it is a number.
    pub value: Option<f64>,
    /// The threshold it crossed, when there is one.
    pub threshold: Option<f64>,
}

/// Where a disk's SMART data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmartSource {
    /// smartctl.
    Smartctl,
    /// The override file only.
    Override,
    /// smartctl, with fields replaced from the override file.
    SmartctlAndOverride,
    /// Neither: see `unavailable`.
    None,
}

/// SMART of one disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmartReport {
    /// Where the data came from.
    pub source: SmartSource,
    /// The block device smartctl was asked about.
    pub device: Option<String>,
    /// Why smartctl gave nothing ("no block device", "smartctl not installed", ...).
    pub unavailable: Option<String>,
    /// The attributes, when any source had them.
    pub data: Option<SmartData>,
}

impl SmartReport {
    /// No SMART data, for `why`.
    pub fn none(why: impl Into<String>) -> SmartReport {
        SmartReport {
            source: SmartSource::None,
            device: None,
            unavailable: Some(why.into()),
            data: None,
        }
    }
}

/// One disk as health sees it: what was observed and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskHealth {
    /// Its id.
    pub id: DiskId,
    /// Its id as text (`d3`).
    pub name: String,
    /// Its directory (resolved against ROOT).
    pub path: String,
    /// Configuration and state now.
    pub state: DiskState,
    /// Failure domain.
    pub domain: String,
    /// Device class.
    pub class: String,
    /// When and why the state last changed.
    pub state_since_unix: u64,
    /// Why the state last changed.
    pub state_reason: String,
    /// Why it cannot be read, when it cannot (missing directory, wrong label, failed).
    pub unavailable: Option<String>,
    /// A shard write failed on it in the running mount.
    pub has_failed_write: bool,
    /// Capacity of the filesystem behind it (0 when unknown).
    pub total_bytes: u64,
    /// Free bytes there.
    pub free_bytes: u64,
    /// Bytes promised to writes in flight (as recorded).
    pub reserved_bytes: u64,
    /// Shards the metadata places there, when surveyed.
    pub shards: Option<u64>,
    /// Stripes whose shard there is lost, when surveyed.
    pub degraded_stripes: Option<u64>,
    /// The data plane's record of it, when there is history.
    pub record: Option<DiskRecord>,
    /// SMART.
    pub smart: SmartReport,
    /// The verdict.
    pub verdict: Verdict,
    /// Why (empty when healthy).
    pub reasons: Vec<Finding>,
}

/// Where a part of the report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The volume opened by this process (read-only).
    Opened,
    /// The mount serving the volume (its control socket, or what it saved under ROOT).
    Mount,
    /// Files under ROOT (the superblock, the saved records, the disk directories): the
    /// volume is held by another process.
    Files,
    /// Not available (see the notes).
    None,
}

/// The stripes of the volume, from the survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSummary {
    /// Stripes.
    pub stripes: u64,
    /// Stripes missing at least one shard.
    pub degraded_stripes: u64,
    /// Stripes written with shards never written.
    pub unwritten_stripes: u64,
}

/// The health report of a volume: what `argosfs-health --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this report's shape.
    pub schema: u32,
    /// The volume.
    pub volume: VolumeId,
    /// Data shards per stripe.
    pub k: u8,
    /// Parity shards per stripe.
    pub m: u8,
    /// Fewest shards a new stripe is written with.
    pub min_shards: u8,
    /// The volume's verdict.
    pub verdict: Verdict,
    /// Why (empty when healthy).
    pub reasons: Vec<Finding>,
    /// Every disk, in superblock order.
    pub disks: Vec<DiskHealth>,
    /// The stripes, when they could be surveyed.
    pub stripes: Option<StripeSummary>,
    /// Where the survey of stripes came from.
    pub survey_source: Source,
    /// Where the records (I/O counters, latency) came from.
    pub records_source: Source,
    /// When the records were taken (Unix seconds), when there are any.
    pub records_taken_unix: Option<u64>,
    /// The volume's own counters (AEAD and stripe checksum failures, degraded and
    /// failed reads) since history began.
    pub counters: VolumeCounters,
    /// What could not be checked and other remarks, in words.
    pub notes: Vec<String>,
    /// When the report was made (Unix seconds).
    pub checked_unix: u64,
}

/// Version of [`Report`]'s shape.
pub const REPORT_SCHEMA: u32 = 1;

/// What is known of one disk before judging it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskObservation {
    /// As configured, with the state now.
    pub config: DiskConfig,
    /// Its directory, resolved against ROOT.
    pub path: String,
    /// Why it cannot be read, when it cannot.
    pub unavailable: Option<String>,
    /// A shard write failed on it in the running mount.
    pub has_failed_write: bool,
    /// Capacity (0 when unknown).
    pub total_bytes: u64,
    /// Free bytes.
    pub free_bytes: u64,
    /// The data plane's record, when there is history for this directory.
    pub record: Option<DiskRecord>,
    /// What the survey found on it.
    pub survey: Option<(u64, u64)>,
    /// SMART.
    pub smart: SmartReport,
}

/// Judges an observation: a verdict with reasons for each disk, then for the volume.
pub fn assess(observation: &Observation) -> Report {
    let disks: Vec<DiskHealth> = observation
        .disks
        .iter()
        .map(|d| {
            let reasons = rules::disk_findings(d, &observation.disks);
            let verdict = worst(&reasons);
            DiskHealth {
                id: d.config.id,
                name: d.config.id.to_string(),
                path: d.path.clone(),
                state: d.config.state,
                domain: d.config.domain.clone(),
                class: d.config.class.clone(),
                state_since_unix: d.config.state_since_unix,
                state_reason: d.config.state_reason.clone(),
                unavailable: d.unavailable.clone(),
                has_failed_write: d.has_failed_write,
                total_bytes: d.total_bytes,
                free_bytes: d.free_bytes,
                reserved_bytes: d.record.as_ref().map_or(0, |r| r.reserved_bytes),
                shards: d.survey.map(|(shards, _)| shards),
                degraded_stripes: d.survey.map(|(_, degraded)| degraded),
                record: d.record.clone(),
                smart: d.smart.clone(),
                verdict,
                reasons,
            }
        })
        .collect();
    let reasons = rules::volume_findings(observation, &disks);
    let sb = &observation.superblock;
    Report {
        schema: REPORT_SCHEMA,
        volume: sb.volume,
        k: sb.layout.k,
        m: sb.layout.m,
        min_shards: sb.layout.min_shards,
        verdict: worst(&reasons),
        reasons,
        disks,
        stripes: observation.survey.as_ref().map(stripe_summary),
        survey_source: observation.survey_source,
        records_source: observation.records_source,
        records_taken_unix: observation.records.as_ref().map(|r| r.taken_unix),
        counters: observation
            .records
            .as_ref()
            .map(|r| r.counters)
            .unwrap_or_default(),
        notes: observation.notes.clone(),
        checked_unix: observation.checked_unix,
    }
}

fn stripe_summary(survey: &Survey) -> StripeSummary {
    StripeSummary {
        stripes: survey.stripes,
        degraded_stripes: survey.degraded_stripes,
        unwritten_stripes: survey.unwritten_stripes,
    }
}

/// The worst severity among `findings` (healthy when there are none).
pub fn worst(findings: &[Finding]) -> Verdict {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Verdict::Healthy)
}

//! Building an [`Observation`] from what the volume reports: its superblock, the disk
//! survey (`argosfs-disk list`'s), the scrub state, and the health read per disk.

use super::inputs::{DiskSeen, Observation, SmartReading};
use crate::maint::Survey;
use crate::maint::scrub::ScrubStatus;
use crate::types::DiskId;
use crate::volume::Superblock;
use std::collections::BTreeMap;

/// What health adds about one disk (SMART, latency, errors), when it was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskHealth {
    /// SMART now.
    pub smart: Option<SmartReading>,
    /// 99th percentile of shard read latency, microseconds.
    pub read_p99_us: Option<f64>,
    /// I/O errors and checksum failures recorded.
    pub errors: u64,
}

/// The observation of a volume that could be surveyed.
pub fn observe(
    now_unix: u64,
    sb: &Superblock,
    min_shards: u8,
    survey: &Survey,
    scrub: Option<&ScrubStatus>,
    health: &BTreeMap<DiskId, DiskHealth>,
) -> Observation {
    let disks = survey
        .disks
        .iter()
        .map(|d| {
            let c = &d.info.config;
            let h = health.get(&c.id).cloned().unwrap_or_default();
            DiskSeen {
                id: c.id,
                domain: c.domain.clone(),
                weight: c.weight,
                state: c.state,
                is_available: d.info.unavailable.is_none(),
                has_failed_write: d.info.has_failed_write,
                shards: d.shards,
                shard_bytes: d.shard_bytes,
                degraded_stripes: d.degraded_stripes,
                total_bytes: d.info.total_bytes,
                free_bytes: d.info.free_bytes,
                smart: h.smart,
                read_p99_us: h.read_p99_us,
                errors: h.errors,
            }
        })
        .collect();
    Observation {
        now_unix,
        k: sb.layout.k,
        m: sb.layout.m,
        min_shards,
        stripes: survey.stripes,
        degraded_stripes: survey.degraded_stripes,
        metadata_problem: None,
        oldest_scrub_unix: oldest_scrub(now_unix, scrub),
        disks,
    }
}

/// When the stripe verified longest ago was verified (None: some were never, or there
/// is no scrub record).
fn oldest_scrub(now_unix: u64, scrub: Option<&ScrubStatus>) -> Option<u64> {
    let scrub = scrub?;
    if scrub.never_verified > 0 {
        return None;
    }
    scrub
        .oldest_verified_age_secs
        .map(|age| now_unix.saturating_sub(age))
}

/// The observation of a volume that could not be opened or surveyed: the superblock's
/// disks, nothing known of their shards, and why (the plan then refuses to act).
pub fn unsurveyed(now_unix: u64, sb: &Superblock, why: String) -> Observation {
    Observation {
        now_unix,
        k: sb.layout.k,
        m: sb.layout.m,
        min_shards: sb.layout.min_shards,
        stripes: 0,
        degraded_stripes: 0,
        metadata_problem: Some(why),
        oldest_scrub_unix: None,
        disks: sb
            .disks
            .iter()
            .map(|c| DiskSeen {
                id: c.id,
                domain: c.domain.clone(),
                weight: c.weight,
                state: c.state,
                is_available: false,
                has_failed_write: false,
                shards: 0,
                shard_bytes: 0,
                degraded_stripes: 0,
                total_bytes: 0,
                free_bytes: 0,
                smart: None,
                read_p99_us: None,
                errors: 0,
            })
            .collect(),
    }
}

//! The rules that turn observations into findings, with their thresholds.
//!
//! A disk is judged on its state, whether it can be read, its own shards lost, the data
//! plane's error counters, its headroom, its latency against its peers, and SMART. The
//! volume is judged on the disks it lost against its parity (m), the stripes missing
//! shards, whether new stripes can still be written, and the failures found in whole
//! stripes (AEAD, checksum). SMART is a weak predictor (Backblaze's data: a disk with a
//! nonzero count of 5, 187, 188, 197 or 198 fails far more often, but most such disks go
//! on for years), so one reading only warns until its count is high; `passed: false`
//! and NVMe's critical warning are the device's own alarm and count as critical.

use super::{DiskHealth, DiskObservation, Finding, Observation, Verdict};
use crate::types::DiskId;
use crate::volume::DiskState;

/// Reallocated sectors (ATA 5, SCSI grown defects) at or above this warn.
pub const REALLOCATED_WARN: u64 = 1;
/// Reallocated sectors at or above this are critical: the disk is running out of spares.
pub const REALLOCATED_CRITICAL: u64 = 100;
/// Pending sectors (ATA 197) at or above this warn: a read failed and was not yet
/// remapped.
pub const PENDING_WARN: u64 = 1;
/// Pending sectors at or above this are critical: the surface is going bad.
pub const PENDING_CRITICAL: u64 = 8;
/// Offline-uncorrectable sectors (ATA 198) at or above this warn.
pub const UNCORRECTABLE_WARN: u64 = 1;
/// Offline-uncorrectable sectors at or above this are critical.
pub const UNCORRECTABLE_CRITICAL: u64 = 8;
/// Media errors (NVMe, SCSI uncorrected) at or above this warn.
pub const MEDIA_ERRORS_WARN: u64 = 1;
/// Media errors at or above this are critical.
pub const MEDIA_ERRORS_CRITICAL: u64 = 8;
/// Interface CRC errors (ATA 199) at or above this warn (a cable or port, not the
/// medium: never critical).
pub const CRC_ERRORS_WARN: u64 = 1;
/// Endurance used (percent) at or above this warns.
pub const WEAR_WARN_PERCENT: u64 = 90;
/// Endurance used (percent) at or above this is critical: past the rated writes.
pub const WEAR_CRITICAL_PERCENT: u64 = 100;
/// Temperature (°C) at or above this warns (most drives are rated to 60-70 °C).
pub const TEMPERATURE_WARN_CELSIUS: i64 = 60;
/// Temperature (°C) at or above this is critical.
pub const TEMPERATURE_CRITICAL_CELSIUS: i64 = 70;
/// A disk whose free space is below this share of its capacity warns: placement will
/// soon pass it over and it cannot take shards moved by heal or drain.
pub const HEADROOM_WARN_RATIO: f64 = 0.10;
/// A disk whose average latency is this many times the median of its peers' warns.
pub const SLOW_FACTOR: f64 = 4.0;
/// ... and only when its average is above this (µs): differences among fast disks
/// (page cache, tmpfs) are noise.
pub const SLOW_FLOOR_US: u64 = 5_000;
/// ... and only with this many operations timed on it and on each peer compared.
pub const SLOW_MIN_SAMPLES: u64 = 100;
/// Read, write and sync errors at or above this warn.
pub const IO_ERRORS_WARN: u64 = 1;
/// Shard checksum failures at or above this warn (scrub or heal repairs them).
pub const CHECKSUM_FAILURES_WARN: u64 = 1;

fn finding(
    severity: Verdict,
    code: &str,
    disk: Option<DiskId>,
    message: String,
    value: Option<f64>,
    threshold: Option<f64>,
) -> Finding {
    Finding {
        severity,
        code: code.to_string(),
        disk,
        message,
        value,
        threshold,
    }
}

/// A count judged against a warning and a critical threshold (`critical` None: never
/// critical).
fn count_rule(
    out: &mut Vec<Finding>,
    disk: DiskId,
    code: &str,
    what: &str,
    value: Option<u64>,
    warn: u64,
    critical: Option<u64>,
) {
    let Some(value) = value else { return };
    let (severity, threshold) = match critical {
        Some(c) if value >= c => (Verdict::Critical, c),
        _ if value >= warn => (Verdict::Warning, warn),
        _ => return,
    };
    out.push(finding(
        severity,
        code,
        Some(disk),
        format!("{what}: {value} (threshold {threshold})"),
        Some(value as f64),
        Some(threshold as f64),
    ));
}

/// The findings of one disk; `all` are every disk of the volume (for latency peers).
pub fn disk_findings(d: &DiskObservation, all: &[DiskObservation]) -> Vec<Finding> {
    let id = d.config.id;
    let mut out = Vec::new();
    match d.config.state {
        DiskState::Removed => return out, // no longer part of the volume
        DiskState::Failed => out.push(finding(
            Verdict::Critical,
            "disk_failed",
            Some(id),
            format!("marked failed: {}", reason_or(&d.config.state_reason)),
            None,
            None,
        )),
        DiskState::Active | DiskState::Draining => {
            if let Some(why) = &d.unavailable {
                out.push(finding(
                    Verdict::Critical,
                    "disk_unavailable",
                    Some(id),
                    format!("cannot be read: {why}"),
                    None,
                    None,
                ));
            }
        }
    }
    if d.has_failed_write {
        out.push(finding(
            Verdict::Degraded,
            "write_failed",
            Some(id),
            "a shard write failed on it in the running mount: it takes no new shards until the volume is opened again".into(),
            None,
            None,
        ));
    }
    if let Some((_, lost)) = d.survey
        && lost > 0
        && d.unavailable.is_none()
        && d.config.state.is_in_use()
    {
        out.push(finding(
            Verdict::Degraded,
            "shards_lost",
            Some(id),
            format!(
                "{lost} stripes miss their shard on this disk (argosfs-disk heal rebuilds them)"
            ),
            Some(lost as f64),
            Some(1.0),
        ));
    }
    if let Some(record) = &d.record {
        let io = &record.io;
        count_rule(
            &mut out,
            id,
            "io_errors",
            &format!(
                "I/O errors recorded (read {}, write {}, sync {})",
                io.read_errors, io.write_errors, io.sync_errors
            ),
            Some(io.io_errors()),
            IO_ERRORS_WARN,
            None,
        );
        count_rule(
            &mut out,
            id,
            "checksum_failures",
            "shards that failed verification when read",
            Some(io.checksum_failures),
            CHECKSUM_FAILURES_WARN,
            None,
        );
        count_rule(
            &mut out,
            id,
            "missing_shards",
            "shards found missing when read",
            Some(io.missing_shards),
            1,
            None,
        );
    }
    if d.unavailable.is_none() && d.total_bytes > 0 && d.config.state == DiskState::Active {
        let ratio = d.free_bytes as f64 / d.total_bytes as f64;
        if ratio < HEADROOM_WARN_RATIO {
            out.push(finding(
                Verdict::Warning,
                "low_headroom",
                Some(id),
                format!(
                    "{:.1} % free ({} of {} bytes), below {:.0} %",
                    ratio * 100.0,
                    d.free_bytes,
                    d.total_bytes,
                    HEADROOM_WARN_RATIO * 100.0
                ),
                Some(ratio),
                Some(HEADROOM_WARN_RATIO),
            ));
        }
    }
    slow_rule(&mut out, d, all, "read", |r| r.read_latency);
    slow_rule(&mut out, d, all, "write", |r| r.write_latency);
    if let Some(smart) = &d.smart.data {
        smart_findings(&mut out, id, smart);
    }
    out
}

fn reason_or(reason: &str) -> &str {
    if reason.is_empty() {
        "no reason given"
    } else {
        reason
    }
}

/// A disk whose average latency of one kind is far above the median of its peers.
fn slow_rule(
    out: &mut Vec<Finding>,
    d: &DiskObservation,
    all: &[DiskObservation],
    kind: &str,
    latency: impl Fn(&crate::volume::DiskRecord) -> crate::volume::LatencySummary,
) {
    let timed = |o: &DiskObservation| {
        o.record
            .as_ref()
            .map(&latency)
            .filter(|l| l.total_samples >= SLOW_MIN_SAMPLES)
            .map(|l| l.ewma_us)
    };
    let Some(mine) = timed(d) else { return };
    let mut peers: Vec<u64> = all
        .iter()
        .filter(|o| o.config.id != d.config.id && o.unavailable.is_none())
        .filter_map(timed)
        .collect();
    if peers.is_empty() {
        return;
    }
    peers.sort_unstable();
    let median = peers[peers.len() / 2] as f64;
    let limit = (median * SLOW_FACTOR).max(SLOW_FLOOR_US as f64);
    if mine as f64 > limit {
        out.push(finding(
            Verdict::Warning,
            &format!("slow_{kind}s"),
            Some(d.config.id),
            format!(
                "{kind} latency averages {mine} µs, over {SLOW_FACTOR}x the median of its peers ({median:.0} µs)"
            ),
            Some(mine as f64),
            Some(limit),
        ));
    }
}

/// The SMART findings of a disk.
fn smart_findings(out: &mut Vec<Finding>, id: DiskId, s: &super::SmartData) {
    if s.passed == Some(false) {
        out.push(finding(
            Verdict::Critical,
            "smart_failed",
            Some(id),
            "SMART overall assessment: FAILED (the device predicts its own failure)".into(),
            None,
            None,
        ));
    }
    if let Some(bits) = s.critical_warning.filter(|b| *b != 0) {
        out.push(finding(
            Verdict::Critical,
            "smart_critical_warning",
            Some(id),
            format!("NVMe critical warning bits set: {bits:#04x}"),
            Some(bits as f64),
            Some(1.0),
        ));
    }
    count_rule(
        out,
        id,
        "smart_reallocated_sectors",
        "SMART reallocated sectors",
        s.reallocated_sectors,
        REALLOCATED_WARN,
        Some(REALLOCATED_CRITICAL),
    );
    count_rule(
        out,
        id,
        "smart_pending_sectors",
        "SMART pending sectors",
        s.pending_sectors,
        PENDING_WARN,
        Some(PENDING_CRITICAL),
    );
    count_rule(
        out,
        id,
        "smart_offline_uncorrectable",
        "SMART offline-uncorrectable sectors",
        s.offline_uncorrectable,
        UNCORRECTABLE_WARN,
        Some(UNCORRECTABLE_CRITICAL),
    );
    count_rule(
        out,
        id,
        "smart_media_errors",
        "SMART media errors",
        s.media_errors,
        MEDIA_ERRORS_WARN,
        Some(MEDIA_ERRORS_CRITICAL),
    );
    count_rule(
        out,
        id,
        "smart_crc_errors",
        "SMART interface CRC errors (check the cable)",
        s.crc_errors,
        CRC_ERRORS_WARN,
        None,
    );
    count_rule(
        out,
        id,
        "smart_wear",
        "SMART endurance used (percent)",
        s.percentage_used,
        WEAR_WARN_PERCENT,
        Some(WEAR_CRITICAL_PERCENT),
    );
    if let Some(t) = s.temperature_celsius {
        let (severity, threshold) = if t >= TEMPERATURE_CRITICAL_CELSIUS {
            (Verdict::Critical, TEMPERATURE_CRITICAL_CELSIUS)
        } else if t >= TEMPERATURE_WARN_CELSIUS {
            (Verdict::Warning, TEMPERATURE_WARN_CELSIUS)
        } else {
            return;
        };
        out.push(finding(
            severity,
            "smart_temperature",
            Some(id),
            format!("temperature {t} °C (threshold {threshold} °C)"),
            Some(t as f64),
            Some(threshold as f64),
        ));
    }
}

/// The volume's findings, from the observation and the disks as judged.
pub fn volume_findings(obs: &Observation, disks: &[DiskHealth]) -> Vec<Finding> {
    let layout = &obs.superblock.layout;
    let m = u64::from(layout.m);
    let mut out = Vec::new();
    if let Some(why) = &obs.open_error {
        out.push(finding(
            Verdict::Critical,
            "volume_unreadable",
            None,
            format!(
                "the volume does not open: {why} (argosfs-fsck tells what is wrong and repairs it)"
            ),
            None,
            None,
        ));
    }
    // Lost: in use but unreadable, or failed while still holding shards (a failed
    // disk is counted as holding shards unless a survey says it holds none).
    let lost: Vec<&DiskHealth> = disks
        .iter()
        .filter(|d| match d.state {
            DiskState::Active | DiskState::Draining => d.unavailable.is_some(),
            DiskState::Failed => d.shards.is_none_or(|s| s > 0),
            DiskState::Removed => false,
        })
        .collect();
    let names = |list: &[&DiskHealth]| {
        list.iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lost_count = lost.len() as u64;
    if lost_count > m {
        out.push(finding(
            Verdict::Critical,
            "too_many_disks_lost",
            None,
            format!(
                "{lost_count} disks lost ({}), more than the {m} a {}+{m} layout survives: stripes with a shard on each are unreadable until disks come back",
                names(&lost),
                layout.k
            ),
            Some(lost_count as f64),
            Some(m as f64),
        ));
    } else if lost_count > 0 {
        out.push(finding(
            Verdict::Degraded,
            "disks_lost",
            None,
            format!(
                "{lost_count} of the {m} disks a {}+{m} layout survives are lost ({}): replace them (argosfs-disk replace) or heal onto the others",
                layout.k,
                names(&lost)
            ),
            Some(lost_count as f64),
            Some(m as f64),
        ));
    }
    if let Some(survey) = &obs.survey
        && survey.degraded_stripes > 0
    {
        out.push(finding(
            Verdict::Degraded,
            "degraded_stripes",
            None,
            format!(
                "{} of {} stripes miss shards ({} written with disks missing): argosfs-disk heal rebuilds them",
                survey.degraded_stripes, survey.stripes, survey.unwritten_stripes
            ),
            Some(survey.degraded_stripes as f64),
            Some(1.0),
        ));
    }
    let writable = disks
        .iter()
        .filter(|d| d.state == DiskState::Active && d.unavailable.is_none() && !d.has_failed_write)
        .count() as u64;
    if writable < u64::from(layout.min_shards) {
        out.push(finding(
            Verdict::Degraded,
            "too_few_writable_disks",
            None,
            format!(
                "{writable} disks can take new shards, fewer than min_shards {}: new data cannot be written (reads go on)",
                layout.min_shards
            ),
            Some(writable as f64),
            Some(f64::from(layout.min_shards)),
        ));
    }
    if let Some(records) = &obs.records {
        let c = &records.counters;
        for (code, what, value) in [
            (
                "aead_failures",
                "stripes that failed authentication when decrypted",
                c.aead_failures,
            ),
            (
                "stripe_checksum_failures",
                "stripes whose reassembled payload failed its checksum",
                c.stripe_checksum_failures,
            ),
            ("failed_reads", "stripe reads that failed", c.failed_reads),
        ] {
            if value > 0 {
                out.push(finding(
                    Verdict::Warning,
                    code,
                    None,
                    format!("{what}: {value} recorded (argosfs-fsck names the files)"),
                    Some(value as f64),
                    Some(1.0),
                ));
            }
        }
    }
    let attention: Vec<String> = disks
        .iter()
        .filter(|d| d.verdict != Verdict::Healthy)
        .map(|d| format!("{} ({})", d.name, d.verdict.name()))
        .collect();
    if !attention.is_empty() {
        out.push(finding(
            Verdict::Warning,
            "disks_need_attention",
            None,
            format!("disks not healthy: {}", attention.join(", ")),
            Some(attention.len() as f64),
            None,
        ));
    }
    out
}

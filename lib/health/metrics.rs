//! A health report as Prometheus metrics, in the text exposition format: what
//! `argosfs-health --prometheus` prints (for node_exporter's textfile collector), and
//! what a mount's `/metrics` can serve from a report of its own
//! ([`super::observe_open`] then [`super::assess`] then [`registry`]).
//!
//! Names follow Prometheus' rules: `argosfs_` first, the unit last (`_bytes`,
//! `_seconds`, `_celsius`), `_total` for counters; per-disk series carry a `disk` label
//! (`d0`, ...). Counters hold the totals since the disk's history began (see
//! `volume::disk_stats`); a disk replaced by a new directory starts from zero, which
//! Prometheus' `rate()` reads as a counter reset.

use super::{DiskHealth, Report, Verdict};
use crate::volume::{DiskState, LatencySummary};
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

/// Builds a registry holding every metric of `report`.
pub fn registry(report: &Report) -> prometheus::Result<Registry> {
    let b = Builder::new();
    add_report(&b, report)?;
    Ok(b.into_registry())
}

/// Adds every metric of `report` to `b` (a mount adds its own counters beside them).
pub(crate) fn add_report(b: &Builder, report: &Report) -> prometheus::Result<()> {
    volume_metrics(b, report)?;
    disk_metrics(b, report)
}

/// The report in the text exposition format.
pub fn text(report: &Report) -> prometheus::Result<String> {
    let families = registry(report)?.gather();
    prometheus::TextEncoder::new().encode_to_string(&families)
}

/// Metrics being registered: each made, registered and handed back to be set.
pub(crate) struct Builder {
    registry: Registry,
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            registry: Registry::new(),
        }
    }

    pub(crate) fn into_registry(self) -> Registry {
        self.registry
    }

    fn register<C: Collector + Clone + 'static>(&self, c: C) -> prometheus::Result<C> {
        self.registry.register(Box::new(c.clone()))?;
        Ok(c)
    }

    pub(crate) fn gauge(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<GaugeVec> {
        self.register(GaugeVec::new(Opts::new(name, help), labels)?)
    }

    pub(crate) fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }
}

const VERDICT_HELP: &str = "0 healthy, 1 warning, 2 degraded, 3 critical";

fn volume_metrics(b: &Builder, report: &Report) -> prometheus::Result<()> {
    b.gauge(
        "argosfs_volume_verdict",
        &format!("Health verdict of the volume: {VERDICT_HELP}"),
        &[],
    )?
    .with_label_values::<&str>(&[])
    .set(f64::from(report.verdict.level()));
    b.gauge(
        "argosfs_health_checked_timestamp_seconds",
        "When this report was made (Unix time)",
        &[],
    )?
    .with_label_values::<&str>(&[])
    .set(report.checked_unix as f64);
    let lost = report
        .disks
        .iter()
        .filter(|d| d.verdict == Verdict::Critical && d.state != DiskState::Removed)
        .count();
    b.gauge(
        "argosfs_volume_critical_disks",
        "Disks whose verdict is critical (failed, unavailable or failing)",
        &[],
    )?
    .with_label_values::<&str>(&[])
    .set(lost as f64);
    b.gauge(
        "argosfs_volume_parity_shards",
        "Parity shards per stripe (m): disks the volume survives losing",
        &[],
    )?
    .with_label_values::<&str>(&[])
    .set(f64::from(report.m));
    if let Some(stripes) = &report.stripes {
        b.gauge("argosfs_volume_stripes", "Stripes of the volume", &[])?
            .with_label_values::<&str>(&[])
            .set(stripes.stripes as f64);
        b.gauge(
            "argosfs_volume_degraded_stripes",
            "Stripes missing at least one shard",
            &[],
        )?
        .with_label_values::<&str>(&[])
        .set(stripes.degraded_stripes as f64);
    }
    let c = &report.counters;
    for (name, help, value) in [
        (
            "argosfs_volume_aead_failures_total",
            "Stripes that failed authentication when decrypted",
            c.aead_failures,
        ),
        (
            "argosfs_volume_stripe_checksum_failures_total",
            "Stripes whose reassembled payload failed its checksum",
            c.stripe_checksum_failures,
        ),
        (
            "argosfs_volume_degraded_reads_total",
            "Stripe reads that needed parity",
            c.degraded_reads,
        ),
        (
            "argosfs_volume_failed_reads_total",
            "Stripe reads that failed",
            c.failed_reads,
        ),
    ] {
        b.counter(name, help, &[])?
            .with_label_values::<&str>(&[])
            .inc_by(value);
    }
    Ok(())
}

fn state_name(state: DiskState) -> &'static str {
    match state {
        DiskState::Active => "active",
        DiskState::Draining => "draining",
        DiskState::Failed => "failed",
        DiskState::Removed => "removed",
    }
}

fn disk_metrics(b: &Builder, report: &Report) -> prometheus::Result<()> {
    let disk = &["disk"];
    let verdict = b.gauge(
        "argosfs_disk_verdict",
        &format!("Health verdict of the disk: {VERDICT_HELP}"),
        disk,
    )?;
    let state = b.gauge(
        "argosfs_disk_state",
        "1 for the disk's life-cycle state (active, draining, failed, removed)",
        &["disk", "state"],
    )?;
    let available = b.gauge(
        "argosfs_disk_available",
        "1 when the disk can be read, 0 when it cannot",
        disk,
    )?;
    let capacity = b.gauge(
        "argosfs_disk_capacity_bytes",
        "Capacity of the filesystem behind the disk",
        disk,
    )?;
    let free = b.gauge(
        "argosfs_disk_free_bytes",
        "Free bytes on the filesystem behind the disk",
        disk,
    )?;
    let reserved = b.gauge(
        "argosfs_disk_reserved_bytes",
        "Bytes promised to stripe writes in flight when recorded",
        disk,
    )?;
    let shards = b.gauge("argosfs_disk_shards", "Shards placed on the disk", disk)?;
    let degraded = b.gauge(
        "argosfs_disk_degraded_stripes",
        "Stripes whose shard on this disk is lost",
        disk,
    )?;
    let last_scrub = b.gauge(
        "argosfs_disk_last_scrub_timestamp_seconds",
        "When a scrub last verified the disk (Unix time)",
        disk,
    )?;
    let counters = [
        ("argosfs_disk_reads_total", "Shard reads that returned data"),
        (
            "argosfs_disk_read_bytes_total",
            "Bytes returned by shard reads",
        ),
        ("argosfs_disk_writes_total", "Shard writes that succeeded"),
        (
            "argosfs_disk_written_bytes_total",
            "Bytes of shard objects written",
        ),
        ("argosfs_disk_syncs_total", "Syncs of the disk"),
        (
            "argosfs_disk_read_errors_total",
            "Shard reads that failed with an I/O error",
        ),
        (
            "argosfs_disk_write_errors_total",
            "Shard writes that failed with an I/O error",
        ),
        ("argosfs_disk_sync_errors_total", "Syncs that failed"),
        (
            "argosfs_disk_checksum_failures_total",
            "Shards that failed verification when read",
        ),
        (
            "argosfs_disk_missing_shards_total",
            "Shards found missing when read",
        ),
    ]
    .map(|(name, help)| b.counter(name, help, disk));
    let latency = |op: &str, stat: &str, what: &str| {
        b.gauge(
            &format!("argosfs_disk_{op}_latency_{stat}_seconds"),
            &format!("Shard {op} latency: {what}"),
            disk,
        )
    };
    let latencies = [
        latency("read", "ewma", "moving average")?,
        latency("read", "p50", "median of the latest window")?,
        latency("read", "p99", "99th percentile of the latest window")?,
        latency("write", "ewma", "moving average")?,
        latency("write", "p50", "median of the latest window")?,
        latency("write", "p99", "99th percentile of the latest window")?,
    ];
    let smart = Smart::new(b)?;
    let mut counter_vecs = Vec::with_capacity(counters.len());
    for c in counters {
        counter_vecs.push(c?);
    }
    for d in &report.disks {
        let id = d.name.as_str();
        verdict
            .with_label_values(&[id])
            .set(f64::from(d.verdict.level()));
        state.with_label_values(&[id, state_name(d.state)]).set(1.0);
        available
            .with_label_values(&[id])
            .set(if d.unavailable.is_none() { 1.0 } else { 0.0 });
        capacity.with_label_values(&[id]).set(d.total_bytes as f64);
        free.with_label_values(&[id]).set(d.free_bytes as f64);
        reserved
            .with_label_values(&[id])
            .set(d.reserved_bytes as f64);
        if let Some(n) = d.shards {
            shards.with_label_values(&[id]).set(n as f64);
        }
        if let Some(n) = d.degraded_stripes {
            degraded.with_label_values(&[id]).set(n as f64);
        }
        if let Some(record) = &d.record {
            let io = &record.io;
            let values = [
                io.reads,
                io.read_bytes,
                io.writes,
                io.write_bytes,
                io.syncs,
                io.read_errors,
                io.write_errors,
                io.sync_errors,
                io.checksum_failures,
                io.missing_shards,
            ];
            for (vec, value) in counter_vecs.iter().zip(values) {
                vec.with_label_values(&[id]).inc_by(value);
            }
            let seconds = |us: u64| us as f64 / 1e6;
            let set = |i: usize, l: &LatencySummary| {
                if l.total_samples == 0 {
                    return;
                }
                latencies[i]
                    .with_label_values(&[id])
                    .set(seconds(l.ewma_us));
                if let Some(p) = l.p50_us {
                    latencies[i + 1].with_label_values(&[id]).set(seconds(p));
                }
                if let Some(p) = l.p99_us {
                    latencies[i + 2].with_label_values(&[id]).set(seconds(p));
                }
            };
            set(0, &record.read_latency);
            set(3, &record.write_latency);
            if let Some(unix) = record.last_scrub_unix {
                last_scrub.with_label_values(&[id]).set(unix as f64);
            }
        }
        smart.set(d);
    }
    Ok(())
}

/// The SMART gauges.
struct Smart {
    passed: GaugeVec,
    reallocated: GaugeVec,
    pending: GaugeVec,
    uncorrectable: GaugeVec,
    media_errors: GaugeVec,
    crc_errors: GaugeVec,
    wear: GaugeVec,
    temperature: GaugeVec,
    power_on: GaugeVec,
}

impl Smart {
    fn new(b: &Builder) -> prometheus::Result<Smart> {
        let g = |name: &str, help: &str| b.gauge(name, help, &["disk"]);
        Ok(Smart {
            passed: g(
                "argosfs_disk_smart_passed",
                "SMART overall assessment: 1 passed, 0 failed",
            )?,
            reallocated: g(
                "argosfs_disk_smart_reallocated_sectors",
                "SMART reallocated sectors",
            )?,
            pending: g(
                "argosfs_disk_smart_pending_sectors",
                "SMART pending sectors",
            )?,
            uncorrectable: g(
                "argosfs_disk_smart_offline_uncorrectable_sectors",
                "SMART offline-uncorrectable sectors",
            )?,
            media_errors: g("argosfs_disk_smart_media_errors", "SMART media errors")?,
            crc_errors: g(
                "argosfs_disk_smart_crc_errors",
                "SMART interface CRC errors",
            )?,
            wear: g(
                "argosfs_disk_smart_endurance_used_ratio",
                "SMART rated endurance used (1 = all of it)",
            )?,
            temperature: g(
                "argosfs_disk_smart_temperature_celsius",
                "SMART temperature",
            )?,
            power_on: g("argosfs_disk_smart_power_on_seconds", "SMART power-on time")?,
        })
    }

    fn set(&self, d: &DiskHealth) {
        let Some(s) = &d.smart.data else { return };
        let id = [d.name.as_str()];
        let put = |g: &GaugeVec, v: Option<f64>| {
            if let Some(v) = v {
                g.with_label_values(&id).set(v);
            }
        };
        put(&self.passed, s.passed.map(|p| if p { 1.0 } else { 0.0 }));
        put(&self.reallocated, s.reallocated_sectors.map(|v| v as f64));
        put(&self.pending, s.pending_sectors.map(|v| v as f64));
        put(
            &self.uncorrectable,
            s.offline_uncorrectable.map(|v| v as f64),
        );
        put(&self.media_errors, s.media_errors.map(|v| v as f64));
        put(&self.crc_errors, s.crc_errors.map(|v| v as f64));
        put(&self.wear, s.percentage_used.map(|v| v as f64 / 100.0));
        put(&self.temperature, s.temperature_celsius.map(|v| v as f64));
        put(&self.power_on, s.power_on_hours.map(|v| v as f64 * 3600.0));
    }
}

//! Disk records and health verdicts through the library (issue 11): what the data plane
//! records, that it persists and accumulates, and the verdicts health draws from it.

use crate::common::{self, Spec, TestVolume, pattern, put_file, read_all};
use argosfs::health::{self, ObserveOptions, Report, SmartOverride, Source, Verdict};
use argosfs::types::DiskId;
use argosfs::volume::{DiskRecord, Records};

fn small() -> Spec {
    Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    }
}

fn sum(records: &[DiskRecord], f: impl Fn(&DiskRecord) -> u64) -> u64 {
    records.iter().map(f).sum()
}

/// The report of the volume, without smartctl (so the machine's disks play no part).
fn check(tv: &TestVolume, smart: Option<&str>) -> Report {
    let options = ObserveOptions {
        passphrase: tv.passphrase.clone(),
        smart_override: smart.map(|text| SmartOverride::parse(text).unwrap()),
        run_smartctl: false,
    };
    health::assess(&health::observe(&tv.root, &options).unwrap())
}

fn codes(findings: &[health::Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn records_count_shard_writes_reads_and_bytes() {
    let tv = common::make(&small());
    let data = pattern(64 << 10, 1); // four stripes of 4+2
    let vol = tv.open();
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap();
    let records = vol.disk_records();
    assert_eq!(records.len(), 6);
    assert_eq!(sum(&records, |r| r.io.writes), 4 * 6);
    assert!(sum(&records, |r| r.io.write_bytes) > 4 * 6 * (4 << 10));
    assert!(sum(&records, |r| r.io.syncs) >= 1);
    assert!(
        records
            .iter()
            .all(|r| r.write_latency.total_samples == r.io.writes)
    );
    assert_eq!(sum(&records, |r| r.io.reads), 0);
    vol.close().unwrap();

    // A fresh open (cold cache) reads the data shards.
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    let records = vol.disk_records();
    assert_eq!(sum(&records, |r| r.io.reads), 4 * 4);
    assert!(sum(&records, |r| r.io.read_bytes) >= data.len() as u64);
    let timed: Vec<_> = records
        .iter()
        .filter(|r| r.io.reads > 0)
        .map(|r| r.read_latency)
        .collect();
    assert!(!timed.is_empty());
    assert!(
        timed
            .iter()
            .all(|l| l.p50_us.is_some() && l.p99_us >= l.p50_us)
    );
    assert!(
        records
            .iter()
            .all(|r| r.total_bytes > 0 && r.unavailable.is_none())
    );
    assert_eq!(
        sum(&records, |r| r.io.io_errors() + r.io.checksum_failures),
        0
    );
    vol.close().unwrap();
}

#[test]
fn records_persist_across_opens_and_accumulate() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"a", &pattern(32 << 10, 2));
    vol.note_scrubbed(DiskId(3), 1_700_000_000).unwrap();
    assert!(vol.note_scrubbed(DiskId(42), 1).is_err());
    vol.close().unwrap();

    let path = Records::path(&tv.root);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let saved = Records::load(&tv.root).unwrap().unwrap();
    assert_eq!(sum(&saved.disks, |r| r.io.writes), 2 * 6);
    assert_eq!(saved.disks[3].last_scrub_unix, Some(1_700_000_000));

    // A read-only open saves nothing; a writer adds to the history.
    let ro = tv
        .open_with(argosfs::volume::OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    assert_eq!(sum(&ro.disk_records(), |r| r.io.writes), 2 * 6);
    drop(ro);
    let vol = tv.open();
    assert_eq!(sum(&vol.disk_records(), |r| r.io.writes), 2 * 6);
    put_file(&vol, b"b", &pattern(16 << 10, 3));
    vol.close().unwrap();
    let saved = Records::load(&tv.root).unwrap().unwrap();
    assert_eq!(sum(&saved.disks, |r| r.io.writes), 3 * 6);
    assert_eq!(saved.disks[3].last_scrub_unix, Some(1_700_000_000));
    assert!(saved.disks.iter().all(|d| d.since_unix > 0));
}

#[test]
fn a_damaged_records_file_is_a_warning_and_history_starts_afresh() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"a", &pattern(16 << 10, 4));
    vol.close().unwrap();
    let path = Records::path(&tv.root);
    let text = std::fs::read_to_string(&path).unwrap();
    // A changed count fails the checksum; garbage is not JSON at all.
    let tampered = text.replacen("\"writes\": 1", "\"writes\": 7", 1);
    assert_ne!(tampered, text);
    for damaged in [tampered.into_bytes(), b"\x00garbage".to_vec()] {
        std::fs::write(&path, &damaged).unwrap();
        assert!(Records::load(&tv.root).is_err());
        let vol = tv.open(); // opens all the same
        assert_eq!(sum(&vol.disk_records(), |r| r.io.writes), 0);
        vol.close().unwrap();
        // Rewritten whole at close.
        assert!(Records::load(&tv.root).unwrap().is_some());
    }
}

#[test]
fn a_corrupt_shard_read_counts_one_checksum_failure_on_its_disk() {
    let tv = common::make(&small());
    let data = pattern(16 << 10, 5);
    let vol = tv.open();
    let ino = put_file(&vol, b"f", &data);
    vol.close().unwrap();
    // Data shard 0 of the stripe, wherever it is.
    let (disk, path) = (0..6)
        .find_map(|i| {
            tv.indexed_shard_files(i)
                .into_iter()
                .find(|(_, index)| *index == 0)
                .map(|(p, _)| (i, p))
        })
        .unwrap();
    common::flip_payload_byte(&path, 100);
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    let records = vol.disk_records();
    assert_eq!(records[disk].io.checksum_failures, 1, "{:?}", records[disk]);
    assert_eq!(sum(&records, |r| r.io.checksum_failures), 1);
    vol.close().unwrap();

    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Warning, "{report:#?}");
    let d = &report.disks[disk];
    assert_eq!(d.verdict, Verdict::Warning);
    assert_eq!(codes(&d.reasons), ["checksum_failures"]);
    assert_eq!(report.counters.degraded_reads, 1);
}

#[test]
fn a_fresh_volume_is_healthy() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(40 << 10, 6));
    vol.close().unwrap();
    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Healthy, "{report:#?}");
    assert!(report.reasons.is_empty());
    assert_eq!(report.survey_source, Source::Opened);
    assert_eq!(report.records_source, Source::Opened);
    let stripes = report.stripes.unwrap();
    assert_eq!((stripes.stripes, stripes.degraded_stripes), (3, 0));
    for d in &report.disks {
        assert_eq!(d.verdict, Verdict::Healthy, "{d:#?}");
        assert_eq!(d.smart.unavailable.as_deref(), Some("smartctl not run"));
        assert!(d.record.as_ref().unwrap().io.writes > 0);
        assert_eq!(d.shards, Some(3));
    }
}

#[test]
fn a_lost_disk_is_critical_and_the_volume_degraded() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(40 << 10, 7));
    vol.close().unwrap();
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Degraded, "{report:#?}");
    let volume_codes = codes(&report.reasons);
    assert!(volume_codes.contains(&"disks_lost"), "{volume_codes:?}");
    assert!(
        volume_codes.contains(&"degraded_stripes"),
        "{volume_codes:?}"
    );
    let d2 = &report.disks[2];
    assert_eq!(d2.verdict, Verdict::Critical);
    assert_eq!(codes(&d2.reasons), ["disk_unavailable"]);
    assert_eq!(d2.degraded_stripes, Some(3));
    assert!(
        report
            .disks
            .iter()
            .filter(|d| d.id != DiskId(2))
            .all(|d| d.verdict == Verdict::Healthy)
    );
}

#[test]
fn more_disks_lost_than_parity_is_critical() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(40 << 10, 8));
    vol.close().unwrap();
    for i in [0, 3, 5] {
        std::fs::remove_dir_all(&tv.disks[i]).unwrap();
    }
    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Critical, "{report:#?}");
    let lost = report
        .reasons
        .iter()
        .find(|f| f.code == "too_many_disks_lost")
        .unwrap();
    assert_eq!((lost.value, lost.threshold), (Some(3.0), Some(2.0)));
    assert!(lost.message.contains("d0, d3, d5"), "{}", lost.message);
}

#[test]
fn smart_pending_sectors_warn_then_turn_critical() {
    let tv = common::make(&small());
    let warn = check(
        &tv,
        Some(r#"{"d1": {"pending_sectors": 3, "passed": true}}"#),
    );
    let d1 = &warn.disks[1];
    assert_eq!(d1.verdict, Verdict::Warning, "{d1:#?}");
    let f = &d1.reasons[0];
    assert_eq!(f.code, "smart_pending_sectors");
    assert!(f.message.contains("pending sectors: 3"), "{}", f.message);
    assert_eq!(d1.smart.source, health::SmartSource::Override);
    assert_eq!(warn.verdict, Verdict::Warning);

    // By path, replacing smartctl: critical from 8 pending sectors, and a failed
    // overall assessment.
    let path = tv.disks[4].to_str().unwrap();
    let text =
        format!(r#"{{"{path}": {{"pending_sectors": 12, "passed": false, "replace": true}}}}"#);
    let critical = check(&tv, Some(&text));
    let d4 = &critical.disks[4];
    assert_eq!(d4.verdict, Verdict::Critical, "{d4:#?}");
    assert_eq!(
        codes(&d4.reasons),
        ["smart_failed", "smart_pending_sectors"]
    );
    assert_eq!(d4.reasons[1].threshold, Some(8.0));
    // One failing disk with every stripe whole: the volume is a warning, not critical.
    assert_eq!(critical.verdict, Verdict::Warning);
    assert_eq!(codes(&critical.reasons), ["disks_need_attention"]);
}

#[test]
fn health_reads_the_files_when_another_process_holds_the_volume() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(40 << 10, 9));
    vol.close().unwrap();
    let _held = argosfs::volume::take_lock(&tv.root, true).unwrap();
    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Healthy, "{report:#?}");
    assert_eq!(report.survey_source, Source::None);
    assert_eq!(report.records_source, Source::Files);
    assert!(report.stripes.is_none());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("another process holds the volume")),
        "{:?}",
        report.notes
    );
    assert!(
        report
            .disks
            .iter()
            .all(|d| d.record.as_ref().is_some_and(|r| r.io.writes > 0))
    );
    // A disk lost meanwhile is seen from its directory.
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    let report = check(&tv, None);
    assert_eq!(report.verdict, Verdict::Degraded);
    assert_eq!(report.disks[1].verdict, Verdict::Critical);
}

#[test]
fn an_encrypted_volume_without_its_passphrase_is_checked_from_the_files() {
    let tv = common::make(&Spec {
        encryption: true,
        ..small()
    });
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(20 << 10, 10));
    vol.close().unwrap();
    let options = ObserveOptions::default();
    let report = health::assess(&health::observe(&tv.root, &options).unwrap());
    assert_eq!(report.verdict, Verdict::Healthy, "{report:#?}");
    assert!(report.notes.iter().any(|n| n.contains("encrypted")));
    let wrong = ObserveOptions {
        passphrase: Some(b"wrong".to_vec()),
        ..ObserveOptions::default()
    };
    assert!(health::observe(&tv.root, &wrong).is_err());
}

#[test]
fn metrics_carry_the_records_and_verdicts() {
    let tv = common::make(&small());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(40 << 10, 11));
    vol.close().unwrap();
    std::fs::remove_dir_all(&tv.disks[5]).unwrap();
    let report = check(
        &tv,
        Some(r#"{"d0": {"temperature_celsius": 41, "passed": true}}"#),
    );
    let text = health::metrics::text(&report).unwrap();
    crate::cli_health::check_exposition(&text);
    assert!(text.contains("argosfs_volume_verdict 2\n"), "{text}");
    assert!(
        text.contains("argosfs_disk_verdict{disk=\"d5\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("argosfs_disk_available{disk=\"d5\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("argosfs_disk_state{disk=\"d0\",state=\"active\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("argosfs_disk_smart_temperature_celsius{disk=\"d0\"} 41\n"),
        "{text}"
    );
    let writes = report.disks[1].record.as_ref().unwrap().io.writes;
    assert!(
        text.contains(&format!(
            "argosfs_disk_writes_total{{disk=\"d1\"}} {writes}\n"
        )),
        "{text}"
    );
}

/// A disk much slower than its peers gets fewer new shards (its weight lowered, within
/// the domain rules), and `explain_placement` says why.
#[test]
fn issue_11_placement_gives_a_slow_disk_fewer_new_shards_and_says_why() {
    let tv = common::make(&Spec {
        disks: 8,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let (vol, faults) = tv.open_faulty();
    faults.lock().unwrap()[&DiskId(3)].set_put_delay(std::time::Duration::from_millis(12));
    let count_on = |vol: &argosfs::volume::Volume, from: u64| {
        vol.stripes()
            .iter()
            .filter(|at| at.stripe.id.0 >= from)
            .map(|at| at.stripe.uses(DiskId(3)))
            .fold((0u64, 0u64), |(on, all), uses| {
                (on + u64::from(uses), all + 1)
            })
    };
    // Enough writes for every disk's latency to count (MIN_SAMPLES each).
    common::put_file(&vol, b"warm", &common::pattern(160 * (16 << 10), 5));
    vol.commit().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let next = vol.stripes().iter().map(|at| at.stripe.id.0).max().unwrap() + 1;
    common::put_file(&vol, b"after", &common::pattern(200 * (16 << 10), 6));
    vol.commit().unwrap();
    let (on, all) = count_on(&vol, next);
    // Fair share: 6 of 8 disks per stripe, 3/4 of the stripes; slow: a quarter weight.
    assert!(
        (on as f64) < all as f64 * 0.45,
        "the slow disk got {on} of {all} new stripes"
    );
    let explained = vol.explain_placement(b"/after").unwrap();
    assert_eq!(explained.len(), 200);
    let d3 = explained[0]
        .now
        .candidates
        .iter()
        .find(|c| c.disk == DiskId(3))
        .unwrap();
    assert!(d3.reason.contains("slow"), "{}", d3.reason);
    assert!(explained[0].now.chosen.len() == 6);
    vol.close().unwrap();
}

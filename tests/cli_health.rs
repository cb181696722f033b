//! argosfs-health from the command line (issue 11): exit codes for healthy, degraded and
//! critical volumes, --json, --prometheus, and a volume held by another process.

use crate::common::{self, Spec, TestVolume, pattern, put_file};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};

const HEALTH: &str = env!("CARGO_BIN_EXE_argosfs-health");
const FRONT: &str = env!("CARGO_BIN_EXE_argosfs");

struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
    stderr: String,
}

/// Runs `program args`; smartctl is pointed at a program that does not exist, so the
/// machine's own disks play no part.
fn run(program: &str, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ARGOSFS_PASSPHRASE")
        .env("ARGOSFS_SMARTCTL", "/nonexistent/argosfs-test-smartctl")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn health(tv: &TestVolume, args: &[&str]) -> Run {
    let mut all = vec![tv.root.to_str().unwrap()];
    all.extend_from_slice(args);
    run(HEALTH, &all)
}

fn volume_with_files() -> TestVolume {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    put_file(&vol, b"a", &pattern(40 << 10, 1));
    put_file(&vol, b"b", &pattern(20 << 10, 2));
    vol.close().unwrap();
    tv
}

/// Checks Prometheus' text exposition format: every sample line is
/// `name{labels} value` with a finite value and a name `argosfs_[a-z0-9_]+`, every
/// metric has one HELP and one TYPE line before its samples, counters end in `_total`,
/// and no series repeats.
pub fn check_exposition(text: &str) {
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut series = HashSet::new();
    let is_name = |n: &str| {
        n.starts_with("argosfs_")
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    assert!(text.ends_with('\n'), "{text}");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, words) = rest.split_once(' ').unwrap();
            assert!(is_name(name) && !words.is_empty(), "{line}");
            assert!(help.insert(name.to_string()), "two HELP lines: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (key, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        assert!(value.is_finite(), "{line}");
        let name = match key.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                for pair in labels.split(',') {
                    let (label, quoted) = pair.split_once('=').unwrap();
                    assert!(
                        label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                        "{line}"
                    );
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => key,
        };
        assert!(is_name(name), "{line}");
        assert!(
            help.contains(name) && types.contains_key(name),
            "no HELP/TYPE before {line}"
        );
        assert!(series.insert(key.to_string()), "repeated series {line}");
    }
    assert!(!series.is_empty());
}

#[test]
fn issue_11_exit_codes_for_healthy_degraded_and_critical_volumes() {
    let tv = volume_with_files();
    let healthy = health(&tv, &["--json"]);
    assert_eq!(
        healthy.code,
        Some(0),
        "{}\n{}",
        healthy.stdout,
        healthy.stderr
    );
    assert_eq!(healthy.json["schema"], 1);
    assert_eq!(healthy.json["verdict"], "healthy");
    assert_eq!(healthy.json["survey_source"], "opened");
    assert_eq!(healthy.json["stripes"]["stripes"], 5);
    let disks = healthy.json["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 6);
    for d in disks {
        assert_eq!(d["verdict"], "healthy");
        assert!(d["record"]["io"]["writes"].as_u64().unwrap() > 0);
        // No smartctl here: either no block device or smartctl missing, said so.
        let why = d["smart"]["unavailable"].as_str().unwrap();
        assert!(
            why.contains("no block device")
                || why.contains("smartctl not installed")
                || why.contains("no SMART"),
            "{why}"
        );
    }
    let text = health(&tv, &[]);
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.contains("HEALTHY"), "{}", text.stdout);

    // One disk lost: that disk critical, the volume degraded: 1.
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    let degraded = health(&tv, &["--json"]);
    assert_eq!(degraded.code, Some(1), "{}", degraded.stderr);
    assert_eq!(degraded.json["verdict"], "degraded");
    assert_eq!(degraded.json["disks"][1]["verdict"], "critical");
    assert_eq!(
        degraded.json["disks"][1]["reasons"][0]["code"],
        "disk_unavailable"
    );
    let text = health(&tv, &[]);
    assert_eq!(text.code, Some(1));
    assert!(
        text.stdout.contains("DEGRADED") && text.stdout.contains("cannot be read"),
        "{}",
        text.stdout
    );

    // Three lost with m = 2: critical: 2, the same through the front command.
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    std::fs::remove_dir_all(&tv.disks[4]).unwrap();
    let critical = health(&tv, &["--json"]);
    assert_eq!(critical.code, Some(2), "{}", critical.stderr);
    assert_eq!(critical.json["verdict"], "critical");
    let front = run(FRONT, &["health", tv.root.to_str().unwrap(), "--json"]);
    assert_eq!(front.code, Some(2));
    assert_eq!(front.json["verdict"], "critical");
}

#[test]
fn issue_11_smart_override_warns_and_the_prometheus_output_parses() {
    let tv = volume_with_files();
    let file = tv.dir.path().join("smart.json");
    std::fs::write(
        &file,
        r#"{"d2": {"pending_sectors": 2, "temperature_celsius": 38}, "d3": {"passed": true, "replace": true}}"#,
    )
    .unwrap();
    let override_arg = file.to_str().unwrap();
    let warned = health(&tv, &["--json", "--smart-override", override_arg]);
    assert_eq!(warned.code, Some(1), "{}", warned.stderr);
    assert_eq!(warned.json["verdict"], "warning");
    let d2 = &warned.json["disks"][2];
    assert_eq!(d2["verdict"], "warning");
    assert_eq!(d2["reasons"][0]["code"], "smart_pending_sectors");
    assert_eq!(d2["smart"]["source"], "override");
    assert_eq!(warned.json["disks"][3]["smart"]["data"]["passed"], true);

    let prom = health(&tv, &["--prometheus", "--smart-override", override_arg]);
    assert_eq!(prom.code, Some(1), "{}", prom.stderr);
    check_exposition(&prom.stdout);
    for expected in [
        "argosfs_volume_verdict 1\n",
        "argosfs_disk_smart_pending_sectors{disk=\"d2\"} 2\n",
        "argosfs_disk_smart_passed{disk=\"d3\"} 1\n",
        "argosfs_disk_verdict{disk=\"d2\"} 1\n",
        "argosfs_volume_stripes 5\n",
    ] {
        assert!(
            prom.stdout.contains(expected),
            "{expected}: {}",
            prom.stdout
        );
    }
    for family in [
        "argosfs_disk_capacity_bytes",
        "argosfs_disk_free_bytes",
        "argosfs_disk_writes_total",
        "argosfs_disk_written_bytes_total",
        "argosfs_disk_write_latency_p99_seconds",
        "argosfs_disk_read_errors_total",
    ] {
        assert!(
            prom.stdout.contains(&format!("# TYPE {family} ")),
            "{family}"
        );
    }

    // A bad override file, a usage error, no volume: could not check (8).
    std::fs::write(&file, r#"{"d2": {"pending": 2}}"#).unwrap();
    let bad = health(&tv, &["--smart-override", override_arg]);
    assert_eq!(bad.code, Some(8));
    assert!(bad.stderr.contains("pending"), "{}", bad.stderr);
    assert_eq!(health(&tv, &["--frobnicate"]).code, Some(8));
    assert_eq!(health(&tv, &["--json", "--prometheus"]).code, Some(8));
    let nowhere = run(
        HEALTH,
        &[tv.dir.path().join("nothing").to_str().unwrap(), "--json"],
    );
    assert_eq!(nowhere.code, Some(8));
    assert!(
        nowhere.json["error"]
            .as_str()
            .unwrap()
            .contains("no ArgosFS volume"),
        "{}",
        nowhere.stdout
    );
    assert_eq!(run(FRONT, &["health", "--frobnicate"]).code, Some(8));
}

#[test]
fn issue_11_health_works_while_another_process_holds_the_volume() {
    let tv = volume_with_files();
    let _lock = argosfs::volume::take_lock(&tv.root, true).unwrap();
    let held = health(&tv, &["--json"]);
    assert_eq!(held.code, Some(0), "{}\n{}", held.stdout, held.stderr);
    assert_eq!(held.json["survey_source"], "none");
    assert_eq!(held.json["records_source"], "files");
    assert!(held.json["stripes"].is_null());
    let notes = held.json["notes"].to_string();
    assert!(
        notes.contains("another process holds the volume"),
        "{notes}"
    );
    assert!(
        held.json["disks"][0]["record"]["io"]["writes"]
            .as_u64()
            .unwrap()
            > 0
    );
    std::fs::remove_dir_all(&tv.disks[0]).unwrap();
    let lost = health(&tv, &[]);
    assert_eq!(lost.code, Some(1), "{}", lost.stdout);
    assert!(lost.stdout.contains("not surveyed"), "{}", lost.stdout);
}

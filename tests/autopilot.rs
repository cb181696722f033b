//! argosfs-autopilot end to end (issue 11): plans on real volumes, executed plans equal
//! the dry run's, replays give the same plan, nothing loses redundancy, kill -9 in the
//! middle of a plan loses nothing. The planner's rules are tested one by one in
//! lib/autopilot/scenarios.rs.

use crate::common::TestVolume;
use crate::crash_maint::{check_invariants, delays, fsck_ends_clean, volume_with_files};
use argosfs::types::{DiskId, InodeId};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const AUTOPILOT: &str = env!("CARGO_BIN_EXE_argosfs-autopilot");

struct Run {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

fn autopilot(tv: &TestVolume, args: &[&str]) -> Run {
    let out = Command::new(AUTOPILOT)
        .arg(&tv.root)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ARGOSFS_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `autopilot ARGS --json`, its exit status checked.
fn autopilot_json(tv: &TestVolume, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let run = autopilot(tv, &all);
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    run.json
}

/// The step names of a plan (or of the results) in a report.
fn steps(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::to_string(&a["step"]).unwrap())
        .collect()
}

/// Replaying the run's artifact gives the identical plan.
fn assert_replays(report: &Value) {
    let path = report["artifact_path"].as_str().unwrap();
    assert!(Path::new(path).is_file(), "{path}");
    let out = Command::new(AUTOPILOT)
        .args(["--replay", path, "--json"])
        .output()
        .unwrap();
    let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{replay}");
    assert_eq!(replay["is_identical"], true);
    assert_eq!(replay["plan"], report["plan"]);
}

fn volume(disks: usize) -> (TestVolume, Vec<(InodeId, Vec<u8>)>) {
    volume_with_files(disks, 40)
}

#[test]
fn issue_11_autopilot_scrubs_a_new_volume_then_has_nothing_to_do() {
    let (tv, written) = volume(6);
    let dry = autopilot_json(&tv, &["--dry-run", "--explain"], 0);
    assert_eq!(
        steps(&dry["plan"]["actions"]),
        vec![r#"{"Scrub":{"percent":100.0}}"#]
    );
    assert_eq!(dry["is_dry_run"], true);
    assert!(dry["results"].as_array().unwrap().is_empty());
    assert_replays(&dry);
    let run = autopilot_json(&tv, &[], 0);
    assert_eq!(
        run["plan"], dry["plan"],
        "the run did not perform the dry run's plan"
    );
    assert_eq!(steps(&run["results"]), steps(&dry["plan"]["actions"]));
    assert_eq!(run["results"][0]["is_ok"], true, "{run}");
    assert_replays(&run);
    // Scrubbed now: nothing to do, and the text says so.
    let idle = autopilot(&tv, &["--dry-run"]);
    assert_eq!(idle.code, 0, "{}", idle.stderr);
    assert!(idle.stdout.contains("plan: no action"), "{}", idle.stdout);
    assert!(idle.stdout.contains("nothing to do"), "{}", idle.stdout);
    check_invariants(&tv, &written, 6, DiskId(0), false);
}

#[test]
fn issue_11_autopilot_waits_for_a_vanished_disk_then_rebuilds_it_elsewhere() {
    let (tv, written) = volume(7);
    autopilot_json(&tv, &[], 0); // the first scrub
    std::fs::remove_dir_all(&tv.disks[3]).unwrap();
    // Within the grace period: wait, twice (the first sighting is remembered).
    for _ in 0..2 {
        let wait = autopilot_json(&tv, &["--dry-run", "--explain"], 0);
        assert!(
            wait["plan"]["actions"].as_array().unwrap().is_empty(),
            "{wait}"
        );
        let text = wait["plan"]["findings"].to_string();
        assert!(text.contains("waiting 600 s"), "{text}");
        assert!(wait["plan"]["not_taken"].to_string().contains("heal waits"));
    }
    let dry = autopilot_json(&tv, &["--dry-run", "--down-after", "0"], 0);
    assert_eq!(
        steps(&dry["plan"]["actions"]),
        vec![r#"{"MarkFailed":{"disk":3}}"#, r#""Heal""#]
    );
    assert_replays(&dry);
    let run = autopilot_json(&tv, &["--down-after", "0"], 0);
    // The same steps as the dry run (its trigger texts say how long ago, so they may
    // differ by a second), and exactly the steps of its own plan, executed.
    assert_eq!(
        steps(&run["plan"]["actions"]),
        steps(&dry["plan"]["actions"])
    );
    assert_eq!(steps(&run["results"]), steps(&run["plan"]["actions"]));
    assert!(
        run["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["is_ok"] == true),
        "{run}"
    );
    assert_eq!(run["verification"]["degraded_after"], 0, "{run}");
    assert_eq!(run["verification"]["is_redundancy_kept"], true);
    assert_replays(&run);
    // Every stripe whole without d3, every file intact, fsck clean.
    let vol = tv.open();
    assert!(!vol.stripes().iter().any(|at| at.stripe.uses(DiskId(3))));
    vol.close().unwrap();
    assert_eq!(check_invariants(&tv, &written, 6, DiskId(3), false), 0);
    fsck_ends_clean(&tv);
    // The action is in the event log.
    let events = std::fs::read_to_string(tv.root.join("events.log")).unwrap();
    assert!(
        events.contains("autopilot-action") && events.contains("MarkFailed"),
        "{events}"
    );
}

#[test]
fn issue_11_autopilot_refuses_with_more_than_m_disks_lost_or_damaged_metadata() {
    let (tv, written) = volume(8);
    for i in [1, 4, 6] {
        std::fs::rename(&tv.disks[i], tv.dir.path().join(format!("away{i}"))).unwrap();
    }
    let refused = autopilot_json(&tv, &["--down-after", "0"], 1);
    assert!(refused["plan"]["actions"].as_array().unwrap().is_empty());
    assert!(
        refused["plan"]["refused"]
            .as_str()
            .unwrap()
            .contains("tolerates 2"),
        "{refused}"
    );
    assert!(refused["results"].as_array().unwrap().is_empty());
    assert_replays(&refused);
    // Nothing changed: the disks come back and everything is there.
    for i in [1, 4, 6] {
        std::fs::rename(tv.dir.path().join(format!("away{i}")), &tv.disks[i]).unwrap();
    }
    check_invariants(&tv, &written, 6, DiskId(0), false);

    // Both snapshot slots and the journal damaged: refuse, and say to run fsck.
    let meta = tv.root.join("meta");
    for name in ["snapshot.0", "snapshot.1", "journal"] {
        let path = meta.join(name);
        if let Ok(mut bytes) = std::fs::read(&path) {
            for b in bytes.iter_mut().skip(40).step_by(7) {
                *b ^= 0x5a;
            }
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let run = autopilot(&tv, &["--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let refused = run.json;
    assert!(
        refused["plan"]["refused"]
            .as_str()
            .unwrap()
            .contains("argosfs fsck"),
        "{refused}"
    );
    assert!(refused["inputs"]["observation"]["metadata_problem"].is_string());
    assert_replays(&refused);
}

#[test]
fn issue_11_autopilot_budget_bounds_a_run_and_the_next_continues() {
    let (tv, written) = volume(7);
    autopilot_json(&tv, &[], 0);
    std::fs::remove_dir_all(&tv.disks[5]).unwrap();
    let budget = 40_000u64;
    let first = autopilot_json(
        &tv,
        &["--down-after", "0", "--max-bytes", &budget.to_string()],
        0,
    );
    let written_bytes: u64 = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes_written"].as_u64().unwrap())
        .sum();
    // A step stops past its bound by at most one stripe's shards.
    assert!(
        written_bytes > 0 && written_bytes < budget + (16 << 10),
        "{first}"
    );
    assert!(
        first["verification"]["degraded_after"].as_u64().unwrap() > 0,
        "{first}"
    );
    let mut runs = 1;
    loop {
        let next = autopilot_json(&tv, &["--down-after", "0", "--max-bytes", "40000"], 0);
        runs += 1;
        if next["verification"]["degraded_after"] == 0 || runs > 40 {
            break;
        }
    }
    assert!(runs > 2 && runs <= 40, "{runs} runs");
    check_invariants(&tv, &written, 6, DiskId(5), false);
    fsck_ends_clean(&tv);
}

#[test]
fn issue_11_autopilot_runs_hooks_with_each_event() {
    let (tv, _) = volume(6);
    let hooks = tv.root.join("hooks.d");
    std::fs::create_dir(&hooks).unwrap();
    let seen = tv.dir.path().join("seen.jsonl");
    let hook = hooks.join("10-record");
    std::fs::write(&hook, format!("#!/bin/sh\ncat >> {}\n", seen.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A hook that hangs is killed; the run goes on.
    let slow = hooks.join("20-slow");
    std::fs::write(&slow, "#!/bin/sh\nsleep 60\n").unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o700)).unwrap();
    let started = std::time::Instant::now();
    autopilot_json(&tv, &[], 0);
    assert!(started.elapsed() < Duration::from_secs(50));
    let text = std::fs::read_to_string(&seen).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["kind"] == "autopilot-action"),
        "{text}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "autopilot-verified"),
        "{text}"
    );
}

#[test]
fn issue_11_kill_9_of_the_autopilot_in_the_middle_of_a_plan_loses_nothing() {
    let (tv, written) = volume(8);
    autopilot_json(&tv, &[], 0);
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    let mut trace = Vec::new();
    for delay in delays(12, 0xa070, 150) {
        let mut child = Command::new(AUTOPILOT)
            .arg(&tv.root)
            .args(["--down-after", "0", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + delay));
        let _ = child.kill();
        child.wait().unwrap();
        // No stripe below its redundancy at any point; every file reads back.
        let left = check_invariants(&tv, &written, 6, DiskId(2), false);
        trace.push((5 + delay, left));
    }
    eprintln!("autopilot kills (delay ms, stripes on the lost disk): {trace:?}");
    // The next run finishes what is left (or finds the kills' runs finished it).
    let done = autopilot_json(&tv, &["--down-after", "0"], 0);
    let degraded = match done["verification"]["degraded_after"].as_u64() {
        Some(after) => after,
        None => done["inputs"]["observation"]["degraded_stripes"]
            .as_u64()
            .unwrap(),
    };
    assert_eq!(degraded, 0, "{done}");
    check_invariants(&tv, &written, 6, DiskId(2), false);
    fsck_ends_clean(&tv);
}

#[test]
fn issue_11_autopilot_through_the_mount() {
    crate::mount_util::require_fuse!();
    let (tv, written) = volume(7);
    let mut m = crate::mount_util::Mounted::with_options(tv, &[]);
    std::fs::remove_dir_all(&m.tv.disks[1]).unwrap();
    let run = autopilot_json(&m.tv, &["--down-after", "0", "--explain"], 0);
    assert_eq!(steps(&run["results"]), steps(&run["plan"]["actions"]));
    assert!(
        steps(&run["results"]).contains(&r#""Heal""#.to_string()),
        "{run}"
    );
    assert_eq!(run["verification"]["degraded_after"], 0, "{run}");
    m.unmount();
    check_invariants(&m.tv, &written, 6, DiskId(1), false);
    fsck_ends_clean(&m.tv);
}

/// A SMART override makes one disk fail by a trend over three runs: the first two only
/// watch it, the third proposes draining it with the attributes that grew; executed,
/// the disk ends with no shard, every stripe whole on distinct domains, fsck clean.
#[test]
fn issue_11_a_failing_smart_trend_drains_the_disk_end_to_end() {
    let (tv, written) = volume(7);
    autopilot_json(&tv, &["--no-smartctl"], 0); // the first scrub
    let smart = tv.dir.path().join("smart.json");
    let mut plan = Value::Null;
    for (run, pending) in [1, 6, 19].iter().enumerate() {
        std::fs::write(
            &smart,
            format!(
                r#"{{"d4": {{"passed": true, "pending_sectors": {pending}, "replace": true}}}}"#
            ),
        )
        .unwrap();
        let dry = autopilot_json(
            &tv,
            &[
                "--dry-run",
                "--explain",
                "--no-smartctl",
                "--smart-override",
                smart.to_str().unwrap(),
            ],
            0,
        );
        let actions = steps(&dry["plan"]["actions"]);
        if run < 2 {
            assert!(actions.is_empty(), "run {run}: {dry}");
            assert!(
                dry["plan"]["findings"]
                    .to_string()
                    .contains("without a trend")
            );
        } else {
            assert_eq!(actions, vec![r#"{"Drain":{"disk":4}}"#], "{dry}");
            let trigger = dry["plan"]["actions"][0]["trigger"].to_string();
            assert!(trigger.contains("1 -> 6 -> 19"), "{trigger}");
            assert_replays(&dry);
        }
        plan = dry["plan"].clone();
    }
    // Executed: exactly the dry run's steps (the memory now has four readings, the last
    // three still growing).
    std::fs::write(
        &smart,
        r#"{"d4": {"passed": true, "pending_sectors": 40, "replace": true}}"#,
    )
    .unwrap();
    let run = autopilot_json(
        &tv,
        &["--no-smartctl", "--smart-override", smart.to_str().unwrap()],
        0,
    );
    assert_eq!(steps(&run["plan"]["actions"]), steps(&plan["actions"]));
    assert_eq!(steps(&run["results"]), steps(&plan["actions"]));
    assert_eq!(run["results"][0]["is_ok"], true, "{run}");
    assert_eq!(run["verification"]["is_redundancy_kept"], true);
    let vol = tv.open();
    assert!(!vol.stripes().iter().any(|at| at.stripe.uses(DiskId(4))));
    let state = vol
        .disk_infos()
        .into_iter()
        .find(|d| d.config.id == DiskId(4))
        .unwrap()
        .config
        .state;
    assert_eq!(state, argosfs::volume::DiskState::Removed);
    vol.close().unwrap();
    assert_eq!(check_invariants(&tv, &written, 6, DiskId(4), false), 0);
    crate::mount_maint::assert_whole_without(&tv, Some(DiskId(4)));
    fsck_ends_clean(&tv);
}

//! argosfs-disk from the command line (issue 10): exit codes, messages, --json.

use crate::common::{self, Spec, TestVolume, pattern, put_file, read_all};
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, Volume};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const DISK: &str = env!("CARGO_BIN_EXE_argosfs-disk");
const FRONT: &str = env!("CARGO_BIN_EXE_argosfs");

/// What a run gave: exit status, stdout as JSON (Null when it is not), stderr.
struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
    stderr: String,
}

fn run_program(program: &str, passphrase: Option<&[u8]>, cwd: Option<&Path>, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ARGOSFS_PASSPHRASE")
        .stdin(Stdio::null());
    if let Some(passphrase) = passphrase {
        command.env(
            "ARGOSFS_PASSPHRASE",
            std::str::from_utf8(passphrase).unwrap(),
        );
    }
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let out: Output = command.output().unwrap();
    Run {
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `argosfs-disk ROOT ARGS`.
fn disk(tv: &TestVolume, args: &[&str]) -> Run {
    let mut all = vec![tv.root.to_str().unwrap()];
    all.extend_from_slice(args);
    run_program(DISK, tv.passphrase.as_deref(), None, &all)
}

/// `argosfs-disk ROOT list --json`, its exit status checked.
fn list(tv: &TestVolume, code: i32) -> Value {
    let run = disk(tv, &["list", "--json"]);
    assert_eq!(run.code, Some(code), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["schema"], 1);
    assert_eq!(run.json["command"], "list");
    run.json
}

fn disk_entry<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
}

fn files(vol: &Volume, from: u64, count: u64) -> Vec<(InodeId, Vec<u8>)> {
    (from..from + count)
        .map(|i| {
            let data = pattern(30_000 + (i as usize) * 7_919, 500 + i);
            (put_file(vol, format!("f{i}").as_bytes(), &data), data)
        })
        .collect()
}

fn small_stripes(disks: usize, encryption: bool) -> TestVolume {
    common::make(&Spec {
        disks,
        encryption,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    })
}

fn assert_files(tv: &TestVolume, written: &[(InodeId, Vec<u8>)], what: &str) {
    let vol = tv
        .open_with(OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    for (ino, data) in written {
        assert_eq!(&read_all(&vol, *ino).unwrap(), data, "{what}");
    }
}

#[test]
fn issue_10_list_lose_a_disk_replace_it_and_lose_two_more() {
    let tv = small_stripes(6, false);
    let vol = tv.open();
    let mut written = files(&vol, 0, 4);
    vol.close().unwrap();
    let stripes = tv.open().stripes().len() as u64;

    // Healthy: six active disks, six shards per stripe, nothing degraded.
    let report = list(&tv, 0);
    assert_eq!(report["layout"], "4+2");
    assert_eq!(report["stripes"], stripes);
    assert_eq!(report["degraded_stripes"], 0);
    assert_eq!(report["is_whole"], true);
    let disks = report["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 6);
    assert!(disks.iter().all(|d| d["state"] == "active"
        && d["is_available"] == true
        && d["state_reason"] == "added by mkfs"
        && d["state_since_unix"].as_u64().unwrap() > 0
        && d["total_bytes"].as_u64().unwrap() > 0));
    let shards: u64 = disks.iter().map(|d| d["shards"].as_u64().unwrap()).sum();
    assert_eq!(shards, 6 * stripes);
    // The front command gives the same (free space aside: other tests write meanwhile).
    let front = run_program(
        FRONT,
        None,
        None,
        &["disk", tv.root.to_str().unwrap(), "list", "--json"],
    );
    assert_eq!(front.code, Some(0), "{}", front.stderr);
    let without_space = |mut v: Value| {
        for d in v["disks"].as_array_mut().unwrap() {
            d["free_bytes"] = Value::Null;
        }
        v
    };
    assert_eq!(without_space(front.json), without_space(report));
    let text = disk(&tv, &["list"]);
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.contains("all ") && text.stdout.contains("stripes whole"));

    // Disk 2 is lost: listed unavailable, every stripe with a shard on it degraded.
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    let report = list(&tv, 1);
    let d2 = disk_entry(&report, "d2").unwrap();
    assert_eq!(d2["is_available"], false, "{d2}");
    assert_eq!(d2["is_missing"], true);
    assert!(d2["unavailable"].as_str().unwrap().contains("cannot open"));
    assert!(d2["degraded_stripes"].as_u64().unwrap() > 0, "{d2}");
    assert_eq!(d2["degraded_stripes"], d2["shards"]);
    assert!(report["degraded_stripes"].as_u64().unwrap() > 0);
    let text = disk(&tv, &["list"]);
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.contains("UNAVAILABLE"), "{}", text.stdout);
    assert!(text.stdout.contains("replace"), "{}", text.stdout);

    // Writes go on degraded: their shards are unwritten, counted apart.
    let vol = tv.open();
    written.extend(files(&vol, 4, 2));
    vol.close().unwrap();
    let report = list(&tv, 1);
    assert!(report["unwritten_shards"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["unwritten_stripes"].as_u64().unwrap() > 0,
        "{report}"
    );

    // One command gets back to full redundancy.
    let new = tv.dir.path().join("d2-new");
    let run = disk(&tv, &["replace", "d2", new.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["command"], "replace");
    assert_eq!(run.json["disk"], 2);
    assert_eq!(run.json["shards_copied"], 0);
    assert!(run.json["old_unreadable"].is_string());
    assert_eq!(run.json["heal"]["stripes_left"], 0);
    assert!(run.json["heal"]["shards_written"].as_u64().unwrap() > 0);
    assert_eq!(run.json["is_whole"], true);
    let report = list(&tv, 0);
    assert!(
        report["disks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "active" && d["degraded_stripes"] == 0)
    );
    assert_eq!(report["degraded_stripes"], 0);
    assert_eq!(report["unwritten_shards"], 0);
    let d2 = disk_entry(&report, "d2").unwrap();
    assert_eq!(d2["path"], new.to_str().unwrap());
    assert!(d2["state_reason"].as_str().unwrap().contains("replaced"));

    // Any two other disks may go now.
    std::fs::remove_dir_all(&tv.disks[0]).unwrap();
    std::fs::remove_dir_all(&tv.disks[4]).unwrap();
    assert_files(&tv, &written, "after losing two more disks");
}

#[test]
fn issue_10_drain_then_remove_forgets_the_disk() {
    let tv = small_stripes(8, false);
    let vol = tv.open();
    let written = files(&vol, 0, 4);
    vol.close().unwrap();
    assert!(!tv.shard_files(3).is_empty());

    let run = disk(&tv, &["drain", "d3", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["command"], "drain");
    assert_eq!(run.json["state"], "removed");
    assert_eq!(run.json["is_complete"], true);
    assert!(run.json["shards_written"].as_u64().unwrap() > 0);
    assert!(
        tv.shard_files(3).is_empty(),
        "shards left on the drained disk"
    );
    let report = list(&tv, 0);
    let d3 = disk_entry(&report, "d3").unwrap();
    assert_eq!(d3["state"], "removed");
    assert_eq!(d3["shards"], 0);

    // remove names the disk by its path; it drains (nothing left) and forgets it.
    let run = disk(&tv, &["remove", tv.disks[3].to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["is_forgotten"], true);
    let report = list(&tv, 0);
    assert_eq!(report["disks"].as_array().unwrap().len(), 7);
    assert!(disk_entry(&report, "d3").is_none());
    assert_files(&tv, &written, "after drain and remove");

    // remove in one go, in text.
    let run = disk(&tv, &["remove", "5"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("no longer part of the volume"),
        "{}",
        run.stdout
    );
    assert!(tv.shard_files(5).is_empty());
    assert_eq!(list(&tv, 0)["disks"].as_array().unwrap().len(), 6);
    assert_files(&tv, &written, "after removing a second disk");

    // With six disks left a 4+2 stripe has nowhere to go: refused, and the disk stays
    // active.
    let run = disk(&tv, &["remove", "d0"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("add a disk first"), "{}", run.stderr);
    let report = list(&tv, 0);
    assert_eq!(disk_entry(&report, "d0").unwrap()["state"], "active");
    assert_files(&tv, &written, "after a drain that could not finish");
}

#[test]
fn issue_10_heal_is_bounded_by_max_bytes_and_the_next_run_finishes() {
    let tv = small_stripes(6, false);
    let vol = tv.open();
    let written = files(&vol, 0, 6);
    vol.close().unwrap();
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    let new = tv.dir.path().join("d1-new");
    let run = disk(
        &tv,
        &["replace", "1", new.to_str().unwrap(), "--no-heal", "--json"],
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["heal"], Value::Null);
    assert_eq!(run.json["is_whole"], false);
    assert!(list(&tv, 1)["degraded_stripes"].as_u64().unwrap() > 1);

    let run = disk(&tv, &["heal", "--max-bytes", "4K", "--json"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["is_bounded"], true);
    assert!(run.json["stripes_left"].as_u64().unwrap() > 0);
    let run = disk(&tv, &["heal", "--max-bytes", "4K"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.contains("--max-bytes"), "{}", run.stdout);
    let run = disk(&tv, &["heal", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["is_complete"], true);
    assert_eq!(run.json["is_bounded"], false);
    list(&tv, 0);
    let run = disk(&tv, &["heal", "-q"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout, "");
    assert_files(&tv, &written, "after bounded heals");

    // A size that does not parse is a usage error.
    assert_eq!(disk(&tv, &["heal", "--max-bytes", "lots"]).code, Some(2));
}

#[test]
fn issue_10_clear_errors_for_names_paths_and_a_mounted_volume() {
    let tv = small_stripes(6, false);
    // A directory that already is a disk.
    let run = disk(&tv, &["add", tv.disks[1].to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("already a disk of this volume")
            && run.stderr.contains(tv.disks[1].to_str().unwrap()),
        "{}",
        run.stderr
    );
    // A directory labelled for another volume: no mention of mkfs's --force.
    let other = common::make(&Spec::layout(2, 1));
    let run = disk(&tv, &["add", other.disks[0].to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("already holds an ArgosFS label"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("--force"), "{}", run.stderr);
    // Bad options are usage errors, as in mkfs.
    let bad = tv.dir.path().join("d9");
    let run = disk(&tv, &["add", &format!("{}:weight=heavy", bad.display())]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(!bad.exists());
    // An unknown disk is named.
    for args in [
        &["drain", "d9"][..],
        &["remove", "/nowhere/disk"],
        &["replace", "d17", "/tmp/unused"],
    ] {
        let run = disk(&tv, args);
        assert_eq!(run.code, Some(1), "{args:?}");
        assert!(
            run.stderr.contains(args[1]) && run.stderr.contains("names no disk"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let run = disk(&tv, &["drain", "d9", "--json"]);
    assert!(run.json["error"].as_str().unwrap().contains("d9"));
    // A volume that is not there.
    let run = run_program(DISK, None, None, &["/nowhere/at/all", "list"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no ArgosFS volume there"),
        "{}",
        run.stderr
    );

    // Relative paths are the caller's, ROOT included; a disk inside ROOT is recorded
    // relative to it and is found again by the same relative path.
    let run = run_program(
        DISK,
        None,
        Some(tv.dir.path()),
        &["root", "add", "root/d-in", "--json"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json["disk"], 6);
    assert_eq!(
        run.json["path"],
        tv.root.join("d-in").to_str().unwrap(),
        "{}",
        run.json
    );
    let sb = argosfs::volume::Superblock::load(&tv.root).unwrap();
    assert_eq!(sb.disks[6].path, Path::new("d-in"));
    let run = run_program(
        DISK,
        None,
        Some(tv.dir.path()),
        &["root", "add", "root/d-in"],
    );
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("already a disk"), "{}", run.stderr);

    // Held by a mount (simulated by its lock): refused, saying why.
    let lock = argosfs::volume::take_lock(&tv.root, true).unwrap();
    for args in [
        &["list"][..],
        &["heal"],
        &["add", tv.dir.path().join("d10").to_str().unwrap()],
        &["drain", "d0"],
    ] {
        let run = disk(&tv, args);
        assert_eq!(run.code, Some(1), "{args:?}");
        assert!(
            run.stderr.contains("mounted or in use") && run.stderr.contains("no mount answers"),
            "{args:?}: {}",
            run.stderr
        );
    }
    drop(lock);
    list(&tv, 0);
}

#[test]
fn issue_10_an_encrypted_volume_lists_and_heals() {
    let tv = small_stripes(6, true);
    let vol = tv.open();
    let written = files(&vol, 0, 3);
    vol.close().unwrap();
    let report = list(&tv, 0);
    assert_eq!(report["degraded_stripes"], 0);
    // Shard files lost from a disk that is there: heal writes them back in place.
    let lost = tv.shard_files(0);
    for shard in &lost {
        shard.remove();
    }
    let report = list(&tv, 1);
    assert_eq!(
        disk_entry(&report, "d0").unwrap()["degraded_stripes"],
        lost.len() as u64
    );
    let run = disk(&tv, &["heal", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["shards_written"], lost.len() as u64);
    list(&tv, 0);
    assert_eq!(tv.shard_files(0).len(), lost.len());
    assert_files(&tv, &written, "after heal");

    // Without the passphrase (and no terminal to ask on), it says what to give.
    let root = tv.root.to_str().unwrap();
    let run = run_program(DISK, None, None, &[root, "list"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("ARGOSFS_PASSPHRASE"), "{}", run.stderr);
    let key = tv.dir.path().join("key");
    std::fs::write(&key, b"not the passphrase\n").unwrap();
    let run = run_program(
        DISK,
        None,
        None,
        &[root, "heal", "--passphrase-file", key.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
}

#[test]
fn issue_10_rebalance_spreads_onto_added_disks_and_waits_for_heal() {
    let tv = small_stripes(6, false);
    let vol = tv.open();
    let written = files(&vol, 0, 8);
    vol.close().unwrap();
    for name in ["d6", "d7"] {
        let path = tv.dir.path().join(name);
        let run = disk(&tv, &["add", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let before = list(&tv, 0);
    assert_eq!(disk_entry(&before, "d6").unwrap()["shards"], 0);
    let run = disk(&tv, &["rebalance", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["command"], "rebalance");
    assert!(
        run.json["shards_written"].as_u64().unwrap() > 0,
        "{}",
        run.stdout
    );
    let after = list(&tv, 0);
    for name in ["d6", "d7"] {
        assert!(
            disk_entry(&after, name).unwrap()["shards"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    assert_files(&tv, &written, "after rebalance");
    // With a disk gone, stripes are degraded: rebalance refuses and says to heal.
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    let run = disk(&tv, &["rebalance"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("heal first"), "{}", run.stderr);
}

/// `fail` takes a disk out of reading and writing (heal rebuilds its shards elsewhere),
/// refusing what would lose data or stop writes; `activate` brings it back.
#[test]
fn issue_10_fail_and_activate_a_disk_by_hand() {
    let tv = small_stripes(7, false);
    let vol = tv.open();
    let written = files(&vol, 0, 4);
    vol.close().unwrap();

    let run = disk(&tv, &["fail", "d1", "--reason", "returns errors", "--json"]);
    assert_eq!(run.code, Some(1), "degraded afterwards: {}", run.stderr);
    assert_eq!(run.json["state"], "failed");
    let d1 = disk_entry(&run.json, "d1").unwrap();
    assert_eq!(d1["state"], "failed", "{d1}");
    assert_eq!(d1["state_reason"], "returns errors");
    assert!(d1["degraded_stripes"].as_u64().unwrap() > 0, "{d1}");

    // Heal rebuilds d1's shards on the others: no stripe uses d1 any more.
    let run = disk(&tv, &["heal", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let vol = tv.open();
    assert!(
        !vol.stripes()
            .iter()
            .any(|at| at.stripe.uses(argosfs::types::DiskId(1)))
    );
    vol.close().unwrap();
    assert_files(&tv, &written, "after failing d1 and healing");

    // Failing a second disk would leave 5 writable domains: still min_shards (5). A
    // third would leave 4: refused, nothing changed.
    let run = disk(&tv, &["fail", "d2"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let run = disk(&tv, &["fail", "d3"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("min_shards"), "{}", run.stderr);
    assert_eq!(disk_entry(&list(&tv, 1), "d3").unwrap()["state"], "active");

    // Back in use: d2's shards are read again, nothing is degraded.
    let run = disk(&tv, &["activate", "d2", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json["state"], "active");
    assert_eq!(run.json["is_whole"], true, "{}", run.json);
    let run = disk(&tv, &["fail", "d9"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("names no disk"), "{}", run.stderr);
    assert_files(&tv, &written, "after activating d2");
}

/// `explain FILE` shows each stripe's disks and every candidate's score and reason.
#[test]
fn issue_11_explain_shows_each_stripe_and_why_each_disk() {
    let tv = small_stripes(7, false);
    let vol = tv.open();
    files(&vol, 0, 2);
    vol.close().unwrap();
    let run = disk(&tv, &["explain", "/f1", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let stripes = run.json["stripes"].as_array().unwrap();
    assert!(stripes.len() >= 2, "{}", run.json);
    let first = &stripes[0];
    assert_eq!(first["disks"].as_array().unwrap().len(), 6);
    let candidates = first["now"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 7);
    assert_eq!(
        candidates.iter().filter(|c| c["taken"] == true).count(),
        6,
        "{first}"
    );
    assert!(
        candidates
            .iter()
            .all(|c| c["reason"].is_string() && c["score"].is_number())
    );
    let text = disk(&tv, &["explain", "/f1"]);
    assert!(
        text.stdout.contains("score") && text.stdout.contains("taken: rank 1"),
        "{}",
        text.stdout
    );
    let missing = disk(&tv, &["explain", "/nope"]);
    assert_eq!(missing.code, Some(1));
}

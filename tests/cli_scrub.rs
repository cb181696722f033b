//! argosfs-scrub from the command line (issue 10): exit codes, messages, --json.

use crate::common::{self, Spec, TestVolume, pattern, put_file};
use argosfs::types::{ShardIndex, ShardKey};
use serde_json::Value;
use std::process::{Command, Stdio};

const SCRUB: &str = env!("CARGO_BIN_EXE_argosfs-scrub");
const FRONT: &str = env!("CARGO_BIN_EXE_argosfs");

/// What a run gave: exit status, stdout as JSON (Null when it is not), stdout, stderr.
struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
    stderr: String,
}

fn run_program(program: &str, tv: &TestVolume, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ARGOSFS_PASSPHRASE")
        .stdin(Stdio::null());
    if let Some(passphrase) = &tv.passphrase {
        command.env(
            "ARGOSFS_PASSPHRASE",
            std::str::from_utf8(passphrase).unwrap(),
        );
    }
    let out = command.output().unwrap();
    Run {
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `argosfs-scrub ROOT ARGS`.
fn scrub(tv: &TestVolume, args: &[&str]) -> Run {
    let mut all = vec![tv.root.to_str().unwrap()];
    all.extend_from_slice(args);
    run_program(SCRUB, tv, &all)
}

fn volume(encryption: bool) -> (TestVolume, u64) {
    let tv = common::make(&Spec {
        encryption,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    for i in 0..3u64 {
        put_file(&vol, format!("f{i}").as_bytes(), &pattern(64 << 10, 40 + i));
    }
    let stripes = vol.stripes().len() as u64;
    vol.close().unwrap();
    (tv, stripes)
}

#[test]
fn issue_10_scrub_cli_clean_volume_exits_0_with_json() {
    for encryption in [false, true] {
        let (tv, stripes) = volume(encryption);
        let run = scrub(&tv, &["--json"]);
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        assert_eq!(run.json["schema"], 1);
        assert_eq!(run.json["command"], "scrub");
        assert_eq!(run.json["stripes_verified"], stripes);
        assert_eq!(run.json["shards_verified"], 6 * stripes);
        assert_eq!(run.json["is_clean"], true);
        assert_eq!(run.json["is_finished"], true);
        assert_eq!(run.json["found"]["corrupt"], 0);
        // The front command takes the same line.
        let front = run_program(FRONT, &tv, &["scrub", tv.root.to_str().unwrap()]);
        assert_eq!(front.code, Some(0), "{}", front.stderr);
        assert!(
            front
                .stdout
                .contains(&format!("verified {stripes} stripes")),
            "{}",
            front.stdout
        );
    }
}

#[test]
fn issue_10_scrub_cli_deleted_shard_fails_then_repair_fixes_it() {
    let (tv, _) = volume(false);
    let vol = tv.open();
    let at = vol.stripes().into_iter().next().unwrap();
    vol.close().unwrap();
    let disk = at.stripe.disk_of(2).unwrap();
    let path = common::Shard::at(
        &tv.disks[usize::from(disk.0)],
        ShardKey {
            stripe: at.stripe.id,
            index: ShardIndex(2),
        },
    );
    path.remove();

    let found = scrub(&tv, &["--json"]);
    assert_eq!(found.code, Some(1), "{}\n{}", found.stdout, found.stderr);
    assert_eq!(found.json["found"]["missing"], 1);
    assert_eq!(found.json["is_clean"], false);
    let text = scrub(&tv, &[]);
    assert_eq!(text.code, Some(1));
    assert!(
        text.stdout.contains("1 missing") && text.stdout.contains("--repair"),
        "{}",
        text.stdout
    );
    assert!(!path.exists());

    let fixed = scrub(&tv, &["--repair", "--json"]);
    assert_eq!(fixed.code, Some(0), "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(fixed.json["shards_repaired"], 1);
    assert!(path.exists());
    assert_eq!(scrub(&tv, &[]).code, Some(0));
    let report = common::fsck_check(&tv);
    assert_eq!(report.errors_found(), 0, "{:#?}", report.findings);
}

#[test]
fn issue_10_scrub_cli_status_pause_and_resume() {
    let (tv, stripes) = volume(false);
    let status = scrub(&tv, &["--status", "--json"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert_eq!(status.json["command"], "status");
    assert_eq!(status.json["stripes"], stripes);
    assert_eq!(status.json["never_verified"], stripes);
    assert_eq!(status.json["run"], Value::Null);
    // Nothing to pause or resume yet: an error saying so.
    for flag in ["--pause", "--resume"] {
        let none = scrub(&tv, &[flag]);
        assert_eq!(none.code, Some(1), "{flag}: {}", none.stderr);
        assert!(
            none.stderr.contains("no unfinished scrub run"),
            "{}",
            none.stderr
        );
    }
    // One stripe, then stopped at the bound: interrupted; pause marks it paused.
    let part = scrub(&tv, &["--max-bytes", "1", "--json"]);
    assert_eq!(part.code, Some(0), "{}", part.stderr);
    assert_eq!(part.json["is_bounded"], true);
    assert_eq!(part.json["stripes_verified"], 1);
    let paused = scrub(&tv, &["--pause", "--json"]);
    assert_eq!(paused.code, Some(0), "{}", paused.stderr);
    assert_eq!(paused.json["run"]["is_paused"], true);
    let status = scrub(&tv, &["--status"]);
    assert_eq!(status.code, Some(0));
    assert!(
        status.stdout.contains("scrub run paused: 1 stripes done"),
        "{}",
        status.stdout
    );
    let resumed = scrub(&tv, &["--resume", "--json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(resumed.json["is_resumed"], true);
    assert_eq!(resumed.json["is_finished"], true);
    assert_eq!(resumed.json["stripes_verified"], stripes - 1);
    let status = scrub(&tv, &["--status", "--json"]);
    assert_eq!(status.json["never_verified"], 0);
    assert_eq!(status.json["run"], Value::Null);
    assert_eq!(status.json["last_run"]["run"]["stripes_done"], stripes);
    // A usage error is 2.
    assert_eq!(scrub(&tv, &["--status", "--pause"]).code, Some(2));
    assert_eq!(scrub(&tv, &["--percent", "0"]).code, Some(2));
}

#[test]
fn issue_10_scrub_cli_refuses_a_volume_held_by_a_process_without_a_control_socket() {
    let (tv, _) = volume(false);
    let vol = tv.open();
    let run = scrub(&tv, &[]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("mounted or in use") && run.stderr.contains("no mount answers"),
        "{}",
        run.stderr
    );
    vol.close().unwrap();
}

//! Issue 10 on a mounted volume: argosfs-disk reaches the mount through its control
//! socket, and the mount changes disks and moves shards while files are in use.

use crate::common::{Spec, TestVolume, pattern};
use crate::mount_util::{Mounted, free_local_addr, http_get, require_fuse, sample};
use argosfs::types::DiskId;
use argosfs::volume::{OpenOptions, Volume};
use serde_json::Value;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const DISK: &str = env!("CARGO_BIN_EXE_argosfs-disk");

/// `argosfs-disk ROOT ARGS --json` (no passphrase: the mount has the key): exit code,
/// the JSON object and stderr.
fn disk(tv: &TestVolume, args: &[&str]) -> (i32, Value, String) {
    run_json(DISK, tv, args)
}

/// `PROGRAM ROOT ARGS --json` without a passphrase.
fn run_json(program: &str, tv: &TestVolume, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(program)
        .arg(&tv.root)
        .args(args)
        .arg("--json")
        .env_remove("ARGOSFS_PASSPHRASE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Writes `data` to `path` and fsyncs it.
fn write_synced(path: &Path, data: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn open_read_only(tv: &TestVolume) -> Volume {
    tv.open_with(OpenOptions {
        read_only: true,
        ..tv.options()
    })
    .unwrap()
}

/// Every stripe has all k+m shards, on disks of distinct domains, none on `gone`; each
/// placed shard is on its disk.
pub(crate) fn assert_whole_without(tv: &TestVolume, gone: Option<DiskId>) {
    let vol = open_read_only(tv);
    let sb = vol.superblock().clone();
    let present = vol.shards_present().unwrap();
    let width = usize::from(sb.layout.k) + usize::from(sb.layout.m);
    for at in vol.stripes() {
        let placed: Vec<(usize, DiskId)> = at.stripe.placed().collect();
        assert_eq!(placed.len(), width, "{at}: {:?}", at.stripe);
        let mut domains: Vec<String> = placed
            .iter()
            .map(|(_, d)| {
                sb.disks
                    .iter()
                    .find(|c| c.id == *d)
                    .map(|c| c.domain.clone())
                    .unwrap()
            })
            .collect();
        domains.sort();
        domains.dedup();
        assert_eq!(domains.len(), width, "{at}: shards share a domain");
        for (i, d) in placed {
            assert_ne!(Some(d), gone, "{at}: a shard is still on {d}");
            let key = argosfs::types::ShardKey {
                stripe: at.stripe.id,
                index: argosfs::types::ShardIndex(i as u8),
            };
            assert!(present.contains(&(d, key)), "{at}: shard {i} gone from {d}");
        }
    }
}

/// A disk is lost under a mounted 4+2 volume; writes go on. `disk list` through the
/// mount shows the loss, `disk replace` through the mount puts an empty directory in
/// its place and heals while the volume stays mounted; afterwards any two other disks
/// may go and every file still reads back.
#[test]
fn issue_10_online_lost_disk_replace_and_heal_through_the_mount() {
    require_fuse!();
    let mut m = Mounted::new(&Spec {
        compression: true,
        encryption: true,
        ..Spec::default()
    });
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..4 {
        let data = pattern(300_000 + i * 70_000, 90 + i as u64);
        let name = format!("before{i}");
        write_synced(&m.path(&name), &data);
        files.push((name, data));
    }
    fs::remove_dir_all(&m.tv.disks[2]).unwrap();
    for i in 0..3 {
        let data = pattern(400_000 + i * 50_000, 190 + i as u64);
        let name = format!("during{i}");
        write_synced(&m.path(&name), &data);
        files.push((name, data));
    }

    // The mount answers: no passphrase needed, no lock conflict.
    let (code, list, stderr) = disk(&m.tv, &["list"]);
    assert_eq!(code, 1, "{list}\n{stderr}");
    let d2 = list["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "d2")
        .unwrap();
    assert!(d2["degraded_stripes"].as_u64().unwrap() > 0, "{list}");
    assert!(list["degraded_stripes"].as_u64().unwrap() > 0, "{list}");

    let new = m.tv.dir.path().join("d2-new");
    let (code, replaced, stderr) = disk(&m.tv, &["replace", "d2", new.to_str().unwrap()]);
    assert_eq!(code, 0, "{replaced}\n{stderr}");
    assert_eq!(replaced["is_whole"], true, "{replaced}");
    assert!(
        replaced["heal"]["shards_written"].as_u64().unwrap() > 0,
        "{replaced}"
    );
    let (code, list, stderr) = disk(&m.tv, &["list"]);
    assert_eq!(code, 0, "{list}\n{stderr}");
    assert_eq!(list["is_whole"], true, "{list}");

    // New writes go to the new directory at once, whole.
    let after = pattern(350_000, 300);
    write_synced(&m.path("after"), &after);
    files.push(("after".into(), after));
    for (name, data) in &files {
        assert_eq!(&fs::read(m.path(name)).unwrap(), data, "{name}");
    }
    let (code, status, _) = disk(&m.tv, &["status"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["job"]["request"]["Replace"]["disk"], 2, "{status}");
    m.unmount();

    assert_whole_without(&m.tv, None);
    let run = crate::fsck::fsck(&m.tv, &[]);
    assert_eq!(run.code, 0, "{run}");
    fs::remove_dir_all(&m.tv.disks[0]).unwrap();
    fs::remove_dir_all(&m.tv.disks[4]).unwrap();
    m.mount();
    for (name, data) in &files {
        assert_eq!(&fs::read(m.path(name)).unwrap(), data, "{name}");
    }
}

/// A disk is drained through the mount while a writer and a reader work on it: the
/// disk ends with no shard, every stripe whole on distinct domains, all data intact.
#[test]
fn issue_10_drain_through_the_mount_while_a_writer_and_a_reader_run() {
    require_fuse!();
    let mut m = Mounted::new(&Spec {
        disks: 7,
        stripe_bytes: 32 << 10,
        ..Spec::default()
    });
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..24 {
        let data = pattern(100_000 + i * 9_000, 400 + i as u64);
        let name = format!("old{i}");
        fs::write(m.path(&name), &data).unwrap();
        files.push((name, data));
    }
    File::open(m.path("old0")).unwrap().sync_all().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dir = m.mnt.clone();
        std::thread::spawn(move || {
            let mut written = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) || i < 3 {
                let data = pattern(60_000 + (i as usize % 7) * 11_000, 900 + i);
                let name = format!("new{i}");
                write_synced(&dir.join(&name), &data);
                written.push((name, data));
                i += 1;
            }
            written
        })
    };
    let reader = {
        let stop = stop.clone();
        let dir = m.mnt.clone();
        let files = files.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Acquire) || reads < 3 {
                for (name, data) in &files {
                    assert_eq!(&fs::read(dir.join(name)).unwrap(), data, "{name}");
                }
                reads += 1;
            }
            reads
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (code, drained, stderr) = disk(&m.tv, &["drain", "d6"]);
    stop.store(true, Ordering::Release);
    let written = writer.join().unwrap();
    let reads = reader.join().unwrap();
    assert_eq!(code, 0, "{drained}\n{stderr}");
    assert_eq!(drained["is_complete"], true, "{drained}");
    assert_eq!(drained["state"], "removed", "{drained}");
    assert!(drained["shards_written"].as_u64().unwrap() > 0, "{drained}");
    assert!(reads >= 3 && written.len() >= 3);

    let (_, list, _) = disk(&m.tv, &["list"]);
    let d6 = list["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "d6")
        .unwrap()
        .clone();
    assert_eq!(d6["shards"], 0, "{list}");
    files.extend(written);
    for (name, data) in &files {
        assert_eq!(&fs::read(m.path(name)).unwrap(), data, "{name}");
    }
    m.unmount();
    assert_whole_without(&m.tv, Some(DiskId(6)));
    let left =
        argosfs::store::Disk::list_shards(&argosfs::store::DirDisk::open(&m.tv.disks[6]).unwrap())
            .unwrap();
    assert!(left.is_empty(), "shards left on the drained disk: {left:?}");
    let run = crate::fsck::fsck(&m.tv, &[]);
    assert_eq!(run.code, 0, "{run}");
}

/// The control socket is private, refuses other users, and a second question while a
/// job runs is answered busy; stop ends the job and running it again continues it.
#[test]
fn issue_10_control_socket_is_root_only_and_runs_one_job_at_a_time() {
    require_fuse!();
    let mut m = Mounted::new(&Spec {
        disks: 7,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    for i in 0..40 {
        fs::write(m.path(&format!("f{i}")), pattern(120_000, 600 + i)).unwrap();
    }
    File::open(m.path("f0")).unwrap().sync_all().unwrap();
    let socket = m.tv.root.join(argosfs::control::SOCKET_FILE);
    let mode = fs::metadata(&socket).unwrap();
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    assert!(mode.file_type().is_socket());
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    // Another user cannot even reach it (ROOT is private); given the path opened up, the
    // mount refuses the peer.
    let (ok, _) = crate::mount_util::as_nobody(&format!("{DISK} {} list", m.tv.root.display()));
    assert!(!ok);
    let root_mode = fs::metadata(&m.tv.root).unwrap().permissions();
    fs::set_permissions(&m.tv.root, fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).unwrap();
    let (_, out, err) = crate::mount_util::as_nobody_output(&format!(
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"{}\"); print(s.recv(4096))'",
        socket.display()
    ));
    fs::set_permissions(&m.tv.root, root_mode).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(out.contains("permission denied"), "{out}\n{err}");

    // A drain in the background; a second request meanwhile is refused as busy.
    let (code, started, stderr) = disk(&m.tv, &["drain", "d6", "--background"]);
    assert_eq!(code, 0, "{started}\n{stderr}");
    assert_eq!(started["is_started"], true);
    let (code, busy, stderr) = disk(&m.tv, &["heal"]);
    let (_, status, _) = disk(&m.tv, &["status"]);
    if status["job"]["finished_unix"].is_null() {
        assert_eq!(code, 1, "{busy}");
        assert!(stderr.contains("already running drain"), "{stderr}");
    }
    let (_, stopped, _) = disk(&m.tv, &["stop"]);
    // Either it was stopped or it had already ended; both leave the volume whole.
    let _ = stopped;
    loop {
        let (_, status, _) = disk(&m.tv, &["status"]);
        if !status["job"]["finished_unix"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Running it again (waiting this time) finishes it.
    let (code, drained, stderr) = disk(&m.tv, &["drain", "d6"]);
    assert_eq!(code, 0, "{drained}\n{stderr}");
    assert_eq!(drained["state"], "removed", "{drained}");
    m.unmount();
    assert!(!socket.exists(), "the socket outlived the mount");
    assert_whole_without(&m.tv, Some(DiskId(6)));
}

const SCRUB: &str = env!("CARGO_BIN_EXE_argosfs-scrub");

/// `argosfs-scrub ROOT ARGS --json` (the mount answers; no passphrase).
fn scrub(tv: &TestVolume, args: &[&str]) -> (i32, Value, String) {
    run_json(SCRUB, tv, args)
}

/// Waits until the mount's scrub job has ended.
fn wait_for_scrub_job(tv: &TestVolume) -> Value {
    for _ in 0..600 {
        let (code, status, stderr) = scrub(tv, &["--status"]);
        assert_eq!(code, 0, "{status}\n{stderr}");
        if !status["job"].is_null() && !status["job"]["finished_unix"].is_null() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the mount's scrub did not end");
}

/// Scrub through the mount finds a flipped byte, a truncated and a deleted shard, and
/// repairs them while files stay in use; a paused run stays paused across a restart of
/// the mount and --resume finishes it; an interrupted run (kill -9) is continued by the
/// next mount on its own.
#[test]
fn issue_10_scrub_through_the_mount_repairs_pauses_and_resumes_across_restarts() {
    require_fuse!();
    let mut m = Mounted::new(&Spec {
        stripe_bytes: 16 << 10,
        encryption: true,
        ..Spec::default()
    });
    let mut files = Vec::new();
    for i in 0..30 {
        let data = pattern(90_000 + i * 1_000, 700 + i as u64);
        let name = format!("f{i}");
        fs::write(m.path(&name), &data).unwrap();
        files.push((name, data));
    }
    File::open(m.path("f0")).unwrap().sync_all().unwrap();
    let (code, clean, stderr) = scrub(&m.tv, &[]);
    assert_eq!(code, 0, "{clean}\n{stderr}");
    assert!(clean["stripes_verified"].as_u64().unwrap() > 150, "{clean}");

    // Three shards of three different stripes (the files are in stripe order).
    let shards: Vec<_> = [(0, 3), (1, 60), (2, 120)]
        .iter()
        .map(|&(disk, nth)| m.tv.shard_files(disk)[nth].clone())
        .collect();
    // Damaged in place, as bit rot would (the mount holds the stores' indexes, so an
    // object cannot be taken away behind its back): a payload byte, the second half of
    // an object, a head.
    crate::common::flip_payload_byte(&shards[0], 50);
    let len = shards[1].read().len();
    shards[1].overwrite_at((len / 2) as u64, &vec![0u8; len - len / 2]);
    shards[2].overwrite_at(0, &[0u8; 64]);
    let (code, found, stderr) = scrub(&m.tv, &[]);
    assert_eq!(code, 1, "{found}\n{stderr}");
    assert_eq!(found["found"]["corrupt"], 3, "{found}");
    let (code, repaired, stderr) = scrub(&m.tv, &["--repair"]);
    assert_eq!(code, 0, "{repaired}\n{stderr}");
    assert_eq!(repaired["shards_repaired"], 3, "{repaired}");
    for (name, data) in &files {
        assert_eq!(&fs::read(m.path(name)).unwrap(), data, "{name}");
    }
    let (code, again, _) = scrub(&m.tv, &[]);
    assert_eq!(code, 0);
    assert_eq!(again["found"]["missing"], 0, "{again}");
    assert_eq!(again["found"]["corrupt"], 0, "{again}");

    // Paused in the mount, still paused after a restart, finished by --resume.
    let (code, started, stderr) = scrub(&m.tv, &["--rate", "1", "--background"]);
    assert_eq!(code, 0, "{started}\n{stderr}");
    std::thread::sleep(Duration::from_millis(700));
    let (code, paused, stderr) = scrub(&m.tv, &["--pause"]);
    assert_eq!(code, 0, "{paused}\n{stderr}");
    assert_eq!(paused["run"]["is_paused"], true, "{paused}");
    let done_at_pause = paused["run"]["stripes_done"].as_u64().unwrap();
    m.unmount();
    m.mount();
    std::thread::sleep(Duration::from_millis(300));
    let (_, status, _) = scrub(&m.tv, &["--status"]);
    assert_eq!(status["run"]["is_paused"], true, "{status}");
    assert!(
        status["job"].is_null(),
        "a paused run was resumed: {status}"
    );
    let (code, resumed, stderr) = scrub(&m.tv, &["--resume"]);
    assert_eq!(code, 0, "{resumed}\n{stderr}");
    assert_eq!(resumed["is_resumed"], true);
    assert_eq!(resumed["is_finished"], true, "{resumed}");
    assert!(resumed["run"]["stripes_done"].as_u64().unwrap() > done_at_pause);

    // Interrupted by kill -9: the next mount continues the run by itself.
    let (code, _, stderr) = scrub(&m.tv, &["--rate", "1", "--background"]);
    assert_eq!(code, 0, "{stderr}");
    std::thread::sleep(Duration::from_millis(2500));
    m.kill9();
    m.mount();
    let status = wait_for_scrub_job(&m.tv);
    assert!(status["run"].is_null(), "the run did not finish: {status}");
    assert_eq!(
        status["job"]["result"]["Ok"]["Scrub"]["Ran"]["is_resumed"], true,
        "{status}"
    );
    for (name, data) in &files {
        assert_eq!(&fs::read(m.path(name)).unwrap(), data, "{name}");
    }
}

/// `-o metrics=ADDR:PORT` serves Prometheus metrics: the health report's per-disk
/// series and the mount's own counters, in a valid exposition, answered while a
/// writer keeps the mount busy.
#[test]
fn issue_11_mount_serves_metrics_while_busy() {
    require_fuse!();
    let addr = free_local_addr();
    let tv = crate::common::make(&Spec::default());
    let mut m = Mounted::with_options(tv, &[&format!("metrics={addr}")]);
    let data = pattern(3 << 20, 77);
    write_synced(&m.path("a"), &data);
    assert_eq!(fs::read(m.path("a")).unwrap(), data);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dir = m.mnt.clone();
        std::thread::spawn(move || {
            let chunk = pattern(1 << 20, 78);
            let mut f = File::create(dir.join("busy")).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Acquire) || n < 4 {
                f.write_all(&chunk).unwrap();
                n += 1;
            }
            f.sync_all().unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let (status, text) = http_get(&addr, "/metrics");
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    crate::cli_health::check_exposition(&text);
    assert!(sample(&text, r#"argosfs_fuse_requests_total{op="write"}"#) > 0.0);
    assert!(sample(&text, "argosfs_fuse_written_bytes_total") >= (3 << 20) as f64);
    assert!(sample(&text, "argosfs_stripes_written_total") > 0.0);
    assert!(text.contains(r#"disk="d0""#), "no per-disk series:\n{text}");
    assert!(text.contains("argosfs_volume_verdict"), "{text}");
    let (status, _) = http_get(&addr, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    m.unmount();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "metrics outlived the mount"
    );
}

//! kill -9 of `argosfs-disk drain` and `argosfs-disk heal` at many points (issue 10): no
//! shard the metadata references is ever lost, no stripe ever has less redundancy than
//! before, the work resumes on the next run, and fsck ends clean. (contrib/soak-maint.sh
//! runs many more rounds.)

use crate::common::{self, Spec, TestVolume, pattern, put_file, read_all};
use argosfs::types::{DiskId, InodeId, ShardIndex, ShardKey};
use argosfs::volume::{OpenOptions, Volume};
use std::process::Command;
use std::time::Duration;

const DISK: &str = env!("CARGO_BIN_EXE_argosfs-disk");
const FSCK: &str = env!("CARGO_BIN_EXE_argosfs-fsck");

pub(crate) fn files(vol: &Volume, count: u64) -> Vec<(InodeId, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let data = pattern(48_000 + (i as usize % 5) * 5_000, 700 + i);
            (put_file(vol, format!("f{i}").as_bytes(), &data), data)
        })
        .collect()
}

/// A volume of `disks` disks with 16 KiB stripes (many stripes from little data) and
/// `count` files written to it, closed.
pub(crate) fn volume_with_files(disks: usize, count: u64) -> (TestVolume, Vec<(InodeId, Vec<u8>)>) {
    let tv = common::make(&Spec {
        disks,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, count);
    vol.close().unwrap();
    (tv, written)
}

/// A small deterministic sequence of delays (milliseconds), so a failure replays.
pub(crate) fn delays(count: usize, seed: u64, max_ms: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % max_ms
        })
        .collect()
}

/// Starts `argosfs-disk ROOT args`, kills it with SIGKILL after `delay_ms` (if it is
/// still running), and waits for it.
fn run_and_kill(tv: &TestVolume, args: &[&str], delay_ms: u64) {
    let mut child = Command::new(DISK)
        .arg(&tv.root)
        .args(args)
        .arg("-q")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let _ = child.kill();
    child.wait().unwrap();
}

fn open_read_only(tv: &TestVolume) -> Volume {
    tv.open_with(OpenOptions {
        read_only: true,
        ..tv.options()
    })
    .unwrap()
}

/// Every shard the metadata places is present on its disk (except on `disk` when
/// `is_disk_filling`: a replaced disk heal is still filling); every file reads back;
/// each stripe has at least `min_shards_placed` shards placed. Returns how many stripes
/// have a shard on `disk`.
pub(crate) fn check_invariants(
    tv: &TestVolume,
    written: &[(InodeId, Vec<u8>)],
    min_shards_placed: usize,
    disk: DiskId,
    is_disk_filling: bool,
) -> usize {
    let vol = open_read_only(tv);
    let present = vol.shards_present().unwrap();
    let mut on_disk = 0;
    for at in vol.stripes() {
        let placed: Vec<(usize, DiskId)> = at.stripe.placed().collect();
        assert!(
            placed.len() >= min_shards_placed,
            "stripe {} below its redundancy: {:?}",
            at.stripe.id,
            at.stripe
        );
        for (i, d) in placed {
            let key = ShardKey {
                stripe: at.stripe.id,
                index: ShardIndex(i as u8),
            };
            let readable = vol
                .disk_infos()
                .iter()
                .any(|info| info.config.id == d && info.is_readable());
            if readable && !(is_disk_filling && d == disk) {
                assert!(
                    present.contains(&(d, key)),
                    "shard {key} on {d} is referenced but gone"
                );
            }
        }
        if at.stripe.uses(disk) {
            on_disk += 1;
        }
    }
    for (ino, data) in written {
        assert_eq!(&read_all(&vol, *ino).unwrap(), data);
    }
    on_disk
}

pub(crate) fn fsck_ends_clean(tv: &TestVolume) {
    let run = |args: &[&str]| {
        Command::new(FSCK)
            .arg(&tv.root)
            .args(args)
            .output()
            .unwrap()
    };
    let repair = run(&["--repair", "--remove-orphans", "--orphan-grace", "0"]);
    let code = repair.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "fsck --repair exited {code}: {}",
        String::from_utf8_lossy(&repair.stdout)
    );
    let check = run(&["-n"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn issue_10_kill_9_during_drain_never_lowers_redundancy_and_the_drain_resumes() {
    let (tv, written) = volume_with_files(8, 60);
    let drained = DiskId(3);
    let mut left = check_invariants(&tv, &written, 6, drained, false);
    assert!(
        left > 20,
        "too few stripes on the disk to interrupt: {left}"
    );
    let mut interrupted = 0;
    let mut trace = Vec::new();
    // The kill comes later after each run that moved nothing, and a little earlier after
    // one that did: each run moves a little, however fast this machine is right now.
    let mut delay = 10u64;
    for _ in 0..25 {
        run_and_kill(&tv, &["drain", "d3"], delay);
        let now = check_invariants(&tv, &written, 6, drained, false);
        assert!(now <= left, "a drain moved shards back");
        if now > 0 && now < left {
            interrupted += 1;
        }
        trace.push((delay, now));
        if now == left && now > 0 {
            delay += delay / 4 + 5;
        } else if now < left {
            // Something moved: a little earlier next time, so the next run stops in
            // the middle too rather than finishing the drain.
            delay -= delay / 8;
        }
        left = now;
    }
    eprintln!("drain kills (delay ms, stripes left on the disk): {trace:?}");
    assert!(
        interrupted >= 3,
        "the kills never caught a drain in the middle: {trace:?}"
    );
    common::run_ok(Command::new(DISK).arg(&tv.root).args(["drain", "d3"]));
    assert_eq!(check_invariants(&tv, &written, 6, drained, false), 0);
    fsck_ends_clean(&tv);
}

#[test]
fn issue_10_kill_9_during_heal_loses_nothing_and_the_heal_resumes() {
    let (tv, written) = volume_with_files(6, 60);
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    let new = tv.dir.path().join("disk2-new");
    let out = Command::new(DISK)
        .arg(&tv.root)
        .args(["replace", "d2", new.to_str().unwrap(), "--no-heal"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing_on_new = |tv: &TestVolume| {
        let vol = open_read_only(tv);
        let present = vol.shards_present().unwrap();
        vol.stripes()
            .iter()
            .filter(|at| {
                at.stripe.placed().any(|(i, d)| {
                    d == DiskId(2)
                        && !present.contains(&(
                            d,
                            ShardKey {
                                stripe: at.stripe.id,
                                index: ShardIndex(i as u8),
                            },
                        ))
                })
            })
            .count()
    };
    let mut left = missing_on_new(&tv);
    assert!(left > 20, "{left}");
    let mut interrupted = 0;
    let mut trace = Vec::new();
    // As for the drain: the kill comes later after a run that healed nothing and a little
    // earlier after one that did, so the runs stop mid-way however loaded the machine is.
    let mut delay = 10u64;
    for _ in 0..25 {
        run_and_kill(&tv, &["heal"], delay);
        // Every stripe keeps all six shards placed; the replaced disk's only grow.
        check_invariants(&tv, &written, 6, DiskId(2), true);
        let now = missing_on_new(&tv);
        assert!(now <= left, "heal lost shards it had written");
        if now > 0 && now < left {
            interrupted += 1;
        }
        trace.push((delay, now));
        if now == left && now > 0 {
            delay += delay / 4 + 5;
        } else if now < left {
            delay -= delay / 8;
        }
        left = now;
    }
    assert!(
        interrupted >= 3,
        "the kills never caught a heal in the middle: {trace:?}"
    );
    common::run_ok(Command::new(DISK).arg(&tv.root).arg("heal"));
    assert_eq!(missing_on_new(&tv), 0);
    fsck_ends_clean(&tv);
    // And the volume survives any two more lost disks.
    std::fs::remove_dir_all(&tv.disks[0]).unwrap();
    std::fs::remove_dir_all(&tv.disks[5]).unwrap();
    let vol = tv.open();
    for (ino, data) in &written {
        assert_eq!(&read_all(&vol, *ino).unwrap(), data);
    }
}

/// `argosfs-disk ROOT args` against a mounted volume (the mount runs it), checked to
/// have started.
fn start_in_mount(tv: &TestVolume, args: &[&str]) {
    // Unpaced (a mount's default rate would make the few stripes here last seconds).
    common::run_ok(Command::new(DISK).arg(&tv.root).args(args).args([
        "--background",
        "--rate",
        "1000",
        "-q",
    ]));
}

/// kill -9 of the mount while it drains a disk, then heals a replaced one, for it
/// (through the control socket): the same guarantees as for the offline command.
#[test]
fn issue_10_kill_9_of_the_mount_during_online_drain_and_heal() {
    crate::mount_util::require_fuse!();
    let (tv, written) = volume_with_files(8, 60);
    let mut m = crate::mount_util::Mounted::with_options(tv, &[]);
    m.kill9();
    let drained = DiskId(7);
    let mut left = check_invariants(&m.tv, &written, 6, drained, false);
    let mut trace = Vec::new();
    let mut interrupted = 0;
    // As offline: later after a run that moved nothing, a little earlier after one that
    // did (a fixed schedule let one run finish the drain on the segment store).
    let mut delay = 5u64;
    for _ in 0..16 {
        m.mount();
        start_in_mount(&m.tv, &["drain", "d7"]);
        std::thread::sleep(Duration::from_millis(delay));
        m.kill9();
        let now = check_invariants(&m.tv, &written, 6, drained, false);
        assert!(now <= left, "a drain moved shards back");
        if now > 0 && now < left {
            interrupted += 1;
        }
        trace.push((delay, now));
        if now == left && now > 0 {
            delay += delay / 4 + 5;
        } else if now < left {
            delay -= delay / 8;
        }
        left = now;
    }
    eprintln!("online drain kills (delay ms, stripes left on the disk): {trace:?}");
    assert!(
        interrupted >= 2,
        "the kills never caught a drain in the middle: {trace:?}"
    );
    m.mount();
    common::run_ok(Command::new(DISK).arg(&m.tv.root).args(["drain", "d7"]));
    m.unmount();
    assert_eq!(check_invariants(&m.tv, &written, 6, drained, false), 0);

    std::fs::remove_dir_all(&m.tv.disks[2]).unwrap();
    let new = m.tv.dir.path().join("disk2-new");
    let out = Command::new(DISK)
        .arg(&m.tv.root)
        .args(["replace", "d2", new.to_str().unwrap(), "--no-heal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for delay in delays(10, 0xfeed, 40) {
        m.mount();
        start_in_mount(&m.tv, &["heal"]);
        std::thread::sleep(Duration::from_millis(delay));
        m.kill9();
        check_invariants(&m.tv, &written, 6, DiskId(2), true);
    }
    m.mount();
    common::run_ok(Command::new(DISK).arg(&m.tv.root).arg("heal"));
    m.unmount();
    check_invariants(&m.tv, &written, 6, DiskId(2), false);
    fsck_ends_clean(&m.tv);
}

/// kill -9 of `argosfs-disk rebalance` at many points: no referenced shard lost, no
/// stripe below its redundancy, every file intact; the next run finishes the work.
#[test]
fn issue_10_kill_9_during_rebalance_loses_nothing_and_the_rebalance_resumes() {
    let (tv, written) = volume_with_files(6, 60);
    for i in 6..8 {
        common::run_ok(Command::new(DISK).arg(&tv.root).args([
            "add",
            tv.dir.path().join(format!("new{i}")).to_str().unwrap(),
        ]));
    }
    let on_new = |tv: &TestVolume| {
        let vol = open_read_only(tv);
        let n = vol
            .stripes()
            .iter()
            .filter(|at| at.stripe.uses(DiskId(6)) || at.stripe.uses(DiskId(7)))
            .count();
        drop(vol);
        n
    };
    let mut trace = Vec::new();
    // As for the drain: the kill comes later after each run that moved nothing, so the
    // runs catch the rebalance in the middle however fast this machine is right now
    // (with a fixed schedule the first run finished the whole rebalance).
    let mut delay = 10u64;
    let mut before = on_new(&tv);
    for _ in 0..16 {
        run_and_kill(&tv, &["rebalance"], delay);
        check_invariants(&tv, &written, 6, DiskId(0), false);
        let now = on_new(&tv);
        trace.push((delay, now));
        if now == before {
            delay += delay / 4 + 5;
        } else {
            delay -= delay / 8;
        }
        before = now;
    }
    eprintln!("rebalance kills (delay ms, stripes using the added disks): {trace:?}");
    assert!(
        trace.windows(2).any(|w| w[1].1 > w[0].1),
        "no kill caught a rebalance that had moved something: {trace:?}"
    );
    common::run_ok(Command::new(DISK).arg(&tv.root).arg("rebalance"));
    let again = Command::new(DISK)
        .arg(&tv.root)
        .args(["rebalance", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["shards_written"], 0, "{report}");
    check_invariants(&tv, &written, 6, DiskId(0), false);
    fsck_ends_clean(&tv);
}

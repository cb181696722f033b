//! The backing store is private: nothing mkfs, the Volume or fsck makes is open to group
//! or other, whatever the umask; the audit at open reports loosened objects and fsck
//! reports and repairs them, in the library and from the command line.

use crate::common::{self, Spec, TestVolume, pattern, put_file, root};
use argosfs::fsck::{self, Kind, NoProgress, Options, Report};
use argosfs::types::InodeId;
use argosfs::volume::OpenOptions;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const FSCK: &str = env!("CARGO_BIN_EXE_argosfs-fsck");

/// Under this umask (the usual one) a directory made without an explicit mode is 0755
/// and a file 0644, so these tests fail if any writer relies on the umask. It is the
/// umask of the whole test process, which other tests run under anyway.
fn usual_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every object at or below `tops` (symbolic links not followed) with a group or other
/// bit, and how many objects were looked at.
fn loose_under(tops: &[&Path]) -> (Vec<(PathBuf, u32)>, usize) {
    let mut loose = Vec::new();
    let mut seen = 0;
    let mut stack: Vec<PathBuf> = tops.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        seen += 1;
        let mode = meta.permissions().mode() & 0o7777;
        if !meta.file_type().is_symlink() && mode & 0o077 != 0 {
            loose.push((path.clone(), mode));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    (loose, seen)
}

/// The first few loose objects and how many there are, for a failure message.
fn show(loose: &[(PathBuf, u32)]) -> String {
    let first: Vec<String> = loose
        .iter()
        .take(10)
        .map(|(path, mode)| format!("{} ({mode:04o})", path.display()))
        .collect();
    format!("{} loose: {}", loose.len(), first.join(", "))
}

fn store_loose(tv: &TestVolume) -> (Vec<(PathBuf, u32)>, usize) {
    let mut tops = vec![tv.root.as_path()];
    tops.extend(tv.disks.iter().map(PathBuf::as_path));
    loose_under(&tops)
}

fn loose_findings(report: &Report) -> Vec<&fsck::Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::LoosePermissions)
        .collect()
}

#[test]
fn everything_mkfs_the_volume_and_fsck_write_is_private() {
    usual_umask();
    // Disks under a directory that exists already, as a drive's mount point does.
    let parent = tempfile::tempdir().unwrap();
    let mounts = parent.path().join("mnt");
    for i in 0..6 {
        std::fs::create_dir_all(mounts.join(format!("disk{i}"))).unwrap();
        chmod(&mounts.join(format!("disk{i}")), 0o755);
    }
    let tv = common::make_in(&Spec::default(), Some(&mounts));
    let (loose, _) = store_loose(&tv);
    assert!(loose.is_empty(), "after mkfs: {}", show(&loose));

    // Writes, commits, deletes (recycled shard files), a snapshot at every commit with
    // the journal cut back each time, a reopen and a read-only open.
    let options = OpenOptions {
        journal_limit_bytes: Some(1),
        ..tv.options()
    };
    let vol = tv.open_with(options.clone()).unwrap();
    assert!(vol.loose_paths().is_empty(), "{:?}", vol.loose_paths());
    let c = root();
    let dir = vol.mkdir(&c, InodeId::ROOT, b"dir", 0o755).unwrap().ino;
    let small = put_file(&vol, b"inline", b"small enough to live in the metadata");
    vol.commit().unwrap();
    put_file(&vol, b"striped", &pattern(5 * (64 << 10) + 17, 1));
    vol.create(&c, dir, b"empty", 0o644).unwrap();
    vol.commit().unwrap();
    vol.unlink(&c, InodeId::ROOT, b"striped").unwrap();
    vol.write(&c, small, 0, b"changed").unwrap();
    vol.commit().unwrap();
    put_file(&vol, b"again", &pattern(3 * (64 << 10), 2));
    vol.close().unwrap();
    let vol = tv.open_with(options).unwrap();
    assert!(vol.loose_paths().is_empty(), "{:?}", vol.loose_paths());
    put_file(&vol, b"after-reopen", &pattern(2 * (64 << 10), 3));
    vol.close().unwrap();
    let vol = tv
        .open_with(OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    vol.close().unwrap();

    // The walk below covered what it must: both snapshot slots, the stores' segments and
    // indexes.
    let meta = tv.root.join("meta");
    for name in ["snapshot.0", "snapshot.1", "journal"] {
        assert!(meta.join(name).is_file(), "{name} missing");
    }
    assert!(!tv.segment_files(0).is_empty());
    assert!(tv.disks[0].join("store/index.log").is_file());
    assert!(!tv.shard_files(0).is_empty());
    let (loose, seen) = store_loose(&tv);
    assert!(loose.is_empty(), "after use: {}", show(&loose));
    assert!(seen > 6 * 5, "only {seen} objects looked at");
    assert_eq!(mode_of(&tv.root), 0o700);
    assert_eq!(mode_of(&tv.disks[0]), 0o700, "the existing disk directory");
    assert_eq!(mode_of(&tv.root.join("lock")), 0o600);

    // fsck finds nothing to say about it, and what its repairs write is private too:
    // a journal saved aside, rewritten snapshots, a quarantine directory with a foreign
    // object moved into it.
    let report = fsck::check(&tv.root, &Options::default(), &NoProgress).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let vol = tv.open();
    for i in 0..3 {
        put_file(&vol, format!("late{i}").as_bytes(), b"late");
        vol.commit().unwrap();
    }
    vol.close().unwrap();
    let journal = meta.join("journal");
    let volume = argosfs::volume::Superblock::load(&tv.root).unwrap().volume;
    let scan = argosfs::meta::journal::Journal::scan(&journal, volume).unwrap();
    assert!(scan.records.len() >= 2, "{}", scan.records.len());
    // Damage with later data after it: fsck saves the journal aside and starts anew.
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[scan.records[0].offset as usize + 20] ^= 0x55;
    std::fs::write(&journal, &bytes).unwrap();
    common::Shard::at(
        &tv.disks[1],
        argosfs::types::ShardKey {
            stripe: argosfs::types::StripeId(0x123400),
            index: argosfs::types::ShardIndex(1),
        },
    )
    .write(b"not a shard");
    let repair = Options {
        repair: true,
        remove_orphans: true,
        orphan_grace: std::time::Duration::ZERO,
        passphrase: tv.passphrase.clone(),
    };
    let report = fsck::check(&tv.root, &repair, &NoProgress).unwrap();
    assert!(report.errors_corrected() > 0, "{report:?}");
    let saved = std::fs::read_dir(&meta)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("journal.fsck-saved.")
        })
        .count();
    assert_eq!(saved, 1, "{report:?}");
    assert!(
        tv.disks[1].join("argosfs-quarantine").is_dir(),
        "{report:?}"
    );
    let (loose, _) = store_loose(&tv);
    assert!(loose.is_empty(), "after fsck's repairs: {}", show(&loose));
}

#[test]
fn fsck_and_the_open_audit_report_loosened_objects_and_fsck_repairs_them() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(3 * (64 << 10), 4));
    vol.close().unwrap();
    let disk_dir = tv.disks[0].clone();
    let shard = tv.segment_files(1)[0].clone();
    let journal = tv.root.join("meta/journal");
    chmod(&disk_dir, 0o755);
    chmod(&shard, 0o644);
    chmod(&journal, 0o640);

    // The audit at open: the disk directory, the journal and the segment (a store is a
    // few files, so opening looks at all of them).
    let vol = tv
        .open_with(OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    let mut at_open: Vec<(PathBuf, u32)> = vol
        .loose_paths()
        .iter()
        .map(|l| (l.path.clone(), l.mode))
        .collect();
    at_open.sort();
    let mut expected = vec![
        (disk_dir.clone(), 0o755),
        (journal.clone(), 0o640),
        (shard.clone(), 0o644),
    ];
    expected.sort();
    assert_eq!(at_open, expected);
    vol.close().unwrap();

    // fsck, checking only: errors, not repaired, nothing changed.
    let report = fsck::check(&tv.root, &Options::default(), &NoProgress).unwrap();
    let found = loose_findings(&report);
    assert_eq!(found.len(), 3, "ROOT, disk d0, disk d1: {report:#?}");
    assert!(
        found
            .iter()
            .all(|f| f.is_error() && f.repairable && !f.repaired),
        "{found:#?}"
    );
    let details: String = found.iter().map(|f| f.detail.clone() + "\n").collect();
    for (path, mode) in [(&disk_dir, "0755"), (&shard, "0644"), (&journal, "0640")] {
        assert!(
            details.contains(&format!("{} ({mode})", path.display())),
            "{} not named: {details}",
            path.display()
        );
    }
    assert!(found.iter().any(|f| f.object.starts_with("disk d0")));
    assert!(found.iter().any(|f| f.object.starts_with("disk d1")));
    assert!(found.iter().any(|f| f.object.starts_with("ROOT")));
    assert_eq!(report.errors_left(), 3);
    assert_eq!(mode_of(&disk_dir), 0o755);
    assert_eq!(mode_of(&shard), 0o644);
    assert_eq!(mode_of(&journal), 0o640);

    // Repairing: the same errors, repaired; group and other bits cleared.
    let repair = Options {
        repair: true,
        ..Options::default()
    };
    let report = fsck::check(&tv.root, &repair, &NoProgress).unwrap();
    let found = loose_findings(&report);
    assert_eq!(found.len(), 3, "{report:#?}");
    assert!(found.iter().all(|f| f.repaired), "{found:#?}");
    assert_eq!((report.errors_corrected(), report.errors_left()), (3, 0));
    assert_eq!(mode_of(&disk_dir), 0o700);
    assert_eq!(mode_of(&shard), 0o600);
    assert_eq!(mode_of(&journal), 0o600);

    let report = fsck::check(&tv.root, &Options::default(), &NoProgress).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let vol = tv.open();
    assert!(vol.loose_paths().is_empty());
    vol.close().unwrap();
}

#[test]
fn fsck_also_looks_when_the_metadata_cannot_be_read() {
    let tv = common::make(&Spec::default());
    let meta = tv.root.join("meta");
    std::fs::write(meta.join("snapshot.0"), b"garbage").unwrap();
    std::fs::write(meta.join("journal"), b"garbage").unwrap();
    chmod(&meta, 0o755);
    let report = fsck::check(&tv.root, &Options::default(), &NoProgress).unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == Kind::MetadataUnreadable),
        "{report:#?}"
    );
    let found = loose_findings(&report);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert!(
        found[0]
            .detail
            .contains(&format!("{} (0755)", meta.display()))
    );
}

/// argosfs-fsck with `--json`: exit code and the findings.
fn fsck_cli(tv: &TestVolume, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(FSCK)
        .arg(&tv.root)
        .args(args)
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let findings = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|v| v["type"] == "finding")
        .map(|v| v["data"].clone())
        .collect();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap(), findings, text)
}

#[test]
fn fsck_cli_exits_4_then_1_then_0_and_does_not_flood_the_report() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    put_file(&vol, b"f", &pattern(20 * (64 << 10), 5));
    vol.close().unwrap();
    // A store loosened by hand: every file of a disk's store readable by all (more
    // segments than one would be listed the same way).
    let mut shards = tv.segment_files(2);
    shards.push(tv.disks[2].join("store/index"));
    shards.push(tv.disks[2].join("store/index.log"));
    for shard in &shards {
        chmod(shard, 0o644);
    }
    chmod(&tv.root.join("meta/journal"), 0o644);

    let (code, findings, text) = fsck_cli(&tv, &["-n"]);
    assert_eq!(code, 4, "{text}");
    let loose: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "loose_permissions")
        .collect();
    assert_eq!(loose.len(), 2, "one for ROOT, one for disk d2: {text}");
    let disk = loose
        .iter()
        .find(|f| f["object"].as_str().unwrap().starts_with("disk d2"))
        .unwrap();
    assert_eq!(disk["severity"], "error");
    assert_eq!(disk["repaired"], false);
    let detail = disk["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{} objects are", shards.len())),
        "{detail}"
    );
    assert_eq!(
        detail.matches(" (0644)").count(),
        shards.len().min(8),
        "{detail}"
    );

    let (code, findings, text) = fsck_cli(&tv, &["--repair"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        findings
            .iter()
            .filter(|f| f["kind"] == "loose_permissions")
            .all(|f| f["repaired"] == true),
        "{text}"
    );
    assert!(shards.iter().all(|s| mode_of(s) == 0o600));
    let (code, findings, text) = fsck_cli(&tv, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(findings.is_empty(), "{text}");
}

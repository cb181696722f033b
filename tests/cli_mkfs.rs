//! argosfs-mkfs from the command line: exit codes, messages, --json.

use std::path::Path;
use std::process::{Command, Output};

fn mkfs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_argosfs-mkfs"))
        .args(args)
        .env_remove("ARGOSFS_PASSPHRASE")
        .output()
        .unwrap()
}

fn disks(dir: &Path, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| {
            [
                "--disk".to_string(),
                dir.join(format!("d{i}")).display().to_string(),
            ]
        })
        .collect()
}

fn run(dir: &Path, n: usize, extra: &[&str]) -> Output {
    let root = dir.join("root").display().to_string();
    let mut args = vec![root];
    args.extend(disks(dir, n));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    mkfs(&refs)
}

#[test]
fn json_report_names_what_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), 6, &["--json", "--compression", "zstd:3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["layout"], "4+2");
    assert_eq!(report["compression"], "zstd:3");
    assert_eq!(report["encrypted"], false);
    assert_eq!(report["disks"].as_array().unwrap().len(), 6);
    assert!(dir.path().join("root/superblock.json").exists());
    assert!(dir.path().join("d5/argosfs-disk.json").exists());
}

#[test]
fn refuses_a_layout_wider_than_the_disks() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), 3, &["--layout", "4+2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs 6 disks"), "{err}");
    assert!(!dir.path().join("root/superblock.json").exists());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &["--layout", "four"][..],
        &["--stripe-size", "1X"],
        &["--compression", "lz4"],
    ] {
        let out = run(dir.path(), 3, extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
    }
    let out = mkfs(&["/tmp/x"]);
    assert_eq!(out.status.code(), Some(2), "missing --disk");
}

#[test]
fn refuses_an_existing_volume_or_disk_without_force() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), 3, &[]).status.success());
    let out = run(dir.path(), 3, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    // A fresh root but a disk of the old volume: refused too.
    let root2 = dir.path().join("root2").display().to_string();
    let d0 = dir.path().join("d0").display().to_string();
    let out = mkfs(&[&root2, "--disk", &d0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(run(dir.path(), 3, &["--force"]).status.success());
}

#[test]
fn encryption_takes_the_passphrase_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "secret\n").unwrap();
    let out = run(
        dir.path(),
        3,
        &[
            "--encrypt",
            "--insecure-fast-kdf",
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["encrypted"], true);
    let options = argosfs::volume::OpenOptions {
        passphrase: Some(b"secret".to_vec()),
        ..Default::default()
    };
    argosfs::volume::Volume::open(&dir.path().join("root"), options).unwrap();
    // No passphrase source and no terminal: a clear error.
    let out = run(dir.path(), 3, &["--encrypt", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ARGOSFS_PASSPHRASE"));
}

#[test]
fn a_refused_mkfs_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root").display().to_string();
    let d0 = dir.path().join("d0").display().to_string();
    let d1 = dir.path().join("d1").display().to_string();
    let out = mkfs(&[&root, "--disk", &d0, "--disk", &d1, "--disk", &d0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
    assert!(!dir.path().join("d0/argosfs-disk.json").exists());
    let d2 = dir.path().join("d2").display().to_string();
    let out = mkfs(&[&root, "--disk", &d0, "--disk", &d1, "--disk", &d2]);
    assert!(
        out.status.success(),
        "retry without --force: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 10: `--disk v1.d/d0` means `./v1.d/d0`, as a relative path given to any program
/// does, not `ROOT/v1.d/d0`. A disk that does lie inside ROOT is still recorded relative
/// to ROOT.
#[test]
fn issue_10_relative_disk_paths_are_relative_to_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_argosfs-mkfs"))
            .current_dir(dir.path())
            .args(["v1", "--disk", "v1.d/d0", "--disk", "./v1.d/d1:weight=2"])
            .args(["--disk", "v1.d/d2", "--disk", "v1/inside", "--json"])
            .env_remove("ARGOSFS_PASSPHRASE"),
    );
    // The child's current directory, as getcwd(3) gives it (the temporary directory's
    // path may go through a symbolic link).
    let cwd = dir.path().canonicalize().unwrap();
    let expected = [
        cwd.join("v1.d/d0"),
        cwd.join("v1.d/d1"),
        cwd.join("v1.d/d2"),
        cwd.join("v1/inside"),
    ];
    for disk in &expected {
        assert!(
            disk.join("argosfs-disk.json").is_file(),
            "no label in {}",
            disk.display()
        );
    }
    assert!(!cwd.join("v1/v1.d").exists(), "a disk was put inside ROOT");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reported: Vec<&str> = report["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    let expected_text: Vec<&str> = expected.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(reported, expected_text);
    let root = cwd.join("v1");
    let sb = argosfs::volume::Superblock::load(&root).unwrap();
    assert_eq!(sb.disks[0].path, cwd.join("v1.d/d0"));
    assert_eq!(
        sb.disks[3].path,
        Path::new("inside"),
        "stored relative to ROOT"
    );
    let vol = argosfs::volume::Volume::open(&root, Default::default()).unwrap();
    assert!(vol.unavailable_disks().is_empty());
    vol.close().unwrap();
}

//! The boot test (issue 13): a machine boots from an ArgosFS root in qemu. Runs
//! `contrib/boot-test.sh --quick`, which checks for root, /dev/kvm, qemu-system-x86_64,
//! mkinitramfs, mkfs.ext4, debugfs, a static busybox and a kernel with its modules; when
//! one is missing it prints a `SKIPPED: ... missing` line and exits 77, and this test
//! prints that line and returns (it does not pass silently: look for SKIPPED in the
//! output, `cargo test boot -- --nocapture`).
//!
//! Binaries: the script strips and uses the ones this test build made (the directory of
//! `CARGO_BIN_EXE_argosfs`), or the ones in `ARGOSFS_BOOT_TEST_BINDIR` (e.g.
//! `target/release`: faster in the guest). `ARGOSFS_BOOT_TEST=0` skips the test, loudly
//! too. A run takes a few minutes with KVM; where KVM does not boot a kernel (nested
//! virtualization on some hosts) the script would fall back to TCG, about 15 minutes, so
//! the suite skips instead (loudly) unless `ARGOSFS_BOOT_TEST=tcg`.

use std::path::Path;
use std::process::Command;

#[test]
fn boot_root_on_argosfs_in_qemu() {
    if std::env::var_os("ARGOSFS_BOOT_TEST").is_some_and(|v| v == "0") {
        println!("SKIPPED: boot test: ARGOSFS_BOOT_TEST=0");
        eprintln!("SKIPPED: boot test: ARGOSFS_BOOT_TEST=0");
        return;
    }
    let bindir = std::env::var_os("ARGOSFS_BOOT_TEST_BINDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_argosfs"))
                .parent()
                .expect("binaries live in a directory")
                .to_path_buf()
        });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/boot-test.sh");
    let mut command = Command::new("bash");
    command.arg(&script).arg("--quick");
    if std::env::var_os("ARGOSFS_BOOT_TEST").is_none_or(|v| v != "tcg") {
        command.arg("--kvm-only");
    }
    let output = command
        .env("ARGOSFS_BINDIR", &bindir)
        .output()
        .expect("running contrib/boot-test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("SKIPPED:"))
            .unwrap_or("SKIPPED: boot test: a tool is missing");
        // Both streams: libtest captures stdout of passing tests.
        println!("{line}");
        eprintln!("{line}");
        return;
    }
    assert!(
        output.status.success(),
        "contrib/boot-test.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("ALL CHECKS PASSED"), "{stdout}");
    assert!(!stdout.contains("\nFAIL "), "{stdout}");
}

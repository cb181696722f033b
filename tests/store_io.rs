//! Shard I/O modes (issue 14): `direct_io` (O_DIRECT through aligned buffers) and
//! `io_uring` (a stripe's shard I/O in one submission) pass the same data tests as
//! buffered I/O, at the volume level and through a mount; the counters prove the mode
//! really carried the I/O where the machine has it; disks on tmpfs fall back to the page
//! cache with one logged reason per disk, and the volume works on.

use crate::common::{self, Spec, TestVolume, Tmpfs, pattern, put_file, read_all, root};
use crate::mount_util::{Mounted, free_local_addr, http_get, require_fuse, sample};
use argosfs::store::{IoMode, StoreIoSnapshot};
use argosfs::volume::{OpenOptions, SetAttr, Volume};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DIRECT: IoMode = IoMode {
    is_direct: true,
    is_uring: false,
};
const URING: IoMode = IoMode {
    is_direct: false,
    is_uring: true,
};
const BOTH: IoMode = IoMode {
    is_direct: true,
    is_uring: true,
};

fn open_in(tv: &TestVolume, mode: IoMode) -> Volume {
    Volume::open(
        &tv.root,
        OpenOptions {
            store_io: mode,
            ..tv.options()
        },
    )
    .unwrap()
}

/// Why direct I/O cannot work under `dir` (its filesystem refuses it), if it cannot.
fn direct_refused_under(dir: &Path) -> Option<String> {
    let probe = tempfile::tempdir_in(dir).unwrap();
    let file = probe.path().join("probe");
    fs::write(&file, [0u8; 4096]).unwrap();
    let handle = fs::File::open(probe.path()).unwrap();
    argosfs::store::record_io::probe_direct(&handle, &file).err()
}

/// Checks that `mode` carried I/O, as far as this machine allows (said when not), and
/// that nothing fell back where it need not have.
fn assert_mode_used(mode: IoMode, seen: &StoreIoSnapshot, disks_dir: &Path) {
    let mut expected_fallbacks = 0;
    if mode.is_uring {
        match argosfs::store::record_io::uring_status() {
            Ok(()) => {
                assert!(seen.uring_ios > 0, "{seen:?}");
                // A stripe's shards go in one submission: fewer submissions than I/Os.
                assert!(
                    seen.uring_submissions > 0 && seen.uring_submissions < seen.uring_ios,
                    "{seen:?}"
                );
            }
            Err(why) => {
                eprintln!("io_uring not exercised on this machine: {why}");
                expected_fallbacks += 1;
            }
        }
    }
    if mode.is_direct {
        match direct_refused_under(disks_dir) {
            None => assert!(seen.direct_ios > 0 && seen.direct_bytes > 0, "{seen:?}"),
            Some(why) => {
                eprintln!(
                    "direct I/O not exercised under {}: {why}",
                    disks_dir.display()
                );
                expected_fallbacks += 1;
            }
        }
    }
    if expected_fallbacks == 0 {
        assert_eq!(seen.fallbacks, 0, "{seen:?}");
    }
}

/// Writes, reads, overwrites, truncates, commits, reopens (in the mode and buffered):
/// the same results as buffered I/O.
fn data_round_trip(mode: IoMode, spec: &Spec) {
    let tv = common::make(spec);
    let me = root();
    let vol = open_in(&tv, mode);
    let sizes = [3000usize, 20_000, 64 << 10, 300_001, (1 << 20) + 4097];
    let mut expected = Vec::new();
    for (n, size) in sizes.iter().enumerate() {
        let data = pattern(*size, n as u64 + 1);
        let name = format!("f{n}");
        let ino = put_file(&vol, name.as_bytes(), &data);
        expected.push((ino, data));
    }
    vol.commit().unwrap();
    for (ino, data) in &expected {
        assert!(read_all(&vol, *ino).unwrap() == *data);
        // Small reads at odd places (direct reads of ranges of blocks).
        for at in [0usize, 1, 4091, 4092, 5000, data.len() / 2] {
            if at < data.len() {
                let got = vol.read(*ino, at as u64, 777).unwrap();
                let end = (at + 777).min(data.len());
                assert!(got == data[at..end], "at {at}");
            }
        }
    }
    // Overwrite the middle of the big file and truncate another.
    let (big, mut big_data) = expected[4].clone();
    let patch = pattern(100_000, 99);
    vol.write(&me, big, 70_000, &patch).unwrap();
    big_data[70_000..170_000].copy_from_slice(&patch);
    expected[4].1 = big_data;
    let (cut, cut_data) = expected[3].clone();
    vol.setattr(
        &me,
        cut,
        &SetAttr {
            size: Some(123_457),
            ..SetAttr::default()
        },
    )
    .unwrap();
    expected[3].1 = cut_data[..123_457].to_vec();
    vol.fsync(big).unwrap();
    vol.commit().unwrap();
    for (ino, data) in &expected {
        assert!(read_all(&vol, *ino).unwrap() == *data);
    }
    let seen = vol.stats().store_io;
    vol.close().unwrap();
    assert_mode_used(mode, &seen, tv.dir.path());
    for reopen in [mode, IoMode::default()] {
        let vol = open_in(&tv, reopen);
        for (ino, data) in &expected {
            assert!(
                read_all(&vol, *ino).unwrap() == *data,
                "reopened {reopen:?}"
            );
        }
        vol.close().unwrap();
    }
    let report = common::fsck_check(&tv);
    assert_eq!(report.errors_found(), 0, "{:#?}", report.findings);
}

#[test]
fn store_io_modes_write_read_overwrite_and_truncate_like_buffered() {
    for mode in [DIRECT, URING, BOTH] {
        data_round_trip(mode, &Spec::default());
    }
}

#[test]
fn store_io_modes_with_compression_and_encryption() {
    let spec = Spec {
        compression: true,
        encryption: true,
        ..Spec::default()
    };
    data_round_trip(BOTH, &spec);
}

/// A disk gone and a shard damaged: reads in each mode rebuild from parity, as
/// buffered reads do.
#[test]
fn store_io_modes_read_degraded() {
    for mode in [DIRECT, URING, BOTH] {
        let tv = common::make(&Spec::default());
        let data = pattern(600_000, 5);
        let vol = open_in(&tv, mode);
        let ino = put_file(&vol, b"f", &data);
        vol.commit().unwrap();
        vol.close().unwrap();
        // One shard damaged on disk 1, and disk 0 gone altogether.
        let shard = tv
            .shard_files(1)
            .into_iter()
            .next()
            .expect("a shard on disk 1");
        common::flip_payload_byte(&shard, 10);
        fs::rename(&tv.disks[0], tv.dir.path().join("gone")).unwrap();
        let vol = open_in(&tv, mode);
        assert!(read_all(&vol, ino).unwrap() == data, "{mode:?}");
        let small = vol.read(ino, 1000, 5000).unwrap();
        assert!(small == data[1000..6000]);
        let stats = vol.stats();
        assert!(stats.degraded_reads > 0, "{stats:?}");
        vol.close().unwrap();
        fs::rename(tv.dir.path().join("gone"), &tv.disks[0]).unwrap();
    }
}

/// Dropped without a close (as a kill -9 leaves it): what the last commit made durable
/// is there after reopening, in any mode, and fsck finds nothing worse than orphans.
#[test]
fn store_io_modes_reopen_after_a_crash() {
    for mode in [DIRECT, URING, BOTH] {
        let tv = common::make(&Spec::default());
        let kept = pattern(400_000, 8);
        let vol = open_in(&tv, mode);
        let ino = put_file(&vol, b"kept", &kept);
        vol.fsync(ino).unwrap();
        vol.commit().unwrap();
        let _lost = put_file(&vol, b"unsynced", &pattern(200_000, 9));
        drop(vol);
        let vol = open_in(&tv, mode);
        let found = vol
            .lookup(&root(), argosfs::types::InodeId::ROOT, b"kept")
            .unwrap();
        assert!(read_all(&vol, found.ino).unwrap() == kept, "{mode:?}");
        vol.close().unwrap();
        let report = common::fsck_check(&tv);
        assert_eq!(report.errors_left(), 0, "{:#?}", report.findings);
    }
}

/// Disks on a tmpfs: direct I/O falls back to the page cache (counted once per disk),
/// io_uring goes on, and the data is right. Needs root to mount the tmpfs.
#[test]
fn store_io_direct_io_on_tmpfs_falls_back_and_works() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&tmp.path().join("t"), "256m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let tv = common::make_in(&Spec::default(), Some(&tmp.path().join("t")));
    let vol = open_in(&tv, BOTH);
    let data = pattern(1 << 20, 3);
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap();
    assert!(read_all(&vol, ino).unwrap() == data);
    let seen = vol.stats().store_io;
    vol.close().unwrap();
    assert_eq!(seen.direct_ios, 0, "{seen:?}");
    let uring_fallback = u64::from(argosfs::store::record_io::uring_status().is_err());
    assert_eq!(seen.fallbacks, 6 + 6 * uring_fallback, "{seen:?}");
}

/// A directory whose filesystem takes O_DIRECT: the test's temp directory when it
/// does, else an ext4 image loop-mounted in it (root, mkfs.ext4); `None` (said why)
/// when neither can be had.
struct DirectDir {
    path: PathBuf,
    _mount: Option<LoopMount>,
    _dir: tempfile::TempDir,
}

struct LoopMount(PathBuf);

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn direct_dir() -> Option<DirectDir> {
    let dir = tempfile::tempdir().unwrap();
    if direct_refused_under(dir.path()).is_none() {
        return Some(DirectDir {
            path: dir.path().to_path_buf(),
            _mount: None,
            _dir: dir,
        });
    }
    let image = dir.path().join("ext4.img");
    let mnt = dir.path().join("ext4");
    fs::create_dir(&mnt).unwrap();
    fs::File::create(&image)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&image)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mounted = made
        && Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "no filesystem with O_DIRECT here: {} refuses it and no ext4 image could be loop-mounted",
            dir.path().display()
        );
        return None;
    }
    let mount = LoopMount(mnt.clone());
    if let Some(why) = direct_refused_under(&mnt) {
        eprintln!("the loop-mounted ext4 refuses O_DIRECT too: {why}");
        return None;
    }
    Some(DirectDir {
        path: mnt,
        _mount: Some(mount),
        _dir: dir,
    })
}

/// On a filesystem that takes O_DIRECT, the record I/O really is direct: every shard
/// write and read of a large file goes that way (counted), and the bytes are right
/// when read back buffered.
#[test]
fn store_io_direct_io_really_bypasses_the_page_cache_where_it_can() {
    let Some(dir) = direct_dir() else {
        return;
    };
    let tv = common::make_in(&Spec::default(), Some(&dir.path));
    let vol = open_in(&tv, DIRECT);
    let data = pattern(4 << 20, 11);
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap();
    let writes = vol.stats().store_io;
    // 4 MiB in 64 KiB stripes of 4+2 shards: 64 stripes, 384 shard writes.
    assert!(writes.direct_ios >= 384, "{writes:?}");
    assert!(writes.direct_bytes >= (6 << 20), "{writes:?}");
    assert!(read_all(&vol, ino).unwrap() == data);
    vol.close().unwrap();
    let vol = open_in(&tv, DIRECT);
    let before = vol.stats().store_io.direct_ios;
    assert!(read_all(&vol, ino).unwrap() == data);
    let after = vol.stats().store_io;
    assert!(after.direct_ios >= before + 256, "{after:?}");
    assert_eq!(after.fallbacks, 0, "{after:?}");
    vol.close().unwrap();
    let vol = open_in(&tv, IoMode::default());
    assert!(read_all(&vol, ino).unwrap() == data);
    assert_eq!(vol.stats().store_io.direct_ios, 0);
    vol.close().unwrap();
}

/// `-o direct_io,io_uring` through a real mount: files written and read correctly, the
/// metrics count the modes' I/O, and the options never reach the kernel as FUSE's own
/// direct_io (the mount's options in /proc/mounts do not name it).
#[test]
fn mount_with_direct_io_and_io_uring_writes_and_reads_files() {
    require_fuse!();
    let addr = free_local_addr();
    let tv = common::make(&Spec::default());
    let disks_dir = tv.dir.path().to_path_buf();
    let mut m = Mounted::with_options(
        tv,
        &[
            "allow_other",
            "direct_io",
            "io_uring",
            &format!("metrics={addr}"),
        ],
    );
    let line = fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(m.mnt.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(!line.contains("direct_io"), "{line}");
    let files: Vec<(String, Vec<u8>)> = [10usize, 5000, 200_000, 3 << 20]
        .iter()
        .enumerate()
        .map(|(n, size)| (format!("f{n}"), pattern(*size, 40 + n as u64)))
        .collect();
    for (name, data) in &files {
        let mut f = fs::File::create(m.path(name)).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    }
    // Overwrite inside the large one.
    let (big_name, mut big) = files[3].clone();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(m.path(&big_name))
            .unwrap();
        let patch = pattern(300_000, 77);
        f.write_all_at(&patch, 1_000_000).unwrap();
        f.sync_all().unwrap();
        big[1_000_000..1_300_000].copy_from_slice(&patch);
    }
    for (name, data) in &files[..3] {
        assert!(fs::read(m.path(name)).unwrap() == *data, "{name}");
    }
    assert!(fs::read(m.path(&big_name)).unwrap() == big);
    let (_, text) = http_get(&addr, "/metrics");
    m.remount();
    for (name, data) in &files[..3] {
        assert!(fs::read(m.path(name)).unwrap() == *data, "{name}");
    }
    assert!(fs::read(m.path(&big_name)).unwrap() == big);
    m.unmount();
    let value = |name: &str| sample(&text, name) as u64;
    let seen = StoreIoSnapshot {
        direct_ios: value("argosfs_direct_ios_total"),
        direct_bytes: value("argosfs_direct_io_bytes_total"),
        uring_ios: value("argosfs_uring_ios_total"),
        uring_bytes: value("argosfs_uring_io_bytes_total"),
        uring_submissions: value("argosfs_uring_submissions_total"),
        fallbacks: value("argosfs_io_fallbacks_total"),
    };
    assert_mode_used(BOTH, &seen, &disks_dir);
}

/// A mount with `-o direct_io` on disks in a tmpfs comes up, works, and says once per
/// disk why it reads and writes through the page cache.
#[test]
fn mount_direct_io_on_tmpfs_logs_the_fallback_once_per_disk() {
    require_fuse!();
    let tmp = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&tmp.path().join("t"), "256m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let tv = common::make_in(&Spec::default(), Some(&tmp.path().join("t")));
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let log = tmp.path().join("mount.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_argosfs-mount"))
        .arg(&tv.root)
        .arg(&mnt)
        .args(["--foreground", "--notify-ready", "-o", "direct_io"])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "READY",
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    let data = pattern(2 << 20, 21);
    let written = fs::write(mnt.join("f"), &data).and_then(|()| fs::read(mnt.join("f")));
    let unmounted = Command::new("umount").arg(&mnt).status().unwrap();
    let status = child.wait().unwrap();
    assert!(written.unwrap() == data);
    assert!(unmounted.success() && status.success());
    let text = fs::read_to_string(&log).unwrap();
    let fallbacks: Vec<&str> = text.lines().filter(|l| l.contains("direct_io:")).collect();
    assert_eq!(fallbacks.len(), 6, "{text}");
    for (i, disk) in tv.disks.iter().enumerate() {
        let named: Vec<_> = fallbacks
            .iter()
            .filter(|l| l.contains(&format!("disk={} ", disk.display())))
            .collect();
        assert_eq!(named.len(), 1, "disk {i}: {text}");
        assert!(named[0].contains("tmpfs"), "{}", named[0]);
    }
}

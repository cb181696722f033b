//! The caches on a mounted volume: `-o cache_size=,l2_cache=,l2_cache_size=` serve
//! re-reads from the L2 directory, never stale (overwrite, truncate, unlink, rename over,
//! remount), and a damaged or deleted L2 directory, while mounted or not, costs nothing
//! but speed. The kernel keeps file pages in its page cache (`FOPEN_KEEP_CACHE`), so each
//! read that must reach the mount first drops the file's pages (`POSIX_FADV_DONTNEED`).

use crate::common::{Spec, make, pattern};
use crate::mount_util::{Mounted, free_local_addr, http_get, require_fuse, sample};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reads `path` through the mount, not from the kernel's page cache.
fn read_cold(path: &Path) -> Vec<u8> {
    let file = File::open(path).unwrap();
    nix::fcntl::posix_fadvise(
        &file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .unwrap();
    drop(file);
    fs::read(path).unwrap()
}

fn write_synced(path: &Path, data: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Waits until the L2 directory holds at least `count` entries (they are written in
/// the background after the reads that offered them).
fn wait_for_entries(dir: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(dir).len() < count {
        assert!(
            Instant::now() < deadline,
            "the L2 cache never got {count} entries ({} there)",
            files_under(dir).len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Flips a payload byte of every entry file under `dir`.
fn damage_entries(dir: &Path) -> usize {
    let files = files_under(dir);
    for file in &files {
        let mut bytes = fs::read(file).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 0x20;
        fs::write(file, &bytes).unwrap();
    }
    files.len()
}

fn metric(addr: &str, key: &str) -> f64 {
    let (status, text) = http_get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    sample(&text, key)
}

#[test]
fn mount_l2_cache_serves_reads_never_stale_and_survives_damage_and_loss() {
    require_fuse!();
    let l2 = tempfile::tempdir().unwrap();
    let l2_base = l2.path().join("l2");
    let addr = free_local_addr();
    let tv = make(&Spec::default());
    let options = [
        "allow_other".to_string(),
        "cache_size=0".to_string(),
        format!("l2_cache={}", l2_base.display()),
        "l2_cache_size=64M".to_string(),
        format!("metrics={addr}"),
    ];
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut m = Mounted::with_options(tv, &options);
    let (a, b, c, d) = (
        pattern(3 << 20, 1),
        pattern(1 << 20, 2),
        pattern(500_000, 3),
        pattern(700_000, 4),
    );
    for (name, data) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        write_synced(&m.path(name), data);
        assert!(read_cold(&m.path(name)) == *data, "{name} as written");
    }
    // 48 + 16 + 8 + 11 stripes of 64 KiB.
    wait_for_entries(&l2_base, 83);
    assert_eq!(metric(&addr, "argosfs_l2_enabled"), 1.0);
    let hits = metric(&addr, "argosfs_l2_hits_total");
    for (name, data) in [("a", &a), ("b", &b), ("c", &c), ("d", &d)] {
        assert!(
            read_cold(&m.path(name)) == *data,
            "{name} from the L2 cache"
        );
    }
    assert!(metric(&addr, "argosfs_l2_hits_total") >= hits + 83.0);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let entries = files_under(&l2_base);
        assert!(entries.iter().all(|f| mode(f) == 0o600));
        let volume_dir = entries[0].parent().unwrap().parent().unwrap();
        assert_eq!(mode(volume_dir), 0o700);
    }

    // Overwrite, truncate, unlink, rename over; each read must see the change.
    let mut a2 = a.clone();
    let patch = pattern(100_000, 9);
    a2[1_000_000..1_100_000].copy_from_slice(&patch);
    {
        let mut f = OpenOptions::new().write(true).open(m.path("a")).unwrap();
        f.seek(SeekFrom::Start(1_000_000)).unwrap();
        f.write_all(&patch).unwrap();
        f.sync_all().unwrap();
    }
    assert!(read_cold(&m.path("a")) == a2, "after an overwrite");
    {
        let f = OpenOptions::new().write(true).open(m.path("b")).unwrap();
        f.set_len(300_000).unwrap();
        f.set_len(1 << 20).unwrap();
        f.sync_all().unwrap();
    }
    let mut b2 = b[..300_000].to_vec();
    b2.resize(1 << 20, 0);
    assert!(
        read_cold(&m.path("b")) == b2,
        "after a truncate and an extension"
    );
    fs::remove_file(m.path("c")).unwrap();
    fs::rename(m.path("d"), m.path("a")).unwrap();
    File::open(&m.mnt).unwrap().sync_all().unwrap();
    assert!(read_cold(&m.path("a")) == d, "after a rename over");
    assert!(!m.path("c").exists());
    assert!(metric(&addr, "argosfs_l2_removals_total") >= 48.0 + 8.0);

    // Remount: the entries serve the reads.
    m.remount();
    assert!(read_cold(&m.path("a")) == d, "after a remount");
    assert!(read_cold(&m.path("b")) == b2, "after a remount");
    assert!(metric(&addr, "argosfs_l2_hits_total") >= 11.0);

    // Mounted: every entry damaged, then the directory deleted.
    assert!(damage_entries(&l2_base) >= 11);
    assert!(
        read_cold(&m.path("a")) == d,
        "entries damaged while mounted"
    );
    assert!(
        read_cold(&m.path("b")) == b2,
        "entries damaged while mounted"
    );
    assert!(metric(&addr, "argosfs_l2_verify_failures_total") >= 11.0);
    fs::remove_dir_all(&l2_base).unwrap();
    assert!(
        read_cold(&m.path("a")) == d,
        "directory deleted while mounted"
    );
    let e = pattern(300_000, 5);
    write_synced(&m.path("e"), &e);
    assert!(
        read_cold(&m.path("e")) == e,
        "written with the directory gone"
    );
    assert!(read_cold(&m.path("b")) == b2);
    assert_eq!(metric(&addr, "argosfs_l2_enabled"), 0.0);
    m.unmount();

    // Unmounted: the directory deleted (it was), then every entry damaged.
    m.mount();
    assert!(
        read_cold(&m.path("a")) == d,
        "directory deleted while unmounted"
    );
    assert!(read_cold(&m.path("e")) == e);
    wait_for_entries(&l2_base, 11 + 5);
    m.unmount();
    assert!(damage_entries(&l2_base) >= 16);
    m.mount();
    assert!(
        read_cold(&m.path("a")) == d,
        "entries damaged while unmounted"
    );
    assert!(
        read_cold(&m.path("e")) == e,
        "entries damaged while unmounted"
    );
    assert!(metric(&addr, "argosfs_l2_verify_failures_total") >= 16.0);
    m.unmount();
    let run = crate::fsck::fsck(&m.tv, &[]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn mount_encrypted_l2_cache_holds_no_plaintext() {
    require_fuse!();
    const MARKER: &[u8] = b"ARGOSFS-PLAINTEXT-MARKER";
    let l2 = tempfile::tempdir().unwrap();
    let tv = make(&Spec {
        encryption: true,
        compression: true,
        ..Spec::default()
    });
    let options = [
        "allow_other".to_string(),
        format!("l2_cache={}", l2.path().display()),
    ];
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut m = Mounted::with_options(tv, &options);
    let mut text = Vec::new();
    for i in 0..40_000u32 {
        text.extend_from_slice(format!("{i:08} ARGOSFS-PLAINTEXT-MARKER, mounted\n").as_bytes());
    }
    write_synced(&m.path("secret.txt"), &text);
    assert!(read_cold(&m.path("secret.txt")) == text);
    let stripes = text.len().div_ceil(64 << 10);
    wait_for_entries(l2.path(), stripes);
    m.remount();
    assert!(read_cold(&m.path("secret.txt")) == text, "after a remount");
    m.unmount();
    let files = files_under(l2.path());
    assert!(files.len() >= stripes);
    for file in files {
        let bytes = fs::read(&file).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "plaintext in {}",
            file.display()
        );
    }
}

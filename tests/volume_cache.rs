//! The RAM and L2 caches through the Volume API: reads served from them are never stale
//! (overwrite, truncate, unlink, rename over, reopen, a crash that hands stripe ids out
//! again), an encrypted volume's L2 holds no plaintext, and a damaged or lost L2
//! directory costs nothing but speed.

use crate::common::{Spec, TestVolume, make, pattern, put_file, read_all, root};
use argosfs::cache::l2::L2Options;
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, RenameFlags, SetAttr, Volume};
use std::path::{Path, PathBuf};

const ROOT: InodeId = InodeId::ROOT;

fn l2_options(dir: &Path) -> L2Options {
    L2Options {
        path: dir.to_path_buf(),
        capacity_bytes: 64 << 20,
    }
}

/// Opens with an L2 cache in `dir` and no RAM cache, so every read that the L2 cache
/// can answer is answered there.
fn open_l2(tv: &TestVolume, dir: &Path) -> Volume {
    Volume::open(
        &tv.root,
        OpenOptions {
            l2: Some(l2_options(dir)),
            cache_bytes: Some(0),
            ..tv.options()
        },
    )
    .unwrap()
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Entry file names (stripe ids) of the volume's L2 directory.
fn entry_names(vol: &Volume) -> Vec<String> {
    let dir = vol.l2_path().expect("an L2 cache");
    files_under(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn lookup(vol: &Volume, name: &[u8]) -> InodeId {
    vol.lookup(&root(), ROOT, name).unwrap().ino
}

fn truncate(vol: &Volume, ino: InodeId, size: u64) {
    vol.setattr(
        &root(),
        ino,
        &SetAttr {
            size: Some(size),
            ..SetAttr::default()
        },
    )
    .unwrap();
}

/// Reads `ino` twice with the L2 writer drained in between: once possibly from the
/// disks, once from whatever the L2 cache then holds; both must be `expected`.
fn check_twice(vol: &Volume, ino: InodeId, expected: &[u8], what: &str) {
    assert!(
        read_all(vol, ino).unwrap() == expected,
        "{what}: first read"
    );
    vol.flush_l2();
    assert!(
        read_all(vol, ino).unwrap() == expected,
        "{what}: second read"
    );
}

fn no_stale_read_with_l2(spec: Spec) {
    let tv = make(&spec);
    let l2_dir = tempfile::tempdir().unwrap();
    let c = root();
    let vol = open_l2(&tv, l2_dir.path());
    let (a, b, cc, d) = (
        pattern(300_000, 1),
        pattern(300_000, 2),
        pattern(300_000, 3),
        pattern(200_000, 4),
    );
    let ia = put_file(&vol, b"a", &a);
    let ib = put_file(&vol, b"b", &b);
    let ic = put_file(&vol, b"c", &cc);
    let id = put_file(&vol, b"d", &d);
    vol.commit().unwrap();
    for (ino, data) in [(ia, &a), (ib, &b), (ic, &cc), (id, &d)] {
        check_twice(&vol, ino, data, "as written");
    }
    let stats = vol.stats().l2;
    assert!(stats.is_enabled);
    // 5 + 5 + 5 + 4 stripes of 64 KiB (the last of each shorter).
    assert_eq!(stats.entries, 19, "{stats:?}");
    assert!(
        stats.hits >= 19,
        "the second reads came from the L2 cache: {stats:?}"
    );
    assert_eq!(entry_names(&vol).len(), 19);

    // Overwrite inside a stripe: that stripe is rewritten, its entry removed.
    let mut a2 = a.clone();
    let patch = pattern(10_000, 9);
    a2[70_000..80_000].copy_from_slice(&patch);
    vol.write(&c, ia, 70_000, &patch).unwrap();
    vol.commit().unwrap();
    check_twice(&vol, ia, &a2, "after an overwrite");
    assert!(vol.stats().l2.removals >= 1);

    // Truncate, then extend: the bytes past the cut read as zeros.
    truncate(&vol, ib, 100_000);
    vol.commit().unwrap();
    truncate(&vol, ib, 300_000);
    vol.commit().unwrap();
    let mut b2 = b[..100_000].to_vec();
    b2.resize(300_000, 0);
    check_twice(&vol, ib, &b2, "after a truncate and an extension");

    // Unlink: its five entries go.
    let before = vol.stats().l2;
    vol.unlink(&c, ROOT, b"c").unwrap();
    vol.commit().unwrap();
    let after = vol.stats().l2;
    assert_eq!(after.removals - before.removals, 5, "{after:?}");
    assert_eq!(after.entries + 5, before.entries);

    // Rename over: the target's old stripes go, the name reads the source's bytes.
    vol.rename(&c, ROOT, b"d", ROOT, b"a", RenameFlags::default())
        .unwrap();
    vol.commit().unwrap();
    check_twice(&vol, lookup(&vol, b"a"), &d, "after a rename over");
    assert_eq!(entry_names(&vol).len() as u64, vol.stats().l2.entries);
    vol.close().unwrap();

    // Reopen: the entries are there and serve the reads.
    let vol = open_l2(&tv, l2_dir.path());
    let kept = vol.stats().l2.entries;
    assert!(kept > 0);
    assert_eq!(read_all(&vol, lookup(&vol, b"a")).unwrap(), d);
    assert_eq!(read_all(&vol, lookup(&vol, b"b")).unwrap(), b2);
    let stats = vol.stats().l2;
    assert!(stats.hits >= 4 + 2, "after reopening: {stats:?}");
    assert_eq!(stats.verify_failures, 0);
    vol.close().unwrap();
    let report = crate::common::fsck_check(&tv);
    assert_eq!(report.errors_found(), 0, "{:#?}", report.findings);
}

#[test]
fn l2_reads_are_never_stale_after_overwrite_truncate_unlink_rename_and_reopen() {
    no_stale_read_with_l2(Spec::default());
}

#[test]
fn l2_reads_are_never_stale_on_a_compressed_encrypted_volume() {
    no_stale_read_with_l2(Spec {
        compression: true,
        encryption: true,
        ..Spec::default()
    });
}

/// After a crash the table's `next_stripe` goes back to its last committed value, so the
/// stripe ids written since are handed out again, to other bytes: their entries are
/// deleted when the volume opens, and the new stripes under the same ids read right.
#[test]
fn a_crash_does_not_serve_a_stale_l2_entry_for_a_reused_stripe_id() {
    for spec in [
        Spec::default(),
        Spec {
            encryption: true,
            ..Spec::default()
        },
    ] {
        let tv = make(&spec);
        let l2_dir = tempfile::tempdir().unwrap();
        let vol = open_l2(&tv, l2_dir.path());
        let a = pattern(200_000, 1);
        let ia = put_file(&vol, b"a", &a);
        vol.commit().unwrap();
        check_twice(&vol, ia, &a, "committed");
        let committed = entry_names(&vol);
        // Four whole stripes, stored at once but never committed, read and cached.
        let b = pattern(4 * 65_536, 2);
        let ib = put_file(&vol, b"b", &b);
        check_twice(&vol, ib, &b, "uncommitted");
        let before_crash = entry_names(&vol);
        assert_eq!(before_crash.len(), committed.len() + 4);
        drop(vol); // the crash: no commit, no close

        let vol = open_l2(&tv, l2_dir.path());
        assert_eq!(vol.stats().l2.dropped_at_open, 4);
        assert_eq!(entry_names(&vol), committed);
        assert_eq!(
            vol.lookup(&root(), ROOT, b"b").unwrap_err().errno(),
            libc::ENOENT
        );
        // The same ids again, other bytes.
        let c = pattern(4 * 65_536, 3);
        let ic = put_file(&vol, b"c", &c);
        vol.commit().unwrap();
        check_twice(&vol, ic, &c, "the reused ids");
        assert_eq!(entry_names(&vol), before_crash, "the ids were reused");
        assert_eq!(read_all(&vol, ia).unwrap(), a);
        assert_eq!(vol.stats().l2.verify_failures, 0);
        vol.close().unwrap();
    }
}

/// Text with a marker that cannot come out of a cipher by chance.
fn marked_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("{i:08} ARGOSFS-PLAINTEXT-MARKER in the L2 cache\n").as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn l2_holds_marker(spec: &Spec) -> (bool, u64) {
    const MARKER: &[u8] = b"ARGOSFS-PLAINTEXT-MARKER";
    let tv = make(spec);
    let l2_dir = tempfile::tempdir().unwrap();
    let vol = open_l2(&tv, l2_dir.path());
    let text = marked_text(400_000);
    let ino = put_file(&vol, b"secret.txt", &text);
    vol.commit().unwrap();
    check_twice(&vol, ino, &text, "marked text");
    // Small reads too (frames of framed stripes, parts of plain ones).
    for at in [1_000u64, 70_000, 200_000, 333_333] {
        let got = vol.read(ino, at, 4096).unwrap();
        assert_eq!(got, text[at as usize..at as usize + 4096]);
    }
    vol.flush_l2();
    let entries = vol.stats().l2.entries;
    vol.close().unwrap();
    let found = files_under(l2_dir.path()).iter().any(|file| {
        let bytes = std::fs::read(file).unwrap();
        bytes.windows(MARKER.len()).any(|w| w == MARKER)
    });
    (found, entries)
}

#[test]
fn an_encrypted_volumes_l2_cache_holds_no_plaintext() {
    // The search finds the marker where it is there to find: a plain volume's entries.
    let (found, entries) = l2_holds_marker(&Spec::default());
    assert!(entries > 0 && found, "the plain volume's L2 holds the text");
    for compression in [false, true] {
        let spec = Spec {
            encryption: true,
            compression,
            ..Spec::default()
        };
        let (found, entries) = l2_holds_marker(&spec);
        assert!(entries >= 7, "entries were written ({entries})");
        assert!(
            !found,
            "plaintext in the L2 cache (compression {compression})"
        );
    }
}

/// Flips one payload byte of every entry file under `dir` (and cuts one short, and
/// garbles one header), returning how many it damaged.
fn damage_entries(dir: &Path) -> usize {
    let files = files_under(dir);
    for (i, file) in files.iter().enumerate() {
        let mut bytes = std::fs::read(file).unwrap();
        match i % 3 {
            0 => {
                let at = bytes.len() - 100;
                bytes[at] ^= 0x40;
            }
            1 => bytes.truncate(bytes.len() / 2),
            _ => bytes[20] ^= 1,
        }
        std::fs::write(file, &bytes).unwrap();
    }
    files.len()
}

#[test]
fn a_damaged_or_lost_l2_directory_costs_nothing_but_speed() {
    let tv = make(&Spec::default());
    let l2_dir = tempfile::tempdir().unwrap();
    let data = pattern(600_000, 5);
    let small = pattern(50_000, 6);
    let ino = {
        let vol = open_l2(&tv, l2_dir.path());
        let ino = put_file(&vol, b"f", &data);
        put_file(&vol, b"small", &small);
        vol.commit().unwrap();
        check_twice(&vol, ino, &data, "populating");
        check_twice(&vol, lookup(&vol, b"small"), &small, "populating");
        vol.close().unwrap();
        ino
    };
    let read_both = |vol: &Volume, what: &str| {
        assert!(read_all(vol, ino).unwrap() == data, "{what}");
        let got = vol.read(ino, 123_456, 10_000).unwrap();
        assert!(got == data[123_456..133_456], "{what}: a small read");
        assert!(
            read_all(vol, lookup(vol, b"small")).unwrap() == small,
            "{what}"
        );
    };

    // Unmounted: every entry damaged.
    assert!(damage_entries(l2_dir.path()) >= 10);
    let vol = open_l2(&tv, l2_dir.path());
    read_both(&vol, "entries damaged while closed");
    let stats = vol.stats().l2;
    assert!(stats.verify_failures >= 10, "{stats:?}");
    vol.flush_l2();
    read_both(&vol, "entries rewritten");
    assert!(vol.stats().l2.hits > 0);
    vol.close().unwrap();

    // Unmounted: the whole directory gone.
    std::fs::remove_dir_all(l2_dir.path()).unwrap();
    let vol = open_l2(&tv, l2_dir.path());
    read_both(&vol, "directory deleted while closed");
    vol.flush_l2();
    assert!(vol.stats().l2.is_enabled && vol.stats().l2.entries > 0);

    // Mounted: every entry damaged, then the directory deleted.
    assert!(damage_entries(l2_dir.path()) >= 10);
    read_both(&vol, "entries damaged while open");
    assert!(vol.stats().l2.verify_failures >= 10);
    vol.flush_l2();
    std::fs::remove_dir_all(l2_dir.path()).unwrap();
    read_both(&vol, "directory deleted while open");
    vol.flush_l2();
    let stats = vol.stats().l2;
    assert!(
        !stats.is_enabled,
        "the lost directory turned the cache off: {stats:?}"
    );
    assert!(stats.errors >= 1);
    let more = pattern(100_000, 7);
    let other = put_file(&vol, b"g", &more);
    vol.commit().unwrap();
    check_twice(&vol, other, &more, "written with the cache off");
    assert!(!l2_dir.path().exists(), "nothing wrote it back");
    vol.close().unwrap();

    // Unmounted: a file where the volume's directory was: no L2 cache, reads go on.
    let volume_dir = l2_dir.path().join(tv_volume_id(&tv));
    std::fs::create_dir_all(l2_dir.path()).unwrap();
    std::fs::write(&volume_dir, b"not a directory").unwrap();
    let vol = open_l2(&tv, l2_dir.path());
    assert!(!vol.stats().l2.is_enabled);
    assert!(vol.l2_path().is_none());
    read_both(&vol, "the directory unusable");
    vol.close().unwrap();
}

fn tv_volume_id(tv: &TestVolume) -> String {
    argosfs::volume::Superblock::load(&tv.root)
        .unwrap()
        .volume
        .to_string()
}

/// A hot plain file is served from the RAM cache from its third read on: the first
/// read goes straight to the shards (no copy), the second finds its stripes among the
/// cache's ghosts and caches them whole, the third copies from RAM.
#[test]
fn a_hot_file_is_read_from_ram_and_a_scan_does_not_push_it_out() {
    let tv = make(&Spec::default());
    let vol = Volume::open(
        &tv.root,
        OpenOptions {
            cache_bytes: Some(2 << 20),
            ..tv.options()
        },
    )
    .unwrap();
    let hot = pattern(300_000, 1);
    let ino = put_file(&vol, b"hot", &hot);
    let big = pattern(8 << 20, 2);
    let scan = put_file(&vol, b"scan", &big);
    vol.commit().unwrap();
    assert_eq!(read_all(&vol, ino).unwrap(), hot);
    assert_eq!(vol.stats().cache.entries, 0, "read once: not copied");
    assert_eq!(read_all(&vol, ino).unwrap(), hot);
    assert_eq!(vol.stats().cache.entries, 5, "read again: cached whole");
    // A scan four times the cache's size, read in 128 KiB requests.
    for at in (0..big.len()).step_by(128 << 10) {
        let got = vol.read(scan, at as u64, 128 << 10).unwrap();
        assert!(got == big[at..(at + (128 << 10)).min(big.len())]);
    }
    let before = vol.stats().cache;
    assert_eq!(read_all(&vol, ino).unwrap(), hot);
    let after = vol.stats().cache;
    assert_eq!(after.hits - before.hits, 5, "{after:?}");
    assert_eq!(after.misses, before.misses);
    assert!(after.bytes <= 2 << 20);
    vol.close().unwrap();
}

/// Small reads of a framed stripe open only their frames, however often they come (a
/// whole decode for each would cost random reads over a large file dearly); a stripe
/// read again in parts of a quarter of it or more is decoded whole into the RAM cache,
/// and later small reads open nothing.
#[test]
fn small_reads_of_a_hot_framed_stripe_end_up_in_the_ram_cache() {
    let tv = make(&Spec {
        encryption: true,
        compression: true,
        stripe_bytes: 1 << 20,
        ..Spec::default()
    });
    let vol = tv.open();
    let data = pattern(1 << 20, 3);
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap();
    let read_at = |at: usize, len: usize| {
        let got = vol.read(ino, at as u64, len).unwrap();
        assert!(got == data[at..at + len]);
    };
    for at in [100_000, 500_000, 100_000] {
        read_at(at, 4096);
    }
    let small = vol.stats();
    assert!(small.frames_decoded >= 3);
    assert_eq!(small.cache.entries, 0, "small reads are never widened");
    read_at(0, 300_000);
    assert_eq!(
        vol.stats().cache.entries,
        0,
        "a large part read once: not copied"
    );
    read_at(600_000, 300_000);
    let second = vol.stats();
    assert_eq!(second.cache.entries, 1, "decoded whole");
    for at in [700_000, 4_096, 900_000] {
        read_at(at, 4096);
    }
    let last = vol.stats();
    assert_eq!(last.frames_decoded, second.frames_decoded);
    assert_eq!(last.cache.hits - second.cache.hits, 3);
    vol.close().unwrap();
}

//! Small files packed together (issue 12): many small files in one stripe, read back
//! through every path, freed and repacked as they are deleted, durable when fsynced.

use crate::common::{self, Spec, pattern, put_file, read_all, root};
use argosfs::fsck::Kind;
use argosfs::types::InodeId;
use argosfs::volume::{SetAttr, Volume};

/// 4+2 with 64 KiB stripes: files of 2 KiB (inline) to 16 KiB are packed.
fn spec() -> Spec {
    Spec::layout(4, 2)
}

/// Shard objects on all disks (the volume closed).
fn shard_count(tv: &common::TestVolume) -> usize {
    (0..tv.disks.len()).map(|i| tv.shard_files(i).len()).sum()
}

fn name(i: usize) -> Vec<u8> {
    format!("f{i}").into_bytes()
}

/// Creates `count` files of `len` bytes (contents seeded by their number), closing each.
fn put_files(vol: &Volume, count: usize, len: usize) -> Vec<(InodeId, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let data = pattern(len, i as u64);
            let ino = put_file(vol, &name(i), &data);
            vol.release_file(ino).unwrap();
            (ino, data)
        })
        .collect()
}

fn assert_reads(vol: &Volume, files: &[(InodeId, Vec<u8>)]) {
    for (ino, data) in files {
        assert_eq!(&read_all(vol, *ino).unwrap(), data, "inode {ino}");
    }
}

fn assert_fsck_clean(tv: &common::TestVolume) {
    let report = common::fsck_check(tv);
    let errors: Vec<_> = report.findings.iter().filter(|f| f.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn issue_12_small_files_share_stripes_and_read_back_after_reopen() {
    let tv = common::make(&spec());
    let vol = tv.open();
    let files = put_files(&vol, 48, 4096);
    assert_reads(&vol, &files); // from the buffers, before any commit
    vol.commit().unwrap();
    let stats = vol.stats();
    assert_eq!(stats.files_packed, 48);
    // 48 x 4 KiB is 192 KiB: three 64 KiB pack stripes, not 48 stripes.
    assert_eq!(stats.stripes_written, 3, "{stats:?}");
    assert_reads(&vol, &files);
    vol.close().unwrap();
    assert_eq!(shard_count(&tv), 3 * 6);
    let vol = tv.open();
    assert_reads(&vol, &files);
    let st = vol.getattr(files[0].0).unwrap();
    assert_eq!((st.size, st.blocks), (4096, 8));
    vol.close().unwrap();
    assert_fsck_clean(&tv);
}

#[test]
fn issue_12_deleting_packed_files_frees_their_pack_stripes() {
    let tv = common::make(&spec());
    let vol = tv.open();
    let files = put_files(&vol, 32, 4096);
    vol.commit().unwrap();
    for i in 0..files.len() {
        vol.unlink(&root(), InodeId::ROOT, &name(i)).unwrap();
    }
    vol.close().unwrap();
    assert_eq!(shard_count(&tv), 0, "every pack stripe was freed");
    assert_fsck_clean(&tv);
}

#[test]
fn issue_12_mostly_deleted_pack_stripes_are_packed_anew() {
    let tv = common::make(&spec());
    let vol = tv.open();
    // Four pack stripes of sixteen 4 KiB files each.
    let files = put_files(&vol, 64, 4096);
    vol.commit().unwrap();
    assert_eq!(vol.stats().stripes_written, 4);
    // Keep one file in each: every pack stripe is then 1/16 used.
    let mut kept = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        if i % 16 == 0 {
            kept.push(file);
        } else {
            vol.unlink(&root(), InodeId::ROOT, &name(i)).unwrap();
        }
    }
    vol.commit().unwrap();
    assert_eq!(
        vol.stats().files_packed,
        64 + 4,
        "the four kept files moved"
    );
    assert_reads(&vol, &kept);
    vol.close().unwrap();
    assert_eq!(shard_count(&tv), 6, "one pack stripe left");
    let vol = tv.open();
    assert_reads(&vol, &kept);
    vol.close().unwrap();
    assert_fsck_clean(&tv);
}

#[test]
fn issue_12_packed_files_change_like_any_file() {
    let tv = common::make(&spec());
    let vol = tv.open();
    let c = root();
    let mut files = put_files(&vol, 6, 5000);
    vol.commit().unwrap();
    // Overwrite inside one, truncate another, grow a third past the pack size, append
    // to a fourth: each change reads back at once, after a commit and after a reopen.
    let patch = pattern(700, 99);
    vol.write(&c, files[0].0, 1000, &patch).unwrap();
    files[0].1[1000..1700].copy_from_slice(&patch);
    let shorter = SetAttr {
        size: Some(100),
        ..SetAttr::default()
    };
    vol.setattr(&c, files[1].0, &shorter).unwrap();
    files[1].1.truncate(100);
    let big = pattern(100_000, 7);
    vol.write(&c, files[2].0, 0, &big).unwrap();
    files[2].1 = big;
    let tail = pattern(3000, 8);
    vol.write(&c, files[3].0, 5000, &tail).unwrap();
    files[3].1.extend_from_slice(&tail);
    let longer = SetAttr {
        size: Some(9000),
        ..SetAttr::default()
    };
    vol.setattr(&c, files[4].0, &longer).unwrap();
    files[4].1.resize(9000, 0);
    assert_reads(&vol, &files);
    vol.commit().unwrap();
    assert_reads(&vol, &files);
    vol.close().unwrap();
    let vol = tv.open();
    assert_reads(&vol, &files);
    vol.close().unwrap();
    assert_fsck_clean(&tv);
}

#[test]
fn issue_12_a_small_read_of_an_encrypted_packed_file_opens_only_its_frames() {
    let tv = common::make(&Spec {
        compression: true,
        encryption: true,
        stripe_bytes: 256 << 10,
        ..spec()
    });
    let vol = tv.open();
    let files = put_files(&vol, 40, 6000);
    vol.close().unwrap();
    let vol = tv.open();
    assert_eq!(read_all(&vol, files[17].0).unwrap(), files[17].1);
    let stats = vol.stats();
    assert_eq!(stats.stripes_read, 0, "no whole stripe decoded: {stats:?}");
    assert!(stats.frames_decoded >= 1 && stats.frames_decoded <= 2);
    assert_reads(&vol, &files);
    vol.close().unwrap();
    assert_fsck_clean(&tv);
}

#[test]
fn issue_12_packed_files_read_back_with_a_shard_of_their_pack_stripe_gone() {
    let tv = common::make(&spec());
    let vol = tv.open();
    let files = put_files(&vol, 12, 4096);
    vol.close().unwrap();
    for shard in tv.shard_files(0) {
        shard.remove();
    }
    let vol = tv.open();
    assert_reads(&vol, &files);
    assert!(vol.stats().degraded_reads > 0);
    vol.close().unwrap();
}

#[test]
fn issue_12_an_fsync_that_cannot_pack_keeps_the_bytes_and_a_later_one_stores_them() {
    let tv = common::make(&spec());
    let (vol, faults) = tv.open_faulty();
    let files = put_files(&vol, 5, 4096);
    for disk in faults.lock().unwrap().values() {
        disk.fail_next_puts(1000, libc::ENOSPC);
    }
    let err = vol.fsync(files[2].0).unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert_reads(&vol, &files);
    for disk in faults.lock().unwrap().values() {
        disk.clear();
    }
    vol.fsync(files[2].0).unwrap();
    assert_eq!(vol.stats().files_packed, 5);
    vol.close().unwrap();
    let vol = tv.open();
    assert_reads(&vol, &files);
    vol.close().unwrap();
    let report = common::fsck_check(&tv);
    let worse: Vec<_> = (report.findings.iter())
        .filter(|f| f.is_error() && f.kind != Kind::OrphanShard)
        .collect();
    assert!(worse.is_empty(), "{worse:#?}");
}

#[test]
fn issue_12_fsck_names_every_packed_file_a_lost_pack_stripe_takes() {
    let tv = common::make(&spec());
    let vol = tv.open();
    put_files(&vol, 3, 4096);
    vol.close().unwrap();
    for disk in 0..3 {
        for shard in tv.shard_files(disk) {
            shard.remove();
        }
    }
    let report = common::fsck_check(&tv);
    let lost: Vec<_> = (report.findings.iter())
        .filter(|f| f.kind == Kind::DataLoss)
        .collect();
    assert_eq!(lost.len(), 1, "{:#?}", report.findings);
    assert_eq!(lost[0].paths, vec!["/f0", "/f1", "/f2"]);
}

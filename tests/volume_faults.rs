//! Failure paths: missing disks, corrupt shards, crashes, torn journals, full disks,
//! wrong passphrases.

use crate::common::{self, Spec, pattern, put_file, read_all, root};
use argosfs::Error;
use argosfs::types::{DiskId, InodeId};
use argosfs::volume::{OpenOptions, Volume};
use std::sync::Arc;

fn files(vol: &Volume, count: u64) -> Vec<(InodeId, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let data = pattern(30_000 + (i as usize) * 7_777, i);
            (put_file(vol, format!("f{i}").as_bytes(), &data), data)
        })
        .collect()
}

#[test]
fn reads_survive_m_lost_disks_and_fail_cleanly_beyond() {
    for (k, m) in [(2u8, 1u8), (4, 2)] {
        for encryption in [false, true] {
            let tv = common::make(&Spec {
                encryption,
                stripe_bytes: 16 << 10,
                ..Spec::layout(k, m)
            });
            let written = {
                let vol = tv.open();
                let written = files(&vol, 5);
                vol.close().unwrap();
                written
            };
            for lost in 0..usize::from(m) {
                std::fs::remove_dir_all(&tv.disks[lost]).unwrap();
            }
            let vol = tv.open();
            assert_eq!(vol.unavailable_disks().len(), usize::from(m));
            for (ino, data) in &written {
                assert_eq!(
                    &read_all(&vol, *ino).unwrap(),
                    data,
                    "{k}+{m} enc={encryption}"
                );
            }
            assert!(vol.stats().degraded_reads > 0);
            drop(vol);
            std::fs::remove_dir_all(&tv.disks[usize::from(m)]).unwrap();
            let vol = tv.open();
            let err = read_all(&vol, written[0].0).unwrap_err();
            assert!(matches!(err, Error::Unrecoverable { .. }), "{err}");
            assert_eq!(err.errno(), libc::EIO);
            assert!(
                err.to_string().contains("stripe s"),
                "names the stripe: {err}"
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_a_shard_is_detected_and_reconstructed() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let data = pattern(16 << 10, 5);
    let ino = {
        let vol = tv.open();
        let ino = put_file(&vol, b"f", &data);
        vol.close().unwrap();
        ino
    };
    let shard = tv
        .shard_files(0)
        .pop()
        .or_else(|| tv.shard_files(1).pop())
        .unwrap();
    let bytes = shard.read();
    let mid = bytes.len() / 2;
    shard.overwrite_at(mid as u64, &[bytes[mid] ^ 0x01]);
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    assert_eq!(vol.stats().degraded_reads, 1);
    assert_eq!(vol.stats().shard_errors, 1);
}

#[test]
fn encrypted_stripe_damaged_beyond_repair_is_eio_never_garbage() {
    let tv = common::make(&Spec {
        encryption: true,
        stripe_bytes: 16 << 10,
        ..Spec::layout(2, 1)
    });
    let data = pattern(16 << 10, 6);
    let ino = {
        let vol = tv.open();
        let ino = put_file(&vol, b"f", &data);
        vol.close().unwrap();
        ino
    };
    for disk in 0..2 {
        for shard in tv.shard_files(disk) {
            let bytes = shard.read();
            let mid = bytes.len() / 2;
            shard.overwrite_at(mid as u64, &[bytes[mid] ^ 0x80]);
        }
    }
    let vol = tv.open();
    let err = read_all(&vol, ino).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
}

#[test]
fn a_moved_shard_fails_authentication() {
    // Two files whose stripes sit at the same positions: swapping their shard payloads
    // (headers rewritten to match) must not let one file read the other's bytes.
    let tv = common::make(&Spec {
        encryption: true,
        stripe_bytes: 16 << 10,
        ..Spec::layout(1, 0)
    });
    let (a, b) = {
        let vol = tv.open();
        let a = put_file(&vol, b"a", &pattern(16 << 10, 1));
        let b = put_file(&vol, b"b", &pattern(16 << 10, 2));
        vol.close().unwrap();
        (a, b)
    };
    let shards = tv.shard_files(0);
    assert_eq!(shards.len(), 2);
    // Decode both, swap payloads, re-encode with the other's header.
    let vol_id = argosfs::volume::Superblock::load(&tv.root).unwrap().volume;
    let objs: Vec<_> = shards
        .iter()
        .map(|p| {
            argosfs::store::shard::decode_shard("t", p.read(), Some(vol_id))
                .unwrap()
                .0
        })
        .collect();
    for (i, path) in shards.iter().enumerate() {
        let other = &objs[1 - i];
        let disk = argosfs::store::MemDisk::new("swap", 1 << 30);
        let key = argosfs::types::ShardKey {
            stripe: objs[i].header.stripe,
            index: objs[i].header.index,
        };
        argosfs::store::shard::write_shard(&disk, vol_id, &objs[i].header, other.payload())
            .unwrap();
        path.write(&argosfs::store::Disk::get_shard(&disk, key).unwrap());
    }
    let vol = tv.open();
    for ino in [a, b] {
        let err = read_all(&vol, ino).unwrap_err();
        assert!(matches!(err, Error::Integrity { .. }), "{err}");
    }
}

#[test]
fn fsynced_data_survives_a_crash_and_unsynced_changes_vanish_whole() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let c = root();
    let (ino, data) = {
        let vol = tv.open();
        let data = pattern(100_000, 11);
        let ino = put_file(&vol, b"durable", &data);
        vol.fsync(ino).unwrap();
        // Not fsynced: lost in the crash, the file keeps its committed state.
        vol.write(&c, ino, 0, &pattern(50_000, 12)).unwrap();
        vol.create(&c, InodeId::ROOT, b"lost", 0o644).unwrap();
        drop(vol); // no close: a crash
        (ino, data)
    };
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    assert!(vol.lookup(&c, InodeId::ROOT, b"lost").is_err());
    assert!(vol.open_report().replayed_records >= 1);
}

#[test]
fn a_torn_journal_tail_is_reported_and_not_applied() {
    let tv = common::make(&Spec::default());
    let c = root();
    {
        let vol = tv.open();
        put_file(&vol, b"first", b"1");
        vol.commit().unwrap();
        put_file(&vol, b"second", b"2");
        vol.commit().unwrap();
        drop(vol);
    }
    let journal = tv.root.join("meta/journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.set_len(len - 7).unwrap(); // cut the second record in the middle
    drop(file);
    let vol = tv.open();
    let torn = vol
        .open_report()
        .torn_tail
        .as_ref()
        .expect("torn tail reported");
    assert!(torn.bytes > 0);
    assert!(vol.lookup(&c, InodeId::ROOT, b"first").is_ok());
    assert!(vol.lookup(&c, InodeId::ROOT, b"second").is_err());
    // The volume stays usable after the tail was cut.
    put_file(&vol, b"third", b"3");
    vol.close().unwrap();
    let vol = tv.open();
    assert!(vol.open_report().torn_tail.is_none());
    assert!(vol.lookup(&c, InodeId::ROOT, b"third").is_ok());
}

#[test]
fn enospc_on_one_disk_fails_fsync_cleanly_and_keeps_old_content() {
    // Full chunks are stored in the writer's thread, then handed to the pool (the mount).
    for write_behind in [false, true] {
        enospc_case(write_behind);
    }
}

fn enospc_case(write_behind: bool) {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let open = || {
        let (vol, faults) = tv.open_faulty();
        let vol = Arc::new(vol);
        if write_behind {
            vol.enable_write_behind();
        }
        (vol, faults)
    };
    let (vol, faults) = open();
    let c = root();
    let old = pattern(40_000, 21);
    let ino = put_file(&vol, b"f", &old);
    let other = put_file(&vol, b"other", b"unrelated");
    vol.commit().unwrap();
    let shard_count = || (0..6).map(|i| tv.shard_files(i).len()).sum::<usize>();
    let shards_before = shard_count();
    faults.lock().unwrap()[&DiskId(3)].fail_puts_after(0, libc::ENOSPC);
    // Like a page cache, the write is taken into memory; storing it fails later.
    let new = pattern(40_000, 22);
    vol.write(&c, ino, 0, &new).unwrap();
    assert_eq!(
        read_all(&vol, ino).unwrap(),
        new,
        "buffered bytes are visible"
    );
    let err = vol.fsync(ino).unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert_eq!(vol.flush(ino).unwrap_err().errno(), libc::ENOSPC);
    assert_eq!(read_all(&vol, ino).unwrap(), new, "still buffered");
    // Other files (this one small enough to live inline) still commit: one file's
    // unstorable data does not block the volume.
    vol.write(&c, other, 0, b"still committed").unwrap();
    vol.fsync(other).unwrap();
    assert_eq!(shard_count(), shards_before, "partial stripes removed");
    // Never stored, never committed: after a crash the file has its old content.
    drop(vol);
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), old);
    assert_eq!(read_all(&vol, other).unwrap(), b"still committed");
    drop(vol);
    // Once the disk has room again, the same buffered write stores and commits.
    let (vol, faults) = open();
    faults.lock().unwrap()[&DiskId(3)].fail_puts_after(0, libc::ENOSPC);
    vol.write(&c, ino, 0, &new).unwrap();
    assert_eq!(vol.fsync(ino).unwrap_err().errno(), libc::ENOSPC);
    faults.lock().unwrap()[&DiskId(3)].clear();
    vol.fsync(ino).unwrap();
    drop(faults);
    common::close_shared(vol);
    assert_eq!(read_all(&tv.open(), ino).unwrap(), new);
}

#[test]
fn a_disk_failing_writes_is_avoided() {
    let tv = common::make(&Spec {
        disks: 7,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let (vol, faults) = tv.open_faulty();
    faults.lock().unwrap()[&DiskId(2)].set_vanished(true);
    let data = pattern(200_000, 31);
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap_or_else(|e| panic!("commit: {e}"));
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    assert!(tv.shard_files(2).is_empty());
}

#[test]
fn wrong_or_missing_passphrase_is_refused_and_nothing_written() {
    let tv = common::make(&Spec {
        encryption: true,
        ..Spec::default()
    });
    let before = std::fs::read(tv.root.join("meta/journal")).unwrap();
    let wrong = OpenOptions {
        passphrase: Some(b"wrong".to_vec()),
        ..OpenOptions::default()
    };
    let err = Volume::open(&tv.root, wrong).err().expect("refused");
    assert!(matches!(err, Error::WrongPassphrase), "{err}");
    assert!(err.to_string().contains("passphrase"));
    let err = Volume::open(&tv.root, OpenOptions::default())
        .err()
        .expect("refused");
    assert!(matches!(err, Error::PassphraseRequired), "{err}");
    assert_eq!(std::fs::read(tv.root.join("meta/journal")).unwrap(), before);
    tv.open().close().unwrap();
}

#[test]
fn a_disk_with_another_volumes_label_is_not_used() {
    let a = common::make(&Spec::layout(2, 1));
    let b = common::make(&Spec::layout(2, 1));
    let data = pattern(50_000, 41);
    let ino = {
        let vol = a.open();
        let ino = put_file(&vol, b"f", &data);
        vol.close().unwrap();
        ino
    };
    std::fs::remove_dir_all(&a.disks[0]).unwrap();
    copy_dir(&b.disks[0], &a.disks[0]);
    let vol = a.open();
    assert_eq!(vol.unavailable_disks().len(), 1);
    assert!(vol.unavailable_disks()[0].1.contains("volume"));
    assert_eq!(read_all(&vol, ino).unwrap(), data);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_journal_write_failure_makes_the_volume_read_only() {
    // The metadata lives on a tiny tmpfs, so the journal hits a real ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let Some(_tmpfs) = common::Tmpfs::mount(&root, "256k") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        return;
    };
    let disks: Vec<_> = (0..3).map(|i| dir.path().join(format!("d{i}"))).collect();
    let options = argosfs::volume::FormatOptions {
        disks: disks
            .iter()
            .enumerate()
            .map(|(i, p)| {
                argosfs::volume::DiskConfig::parse(DiskId(i as u16), p.to_str().unwrap()).unwrap()
            })
            .collect(),
        layout: Some((2, 1)),
        ..argosfs::volume::FormatOptions::default()
    };
    argosfs::volume::format(&root, options).unwrap();
    let vol = Volume::open(&root, OpenOptions::default()).unwrap();
    let c = root_caller();
    let mut failure = None;
    for i in 0..2000 {
        let name = format!("file-with-a-long-name-to-fill-the-journal-{i:05}");
        let ino = vol
            .create(&c, InodeId::ROOT, name.as_bytes(), 0o644)
            .unwrap()
            .ino;
        vol.setxattr(&c, ino, b"user.pad", &[7u8; 1024], 0).unwrap();
        if let Err(e) = vol.commit() {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("a 256 KiB journal filesystem fills up");
    assert_eq!(failure.errno(), libc::ENOSPC, "{failure}");
    let err = vol.create(&c, InodeId::ROOT, b"after", 0o644).unwrap_err();
    assert_eq!(err.errno(), libc::EROFS, "{err}");
    assert!(err.to_string().contains("journal"));
    drop(vol);
}

fn root_caller() -> argosfs::volume::Caller {
    root()
}

#[test]
fn small_reads_take_one_shard_and_fall_back_to_parity_when_it_is_bad() {
    let tv = common::make(&Spec {
        stripe_bytes: 64 << 10,
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let data = pattern(64 << 10, 51);
    let ino = {
        let vol = tv.open();
        let ino = put_file(&vol, b"f", &data);
        vol.close().unwrap();
        ino
    };
    let options = OpenOptions {
        cache_bytes: Some(0),
        ..tv.options()
    };
    let vol = Volume::open(&tv.root, options.clone()).unwrap();
    assert_eq!(vol.read(ino, 5000, 3000).unwrap(), &data[5000..8000]);
    assert_eq!(
        vol.stats().stripes_read,
        0,
        "served from one shard's blocks"
    );
    drop(vol);
    // Damage the data shard that holds offset 5000 (shard 0): the small read's block
    // check fails and it falls back to a full read that reconstructs from parity.
    let mut damaged = 0;
    for disk in 0..6 {
        for (path, index) in tv.indexed_shard_files(disk) {
            if index == 0 {
                common::flip_payload_byte(&path, 5000);
                damaged += 1;
            }
        }
    }
    assert_eq!(damaged, 1);
    let vol = Volume::open(&tv.root, options).unwrap();
    assert_eq!(vol.read(ino, 5000, 3000).unwrap(), &data[5000..8000]);
    assert_eq!(vol.stats().degraded_reads, 1);
}

#[test]
fn whole_stripe_reads_rebuild_lost_data_shards_in_place() {
    let tv = common::make(&Spec {
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let stripe = 64 << 10;
    // Six whole stripes and a short last one (that one takes the whole-stripe decode).
    let data = pattern(6 * stripe + 1000, 77);
    let ino = {
        let vol = tv.open();
        let ino = put_file(&vol, b"f", &data);
        vol.close().unwrap();
        ino
    };
    // One disk gone, and a flipped payload byte in a data shard on another disk: every
    // stripe misses one or two shards, some of them data shards.
    std::fs::remove_dir_all(&tv.disks[3]).unwrap();
    let (data_shard, _) = tv
        .indexed_shard_files(0)
        .into_iter()
        .find(|(_, index)| *index < 4)
        .unwrap();
    common::flip_payload_byte(&data_shard, 100);
    let options = OpenOptions {
        cache_bytes: Some(0),
        ..tv.options()
    };
    let vol = Volume::open(&tv.root, options).unwrap();
    // Stripe-sized reads into one reused buffer of stale bytes, as the mount does.
    let mut buf = vec![0xa5u8; stripe];
    for (i, want) in data.chunks(stripe).enumerate() {
        let n = vol.read_into(ino, (i * stripe) as u64, &mut buf).unwrap();
        assert_eq!(n, want.len());
        assert!(&buf[..n] == want, "stripe {i}");
    }
    let stats = vol.stats();
    assert!(stats.degraded_reads >= 4, "{stats:?}");
    assert!(stats.shard_errors >= 4, "{stats:?}");
    // Past M lost disks a whole-stripe read fails with EIO naming the stripe.
    drop(vol);
    std::fs::remove_dir_all(&tv.disks[4]).unwrap();
    std::fs::remove_dir_all(&tv.disks[5]).unwrap();
    let vol = tv.open();
    let err = vol.read_into(ino, 0, &mut buf).unwrap_err();
    assert!(matches!(err, Error::Unrecoverable { .. }), "{err}");
}

#[test]
fn a_rebuilt_stripe_shortened_by_truncate_reads_zeros_past_its_end() {
    let tv = common::make(&Spec {
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let stripe = 64 << 10;
    let data = pattern(stripe, 5);
    let ino = {
        let vol = tv.open();
        let ino = put_file(&vol, b"f", &data);
        // Shorten within the stripe (kept, its length cut), then grow back over the cut.
        for size in [10_000u64, stripe as u64] {
            let set = argosfs::volume::SetAttr {
                size: Some(size),
                ..Default::default()
            };
            vol.setattr(&root(), ino, &set).unwrap();
        }
        vol.close().unwrap();
        ino
    };
    // The disk holding data shard 0 goes, so the read rebuilds the whole stripe.
    let holder = (0..6)
        .find(|&d| tv.indexed_shard_files(d).iter().any(|(_, i)| *i == 0))
        .unwrap();
    std::fs::remove_dir_all(&tv.disks[holder]).unwrap();
    let vol = tv.open();
    let mut buf = vec![0xa5u8; stripe];
    assert_eq!(vol.read_into(ino, 0, &mut buf).unwrap(), stripe);
    assert!(buf[..10_000] == data[..10_000]);
    assert!(
        buf[10_000..].iter().all(|&b| b == 0),
        "old bytes past the cut"
    );
    assert!(vol.stats().degraded_reads > 0);
}

/// The table of a closed volume, read-only.
fn table_of(tv: &common::TestVolume) -> argosfs::meta::Table {
    let vol = tv
        .open_with(OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    let sb = argosfs::volume::Superblock::load(&tv.root).unwrap();
    drop(vol);
    let codec = sb.keys(tv.passphrase.as_deref()).unwrap().meta;
    let (store, _) = argosfs::meta::MetaStore::open(&tv.root.join("meta"), codec, false).unwrap();
    store.table().clone()
}

#[test]
fn issue_10_writes_go_on_degraded_with_a_disk_lost_and_stay_readable() {
    for encryption in [false, true] {
        let tv = common::make(&Spec {
            encryption,
            compression: encryption,
            stripe_bytes: 16 << 10,
            ..Spec::default()
        });
        let before = {
            let vol = tv.open();
            let written = files(&vol, 2);
            vol.close().unwrap();
            written
        };
        std::fs::remove_dir_all(&tv.disks[3]).unwrap();
        let vol = tv.open();
        let data = pattern(100_000, 41);
        let ino = put_file(&vol, b"while-degraded", &data);
        vol.commit().unwrap();
        assert!(vol.stats().degraded_writes >= 7, "{:?}", vol.stats());
        assert_eq!(read_all(&vol, ino).unwrap(), data);
        vol.close().unwrap();

        // The stripes record the shard they lack, and the table lists them for heal.
        let table = table_of(&tv);
        let chunks = &table.chunks[&ino];
        for chunk in chunks.values() {
            let argosfs::meta::Chunk::Stripe(s) = chunk else {
                panic!("stripes expected")
            };
            assert!(s.is_degraded(), "{s:?}");
            assert_eq!(
                s.unwritten().collect::<Vec<_>>(),
                vec![5],
                "parity is left out"
            );
            assert!(!s.uses(DiskId(3)));
            assert!(table.degraded.contains_key(&s.id));
        }
        assert_eq!(table.degraded.len(), chunks.len());

        // One more disk lost still reads everything: the degraded stripes had 5 of 6.
        std::fs::remove_dir_all(&tv.disks[0]).unwrap();
        let vol = tv.open();
        assert_eq!(read_all(&vol, ino).unwrap(), data, "enc={encryption}");
        for (old, bytes) in &before {
            assert_eq!(&read_all(&vol, *old).unwrap(), bytes);
        }
        vol.close().unwrap();
    }
}

#[test]
fn issue_10_below_min_shards_writes_fail_with_eio_and_reads_go_on() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let (old, old_data) = {
        let vol = tv.open();
        let data = pattern(70_000, 5);
        let ino = put_file(&vol, b"old", &data);
        vol.close().unwrap();
        (ino, data)
    };
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    std::fs::remove_dir_all(&tv.disks[4]).unwrap();
    let vol = tv.open();
    let c = root();
    let file = vol.create(&c, InodeId::ROOT, b"new", 0o644).unwrap().ino;
    vol.write(&c, file, 0, &pattern(50_000, 6)).unwrap();
    let err = vol.fsync(file).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFewDisks {
                need: 5,
                have: 4,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), libc::EIO);
    let text = err.to_string();
    assert!(
        text.contains("disk d1") && text.contains("disk d4"),
        "{text}"
    );
    // Reads go on, and what was stored is unharmed.
    assert_eq!(read_all(&vol, old).unwrap(), old_data);
    drop(vol);

    // min_shards = k (asked for explicitly) lets writes go on without redundancy.
    let vol = tv
        .open_with(OpenOptions {
            min_shards: Some(4),
            ..tv.options()
        })
        .unwrap();
    let data = pattern(50_000, 7);
    let ino = put_file(&vol, b"unprotected", &data);
    vol.commit().unwrap();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    assert_eq!(read_all(&vol, old).unwrap(), old_data);
    drop(vol);
    // An impossible override is refused with a message.
    let err = tv
        .open_with(OpenOptions {
            min_shards: Some(3),
            ..tv.options()
        })
        .err()
        .unwrap();
    assert!(err.to_string().contains("min_shards 3"), "{err}");
}

#[test]
fn issue_10_a_failing_disk_mid_write_is_left_out_and_counted() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let (vol, faults) = tv.open_faulty();
    faults.lock().unwrap()[&DiskId(2)].fail_puts_after(1, libc::EIO);
    let data = pattern(200_000, 8);
    let ino = put_file(&vol, b"f", &data);
    vol.commit().unwrap();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    let stats = vol.stats();
    assert!(stats.shard_write_failures >= 1, "{stats:?}");
    assert!(stats.degraded_writes >= 1, "{stats:?}");
}

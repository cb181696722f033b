//! Scrub through the library (issue 10): what it finds, what it repairs, and how runs
//! are ordered, bounded, paused and resumed across a close and reopen.

use crate::common::{self, Shard, Spec, TestVolume, pattern, put_file, read_all};
use argosfs::maint::scrub::{self, ScrubOptions, ScrubReport};
use argosfs::maint::{Job, Stop, scrub_state};
use argosfs::meta::StripeRef;
use argosfs::store::DirDisk;
use argosfs::store::shard;
use argosfs::types::{InodeId, ShardIndex, ShardKey, StripeId};
use argosfs::volume::Volume;
use std::collections::BTreeSet;
use std::time::Duration;

fn small(encryption: bool, compression: bool) -> TestVolume {
    common::make(&Spec {
        encryption,
        compression,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    })
}

/// `count` files of 10 stripes each (16 KiB stripes), incompressible.
fn files(vol: &Volume, count: u64) -> Vec<(InodeId, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let data = pattern(160 << 10, 700 + i);
            (put_file(vol, format!("f{i}").as_bytes(), &data), data)
        })
        .collect()
}

fn run(vol: &Volume, options: &ScrubOptions) -> ScrubReport {
    scrub::scrub(vol, options, &Job::new()).unwrap()
}

fn repair() -> ScrubOptions {
    ScrubOptions {
        repair: true,
        ..ScrubOptions::default()
    }
}

fn assert_files(vol: &Volume, files: &[(InodeId, Vec<u8>)]) {
    for (ino, data) in files {
        assert_eq!(&read_all(vol, *ino).unwrap(), data);
    }
}

/// The file of shard `index` of `stripe`.
fn shard_file(tv: &TestVolume, stripe: &StripeRef, index: usize) -> Shard {
    let disk = stripe.disk_of(index).unwrap();
    Shard::at(
        &tv.disks[usize::from(disk.0)],
        ShardKey {
            stripe: stripe.id,
            index: ShardIndex(index as u8),
        },
    )
}

/// Stripes of the volume in id order.
fn stripes(vol: &Volume) -> Vec<StripeRef> {
    let mut all: Vec<StripeRef> = vol.stripes().into_iter().map(|at| at.stripe).collect();
    all.sort_by_key(|s| s.id);
    all
}

/// A second scrub finds nothing, the files read back, and (closed) fsck is clean.
fn clean_again(tv: &TestVolume, vol: Volume, files: &[(InodeId, Vec<u8>)]) {
    let again = run(&vol, &ScrubOptions::default());
    assert_eq!(again.found.total(), 0, "{again:#?}");
    assert!(again.is_clean(), "{again:#?}");
    assert_eq!(again.stripes_verified, vol.stripes().len() as u64);
    assert_files(&vol, files);
    vol.close().unwrap();
    let report = common::fsck_check(tv);
    assert_eq!(report.errors_found(), 0, "{:#?}", report.findings);
}

#[test]
fn issue_10_scrub_finds_and_repairs_a_flipped_byte_a_truncated_and_a_deleted_shard() {
    let tv = small(false, false);
    let vol = tv.open();
    let written = files(&vol, 2);
    vol.commit().unwrap();
    let clean = run(&vol, &ScrubOptions::default());
    assert!(clean.is_clean() && clean.found.total() == 0, "{clean:#?}");
    let s = stripes(&vol);
    assert_eq!(clean.stripes_verified, s.len() as u64);
    assert_eq!(clean.shards_verified, 6 * s.len() as u64);
    // Damaged behind the volume's back, with the volume closed: the store's index lives
    // in the open volume too.
    vol.close().unwrap();
    common::flip_payload_byte(&shard_file(&tv, &s[0], 1), 100);
    let truncated = shard_file(&tv, &s[3], 4);
    let bytes = truncated.read();
    truncated.write(&bytes[..bytes.len() - 1000]);
    shard_file(&tv, &s[7], 0).remove();
    let vol = tv.open();

    let found = run(&vol, &ScrubOptions::default());
    assert_eq!(
        (found.found.corrupt, found.found.missing),
        (2, 1),
        "{found:#?}"
    );
    assert_eq!(found.shards_left, 3);
    assert_eq!(found.shards_repaired, 0);
    assert!(!found.is_clean());
    // Nothing was changed: still bad.
    assert_eq!(run(&vol, &ScrubOptions::default()).shards_left, 3);

    let fixed = run(&vol, &repair());
    assert_eq!(fixed.found.total(), 3, "{fixed:#?}");
    assert_eq!((fixed.shards_repaired, fixed.shards_left), (3, 0));
    assert!(fixed.is_clean(), "{fixed:#?}");
    clean_again(&tv, vol, &written);
}

#[test]
fn issue_10_scrub_finds_a_parity_shard_that_verifies_but_disagrees() {
    let tv = small(false, false);
    let vol = tv.open();
    let written = files(&vol, 1);
    vol.commit().unwrap();
    let s = stripes(&vol);
    // Shard 5 (parity) rewritten as a valid object of the right shard with other bytes.
    vol.close().unwrap();
    let path = shard_file(&tv, &s[2], 5);
    let (object, volume) = shard::decode_shard("t", path.read(), None).unwrap();
    let mut payload = object.payload().to_vec();
    payload[7] ^= 0xff;
    let disk = DirDisk::open(&path.disk).unwrap();
    shard::write_shard(&disk, volume, &object.header, &payload).unwrap();
    argosfs::store::Disk::sync(&disk).unwrap();
    drop(disk);
    let vol = tv.open();

    let found = run(&vol, &ScrubOptions::default());
    assert_eq!(found.found.parity_disagrees, 1, "{found:#?}");
    assert_eq!(found.found.total(), 1);
    assert!(!found.is_clean());
    let fixed = run(&vol, &repair());
    assert_eq!(fixed.shards_repaired, 1, "{fixed:#?}");
    assert!(fixed.is_clean());
    clean_again(&tv, vol, &written);
}

/// An altered sealed stripe whose checksums all pass cannot be made without rewriting
/// the metadata's payload CRC (the CRC covers the sealed bytes); the tag check itself is
/// tested in `data::stripe` (a stripe authenticated as another chunk's). Here: an
/// encrypted, compressed volume scrubs clean, its tags checked, and a flipped byte is
/// found and repaired.
#[test]
fn issue_10_scrub_an_encrypted_compressed_volume() {
    let tv = small(true, true);
    let vol = tv.open();
    let written = files(&vol, 2);
    vol.commit().unwrap();
    let clean = run(&vol, &ScrubOptions::default());
    assert!(clean.is_clean() && clean.found.total() == 0, "{clean:#?}");
    let s = stripes(&vol);
    assert_eq!(clean.stripes_verified, s.len() as u64);
    common::flip_payload_byte(&shard_file(&tv, &s[5], 2), 10);
    let found = run(&vol, &ScrubOptions::default());
    assert_eq!(found.found.corrupt, 1, "{found:#?}");
    let fixed = run(&vol, &repair());
    assert_eq!(fixed.shards_repaired, 1, "{fixed:#?}");
    clean_again(&tv, vol, &written);
}

#[test]
fn issue_10_scrub_repair_heals_a_stripe_on_a_lost_disk() {
    let tv = common::make(&Spec {
        disks: 7,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 1);
    vol.close().unwrap();
    std::fs::remove_dir_all(&tv.disks[3]).unwrap();
    let vol = tv.open();
    let found = run(&vol, &ScrubOptions::default());
    assert!(found.degraded_stripes > 0, "{found:#?}");
    assert!(!found.is_clean());
    let healed = run(&vol, &repair());
    assert_eq!(
        healed.degraded_healed, found.degraded_stripes,
        "{healed:#?}"
    );
    assert!(healed.is_clean(), "{healed:#?}");
    let again = run(&vol, &ScrubOptions::default());
    assert!(
        again.is_clean() && again.degraded_stripes == 0,
        "{again:#?}"
    );
    assert_files(&vol, &written);
    vol.close().unwrap();
}

fn verified(tv: &TestVolume, vol: &Volume) -> BTreeSet<StripeId> {
    scrub_state::load(&tv.root, vol.id())
        .unwrap()
        .verified
        .keys()
        .copied()
        .collect()
}

#[test]
fn issue_10_scrub_percent_10_verifies_a_tenth_then_the_next_tenth() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 5);
    vol.commit().unwrap();
    let total = vol.stripes().len() as u64;
    assert_eq!(total, 50);
    let tenth = ScrubOptions {
        percent: Some(10.0),
        ..ScrubOptions::default()
    };
    let mut seen = BTreeSet::new();
    for i in 1..=10u64 {
        let report = run(&vol, &tenth);
        assert_eq!(report.stripes_verified, 5, "run {i}: {report:#?}");
        assert!(report.is_finished && !report.is_resumed);
        let now = verified(&tv, &vol);
        let new: Vec<StripeId> = now.difference(&seen).copied().collect();
        assert_eq!(new.len(), 5, "run {i} verified stripes verified before");
        seen = now;
        let status = scrub::status(&vol).unwrap();
        assert_eq!(status.never_verified, total - 5 * i);
    }
    assert_eq!(seen.len() as u64, total);
    // The eleventh run takes the oldest verified: those of the first.
    run(&vol, &tenth);
    assert_eq!(scrub::status(&vol).unwrap().never_verified, 0);
    vol.close().unwrap();
}

#[test]
fn issue_10_scrub_pause_then_resume_after_reopening_finishes_the_run() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 2);
    vol.commit().unwrap();
    let total = vol.stripes().len() as u64;
    // Asked to pause before the first stripe: the run is saved paused.
    let job = Job::new();
    job.request_stop(Stop::Pause);
    let paused = scrub::scrub(&vol, &repair(), &job).unwrap();
    assert_eq!(paused.stopped, Some(Stop::Pause));
    assert_eq!(paused.stripes_verified, 0);
    assert!(!paused.is_finished);
    vol.close().unwrap();

    // Another process: the status shows it paused; a bounded start continues it.
    let vol = tv.open();
    let status = scrub::status(&vol).unwrap();
    let saved = status.run.unwrap();
    assert!(saved.is_paused && saved.repair && saved.stripes_done == 0);
    assert_eq!(status.never_verified, total);
    let part = run(
        &vol,
        &ScrubOptions {
            max_bytes: Some(3 * 6 * 4096),
            ..ScrubOptions::default()
        },
    );
    assert!(
        part.is_resumed && part.is_bounded && !part.is_finished,
        "{part:#?}"
    );
    let done_first = part.stripes_verified;
    assert!(done_first > 0 && done_first < total, "{part:#?}");
    // Interrupted (not paused): pause marks it so offline.
    let run_state = scrub::status(&vol).unwrap().run.unwrap();
    assert!(!run_state.is_paused && run_state.repair);
    assert_eq!(run_state.stripes_done, done_first);
    assert!(scrub::pause(&vol).unwrap().is_paused);
    vol.close().unwrap();

    let vol = tv.open();
    assert!(scrub::status(&vol).unwrap().run.unwrap().is_paused);
    let rest = run(
        &vol,
        &ScrubOptions {
            is_resume: true,
            ..ScrubOptions::default()
        },
    );
    assert!(rest.is_resumed && rest.is_finished, "{rest:#?}");
    assert_eq!(rest.stripes_verified, total - done_first);
    let status = scrub::status(&vol).unwrap();
    assert!(status.run.is_none());
    assert_eq!(status.never_verified, 0);
    assert_eq!(status.last_run.unwrap().run.stripes_done, total);
    // Nothing left to resume or pause.
    let none = ScrubOptions {
        is_resume: true,
        ..ScrubOptions::default()
    };
    assert!(scrub::scrub(&vol, &none, &Job::new()).is_err());
    assert!(scrub::pause(&vol).is_err());
    vol.close().unwrap();
}

#[test]
fn issue_10_scrub_cancelled_stays_interrupted_and_the_next_start_continues() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 1);
    vol.commit().unwrap();
    let job = Job::new();
    job.request_stop(Stop::Cancel);
    let report = scrub::scrub(&vol, &ScrubOptions::default(), &job).unwrap();
    assert_eq!(report.stopped, Some(Stop::Cancel));
    assert!(!scrub::status(&vol).unwrap().run.unwrap().is_paused);
    // A start with other options continues the run with its own.
    let next = run(
        &vol,
        &ScrubOptions {
            percent: Some(10.0),
            ..ScrubOptions::default()
        },
    );
    assert!(next.is_resumed && next.is_finished);
    assert_eq!(next.stripes_verified, vol.stripes().len() as u64);
    vol.close().unwrap();
}

#[test]
fn issue_10_scrub_older_than_skips_what_was_verified_recently() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 1);
    vol.commit().unwrap();
    let first = vol.stripes().len() as u64;
    assert_eq!(run(&vol, &ScrubOptions::default()).stripes_verified, first);
    put_file(&vol, b"new", &pattern(48 << 10, 3));
    vol.commit().unwrap();
    let added = vol.stripes().len() as u64 - first;
    let hour = ScrubOptions {
        older_than: Some(Duration::from_secs(3600)),
        ..ScrubOptions::default()
    };
    let report = run(&vol, &hour);
    assert_eq!(report.stripes_verified, added, "{report:#?}");
    assert_eq!(report.stripes_skipped_fresh, first);
    let report = run(&vol, &hour);
    assert_eq!(report.stripes_verified, 0);
    assert_eq!(report.stripes_skipped_fresh, first + added);
    vol.close().unwrap();
}

#[test]
fn issue_10_scrub_max_bytes_bounds_a_run_and_the_next_continues() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 1);
    vol.commit().unwrap();
    let total = vol.stripes().len() as u64;
    let one = ScrubOptions {
        max_bytes: Some(1),
        ..ScrubOptions::default()
    };
    let report = run(&vol, &one);
    assert!(report.is_bounded && !report.is_finished);
    assert_eq!(report.stripes_verified, 1, "{report:#?}");
    let per_stripe = report.bytes_read;
    let bound = ScrubOptions {
        max_bytes: Some(per_stripe * 3 + 1),
        ..ScrubOptions::default()
    };
    let report = run(&vol, &bound);
    assert!(report.is_resumed && report.is_bounded);
    assert_eq!(report.stripes_verified, 4, "{report:#?}");
    let rest = run(&vol, &ScrubOptions::default());
    assert!(rest.is_finished);
    assert_eq!(rest.stripes_verified, total - 5);
    vol.close().unwrap();
}

#[test]
fn issue_10_scrub_state_file_corrupt_is_an_error_naming_it() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 1);
    vol.commit().unwrap();
    run(&vol, &ScrubOptions::default());
    let path = scrub_state::path(&tv.root);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    for e in [
        scrub::scrub(&vol, &ScrubOptions::default(), &Job::new()).unwrap_err(),
        scrub::status(&vol).unwrap_err(),
    ] {
        assert!(matches!(e, argosfs::Error::ScrubState { .. }), "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
    // Deleting it forgets the verification times only.
    std::fs::remove_file(&path).unwrap();
    let status = scrub::status(&vol).unwrap();
    assert_eq!(status.never_verified, status.stripes);
    assert!(run(&vol, &ScrubOptions::default()).is_clean());
    vol.close().unwrap();
}

/// A finished run records each disk's last scrub, saved at once for health to read.
#[test]
fn issue_11_a_finished_scrub_records_each_disks_last_scrub() {
    let tv = small(false, false);
    let vol = tv.open();
    files(&vol, 3);
    assert!(
        vol.disk_records()
            .iter()
            .all(|r| r.last_scrub_unix.is_none())
    );
    run(&vol, &ScrubOptions::default());
    assert!(
        vol.disk_records()
            .iter()
            .all(|r| r.last_scrub_unix.is_some())
    );
    let saved = argosfs::volume::Records::load(&tv.root).unwrap().unwrap();
    assert!(saved.disks.iter().all(|r| r.last_scrub_unix.is_some()));
    vol.close().unwrap();
}

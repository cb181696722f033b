//! Heal, drain, replace, add and forget through the library (issue 10), offline.

use crate::common::{self, Spec, TestVolume, pattern, put_file, read_all};
use argosfs::maint::disks::{self, Target};
use argosfs::maint::{self, Bounds};
use argosfs::types::{DiskId, InodeId};
use argosfs::volume::{DiskState, Superblock, Volume};

/// Files `f{from}..f{from+count}`.
fn files(vol: &Volume, from: u64, count: u64) -> Vec<(InodeId, Vec<u8>)> {
    (from..from + count)
        .map(|i| {
            let data = pattern(40_000 + (i as usize) * 9_001, 100 + i);
            (put_file(vol, format!("f{i}").as_bytes(), &data), data)
        })
        .collect()
}

fn assert_files(tv: &TestVolume, files: &[(InodeId, Vec<u8>)], what: &str) {
    let vol = tv.open();
    for (ino, data) in files {
        assert_eq!(&read_all(&vol, *ino).unwrap(), data, "{what}");
    }
    vol.close().unwrap();
}

fn fsck_clean(tv: &TestVolume) {
    let report = common::fsck_check(tv);
    assert_eq!(report.errors_found(), 0, "{:#?}", report.findings);
}

/// Every stripe has all k+m shards, on distinct disks and distinct domains.
fn assert_whole(tv: &TestVolume) {
    let vol = tv.open();
    let sb = vol.superblock().clone();
    let domain = |d: DiskId| {
        sb.disks
            .iter()
            .find(|c| c.id == d)
            .map(|c| c.domain.clone())
            .unwrap()
    };
    for at in vol.stripes() {
        assert!(!at.stripe.is_degraded(), "{:?}", at.stripe);
        let disks: Vec<DiskId> = at.stripe.placed().map(|(_, d)| d).collect();
        let mut domains: Vec<String> = disks.iter().map(|d| domain(*d)).collect();
        domains.sort();
        domains.dedup();
        assert_eq!(domains.len(), disks.len(), "{:?}", at.stripe);
    }
    assert!(vol.degraded_stripes().is_empty());
    vol.close().unwrap();
}

#[test]
fn issue_10_lose_replace_heal_then_lose_two_more_and_read_everything() {
    for (encryption, compression) in [(false, false), (true, true)] {
        let tv = common::make(&Spec {
            encryption,
            compression,
            stripe_bytes: 16 << 10,
            ..Spec::default()
        });
        let vol = tv.open();
        let mut written = files(&vol, 0, 4);
        vol.close().unwrap();
        // Disk 2 dies; writes go on, degraded.
        std::fs::remove_dir_all(&tv.disks[2]).unwrap();
        let vol = tv.open();
        written.extend(files(&vol, 4, 2));
        assert!(!vol.degraded_stripes().is_empty());
        vol.close().unwrap();

        // An empty directory takes its place; heal rebuilds what it held and what the
        // degraded stripes lack.
        let new = tv.dir.path().join("new-disk2");
        let replaced = disks::replace(Target::Offline(&tv.root), DiskId(2), &new).unwrap();
        assert_eq!(replaced.shards_copied, 0);
        assert!(replaced.old_unreadable.is_some());
        let vol = tv.open();
        let report = maint::heal(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap();
        assert!(report.is_complete(), "{report:?}");
        assert!(report.shards_written > 0, "{report:?}");
        let again = maint::heal(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap();
        assert_eq!(again.shards_written, 0, "{again:?}");
        vol.close().unwrap();
        assert_whole(&tv);
        fsck_clean(&tv);

        // Any two other disks may now go.
        std::fs::remove_dir_all(&tv.disks[0]).unwrap();
        std::fs::remove_dir_all(&tv.disks[4]).unwrap();
        assert_files(&tv, &written, "after losing two more disks");
    }
}

#[test]
fn issue_10_heal_is_bounded_and_the_next_run_continues() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 0, 6);
    vol.close().unwrap();
    std::fs::remove_dir_all(&tv.disks[1]).unwrap();
    disks::replace(
        Target::Offline(&tv.root),
        DiskId(1),
        &tv.dir.path().join("d1-new"),
    )
    .unwrap();
    let mut runs = 0;
    loop {
        let vol = tv.open();
        let report = maint::heal(
            &vol,
            Bounds {
                max_bytes: Some(20_000),
                rate: None,
            },
            &argosfs::maint::Job::new(),
        )
        .unwrap();
        vol.close().unwrap();
        runs += 1;
        // A run stops once past its bound: at most one stripe's shards beyond it.
        assert!(report.bytes_written < 20_000 + (16 << 10), "{report:?}");
        if report.is_complete() {
            break;
        }
        assert!(report.is_bounded, "{report:?}");
        assert!(runs < 50, "heal does not progress: {report:?}");
    }
    assert!(runs > 2, "the bound never bit");
    assert_whole(&tv);
    fsck_clean(&tv);
    assert_files(&tv, &written, "after bounded heals");
}

#[test]
fn issue_10_drain_moves_every_shard_off_then_remove_forgets_the_disk() {
    let tv = common::make(&Spec {
        disks: 8,
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 0, 5);
    let report = maint::drain(
        &vol,
        DiskId(3),
        Bounds::default(),
        &argosfs::maint::Job::new(),
    )
    .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(report.shards_written > 0);
    assert!(vol.stripes().iter().all(|at| !at.stripe.uses(DiskId(3))));
    vol.close().unwrap();
    assert!(
        tv.shard_files(3).is_empty(),
        "shards left on the drained disk"
    );
    let sb = Superblock::load(&tv.root).unwrap();
    let d3 = sb.disks.iter().find(|d| d.id == DiskId(3)).unwrap();
    assert_eq!(d3.state, DiskState::Removed);
    assert!(d3.state_reason.contains("drained"), "{d3:?}");
    assert_whole(&tv);
    fsck_clean(&tv);
    disks::forget(Target::Offline(&tv.root), DiskId(3)).unwrap();
    assert!(
        !Superblock::load(&tv.root)
            .unwrap()
            .disks
            .iter()
            .any(|d| d.id == DiskId(3))
    );
    assert_files(&tv, &written, "after drain and forget");
    fsck_clean(&tv);
    // Only a drained disk may be forgotten.
    let err = disks::forget(Target::Offline(&tv.root), DiskId(0)).unwrap_err();
    assert!(err.to_string().contains("drain it first"), "{err}");
}

#[test]
fn issue_10_replace_copies_from_a_readable_old_disk_and_add_takes_new_stripes() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 0, 3);
    vol.close().unwrap();
    let before = tv.shard_files(4).len();
    let new = tv.dir.path().join("d4-new");
    let replaced = disks::replace(Target::Offline(&tv.root), DiskId(4), &new).unwrap();
    assert_eq!(replaced.shards_copied as usize, before);
    assert!(replaced.old_unreadable.is_none());
    // The old directory can go: the new one holds everything.
    std::fs::remove_dir_all(&tv.disks[4]).unwrap();
    let vol = tv.open();
    assert!(
        vol.unavailable_disks().is_empty(),
        "{:?}",
        vol.unavailable_disks()
    );
    let report = maint::heal(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap();
    assert_eq!(report.shards_written, 0, "{report:?}");
    vol.close().unwrap();
    assert_files(&tv, &written, "after replace");
    fsck_clean(&tv);

    // A new disk takes new stripes at once; relative paths are the caller's.
    let added = disks::add(
        Target::Offline(&tv.root),
        tv.dir.path().join("d6").to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(added.id, DiskId(6));
    let vol = tv.open();
    let more = files(&vol, 3, 3);
    let uses_new = vol.stripes().iter().any(|at| at.stripe.uses(DiskId(6)));
    vol.close().unwrap();
    assert!(uses_new, "no new stripe went to the added disk");
    assert_files(&tv, &more, "after add");
    fsck_clean(&tv);
    // A directory that already is a disk is refused.
    let again = disks::add(
        Target::Offline(&tv.root),
        tv.dir.path().join("d6").to_str().unwrap(),
    )
    .unwrap_err();
    assert!(again.to_string().contains("already"), "{again}");
}

#[test]
fn issue_10_survey_counts_shards_and_what_each_lost_disk_degrades() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    files(&vol, 0, 3);
    let survey = maint::survey(&vol).unwrap();
    let stripes = vol.stripes().len() as u64;
    vol.close().unwrap();
    assert_eq!(survey.stripes, stripes);
    assert!(survey.is_whole(), "{survey:#?}");
    assert_eq!(survey.disks.len(), 6);
    let shards: u64 = survey.disks.iter().map(|d| d.shards).sum();
    assert_eq!(shards, 6 * stripes);
    assert!(survey.disks.iter().all(|d| !d.is_missing()));

    // A lost disk degrades every stripe with a shard on it; a shard file gone from a
    // disk that is there degrades its stripe too (heal would rebuild both).
    std::fs::remove_dir_all(&tv.disks[2]).unwrap();
    let gone = tv.indexed_shard_files(0)[0].0.clone();
    gone.remove();
    let vol = tv.open_with(argosfs::volume::OpenOptions {
        read_only: true,
        ..tv.options()
    });
    let vol = vol.unwrap();
    let survey = maint::survey(&vol).unwrap();
    drop(vol);
    let d2 = &survey.disks[2];
    assert!(d2.is_missing(), "{d2:#?}");
    assert_eq!(d2.degraded_stripes, d2.shards);
    assert_eq!(survey.disks[0].degraded_stripes, 1);
    assert!(!survey.is_whole());
    assert!(survey.degraded_stripes >= d2.shards);
    assert_eq!(survey.unwritten_stripes, 0);

    // Degraded writes leave shards unwritten, counted apart from any disk.
    let vol = tv.open();
    files(&vol, 3, 1);
    let survey = maint::survey(&vol).unwrap();
    let unwritten = vol.degraded_stripes().len() as u64;
    vol.close().unwrap();
    assert!(unwritten > 0);
    assert_eq!(survey.unwritten_stripes, unwritten);
    assert!(survey.unwritten_shards >= unwritten);
    assert_eq!(survey.disks[2].degraded_stripes, survey.disks[2].shards);
}

#[test]
fn issue_10_drain_is_refused_when_too_few_other_disks_could_take_the_shards() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 0, 2);
    vol.commit().unwrap();
    // 4+2 on six disks: every other disk already holds a shard of each stripe.
    let err = maint::drain(
        &vol,
        DiskId(0),
        Bounds::default(),
        &argosfs::maint::Job::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("add a disk first"), "{err}");
    vol.close().unwrap();
    // Nothing changed: the disk still takes new shards.
    let sb = Superblock::load(&tv.root).unwrap();
    assert_eq!(sb.disks[0].state, DiskState::Active);
    assert_whole(&tv);
    assert_files(&tv, &written, "after a refused drain");
}

#[test]
fn issue_10_rebalance_evens_out_added_disks_within_bounds_and_waits_for_heal() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let written = files(&vol, 0, 8);
    vol.close().unwrap();
    for i in 6..8 {
        disks::add(
            Target::Offline(&tv.root),
            tv.dir.path().join(format!("d{i}")).to_str().unwrap(),
        )
        .unwrap();
    }
    // A bounded run moves about its bound and says so.
    let vol = tv.open();
    let first = maint::rebalance(
        &vol,
        Bounds {
            max_bytes: Some(8192),
            rate: None,
        },
        &argosfs::maint::Job::new(),
    )
    .unwrap();
    assert!(first.is_bounded, "{first:?}");
    assert!(first.bytes_written < 8192 + (16 << 10), "{first:?}");
    let report = maint::rebalance(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap();
    assert!(report.shards_written > 10, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    let survey = maint::survey(&vol).unwrap();
    let total: u64 = survey.disks.iter().map(|d| d.shard_bytes).sum();
    let share = total as f64 / survey.disks.len() as f64;
    // What rebalance promises: no disk over its share by more than a shard (a 16 KiB
    // stripe's shards are about 4 KiB; one of slack). The excess left on the others
    // (each under a shard) may keep a disk several shards under its share; the added
    // disks still get most of theirs.
    let shard: f64 = 4096.0 * 2.0;
    for d in &survey.disks {
        let over = d.shard_bytes as f64 - share;
        assert!(
            over <= shard,
            "disk {} holds {} bytes, share {share}",
            d.info.config.id,
            d.shard_bytes
        );
        assert!(
            d.shard_bytes as f64 >= share * 0.75,
            "disk {} holds {} bytes, share {share}",
            d.info.config.id,
            d.shard_bytes
        );
    }
    // A second run has nothing to do.
    let again = maint::rebalance(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap();
    assert_eq!(again.shards_written, 0, "{again:?}");
    vol.close().unwrap();
    assert_whole(&tv);
    fsck_clean(&tv);
    assert_files(&tv, &written, "after rebalance");

    // Repair comes first: with a stripe degraded, rebalance refuses and moves nothing.
    std::fs::remove_dir_all(&tv.disks[0]).unwrap();
    let vol = tv.open();
    let err = maint::rebalance(&vol, Bounds::default(), &argosfs::maint::Job::new()).unwrap_err();
    assert!(err.to_string().contains("heal first"), "{err}");
}

//! File contents against an in-memory model: random writes, truncates and reads at
//! random offsets, for every layout/compression/encryption combination, across close
//! and reopen.

use crate::common::{self, Spec, pattern, read_all, root};
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, SetAttr, Volume};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Write { offset: u64, len: usize, seed: u64 },
    Truncate(u64),
    Read { offset: u64, len: usize },
    Flush,
    Commit,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..120_000, 0usize..40_000, any::<u64>())
            .prop_map(|(offset, len, seed)| Step::Write { offset, len, seed }),
        2 => (0u64..140_000).prop_map(Step::Truncate),
        4 => (0u64..150_000, 0usize..50_000).prop_map(|(offset, len)| Step::Read { offset, len }),
        1 => Just(Step::Flush),
        1 => Just(Step::Commit),
        1 => Just(Step::Reopen),
    ]
}

const COMBOS: [(u8, u8, bool, bool); 12] = [
    (1, 0, false, false),
    (1, 0, true, false),
    (1, 0, false, true),
    (1, 0, true, true),
    (2, 1, false, false),
    (2, 1, true, false),
    (2, 1, false, true),
    (2, 1, true, true),
    (4, 2, false, false),
    (4, 2, true, false),
    (4, 2, false, true),
    (4, 2, true, true),
];

fn run(combo: usize, write_behind: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let (k, m, compression, encryption) = COMBOS[combo];
    let spec = Spec {
        compression,
        encryption,
        stripe_bytes: 16 << 10,
        ..Spec::layout(k, m)
    };
    let tv = common::make(&spec);
    let c = root();
    let mut vol = Some(tv.open_shared(write_behind));
    let ino = vol
        .as_ref()
        .unwrap()
        .create(&c, InodeId::ROOT, b"f", 0o644)
        .unwrap()
        .ino;
    let mut model: Vec<u8> = Vec::new();
    for step in steps {
        let v = vol.as_ref().unwrap();
        match step {
            Step::Write { offset, len, seed } => {
                let data = if seed % 3 == 0 {
                    vec![b'z'; *len] // compressible
                } else {
                    pattern(*len, *seed)
                };
                prop_assert_eq!(v.write(&c, ino, *offset, &data).unwrap(), *len);
                let end = *offset as usize + len;
                if *len > 0 && model.len() < end {
                    model.resize(end, 0);
                }
                model[*offset as usize..*offset as usize + len].copy_from_slice(&data);
            }
            Step::Truncate(size) => {
                v.setattr(
                    &c,
                    ino,
                    &SetAttr {
                        size: Some(*size),
                        ..SetAttr::default()
                    },
                )
                .unwrap();
                model.resize(*size as usize, 0);
            }
            Step::Read { offset, len } => {
                let got = v.read(ino, *offset, *len).unwrap();
                let start = (*offset as usize).min(model.len());
                let end = (*offset as usize + len).min(model.len());
                prop_assert_eq!(&got[..], &model[start..end], "read {} at {}", len, offset);
                // The same read into a reused buffer full of stale bytes (as the mount
                // does) replaces every byte it returns, holes included.
                let mut stale = vec![0xa5u8; *len];
                let n = v.read_into(ino, *offset, &mut stale).unwrap();
                prop_assert_eq!(
                    &stale[..n],
                    &model[start..end],
                    "read_into {} at {}",
                    len,
                    offset
                );
            }
            Step::Flush => v.flush(ino).unwrap(),
            Step::Commit => v.commit().unwrap(),
            Step::Reopen => {
                common::close_shared(vol.take().unwrap());
                vol = Some(tv.open_shared(write_behind));
            }
        }
        prop_assert_eq!(
            vol.as_ref().unwrap().getattr(ino).unwrap().size,
            model.len() as u64
        );
    }
    let v = vol.take().unwrap();
    prop_assert_eq!(read_all(&v, ino).unwrap(), model.clone());
    common::close_shared(v);
    let v = tv.open();
    prop_assert_eq!(read_all(&v, ino).unwrap(), model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_writes_truncates_reads_match_the_model(
        combo in 0..COMBOS.len(),
        write_behind in any::<bool>(),
        steps in prop::collection::vec(step(), 1..30),
    ) {
        run(combo, write_behind, &steps)?;
    }
}

#[test]
fn every_combination_round_trips_a_multi_stripe_file() {
    for combo in 0..COMBOS.len() {
        let steps = [
            Step::Write {
                offset: 0,
                len: 100_000,
                seed: 7,
            },
            Step::Write {
                offset: 5_000,
                len: 30_000,
                seed: 3,
            },
            Step::Truncate(70_001),
            Step::Reopen,
            Step::Write {
                offset: 90_000,
                len: 10,
                seed: 9,
            },
            Step::Read {
                offset: 60_000,
                len: 40_000,
            },
        ];
        run(combo, false, &steps).unwrap();
        run(combo, true, &steps).unwrap();
    }
}

#[test]
fn holes_read_as_zeros_and_use_no_shards() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        ..Spec::default()
    });
    let vol = tv.open();
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"sparse", 0o644).unwrap().ino;
    vol.write(&c, ino, 10 << 20, b"end").unwrap();
    vol.commit().unwrap();
    let attr = vol.getattr(ino).unwrap();
    assert_eq!(attr.size, (10 << 20) + 3);
    assert!(
        attr.blocks < 8,
        "sparse file stores only its last chunk: {} blocks",
        attr.blocks
    );
    assert_eq!(vol.read(ino, 5 << 20, 4096).unwrap(), vec![0u8; 4096]);
    assert_eq!(vol.read(ino, 10 << 20, 10).unwrap(), b"end");
    let shards: usize = (0..6).map(|i| tv.shard_files(i).len()).sum();
    assert_eq!(shards, 6, "one stripe of 4+2 shards");
    let end = (10 << 20) + 3;
    assert_eq!(vol.data_regions(ino).unwrap(), vec![(10 << 20, end)]);
    assert_eq!(vol.seek_data(ino, 0).unwrap(), 10 << 20);
    assert_eq!(vol.seek_hole(ino, 0).unwrap(), 0);
    assert_eq!(vol.seek_hole(ino, 10 << 20).unwrap(), end);
    assert_eq!(vol.seek_data(ino, end).unwrap_err().errno(), libc::ENXIO);
}

#[test]
fn overwrite_is_copy_on_write_and_frees_old_shards_after_commit() {
    let tv = common::make(&Spec {
        stripe_bytes: 16 << 10,
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let vol = tv.open();
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"f", 0o644).unwrap().ino;
    vol.write(&c, ino, 0, &pattern(16 << 10, 1)).unwrap();
    vol.commit().unwrap();
    let before: Vec<_> = (0..6).flat_map(|i| tv.shard_files(i)).collect();
    assert_eq!(before.len(), 6);
    vol.write(&c, ino, 0, &pattern(16 << 10, 2)).unwrap();
    // The new stripe is written beside the old one (under new keys); the old one stays
    // until the commit.
    assert!(before.iter().all(|p| p.exists()));
    vol.commit().unwrap();
    let after: Vec<_> = (0..6).flat_map(|i| tv.shard_files(i)).collect();
    assert_eq!(after.len(), 6);
    assert!(after.iter().all(|p| !before.contains(p)));
    assert!(before.iter().all(|p| !p.exists()));
    assert_eq!(read_all(&vol, ino).unwrap(), pattern(16 << 10, 2));
}

#[test]
fn small_files_live_inline_and_grow_into_stripes() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"small", 0o644).unwrap().ino;
    vol.write(&c, ino, 0, b"tiny").unwrap();
    vol.commit().unwrap();
    assert_eq!((0..6).map(|i| tv.shard_files(i).len()).sum::<usize>(), 0);
    vol.write(&c, ino, 4, &pattern(10_000, 4)).unwrap();
    vol.commit().unwrap();
    assert_eq!((0..6).map(|i| tv.shard_files(i).len()).sum::<usize>(), 6);
    let mut expect = b"tiny".to_vec();
    expect.extend(pattern(10_000, 4));
    vol.close().unwrap();
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), expect);
}

#[test]
fn many_files_survive_snapshots_and_journal_compaction() {
    let tv = common::make(&Spec::default());
    let options = OpenOptions {
        journal_limit_bytes: Some(4096),
        ..tv.options()
    };
    let c = root();
    {
        let vol = Volume::open(&tv.root, options.clone()).unwrap();
        for i in 0..300u32 {
            let ino = vol
                .create(&c, InodeId::ROOT, format!("f{i}").as_bytes(), 0o644)
                .unwrap()
                .ino;
            vol.write(&c, ino, 0, &i.to_le_bytes()).unwrap();
            if i % 10 == 0 {
                vol.commit().unwrap();
            }
        }
        vol.close().unwrap();
    }
    let vol = Volume::open(&tv.root, options).unwrap();
    assert!(vol.open_report().snapshot_txid > 0, "snapshots were taken");
    for i in 0..300u32 {
        let ino = vol
            .lookup(&c, InodeId::ROOT, format!("f{i}").as_bytes())
            .unwrap()
            .ino;
        assert_eq!(read_all(&vol, ino).unwrap(), i.to_le_bytes());
    }
}

#[test]
fn holes_inside_a_stripe_stay_holes_across_flush_and_reopen() {
    let tv = common::make(&Spec {
        stripe_bytes: 64 << 10,
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let c = root();
    let ino = {
        let vol = tv.open();
        let ino = vol.create(&c, InodeId::ROOT, b"f", 0o644).unwrap().ino;
        vol.write(&c, ino, 8192, b"first").unwrap();
        vol.write(&c, ino, 40_000, b"second").unwrap();
        vol.write(&c, ino, 200_000, b"third").unwrap();
        let expect = vec![(8192, 12288), (36864, 40006), (200_000 & !4095, 200_005)];
        assert_eq!(vol.data_regions(ino).unwrap(), expect, "buffered");
        vol.commit().unwrap();
        assert_eq!(vol.data_regions(ino).unwrap(), expect, "stored");
        // Filling the first hole merges the regions.
        vol.write(&c, ino, 0, &vec![1u8; 40_000]).unwrap();
        vol.close().unwrap();
        ino
    };
    let vol = tv.open();
    assert_eq!(
        vol.data_regions(ino).unwrap(),
        vec![(0, 40_006), (200_000 & !4095, 200_005)]
    );
    assert_eq!(vol.seek_hole(ino, 0).unwrap(), 40_006);
    assert_eq!(vol.seek_data(ino, 40_006).unwrap(), 200_000 & !4095);
    assert_eq!(vol.read(ino, 40_000, 6).unwrap(), b"second");
}

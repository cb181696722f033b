//! Power cuts: every disk wrapped in a `CrashDisk`, which loses each put and delete not
//! yet synced; the volume is dropped without closing (a kill -9 has nothing to flush
//! either), the disks "lose power", and the volume reopens on what they durably hold.
//! After every cut the namespace must be exactly what the last commit (fsync) made
//! durable, and at the end fsck may find nothing worse than removable orphans.

use crate::common::{self, Spec, TestVolume, pattern, root};
use argosfs::fsck::Kind;
use argosfs::store::{CrashDisk, DiskRef};
use argosfs::types::{DiskId, InodeId};
use argosfs::volume::{OpenOptions, SetAttr, Volume};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Disks = Arc<Mutex<Vec<Arc<CrashDisk>>>>;

fn open_crashable(tv: &TestVolume) -> (Volume, Disks) {
    let disks: Disks = Arc::default();
    let seen = disks.clone();
    let options = OpenOptions {
        disk_wrapper: Some(Arc::new(move |_: DiskId, disk: DiskRef| {
            let crash = Arc::new(CrashDisk::new(disk));
            seen.lock().unwrap().push(crash.clone());
            crash as DiskRef
        })),
        ..tv.options()
    };
    (Volume::open(&tv.root, options).unwrap(), disks)
}

/// Every regular file in the root directory with its contents.
fn contents(vol: &Volume) -> Model {
    let mut out = Model::new();
    for entry in vol.readdir(InodeId::ROOT, 0, usize::MAX).unwrap() {
        if entry.name == b"." || entry.name == b".." {
            continue;
        }
        let data = common::read_all(vol, entry.ino).unwrap();
        out.insert(entry.name, data);
    }
    out
}

fn ino_of(vol: &Volume, name: &[u8]) -> InodeId {
    vol.lookup(&root(), InodeId::ROOT, name).unwrap().ino
}

/// One random change to the volume and the model.
fn change(vol: &Volume, model: &mut Model, rng: &mut Rng, step: u64) {
    let c = root();
    let names: Vec<Vec<u8>> = model.keys().cloned().collect();
    let sizes = [0usize, 100, 4096, 5000, 70_000, 200_000];
    match rng.below(6) {
        0 | 1 if !names.is_empty() => {
            // Overwrite part of a file, maybe past its end.
            let name = &names[rng.below(names.len() as u64) as usize];
            let data = model.get_mut(name).unwrap();
            let at = rng.below(data.len() as u64 + 1) as usize;
            let bytes = pattern(
                sizes[rng.below(sizes.len() as u64) as usize].min(80_000),
                step,
            );
            vol.write(&c, ino_of(vol, name), at as u64, &bytes).unwrap();
            if data.len() < at + bytes.len() {
                data.resize(at + bytes.len(), 0);
            }
            data[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        2 if !names.is_empty() => {
            let name = &names[rng.below(names.len() as u64) as usize];
            let data = model.get_mut(name).unwrap();
            let size = rng.below(data.len() as u64 + 1000) as usize;
            let change = SetAttr {
                size: Some(size as u64),
                ..SetAttr::default()
            };
            vol.setattr(&c, ino_of(vol, name), &change).unwrap();
            data.resize(size, 0);
        }
        3 if !names.is_empty() => {
            let name = &names[rng.below(names.len() as u64) as usize];
            vol.unlink(&c, InodeId::ROOT, name).unwrap();
            model.remove(name);
        }
        _ => {
            let name = format!("f{step}").into_bytes();
            let bytes = pattern(sizes[rng.below(sizes.len() as u64) as usize], step);
            let ino = vol.create(&c, InodeId::ROOT, &name, 0o644).unwrap().ino;
            vol.write(&c, ino, 0, &bytes).unwrap();
            model.insert(name, bytes);
        }
    }
}

fn power_cuts(spec: Spec, seed: u64) {
    let tv = common::make(&spec);
    let mut rng = Rng(seed);
    let mut durable = Model::new();
    let mut lost_changes = 0;
    let mut packed = 0;
    let mut step = 0;
    for cuts in 0..12 {
        let (vol, disks) = open_crashable(&tv);
        assert_eq!(contents(&vol), durable, "after cut {cuts} (seed {seed:#x})");
        let mut model = durable.clone();
        for _ in 0..rng.below(20) + 1 {
            step += 1;
            change(&vol, &mut model, &mut rng, step);
            if rng.below(4) == 0 {
                // fsync of a file commits the whole volume.
                match model.keys().next() {
                    Some(name) => vol.fsync(ino_of(&vol, name)).unwrap(),
                    None => vol.commit().unwrap(),
                }
                durable = model.clone();
            }
        }
        packed += vol.stats().files_packed;
        // The cut: nothing more reaches the disks; what they did not sync is gone.
        drop(vol);
        for disk in disks.lock().unwrap().iter() {
            lost_changes += disk.crash();
        }
    }
    assert!(
        lost_changes > 0,
        "no cut lost anything: the test tested nothing"
    );
    assert!(
        packed > 0,
        "no small file was packed: packing went untested"
    );
    let (vol, _) = open_crashable(&tv);
    assert_eq!(contents(&vol), durable);
    vol.close().unwrap();
    let report = common::fsck_check(&tv);
    let worse: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.is_error() && f.kind != Kind::OrphanShard)
        .collect();
    assert!(worse.is_empty(), "seed {seed:#x}: {worse:#?}");
}

#[test]
fn issue_12_power_cuts_lose_only_what_was_not_synced_plain() {
    for seed in [0x9e37_79b9, 0x1234_5678] {
        power_cuts(
            Spec {
                stripe_bytes: 16 << 10,
                ..Spec::default()
            },
            seed,
        );
    }
}

#[test]
fn issue_12_power_cuts_lose_only_what_was_not_synced_encrypted_compressed() {
    power_cuts(
        Spec {
            stripe_bytes: 16 << 10,
            compression: true,
            encryption: true,
            ..Spec::layout(2, 1)
        },
        0xc0ff_ee11,
    );
}

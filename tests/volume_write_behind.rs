//! Write-behind (full chunks stored on the pool while the writer returns): what a reader,
//! a truncate, an unlink and a close see while chunks are landing (a failing disk:
//! `volume_faults`).

use crate::common::{self, Spec, pattern, read_all, root};
use argosfs::types::InodeId;
use argosfs::volume::SetAttr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const STRIPE: usize = 16 << 10;

fn spec() -> Spec {
    Spec {
        stripe_bytes: STRIPE as u32,
        ..Spec::default()
    }
}

fn shard_count(tv: &common::TestVolume) -> usize {
    (0..tv.disks.len()).map(|i| tv.shard_files(i).len()).sum()
}

#[test]
fn readers_see_every_chunk_while_it_lands() {
    let tv = common::make(&spec());
    let vol = tv.open_shared(true);
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"f", 0o644).unwrap().ino;
    let data = pattern(256 * STRIPE, 5);
    let written = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let mismatches = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, piece) in data.chunks(STRIPE).enumerate() {
                vol.write(&c, ino, (i * STRIPE) as u64, piece).unwrap();
                written.store(((i + 1) * STRIPE) as u64, Ordering::Release);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut x = 12345u64;
            let mut reads = 0;
            while !done.load(Ordering::Acquire) || reads < 200 {
                let limit = written.load(Ordering::Acquire) as usize;
                if limit == 0 {
                    std::thread::yield_now();
                    continue;
                }
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Mostly the newest chunks, the ones still landing.
                let back = (x >> 20) as usize
                    % if x & 1 == 0 {
                        limit
                    } else {
                        limit.min(3 * STRIPE)
                    };
                let offset = limit - 1 - back;
                let len = (3 * STRIPE).min(limit - offset);
                let got = vol.read(ino, offset as u64, len).unwrap();
                if got[..] != data[offset..offset + len] {
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
                reads += 1;
            }
        });
    });
    assert_eq!(
        mismatches.load(Ordering::Relaxed),
        0,
        "reads saw stale bytes"
    );
    vol.fsync(ino).unwrap();
    assert_eq!(vol.stats().stripes_written, 256);
    assert_eq!(read_all(&vol, ino).unwrap(), data);
    common::close_shared(vol);
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), data);
}

#[test]
fn truncate_and_unlink_wait_for_landing_chunks_and_leave_no_stray_shards() {
    let tv = common::make(&spec());
    let vol = tv.open_shared(true);
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"cut", 0o644).unwrap().ino;
    let data = pattern(8 * STRIPE, 6);
    vol.write(&c, ino, 0, &data).unwrap();
    // At once, while the chunks may still be landing: keep a chunk and a bit.
    let keep = STRIPE + 100;
    vol.setattr(
        &c,
        ino,
        &SetAttr {
            size: Some(keep as u64),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(read_all(&vol, ino).unwrap(), &data[..keep]);
    let gone = vol.create(&c, InodeId::ROOT, b"gone", 0o644).unwrap().ino;
    vol.write(&c, gone, 0, &pattern(8 * STRIPE, 7)).unwrap();
    vol.unlink(&c, InodeId::ROOT, b"gone").unwrap();
    vol.commit().unwrap();
    // The kept file's two stripes, nothing of the cut chunks or the unlinked file.
    assert_eq!(shard_count(&tv), 2 * 6);
    common::close_shared(vol);
    let vol = tv.open();
    assert_eq!(read_all(&vol, ino).unwrap(), &data[..keep]);
    assert!(vol.getattr(gone).is_err());
}

#[test]
fn seek_data_counts_landing_chunks() {
    let tv = common::make(&spec());
    let vol = tv.open_shared(true);
    let c = root();
    let ino = vol.create(&c, InodeId::ROOT, b"sparse", 0o644).unwrap().ino;
    vol.write(&c, ino, (4 * STRIPE) as u64, &pattern(2 * STRIPE, 8))
        .unwrap();
    assert_eq!(vol.seek_data(ino, 0).unwrap(), (4 * STRIPE) as u64);
    assert_eq!(
        vol.seek_hole(ino, (4 * STRIPE) as u64).unwrap(),
        (6 * STRIPE) as u64
    );
    common::close_shared(vol);
}

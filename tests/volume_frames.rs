//! Small reads of compressed and encrypted files open only the frames they cover (issue
//! 12), and fall back to the whole-stripe read (which rebuilds from parity) when a shard
//! cannot serve them.

use crate::common::{self, Spec, put_file};
use argosfs::data::FRAME_BYTES;
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, Volume};

const STRIPE: usize = 1 << 20;

/// Text-like bytes (compressible), from a seed.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"stripe ", b"shard ", b"frame ", b"argos ", b"disk ", b"\n", b"parity ", b"42 ",
    ];
    let picks = common::pattern(len, seed);
    let mut out = Vec::with_capacity(len + 8);
    for pick in picks {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(WORDS[usize::from(pick) % WORDS.len()]);
    }
    out.truncate(len);
    out
}

/// Three whole stripes (text, random, text) and a short one of text: frames compressed
/// and raw, a table implied by the record and tables that must be read.
fn contents() -> Vec<u8> {
    let mut data = text(STRIPE, 1);
    data.extend(common::pattern(STRIPE, 2));
    data.extend(text(STRIPE, 3));
    data.extend(text(100_000, 4));
    data
}

fn volume_with_file() -> (common::TestVolume, InodeId, Vec<u8>) {
    let tv = common::make(&Spec {
        stripe_bytes: STRIPE as u32,
        compression: true,
        encryption: true,
        inline_max_bytes: 0,
        ..Spec::default()
    });
    let data = contents();
    let vol = tv.open();
    let ino = put_file(&vol, b"f", &data);
    vol.close().unwrap();
    (tv, ino, data)
}

/// Opened without a stripe cache: every read that is not served by frames decodes a
/// whole stripe, and counts in `stripes_read`.
fn open_uncached(tv: &common::TestVolume) -> Volume {
    let options = OpenOptions {
        cache_bytes: Some(0),
        ..tv.options()
    };
    Volume::open(&tv.root, options).unwrap()
}

/// The data shard `index` of the stripe of chunk `chunk`.
fn shard_file(tv: &common::TestVolume, chunk: u64, index: u8) -> common::Shard {
    let mut found = Vec::new();
    for disk in 0..tv.disks.len() {
        for path in tv.shard_files(disk) {
            let bytes = path.read();
            let (object, _) = argosfs::store::shard::decode_shard("test", bytes, None).unwrap();
            if object.header.chunk == chunk && object.header.index.0 == index {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "chunk {chunk} shard {index}");
    found.pop().unwrap()
}

/// Offsets for random reads: seeded, 4 KiB aligned and not, never continuing the read
/// before (which would count as a sequential scan).
fn random_offsets(len: usize, count: usize, seed: u64) -> Vec<u64> {
    let bytes = common::pattern(count * 8, seed);
    let mut out: Vec<u64> = Vec::new();
    for (i, word) in bytes.chunks_exact(8).enumerate() {
        let r = u64::from_le_bytes(word.try_into().unwrap()) % (len as u64 - 4096);
        let at = if i % 3 == 0 { r } else { r & !4095 };
        if out.last().is_some_and(|last| last + 4096 == at) {
            continue;
        }
        out.push(at);
    }
    out
}

#[test]
fn issue_12_small_reads_of_a_compressed_encrypted_file_open_only_their_frames() {
    let (tv, ino, data) = volume_with_file();
    let vol = open_uncached(&tv);
    let frame = FRAME_BYTES as u64;
    let mut at_least_one_two_frame_read = false;
    for at in random_offsets(data.len(), 300, 5) {
        let before = vol.stats();
        let got = vol.read(ino, at, 4096).unwrap();
        assert!(got == data[at as usize..at as usize + 4096], "read at {at}");
        let after = vol.stats();
        let frames = after.frames_decoded - before.frames_decoded;
        // A 4 KiB read spans two frames only where it crosses a frame boundary (which
        // a read crossing a stripe boundary also does).
        let crosses = at / frame != (at + 4095) / frame;
        assert_eq!(frames, if crosses { 2 } else { 1 }, "read at {at}");
        at_least_one_two_frame_read |= crosses;
        assert_eq!(after.stripes_read, before.stripes_read, "read at {at}");
        assert_eq!(after.degraded_reads, 0);
    }
    assert!(at_least_one_two_frame_read);
    // A read continuing the one before is a sequential scan: it decodes the whole stripe
    // (into the cache, when there is one) instead of frames.
    vol.read(ino, 5 * 4096, 4096).unwrap();
    let before = vol.stats();
    let got = vol.read(ino, 6 * 4096, 4096).unwrap();
    assert!(got == data[6 * 4096..7 * 4096]);
    let after = vol.stats();
    assert_eq!(after.frames_decoded, before.frames_decoded);
    assert_eq!(after.stripes_read - before.stripes_read, 1);
    // So does a read of half a stripe or more.
    let got = vol.read(ino, 4096 + STRIPE as u64, STRIPE / 2).unwrap();
    assert!(got == data[4096 + STRIPE..4096 + STRIPE + STRIPE / 2]);
    let last = vol.stats();
    assert_eq!(last.stripes_read - after.stripes_read, 1);
    assert_eq!(last.frames_decoded, after.frames_decoded);
}

#[test]
fn issue_12_a_corrupted_data_shard_under_a_small_read_is_rebuilt_from_parity() {
    let (tv, ino, data) = volume_with_file();
    // Every 4 KiB block of data shard 0 of chunk 0 (a compressed stripe, its frame table
    // included) and of chunk 1 (sealed raw frames) gets a flipped byte.
    let paths = [shard_file(&tv, 0, 0), shard_file(&tv, 1, 0)];
    for path in paths {
        let bytes = path.read();
        let (object, _) = argosfs::store::shard::decode_shard("test", bytes.clone(), None).unwrap();
        let len = object.payload().len();
        for block in (0..len).step_by(argosfs::store::shard::BLOCK_PAYLOAD) {
            let at = argosfs::store::shard::payload_byte_offset(len, block + 7);
            path.overwrite_at(at as u64, &[bytes[at] ^ 0x10]);
        }
    }
    let vol = open_uncached(&tv);
    // Offsets 4096 of chunks 0 and 1 lie in frames stored on data shard 0.
    for at in [4096u64, STRIPE as u64 + 4096] {
        let before = vol.stats();
        let got = vol.read(ino, at, 4096).unwrap();
        assert!(got == data[at as usize..at as usize + 4096], "read at {at}");
        let after = vol.stats();
        assert_eq!(
            after.degraded_reads - before.degraded_reads,
            1,
            "read at {at}"
        );
        assert_eq!(after.frames_decoded, before.frames_decoded, "read at {at}");
    }
    // Random reads all over the file: right wherever they land.
    for at in random_offsets(data.len(), 100, 6) {
        let got = vol.read(ino, at, 4096).unwrap();
        assert!(got == data[at as usize..at as usize + 4096], "read at {at}");
    }
    let stats = vol.stats();
    assert!(stats.frames_decoded > 0, "{stats:?}");
}

//! Data-path throughput: a memory-copy reference, the single-thread primitives, the stripe
//! pipeline alone (`StripeCodec` encode/decode, 4+2, 1 MiB stripes), the frame sizes of
//! compressed and encrypted stripes (encode, random 4 KiB reads, whole decodes, payload
//! size), and whole files through the `Volume` API into and out of the page cache,
//! healthy and degraded.
//!
//! Run: `cargo bench --bench datapath` (optionally `-- SECTION...` with SECTION among
//! `pagecache`, `primitives`, `pipeline`, `frames`, `volume`; the memory copy always
//! runs). Knobs:
//! `ARGOSFS_BENCH_REPS` (timed repetitions, default 5), `ARGOSFS_BENCH_FILE_MIB` (file
//! size of the volume runs, default 256, at least 16), `ARGOSFS_BENCH_DIR` (where the
//! temporary volumes go, default the system temp dir), `ARGOSFS_BENCH_MODES` (comma list
//! of volume modes to run: plain, zstd:1, encrypted, zstd:1+encrypted). Results:
//! docs/PERFORMANCE.md.
//!
//! Data ("mixed"): every 1 MiB stripe is 512 KiB of text followed by 512 KiB of random
//! bytes. The text is whitespace-separated words drawn at random, weighted by frequency,
//! from the project's own Rust sources (natural-language-like statistics, no long
//! repeats); the random bytes come from xorshift64*.

mod common;

use argosfs::data::compress::{self, Compression};
use argosfs::data::crypto::{Cipher, KdfParams, MasterKey};
use argosfs::data::{
    EncodedStripe, ErasureCodec, FrameTable, ReedSolomonSimd, StripeCodec, StripeContext,
};
use argosfs::store::shard::{self, ShardHeader};
use argosfs::store::{DirDisk, Disk, DiskRef, DiskSpace};
use argosfs::types::{DiskId, InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use argosfs::volume::{
    Caller, DiskConfig, FormatOptions, KdfStrength, OpenOptions, Volume, format,
};
use common::{MIB, Rng, Row, Unit, bench, env_usize, print_table, wanted};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Stripes in the in-memory data sets of the primitive and pipeline runs (64 MiB).
const STRIPES: usize = 64;
const K: u8 = 4;
const M: u8 = 2;
const PASSPHRASE: &[u8] = b"benchmark passphrase";

fn main() {
    let reps = env_usize("ARGOSFS_BENCH_REPS", 5).max(1);
    println!(
        "# ArgosFS data path, 4+2, 1 MiB stripes, one calling thread (Volume reads and writes spread a stripe's shards over the shard I/O pool)"
    );
    println!("machine: {}", common::describe_machine());
    println!(
        "MB/s = 10^6 bytes of plaintext per second; 'vs copy' = share of the streaming memory copy"
    );

    let copy_rows = memcpy_reference(reps);
    let copy = copy_rows[1].median;
    print_table("memory-copy reference", &copy_rows, Some(copy));

    if wanted("pagecache") {
        let rows = page_cache_reference(reps);
        print_table(
            "page-cache reference (no ArgosFS code but the store rows)",
            &rows,
            Some(copy),
        );
    }
    let words = text_words();
    if wanted("primitives") {
        let rows = primitives(&words, reps);
        print_table("primitives, 1 MiB buffers", &rows, Some(copy));
    }
    if wanted("pipeline") {
        let rows = pipeline(&words, reps);
        print_table("stripe pipeline (StripeCodec), no I/O", &rows, Some(copy));
    }
    if wanted("frames") {
        let rows = frame_sizes(&words, reps);
        print_table(
            "frame sizes (StripeCodec, 1 MiB stripes, no I/O)",
            &rows,
            Some(copy),
        );
    }
    if wanted("volume") {
        // At least twice the 8 MiB stripe cache of the cached-read row, so that row
        // decodes every stripe once per pass.
        let file_mib = env_usize("ARGOSFS_BENCH_FILE_MIB", 256).max(16);
        let data = mixed_data(&words, file_mib, 0x5eed);
        let mut rows = Vec::new();
        let only = std::env::var("ARGOSFS_BENCH_MODES").ok();
        for mode in &VOLUME_MODES {
            if only
                .as_deref()
                .is_none_or(|o| o.split(',').any(|m| m == mode.name))
            {
                rows.extend(volume_mode(mode, &data, reps));
            }
        }
        rows.extend(syncfs_cost(reps));
        print_table(
            &format!(
                "Volume API, {file_mib} MiB file on six directory disks ({})",
                fs_note()
            ),
            &rows,
            Some(copy),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Data

/// The words of the project's Rust sources, each with the whitespace after it.
fn text_words() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["lib", "tests", "bin", "examples"] {
        collect_rs(&top.join(dir), &mut files);
    }
    files.sort();
    let mut words = Vec::new();
    for file in files {
        let text = std::fs::read(&file).expect("source file is readable");
        words.extend(
            text.split_inclusive(|b| *b == b' ' || *b == b'\n')
                .map(<[u8]>::to_vec),
        );
    }
    assert!(words.len() > 10_000, "too few words for text data");
    words
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `len` bytes of text: words drawn uniformly from the word list (so by frequency).
fn text(words: &[Vec<u8>], rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        out.extend_from_slice(&words[(rng.next_u64() % words.len() as u64) as usize]);
    }
    out.truncate(len);
    out
}

fn random(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out);
    out
}

/// One "mixed" MiB: 512 KiB of text then 512 KiB of random bytes.
fn mixed_stripe(words: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = text(words, rng, MIB / 2);
    out.extend_from_slice(&random(rng, MIB / 2));
    out
}

/// `mib` mixed MiB in one buffer.
fn mixed_data(words: &[Vec<u8>], mib: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(mib * MIB);
    for _ in 0..mib {
        out.extend_from_slice(&mixed_stripe(words, &mut rng));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mixed,
    Text,
    Random,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mixed => "mixed",
            Kind::Text => "text",
            Kind::Random => "random",
        }
    }
}

/// `STRIPES` stripes of 1 MiB of one kind.
fn stripes(words: &[Vec<u8>], kind: Kind) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0xda7a + kind as u64);
    (0..STRIPES)
        .map(|_| match kind {
            Kind::Text => text(words, &mut rng, MIB),
            Kind::Random => random(&mut rng, MIB),
            Kind::Mixed => mixed_stripe(words, &mut rng),
        })
        .collect()
}

fn ctx(chunk: usize) -> StripeContext {
    StripeContext {
        volume: VolumeId([7; 16]),
        inode: InodeId(42),
        chunk: chunk as u64,
        stripe: StripeId(1000 + chunk as u64),
    }
}

fn cipher() -> Cipher {
    MasterKey::derive(PASSPHRASE, &KdfParams::generate_cheap())
        .expect("cheap KDF parameters are valid")
        .stripe_cipher()
}

// ---------------------------------------------------------------------------------------
// Memory copy

/// Two copies of 1 MiB pieces: one buffer pair reused (it stays in L2), and 256 MiB
/// streamed from one buffer to another (bigger than any cache share this VM can count
/// on: it is the memory-copy reference).
fn memcpy_reference(reps: usize) -> Vec<Row> {
    let hot_src = vec![0x5au8; MIB];
    let mut hot_dst = vec![0u8; MIB];
    let rounds = 256;
    let hot = bench(
        "memcpy 1 MiB, same buffers (cache-hot)",
        Unit::Bytes,
        (rounds * MIB) as f64,
        1,
        reps,
        |_| {
            for _ in 0..rounds {
                hot_dst.copy_from_slice(black_box(&hot_src));
                black_box(&mut hot_dst);
            }
        },
    );
    let total = 256 * MIB;
    let mut src = vec![0u8; total];
    Rng::new(1).fill(&mut src);
    let mut dst = vec![1u8; total];
    let streaming = bench(
        "memcpy 1 MiB pieces, 256 MiB -> 256 MiB (streaming)",
        Unit::Bytes,
        total as f64,
        1,
        reps,
        |_| {
            for (d, s) in dst.chunks_exact_mut(MIB).zip(src.chunks_exact(MIB)) {
                d.copy_from_slice(black_box(s));
            }
            black_box(&mut dst);
        },
    );
    assert!(dst == src, "memory copy is wrong");
    vec![hot, streaming]
}

/// What the kernel charges for the shard files alone, in the same run: plain write(2)
/// of six new 256 KiB files per MiB (what a stripe costs at 4+2), the same files
/// overwritten in place, the store's own framed writes and verified reads, and the first
/// touch of new anonymous memory. On this VM, memory the guest has freed is handed back
/// to the host (virtio-balloon free page reporting), so the first touch of a page the
/// kernel takes from its free lists can cost a host fault: compare "new files" with
/// "overwrite in place".
fn page_cache_reference(reps: usize) -> Vec<Row> {
    let dir = tempfile::Builder::new()
        .prefix("argosfs-bench-store-")
        .tempdir_in(common::temp_base())
        .expect("temp dir");
    let disks: Vec<DirDisk> = (0..6)
        .map(|i| DirDisk::create(&dir.path().join(format!("d{i}"))).expect("disk dir"))
        .collect();
    let raw: Vec<PathBuf> = (0..6).map(|i| dir.path().join(format!("raw{i}"))).collect();
    for path in &raw {
        std::fs::create_dir(path).expect("mkdir");
    }
    let mut payload = vec![0u8; MIB / 4];
    Rng::new(3).fill(&mut payload);
    let bytes = (STRIPES * MIB) as f64;
    let mut rows = Vec::new();

    // New files in each repetition, as a volume writes every stripe to new shard files.
    // With `delete`, the previous repetition's files are deleted untimed (a volume
    // deletes replaced shards after a commit), so their pages are free to be reused.
    let new_files = |name: &str,
                     delete: bool,
                     put: &dyn Fn(usize, usize, usize),
                     remove: &dyn Fn(usize, usize, usize)| {
        let mut rates = Vec::new();
        let (mut users, mut syss) = (Vec::new(), Vec::new());
        for rep in 0..=reps {
            let ((), wall, user, sys) = common::timed(|| {
                for stripe in 0..STRIPES {
                    for disk in 0..6 {
                        put(rep, stripe, disk);
                    }
                }
            });
            if rep == 0 {
                continue;
            }
            rates.push(bytes / wall.as_secs_f64());
            users.push(user);
            syss.push(sys);
            if delete {
                for stripe in 0..STRIPES {
                    for disk in 0..6 {
                        remove(rep - 1, stripe, disk);
                    }
                }
            }
        }
        Row::from_rates(name, Unit::Bytes, &rates).note(common::cpu_note(bytes, &users, &syss))
    };
    let raw_file =
        |rep: usize, stripe: usize, disk: usize| raw[disk].join(format!("{rep}-{stripe}"));
    let raw_put = |rep: usize, stripe: usize, disk: usize| {
        std::fs::write(raw_file(rep, stripe, disk), &payload).expect("write");
    };
    let raw_remove = |rep: usize, stripe: usize, disk: usize| {
        std::fs::remove_file(raw_file(rep, stripe, disk)).expect("remove");
    };
    rows.push(new_files(
        "write(2) 6 new 256 KiB files per MiB, old set deleted",
        true,
        &raw_put,
        &raw_remove,
    ));
    let fresh_put = |rep: usize, stripe: usize, disk: usize| {
        std::fs::write(raw[disk].join(format!("fresh-{rep}-{stripe}")), &payload).expect("write");
    };
    rows.push(new_files(
        "write(2) 6 new 256 KiB files per MiB, nothing deleted",
        false,
        &fresh_put,
        &|_, _, _| {},
    ));
    let last = reps;
    rows.push(common::bench_cpu(
        "write(2) the same 6 files per MiB in place",
        bytes,
        1,
        reps,
        |_| {
            for stripe in 0..STRIPES {
                for disk in 0..6 {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(raw_file(last, stripe, disk))
                        .expect("open");
                    std::io::Write::write_all(&mut file, &payload).expect("write");
                }
            }
        },
    ));
    rows.push(common::bench_cpu(
        "read(2) 4 of those files per MiB (page cache warm)",
        bytes,
        1,
        reps,
        |_| {
            for stripe in 0..STRIPES {
                for disk in 0..4 {
                    black_box(std::fs::read(raw_file(last, stripe, disk)).expect("read"));
                }
            }
        },
    ));

    let volume = VolumeId([9; 16]);
    let header = |rep: usize, stripe: usize, disk: usize| ShardHeader {
        stripe: StripeId((rep * STRIPES + stripe) as u64),
        index: ShardIndex(disk as u8),
        k: K,
        m: M,
        inode: InodeId(42),
        chunk: stripe as u64,
    };
    let shard_put = |rep: usize, stripe: usize, disk: usize| {
        shard::write_shard(&disks[disk], volume, &header(rep, stripe, disk), &payload)
            .expect("shard write");
    };
    let shard_remove = |rep: usize, stripe: usize, disk: usize| {
        disks[disk]
            .delete_shard(header(rep, stripe, disk).key())
            .expect("shard delete");
    };
    rows.push(new_files(
        "store::write_shard, 6 new shard files per MiB, old set deleted",
        true,
        &shard_put,
        &shard_remove,
    ));
    rows.push(common::bench_cpu(
        "store::read_shard, 4 per MiB (read + verify)",
        bytes,
        1,
        reps,
        |_| {
            for stripe in 0..STRIPES {
                for (i, disk) in disks.iter().enumerate().take(4) {
                    let key = header(last, stripe, i).key();
                    black_box(shard::read_shard(disk, volume, key).expect("shard read"));
                }
            }
        },
    ));
    drop(disks);
    drop(dir);

    let fresh = 256 * MIB;
    rows.push(common::bench_cpu(
        "first touch of 256 MiB of new anonymous memory",
        fresh as f64,
        1,
        reps,
        |_| {
            let mut v: Vec<u8> = Vec::with_capacity(fresh);
            v.resize(fresh, 1);
            black_box(&v);
        },
    ));
    rows
}

// ---------------------------------------------------------------------------------------
// Primitives

/// The building blocks of the pipeline on 1 MiB, so the pipeline figures can be split.
fn primitives(words: &[Vec<u8>], reps: usize) -> Vec<Row> {
    let mixed = stripes(words, Kind::Mixed);
    let text = stripes(words, Kind::Text);
    let random = stripes(words, Kind::Random);
    let bytes = (STRIPES * MIB) as f64;
    let mut rows = Vec::new();

    rows.push(bench(
        "crc32c, 64 distinct stripes",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for s in &mixed {
                black_box(crc32c::crc32c(black_box(s)));
            }
        },
    ));
    rows.push(bench(
        "crc32c, one stripe again and again (cache-hot)",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for _ in 0..STRIPES {
                black_box(crc32c::crc32c(black_box(&mixed[0])));
            }
        },
    ));
    rows.push(bench(
        "new 1 MiB Vec + copy (encode's data buffer)",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for s in &mixed {
                let mut v = Vec::with_capacity(MIB);
                v.extend_from_slice(s);
                black_box(&v);
            }
        },
    ));
    rows.push(bench(
        "new 1 MiB Vec + zero + copy (write's dirty buffer, read's output)",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for s in &mixed {
                let mut v = vec![0u8; MIB];
                black_box(&mut v);
                v.copy_from_slice(s);
                black_box(&v);
            }
        },
    ));
    rows.push(bench(
        "reed-solomon 4+2 encode",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for s in &mixed {
                let shards: Vec<&[u8]> = s.chunks_exact(MIB / 4).collect();
                black_box(ReedSolomonSimd.encode(4, 2, &shards).unwrap());
            }
        },
    ));
    let parity: Vec<Vec<Vec<u8>>> = mixed
        .iter()
        .map(|s| {
            let shards: Vec<&[u8]> = s.chunks_exact(MIB / 4).collect();
            ReedSolomonSimd.encode(4, 2, &shards).unwrap()
        })
        .collect();
    rows.push(bench(
        "reed-solomon 4+2 recover_data, shards 0,1 lost",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |rep| {
            for (s, p) in mixed.iter().zip(&parity) {
                let mut shards: Vec<Option<&[u8]>> = s.chunks_exact(MIB / 4).map(Some).collect();
                shards.extend(p.iter().map(|p| Some(p.as_slice())));
                shards[0] = None;
                shards[1] = None;
                let data = ReedSolomonSimd.recover_data(4, 2, &shards).unwrap();
                if rep == 0 {
                    assert!(data == *s, "recover_data is wrong");
                }
                black_box(data);
            }
        },
    ));
    let cipher = cipher();
    let mut buf = mixed[0].clone();
    rows.push(bench(
        "xchacha20poly1305 seal in place",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |_| {
            for i in 0..STRIPES {
                black_box(cipher.seal_in_place(&ctx(i).frame_aad(0, 1, &[0; 32]), &mut buf));
            }
        },
    ));
    for (level, data, kind) in [
        (1, &mixed, Kind::Mixed),
        (1, &text, Kind::Text),
        (1, &random, Kind::Random),
        (3, &mixed, Kind::Mixed),
    ] {
        let mode = Compression::Zstd { level };
        let compressed: usize = data
            .iter()
            .map(|s| compress::compress(mode, s).map_or(s.len(), |c| c.len()))
            .sum();
        let ratio = bytes / compressed as f64;
        let mut out = Vec::with_capacity(2 * MIB);
        rows.push(
            bench(
                format!("zstd:{level} compress, {}", kind.name()),
                Unit::Bytes,
                bytes,
                1,
                reps,
                |_| {
                    for s in data.iter() {
                        out.clear();
                        black_box(compress::compress_append(mode, s, &mut out));
                    }
                },
            )
            .note(format!("ratio {ratio:.2}")),
        );
    }
    // Levels below 1 (zstd's "fast" levels): Compression::parse accepts only 1..=19.
    for (level, data, kind) in [(-3, &mixed, Kind::Mixed), (-3, &text, Kind::Text)] {
        let mut compressor = zstd::bulk::Compressor::new(level).expect("zstd level");
        let compressed: usize = data
            .iter()
            .map(|s| compressor.compress(s).expect("compress").len().min(s.len()))
            .sum();
        let mut out = Vec::with_capacity(2 * MIB);
        rows.push(
            bench(
                format!(
                    "zstd:{level} compress, {} (not selectable today)",
                    kind.name()
                ),
                Unit::Bytes,
                bytes,
                1,
                reps,
                |_| {
                    for s in data.iter() {
                        out.clear();
                        black_box(
                            compressor
                                .compress_to_buffer(s, &mut out)
                                .expect("compress"),
                        );
                    }
                },
            )
            .note(format!("ratio {:.2}", bytes / compressed as f64)),
        );
    }
    let frames: Vec<Vec<u8>> = mixed
        .iter()
        .map(|s| compress::compress(Compression::Zstd { level: 1 }, s).expect("mixed shrinks"))
        .collect();
    rows.push(bench(
        "zstd decompress, mixed (zstd:1 frames)",
        Unit::Bytes,
        bytes,
        1,
        reps,
        |rep| {
            for (f, s) in frames.iter().zip(&mixed) {
                let mut plain = Vec::new();
                compress::decompress_append(f, MIB, &mut plain).unwrap();
                if rep == 0 {
                    assert!(plain == *s, "decompress is wrong");
                }
                black_box(plain);
            }
        },
    ));

    rows
}

// ---------------------------------------------------------------------------------------
// Pipeline

struct PipelineMode {
    name: &'static str,
    compression: Compression,
    encrypted: bool,
}

const PIPELINE_MODES: [PipelineMode; 5] = [
    PipelineMode {
        name: "plain",
        compression: Compression::None,
        encrypted: false,
    },
    PipelineMode {
        name: "zstd:1",
        compression: Compression::Zstd { level: 1 },
        encrypted: false,
    },
    PipelineMode {
        name: "zstd:3",
        compression: Compression::Zstd { level: 3 },
        encrypted: false,
    },
    PipelineMode {
        name: "encrypted",
        compression: Compression::None,
        encrypted: true,
    },
    PipelineMode {
        name: "zstd:1+encrypted",
        compression: Compression::Zstd { level: 1 },
        encrypted: true,
    },
];

fn codec(compression: Compression, encrypted: bool) -> StripeCodec {
    StripeCodec::new(
        K,
        M,
        compression,
        encrypted.then(cipher),
        Arc::new(ReedSolomonSimd),
    )
}

fn pipeline(words: &[Vec<u8>], reps: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mixed = stripes(words, Kind::Mixed);
    for mode in &PIPELINE_MODES {
        rows.extend(pipeline_rows(mode, &mixed, Kind::Mixed, reps, true));
    }
    // Compression on the two extremes of the mix.
    let zstd = &PIPELINE_MODES[1];
    for kind in [Kind::Text, Kind::Random] {
        rows.extend(pipeline_rows(
            zstd,
            &stripes(words, kind),
            kind,
            reps,
            false,
        ));
    }
    rows
}

fn pipeline_rows(
    mode: &PipelineMode,
    data: &[Vec<u8>],
    kind: Kind,
    reps: usize,
    degraded: bool,
) -> Vec<Row> {
    let codec = codec(mode.compression, mode.encrypted);
    let bytes = (data.len() * MIB) as f64;
    let label = |what: &str| format!("{what}: {}, {}", mode.name, kind.name());
    let mut rows = Vec::new();
    rows.push(bench(label("encode"), Unit::Bytes, bytes, 1, reps, |_| {
        for (i, s) in data.iter().enumerate() {
            black_box(codec.encode(&ctx(i), black_box(s)).unwrap());
        }
    }));
    let encoded: Vec<EncodedStripe> = data
        .iter()
        .enumerate()
        .map(|(i, s)| codec.encode(&ctx(i), s).unwrap())
        .collect();
    let payload: usize = encoded.iter().map(|e| e.info.payload_len as usize).sum();
    let ratio = format!("payload/plain {:.2}", payload as f64 / bytes);
    rows[0].note = ratio;
    let lost: &[usize] = if degraded { &[0, 1] } else { &[] };
    let decode = |name: String, lost: &[usize]| {
        bench(name, Unit::Bytes, bytes, 1, reps, |rep| {
            for (i, (e, s)) in encoded.iter().zip(data).enumerate() {
                let mut views: Vec<Option<&[u8]>> = e.shards().map(Some).collect();
                for &l in lost {
                    views[l] = None;
                }
                let plain = codec.decode(&ctx(i), &e.info, &views).unwrap();
                if rep == 0 {
                    assert!(plain == *s, "decode is wrong");
                }
                black_box(plain);
            }
        })
    };
    rows.push(decode(label("decode"), &[]));
    if !lost.is_empty() {
        rows.push(decode(label("decode, data shards 0+1 lost"), lost));
    }
    rows
}

// ---------------------------------------------------------------------------------------
// Frame sizes (issue 12)

/// Frame sizes compared; 1 MiB is one frame per stripe: the whole-stripe transform.
const FRAME_SIZES: [usize; 4] = [4 << 10, 16 << 10, 64 << 10, MIB];

/// Random 4 KiB reads per timed repetition of a frame-size row.
const FRAME_READS: usize = 20_000;

/// For each mode, data kind and frame size: encode rate and payload size, the rate of
/// random 4 KiB reads that open only the frames they cover (tables parsed beforehand,
/// as the volume caches them; no I/O), and the whole-stripe decode rate.
fn frame_sizes(words: &[Vec<u8>], reps: usize) -> Vec<Row> {
    let text = stripes(words, Kind::Text);
    let random = stripes(words, Kind::Random);
    let zstd3 = Compression::Zstd { level: 3 };
    let mode = |name, compression, encrypted| PipelineMode {
        name,
        compression,
        encrypted,
    };
    let cases = [
        (mode("zstd:3", zstd3, false), Kind::Text),
        (mode("zstd:3", zstd3, false), Kind::Random),
        (mode("encrypted", Compression::None, true), Kind::Random),
        (mode("zstd:3+encrypted", zstd3, true), Kind::Text),
        (mode("zstd:3+encrypted", zstd3, true), Kind::Random),
    ];
    let mut rows = Vec::new();
    for (mode, kind) in cases {
        let data = if kind == Kind::Text { &text } else { &random };
        for frame_bytes in FRAME_SIZES {
            let frame = std::num::NonZeroU32::new(frame_bytes as u32).expect("not zero");
            let codec = codec(mode.compression, mode.encrypted).with_frame_bytes(frame);
            let size = if frame_bytes == MIB {
                "whole 1 MiB".to_string()
            } else {
                format!("{} KiB frames", frame_bytes >> 10)
            };
            let label = |what: &str| format!("{what}: {}, {}, {size}", mode.name, kind.name());
            rows.extend(frame_rows(&codec, data, reps, label));
        }
    }
    rows
}

fn frame_rows(
    codec: &StripeCodec,
    data: &[Vec<u8>],
    reps: usize,
    label: impl Fn(&str) -> String,
) -> Vec<Row> {
    let bytes = (data.len() * MIB) as f64;
    let encode = bench(label("encode"), Unit::Bytes, bytes, 1, reps, |_| {
        for (i, s) in data.iter().enumerate() {
            black_box(codec.encode(&ctx(i), black_box(s)).unwrap());
        }
    });
    let encoded: Vec<EncodedStripe> = data
        .iter()
        .enumerate()
        .map(|(i, s)| codec.encode(&ctx(i), s).unwrap())
        .collect();
    let payload: usize = encoded.iter().map(|e| e.info.payload_len as usize).sum();
    let encode = encode.note(format!("payload/plain {:.3}", payload as f64 / bytes));
    // The payloads as a reader finds them in the data shards, and their tables (None: a
    // plain stripe, read by copying).
    let payloads: Vec<Vec<u8>> = encoded
        .iter()
        .map(|e| {
            let mut p: Vec<u8> = e.shards().take(codec.k()).flatten().copied().collect();
            p.truncate(e.info.payload_len as usize);
            p
        })
        .collect();
    let tables: Vec<Option<FrameTable>> = encoded
        .iter()
        .zip(&payloads)
        .enumerate()
        .map(|(i, (e, p))| {
            let len = codec.frame_table_len(&e.info).unwrap()?;
            Some(codec.frame_table(&ctx(i), &e.info, &p[..len]).unwrap())
        })
        .collect();
    let mut rng = Rng::new(0x4ead);
    let reads: Vec<(usize, usize)> = (0..FRAME_READS)
        .map(|_| {
            let stripe = (rng.next_u64() % data.len() as u64) as usize;
            let block = (rng.next_u64() % (MIB / 4096) as u64) as usize;
            (stripe, block * 4096)
        })
        .collect();
    let mut frames_opened = 0usize;
    let random = bench(
        label("random 4 KiB reads"),
        Unit::Ops,
        FRAME_READS as f64,
        1,
        reps,
        |rep| {
            let mut plain = Vec::new();
            let mut out = [0u8; 4096];
            for &(i, at) in &reads {
                match &tables[i] {
                    None => out.copy_from_slice(&payloads[i][at..at + 4096]),
                    Some(table) => {
                        let frames = table.covering(at..at + 4096);
                        plain.clear();
                        let first = table.plain_range(frames.start).start;
                        for f in frames.clone() {
                            let stored = &payloads[i][table.stored_range(f)];
                            codec
                                .open_frame(&ctx(i), table, f, stored, &mut plain)
                                .unwrap();
                        }
                        if rep == 0 {
                            frames_opened += frames.len();
                        }
                        out.copy_from_slice(&plain[at - first..at - first + 4096]);
                    }
                }
                if rep == 0 {
                    assert!(out[..] == data[i][at..at + 4096], "frame read is wrong");
                }
                black_box(&out);
            }
        },
    )
    .note(format!(
        "{:.2} frames opened per read",
        frames_opened as f64 / FRAME_READS as f64
    ));
    let whole = bench(label("whole decode"), Unit::Bytes, bytes, 1, reps, |rep| {
        for (i, (e, s)) in encoded.iter().zip(data).enumerate() {
            let views: Vec<Option<&[u8]>> = e.shards().map(Some).collect();
            let plain = codec.decode(&ctx(i), &e.info, &views).unwrap();
            if rep == 0 {
                assert!(plain == *s, "decode is wrong");
            }
            black_box(plain);
        }
    });
    vec![encode, random, whole]
}

// ---------------------------------------------------------------------------------------
// Volume

/// A disk that drops every shard put to it (and passes everything else through).
struct Discard(DiskRef);

impl Disk for Discard {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn put_shard(&self, _key: ShardKey, parts: &[&[u8]]) -> std::io::Result<()> {
        black_box(parts);
        Ok(())
    }
    fn get_shard(&self, key: ShardKey) -> std::io::Result<Vec<u8>> {
        self.0.get_shard(key)
    }
    fn delete_shard(&self, key: ShardKey) -> std::io::Result<()> {
        self.0.delete_shard(key)
    }
    fn list_shards(&self) -> std::io::Result<Vec<ShardKey>> {
        self.0.list_shards()
    }
    fn shard_modified(&self, key: ShardKey) -> std::io::Result<std::time::SystemTime> {
        self.0.shard_modified(key)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.0.sync()
    }
    fn space(&self) -> std::io::Result<DiskSpace> {
        self.0.space()
    }
    fn read_label(&self) -> std::io::Result<Option<Vec<u8>>> {
        self.0.read_label()
    }
    fn write_label(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_label(bytes)
    }
}

struct VolumeMode {
    name: &'static str,
    compression: Compression,
    encrypted: bool,
}

const VOLUME_MODES: [VolumeMode; 4] = [
    VolumeMode {
        name: "plain",
        compression: Compression::None,
        encrypted: false,
    },
    VolumeMode {
        name: "zstd:1",
        compression: Compression::Zstd { level: 1 },
        encrypted: false,
    },
    VolumeMode {
        name: "encrypted",
        compression: Compression::None,
        encrypted: true,
    },
    VolumeMode {
        name: "zstd:1+encrypted",
        compression: Compression::Zstd { level: 1 },
        encrypted: true,
    },
];

fn fs_note() -> String {
    let base = common::temp_base();
    let fs = std::process::Command::new("df")
        .args(["--output=fstype"])
        .arg(&base)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().nth(1).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "?".into());
    format!("{} on {fs}", base.display())
}

fn volume_mode(mode: &VolumeMode, data: &[u8], reps: usize) -> Vec<Row> {
    let caller = Caller::root();
    let dir = tempfile::Builder::new()
        .prefix("argosfs-bench-vol-")
        .tempdir_in(common::temp_base())
        .expect("temp dir");
    let root = dir.path().join("root");
    let disk_paths: Vec<PathBuf> = (0..6)
        .map(|i| dir.path().join(format!("disk{i}")))
        .collect();
    let passphrase = mode.encrypted.then(|| PASSPHRASE.to_vec());
    // Stripes neither compressed nor encrypted are read straight from their data shards.
    let direct = matches!(mode.compression, Compression::None) && !mode.encrypted;
    format(
        &root,
        FormatOptions {
            disks: disk_paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    DiskConfig::parse(DiskId(i as u16), p.to_str().expect("utf-8 temp path"))
                        .expect("disk spec")
                })
                .collect(),
            layout: Some((K, M)),
            stripe_bytes: MIB as u32,
            compression: mode.compression,
            passphrase: passphrase.clone(),
            kdf: KdfStrength::Cheap,
            ..FormatOptions::default()
        },
    )
    .expect("format");
    let bytes = data.len() as f64;
    let name = |what: &str| format!("{}: {what}", mode.name);
    let mut rows = Vec::new();

    // Writes: each repetition writes a new file in 1 MiB writes, flushes, then fsyncs;
    // the file before it is unlinked and committed away untimed, so at most two files'
    // shards sit in the page cache.
    {
        let vol = Volume::open(
            &root,
            OpenOptions {
                passphrase: passphrase.clone(),
                ..OpenOptions::default()
            },
        )
        .expect("open");
        let mut flush_rates = Vec::new();
        let mut fsync_rates = Vec::new();
        let mut fsync_ms = Vec::new();
        let (mut users, mut syss) = (Vec::new(), Vec::new());
        for rep in 0..=reps {
            let file = format!("f{rep}");
            let ino = vol
                .create(&caller, InodeId::ROOT, file.as_bytes(), 0o644)
                .expect("create")
                .ino;
            let ((), flushed, user, sys) = common::timed(|| {
                for (i, piece) in data.chunks(MIB).enumerate() {
                    vol.write(&caller, ino, (i * MIB) as u64, black_box(piece))
                        .expect("write");
                }
                vol.flush(ino).expect("flush");
            });
            let ((), synced, _, _) = common::timed(|| vol.fsync(ino).expect("fsync"));
            if rep > 0 {
                flush_rates.push(bytes / flushed.as_secs_f64());
                fsync_rates.push(bytes / (flushed + synced).as_secs_f64());
                fsync_ms.push(synced.as_secs_f64() * 1e3);
                users.push(user);
                syss.push(sys);
                let previous = format!("f{}", rep - 1);
                vol.unlink(&caller, InodeId::ROOT, previous.as_bytes())
                    .expect("unlink");
                vol.commit().expect("commit");
            }
        }
        fsync_ms.sort_by(f64::total_cmp);
        rows.push(
            Row::from_rates(
                name("write 1 MiB + flush (page cache)"),
                Unit::Bytes,
                &flush_rates,
            )
            .note(common::cpu_note(bytes, &users, &syss)),
        );
        rows.push(
            Row::from_rates(
                name("write 1 MiB + flush + fsync"),
                Unit::Bytes,
                &fsync_rates,
            )
            .note(format!(
                "fsync alone: median {:.0} ms (syncfs x6 of the root filesystem + journal)",
                common::median(&fsync_ms)
            )),
        );
        assert_eq!(
            vol.stats().stripes_written as usize,
            (reps + 1) * data.len().div_ceil(MIB),
            "every 1 MiB write should make one stripe"
        );
        vol.close().expect("close");
    }
    // The same writes with every shard dropped instead of written: the library's own
    // cost (buffering, encode, shard framing and CRCs, placement, metadata), no kernel.
    {
        let vol = Volume::open(
            &root,
            OpenOptions {
                passphrase: passphrase.clone(),
                disk_wrapper: Some(Arc::new(|_, disk| Arc::new(Discard(disk)) as DiskRef)),
                ..OpenOptions::default()
            },
        )
        .expect("open");
        let row = common::bench_cpu(
            name("write 1 MiB + flush, shards discarded"),
            bytes,
            1,
            reps,
            |rep| {
                let file = format!("discarded{rep}");
                let ino = vol
                    .create(&caller, InodeId::ROOT, file.as_bytes(), 0o644)
                    .expect("create")
                    .ino;
                for (i, piece) in data.chunks(MIB).enumerate() {
                    vol.write(&caller, ino, (i * MIB) as u64, black_box(piece))
                        .expect("write");
                }
                vol.flush(ino).expect("flush");
                // Untimed would be better, but a metadata-only unlink is cheap.
                vol.unlink(&caller, InodeId::ROOT, file.as_bytes())
                    .expect("unlink");
            },
        );
        rows.push(row);
        vol.close().expect("close");
    }

    let last = format!("f{reps}");

    let open_ro = |cache_bytes: Option<usize>| {
        Volume::open(
            &root,
            OpenOptions {
                passphrase: passphrase.clone(),
                read_only: true,
                cache_bytes,
                ..OpenOptions::default()
            },
        )
        .expect("open read-only")
    };
    // Into one reused buffer, as the mount reads (Volume::read_into).
    let read_all = |vol: &Volume, ino: InodeId, request: usize, verify: bool| {
        let mut buf = vec![0u8; request];
        for (i, expected) in data.chunks(request).enumerate() {
            let n = vol
                .read_into(ino, (i * request) as u64, &mut buf)
                .expect("read");
            if verify {
                assert!(
                    &buf[..n] == expected,
                    "read back differs at {}",
                    i * request
                );
            }
            black_box(&buf);
        }
    };

    // Reads: shards are in the page cache (just written); cache 0 makes every request
    // read and decode its stripe's shards.
    {
        let vol = open_ro(Some(0));
        let ino = vol
            .lookup(&caller, InodeId::ROOT, last.as_bytes())
            .expect("lookup")
            .ino;
        for (request, label) in [(MIB, "1 MiB"), (128 << 10, "128 KiB")] {
            let row = common::bench_cpu(
                name(&format!("read {label}, stripe cache off")),
                bytes,
                1,
                reps,
                |rep| read_all(&vol, ino, request, rep == 0),
            );
            let why = if request == MIB {
                ""
            } else if direct {
                "; each request reads its blocks from one shard"
            } else {
                "; each request decodes its whole stripe (8x)"
            };
            rows.push(Row {
                note: format!("{}{why}", row.note),
                ..row
            });
        }
        let stats = vol.stats();
        assert_eq!(stats.degraded_reads, 0, "healthy reads went degraded");
    }
    {
        // A small cache behaves like the default 64 MiB one on a one-pass read of a
        // file bigger than the cache: one decode per stripe, seven hits.
        let vol = open_ro(Some(8 * MIB));
        let ino = vol
            .lookup(&caller, InodeId::ROOT, last.as_bytes())
            .expect("lookup")
            .ino;
        rows.push(common::bench_cpu(
            name("read 128 KiB, stripe cache 8 MiB"),
            bytes,
            1,
            reps,
            |rep| read_all(&vol, ino, 128 << 10, rep == 0),
        ));
        let stats = vol.stats();
        let decodes = if direct {
            0 // read straight from the data shards, never decoded or cached
        } else {
            (reps + 1) * data.len().div_ceil(MIB)
        };
        assert_eq!(
            stats.stripes_read as usize, decodes,
            "each stripe should be decoded once per pass, plain ones never"
        );
    }

    // Degraded: two of the six disk directories renamed away.
    for path in &disk_paths[..2] {
        std::fs::rename(path, path.with_extension("away")).expect("rename");
    }
    {
        let vol = open_ro(Some(0));
        assert_eq!(
            vol.unavailable_disks().len(),
            2,
            "two disks should be missing"
        );
        let ino = vol
            .lookup(&caller, InodeId::ROOT, last.as_bytes())
            .expect("lookup")
            .ino;
        let row = common::bench_cpu(
            name("read 1 MiB, 2 of 6 disks gone, cache off"),
            bytes,
            1,
            reps,
            |rep| read_all(&vol, ino, MIB, rep == 0),
        );
        let stats = vol.stats();
        let note = format!(
            "{}; {:.0}% of stripe reads degraded",
            row.note,
            // Every pass (the warm-up and each repetition) reads every stripe once.
            100.0 * stats.degraded_reads as f64
                / ((reps + 1) * data.len().div_ceil(MIB)).max(1) as f64
        );
        rows.push(row.note(note));
    }
    rows
}

/// What `Volume::commit` pays for syncing six disk directories that share one filesystem:
/// six syncfs(2) calls where one would do, measured on clean directories.
fn syncfs_cost(reps: usize) -> Vec<Row> {
    let dir = tempfile::Builder::new()
        .prefix("argosfs-bench-sync-")
        .tempdir_in(common::temp_base())
        .expect("temp dir");
    let disks: Vec<DirDisk> = (0..6)
        .map(|i| DirDisk::create(&dir.path().join(format!("d{i}"))).expect("disk dir"))
        .collect();
    let rounds = 20;
    let mut rows = Vec::new();
    for count in [1usize, 6] {
        rows.push(
            bench(
                format!("syncfs x{count}, nothing dirty of ours (commits/s)"),
                Unit::Ops,
                rounds as f64,
                1,
                reps,
                |_| {
                    for _ in 0..rounds {
                        for disk in disks.iter().take(count) {
                            disk.sync().expect("syncfs");
                        }
                    }
                },
            )
            .note("other builds on the machine may have dirty data"),
        );
    }
    rows
}

//! Metadata throughput of an in-process `Volume` (no mount): create, lookup, getattr,
//! readdir and unlink of N files, flat (one directory) and as a tree (1000 files per
//! directory under the root), for N = 10k, 200k and 1M, with a commit every 10k
//! operations counted in the phase's time. Also: reopen time (snapshot + journal replay)
//! and fsync-bound creates.
//!
//! Run: `cargo bench --bench metadata`. Knobs: `ARGOSFS_BENCH_META_SIZES` (comma list,
//! default `10000,200000,1000000`), `ARGOSFS_BENCH_DIR` (temp dir),
//! `ARGOSFS_BENCH_JOURNAL_LIMIT_MB` (journal size that triggers a snapshot; default the
//! library's 64 MiB), `ARGOSFS_BENCH_META_WARMUP` (files in the unreported warm-up cycle,
//! default 10000). Results: docs/PERFORMANCE.md.
//!
//! Each phase is timed as a whole and in ten equal slices: the table shows the overall
//! rate and the slowest and fastest slice, so a rate that falls as the table grows shows
//! up inside one run as well as across N. Below 100k files the whole cycle runs five
//! times (the spread is then over cycles), and read-only phases repeat until they have
//! done 200k operations.

mod common;

use argosfs::meta::snapshot::SLOTS;
use argosfs::types::{DiskId, InodeId};
use argosfs::volume::{Caller, DiskConfig, FormatOptions, OpenOptions, Volume, format};
use common::{MIB, env_usize};
use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Operations between commits.
const COMMIT_EVERY: usize = 10_000;
/// Files per directory in the tree layout.
const PER_DIR: usize = 1000;
/// Entries asked for per readdir call (about what a 4 KiB FUSE readdir buffer holds).
const READDIR_BATCH: usize = 128;
/// Slices each phase is cut into for the spread.
const SLICES: usize = 10;
/// Least operations of a read-only phase (small N repeat their passes).
const READ_OPS_MIN: usize = 200_000;
/// Below this N, whole cycles are repeated (and the spread is over cycles).
const REPEAT_BELOW: usize = 100_000;
/// Cycles run for N below REPEAT_BELOW.
const SMALL_CYCLES: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Flat,
    Tree,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Flat => "flat",
            Layout::Tree => "tree",
        }
    }
}

/// One measured phase.
struct Phase {
    name: &'static str,
    layout: Layout,
    n: usize,
    ops: usize,
    total: Duration,
    slices: Vec<f64>,
    commit: Duration,
    commits: usize,
    snapshots: usize,
    snapshot_time: Duration,
    note: String,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.total.as_secs_f64()
    }
}

/// Commits every `COMMIT_EVERY` calls and keeps the time they take, and how many of them
/// also wrote a snapshot (a snapshot slot file was replaced).
struct Committer<'a> {
    vol: &'a Volume,
    slots: [PathBuf; 2],
    since: usize,
    time: Duration,
    commits: usize,
    snapshots: usize,
    snapshot_time: Duration,
}

impl<'a> Committer<'a> {
    fn new(vol: &'a Volume, root: &Path) -> Committer<'a> {
        let meta = root.join("meta");
        Committer {
            vol,
            slots: SLOTS.map(|slot| meta.join(slot)),
            since: 0,
            time: Duration::ZERO,
            commits: 0,
            snapshots: 0,
            snapshot_time: Duration::ZERO,
        }
    }

    /// Inode numbers of the two slot files: a snapshot is written to a temp file and
    /// renamed over its slot, so the number changes.
    fn slot_inodes(&self) -> [u64; 2] {
        self.slots
            .each_ref()
            .map(|path| std::fs::metadata(path).map_or(0, |m| m.ino()))
    }

    fn tick(&mut self) {
        self.since += 1;
        if self.since >= COMMIT_EVERY {
            self.commit();
        }
    }

    fn commit(&mut self) {
        let before = self.slot_inodes();
        let start = Instant::now();
        self.vol.commit().expect("commit");
        let took = start.elapsed();
        // Not timed: two stats to see whether the commit also wrote a snapshot.
        if self.slot_inodes() != before {
            self.snapshots += 1;
            self.snapshot_time += took;
        }
        self.time += took;
        self.commits += 1;
        self.since = 0;
    }
}

/// Runs `op` for each index in `0..n`, timing ten slices; commits as `committer` says.
fn run_phase(
    name: &'static str,
    layout: Layout,
    n: usize,
    mut committer: Option<&mut Committer<'_>>,
    mut op: impl FnMut(usize) -> usize,
) -> Phase {
    let (commit0, commits0, snaps0, snap_time0) = committer
        .as_ref()
        .map_or((Duration::ZERO, 0, 0, Duration::ZERO), |c| {
            (c.time, c.commits, c.snapshots, c.snapshot_time)
        });
    let mut slices = Vec::new();
    let mut ops = 0;
    let start = Instant::now();
    for slice in 0..SLICES {
        let (lo, hi) = (n * slice / SLICES, n * (slice + 1) / SLICES);
        let slice_start = Instant::now();
        let mut slice_ops = 0;
        for i in lo..hi {
            slice_ops += op(i);
            if let Some(c) = committer.as_deref_mut() {
                c.tick();
            }
        }
        if slice + 1 == SLICES
            && let Some(c) = committer.as_deref_mut()
        {
            c.commit();
        }
        if slice_ops > 0 {
            slices.push(slice_ops as f64 / slice_start.elapsed().as_secs_f64());
        }
        ops += slice_ops;
    }
    let total = start.elapsed();
    let (commit, commits, snapshots, snapshot_time) =
        committer
            .as_ref()
            .map_or((Duration::ZERO, 0, 0, Duration::ZERO), |c| {
                (
                    c.time - commit0,
                    c.commits - commits0,
                    c.snapshots - snaps0,
                    c.snapshot_time - snap_time0,
                )
            });
    Phase {
        name,
        layout,
        n,
        ops,
        total,
        slices,
        commit,
        commits,
        snapshots,
        snapshot_time,
        note: String::new(),
    }
}

fn file_name(i: usize) -> Vec<u8> {
    format!("file-{i:08}").into_bytes()
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Open options of the measured volumes: the defaults, or a journal bound from
/// `ARGOSFS_BENCH_JOURNAL_LIMIT_MB` (to see what snapshots cost).
fn open_options() -> OpenOptions {
    OpenOptions {
        journal_limit_bytes: std::env::var("ARGOSFS_BENCH_JOURNAL_LIMIT_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|mb| mb << 20),
        ..OpenOptions::default()
    }
}

fn make_volume(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let disks = (0..6)
        .map(|i| {
            let path = dir.join(format!("disk{i}"));
            DiskConfig::parse(DiskId(i), path.to_str().expect("utf-8 temp path"))
                .expect("disk spec")
        })
        .collect();
    format(
        &root,
        FormatOptions {
            disks,
            layout: Some((4, 2)),
            ..FormatOptions::default()
        },
    )
    .expect("format");
    root
}

/// The whole cycle for `n` files in `layout`.
fn cycle(n: usize, layout: Layout) -> Vec<Phase> {
    let caller = Caller::root();
    let dir = tempfile::Builder::new()
        .prefix("argosfs-bench-meta-")
        .tempdir_in(common::temp_base())
        .expect("temp dir");
    let root = make_volume(dir.path());
    let mut phases = Vec::new();
    let rss0 = rss_bytes();

    let vol = Volume::open(&root, open_options()).expect("open");
    let dir_count = match layout {
        Layout::Flat => 0,
        Layout::Tree => n.div_ceil(PER_DIR),
    };
    let mut committer = Committer::new(&vol, &root);
    let mut dirs: Vec<InodeId> = Vec::with_capacity(dir_count);
    if layout == Layout::Tree {
        let mut phase = run_phase("mkdir", layout, dir_count, Some(&mut committer), |j| {
            let name = format!("dir-{j:05}");
            dirs.push(
                vol.mkdir(&caller, InodeId::ROOT, name.as_bytes(), 0o755)
                    .expect("mkdir")
                    .ino,
            );
            1
        });
        phase.n = n;
        phase.note = format!("{dir_count} directories");
        phases.push(phase);
    }
    let parent = |i: usize| match layout {
        Layout::Flat => InodeId::ROOT,
        Layout::Tree => dirs[i / PER_DIR],
    };
    let mut inos: Vec<InodeId> = Vec::with_capacity(n);
    let mut create = run_phase("create", layout, n, Some(&mut committer), |i| {
        inos.push(
            vol.create(&caller, parent(i), &file_name(i), 0o644)
                .expect("create")
                .ino,
        );
        1
    });
    let rss = rss_bytes().saturating_sub(rss0);
    create.note = format!("RSS +{:.0} B/file", rss as f64 / n as f64);
    phases.push(create);
    drop(committer);
    vol.close().expect("close");

    // Reopen: newest snapshot plus journal replay.
    let start = Instant::now();
    let vol = Volume::open(&root, open_options()).expect("reopen");
    let reopen = start.elapsed();
    let report = vol.open_report();
    phases.push(Phase {
        name: "reopen",
        layout,
        n,
        ops: n,
        total: reopen,
        slices: Vec::new(),
        commit: Duration::ZERO,
        commits: 0,
        snapshots: 0,
        snapshot_time: Duration::ZERO,
        note: format!(
            "{:.0} ms: snapshot txid {} ({:.0} MB; slots at txids {:?}) + {} records replayed (journal file {:.0} MB)",
            reopen.as_secs_f64() * 1e3,
            report.snapshot_txid,
            file_mb(&root.join("meta").join(SLOTS[report.snapshot_slot])),
            report.slots.iter().map(|s| s.txid).collect::<Vec<_>>(),
            report.replayed_records,
            file_mb(&root.join("meta").join("journal")),
        ),
    });

    // Read-only phases repeat over the files until they have done at least
    // READ_OPS_MIN operations, so small N are timed over more than a few milliseconds.
    let passes = READ_OPS_MIN.div_ceil(n).max(1);
    let mut lookup = run_phase("lookup", layout, n * passes, None, |i| {
        let i = i % n;
        let attr = vol
            .lookup(&caller, parent(i), black_box(&file_name(i)))
            .expect("lookup");
        assert_eq!(attr.ino, inos[i], "lookup found another inode");
        1
    });
    lookup.n = n;
    lookup.note = format!("name -> attributes, creation order, {passes} pass(es)");
    phases.push(lookup);

    let mut getattr = run_phase("getattr", layout, n * passes, None, |i| {
        black_box(vol.getattr(inos[i % n]).expect("getattr"));
        1
    });
    getattr.n = n;
    phases.push(getattr);

    let listed: Vec<InodeId> = match layout {
        Layout::Flat => vec![InodeId::ROOT],
        Layout::Tree => dirs.clone(),
    };
    let mut seen = 0usize;
    let mut readdir = run_phase("readdir", layout, listed.len() * passes, None, |j| {
        let j = j % listed.len();
        let mut offset = 0;
        let mut entries = 0;
        loop {
            let batch = vol
                .readdir(listed[j], offset, READDIR_BATCH)
                .expect("readdir");
            let Some(last) = batch.last() else { break };
            offset = last.next_offset;
            entries += batch.len();
            black_box(&batch);
            if batch.len() < READDIR_BATCH {
                break;
            }
        }
        seen += entries - 2; // "." and ".."
        entries
    });
    assert_eq!(seen, n * passes, "readdir did not list every file");
    readdir.n = n;
    readdir.note = format!("entries/s, {READDIR_BATCH} per call, {passes} pass(es)");
    phases.push(readdir);

    let mut committer = Committer::new(&vol, &root);
    phases.push(run_phase("unlink", layout, n, Some(&mut committer), |i| {
        vol.unlink(&caller, parent(i), &file_name(i))
            .expect("unlink");
        1
    }));
    drop(committer);
    assert_eq!(
        vol.readdir(InodeId::ROOT, 0, 10).expect("readdir").len(),
        2 + dir_count.min(8),
        "unlink left files behind"
    );
    vol.close().expect("close");
    phases
}

/// Creates with an fsync after each: what an fsync-heavy application sees.
fn fsync_bound(count: usize, write_bytes: usize) -> (f64, String) {
    let caller = Caller::root();
    let dir = tempfile::Builder::new()
        .prefix("argosfs-bench-fsync-")
        .tempdir_in(common::temp_base())
        .expect("temp dir");
    let root = make_volume(dir.path());
    let vol = Volume::open(&root, OpenOptions::default()).expect("open");
    let data = vec![0x42u8; write_bytes];
    let mut lat = Vec::new();
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let ino = vol
            .create(&caller, InodeId::ROOT, &file_name(i), 0o644)
            .expect("create")
            .ino;
        vol.write(&caller, ino, 0, &data).expect("write");
        vol.fsync(ino).expect("fsync");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let stats = vol.stats();
    vol.close().expect("close");
    (
        rate,
        format!(
            "latency median {:.2} ms, p90 {:.2} ms; {} stripes written",
            common::median(&lat),
            lat[lat.len() * 9 / 10],
            stats.stripes_written
        ),
    )
}

/// Adds up repeated cycles phase by phase; the spread becomes the per-cycle rates.
fn merge(mut runs: Vec<Vec<Phase>>) -> Vec<Phase> {
    if runs.len() == 1 {
        return runs.pop().expect("one run");
    }
    let mut merged = runs.remove(0);
    for phase in &mut merged {
        phase.slices = vec![phase.rate()];
    }
    for run in runs {
        for (into, p) in merged.iter_mut().zip(run) {
            let rate = p.rate();
            into.ops += p.ops;
            into.total += p.total;
            into.commit += p.commit;
            into.commits += p.commits;
            into.snapshots += p.snapshots;
            into.snapshot_time += p.snapshot_time;
            into.slices.push(rate);
        }
    }
    merged
}

fn print_phases(phases: &[Phase]) {
    println!();
    println!("## metadata operations, in-process Volume, commit every {COMMIT_EVERY} ops included");
    println!(
        "{:<8} {:<5} {:>9} {:>11} {:>23} {:>14} {:>26}  note",
        "phase",
        "dirs",
        "N",
        "ops/s",
        "slowest .. fastest slice",
        "w/o commits",
        "commit share (snapshots)"
    );
    for p in phases {
        let spread = if p.slices.is_empty() {
            String::new()
        } else {
            let lo = p.slices.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = p.slices.iter().copied().fold(0.0, f64::max);
            format!("{lo:.0} .. {hi:.0}")
        };
        let (commit, without) = if p.commits == 0 {
            (String::new(), String::new())
        } else {
            (
                format!(
                    "{:.1}% in {} ({}: {:.0} ms)",
                    100.0 * p.commit.as_secs_f64() / p.total.as_secs_f64(),
                    p.commits,
                    p.snapshots,
                    p.snapshot_time.as_secs_f64() * 1e3
                ),
                format!("{:.0}", p.ops as f64 / (p.total - p.commit).as_secs_f64()),
            )
        };
        println!(
            "{:<8} {:<5} {:>9} {:>11.0} {:>23} {:>14} {:>26}  {}",
            p.name,
            p.layout.name(),
            p.n,
            p.rate(),
            spread,
            without,
            commit,
            p.note
        );
    }
}

fn main() {
    println!("# ArgosFS metadata operations");
    println!("machine: {}", common::describe_machine());
    let sizes: Vec<usize> = std::env::var("ARGOSFS_BENCH_META_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 200_000, 1_000_000]);
    // Warm-up: code, allocator and the temp filesystem, not reported.
    black_box(cycle(
        env_usize("ARGOSFS_BENCH_META_WARMUP", 10_000),
        Layout::Flat,
    ));
    let mut phases = Vec::new();
    for &n in &sizes {
        for layout in [Layout::Flat, Layout::Tree] {
            let start = Instant::now();
            let cycles = if n < REPEAT_BELOW { SMALL_CYCLES } else { 1 };
            let runs: Vec<Vec<Phase>> = (0..cycles).map(|_| cycle(n, layout)).collect();
            phases.extend(merge(runs));
            eprintln!(
                "  n={n} {}: {:.1} s",
                layout.name(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    print_phases(&phases);

    println!();
    println!("## fsync-bound creates (one commit per file)");
    for (count, bytes, what) in [
        (
            200,
            1024,
            "create + 1 KiB write + fsync (inline data: journal fdatasync only)",
        ),
        (
            200,
            64 << 10,
            "create + 64 KiB write + fsync (one stripe: 6 shard files, syncfs x6, journal)",
        ),
        (50, MIB, "create + 1 MiB write + fsync (one full stripe)"),
    ] {
        let (rate, note) = fsync_bound(count, bytes);
        println!("{what}: {rate:.0} files/s; {note}");
    }
}

//! The small timing harness shared by the benchmarks (no criterion): warm-up runs, then
//! several timed repetitions; each repetition gives a rate, and a row reports the median
//! rate with the slowest and fastest repetition beside it.
//!
//! Units: MB/s and GB/s are 10^6 and 10^9 bytes per second; sizes are MiB (2^20 bytes).

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Bytes in a MiB.
pub const MIB: usize = 1 << 20;

/// What a rate counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes per second, printed as MB/s.
    Bytes,
    /// Operations per second, printed as ops/s.
    Ops,
}

/// One line of a results table.
pub struct Row {
    /// What was measured.
    pub name: String,
    /// What the rate counts.
    pub unit: Unit,
    /// Median rate over the repetitions (per second).
    pub median: f64,
    /// Slowest repetition.
    pub low: f64,
    /// Fastest repetition.
    pub high: f64,
    /// Repetitions behind the figure.
    pub reps: usize,
    /// Anything the reader needs to read the figure right.
    pub note: String,
}

impl Row {
    /// A row from per-repetition rates.
    pub fn from_rates(name: impl Into<String>, unit: Unit, rates: &[f64]) -> Row {
        let mut sorted = rates.to_vec();
        sorted.sort_by(f64::total_cmp);
        Row {
            name: name.into(),
            unit,
            median: median(&sorted),
            low: sorted.first().copied().unwrap_or(f64::NAN),
            high: sorted.last().copied().unwrap_or(f64::NAN),
            reps: sorted.len(),
            note: String::new(),
        }
    }

    /// The same row with a note.
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// Median of sorted values (mean of the two middle ones for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs `body` `warmup` times untimed, then `reps` times timed; returns the durations.
/// `body` gets the repetition number (warm-ups included, from 0).
pub fn time_reps(warmup: usize, reps: usize, mut body: impl FnMut(usize)) -> Vec<Duration> {
    for i in 0..warmup {
        body(i);
    }
    (warmup..warmup + reps)
        .map(|i| {
            let start = Instant::now();
            body(i);
            start.elapsed()
        })
        .collect()
}

/// Rates of `work` units per repetition.
pub fn rates(work: f64, times: &[Duration]) -> Vec<f64> {
    times.iter().map(|t| work / t.as_secs_f64()).collect()
}

/// Times `body` and makes a row of `work` units per repetition.
pub fn bench(
    name: impl Into<String>,
    unit: Unit,
    work: f64,
    warmup: usize,
    reps: usize,
    body: impl FnMut(usize),
) -> Row {
    let times = time_reps(warmup, reps, body);
    Row::from_rates(name, unit, &rates(work, &times))
}

fn human(unit: Unit, rate: f64) -> String {
    match unit {
        Unit::Bytes => format!("{:.0} MB/s", rate / 1e6),
        Unit::Ops => format!("{:.0} ops/s", rate),
    }
}

/// Prints a table; byte rates also show their share of `reference` (a memory copy).
pub fn print_table(title: &str, rows: &[Row], reference: Option<f64>) {
    println!();
    println!("## {title}");
    let width = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<width$}  {:>14}  {:>27}  {:>4}  {:>7}  note",
        "measurement", "median", "slowest .. fastest", "reps", "vs copy"
    );
    for row in rows {
        let share = match (row.unit, reference) {
            (Unit::Bytes, Some(r)) => format!("{:.2}x", row.median / r),
            _ => String::new(),
        };
        println!(
            "{:<width$}  {:>14}  {:>27}  {:>4}  {:>7}  {}",
            row.name,
            human(row.unit, row.median),
            format!(
                "{} .. {}",
                human(row.unit, row.low),
                human(row.unit, row.high)
            ),
            row.reps,
            share,
            row.note
        );
    }
}

/// A reproducible xorshift64* stream (benchmark data, not cryptography).
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `out` with pseudo-random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Reads a `usize` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Section filters from the command line (`cargo bench --bench X -- volume`): words that
/// do not start with `-` (cargo passes `--bench`). No words selects every section.
pub fn wanted(section: &str) -> bool {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    words.is_empty() || words.iter().any(|w| section.contains(w.as_str()))
}

/// The base directory for temporary volumes: `ARGOSFS_BENCH_DIR`, else the system
/// temporary directory.
pub fn temp_base() -> std::path::PathBuf {
    std::env::var_os("ARGOSFS_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// A line describing the machine and the temporary directory's filesystem.
pub fn describe_machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, kernel {kernel}, temp dir {}; load average at start {load}",
        temp_base().display()
    )
}

/// CPU time of the whole process so far (the calling thread and the Volume's shard I/O
/// and spare-file threads working for it): (user, system) seconds.
pub fn process_cpu() -> (f64, f64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which points
    // to a zeroed, properly aligned rusage that lives across the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) failed");
    // SAFETY: zeroed() is a valid rusage (plain integers) and getrusage filled it.
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Wall, user and system seconds of one run of `body`.
pub fn timed<T>(body: impl FnOnce() -> T) -> (T, Duration, f64, f64) {
    let (user0, sys0) = process_cpu();
    let start = Instant::now();
    let out = body();
    let wall = start.elapsed();
    let (user1, sys1) = process_cpu();
    (out, wall, user1 - user0, sys1 - sys0)
}

/// Like [`bench`] for byte rates, with the median user and system CPU time per MiB of
/// work in the note (what the process spent, in user space and in the kernel).
pub fn bench_cpu(
    name: impl Into<String>,
    bytes: f64,
    warmup: usize,
    reps: usize,
    mut body: impl FnMut(usize),
) -> Row {
    for i in 0..warmup {
        body(i);
    }
    let mut rates = Vec::new();
    let mut users = Vec::new();
    let mut syss = Vec::new();
    for i in warmup..warmup + reps {
        let ((), wall, user, sys) = timed(|| body(i));
        rates.push(bytes / wall.as_secs_f64());
        users.push(user);
        syss.push(sys);
    }
    Row::from_rates(name, Unit::Bytes, &rates).note(cpu_note(bytes, &users, &syss))
}

/// "CPU/MiB: user X ms, sys Y ms" from per-repetition CPU seconds over `bytes` each.
pub fn cpu_note(bytes: f64, users: &[f64], syss: &[f64]) -> String {
    let per_mib = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        median(&v) * 1e3 * MIB as f64 / bytes
    };
    format!(
        "CPU/MiB: user {:.3} ms, sys {:.3} ms",
        per_mib(users),
        per_mib(syss)
    )
}

//! RAM cache policy: hit ratios of the volume's `StripeCache` (S3-FIFO by bytes, with and
//! without counting the requests of one sequential read as one reference) against FIFO
//! (the cache before issue 14) and LRU, by bytes, on traces of 1 MiB stripes through a
//! 64 MiB cache; and the cost of one lookup.
//!
//! Run: `cargo bench --bench cache`. Knobs: `ARGOSFS_BENCH_STEPS` (reads per trace,
//! default 200000). Results: docs/PERFORMANCE.md, "Cache policy".
//!
//! Every policy caches a stripe on a miss (what a whole-stripe decode does), except the
//! "admit on re-read" row: the plain-stripe path, which copies a stripe into the cache
//! only when it is read again while its id is still among the ghosts.

mod common;

use argosfs::cache::{StripeCache, Touch, Weigh};
use argosfs::types::StripeId;
use common::{MIB, Rng, env_usize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

const CACHE_BYTES: usize = 64 * MIB;
const STRIPE: usize = MIB;

/// One read of a trace: stripe, bytes of it read, and whether it counts as a hot read.
#[derive(Clone, Copy)]
struct Read {
    id: u64,
    from: usize,
    len: usize,
    is_hot: bool,
}

trait Policy {
    /// Looks `r` up, caching it on a miss; whether it hit.
    fn read(&mut self, r: &Read) -> bool;
}

struct Fifo {
    order: VecDeque<u64>,
    held: HashMap<u64, usize>,
    bytes: usize,
}

impl Policy for Fifo {
    fn read(&mut self, r: &Read) -> bool {
        if self.held.contains_key(&r.id) {
            return true;
        }
        self.held.insert(r.id, STRIPE);
        self.order.push_back(r.id);
        self.bytes += STRIPE;
        while self.bytes > CACHE_BYTES {
            let victim = self.order.pop_front().expect("bytes held");
            self.bytes -= self.held.remove(&victim).expect("held");
        }
        false
    }
}

struct Lru {
    ticks: HashMap<u64, u64>,
    by_tick: BTreeMap<u64, u64>,
    tick: u64,
    bytes: usize,
}

impl Policy for Lru {
    fn read(&mut self, r: &Read) -> bool {
        self.tick += 1;
        let hit = match self.ticks.insert(r.id, self.tick) {
            Some(old) => {
                self.by_tick.remove(&old);
                true
            }
            None => {
                self.bytes += STRIPE;
                false
            }
        };
        self.by_tick.insert(self.tick, r.id);
        while self.bytes > CACHE_BYTES {
            let (_, victim) = self.by_tick.pop_first().expect("bytes held");
            self.ticks.remove(&victim);
            self.bytes -= STRIPE;
        }
        hit
    }
}

/// A value that only weighs.
struct Weight(usize);

impl Weigh for Weight {
    fn weight_bytes(&self) -> usize {
        self.0
    }
}

struct S3 {
    cache: StripeCache<Weight>,
    /// Tell the cache which part of the stripe each read covers.
    is_touching: bool,
    /// Copy a stripe in only when it is read again (the plain-stripe path).
    is_admitting: bool,
}

impl Policy for S3 {
    fn read(&mut self, r: &Read) -> bool {
        let id = StripeId(r.id);
        let touch = Touch::at(r.from, r.len);
        let found = if self.is_touching {
            self.cache.get_at(id, touch)
        } else {
            self.cache.get(id)
        };
        if found.is_some() {
            return true;
        }
        if self.is_admitting && !self.cache.is_wanted(id, STRIPE, touch) {
            return false;
        }
        if self.is_touching {
            self.cache.insert_at(id, Arc::new(Weight(STRIPE)), touch);
        } else {
            self.cache.insert(id, Arc::new(Weight(STRIPE)));
        }
        false
    }
}

fn policies() -> Vec<(&'static str, Box<dyn Policy>)> {
    let s3 = |is_touching, is_admitting| {
        Box::new(S3 {
            cache: StripeCache::new(CACHE_BYTES),
            is_touching,
            is_admitting,
        }) as Box<dyn Policy>
    };
    vec![
        (
            "FIFO (before)",
            Box::new(Fifo {
                order: VecDeque::new(),
                held: HashMap::new(),
                bytes: 0,
            }),
        ),
        (
            "LRU",
            Box::new(Lru {
                ticks: HashMap::new(),
                by_tick: BTreeMap::new(),
                tick: 0,
                bytes: 0,
            }),
        ),
        ("S3-FIFO, every request a reference", s3(false, false)),
        ("S3-FIFO (StripeCache)", s3(true, false)),
        ("S3-FIFO, admit on re-read", s3(true, true)),
    ]
}

/// Zipf(alpha) over `n` items: a sampler by inverse CDF.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, alpha: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for i in 1..=n {
            sum += 1.0 / (i as f64).powf(alpha);
            cdf.push(sum);
        }
        Zipf(cdf.into_iter().map(|c| c / sum).collect())
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

fn whole(id: u64, is_hot: bool) -> Read {
    Read {
        id,
        from: 0,
        len: STRIPE,
        is_hot,
    }
}

/// A scan's reads of one stripe: `requests` requests in order.
fn scan_stripe(id: u64, requests: usize, out: &mut Vec<Read>) {
    let len = STRIPE / requests;
    for i in 0..requests {
        out.push(Read {
            id,
            from: i * len,
            len,
            is_hot: false,
        });
    }
}

const SCAN_BASE: u64 = 1 << 40;

fn traces(steps: usize) -> Vec<(&'static str, Vec<Read>)> {
    let mut rng = Rng::new(14);
    let mut out = Vec::new();

    // A hot set of 48 stripes read whole at random, one scan stripe between hot reads.
    let mut t = Vec::new();
    for step in 0..steps {
        t.push(whole(rng.next_u64() % 48, true));
        scan_stripe(SCAN_BASE + step as u64, 1, &mut t);
    }
    out.push(("hot 48 MiB + scan, 1 MiB requests", t));

    // The same with the scan read in 128 KiB requests, as the kernel sends at first.
    let mut t = Vec::new();
    for step in 0..steps {
        t.push(whole(rng.next_u64() % 48, true));
        scan_stripe(SCAN_BASE + step as u64, 8, &mut t);
    }
    out.push(("hot 48 MiB + scan, 128 KiB requests", t));

    // A hot set larger than the cache (96 stripes), Zipf 0.9, and a scan.
    let zipf = Zipf::new(96, 0.9);
    let mut t = Vec::new();
    for step in 0..steps {
        t.push(whole(zipf.sample(&mut rng) as u64, true));
        scan_stripe(SCAN_BASE + step as u64, 1, &mut t);
    }
    out.push(("Zipf 0.9 over 96 MiB + scan", t));

    // Zipf 0.8 over 10,000 stripes, no scan.
    let zipf = Zipf::new(10_000, 0.8);
    let t = (0..steps)
        .map(|_| whole(zipf.sample(&mut rng) as u64, true))
        .collect();
    out.push(("Zipf 0.8 over 10 GiB", t));

    // A loop over 80 stripes (1.25 times the cache).
    let t = (0..steps).map(|s| whole((s % 80) as u64, true)).collect();
    out.push(("loop over 80 MiB", t));

    // A hot set that fits (48 stripes), nothing else.
    let t = (0..steps)
        .map(|_| whole(rng.next_u64() % 48, true))
        .collect();
    out.push(("hot 48 MiB alone", t));
    out
}

fn main() {
    let steps = env_usize("ARGOSFS_BENCH_STEPS", 200_000);
    println!("# RAM cache policy: 1 MiB stripes, 64 MiB cache, {steps} steps per trace");
    println!("machine: {}", common::describe_machine());
    println!(
        "hit ratio of the hot reads (all reads of a trace without a scan), after the first 10 % of the trace"
    );
    let names: Vec<&str> = policies().iter().map(|(n, _)| *n).collect();
    print!("| trace |");
    for name in &names {
        print!(" {name} |");
    }
    println!();
    println!("|---|{}", "---:|".repeat(names.len()));
    for (trace, reads) in traces(steps) {
        print!("| {trace} |");
        let warm = reads.len() / 10;
        for (_, mut policy) in policies() {
            let (mut hits, mut hot) = (0u64, 0u64);
            for (i, r) in reads.iter().enumerate() {
                let hit = policy.read(r);
                if i >= warm && r.is_hot {
                    hot += 1;
                    hits += u64::from(hit);
                }
            }
            print!(" {:.1} % |", 100.0 * hits as f64 / hot.max(1) as f64);
        }
        println!();
    }
    // Cost of a lookup: the Zipf trace through each policy, timed.
    let reads = &traces(steps)[3].1;
    println!();
    println!("ns per read (lookup, insert on a miss, evictions), Zipf 0.8 over 10 GiB:");
    for (name, mut policy) in policies() {
        let started = Instant::now();
        let mut hits = 0u64;
        for r in reads {
            hits += u64::from(policy.read(r));
        }
        let ns = started.elapsed().as_nanos() as f64 / reads.len() as f64;
        println!("  {name}: {ns:.0} ns ({hits} hits)");
    }
}

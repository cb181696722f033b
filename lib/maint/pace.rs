//! Pacing of a background action to a byte rate (`argosfs-scrub --rate`): after each
//! unit of work the action says how many bytes it moved, and [`Pace`] sleeps as long as
//! it takes for the average rate since the start to come down to the limit.
//!
//! The average holds within a unit's worth of bytes at any moment, so over a run of many
//! units it holds within a few percent. A stretch slower than the limit (the disks were
//! busy) earns at most [`MAX_CREDIT`] of catching up, so the action never bursts far
//! above the limit afterwards. Owns only the arithmetic and the sleep; the clock is a
//! trait so tests use a fake one and assert no speeds.

use std::time::{Duration, Instant};

/// Most time a slow stretch may be made up for by going faster than the limit.
pub const MAX_CREDIT: Duration = Duration::from_secs(1);

/// Time as [`Pace`] sees it.
pub trait Clock {
    /// Time since some fixed point.
    fn now(&self) -> Duration;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct RealClock(Instant);

impl Default for RealClock {
    fn default() -> Self {
        RealClock(Instant::now())
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Holds an average byte rate by sleeping.
#[derive(Debug)]
pub struct Pace<C: Clock = RealClock> {
    bytes_per_sec: Option<u64>,
    clock: C,
    /// When the bytes counted began (moved forward when credit is capped).
    start: Duration,
    bytes: u64,
}

impl Pace<RealClock> {
    /// A pace of at most `bytes_per_sec` (none: as fast as it goes).
    pub fn new(bytes_per_sec: Option<u64>) -> Pace<RealClock> {
        Pace::with_clock(bytes_per_sec, RealClock::default())
    }
}

impl<C: Clock> Pace<C> {
    /// A pace on `clock`.
    pub fn with_clock(bytes_per_sec: Option<u64>, clock: C) -> Pace<C> {
        let start = clock.now();
        Pace {
            bytes_per_sec: bytes_per_sec.filter(|r| *r > 0),
            clock,
            start,
            bytes: 0,
        }
    }

    /// Counts `bytes` done, then sleeps until the average since the start is at most the
    /// limit. Returns how long it slept.
    pub fn account(&mut self, bytes: u64) -> Duration {
        let Some(rate) = self.bytes_per_sec else {
            return Duration::ZERO;
        };
        self.bytes += bytes;
        let now = self.clock.now();
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        let elapsed = now.saturating_sub(self.start);
        if elapsed > due + MAX_CREDIT {
            // Running behind by more than the credit: start counting afresh from a point
            // that leaves exactly MAX_CREDIT to make up.
            self.start = now.saturating_sub(due + MAX_CREDIT);
            return Duration::ZERO;
        }
        let wait = due.saturating_sub(elapsed);
        if !wait.is_zero() {
            self.clock.sleep(wait);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that only moves when slept on or told to.
    #[derive(Default)]
    struct FakeClock(Cell<Duration>);

    impl FakeClock {
        fn pass(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    impl Clock for &FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            self.pass(d);
        }
    }

    #[test]
    fn the_average_holds_the_limit_within_ten_percent() {
        let clock = FakeClock::default();
        let mut pace = Pace::with_clock(Some(1_000_000), &clock);
        for i in 0..500u64 {
            clock.pass(Duration::from_micros(300)); // the work itself
            pace.account(10_000 + (i % 7) * 1000);
            let bytes = pace.bytes as f64;
            let secs = clock.0.get().as_secs_f64();
            // Never above the limit at any point; after the first units, not below
            // 0.9 of it either.
            assert!(bytes / secs <= 1_000_000.0 * 1.0001, "{bytes} in {secs}s");
            if i > 10 {
                assert!(bytes / secs >= 900_000.0, "{bytes} in {secs}s");
            }
        }
    }

    #[test]
    fn no_limit_never_sleeps_and_slow_work_is_not_slowed_further() {
        let clock = FakeClock::default();
        let mut free = Pace::with_clock(None, &clock);
        assert_eq!(free.account(u64::MAX / 2), Duration::ZERO);
        let mut pace = Pace::with_clock(Some(1000), &clock);
        clock.pass(Duration::from_secs(2));
        assert_eq!(pace.account(500), Duration::ZERO);
    }

    #[test]
    fn a_slow_stretch_earns_at_most_the_credit() {
        let clock = FakeClock::default();
        let mut pace = Pace::with_clock(Some(1000), &clock);
        clock.pass(Duration::from_secs(60)); // the disks were busy for a minute
        pace.account(100);
        // Now 10 s worth of bytes at once: only MAX_CREDIT of it is free.
        let slept = pace.account(10_000);
        let expected = Duration::from_secs(10) - MAX_CREDIT;
        let diff = slept.abs_diff(expected);
        assert!(diff < Duration::from_millis(200), "slept {slept:?}");
    }
}

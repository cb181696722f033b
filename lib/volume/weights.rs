//! The weight placement gives each disk for new shards: its configured weight, lowered
//! while the disk is much slower than its peers or short of headroom, so it gets fewer
//! new shards (within the failure-domain rules, which placement applies on top).
//!
//! Slowness has hysteresis, so a disk near the line does not flap: it becomes slow when
//! its write latency (moving average) is over [`SLOW_ENTER`] times the median of its
//! peers' and over [`SLOW_FLOOR_US`], and stops being slow only under [`SLOW_LEAVE`]
//! times the median. The flags are recomputed at most every [`REFRESH`], from the data
//! plane's records; disks with fewer than [`MIN_SAMPLES`] timed writes do not count.

use super::{DiskSet, DiskSlot, Volume};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A disk becomes slow over this many times its peers' median write latency.
pub const SLOW_ENTER: f64 = 4.0;
/// A slow disk is slow until it is under this many times the median.
pub const SLOW_LEAVE: f64 = 2.0;
/// Latency below this is never slow (tmpfs and page-cache speeds differ by more than
/// the factors above without mattering).
pub const SLOW_FLOOR_US: f64 = 5_000.0;
/// Timed writes a disk needs before its latency counts.
pub const MIN_SAMPLES: u64 = 100;
/// The weight of a slow disk is multiplied by this.
pub const SLOW_WEIGHT_FACTOR: f64 = 0.25;
/// Below this share of its capacity free, a disk's weight falls in proportion ...
pub const HEADROOM_SHARE: f64 = 0.10;
/// ... down to this factor when it is full.
pub const HEADROOM_FLOOR: f64 = 0.1;
/// How often the slow flags are recomputed.
pub const REFRESH: Duration = Duration::from_secs(1);

impl DiskSlot {
    /// The weight placement uses now, and why it is below the configured one.
    pub(super) fn placement_weight(
        &self,
        space: Option<crate::store::DiskSpace>,
    ) -> (f64, Option<String>) {
        let mut weight = self.config.weight;
        let mut notes = Vec::new();
        if self.is_slow.load(Ordering::Relaxed) {
            weight *= SLOW_WEIGHT_FACTOR;
            notes.push(format!(
                "slow: write latency {:.1} ms, over {SLOW_ENTER}x its peers' median (x{SLOW_WEIGHT_FACTOR})",
                self.stats.latency().1.ewma_us as f64 / 1000.0
            ));
        }
        if let Some(space) = space.filter(|s| s.total_bytes > 0) {
            let free = space.free_bytes as f64 / space.total_bytes as f64;
            if free < HEADROOM_SHARE {
                let factor = (free / HEADROOM_SHARE).max(HEADROOM_FLOOR);
                weight *= factor;
                notes.push(format!(
                    "short of headroom: {:.1} % free (x{factor:.2})",
                    free * 100.0
                ));
            }
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        (weight, note)
    }
}

impl Volume {
    /// Recomputes which disks are slow, at most every [`REFRESH`] (a cheap check
    /// otherwise: placement calls it for every stripe).
    pub(super) fn refresh_slow_disks(&self, set: &DiskSet) {
        let Ok(mut last) = self.slow_checked.try_lock() else {
            return; // another thread is at it
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REFRESH) {
            return;
        }
        *last = Some(now);
        let timed: Vec<(&DiskSlot, f64)> = set
            .iter()
            .filter(|s| s.disk.is_some())
            .filter_map(|s| {
                let (_, write) = s.stats.latency();
                (write.total_samples >= MIN_SAMPLES).then_some((s.as_ref(), write.ewma_us as f64))
            })
            .collect();
        let median = median(timed.iter().map(|(_, us)| *us).collect());
        for slot in set.iter() {
            let ewma = timed
                .iter()
                .find(|(s, _)| std::ptr::eq(*s, slot.as_ref()))
                .map(|(_, us)| *us);
            let was = slot.is_slow.load(Ordering::Relaxed);
            let is = match (ewma, median) {
                (Some(us), Some(median)) if was => us >= SLOW_LEAVE * median,
                (Some(us), Some(median)) => us > SLOW_ENTER * median && us > SLOW_FLOOR_US,
                _ => false,
            };
            if is != was {
                slot.is_slow.store(is, Ordering::Relaxed);
                if is {
                    tracing::warn!(disk = %slot.config.id, ewma_us = ewma.unwrap_or(0.0), median_us = median.unwrap_or(0.0), "disk much slower than its peers: it gets fewer new shards");
                } else {
                    tracing::info!(disk = %slot.config.id, "disk no longer slow: its full weight again");
                }
            }
        }
    }
}

/// The median of three or more values (None with fewer: too few peers to compare).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.len() < 3 {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_needs_three_peers() {
        assert_eq!(median(vec![1.0, 2.0]), None);
        assert_eq!(median(vec![9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(3.0));
    }
}

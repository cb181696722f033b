//! A running maintenance action as others see and steer it: its progress (for `--status`
//! and the offline progress bar) and a request to stop (pause, or cancel when the mount
//! shuts down). Actions check [`Job::stop_requested`] between stripes, so a stop takes
//! effect after the stripe in progress, which is always finished whole.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// Why an action was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stop {
    /// The user paused it: a resumable action saves that it is paused.
    Pause,
    /// The process is going away (unmount, signal): the action stops where it is and is
    /// continued by its next run.
    Cancel,
}

/// Progress of an action: what it is doing and how far it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// What the action is doing now ("healing", "verifying shards", ...).
    pub phase: String,
    /// Units (stripes) done in this phase.
    pub done: u64,
    /// Units the phase has, when known (0: unknown).
    pub total: u64,
    /// Bytes read or written so far in the whole action.
    pub bytes: u64,
}

/// Progress and the stop request of one action, shared between the thread running it and
/// those watching it.
#[derive(Debug, Default)]
pub struct Job {
    /// 0: run on; otherwise a [`Stop`] (1: pause, 2: cancel).
    stop: AtomicU8,
    progress: Mutex<Progress>,
}

impl Job {
    /// A job that runs until done.
    pub fn new() -> Job {
        Job::default()
    }

    /// Asks the action to stop after the stripe in progress. A cancel is not weakened
    /// into a pause by a later request.
    pub fn request_stop(&self, why: Stop) {
        let code = match why {
            Stop::Pause => 1,
            Stop::Cancel => 2,
        };
        self.stop.fetch_max(code, Ordering::AcqRel);
    }

    /// Whether (and why) the action should stop now.
    pub fn stop_requested(&self) -> Option<Stop> {
        match self.stop.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Stop::Pause),
            _ => Some(Stop::Cancel),
        }
    }

    /// Starts a phase of `total` units (0 when not known).
    pub fn phase(&self, phase: &str, total: u64) {
        let mut p = self.lock();
        p.phase = phase.to_string();
        p.done = 0;
        p.total = total;
    }

    /// Counts `units` done and `bytes` moved.
    pub fn advance(&self, units: u64, bytes: u64) {
        let mut p = self.lock();
        p.done += units;
        p.bytes += bytes;
    }

    /// The progress now.
    pub fn progress(&self) -> Progress {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_outranks_a_pause() {
        let job = Job::new();
        assert_eq!(job.stop_requested(), None);
        job.request_stop(Stop::Pause);
        assert_eq!(job.stop_requested(), Some(Stop::Pause));
        job.request_stop(Stop::Cancel);
        job.request_stop(Stop::Pause);
        assert_eq!(job.stop_requested(), Some(Stop::Cancel));
    }

    #[test]
    fn progress_counts_within_a_phase() {
        let job = Job::new();
        job.phase("healing", 10);
        job.advance(2, 100);
        job.advance(1, 50);
        let p = job.progress();
        assert_eq!((p.done, p.total, p.bytes), (3, 10, 150));
        job.phase("checking", 4);
        assert_eq!((job.progress().done, job.progress().bytes), (0, 150));
    }
}

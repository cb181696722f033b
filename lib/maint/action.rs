//! One maintenance request and what it did, as a value: what `argosfs-disk` asks for,
//! performed the same way on a volume it opened itself (offline) or, sent through the
//! control socket, on the volume of a mount (online). Requests that move shards run as
//! a [`Job`] there, in the background.

use super::scrub::{self, ScrubOptions, ScrubReport, ScrubStatus};
use super::scrub_state::RunState;
use super::{Bounds, Job, Report, Survey, disks};
use crate::error::Result;
use crate::types::DiskId;
use crate::volume::{DiskConfig, DiskState, Volume};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A maintenance request. Paths in it are absolute (the process performing it may run
/// in another directory than the one that asked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Survey the disks and the stripes their loss degrades.
    List,
    /// Add a disk (its id is chosen when added).
    Add {
        /// `PATH[:OPTS]` as `argosfs-disk add` takes it, the path absolute.
        disk: String,
    },
    /// Put the directory `new` in the place of `disk`, then heal unless told not to.
    Replace {
        /// The disk replaced.
        disk: DiskId,
        /// Its new directory.
        new: PathBuf,
        /// Heal afterwards, within these bounds.
        heal: Option<Bounds>,
    },
    /// Rebuild every missing shard.
    Heal {
        /// Bounds of the run.
        bounds: Bounds,
    },
    /// Even out the disks.
    Rebalance {
        /// Bounds of the run.
        bounds: Bounds,
    },
    /// Set a disk failed or active by hand.
    SetState {
        /// The disk.
        disk: DiskId,
        /// Failed or active.
        state: DiskState,
        /// Why (kept in the superblock with the state).
        reason: String,
    },
    /// Move every shard off `disk`; with `forget`, then take it out of the volume.
    Drain {
        /// The disk drained.
        disk: DiskId,
        /// Bounds of the run.
        bounds: Bounds,
        /// Forget the disk once it is empty (`remove`).
        forget: bool,
    },
    /// Where the stripes of a file are and what placement makes of them now.
    Explain {
        /// The file, as a path inside the volume.
        path: String,
    },
    /// Verify shards (and repair, if asked).
    Scrub(ScrubOptions),
    /// The scrub state: the run in progress, verification ages, the last run.
    ScrubStatus,
    /// Mark the unfinished scrub run paused (a running scrub job is paused by stopping
    /// it instead).
    ScrubPause,
}

/// The rate a mount moves shards at when the request gives none: files stay fast to use
/// meanwhile (measured: a sequential read kept 0.56 of its speed during an unlimited
/// heal, 0.70 at 32 MiB/s, about 1.0 at 16 MiB/s: see docs/PERFORMANCE.md). Offline
/// requests have no default limit.
pub const ONLINE_MOVE_RATE: u64 = 16 << 20;

impl Request {
    /// This request with the mount's default rate where it moves shards and gives none.
    pub fn with_online_rate(mut self) -> Request {
        let bounds = match &mut self {
            Request::Heal { bounds }
            | Request::Rebalance { bounds }
            | Request::Drain { bounds, .. }
            | Request::Replace {
                heal: Some(bounds), ..
            } => bounds,
            _ => return self,
        };
        if bounds.rate.is_none() {
            bounds.rate = Some(ONLINE_MOVE_RATE);
        }
        self
    }

    /// Its name, as the subcommand that asks for it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::List => "list",
            Request::Add { .. } => "add",
            Request::SetState {
                state: DiskState::Failed,
                ..
            } => "fail",
            Request::SetState { .. } => "activate",
            Request::Replace { .. } => "replace",
            Request::Heal { .. } => "heal",
            Request::Rebalance { .. } => "rebalance",
            Request::Drain { forget: false, .. } => "drain",
            Request::Drain { forget: true, .. } => "remove",
            Request::Explain { .. } => "explain",
            Request::Scrub(_) => "scrub",
            Request::ScrubStatus => "scrub-status",
            Request::ScrubPause => "scrub-pause",
        }
    }

    /// It moves shards, so a mount runs it in the background, one at a time.
    pub fn is_long(&self) -> bool {
        !matches!(
            self,
            Request::List
                | Request::Explain { .. }
                | Request::Add { .. }
                | Request::SetState { .. }
                | Request::ScrubStatus
                | Request::ScrubPause
        )
    }

    /// It only reads.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Request::List | Request::ScrubStatus | Request::Explain { .. }
        )
    }
}

/// What a request did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// The disks (list).
    Survey(Survey),
    /// The disk added.
    Added(DiskConfig),
    /// A disk's state changed; the disks afterwards.
    StateSet {
        /// The disk.
        disk: DiskId,
        /// Its state now.
        state: DiskState,
        /// The disks and stripes afterwards.
        survey: Survey,
    },
    /// A disk replaced; the heal that followed, or the survey when there was none.
    Replaced {
        /// The replacement.
        replaced: disks::Replaced,
        /// The heal run after it.
        heal: Option<Report>,
        /// The disks, when heal was skipped.
        survey: Option<Survey>,
    },
    /// A heal or rebalance run.
    Ran(Report),
    /// The placement of a file's stripes.
    Explained(Vec<crate::volume::StripePlacement>),
    /// Scrub's answer.
    Scrub(ScrubOutcome),
    /// A drain run, and where it left the disk.
    Drained {
        /// The disk.
        disk: DiskId,
        /// The run.
        report: Report,
        /// The disk's state afterwards (None once forgotten).
        state: Option<DiskState>,
        /// It was taken out of the volume.
        is_forgotten: bool,
    },
}

/// What a scrub request did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ScrubOutcome {
    /// A scrub run (or part of one).
    Ran(ScrubReport),
    /// The scrub state.
    Status(ScrubStatus),
    /// The run marked paused.
    Paused(RunState),
}

/// Performs `request` on the open volume `vol`, reporting progress to `job` and
/// stopping when it asks.
pub fn perform(vol: &Volume, request: &Request, job: &Job) -> Result<Outcome> {
    let target = disks::Target::Open(vol);
    Ok(match request {
        Request::List => Outcome::Survey(super::survey(vol)?),
        Request::Add { disk } => Outcome::Added(disks::add(target, disk)?),
        Request::SetState {
            disk,
            state,
            reason,
        } => {
            disks::set_state(vol, *disk, *state, reason)?;
            Outcome::StateSet {
                disk: *disk,
                state: *state,
                survey: super::survey(vol)?,
            }
        }
        Request::Replace { disk, new, heal } => {
            let replaced = disks::replace(target, *disk, new)?;
            let (heal, survey) = match heal {
                Some(bounds) => (Some(super::heal(vol, *bounds, job)?), None),
                None => (None, Some(super::survey(vol)?)),
            };
            Outcome::Replaced {
                replaced,
                heal,
                survey,
            }
        }
        Request::Heal { bounds } => Outcome::Ran(super::heal(vol, *bounds, job)?),
        Request::Explain { path } => Outcome::Explained(vol.explain_placement(path.as_bytes())?),
        Request::Scrub(options) => {
            Outcome::Scrub(ScrubOutcome::Ran(scrub::scrub(vol, options, job)?))
        }
        Request::ScrubStatus => Outcome::Scrub(ScrubOutcome::Status(scrub::status(vol)?)),
        Request::ScrubPause => Outcome::Scrub(ScrubOutcome::Paused(scrub::pause(vol)?)),
        Request::Rebalance { bounds } => Outcome::Ran(super::rebalance(vol, *bounds, job)?),
        Request::Drain {
            disk,
            bounds,
            forget,
        } => {
            let report = super::drain(vol, *disk, *bounds, job)?;
            let state_of = || {
                vol.disk_infos()
                    .into_iter()
                    .find(|i| i.config.id == *disk)
                    .map(|i| i.config.state)
            };
            let is_removed = report.is_complete() && state_of() == Some(DiskState::Removed);
            let is_forgotten = *forget && is_removed;
            if is_forgotten {
                disks::forget(target, *disk)?;
            }
            Outcome::Drained {
                disk: *disk,
                report,
                state: state_of(),
                is_forgotten,
            }
        }
    })
}

//! Maintenance actions on a volume: heal (rebuild what is missing), drain (move every
//! shard off a disk), scrub (verify every shard, rewrite bad ones: `scrub`), and the
//! disk-list changes that go with them (add, replace, forget). The autopilot and the `argosfs-disk` program call these; the CLI is a shell.
//!
//! Actions run on an open [`Volume`] (offline: opened under the volume lock by the
//! caller) and move shards only through [`Volume::relocate_shards`], which keeps the one
//! order that never lowers a stripe's redundancy: write, sync, verify, commit, delete.
//! Each action is bounded (`max_bytes`) and reports what it did and what is left; running
//! it again continues where it stopped, because what is left is found from the metadata
//! and the disks, not from a saved position.

pub mod action;
pub mod disks;
pub mod job;
pub mod pace;
pub mod scrub;
pub mod scrub_state;

pub use job::{Job, Progress, Stop};

use crate::error::Result;
use crate::types::{DiskId, ShardIndex, ShardKey};
use crate::volume::{DiskInfo, DiskState, MoveBatch, Relocated, StripeAt, Volume};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Bounds of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Stop once this many shard bytes were written (the stripe in progress finishes).
    pub max_bytes: Option<u64>,
    /// Write at most this many shard bytes per second on average ([`pace::Pace`]).
    #[serde(default)]
    pub rate: Option<u64>,
}

impl Bounds {
    fn is_reached(&self, bytes: u64) -> bool {
        self.max_bytes.is_some_and(|max| bytes >= max)
    }
}

/// Stripes moved between two commits of a run at most.
const BATCH_STRIPES: usize = 16;
/// Longest a run goes without committing its moves.
const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// One action's run: its bounds, the job that watches it, its pacing, and the moves not
/// committed yet (a commit, with its syncs, per [`BATCH_STRIPES`] stripes or
/// [`BATCH_TIME`] rather than per stripe; a crash loses only those moves, never a shard).
struct Run<'a> {
    bounds: Bounds,
    job: &'a Job,
    pace: pace::Pace,
    batch: MoveBatch,
    committed_at: std::time::Instant,
}

impl<'a> Run<'a> {
    fn new(bounds: Bounds, job: &'a Job) -> Run<'a> {
        Run {
            bounds,
            job,
            pace: pace::Pace::new(bounds.rate),
            batch: MoveBatch::default(),
            committed_at: std::time::Instant::now(),
        }
    }

    /// Commits the moves so far when the batch is full or old enough (`is_last`:
    /// whatever is there).
    fn commit(&mut self, vol: &Volume, report: &mut Report, is_last: bool) {
        let is_due = self.batch.len() >= BATCH_STRIPES || self.committed_at.elapsed() >= BATCH_TIME;
        if self.batch.is_empty() || !(is_last || is_due) {
            return;
        }
        let stripes = self.batch.len() as u64;
        if let Err(e) = vol.finish_moves(&mut self.batch) {
            // Not durable: counted as left (their old shards are all still there).
            report.stripes_done = report.stripes_done.saturating_sub(stripes);
            report.stripes_left += stripes;
            report
                .failures
                .push(format!("committing {stripes} moved stripes: {e}"));
        }
        self.committed_at = std::time::Instant::now();
    }
}

/// What a heal or drain run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Stripes looked at.
    pub stripes_checked: u64,
    /// Stripes whose shards were rebuilt or moved.
    pub stripes_done: u64,
    /// Shards written.
    pub shards_written: u64,
    /// Shard bytes written.
    pub bytes_written: u64,
    /// Stripes that still need the action (not reached within the bounds, no disk could
    /// take a shard, or a failure).
    pub stripes_left: u64,
    /// The run stopped at its byte bound.
    pub is_bounded: bool,
    /// The run was asked to stop (paused or cancelled) before it finished.
    pub stopped: Option<Stop>,
    /// What failed, one line per stripe.
    pub failures: Vec<String>,
}

impl Report {
    /// True when nothing is left to do.
    pub fn is_complete(&self) -> bool {
        self.stripes_left == 0
    }

    /// Whether the run must stop before the next stripe: its byte bound is reached or
    /// `job` was asked to stop (the reason is kept).
    fn must_stop(&mut self, job: &Job) -> bool {
        if self.stopped.is_none() {
            self.stopped = job.stop_requested();
        }
        self.is_bounded || self.stopped.is_some()
    }

    fn relocated(
        &mut self,
        job: &Job,
        pace: &mut pace::Pace,
        at: &StripeAt,
        moves: usize,
        result: Result<Relocated>,
    ) {
        match result {
            Ok(Relocated::Done { bytes }) => {
                job.advance(0, bytes);
                pace.account(bytes);
                self.stripes_done += 1;
                self.shards_written += moves as u64;
                self.bytes_written += bytes;
            }
            // Rewritten by a writer meanwhile: its new stripe has all its shards.
            Ok(Relocated::Stale) => {}
            Err(e) => {
                self.stripes_left += 1;
                self.failures.push(format!("{at}: {e}"));
            }
        }
    }
}

fn shard_key(at: &StripeAt, index: usize) -> ShardKey {
    ShardKey {
        stripe: at.stripe.id,
        index: ShardIndex(index as u8),
    }
}

fn stripe_width(vol: &Volume) -> usize {
    usize::from(vol.superblock().layout.k) + usize::from(vol.superblock().layout.m)
}

/// The shards of a stripe that heal must rebuild: never written, on a disk that cannot
/// be read (unavailable, failed, removed, unknown), or absent from their disk.
fn lost_shards(
    at: &StripeAt,
    width: usize,
    infos: &HashMap<DiskId, DiskInfo>,
    present: &HashSet<(DiskId, ShardKey)>,
) -> Vec<usize> {
    (0..width)
        .filter(|&i| match at.stripe.disk_of(i) {
            None => true,
            Some(d) => {
                !infos.get(&d).is_some_and(DiskInfo::is_readable)
                    || !present.contains(&(d, shard_key(at, i)))
            }
        })
        .collect()
}

/// One disk as `argosfs-disk list` shows it: its state and space, and what the metadata
/// keeps on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskSurvey {
    /// Configuration, state, availability and space.
    pub info: DiskInfo,
    /// Shards the metadata places on it.
    pub shards: u64,
    /// Their payload bytes.
    pub shard_bytes: u64,
    /// Stripes whose shard on this disk is lost (the disk cannot be read, or the shard
    /// file is not there): what heal rebuilds for it. A stripe has at most one shard per
    /// disk, so this is also the number of its shards that are lost.
    pub degraded_stripes: u64,
}

impl DiskSurvey {
    /// Active or draining, but not open: a disk that should be there and is not.
    pub fn is_missing(&self) -> bool {
        self.info.unavailable.is_some()
            && matches!(
                self.info.config.state,
                DiskState::Active | DiskState::Draining
            )
    }
}

/// Every disk of a volume and how whole its stripes are, found the way [`heal`] finds
/// its work (the metadata plus one listing of each open disk; no shard is read, so a
/// corrupt shard is found by fsck or a read, not here).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Survey {
    /// Every disk, in superblock order.
    pub disks: Vec<DiskSurvey>,
    /// Stripes of the volume.
    pub stripes: u64,
    /// Stripes missing at least one shard (unwritten or lost): heal has work.
    pub degraded_stripes: u64,
    /// Stripes written degraded, with shards never written.
    pub unwritten_stripes: u64,
    /// Shards never written, over all stripes.
    pub unwritten_shards: u64,
}

impl Survey {
    /// Every stripe has all its shards.
    pub fn is_whole(&self) -> bool {
        self.degraded_stripes == 0
    }
}

/// Surveys the disks of an open volume (read-only use is enough): shards per disk, and
/// the stripes each disk's loss or absence degrades.
pub fn survey(vol: &Volume) -> Result<Survey> {
    let mut disks: Vec<DiskSurvey> = vol
        .disk_infos()
        .into_iter()
        .map(|info| DiskSurvey {
            info,
            shards: 0,
            shard_bytes: 0,
            degraded_stripes: 0,
        })
        .collect();
    let infos: HashMap<DiskId, DiskInfo> = disks
        .iter()
        .map(|d| (d.info.config.id, d.info.clone()))
        .collect();
    let position: HashMap<DiskId, usize> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| (d.info.config.id, i))
        .collect();
    let present = vol.shards_present()?;
    let width = stripe_width(vol);
    let (mut stripes, mut degraded_stripes, mut unwritten_stripes, mut unwritten_shards) =
        (0, 0, 0, 0);
    for at in vol.stripes() {
        stripes += 1;
        for (_, d) in at.stripe.placed() {
            if let Some(&p) = position.get(&d) {
                disks[p].shards += 1;
                disks[p].shard_bytes += u64::from(at.stripe.info.shard_len);
            }
        }
        let unwritten = at.stripe.unwritten().count() as u64;
        if unwritten > 0 {
            unwritten_stripes += 1;
            unwritten_shards += unwritten;
        }
        let lost = lost_shards(&at, width, &infos, &present);
        if lost.is_empty() {
            continue;
        }
        degraded_stripes += 1;
        for i in lost {
            if let Some(&p) = at.stripe.disk_of(i).and_then(|d| position.get(&d)) {
                disks[p].degraded_stripes += 1;
            }
        }
    }
    Ok(Survey {
        disks,
        stripes,
        degraded_stripes,
        unwritten_stripes,
        unwritten_shards,
    })
}

/// What [`rebuild_lost`] did for one stripe.
pub(crate) struct Rebuilt {
    /// Shards it tried to write.
    pub moves: usize,
    /// Shards no disk could take (not tried).
    pub unplaced: usize,
    /// What the move did.
    pub result: Result<Relocated>,
}

/// Rebuilds shards `lost` of a stripe (missing, bad, never written, or on a disk that
/// cannot be read) in one move: a shard whose own disk is writable is written back
/// there, the others go to disks chosen by placement, honouring failure domains. The
/// shards in `lost` are not read (they are rebuilt from the others). `None` when no disk
/// can take any of them. Heal and scrub's repair both rebuild through this.
pub(crate) fn rebuild_lost(
    vol: &Volume,
    at: &StripeAt,
    lost: &[usize],
    infos: &HashMap<DiskId, DiskInfo>,
    batch: &mut MoveBatch,
) -> Option<Rebuilt> {
    let (in_place, elsewhere): (Vec<usize>, Vec<usize>) = lost.iter().partition(|&&i| {
        at.stripe
            .disk_of(i)
            .and_then(|d| infos.get(&d))
            .is_some_and(DiskInfo::is_writable)
    });
    let targets = vol.choose_disks(&at.stripe, &elsewhere, &[]);
    let mut moves: Vec<(usize, DiskId)> = in_place
        .iter()
        .filter_map(|&i| at.stripe.disk_of(i).map(|d| (i, d)))
        .collect();
    moves.extend(elsewhere.iter().copied().zip(targets));
    if moves.is_empty() {
        return None;
    }
    Some(Rebuilt {
        moves: moves.len(),
        unplaced: lost.len() - moves.len(),
        result: vol.relocate_into(at, &moves, batch),
    })
}

/// The disks of the volume by id.
fn disk_infos(vol: &Volume) -> HashMap<DiskId, DiskInfo> {
    vol.disk_infos()
        .into_iter()
        .map(|i| (i.config.id, i))
        .collect()
}

/// Rebuilds every shard that is missing: never written (degraded stripes), on a disk that
/// is gone, failed, removed or replaced, or absent from its disk. A shard whose own disk
/// is writable is written back there; the others go to disks chosen by placement,
/// honouring failure domains. Shards that are present are not read here (scrub verifies
/// them); a bad one found while rebuilding is rebuilt too.
pub fn heal(vol: &Volume, bounds: Bounds, job: &Job) -> Result<Report> {
    let infos = disk_infos(vol);
    let present = vol.shards_present()?;
    let width = stripe_width(vol);
    let mut report = Report::default();
    let mut run = Run::new(bounds, job);
    let stripes = vol.stripes();
    job.phase("healing", stripes.len() as u64);
    for at in stripes {
        job.advance(1, 0);
        report.stripes_checked += 1;
        let lost = lost_shards(&at, width, &infos, &present);
        if lost.is_empty() {
            continue;
        }
        if report.must_stop(job) {
            report.stripes_left += 1;
            continue;
        }
        match rebuild_lost(vol, &at, &lost, &infos, &mut run.batch) {
            None => {
                report.stripes_left += 1;
                report.failures.push(format!(
                    "{at}: no disk can take its {} missing shard(s)",
                    lost.len()
                ));
            }
            Some(rebuilt) => {
                let failed = rebuilt.result.is_err();
                report.relocated(run.job, &mut run.pace, &at, rebuilt.moves, rebuilt.result);
                if rebuilt.unplaced > 0 && !failed {
                    report.stripes_left += 1;
                    report.failures.push(format!(
                        "{at}: {} of {} missing shards rebuilt; no disk could take the rest",
                        rebuilt.moves,
                        lost.len()
                    ));
                }
            }
        }
        report.is_bounded = bounds.is_reached(report.bytes_written);
        run.commit(vol, &mut report, false);
    }
    run.commit(vol, &mut report, true);
    Ok(report)
}

/// Moves every shard off `disk` onto disks chosen by placement (the disk takes no new
/// shards from the start: it is marked draining first), each move in the safe order;
/// once nothing is left on it, marks it removed. A disk that cannot be read is drained
/// by rebuilding its shards from the others. Refused, changing nothing, when the disk
/// holds shards and fewer than k+m other disks can take them.
pub fn drain(vol: &Volume, disk: DiskId, bounds: Bounds, job: &Job) -> Result<Report> {
    let infos = vol.disk_infos();
    let state = infos
        .iter()
        .find(|i| i.config.id == disk)
        .map(|i| i.config.state)
        .ok_or_else(|| crate::Error::Config(format!("no disk {disk} in this volume")))?;
    // Refused before the disk is marked draining: a drain that cannot finish would leave
    // it taking no new shards, every new stripe degraded.
    let width = stripe_width(vol);
    let others = infos
        .iter()
        .filter(|i| i.config.id != disk && i.is_writable())
        .count();
    let stripes = vol.stripes();
    if others < width && stripes.iter().any(|at| at.stripe.uses(disk)) {
        return Err(crate::Error::Config(format!(
            "cannot drain {disk}: a stripe needs {width} disks and only {others} others can take shards; add a disk first (or replace {disk} with a new directory)"
        )));
    }
    if state == DiskState::Active {
        vol.set_disk_state(disk, DiskState::Draining, "drain requested")?;
    }
    let mut run = Run::new(bounds, job);
    let mut report = Report::default();
    let mut stripes = stripes;
    // A stripe placed on the disk just before it was marked draining may be recorded
    // after a pass went by: once a pass is done, a commit (which waits for every write
    // in flight) shows it, and another pass moves it.
    for pass in 0..DRAIN_PASSES {
        if pass > 0 {
            vol.commit()?;
            stripes = vol.stripes();
            if report.must_stop(job) || !stripes.iter().any(|at| at.stripe.uses(disk)) {
                break;
            }
            report.stripes_left = 0;
            report.failures.clear();
        }
        drain_pass(vol, disk, &mut run, &stripes, &mut report);
        run.commit(vol, &mut report, true);
        if !report.is_complete() {
            break;
        }
    }
    if report.is_complete() && !vol.stripes().iter().any(|at| at.stripe.uses(disk)) {
        vol.set_disk_state(disk, DiskState::Removed, "drained: it holds no shard")?;
    }
    Ok(report)
}

/// Passes a drain makes at most: the first moves everything there was; the others pick
/// up stripes written to the disk while it was being marked draining.
const DRAIN_PASSES: usize = 3;

/// One pass of [`drain`]: moves the shard each of `stripes` has on `disk`.
fn drain_pass(
    vol: &Volume,
    disk: DiskId,
    run: &mut Run<'_>,
    stripes: &[StripeAt],
    report: &mut Report,
) {
    run.job.phase("draining", stripes.len() as u64);
    for at in stripes {
        run.job.advance(1, 0);
        let Some(index) = at.stripe.placed().find(|(_, d)| *d == disk).map(|(i, _)| i) else {
            continue;
        };
        report.stripes_checked += 1;
        if report.must_stop(run.job) {
            report.stripes_left += 1;
            continue;
        }
        let Some(target) = vol
            .choose_disks(&at.stripe, &[index], &[disk])
            .first()
            .copied()
        else {
            report.stripes_left += 1;
            report
                .failures
                .push(format!("{at}: no other disk can take shard {index}"));
            continue;
        };
        let result = vol.relocate_into(at, &[(index, target)], &mut run.batch);
        report.relocated(run.job, &mut run.pace, at, 1, result);
        run.commit(vol, report, false);
        report.is_bounded = run.bounds.is_reached(report.bytes_written);
    }
}

/// Evens out the shard bytes on the writable disks, relative to their weights, moving
/// one shard at a time (each in the safe order) from the disk furthest over its share to
/// one under its share that the stripe does not use yet, within the failure-domain rules.
/// Refused while any stripe is degraded: repair comes first (a move would read from a
/// stripe short of redundancy). Stops once no disk is over its share by more than one
/// shard, or at the byte bound; `stripes_left` then counts the moves still wanted.
pub fn rebalance(vol: &Volume, bounds: Bounds, job: &Job) -> Result<Report> {
    let survey = survey(vol)?;
    if !survey.is_whole() {
        return Err(crate::Error::Config(format!(
            "{} of {} stripes are degraded: heal first (rebalancing waits until every stripe is whole)",
            survey.degraded_stripes, survey.stripes
        )));
    }
    let writable: Vec<&DiskSurvey> = survey
        .disks
        .iter()
        .filter(|d| d.info.is_writable())
        .collect();
    let total_bytes: u64 = writable.iter().map(|d| d.shard_bytes).sum();
    let total_weight: f64 = writable.iter().map(|d| d.info.config.weight).sum();
    let mut used: HashMap<DiskId, u64> = writable
        .iter()
        .map(|d| (d.info.config.id, d.shard_bytes))
        .collect();
    let share: HashMap<DiskId, f64> = writable
        .iter()
        .map(|d| {
            let share = total_bytes as f64 * d.info.config.weight / total_weight;
            (d.info.config.id, share)
        })
        .collect();
    let mut run = Run::new(bounds, job);
    let mut report = Report::default();
    // Passes over the stripes until one moves nothing (each pass moves at most one
    // shard per stripe, from its disk furthest over its share).
    loop {
        let moved_before = report.shards_written;
        rebalance_pass(vol, &mut run, &share, &mut used, &mut report);
        if report.must_stop(job) || report.shards_written == moved_before {
            break;
        }
    }
    run.commit(vol, &mut report, true);
    Ok(report)
}

/// One pass of [`rebalance`] over every stripe, in stripe order (the same volume gives
/// the same moves).
fn rebalance_pass(
    vol: &Volume,
    run: &mut Run<'_>,
    share: &HashMap<DiskId, f64>,
    used: &mut HashMap<DiskId, u64>,
    report: &mut Report,
) {
    let over =
        |used: &HashMap<DiskId, u64>, d: DiskId, len: u64| used[&d] as f64 - share[&d] > len as f64;
    let mut stripes = vol.stripes();
    stripes.sort_by_key(|at| at.stripe.id);
    run.job.phase("rebalancing", stripes.len() as u64);
    for at in stripes {
        run.job.advance(1, 0);
        let len = u64::from(at.stripe.info.shard_len);
        // The shard of this stripe on the disk most over its share, if any is over.
        let Some((index, source)) = at
            .stripe
            .placed()
            .filter(|(_, d)| used.contains_key(d) && over(used, *d, len))
            .max_by(|a, b| {
                let excess = |d: DiskId| used[&d] as f64 - share[&d];
                excess(a.1).total_cmp(&excess(b.1))
            })
        else {
            continue;
        };
        report.stripes_checked += 1;
        if report.must_stop(run.job) {
            report.stripes_left += 1;
            continue;
        }
        // Only disks with room below their share may take it.
        let full: Vec<DiskId> = used
            .keys()
            .copied()
            .filter(|d| used[d] as f64 + len as f64 > share[d])
            .collect();
        let Some(target) = vol
            .choose_disks(&at.stripe, &[index], &full)
            .first()
            .copied()
        else {
            continue;
        };
        let result = vol.relocate_into(&at, &[(index, target)], &mut run.batch);
        if matches!(result, Ok(Relocated::Done { .. })) {
            *used.get_mut(&source).expect("a writable disk") -= len;
            *used.entry(target).or_default() += len;
        }
        report.relocated(run.job, &mut run.pace, &at, 1, result);
        report.is_bounded = run.bounds.is_reached(report.bytes_written);
        run.commit(vol, report, false);
    }
}

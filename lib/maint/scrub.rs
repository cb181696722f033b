//! Scrub: read and verify every shard of a volume's stripes, oldest verified first, and
//! with `repair` rewrite what is bad (SnapRAID's `scrub -p/-o` and ZFS's pause and
//! resume are the models).
//!
//! A stripe is verified by reading each of its k+m shards where the metadata places it:
//! - each shard on its own: frame, head and block CRCs, this volume, its key, a header
//!   naming the stripe's inode, chunk and layout, the stripe's shard length
//!   (`Volume::check_shards`); no object is a missing shard;
//! - together: some k of the good ones rebuild a payload with the recorded CRC and zero
//!   padding, and every good shard equals what that payload encodes to (a shard whose own
//!   checks pass but whose bytes disagree is bad: "disagrees");
//! - sealed stripes: the AEAD tag of the payload (an open Volume always has the key). The
//!   plaintext is dropped at once. A tag that fails while the CRC holds is data loss.
//!
//! Shards on a disk that cannot be read (lost, failed, removed) or never written are the
//! stripe being *degraded*: heal's work, which `repair` does too. Repair goes through
//! `maint::rebuild_lost`, as heal does: a bad shard whose own disk is writable is
//! rewritten in place, the others go to disks placement chooses; every rewrite is synced
//! and read back before it is committed.
//!
//! Each stripe verified good (or repaired) gets its verification time recorded in the
//! state file (`scrub_state`), which also keeps the run in progress: a run stopped by a
//! pause, a cancel, `max_bytes` or a crash is continued by the next start. The run is
//! saved every [`SAVE_EVERY`] (or, where a save of a large state file is slow, so that
//! saving takes at most a twentieth of the run) and at its end, so a crash costs only a
//! few stripes verified again. It reads through the open Volume only, so it runs next to a mount's
//! readers and writers: a stripe a writer replaced while it was read is skipped.

use super::pace::Pace;
use super::scrub_state::{self, FinishedRun, RunState, ScrubState};
use super::{Job, Stop, disk_infos, rebuild_lost};
use crate::data::{StripeContext, TransformError};
use crate::error::{Error, Result};
use crate::types::StripeId;
use crate::volume::{DiskInfo, Relocated, ShardCheck, StripeAt, Volume};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Time between two saves of the state during a run (longer when a save is slow).
pub const SAVE_EVERY: Duration = Duration::from_secs(2);
/// A save may take at most this share of the run: on a volume with millions of stripes
/// the state file is large, and it is saved less often instead.
const SAVE_SHARE: u32 = 20;

/// What a scrub run is asked to do. Options of a run that is continued are its own
/// (saved when it started), except `max_bytes`, which bounds each invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScrubOptions {
    /// Rewrite bad shards and rebuild degraded stripes.
    pub repair: bool,
    /// Verify only this percentage of the volume's stripes (the oldest verified), so that
    /// the next run verifies the next ones. In (0, 100].
    pub percent: Option<f64>,
    /// Skip stripes verified within this long.
    pub older_than: Option<Duration>,
    /// Read at most this many shard bytes per second.
    pub rate: Option<u64>,
    /// Stop once this many shard bytes were read (the stripe in progress finishes); the
    /// run stays unfinished and the next start continues it.
    pub max_bytes: Option<u64>,
    /// Only continue an unfinished run: an error when there is none.
    pub is_resume: bool,
}

/// Bad shards found, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// No object where the metadata places it.
    pub missing: u64,
    /// The object does not read or does not verify (frame, CRC, truncated, foreign).
    pub corrupt: u64,
    /// The object verifies but describes another shard, or has another length.
    pub mismatch: u64,
    /// The object verifies but its bytes disagree with what the other shards encode.
    pub parity_disagrees: u64,
    /// Stripes whose shards agree with the recorded CRC but whose AEAD tag fails.
    pub aead_failed: u64,
}

impl Found {
    /// Every bad shard (and tag) found.
    pub fn total(&self) -> u64 {
        self.missing + self.corrupt + self.mismatch + self.parity_disagrees + self.aead_failed
    }
}

/// What one scrub invocation did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Stripes read and verified.
    pub stripes_verified: u64,
    /// Shards read and verified (or found missing) on readable disks.
    pub shards_verified: u64,
    /// Shard bytes read.
    pub bytes_read: u64,
    /// Bad shards found, by kind.
    pub found: Found,
    /// Bad shards rewritten.
    pub shards_repaired: u64,
    /// Bad shards left as they are (no `repair`, or it failed).
    pub shards_left: u64,
    /// Stripes missing shards on unreadable disks or never written, left so (heal's
    /// work; `repair` does it).
    pub degraded_stripes: u64,
    /// Degraded stripes made whole.
    pub degraded_healed: u64,
    /// Stripes that cannot be rebuilt (fewer than k good shards agree, or the tag fails).
    pub unrecoverable: Vec<String>,
    /// Stripes skipped because they were verified within `older_than`.
    pub stripes_skipped_fresh: u64,
    /// Stripes a writer replaced while they were being verified (nothing to say about
    /// them: the new stripe is fresh).
    pub stripes_changed: u64,
    /// The invocation stopped at `max_bytes`.
    pub is_bounded: bool,
    /// It was asked to stop (a pause is saved as paused).
    pub stopped: Option<Stop>,
    /// It continued an unfinished run.
    pub is_resumed: bool,
    /// The run finished.
    pub is_finished: bool,
    /// The run as saved after this invocation (totals over all its invocations).
    pub run: Option<RunState>,
    /// What went wrong, one line per stripe.
    pub failures: Vec<String>,
}

impl ScrubReport {
    /// Nothing bad is left among what was verified: every bad shard was repaired, no
    /// stripe is degraded or lost, nothing failed.
    pub fn is_clean(&self) -> bool {
        self.shards_left == 0
            && self.degraded_stripes == 0
            && self.unrecoverable.is_empty()
            && self.failures.is_empty()
    }
}

/// The scrub state of a volume as `argosfs-scrub --status` shows it, from the state file
/// and the metadata (no shard is read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrubStatus {
    /// The unfinished run (paused or interrupted), if any.
    pub run: Option<RunState>,
    /// Stripes of the volume.
    pub stripes: u64,
    /// Stripes never verified.
    pub never_verified: u64,
    /// Age of the oldest verification of a stripe (of those ever verified), seconds.
    pub oldest_verified_age_secs: Option<u64>,
    /// The last run that finished.
    pub last_run: Option<FinishedRun>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The stripes to verify in order (oldest verified first, never verified first of all,
/// then by id), and how many were skipped as fresh. Stripes verified since the run
/// started are done and left out; at most the run's remaining target is returned.
fn work_list(
    stripes: Vec<StripeAt>,
    state: &ScrubState,
    run: &RunState,
    now: u64,
) -> (Vec<StripeAt>, u64) {
    let older_than_ms = run.older_than_secs.saturating_mul(1000);
    let mut skipped = 0;
    let mut due: Vec<(u64, StripeAt)> = stripes
        .into_iter()
        .filter_map(|at| {
            let verified = state.verified.get(&at.stripe.id).copied().unwrap_or(0);
            if verified >= run.started_ms {
                return None; // done in this run
            }
            if verified > 0 && older_than_ms > 0 && now.saturating_sub(verified) < older_than_ms {
                skipped += 1;
                return None;
            }
            Some((verified, at))
        })
        .collect();
    due.sort_by_key(|(verified, at)| (*verified, at.stripe.id));
    if let Some(target) = run.target_stripes {
        due.truncate(target.saturating_sub(run.stripes_done) as usize);
    }
    (due.into_iter().map(|(_, at)| at).collect(), skipped)
}

/// A new run with `options`, over `stripes` stripes.
fn new_run(options: &ScrubOptions, stripes: u64, state: &ScrubState) -> Result<RunState> {
    let target_stripes = match options.percent {
        None => None,
        Some(p) if p > 0.0 && p <= 100.0 => {
            Some(((stripes as f64 * p / 100.0).ceil() as u64).clamp(1, stripes.max(1)))
        }
        Some(p) => {
            return Err(Error::Config(format!(
                "scrub percent {p} is not in (0, 100]"
            )));
        }
    };
    // Later than every verification recorded, so "verified since the run started" means
    // "in this run" whatever the clock did.
    let newest = state.verified.values().max().copied().unwrap_or(0);
    Ok(RunState {
        started_ms: now_ms().max(newest + 1),
        target_stripes,
        older_than_secs: options.older_than.map_or(0, |d| d.as_secs()),
        rate_bytes: options.rate,
        repair: options.repair,
        stripes_done: 0,
        is_paused: false,
        found: 0,
        repaired: 0,
    })
}

/// Keeps only the verification times of `live` stripes, then writes the state.
fn save(vol: &Volume, state: &mut ScrubState, live: &HashSet<StripeId>) -> Result<()> {
    state.verified.retain(|id, _| live.contains(id));
    scrub_state::store(vol.root_path(), vol.id(), state)
}

/// Scrubs `vol`: starts a run with `options`, or continues the unfinished one (paused or
/// interrupted; with its own options) when there is one, and verifies its stripes until
/// it is done, `job` asks it to stop, or `max_bytes` is reached. Stops only between
/// stripes. A stop by [`Stop::Pause`] saves the run as paused; any other stop leaves it
/// interrupted; either is continued by the next start.
pub fn scrub(vol: &Volume, options: &ScrubOptions, job: &Job) -> Result<ScrubReport> {
    let root = vol.root_path();
    let mut state = scrub_state::load(root, vol.id())?;
    let stripes = vol.stripes();
    let live: HashSet<StripeId> = stripes.iter().map(|at| at.stripe.id).collect();
    let mut report = ScrubReport::default();
    let mut run = match state.run.take() {
        Some(mut run) => {
            run.is_paused = false;
            report.is_resumed = true;
            run
        }
        None if options.is_resume => {
            return Err(Error::Config(
                "there is no unfinished scrub run to resume (start one without --resume)".into(),
            ));
        }
        None => new_run(options, stripes.len() as u64, &state)?,
    };
    let (due, skipped) = work_list(stripes, &state, &run, now_ms());
    report.stripes_skipped_fresh = skipped;
    let infos = disk_infos(vol);
    let mut pace = Pace::new(run.rate_bytes);
    let mut last_save = Instant::now();
    let mut save_every = SAVE_EVERY;
    job.phase("scrubbing", due.len() as u64);
    let mut is_cut_short = false;
    for at in &due {
        if let Some(stop) = job.stop_requested() {
            report.stopped = Some(stop);
            is_cut_short = true;
            break;
        }
        if options
            .max_bytes
            .is_some_and(|max| report.bytes_read >= max)
        {
            report.is_bounded = true;
            is_cut_short = true;
            break;
        }
        let outcome = verify_stripe(vol, at, run.repair, &infos, &mut report);
        run.stripes_done += 1;
        run.found += outcome.found;
        run.repaired += outcome.repaired;
        if outcome.is_good {
            let at_ms = now_ms().max(run.started_ms);
            state.verified.insert(at.stripe.id, at_ms);
        }
        job.advance(1, outcome.bytes);
        pace.account(outcome.bytes);
        if last_save.elapsed() >= save_every {
            let started = Instant::now();
            state.run = Some(run.clone());
            save(vol, &mut state, &live)?;
            state.run = None;
            save_every = SAVE_EVERY.max(started.elapsed() * SAVE_SHARE);
            last_save = Instant::now();
        }
    }
    report.is_finished = !is_cut_short;
    if report.is_finished {
        // Health shows when each disk's shards were last verified by a finished run.
        let finished_unix = now_ms() / 1000;
        for info in vol.disk_infos().iter().filter(|i| i.is_readable()) {
            if let Err(e) = vol.note_scrubbed(info.config.id, finished_unix) {
                tracing::warn!(disk = %info.config.id, error = %e, "could not record the scrub time");
            }
        }
        // Saved now, so health next to a mount sees it without waiting for a commit.
        if let Err(e) = vol.save_records() {
            tracing::warn!(error = %e, "could not save the disk records");
        }
        state.last_run = Some(FinishedRun {
            run: run.clone(),
            finished_ms: now_ms(),
        });
        state.run = None;
    } else {
        run.is_paused = report.stopped == Some(Stop::Pause);
        state.run = Some(run.clone());
    }
    report.run = Some(run);
    // Stripes removed during the run lose their entries too.
    let live: HashSet<StripeId> = vol.stripes().iter().map(|at| at.stripe.id).collect();
    save(vol, &mut state, &live)?;
    Ok(report)
}

/// What verifying one stripe gave, for the run's totals.
struct Outcome {
    bytes: u64,
    /// Everything read verified (or was repaired): its verification time is recorded.
    is_good: bool,
    found: u64,
    repaired: u64,
}

/// The kind of a bad shard.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Missing,
    Corrupt,
    Mismatch,
    Disagrees,
}

impl Bad {
    fn count(self, found: &mut Found) {
        match self {
            Bad::Missing => found.missing += 1,
            Bad::Corrupt => found.corrupt += 1,
            Bad::Mismatch => found.mismatch += 1,
            Bad::Disagrees => found.parity_disagrees += 1,
        }
    }
}

/// Reads and verifies one stripe, repairing it when asked; counts into `report`.
fn verify_stripe(
    vol: &Volume,
    at: &StripeAt,
    repair: bool,
    infos: &HashMap<crate::types::DiskId, DiskInfo>,
    report: &mut ScrubReport,
) -> Outcome {
    let k = vol.codec().k();
    let m = vol.codec().m();
    let checks = vol.check_shards(at);
    let bytes: u64 = checks.iter().map(|(_, b)| b).sum();
    report.bytes_read += bytes;
    let mut degraded: Vec<usize> = Vec::new();
    let mut bad: Vec<(usize, Bad, String)> = Vec::new();
    let mut views: Vec<Option<&[u8]>> = vec![None; checks.len()];
    let mut shards_read = 0;
    for (i, (check, _)) in checks.iter().enumerate() {
        let is_readable = at
            .stripe
            .disk_of(i)
            .and_then(|d| infos.get(&d))
            .is_some_and(DiskInfo::is_readable);
        match check {
            ShardCheck::Unwritten | ShardCheck::Unreachable => degraded.push(i),
            _ if !is_readable => degraded.push(i),
            ShardCheck::Good(object) => {
                shards_read += 1;
                views[i] = Some(object.payload());
            }
            ShardCheck::Missing => {
                shards_read += 1;
                bad.push((i, Bad::Missing, "shard missing".into()));
            }
            ShardCheck::Corrupt(why) => {
                shards_read += 1;
                bad.push((i, Bad::Corrupt, why.clone()));
            }
            ShardCheck::Mismatch(why) => {
                shards_read += 1;
                bad.push((i, Bad::Mismatch, why.clone()));
            }
        }
    }
    let codec = vol.codec();
    let solved = crate::data::solve(codec.erasure().as_ref(), k, m, &at.stripe.info, &views);
    let mut lost: Option<String> = None;
    let mut is_aead_failed = false;
    match &solved {
        Some(expected) => {
            for (i, view) in views.iter().enumerate() {
                if let Some(view) = view
                    && *view != expected[i].as_slice()
                {
                    bad.push((
                        i,
                        Bad::Disagrees,
                        "content disagrees with the stripe's other shards".into(),
                    ));
                }
            }
            let ctx = StripeContext {
                volume: vol.id(),
                inode: at.ino,
                chunk: at.chunk,
                stripe: at.stripe.id,
            };
            let data: Vec<&[u8]> = expected[..k].iter().map(Vec::as_slice).collect();
            match codec.authenticate(&ctx, &at.stripe.info, &data) {
                Ok(()) => {}
                Err(TransformError::Authentication) => {
                    is_aead_failed = true;
                    lost = Some(
                        "the shards agree with the recorded checksum but the stripe fails authentication (altered or moved ciphertext): its data is lost".into(),
                    );
                }
                Err(e) => lost = Some(format!("the stripe does not authenticate: {e}")),
            }
        }
        None => {
            let good = views.iter().flatten().count();
            lost = Some(if good < k {
                format!("{good} of the {k} shards needed are good: its data is lost")
            } else {
                format!(
                    "{good} shards verify alone but no {k} of them rebuild the recorded payload checksum: its data is lost"
                )
            });
        }
    }
    let is_whole = bad.is_empty() && degraded.is_empty() && lost.is_none();
    if is_whole {
        report.stripes_verified += 1;
        report.shards_verified += shards_read;
        return Outcome {
            bytes,
            is_good: true,
            found: 0,
            repaired: 0,
        };
    }
    // Something is wrong, unless a writer replaced the stripe while it was read (its
    // shards are deleted once the new one commits).
    if !vol.is_current(at) {
        report.stripes_changed += 1;
        return Outcome {
            bytes,
            is_good: false,
            found: 0,
            repaired: 0,
        };
    }
    report.stripes_verified += 1;
    report.shards_verified += shards_read;
    for (i, kind, why) in &bad {
        kind.count(&mut report.found);
        let disk = at
            .stripe
            .disk_of(*i)
            .map_or_else(|| "-".to_string(), |d| d.to_string());
        tracing::warn!(stripe = %at.stripe.id, inode = %at.ino, chunk = at.chunk, shard = i, disk = %disk, why = %why, "scrub: bad shard");
    }
    let found = bad.len() as u64 + u64::from(!degraded.is_empty()) + u64::from(is_aead_failed);
    if is_aead_failed {
        report.found.aead_failed += 1;
    }
    if let Some(why) = lost {
        tracing::error!(stripe = %at.stripe.id, inode = %at.ino, chunk = at.chunk, why = %why, "scrub: stripe unrecoverable");
        report.unrecoverable.push(format!("{at}: {why}"));
        report.shards_left += bad.len() as u64;
        if !degraded.is_empty() {
            report.degraded_stripes += 1;
        }
        return Outcome {
            bytes,
            is_good: false,
            found,
            repaired: 0,
        };
    }
    let is_repaired = repair_stripe(vol, at, repair, &bad, &degraded, infos, report);
    let bad_count = bad.len() as u64;
    if is_repaired {
        report.shards_repaired += bad_count;
        if !degraded.is_empty() {
            report.degraded_healed += 1;
        }
    } else {
        report.shards_left += bad_count;
        if !degraded.is_empty() {
            report.degraded_stripes += 1;
        }
    }
    let repaired = if is_repaired { found } else { 0 };
    Outcome {
        bytes,
        // The shards present verified; a stripe only degraded counts as verified (heal
        // finds it from the metadata and the disk listings without a scrub).
        is_good: is_repaired || bad.is_empty(),
        found,
        repaired,
    }
}

/// With `repair`, rebuilds the `bad` and `degraded` shards of a stripe whose good shards
/// agree (as heal does); whether all of them were rebuilt. A failure is reported.
fn repair_stripe(
    vol: &Volume,
    at: &StripeAt,
    repair: bool,
    bad: &[(usize, Bad, String)],
    degraded: &[usize],
    infos: &HashMap<crate::types::DiskId, DiskInfo>,
    report: &mut ScrubReport,
) -> bool {
    if !repair {
        return false;
    }
    let mut lost: Vec<usize> = bad
        .iter()
        .map(|(i, _, _)| *i)
        .chain(degraded.iter().copied())
        .collect();
    lost.sort_unstable();
    lost.dedup();
    // One stripe, one commit: a repair is durable before the scrub goes on.
    let mut batch = crate::volume::MoveBatch::default();
    let rebuilt = rebuild_lost(vol, at, &lost, infos, &mut batch);
    if let Err(e) = vol.finish_moves(&mut batch) {
        report
            .failures
            .push(format!("{at}: committing the repair: {e}"));
        return false;
    }
    match rebuilt {
        None => {
            report.failures.push(format!(
                "{at}: no disk can take its {} bad or missing shard(s)",
                lost.len()
            ));
            false
        }
        Some(rebuilt) => match rebuilt.result {
            Ok(Relocated::Done { .. }) if rebuilt.unplaced == 0 => true,
            Ok(Relocated::Done { .. }) => {
                report.failures.push(format!(
                    "{at}: {} of {} bad or missing shards rebuilt; no disk could take the rest",
                    rebuilt.moves,
                    lost.len()
                ));
                false
            }
            // A writer replaced the stripe meanwhile: the new one has all its shards.
            Ok(Relocated::Stale) => {
                report.stripes_changed += 1;
                true
            }
            Err(e) => {
                report.failures.push(format!("{at}: repair failed: {e}"));
                false
            }
        },
    }
}

/// The scrub state of `vol` without reading a shard: the unfinished run, how many
/// stripes were never verified, the oldest verification, the last run's findings.
pub fn status(vol: &Volume) -> Result<ScrubStatus> {
    let state = scrub_state::load(vol.root_path(), vol.id())?;
    let stripes = vol.stripes();
    let now = now_ms();
    let mut never_verified = 0;
    let mut oldest: Option<u64> = None;
    for at in &stripes {
        match state.verified.get(&at.stripe.id) {
            None => never_verified += 1,
            Some(&ms) => oldest = Some(oldest.map_or(ms, |o| o.min(ms))),
        }
    }
    Ok(ScrubStatus {
        run: state.run,
        stripes: stripes.len() as u64,
        never_verified,
        oldest_verified_age_secs: oldest.map(|ms| now.saturating_sub(ms) / 1000),
        last_run: state.last_run,
    })
}

/// Marks the unfinished scrub run of `vol` paused (offline: no scrub is running, so an
/// interrupted run is only marked). Returns the run; an error when there is none.
pub fn pause(vol: &Volume) -> Result<RunState> {
    let mut state = scrub_state::load(vol.root_path(), vol.id())?;
    let Some(run) = state.run.as_mut() else {
        return Err(Error::Config(
            "there is no unfinished scrub run to pause".into(),
        ));
    };
    run.is_paused = true;
    let run = run.clone();
    scrub_state::store(vol.root_path(), vol.id(), &state)?;
    Ok(run)
}

//! The decision: from [`Inputs`] to a [`Plan`], a pure function (no clock, no I/O, no
//! hash order), so the same inputs always give the same plan and a saved artifact can be
//! replayed.
//!
//! The rules, in the order they apply (each written in DESIGN.md and tested):
//! - Refuse to act while the metadata fails verification or more disks are lost than
//!   the layout tolerates (m): the plan then only says what a person should do.
//! - A lost disk is waited for during the grace period (`down_after_secs`); after it,
//!   it is marked failed and its shards rebuilt elsewhere. While one is waited for, heal
//!   waits too (it would rebuild that disk's shards elsewhere).
//! - Repair first: heal whenever stripes are degraded; no rebalance while any is.
//! - SMART is a weak predictor: a drive is drained only on a hard failure (its own
//!   verdict failed) or a trend (bad sectors grew over [`TREND_RUNS`] runs in a row);
//!   one bad reading is only reported. A disk that keeps going away and coming back
//!   ([`FLAPS_TO_DRAIN`] times) is drained too.
//! - Never drain a disk when fewer than k+m other disks could take its shards, or fewer
//!   writable failure domains than `min_shards` would remain: that is reported critical.
//! - Everything that writes shares one byte budget per run.

use super::inputs::{DiskSeen, Inputs, Observation, SLOW_FACTOR, peer_median_p99};
use crate::types::DiskId;
use serde::{Deserialize, Serialize};

/// Runs in a row over which growing bad-sector counts make a trend.
pub const TREND_RUNS: usize = 3;
/// Times a disk may go away and come back before it is drained.
pub const FLAPS_TO_DRAIN: u32 = 3;
/// Runs in a row a disk must be slow before it is reported.
pub const SLOW_RUNS: u32 = 2;
/// Imbalance below this many bytes is not worth moving shards for.
pub const MIN_REBALANCE_BYTES: u64 = 1 << 20;

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Verify shards (a share of the volume, oldest verified first); repairs what is bad.
    Scrub {
        /// Share of the volume, percent.
        percent: f64,
    },
    /// Set a disk failed: no longer read or written.
    MarkFailed {
        /// The disk.
        disk: DiskId,
    },
    /// Rebuild every missing shard.
    Heal,
    /// Move every shard off a disk.
    Drain {
        /// The disk.
        disk: DiskId,
    },
    /// Even out the disks.
    Rebalance,
}

impl Step {
    /// Its name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Scrub { .. } => "scrub",
            Step::MarkFailed { .. } => "mark-failed",
            Step::Heal => "heal",
            Step::Drain { .. } => "drain",
            Step::Rebalance => "rebalance",
        }
    }

    /// It writes shards (and so spends the budget).
    pub fn moves_data(&self) -> bool {
        matches!(self, Step::Heal | Step::Drain { .. } | Step::Rebalance)
    }
}

/// A step with why it is taken, what it touches, its bound and the checks it passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What.
    pub step: Step,
    /// The exact inputs that fired it.
    pub trigger: Vec<String>,
    /// The disks it touches (empty: the whole volume).
    pub targets: Vec<DiskId>,
    /// Most shard bytes it may write (the run's budget left when it starts; the
    /// executor lowers it by what earlier steps wrote).
    pub max_bytes: Option<u64>,
    /// What it should achieve.
    pub expected: String,
    /// The safety checks it passed.
    pub checks: Vec<String>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention, not urgent.
    Warning,
    /// Data or writes are at risk; a person should act.
    Critical,
}

/// Something the autopilot noticed, acted on or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// The disk it is about, if one.
    pub disk: Option<DiskId>,
    /// What, in words.
    pub text: String,
}

/// The plan of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The steps, in the order they run.
    pub actions: Vec<Action>,
    /// What was noticed.
    pub findings: Vec<Finding>,
    /// Why other actions were not taken.
    pub not_taken: Vec<String>,
    /// Bytes the run may write in all.
    pub budget_bytes: u64,
    /// The autopilot refuses to act: why, and what a person should do.
    pub refused: Option<String>,
}

impl Plan {
    /// The most serious finding (None: nothing found).
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Computes the plan for `inputs`.
pub fn plan(inputs: &Inputs) -> Plan {
    let obs = &inputs.observation;
    let mut plan = Plan {
        actions: Vec::new(),
        findings: Vec::new(),
        not_taken: Vec::new(),
        budget_bytes: inputs.policy.budget(obs.stored_bytes()),
        refused: None,
    };
    if let Some(why) = &obs.metadata_problem {
        plan.refused = Some(format!(
            "the metadata or journal fails verification ({why}): nothing is moved until it is repaired; run `argosfs fsck ROOT`, then the repair it suggests (`--repair`)"
        ));
        plan.findings.push(Finding {
            severity: Severity::Critical,
            disk: None,
            text: format!("metadata fails verification: {why}"),
        });
        return plan;
    }
    let lost = obs.lost_disks();
    if lost.len() > usize::from(obs.m) {
        let names = disk_names(lost.iter().map(|d| d.id));
        plan.refused = Some(format!(
            "{} disks are lost ({names}) and the layout tolerates {}: stripes with a shard on each cannot be read, so nothing is moved; bring the disks back (check that their directories are mounted), then run the autopilot again",
            lost.len(),
            obs.m
        ));
        plan.findings.push(Finding {
            severity: Severity::Critical,
            disk: None,
            text: format!(
                "{} disks lost ({names}), more than the {} the layout tolerates",
                lost.len(),
                obs.m
            ),
        });
        return plan;
    }
    let waiting = lost_disks(inputs, &mut plan);
    heal(obs, &waiting, &mut plan);
    drains(inputs, &mut plan);
    slow_disks(inputs, &mut plan);
    rebalance(inputs, &mut plan);
    scrub(inputs, &mut plan);
    for action in plan.actions.iter_mut().filter(|a| a.step.moves_data()) {
        action.max_bytes = Some(plan.budget_bytes);
        action.checks.push(format!(
            "bounded by the run's budget of {} bytes",
            plan.budget_bytes
        ));
    }
    if plan.actions.is_empty() && plan.findings.is_empty() {
        plan.findings.push(Finding {
            severity: Severity::Info,
            disk: None,
            text: format!(
                "nothing to do: all {} stripes whole, every disk healthy",
                obs.stripes
            ),
        });
    }
    plan
}

fn disk_names(ids: impl Iterator<Item = DiskId>) -> String {
    ids.map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// Lost disks: marked failed once gone past the grace period; returns those still
/// waited for.
fn lost_disks(inputs: &Inputs, plan: &mut Plan) -> Vec<DiskId> {
    let obs = &inputs.observation;
    let mut waiting = Vec::new();
    for disk in obs.lost_disks() {
        let since = inputs
            .memory
            .disks
            .get(&disk.id)
            .and_then(|m| m.unavailable_since_unix)
            .unwrap_or(obs.now_unix);
        let gone = obs.now_unix.saturating_sub(since);
        let grace = inputs.policy.down_after_secs;
        if gone < grace {
            waiting.push(disk.id);
            plan.findings.push(Finding {
                severity: Severity::Warning,
                disk: Some(disk.id),
                text: format!(
                    "{} unavailable for {gone} s: waiting {grace} s (down_after) for it to come back before rebuilding its {} shards elsewhere",
                    disk.id, disk.shards
                ),
            });
            continue;
        }
        // A warning, not critical: the plan acts on it.
        plan.findings.push(Finding {
            severity: Severity::Warning,
            disk: Some(disk.id),
            text: format!(
                "{} unavailable for {gone} s: treated as failed, its shards rebuilt on the others",
                disk.id
            ),
        });
        plan.actions.push(Action {
            step: Step::MarkFailed { disk: disk.id },
            trigger: vec![format!(
                "{} unavailable since {since} ({gone} s >= down_after {grace} s)",
                disk.id
            )],
            targets: vec![disk.id],
            max_bytes: None,
            expected: format!(
                "{} is no longer read or written; heal rebuilds its shards on the others",
                disk.id
            ),
            checks: vec![format!(
                "{} lost disk(s), within the {} the layout tolerates",
                obs.lost_disks().len(),
                obs.m
            )],
        });
    }
    waiting
}

/// Heal when stripes are degraded (or a lost disk was just marked failed), unless a
/// lost disk is still waited for.
fn heal(obs: &Observation, waiting: &[DiskId], plan: &mut Plan) {
    let failing = plan
        .actions
        .iter()
        .any(|a| matches!(a.step, Step::MarkFailed { .. }));
    if obs.degraded_stripes == 0 && !failing {
        return;
    }
    if !waiting.is_empty() {
        plan.not_taken.push(format!(
            "heal waits: {} may come back within the grace period ({} degraded stripes meanwhile)",
            disk_names(waiting.iter().copied()),
            obs.degraded_stripes
        ));
        return;
    }
    let writable = obs.disks.iter().filter(|d| d.is_writable()).count();
    if writable < usize::from(obs.k) + 1 {
        plan.findings.push(Finding {
            severity: Severity::Critical,
            disk: None,
            text: format!(
                "{} stripes degraded and only {writable} disks can take shards: add or replace disks",
                obs.degraded_stripes
            ),
        });
        plan.not_taken.push(format!(
            "heal: only {writable} writable disks, a stripe needs more than k = {}",
            obs.k
        ));
        return;
    }
    let mut trigger = Vec::new();
    if obs.degraded_stripes > 0 {
        trigger.push(format!("{} stripes degraded", obs.degraded_stripes));
    }
    for d in obs.disks.iter().filter(|d| d.degraded_stripes > 0) {
        trigger.push(format!(
            "{}: {} stripes have their shard on it lost",
            d.id, d.degraded_stripes
        ));
    }
    if failing {
        trigger.push("a lost disk is marked failed in this plan".into());
    }
    plan.actions.push(Action {
        step: Step::Heal,
        trigger,
        targets: Vec::new(),
        max_bytes: None,
        expected:
            "every stripe has all its shards again (within the budget; the next run continues)"
                .into(),
        checks: vec![
            "rebuilt shards are written, synced and read back before the metadata references them"
                .into(),
            format!("{writable} writable disks, enough for k+1 = {}", obs.k + 1),
        ],
    });
}

/// Why a disk should be drained, if it should.
fn drain_reason(inputs: &Inputs, disk: &DiskSeen) -> Option<String> {
    let memory = inputs.memory.disks.get(&disk.id);
    if let Some(smart) = &disk.smart {
        if smart.passed == Some(false) {
            return Some(format!(
                "{}: SMART overall assessment failed (a hard failure)",
                disk.id
            ));
        }
        let mut series: Vec<u64> = memory.map(|m| m.bad_sectors.clone()).unwrap_or_default();
        series.push(smart.bad_sectors());
        let recent = &series[series.len().saturating_sub(TREND_RUNS)..];
        if recent.len() == TREND_RUNS && recent.windows(2).all(|w| w[1] > w[0]) {
            let text = recent
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" -> ");
            return Some(format!(
                "{}: bad sectors (reallocated + pending + uncorrectable + media errors) grew over {TREND_RUNS} runs: {text}",
                disk.id
            ));
        }
    }
    let flaps = memory.map_or(0, |m| m.flaps(disk.is_available));
    if flaps >= FLAPS_TO_DRAIN {
        return Some(format!(
            "{}: went away and came back {flaps} times over the last runs",
            disk.id
        ));
    }
    None
}

/// Drains failing disks, one per run, when it is safe.
fn drains(inputs: &Inputs, plan: &mut Plan) {
    let obs = &inputs.observation;
    for disk in obs.disks.iter().filter(|d| d.is_readable()) {
        if let Some(smart) = &disk.smart
            && smart.bad_sectors() > 0
            && drain_reason(inputs, disk).is_none()
        {
            plan.findings.push(Finding {
                severity: Severity::Warning,
                disk: Some(disk.id),
                text: format!(
                    "{}: {} bad sectors, without a trend yet: watched (one reading never triggers an irreversible action)",
                    disk.id,
                    smart.bad_sectors()
                ),
            });
        }
        let Some(reason) = drain_reason(inputs, disk) else {
            continue;
        };
        if disk.state != crate::volume::DiskState::Active && disk.shards == 0 {
            continue;
        }
        let others: Vec<&DiskSeen> = obs
            .disks
            .iter()
            .filter(|d| d.id != disk.id && d.is_writable())
            .collect();
        let mut domains: Vec<&str> = others.iter().map(|d| d.domain.as_str()).collect();
        domains.sort_unstable();
        domains.dedup();
        let unsafe_because = if others.len() < obs.width() {
            Some(format!(
                "only {} other disks can take shards, a stripe needs {}",
                others.len(),
                obs.width()
            ))
        } else if domains.len() < usize::from(obs.min_shards) {
            Some(format!(
                "it would leave {} writable failure domains, fewer than min_shards {}",
                domains.len(),
                obs.min_shards
            ))
        } else {
            None
        };
        if let Some(why) = unsafe_because {
            plan.findings.push(Finding {
                severity: Severity::Critical,
                disk: Some(disk.id),
                text: format!("{reason}; it cannot be drained: {why}; add or replace a disk"),
            });
            plan.not_taken.push(format!("drain {}: {why}", disk.id));
            continue;
        }
        if plan
            .actions
            .iter()
            .any(|a| matches!(a.step, Step::Drain { .. }))
        {
            plan.findings.push(Finding {
                severity: Severity::Warning,
                disk: Some(disk.id),
                text: format!("{reason}; drained after the disk drained in this run"),
            });
            plan.not_taken.push(format!(
                "drain {}: one drain per run (another is planned first)",
                disk.id
            ));
            continue;
        }
        plan.findings.push(Finding {
            severity: Severity::Warning,
            disk: Some(disk.id),
            text: reason.clone(),
        });
        plan.actions.push(Action {
            step: Step::Drain { disk: disk.id },
            trigger: vec![reason],
            targets: vec![disk.id],
            max_bytes: None,
            expected: format!(
                "{}'s {} shards ({} bytes) move to other disks; it ends removed",
                disk.id, disk.shards, disk.shard_bytes
            ),
            checks: vec![
                format!("{} other writable disks (a stripe needs {})", others.len(), obs.width()),
                format!(
                    "{} writable failure domains remain (min_shards {})",
                    domains.len(),
                    obs.min_shards
                ),
                "each shard is copied, synced, verified and committed before its old copy is deleted".into(),
            ],
        });
    }
}

/// Reports disks much slower than their peers (placement gives them fewer shards).
fn slow_disks(inputs: &Inputs, plan: &mut Plan) {
    let obs = &inputs.observation;
    let Some(median) = peer_median_p99(obs) else {
        return;
    };
    for disk in &obs.disks {
        let Some(p99) = disk.read_p99_us else {
            continue;
        };
        if p99 < SLOW_FACTOR * median {
            continue;
        }
        let runs = inputs.memory.disks.get(&disk.id).map_or(0, |m| m.slow_runs) + 1;
        if runs >= SLOW_RUNS {
            plan.findings.push(Finding {
                severity: Severity::Warning,
                disk: Some(disk.id),
                text: format!(
                    "{}: read p99 {p99:.0} us, {:.1}x the median of its peers ({median:.0} us), {runs} runs in a row",
                    disk.id,
                    p99 / median
                ),
            });
        }
    }
}

/// Rebalances when a writable disk is over its weighted share or short of headroom,
/// and nothing is degraded or being repaired.
fn rebalance(inputs: &Inputs, plan: &mut Plan) {
    let obs = &inputs.observation;
    let policy = &inputs.policy;
    let writable: Vec<&DiskSeen> = obs.disks.iter().filter(|d| d.is_writable()).collect();
    let total_weight: f64 = writable.iter().map(|d| d.weight).sum();
    let stored: u64 = writable.iter().map(|d| d.shard_bytes).sum();
    if writable.len() < 2 || total_weight <= 0.0 || stored == 0 {
        return;
    }
    let mut trigger = Vec::new();
    for d in &writable {
        let share = stored as f64 * d.weight / total_weight;
        let over = d.shard_bytes as f64 - share;
        if over > share * policy.imbalance_fraction && over > MIN_REBALANCE_BYTES as f64 {
            trigger.push(format!(
                "{}: {} bytes of shards, {:.0} over its weighted share of {:.0}",
                d.id, d.shard_bytes, over, share
            ));
        }
        if d.total_bytes > 0
            && (d.free_bytes as f64) < d.total_bytes as f64 * policy.headroom_fraction
        {
            trigger.push(format!(
                "{}: {} of {} bytes free, below the headroom of {} %",
                d.id,
                d.free_bytes,
                d.total_bytes,
                policy.headroom_fraction * 100.0
            ));
        }
    }
    if trigger.is_empty() {
        return;
    }
    if obs.degraded_stripes > 0 || plan.actions.iter().any(|a| a.step.moves_data()) {
        plan.not_taken.push(format!(
            "rebalance ({}) waits: repair and drains come first",
            trigger.join("; ")
        ));
        return;
    }
    plan.actions.push(Action {
        step: Step::Rebalance,
        trigger,
        targets: Vec::new(),
        max_bytes: None,
        expected: "shards move from disks over their share to disks under it".into(),
        checks: vec![
            "no stripe is degraded (repair first)".into(),
            "each shard is copied, synced, verified and committed before its old copy is deleted"
                .into(),
        ],
    });
}

/// Scrubs when the oldest verification is older than the policy wants.
fn scrub(inputs: &Inputs, plan: &mut Plan) {
    let obs = &inputs.observation;
    if obs.stripes == 0 {
        return;
    }
    let every = inputs.policy.scrub_every_secs;
    let trigger = match obs.oldest_scrub_unix {
        None => "stripes never verified by a scrub".to_string(),
        Some(at) if obs.now_unix.saturating_sub(at) >= every => format!(
            "oldest verification at {at}, {} s ago (scrub every {every} s)",
            obs.now_unix - at
        ),
        Some(_) => return,
    };
    plan.actions.push(Action {
        step: Step::Scrub {
            percent: inputs.policy.scrub_percent,
        },
        trigger: vec![trigger],
        targets: Vec::new(),
        max_bytes: None,
        expected: format!(
            "{} % of the stripes verified (oldest first); bad shards rewritten",
            inputs.policy.scrub_percent
        ),
        checks: vec!["reads only; a bad shard is rebuilt from the others and verified before it replaces the old one".into()],
    });
}

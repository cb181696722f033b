//! argosfs-autopilot (`argosfs autopilot`): observes a volume, plans bounded actions by
//! the rules of `crate::autopilot::plan`, and performs exactly that plan (unless
//! --dry-run) through the mount serving the volume or on the volume it opens; every run
//! leaves an artifact that --replay recomputes the plan from.

use super::import::UsageError;
use super::perform::Performer;
use super::{CommonArgs, Example, ExitStatus, InUse, exit, init_logging};
use crate::autopilot::observe::{self, DiskHealth};
use crate::autopilot::record::{self, Artifact, Event, StepResult, Verification};
use crate::autopilot::{Inputs, Observation, Plan, Policy, Severity, execute, plan};
use crate::control::Client;
use crate::maint::Survey;
use crate::maint::action::{Outcome, Request, ScrubOutcome};
use crate::placement::human_bytes;
use crate::volume::Superblock;
use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const PROGRAM: &str = "argosfs-autopilot";

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-autopilot /srv/argosfs --dry-run --explain",
        "show what it would do and why (and why not other things); change nothing",
    ),
    (
        "argosfs-autopilot /srv/argosfs --json",
        "observe, plan and act (hourly from a timer); the JSON names the run's artifact",
    ),
    (
        "argosfs-autopilot /srv/argosfs --max-bytes 20G --down-after 1800",
        "move at most 20 GiB this run; wait 30 minutes before treating a vanished disk as failed",
    ),
    (
        "argosfs-autopilot /srv/argosfs --replay /srv/argosfs/autopilot/run-1800000000-42.json",
        "recompute that run's plan from its saved inputs and show it is the same",
    ),
];

/// Exit status of argosfs-autopilot.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (
        exit::OK,
        "every planned action succeeded (or, with --dry-run, the plan was made) and nothing critical was found; --replay: the plan is identical",
    ),
    (
        exit::FAIL,
        "an action failed, the autopilot refused to act (damaged metadata, too many disks lost), or a critical finding needs a person; --replay: the plan differs; or it could not run",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// Watch an ArgosFS volume's disks and repair, drain or rebalance conservatively.
///
/// Observes the volume (the disks, degraded stripes, the scrub state), remembers what
/// earlier runs saw (for grace periods and trends), and plans bounded actions: scrub,
/// heal, mark a lost disk failed, drain a failing disk, rebalance. Each carries its
/// trigger, bounds and the safety checks it passed. Without --dry-run exactly that plan
/// is performed, by the mount when one serves the volume, else on the volume opened
/// here; each action is recorded in ROOT/events.log (and passed to the executables in
/// ROOT/hooks.d), and the run's inputs, plan and results are saved as an artifact in
/// ROOT/autopilot/.
#[derive(Debug, Parser)]
#[command(name = "argosfs-autopilot", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct AutopilotArgs {
    /// Volume root directory (mounted or not).
    #[arg(required_unless_present = "replay")]
    pub root: Option<PathBuf>,
    /// Plan and show; change nothing (the memory of what was observed is still kept).
    #[arg(long)]
    pub dry_run: bool,
    /// Add the reasoning: the checks each action passed and why other actions were not
    /// taken.
    #[arg(long)]
    pub explain: bool,
    /// Most shard bytes this run may write (default: 5 % of the stored bytes, at least
    /// 1 GiB).
    #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
    pub max_bytes: Option<u64>,
    /// Treat a disk that has been unavailable this long as failed (default 600; 0 acts
    /// at once).
    #[arg(long, value_name = "SECONDS")]
    pub down_after: Option<u64>,
    /// Recompute the plan of a saved run from its inputs and compare it with the plan
    /// it made.
    #[arg(long, value_name = "ARTIFACT", conflicts_with_all = ["dry_run", "max_bytes", "down_after"])]
    pub replay: Option<PathBuf>,
    /// SMART data to use instead of or on top of smartctl's, per disk (the format
    /// argosfs-health --smart-override documents).
    #[arg(long, value_name = "FILE")]
    pub smart_override: Option<PathBuf>,
    /// Do not run smartctl (use only --smart-override, if given).
    #[arg(long)]
    pub no_smartctl: bool,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

use super::Done as Outcome2;

/// Entry point of argosfs-autopilot.
pub fn main() -> ExitCode {
    run(AutopilotArgs::parse())
}

/// Runs argosfs-autopilot with parsed arguments.
pub fn run(args: AutopilotArgs) -> ExitCode {
    init_logging(&args.common, "warn");
    let header = json!({
        "schema": 1,
        "command": if args.replay.is_some() { "replay" } else if args.dry_run { "dry-run" } else { "run" },
        "root": args.root.as_deref().map(|r| super::json_path(&super::display_path(r))),
    });
    let result = match &args.replay {
        Some(path) => replay(path, args.explain),
        None => {
            let root = args
                .root
                .clone()
                .expect("clap requires ROOT without --replay");
            autopilot(&args, &root)
        }
    };
    super::finish(PROGRAM, &args.common, header, result)
}

/// Whether an error opening the volume is the person's to fix before anything (the
/// volume in use, a passphrase, an old format) rather than damage the plan reports.
fn is_usage_of_the_volume(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<InUse>()
            || cause.is::<UsageError>()
            || matches!(
                cause.downcast_ref::<crate::Error>(),
                Some(
                    crate::Error::PassphraseRequired
                        | crate::Error::WrongPassphrase
                        | crate::Error::OldFormat { .. }
                        | crate::Error::Locked { .. }
                )
            )
    })
}

fn survey_of(performer: &Performer) -> anyhow::Result<Survey> {
    match performer.perform(&Request::List, false)? {
        Some(Outcome::Survey(survey)) => Ok(survey),
        _ => anyhow::bail!("the disk survey answered with something else"),
    }
}

/// Observes the volume: through the mount or the volume opened here; a volume that
/// cannot be opened (damaged metadata) is observed from its superblock alone, and the
/// plan then refuses to act.
fn observe_volume(
    args: &AutopilotArgs,
    root: &Path,
    sb: &Superblock,
    now: u64,
) -> anyhow::Result<(Observation, Option<Performer>)> {
    let mount = Client::find(root, sb.volume);
    let performer = match Performer::new(root, mount, args.passphrase_file.as_deref(), args.dry_run)
    {
        Ok(performer) => performer,
        Err(e) if is_usage_of_the_volume(&e) => return Err(e),
        Err(e) => {
            let why = format!("{e:#}");
            return Ok((observe::unsurveyed(now, sb, why), None));
        }
    };
    let survey = survey_of(&performer).context("surveying the disks")?;
    let scrub = match performer.perform(&Request::ScrubStatus, false) {
        Ok(Some(Outcome::Scrub(ScrubOutcome::Status(status)))) => Some(status),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no scrub state: scrubbing is planned as if never done");
            None
        }
    };
    let health = disk_health(args, root, sb, &performer)?;
    let observation = observe::observe(
        now,
        sb,
        sb.layout.min_shards,
        &survey,
        scrub.as_ref(),
        &health,
    );
    Ok((observation, Some(performer)))
}

/// What health reads of each disk: SMART (smartctl and the override file), and the data
/// plane's records (read latency, errors) from the volume opened here or, through a
/// mount, from the records it saved.
fn disk_health(
    args: &AutopilotArgs,
    root: &Path,
    sb: &Superblock,
    performer: &Performer,
) -> anyhow::Result<BTreeMap<crate::types::DiskId, DiskHealth>> {
    let options = crate::health::ObserveOptions {
        passphrase: None,
        smart_override: super::health::load_smart_override(args.smart_override.as_deref())?,
        run_smartctl: !args.no_smartctl,
    };
    let records = match performer {
        Performer::Here(vol) => Some(vol.records()),
        Performer::Mount { .. } => crate::volume::Records::load(root).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no disk records: latency and errors unknown");
            None
        }),
    };
    let abs_root = super::display_path(root);
    Ok(sb
        .disks
        .iter()
        .map(|config| {
            let path = config.resolve(&abs_root);
            let smart = crate::health::observe::smart_of(config, &path, &options)
                .data
                .map(|d| crate::autopilot::SmartReading {
                    passed: d.passed,
                    reallocated_sectors: d.reallocated_sectors,
                    pending_sectors: d.pending_sectors,
                    offline_uncorrectable: d.offline_uncorrectable,
                    media_errors: d.media_errors,
                });
            let record = records
                .as_ref()
                .and_then(|r| r.disks.iter().find(|d| d.id == config.id));
            let health = DiskHealth {
                smart,
                read_p99_us: record
                    .and_then(|r| r.read_latency.p99_us)
                    .map(|us| us as f64),
                errors: record.map_or(0, |r| {
                    let io = &r.io;
                    io.read_errors + io.write_errors + io.sync_errors + io.checksum_failures
                }),
            };
            (config.id, health)
        })
        .collect())
}

fn autopilot(args: &AutopilotArgs, root: &Path) -> anyhow::Result<Outcome2> {
    let sb = Superblock::load(root)
        .with_context(|| format!("reading the volume at {}", root.display()))?;
    let now = crate::types::unix_now();
    let policy = Policy {
        down_after_secs: args.down_after.unwrap_or(Policy::default().down_after_secs),
        budget_bytes: args.max_bytes,
        ..Policy::default()
    };
    let memory = record::load_memory(root)?;
    let (observation, performer) = observe_volume(args, root, &sb, now)?;
    let inputs = Inputs {
        observation,
        memory,
        policy,
    };
    let plan = plan(&inputs);
    record::store_memory(root, &inputs.memory.after(&inputs.observation))?;

    let mut results = Vec::new();
    let mut verification = None;
    let source = PROGRAM.to_string();
    let event = |kind: &str, data: Value| {
        let event = Event {
            unix: crate::types::unix_now(),
            kind: kind.to_string(),
            source: source.clone(),
            data,
        };
        if let Err(e) = record::record_event(root, &event) {
            tracing::warn!(error = %e, "could not record an event");
        }
    };
    for change in inputs.memory.changes(&inputs.observation) {
        event("health-changed", json!(change));
    }
    if let Some(why) = &plan.refused {
        event("autopilot-refused", json!({ "why": why }));
    }
    if let Some(performer) = &performer
        && !args.dry_run
        && plan.refused.is_none()
        && !plan.actions.is_empty()
    {
        let mut perform = |request: &Request| {
            performer
                .perform(request, false)
                .map_err(|e| format!("{e:#}"))
                .and_then(|o| o.ok_or_else(|| "the mount left it running".to_string()))
        };
        let mut done = |result: &StepResult| {
            event(
                "autopilot-action",
                json!({ "step": result.step, "is_ok": result.is_ok, "detail": result.detail, "bytes_written": result.bytes_written }),
            );
        };
        results = execute::execute(&plan, &mut perform, &mut done);
        verification = match survey_of(performer) {
            Ok(after) => Some(verify(&inputs.observation, &after)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not survey the volume after the actions");
                None
            }
        };
        if let Some(v) = &verification {
            event("autopilot-verified", json!(v));
        }
    }
    if let Some(performer) = performer {
        if args.dry_run {
            drop(performer);
        } else {
            performer.close()?;
        }
    }
    let artifact = Artifact {
        schema: 1,
        started_unix: now,
        is_dry_run: args.dry_run,
        inputs,
        plan,
        results,
        verification,
    };
    let path = record::store_artifact(root, &artifact)?;
    Ok(present(&artifact, &path, args.explain))
}

/// The state after the actions against the observation before them.
fn verify(before: &Observation, after: &Survey) -> Verification {
    let lost_after = after.disks.iter().filter(|d| d.is_missing()).count();
    let lost_before = before.lost_disks().len();
    Verification {
        degraded_before: before.degraded_stripes,
        degraded_after: after.degraded_stripes,
        lost_before,
        lost_after,
        is_redundancy_kept: after.degraded_stripes <= before.degraded_stripes
            || lost_after > lost_before,
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "CRITICAL",
    }
}

/// The plan in words.
fn plan_lines(plan: &Plan, explain: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(why) = &plan.refused {
        lines.push(format!("refusing to act: {why}"));
    }
    if plan.actions.is_empty() {
        lines.push("plan: no action".to_string());
    } else {
        lines.push(format!(
            "plan: {} action(s), budget {} of shard writes",
            plan.actions.len(),
            human_bytes(plan.budget_bytes)
        ));
    }
    for (i, action) in plan.actions.iter().enumerate() {
        let target = match &action.step {
            crate::autopilot::Step::Scrub { percent } => format!(" {percent} %"),
            crate::autopilot::Step::MarkFailed { disk }
            | crate::autopilot::Step::Drain { disk } => format!(" {disk}"),
            _ => String::new(),
        };
        lines.push(format!(
            "  {}. {}{target}: because {}",
            i + 1,
            action.step.name(),
            action.trigger.join("; ")
        ));
        lines.push(format!("     expected: {}", action.expected));
        if explain {
            for check in &action.checks {
                lines.push(format!("     check passed: {check}"));
            }
        }
    }
    for finding in &plan.findings {
        lines.push(format!(
            "{}: {}",
            severity_name(finding.severity),
            finding.text
        ));
    }
    if explain {
        for why in &plan.not_taken {
            lines.push(format!("not taken: {why}"));
        }
    }
    lines
}

fn present(artifact: &Artifact, path: &Path, explain: bool) -> Outcome2 {
    let plan = &artifact.plan;
    let mut lines = plan_lines(plan, explain);
    for result in &artifact.results {
        lines.push(format!(
            "{} {}: {}",
            result.step.name(),
            if result.is_ok { "done" } else { "FAILED" },
            result.detail
        ));
    }
    if let Some(v) = &artifact.verification {
        lines.push(format!(
            "after: {} degraded stripes (before {}), {} disks lost (before {}){}",
            v.degraded_after,
            v.degraded_before,
            v.lost_after,
            v.lost_before,
            if v.is_redundancy_kept {
                ""
            } else {
                ": REDUNDANCY FELL"
            }
        ));
    }
    if artifact.is_dry_run && !plan.actions.is_empty() {
        lines.push("dry run: nothing was changed".to_string());
    }
    lines.push(format!("artifact: {}", path.display()));
    let failed = artifact.results.iter().any(|r| !r.is_ok);
    let redundancy_fell = artifact
        .verification
        .as_ref()
        .is_some_and(|v| !v.is_redundancy_kept);
    let is_ok = !failed
        && !redundancy_fell
        && plan.refused.is_none()
        && plan.worst() != Some(Severity::Critical);
    Outcome2 {
        json: json!({
            "artifact_path": super::json_path(path),
            "is_dry_run": artifact.is_dry_run,
            "plan": plan,
            "results": artifact.results,
            "verification": artifact.verification,
            "inputs": artifact.inputs,
        }),
        lines,
        failures: Vec::new(),
        is_ok,
    }
}

fn replay(path: &Path, explain: bool) -> anyhow::Result<Outcome2> {
    let artifact = record::load_artifact(path)?;
    let again = plan(&artifact.inputs);
    let is_identical = again == artifact.plan;
    let mut lines = vec![if is_identical {
        format!(
            "replayed {}: the plan is identical ({} action(s))",
            path.display(),
            again.actions.len()
        )
    } else {
        format!(
            "replayed {}: the plan DIFFERS from the one saved",
            path.display()
        )
    }];
    lines.extend(plan_lines(&again, explain));
    Ok(Outcome2 {
        json: json!({
            "artifact_path": super::json_path(path),
            "is_identical": is_identical,
            "plan": again,
            "saved_plan": artifact.plan,
        }),
        lines,
        failures: Vec::new(),
        is_ok: is_identical,
    })
}

//! argosfs-scrub (`argosfs scrub`): reads and verifies every shard of a volume, oldest
//! verified first, and with --repair rewrites what is bad; shows, pauses and resumes the
//! run in progress. A shell over `crate::maint::scrub`: the mount serving the volume
//! scrubs in the background when there is one (asked through its control socket),
//! else this process does, on the volume it opens under the lock.

use super::perform::{Performer, mount_job, stop_job, wait_for_job};
use super::{CommonArgs, Example, ExitStatus, exit, init_logging};
use crate::control::{Client, JobStatus};
use crate::maint::Stop;
use crate::maint::action::{Outcome as Done, Request, ScrubOutcome};
use crate::maint::scrub::{ScrubOptions, ScrubReport, ScrubStatus};
use crate::maint::scrub_state::RunState;
use crate::placement::human_bytes;
use anyhow::Context;
use clap::Parser;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const PROGRAM: &str = "argosfs-scrub";

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-scrub /srv/argosfs",
        "verify every shard; report what is bad and change nothing",
    ),
    (
        "argosfs-scrub /srv/argosfs --repair",
        "verify every shard and rewrite the bad ones (and rebuild shards of lost disks)",
    ),
    (
        "argosfs-scrub /srv/argosfs --percent 10 --older-than 30d --rate 50",
        "verify the tenth of the stripes verified longest ago (none verified within 30 days), at most 50 MiB/s; the next run takes the next tenth",
    ),
    (
        "argosfs-scrub /srv/argosfs --status --json",
        "the run in progress, stripes never verified, the oldest verification, the last run's findings",
    ),
];

/// Exit status of argosfs-scrub.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (
        exit::OK,
        "every stripe verified is good or was repaired (a run stopped by --max-bytes or a pause may have stripes left to verify); --status and --pause: done",
    ),
    (
        exit::FAIL,
        "bad shards, degraded or lost stripes are left (run with --repair; lost data cannot be repaired), or the scrub failed; the message says which",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// Verify every shard of an ArgosFS volume, and repair what is bad.
///
/// Reads each shard of each stripe and checks its CRCs and header, that the shards of a
/// stripe agree with each other (parity) and with the recorded checksum, and the
/// authentication tag of an encrypted stripe. Stripes verified longest ago go first;
/// the time each stripe was verified and the run in progress are kept in ROOT/scrub.state,
/// so a run stopped (--pause, --max-bytes, a crash) continues where it was at the next
/// start. Without --repair nothing is changed. On a mounted volume the mount scrubs, in
/// the background, while files stay in use (and continues an interrupted run when it
/// is mounted again).
#[derive(Debug, Parser)]
#[command(name = "argosfs-scrub", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct ScrubArgs {
    /// Volume root directory (mounted or not).
    pub root: PathBuf,
    /// Rewrite bad shards from the others, in place, and rebuild shards of lost disks or
    /// never written onto disks chosen by placement; each rewrite is synced and read back
    /// before it is committed.
    #[arg(long)]
    pub repair: bool,
    /// Verify only this percentage of the stripes (those verified longest ago); the next
    /// run verifies the next ones.
    #[arg(long, value_name = "P", value_parser = parse_percent)]
    pub percent: Option<f64>,
    /// Skip stripes verified within AGE: seconds, or a number with s, m, h, d or w (30d,
    /// 12h, 90m, 3600).
    #[arg(long, value_name = "AGE", value_parser = super::parse_age)]
    pub older_than: Option<Duration>,
    /// Read at most this many MiB of shards per second (decimals allowed, e.g. 0.5).
    #[arg(long, value_name = "MB/s", value_parser = super::parse_rate)]
    pub rate: Option<u64>,
    /// Stop after reading about this many shard bytes (e.g. 64M, 1G); the run stays
    /// unfinished and the next start continues it.
    #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
    pub max_bytes: Option<u64>,
    /// Show the scrub state (the run in progress, stripes never verified, the oldest
    /// verification, the last run's findings) without reading any shard.
    #[arg(long, conflicts_with_all = ["pause", "resume", "repair", "percent", "older_than", "rate", "max_bytes"])]
    pub status: bool,
    /// Mark the unfinished run paused (it continues at the next start or --resume).
    #[arg(long, conflicts_with_all = ["resume", "repair", "percent", "older_than", "rate", "max_bytes"])]
    pub pause: bool,
    /// Continue the unfinished run (paused or interrupted) with its own options; an
    /// error when there is none. A start without --resume also continues it.
    #[arg(long, conflicts_with_all = ["repair", "percent", "older_than", "rate"])]
    pub resume: bool,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// On a mounted volume, start the scrub in the mount and return at once instead of
    /// waiting for it (--status shows how it goes).
    #[arg(long, conflicts_with_all = ["status", "pause"])]
    pub background: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{text:?} is not a percentage above 0, at most 100")),
    }
}

/// What was asked for.
fn command_name(args: &ScrubArgs) -> &'static str {
    if args.status {
        "status"
    } else if args.pause {
        "pause"
    } else if args.resume {
        "resume"
    } else {
        "scrub"
    }
}

use super::Done as Outcome;

/// Entry point of argosfs-scrub.
pub fn main() -> ExitCode {
    run(ScrubArgs::parse())
}

/// Runs argosfs-scrub with parsed arguments.
pub fn run(args: ScrubArgs) -> ExitCode {
    init_logging(&args.common, "warn");
    let root = super::display_path(&args.root);
    let header = json!({
        "schema": 1,
        "command": command_name(&args),
        "root": super::json_path(&root),
    });
    super::finish(
        PROGRAM,
        &args.common,
        header,
        execute(&args).map_err(super::perform::explain_in_use),
    )
}

fn execute(args: &ScrubArgs) -> anyhow::Result<Outcome> {
    let root = args.root.as_path();
    let sb = crate::volume::Superblock::load(root)
        .with_context(|| format!("reading the volume at {}", root.display()))?;
    let mount = Client::find(root, sb.volume);
    let job = match &mount {
        Some(client) => mount_job(client)?,
        None => None,
    };
    let request = if args.status {
        Request::ScrubStatus
    } else if args.pause {
        if let (Some(client), Some(job)) = (&mount, &job)
            && matches!(job.request, Request::Scrub(_))
            && !job.is_finished()
        {
            return pause_job(client, root, job);
        }
        Request::ScrubPause
    } else {
        Request::Scrub(ScrubOptions {
            repair: args.repair,
            percent: args.percent,
            older_than: args.older_than,
            rate: args.rate,
            max_bytes: args.max_bytes,
            is_resume: args.resume,
        })
    };
    let done = Performer::perform_once(
        root,
        mount,
        args.passphrase_file.as_deref(),
        &request,
        args.background,
    )?;
    match done {
        None => Ok(Outcome {
            json: json!({ "is_started": true }),
            lines: vec![format!(
                "scrub started in the mount; `argosfs-scrub {} --status` shows how it goes",
                root.display()
            )],
            failures: Vec::new(),
            is_ok: true,
        }),
        Some(Done::Scrub(ScrubOutcome::Ran(report))) => Ok(scrub_outcome(root, &report)),
        Some(Done::Scrub(ScrubOutcome::Status(status))) => status_outcome(&status, job.as_ref()),
        Some(Done::Scrub(ScrubOutcome::Paused(run))) => Ok(paused_outcome(root, &run)),
        Some(_) => anyhow::bail!("the mount answered a scrub request with something else"),
    }
}

/// Pauses the scrub the mount is running: asks it to stop, waits until it has saved
/// the run as paused.
fn pause_job(client: &Client, root: &Path, job: &JobStatus) -> anyhow::Result<Outcome> {
    stop_job(client, Stop::Pause)?;
    match wait_for_job(client, job.id)? {
        Done::Scrub(ScrubOutcome::Ran(report)) => {
            let run = report.run.context("the paused scrub reported no run")?;
            Ok(paused_outcome(root, &run))
        }
        _ => anyhow::bail!("the scrub job ended with something else"),
    }
}

fn paused_outcome(root: &Path, run: &RunState) -> Outcome {
    Outcome {
        json: json!({ "run": run }),
        lines: vec![format!(
            "scrub run paused: {}; `argosfs-scrub {} --resume` continues it",
            run_text(run),
            root.display()
        )],
        failures: Vec::new(),
        is_ok: true,
    }
}

fn scrub_outcome(root: &Path, report: &ScrubReport) -> Outcome {
    let mut json = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    json["is_clean"] = json!(report.is_clean());
    let f = &report.found;
    let mut lines = Vec::new();
    if report.is_resumed {
        lines.push("continuing the unfinished scrub run (with its own options)".to_string());
    }
    lines.push(format!(
        "verified {} stripes ({} shards, {} read); {} skipped as verified recently",
        report.stripes_verified,
        report.shards_verified,
        human_bytes(report.bytes_read),
        report.stripes_skipped_fresh
    ));
    lines.push(format!(
        "bad shards: {} ({} missing, {} corrupt, {} mismatched, {} disagreeing with parity, {} stripes failing authentication); {} repaired, {} left",
        f.total(),
        f.missing,
        f.corrupt,
        f.mismatch,
        f.parity_disagrees,
        f.aead_failed,
        report.shards_repaired,
        report.shards_left
    ));
    if report.degraded_healed > 0 || report.degraded_stripes > 0 {
        lines.push(format!(
            "degraded stripes (shards on lost disks or never written): {} rebuilt, {} left{}",
            report.degraded_healed,
            report.degraded_stripes,
            if report.degraded_stripes > 0 {
                " (--repair rebuilds them, given disks to take them)"
            } else {
                ""
            }
        ));
    }
    if !report.unrecoverable.is_empty() {
        lines.push(format!(
            "{} stripes cannot be rebuilt: their data is lost (below)",
            report.unrecoverable.len()
        ));
    }
    if let Some(run) = &report.run {
        let root = root.display();
        let state = if report.is_finished {
            "run finished".to_string()
        } else if run.is_paused {
            format!("run paused; `argosfs-scrub {root} --resume` continues it")
        } else if report.is_bounded {
            format!("stopped at --max-bytes; `argosfs-scrub {root}` continues the run")
        } else {
            format!("run interrupted; `argosfs-scrub {root}` continues it")
        };
        lines.push(format!("{}: {state}", run_text(run)));
    }
    if !report.is_clean() && report.shards_left + report.degraded_stripes > 0 {
        lines.push(format!(
            "something bad is left: run `argosfs-scrub {} --repair`",
            root.display()
        ));
    }
    let mut failures = report.unrecoverable.clone();
    failures.extend(report.failures.iter().cloned());
    Outcome {
        json,
        lines,
        failures,
        is_ok: report.is_clean(),
    }
}

/// A run's progress and totals in a few words.
fn run_text(run: &RunState) -> String {
    let target = run
        .target_stripes
        .map_or_else(String::new, |t| format!(" of {t}"));
    format!(
        "{}{target} stripes done, {} bad found, {} repaired{}",
        run.stripes_done,
        run.found,
        run.repaired,
        if run.repair { " (repairing)" } else { "" }
    )
}

fn status_outcome(status: &ScrubStatus, job: Option<&JobStatus>) -> anyhow::Result<Outcome> {
    let mut json = serde_json::to_value(status).context("the scrub status")?;
    // The mount's scrub job, running or last, when a mount serves the volume.
    let job = job.filter(|j| matches!(j.request, Request::Scrub(_)));
    json["job"] = json!(job);
    let mut lines = vec![format!(
        "{} stripes, {} never verified{}",
        status.stripes,
        status.never_verified,
        status
            .oldest_verified_age_secs
            .map_or_else(String::new, |age| format!(
                ", oldest verification {} ago",
                age_text(age)
            ))
    )];
    lines.push(match &status.run {
        None => "no scrub run in progress".to_string(),
        Some(run) if run.is_paused => format!("scrub run paused: {}", run_text(run)),
        Some(run) => format!("scrub run interrupted: {}", run_text(run)),
    });
    if let Some(last) = &status.last_run {
        lines.push(format!("last finished run: {}", run_text(&last.run)));
    }
    if let Some(job) = job {
        let p = &job.progress;
        lines.push(match &job.result {
            None => format!(
                "the mount is scrubbing (job {}): {} of {} stripes, {} read",
                job.id,
                p.done,
                p.total,
                human_bytes(p.bytes)
            ),
            Some(Ok(_)) => format!("the mount's scrub job {} has ended", job.id),
            Some(Err(why)) => format!("the mount's scrub job {} failed: {why}", job.id),
        });
    }
    Ok(Outcome {
        json,
        lines,
        failures: Vec::new(),
        is_ok: true,
    })
}

/// Seconds as "3d 4h", "5h 2m", "40s".
fn age_text(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_conflict() {
        let args = ScrubArgs::try_parse_from([
            "argosfs-scrub",
            "/r",
            "--repair",
            "--percent",
            "10",
            "--older-than",
            "30d",
            "--rate",
            "0.5",
            "--max-bytes",
            "1G",
            "--json",
        ])
        .unwrap();
        assert!(args.repair && args.common.json);
        assert_eq!(args.percent, Some(10.0));
        assert_eq!(args.older_than, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(args.rate, Some(512 << 10));
        assert_eq!(args.max_bytes, Some(1 << 30));
        for bad in [
            &["argosfs-scrub"][..],
            &["argosfs-scrub", "/r", "--percent", "0"],
            &["argosfs-scrub", "/r", "--percent", "150"],
            &["argosfs-scrub", "/r", "--older-than", "3 fortnights"],
            &["argosfs-scrub", "/r", "--rate", "-1"],
            &["argosfs-scrub", "/r", "--status", "--pause"],
            &["argosfs-scrub", "/r", "--resume", "--percent", "5"],
            &["argosfs-scrub", "/r", "--status", "--repair"],
        ] {
            assert!(ScrubArgs::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages_parse_with_units() {
        let secs = |t: &str| super::super::parse_age(t).map(|d| d.as_secs());
        assert_eq!(secs("3600"), Ok(3600));
        assert_eq!(secs("90m"), Ok(5400));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("30d"), Ok(2_592_000));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert!(secs("").is_err() && secs("5y").is_err() && secs("h").is_err());
        assert_eq!(age_text(90_061), "1d 1h");
    }
}

//! argosfs-disk (`argosfs disk`): lists a volume's disks and changes them: add, replace,
//! heal, drain, remove. A shell over `crate::maint::action`: it turns the command line
//! into a request, has it performed, and prints what it did. When a mount serves the
//! volume, the mount performs it (through the control socket; requests that move shards
//! run there in the background, and this waits for them unless --background); else this
//! process opens the volume under its lock and performs it.

use super::import::UsageError;
use super::perform::{Performer, mount_job, stop_job};
use super::{CommonArgs, Example, ExitStatus, exit, init_logging};
use crate::control::{Client, JobStatus};
use crate::maint::action::{self, Request};
use crate::maint::{Bounds, Report, Stop, Survey, disks};
use crate::placement::human_bytes;
use crate::types::DiskId;
use crate::volume::{DiskConfig, DiskState, Superblock};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const PROGRAM: &str = "argosfs-disk";

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-disk /srv/argosfs list",
        "every disk: state, since when and why, space, shards, degraded stripes",
    ),
    (
        "argosfs-disk /srv/argosfs replace d2 /srv/d2-new",
        "put a new (empty) directory in the place of the lost disk d2 and heal onto it",
    ),
    (
        "argosfs-disk /srv/argosfs heal --max-bytes 64G",
        "rebuild missing shards, at most 64 GiB in this run (run again to go on)",
    ),
    (
        "argosfs-disk /srv/argosfs remove /srv/d3",
        "move every shard off the disk at /srv/d3, then take it out of the volume",
    ),
    (
        "argosfs-disk /srv/argosfs add /srv/d6:domain=shelf2,weight=2",
        "add a disk (options as argosfs-mkfs --disk); new stripes use it at once",
    ),
];

/// Exit status of argosfs-disk.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (
        exit::OK,
        "done, and every stripe has all its shards (list: and no disk is missing)",
    ),
    (
        exit::FAIL,
        "it ran but work is left (a run stopped at --max-bytes, stripes no disk could take, failures, a stripe degraded or a disk missing), or it failed; the message says which",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// List and change the disks of an ArgosFS volume.
///
/// list shows every disk with its state, space, shards and the stripes its loss
/// degrades. add, replace, heal, drain and remove change the disks and move shards,
/// each move in an order that never lowers a stripe's redundancy; a run stopped by
/// --max-bytes or interrupted is continued by running it again. The volume must not be
/// mounted: changes through a mount are not available yet.
#[derive(Debug, Parser)]
#[command(name = "argosfs-disk", version)]
#[command(subcommand_required = true, arg_required_else_help = true)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct DiskArgs {
    /// Volume root directory (mounted or not).
    pub root: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE, else a prompt). Not needed when a mount serves the volume.
    #[arg(long, value_name = "FILE", global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// On a mounted volume, start the work in the mount and return at once instead of
    /// waiting for it (status shows how it goes).
    #[arg(long, global = true)]
    pub background: bool,
    /// Write at most this many MiB of shards per second (heal, replace, drain, remove,
    /// rebalance; decimals allowed). Offline the default is no limit; a mount moves
    /// shards at 16 MiB/s unless given one, so files stay fast to use meanwhile.
    #[arg(long, global = true, value_name = "MB/s", value_parser = super::parse_rate)]
    pub rate: Option<u64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Show every disk, its shards and the stripes its loss degrades.
    ///
    /// One line per disk: id, state (since when, why), path, domain, class, weight,
    /// capacity and free space, shards on it, and stripes degraded by its loss; then the
    /// unwritten shards of stripes written with disks missing. Reads only (opens the
    /// volume read-only and lists each disk's store index; no shard is read: fsck
    /// verifies them).
    List,
    /// Add a disk to the volume.
    ///
    /// Labels the directory (made if missing) and adds it to the volume. New stripes use
    /// it at once; existing shards stay where they are.
    Add {
        /// The disk directory, with optional settings as argosfs-mkfs --disk takes them:
        /// PATH[:weight=W,class=C,domain=D,numa=N].
        #[arg(value_name = "PATH[:OPTS]")]
        disk: String,
    },
    /// Put a new directory in the place of a disk, then heal.
    ///
    /// The new directory is labelled with the disk's id, the shards the old directory
    /// still reads (if any) are copied over, and heal rebuilds the rest, so one command
    /// gets back to full redundancy.
    Replace {
        /// The disk to replace: its id (d2 or 2) or its path.
        old: String,
        /// The new directory (made if missing; must not hold an ArgosFS label).
        new: PathBuf,
        /// Only replace; do not heal (run heal later).
        #[arg(long)]
        no_heal: bool,
    },
    /// Rebuild every missing shard.
    ///
    /// Missing: never written (stripes written while disks were missing), on a disk that
    /// is lost, failed or removed, or absent from its disk. A shard goes back to its own
    /// disk when that is writable, else to a disk chosen by placement.
    Heal {
        /// Stop after writing about this many shard bytes (e.g. 64M, 1G); run again to
        /// go on.
        #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
        max_bytes: Option<u64>,
    },
    /// Even out the disks: move shards from disks over their share of the stored bytes
    /// (by weight) to disks under it, as after adding disks.
    ///
    /// Each move follows the same order as heal (write, sync, verify, commit, delete the
    /// old copy) and the failure-domain rules. Refused while any stripe is degraded: heal
    /// first.
    Rebalance {
        /// Stop after writing about this many shard bytes; run again to go on.
        #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
        max_bytes: Option<u64>,
    },
    /// Move every shard off a disk onto the others.
    ///
    /// The disk takes no new shards from the start (state draining) and is marked
    /// removed once empty; it stays listed until remove forgets it.
    Drain {
        /// The disk: its id (d3 or 3) or its path.
        disk: String,
        /// Stop after writing about this many shard bytes; run again to go on.
        #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
        max_bytes: Option<u64>,
    },
    /// Drain a disk and take it out of the volume.
    ///
    /// As drain; once nothing is left on the disk, it is forgotten (no longer listed).
    Remove {
        /// The disk: its id (d3 or 3) or its path.
        disk: String,
        /// Stop after writing about this many shard bytes; run again to go on.
        #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
        max_bytes: Option<u64>,
    },
    /// Mark a disk failed: it is no longer read or written, and heal rebuilds its
    /// shards on the others.
    ///
    /// For a disk that returns bad data or errors but is still there. Refused when it
    /// would leave a stripe with fewer than k readable shards, or fewer writable failure
    /// domains than min_shards.
    Fail {
        /// The disk: its id (d3 or 3) or its path.
        disk: String,
        /// Why (kept with the state, shown by list).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Put a failed or draining disk back in use (a failed one is opened again).
    Activate {
        /// The disk: its id (d3 or 3) or its path.
        disk: String,
        /// Why (kept with the state, shown by list).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Show where the stripes of a file are and how placement chooses their disks.
    ///
    /// For each stripe: the disk of each shard, then placement asked again now, with
    /// every candidate disk's score and why it is taken or skipped (not writable, no
    /// headroom, its failure domain full; a lowered weight for a slow disk or one short
    /// of space is shown with why).
    Explain {
        /// The file, as a path inside the volume (e.g. /home/a/notes.txt).
        path: String,
    },
    /// Show the mount's background job (the one running, or the last one).
    Status,
    /// Stop the mount's background job after the stripe in progress.
    ///
    /// Nothing is lost: every move already made is whole; running the same command
    /// again continues the work.
    Stop,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Add { .. } => "add",
            Action::Replace { .. } => "replace",
            Action::Heal { .. } => "heal",
            Action::Rebalance { .. } => "rebalance",
            Action::Drain { .. } => "drain",
            Action::Remove { .. } => "remove",
            Action::Explain { .. } => "explain",
            Action::Fail { .. } => "fail",
            Action::Activate { .. } => "activate",
            Action::Status => "status",
            Action::Stop => "stop",
        }
    }
}

use super::Done as Outcome;

/// Entry point of argosfs-disk.
pub fn main() -> ExitCode {
    run(DiskArgs::parse())
}

/// Runs argosfs-disk with parsed arguments.
pub fn run(args: DiskArgs) -> ExitCode {
    // list shows unavailable disks itself; the others warn about what they meet.
    let level = match args.action {
        Action::List => "error",
        _ => "warn",
    };
    init_logging(&args.common, level);
    let root = super::display_path(&args.root);
    let header = json!({
        "schema": 1,
        "command": args.action.name(),
        "root": super::json_path(&root),
    });
    super::finish(
        PROGRAM,
        &args.common,
        header,
        execute(&args).map_err(super::perform::explain_in_use),
    )
}

fn execute(args: &DiskArgs) -> anyhow::Result<Outcome> {
    let root = args.root.as_path();
    let sb = load_superblock(root)?;
    let mount = Client::find(root, sb.volume);
    let request = match &args.action {
        Action::Status => return status(root, mount.as_ref()),
        Action::Stop => return stop(root, mount.as_ref()),
        action => request_of(root, &sb, action, args.rate)?,
    };
    let outcome = Performer::perform_once(
        root,
        mount,
        args.passphrase_file.as_deref(),
        &request,
        args.background,
    )?;
    match outcome {
        Some(outcome) => present(root, &sb, &request, outcome),
        None => Ok(started(root, &request)),
    }
}

/// The request an action asks for: disks named by id or path found in the superblock,
/// paths made absolute (the mount that may perform it runs elsewhere).
fn request_of(
    root: &Path,
    sb: &Superblock,
    action: &Action,
    rate: Option<u64>,
) -> anyhow::Result<Request> {
    let bounds = |max_bytes: &Option<u64>| Bounds {
        max_bytes: *max_bytes,
        rate,
    };
    let find = |text: &str| disks::find_disk(root, sb, text).map_err(|e| disk_error(root, e));
    let absolute =
        |path: &Path| std::path::absolute(path).with_context(|| path.display().to_string());
    Ok(match action {
        Action::List => Request::List,
        Action::Add { disk } => {
            // The options parse here, so a bad one is a usage error like mkfs's.
            DiskConfig::parse(DiskId(0), disk).map_err(|e| anyhow::Error::new(UsageError(e)))?;
            let (path, opts) = DiskConfig::split(disk);
            let path = absolute(Path::new(path))?;
            let path = path
                .to_str()
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            Request::Add {
                disk: match opts {
                    Some(opts) => format!("{path}:{opts}"),
                    None => path.to_string(),
                },
            }
        }
        Action::Replace { old, new, no_heal } => Request::Replace {
            disk: find(old)?,
            new: absolute(new)?,
            heal: (!no_heal).then(|| bounds(&None)),
        },
        Action::Heal { max_bytes } => Request::Heal {
            bounds: bounds(max_bytes),
        },
        Action::Rebalance { max_bytes } => Request::Rebalance {
            bounds: bounds(max_bytes),
        },
        Action::Drain { disk, max_bytes } | Action::Remove { disk, max_bytes } => Request::Drain {
            disk: find(disk)?,
            bounds: bounds(max_bytes),
            forget: matches!(action, Action::Remove { .. }),
        },
        Action::Explain { path } => Request::Explain { path: path.clone() },
        Action::Fail { disk, reason } => Request::SetState {
            disk: find(disk)?,
            state: DiskState::Failed,
            reason: reason.clone(),
        },
        Action::Activate { disk, reason } => Request::SetState {
            disk: find(disk)?,
            state: DiskState::Active,
            reason: reason.clone(),
        },
        Action::Status | Action::Stop => unreachable!("answered without a request"),
    })
}

/// What is printed for a job left running in the mount (`--background`).
fn started(root: &Path, request: &Request) -> Outcome {
    Outcome {
        json: json!({ "is_started": true }),
        lines: vec![format!(
            "{} started in the mount; `argosfs-disk {} status` shows how it goes",
            request.name(),
            root.display()
        )],
        failures: Vec::new(),
        is_ok: true,
    }
}

/// `status`: the mount's background job now, or the last one.
fn status(root: &Path, mount: Option<&Client>) -> anyhow::Result<Outcome> {
    let Some(mount) = mount else {
        return Ok(Outcome {
            json: json!({ "is_mounted": false, "job": Value::Null }),
            lines: vec![format!(
                "{} is not served by a mount: nothing runs in the background (offline actions run in the foreground)",
                root.display()
            )],
            failures: Vec::new(),
            is_ok: true,
        });
    };
    let job = mount_job(mount)?;
    let lines = vec![match &job {
        None => "no job has run in this mount".to_string(),
        Some(job) => job_line(job),
    }];
    let failed = job
        .as_ref()
        .is_some_and(|j| matches!(j.result, Some(Err(_))));
    Ok(Outcome {
        json: json!({ "is_mounted": true, "job": job }),
        lines,
        failures: Vec::new(),
        is_ok: !failed,
    })
}

/// One line on a background job.
fn job_line(job: &JobStatus) -> String {
    let p = &job.progress;
    let done = if p.total > 0 {
        format!("{} of {} stripes", p.done, p.total)
    } else {
        format!("{} stripes", p.done)
    };
    let state = match (&job.result, job.stop_requested) {
        (None, None) => "running".to_string(),
        (None, Some(why)) => format!("stopping ({why:?} asked)").to_lowercase(),
        (Some(Ok(_)), _) => "ended".to_string(),
        (Some(Err(why)), _) => format!("failed: {why}"),
    };
    format!(
        "job {} {}: {state}, started {}; {} {done}, {} written",
        job.id,
        job.request.name(),
        utc_text(job.started_unix),
        p.phase,
        human_bytes(p.bytes)
    )
}

/// `stop`: asks the mount's background job to stop after the stripe in progress.
fn stop(root: &Path, mount: Option<&Client>) -> anyhow::Result<Outcome> {
    let Some(mount) = mount else {
        anyhow::bail!(
            "{} is not served by a mount: there is no background job to stop",
            root.display()
        );
    };
    let job = stop_job(mount, Stop::Cancel)?;
    Ok(Outcome {
        lines: vec![format!(
            "asked job {} ({}) to stop after the stripe in progress; running it again continues it",
            job.id,
            job.request.name()
        )],
        json: json!({ "job": job }),
        failures: Vec::new(),
        is_ok: true,
    })
}

/// A library error from a maintenance call, in the words of this program (a refused
/// request is said as it is, without "invalid volume configuration").
pub(crate) fn disk_error(root: &Path, e: crate::Error) -> anyhow::Error {
    match e {
        crate::Error::Config(why) => anyhow::anyhow!(why),
        crate::Error::Locked { .. } => super::in_use(root),
        crate::Error::AlreadyFormatted { path } => anyhow::anyhow!(
            "{} already holds an ArgosFS label (of another volume or disk, or left from one): give an empty directory, or clear that one if it is no longer used",
            path.display()
        ),
        other => anyhow::Error::new(other),
    }
}

fn load_superblock(root: &Path) -> anyhow::Result<Superblock> {
    Superblock::load(root).with_context(|| format!("reading the volume at {}", root.display()))
}

/// What a request did, as printed.
fn present(
    root: &Path,
    sb: &Superblock,
    request: &Request,
    outcome: action::Outcome,
) -> anyhow::Result<Outcome> {
    Ok(match outcome {
        action::Outcome::Survey(survey) => list(root, sb, &survey),
        action::Outcome::Added(config) => added(root, &config),
        action::Outcome::StateSet {
            disk,
            state,
            survey,
        } => {
            let mut outcome = list(root, sb, &survey);
            outcome
                .lines
                .insert(0, format!("{disk} is now {}", state_name(state)));
            outcome.json["disk"] = json!(disk.0);
            outcome.json["name"] = json!(disk.to_string());
            outcome.json["state"] = json!(state);
            outcome
        }
        action::Outcome::Replaced {
            replaced,
            heal,
            survey,
        } => replaced_outcome(root, &replaced, heal.as_ref(), survey.as_ref())?,
        action::Outcome::Ran(report) => {
            let verb = match request {
                Request::Rebalance { .. } => "moved",
                _ => "rebuilt",
            };
            run_outcome(root, request.name(), verb, &report)
        }
        action::Outcome::Drained {
            disk,
            report,
            state,
            is_forgotten,
        } => drained(root, request, disk, &report, state, is_forgotten)?,
        action::Outcome::Explained(stripes) => explained(request, &stripes)?,
        action::Outcome::Scrub(_) => {
            anyhow::bail!("the mount answered a disk request with a scrub outcome")
        }
    })
}

fn list(root: &Path, sb: &Superblock, survey: &Survey) -> Outcome {
    let is_whole = survey.is_whole() && !survey.disks.iter().any(|d| d.is_missing());
    let abs_root = super::display_path(root);
    let disks: Vec<Value> = survey
        .disks
        .iter()
        .map(|d| {
            let c = &d.info.config;
            json!({
                "id": c.id.0,
                "name": c.id.to_string(),
                "path": super::json_path(&c.resolve(&abs_root)),
                "state": c.state,
                "state_since_unix": c.state_since_unix,
                "state_reason": c.state_reason,
                "is_available": d.info.unavailable.is_none(),
                "unavailable": d.info.unavailable,
                "is_missing": d.is_missing(),
                "has_failed_write": d.info.has_failed_write,
                "domain": c.domain,
                "class": c.class,
                "weight": c.weight,
                "numa": c.numa,
                "total_bytes": d.info.total_bytes,
                "free_bytes": d.info.free_bytes,
                "shards": d.shards,
                "shard_bytes": d.shard_bytes,
                "degraded_stripes": d.degraded_stripes,
            })
        })
        .collect();
    let json = json!({
        "volume": sb.volume.to_string(),
        "layout": format!("{}+{}", sb.layout.k, sb.layout.m),
        "stripes": survey.stripes,
        "degraded_stripes": survey.degraded_stripes,
        "unwritten_stripes": survey.unwritten_stripes,
        "unwritten_shards": survey.unwritten_shards,
        "is_whole": is_whole,
        "disks": disks,
    });
    Outcome {
        json,
        lines: list_lines(&abs_root, sb, survey),
        failures: Vec::new(),
        is_ok: is_whole,
    }
}

fn list_lines(root: &Path, sb: &Superblock, survey: &Survey) -> Vec<String> {
    let mut lines = vec![format!(
        "volume {} at {}: {}+{}, {} disks, {} stripes",
        sb.volume,
        root.display(),
        sb.layout.k,
        sb.layout.m,
        survey.disks.len(),
        survey.stripes
    )];
    for d in &survey.disks {
        let c = &d.info.config;
        let mut state = state_name(c.state).to_string();
        if c.state_since_unix > 0 {
            state.push_str(&format!(" since {}", utc_text(c.state_since_unix)));
        }
        if !c.state_reason.is_empty() {
            state.push_str(&format!(" ({})", c.state_reason));
        }
        if d.is_missing() {
            let why = d.info.unavailable.as_deref().unwrap_or("not open");
            state.push_str(&format!(", UNAVAILABLE: {why}"));
        }
        if d.info.has_failed_write {
            state.push_str(", a write failed");
        }
        let space = if d.info.unavailable.is_none() {
            format!(
                "{} of {} free",
                human_bytes(d.info.free_bytes),
                human_bytes(d.info.total_bytes)
            )
        } else {
            "space unknown".to_string()
        };
        lines.push(format!(
            "{}  {state}  {}  domain {}  class {}  weight {}  {space}  {} shards ({})  {} degraded stripes",
            c.id,
            c.resolve(root).display(),
            c.domain,
            c.class,
            c.weight,
            d.shards,
            human_bytes(d.shard_bytes),
            d.degraded_stripes
        ));
    }
    if survey.unwritten_shards > 0 {
        lines.push(format!(
            "unwritten shards: {} in {} stripes written while disks were missing",
            survey.unwritten_shards, survey.unwritten_stripes
        ));
    }
    let root = root.display();
    let missing: Vec<String> = survey
        .disks
        .iter()
        .filter(|d| d.is_missing())
        .map(|d| d.info.config.id.to_string())
        .collect();
    if survey.is_whole() && missing.is_empty() {
        lines.push(format!("all {} stripes whole", survey.stripes));
    } else if survey.is_whole() {
        lines.push(format!(
            "all {} stripes whole, but disk(s) {} missing: put them back, or `argosfs-disk {root} replace DISK NEWDIR`, or remove them",
            survey.stripes,
            missing.join(", ")
        ));
    } else if missing.is_empty() {
        lines.push(format!(
            "{} of {} stripes degraded: run `argosfs-disk {root} heal`",
            survey.degraded_stripes, survey.stripes
        ));
    } else {
        lines.push(format!(
            "{} of {} stripes degraded, disk(s) {} missing: put them back or `argosfs-disk {root} replace DISK NEWDIR` (which heals)",
            survey.degraded_stripes,
            survey.stripes,
            missing.join(", ")
        ));
    }
    lines
}

fn state_name(state: DiskState) -> &'static str {
    match state {
        DiskState::Active => "active",
        DiskState::Draining => "draining",
        DiskState::Failed => "failed",
        DiskState::Removed => "removed",
    }
}

fn explained(
    request: &Request,
    stripes: &[crate::volume::StripePlacement],
) -> anyhow::Result<Outcome> {
    let Request::Explain { path } = request else {
        anyhow::bail!("an explanation answered another request");
    };
    let mut lines = vec![format!("{path}: {} stripes", stripes.len())];
    for s in stripes {
        let on: Vec<String> = s
            .disks
            .iter()
            .map(|d| d.map_or_else(|| "-".to_string(), |d| d.to_string()))
            .collect();
        lines.push(format!(
            "chunk {} stripe {}: shards on {}",
            s.chunk,
            s.stripe,
            on.join(" ")
        ));
        let chosen: Vec<String> = s.now.chosen.iter().map(|d| d.to_string()).collect();
        lines.push(format!(
            "  placed now: {}{}",
            if chosen.is_empty() {
                "nowhere".to_string()
            } else {
                chosen.join(" ")
            },
            s.now
                .error
                .as_ref()
                .map_or_else(String::new, |e| format!(" ({e})"))
        ));
        for c in &s.now.candidates {
            lines.push(format!("    {} score {:.4}: {}", c.disk, c.score, c.reason));
        }
    }
    Ok(Outcome {
        json: json!({ "path": path, "stripes": stripes }),
        lines,
        failures: Vec::new(),
        is_ok: true,
    })
}

fn added(root: &Path, config: &DiskConfig) -> Outcome {
    let abs_root = super::display_path(root);
    let path = config.resolve(&abs_root);
    Outcome {
        json: json!({
            "disk": config.id.0,
            "name": config.id.to_string(),
            "path": super::json_path(&path),
            "domain": config.domain,
            "class": config.class,
            "weight": config.weight,
            "numa": config.numa,
        }),
        lines: vec![format!(
            "added {} at {} (domain {}, class {}, weight {}); new stripes use it, existing shards stay where they are",
            config.id,
            path.display(),
            config.domain,
            config.class,
            config.weight
        )],
        failures: Vec::new(),
        is_ok: true,
    }
}

fn replaced_outcome(
    root: &Path,
    replaced: &disks::Replaced,
    heal: Option<&Report>,
    survey: Option<&Survey>,
) -> anyhow::Result<Outcome> {
    let disk = replaced.disk;
    let mut lines = vec![match &replaced.old_unreadable {
        None => format!(
            "replaced {disk}: {} -> {}; copied {} shards from the old directory",
            replaced.old_path.display(),
            replaced.new_path.display(),
            replaced.shards_copied
        ),
        Some(why) => format!(
            "replaced {disk}: {} -> {}; nothing copied ({why})",
            replaced.old_path.display(),
            replaced.new_path.display()
        ),
    }];
    let (heal_json, is_whole, failures) = match (heal, survey) {
        (Some(report), _) => {
            lines.push(format!("heal: {}", report_text(report, "rebuilt")));
            let json = serde_json::to_value(report).context("the heal report")?;
            (json, report.is_complete(), report.failures.clone())
        }
        (None, survey) => {
            let is_whole = survey.is_some_and(Survey::is_whole);
            lines.push(match survey {
                Some(s) if !s.is_whole() => format!(
                    "heal skipped (--no-heal): {} of {} stripes degraded; run `argosfs-disk {} heal`",
                    s.degraded_stripes,
                    s.stripes,
                    root.display()
                ),
                _ => "heal skipped (--no-heal): every stripe is whole".to_string(),
            });
            (Value::Null, is_whole, Vec::new())
        }
    };
    let json = json!({
        "disk": disk.0,
        "name": disk.to_string(),
        "old_path": super::json_path(&replaced.old_path),
        "new_path": super::json_path(&replaced.new_path),
        "shards_copied": replaced.shards_copied,
        "old_unreadable": replaced.old_unreadable,
        "heal": heal_json,
        "is_whole": is_whole,
    });
    Ok(Outcome {
        json,
        lines,
        failures,
        is_ok: is_whole,
    })
}

fn drained(
    root: &Path,
    request: &Request,
    disk: DiskId,
    report: &Report,
    state: Option<DiskState>,
    is_forgotten: bool,
) -> anyhow::Result<Outcome> {
    let forget = matches!(request, Request::Drain { forget: true, .. });
    let is_removed = is_forgotten || (report.is_complete() && state == Some(DiskState::Removed));
    let mut lines = vec![format!("drain {disk}: {}", report_text(report, "moved"))];
    if is_forgotten {
        lines.push(format!(
            "{disk} holds no shard and is no longer part of the volume"
        ));
    } else if is_removed {
        lines.push(format!(
            "{disk} holds no shard and is marked removed (`argosfs-disk {} remove {disk}` forgets it)",
            root.display()
        ));
    }
    let mut json = serde_json::to_value(report).context("the drain report")?;
    json["disk"] = json!(disk.0);
    json["name"] = json!(disk.to_string());
    json["state"] = json!(if is_forgotten {
        Some(DiskState::Removed)
    } else {
        state
    });
    json["is_complete"] = json!(report.is_complete());
    if forget {
        json["is_forgotten"] = json!(is_forgotten);
    }
    let is_whole = if forget { is_forgotten } else { is_removed };
    Ok(Outcome {
        json,
        lines,
        failures: report.failures.clone(),
        is_ok: is_whole,
    })
}

/// The outcome of a heal or rebalance run (`name`), whose moves are `verb` (rebuilt,
/// moved).
fn run_outcome(root: &Path, name: &str, verb: &str, report: &Report) -> Outcome {
    let mut json = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    json["is_complete"] = json!(report.is_complete());
    let mut lines = vec![format!("{name}: {}", report_text(report, verb))];
    if report.is_bounded {
        lines.push(format!(
            "stopped at --max-bytes: run `argosfs-disk {} {name}` again to go on",
            root.display()
        ));
    }
    Outcome {
        json,
        lines,
        failures: report.failures.clone(),
        is_ok: report.is_complete(),
    }
}

/// One line for a heal or drain report.
fn report_text(report: &Report, verb: &str) -> String {
    let mut text = format!(
        "{} stripes checked, {verb} {} shards ({}) in {} stripes",
        report.stripes_checked,
        report.shards_written,
        human_bytes(report.bytes_written),
        report.stripes_done
    );
    if report.is_complete() {
        text.push_str("; nothing left");
    } else {
        text.push_str(&format!("; {} stripes left", report.stripes_left));
        if report.is_bounded {
            text.push_str(" (stopped at --max-bytes)");
        }
        if !report.failures.is_empty() {
            text.push_str(&format!(", {} failed (below)", report.failures.len()));
        }
    }
    text
}

/// Unix seconds as `2026-11-27 10:04 UTC` (the proleptic Gregorian calendar).
fn utc_text(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let seconds = unix % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_gives_the_calendar_date() {
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_text(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_text(4_102_444_799), "2099-12-31 23:59 UTC");
    }

    #[test]
    fn subcommands_take_root_first_and_sizes() {
        let args = DiskArgs::try_parse_from([
            "argosfs-disk",
            "/r",
            "heal",
            "--max-bytes",
            "64M",
            "--json",
        ])
        .unwrap();
        assert!(args.common.json);
        assert!(matches!(args.action, Action::Heal { max_bytes: Some(n) } if n == 64 << 20));
        let args = DiskArgs::try_parse_from(["argosfs-disk", "/r", "replace", "d2", "/n"]).unwrap();
        assert!(matches!(
            args.action,
            Action::Replace { no_heal: false, .. }
        ));
        for bad in [
            &["argosfs-disk", "/r"][..],
            &["argosfs-disk", "/r", "heal", "--max-bytes", "lots"],
            &["argosfs-disk", "/r", "drain"],
        ] {
            assert!(DiskArgs::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}

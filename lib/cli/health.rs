//! argosfs-health (`argosfs health`): the health of a volume and of each of its disks,
//! with a verdict and its reasons, as text, JSON or Prometheus metrics; the exit status
//! says the volume's verdict, for cron and monitoring. A shell over `crate::health`.

use super::{CommonArgs, Example, ExitStatus, exit, init_logging, report_error};
use crate::health::{self, DiskHealth, ObserveOptions, Report, SmartOverride, Source, Verdict};
use crate::placement::human_bytes;
use anyhow::Context;
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

const PROGRAM: &str = "argosfs-health";

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-health /srv/argosfs",
        "the volume's verdict, then each disk's, with the reasons",
    ),
    (
        "argosfs-health /srv/argosfs --json",
        "the full report as one JSON object (every observation and finding)",
    ),
    (
        "argosfs-health /srv/argosfs --prometheus > /var/lib/node_exporter/argosfs.prom",
        "metrics for node_exporter's textfile collector (run from a timer)",
    ),
    (
        "argosfs-health /srv/argosfs --smart-override smart.json",
        "with SMART values from a file, per disk (see the format above)",
    ),
];

/// Exit status of argosfs-health.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (exit::HEALTHY, "healthy: nothing found"),
    (
        exit::DEGRADED,
        "warning or degraded: something to watch (SMART counts, errors, a slow or full disk) or redundancy reduced (a disk lost, stripes missing shards); the data is readable",
    ),
    (
        exit::CRITICAL,
        "critical: more disks lost than the layout survives, or the volume does not open",
    ),
    (
        exit::CANNOT_CHECK,
        "could not check: no volume there, a wrong passphrase, an unreadable override file, or a wrong command line",
    ),
];

/// Report the health of an ArgosFS volume and of each of its disks.
///
/// Per disk: state, whether it can be read, space and headroom, shards and the stripes
/// its loss degrades, the data plane's records (shard reads and writes with bytes,
/// latency as a moving average and p50/p99 of the latest minute or two, I/O errors,
/// shards that failed verification or were missing, last scrub), and SMART from
/// `smartctl --json -a` on the block device behind the disk directory (none on tmpfs
/// and other virtual filesystems; it says so, as it says when smartctl is not
/// installed; ARGOSFS_SMARTCTL names another program to run in its place, with the
/// same arguments; it has 30 s per device). Each disk and the volume get a verdict,
/// healthy, warning, degraded or critical, with the reasons. Thresholds: SMART overall
/// failed or an NVMe critical warning is critical; reallocated sectors warn from 1 and are critical from 100;
/// pending and offline-uncorrectable sectors and media errors warn from 1 and are
/// critical from 8; CRC errors warn from 1; wear warns from 90 % and is critical from
/// 100 %; temperature warns from 60 °C and is critical from 70 °C; free space below
/// 10 % warns; a disk whose average latency is over 4 times its peers' median (and
/// over 5 ms, with at least 100 operations timed) warns; recorded I/O errors and
/// checksum failures warn. A disk that cannot be read or is marked failed is critical;
/// the volume is degraded when it lost disks or stripes miss shards, and critical when
/// it lost more disks than its parity m.
///
/// The volume may be mounted: the survey of stripes is then asked of the mount through
/// its control socket, and the I/O records are the ones the mount saved under ROOT
/// (every 10 s at most). When another process holds the volume without answering a
/// control socket, the stripes are not surveyed and the report says so.
///
/// --smart-override FILE takes a JSON object keyed by disk id ("d0") or disk path,
/// each value an object with any of passed (bool), reallocated_sectors,
/// pending_sectors, offline_uncorrectable, media_errors, crc_errors, percentage_used,
/// temperature_celsius, critical_warning, power_on_hours, and optionally "replace":
/// true. The values given replace smartctl's for that disk; with "replace" smartctl is
/// not run for it. Example: {"d2": {"pending_sectors": 12}, "/srv/d3": {"passed":
/// false, "replace": true}}.
#[derive(Debug, Parser)]
#[command(name = "argosfs-health", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct HealthArgs {
    /// Volume root directory (mounted or not).
    pub root: PathBuf,
    /// Print Prometheus metrics (text exposition format) instead of the report.
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    /// SMART values per disk that supply or replace smartctl's (JSON; format above).
    #[arg(long, value_name = "FILE")]
    pub smart_override: Option<PathBuf>,
    /// Do not run smartctl: SMART comes from --smart-override only.
    #[arg(long)]
    pub no_smartctl: bool,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE; never asked for). Only needed to survey the stripes of a
    /// volume that is not mounted.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-health.
pub fn main() -> ExitCode {
    match super::parse_args_or_exit::<HealthArgs>(exit::CANNOT_CHECK) {
        Ok(args) => run(args),
        Err(code) => code,
    }
}

/// The exit status for a command line clap refused (0 for --help and --version).
pub fn parse_error_code(error: &clap::Error) -> u8 {
    super::clap_error_code(error, exit::CANNOT_CHECK)
}

/// The exit status for a volume's verdict.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Healthy => exit::HEALTHY,
        Verdict::Warning | Verdict::Degraded => exit::DEGRADED,
        Verdict::Critical => exit::CRITICAL,
    }
}

/// Runs argosfs-health with parsed arguments.
pub fn run(args: HealthArgs) -> ExitCode {
    // The report says what is wrong with the disks; opening logs only errors.
    init_logging(&args.common, "error");
    let root = super::display_path(&args.root);
    match check(&args) {
        Ok(report) => {
            if args.prometheus {
                match health::metrics::text(&report) {
                    Ok(text) => print!("{text}"),
                    Err(e) => {
                        report_error(PROGRAM, &anyhow::anyhow!("building the metrics: {e}"));
                        return ExitCode::from(exit::CANNOT_CHECK);
                    }
                }
            } else if args.common.json {
                let mut value = serde_json::to_value(&report).expect("reports serialize");
                if let Some(object) = value.as_object_mut() {
                    object.insert("root".into(), json!(super::json_path(&root)));
                }
                super::print_json(&value);
            } else if !args.common.quiet {
                for line in text_lines(&root, &report) {
                    println!("{line}");
                }
            }
            ExitCode::from(exit_code(report.verdict))
        }
        Err(e) => {
            report_error(PROGRAM, &e);
            if args.common.json {
                super::print_json(&json!({
                    "schema": health::REPORT_SCHEMA,
                    "root": super::json_path(&root),
                    "error": super::error_text(&e),
                }));
            }
            ExitCode::from(exit::CANNOT_CHECK)
        }
    }
}

/// The SMART override file at `path`, read and checked.
pub(crate) fn load_smart_override(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<SmartOverride>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the SMART override file {}", path.display()))?;
    SmartOverride::parse(&text)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("SMART override file {}: {why}", path.display()))
}

fn check(args: &HealthArgs) -> anyhow::Result<Report> {
    let smart_override = load_smart_override(args.smart_override.as_deref())?;
    let options = ObserveOptions {
        passphrase: super::passphrase_if_given(args.passphrase_file.as_deref())?,
        smart_override,
        run_smartctl: !args.no_smartctl,
    };
    let observation = health::observe(&args.root, &options)
        .with_context(|| format!("checking the volume at {}", args.root.display()))?;
    Ok(health::assess(&observation))
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Opened => "read by this program",
        Source::Mount => "from the mount",
        Source::Files => "from the files under ROOT",
        Source::None => "not available",
    }
}

/// The report as text: the volume and its reasons, then each disk and its reasons.
fn text_lines(root: &std::path::Path, report: &Report) -> Vec<String> {
    let mut lines = vec![format!(
        "volume {} at {}: {}  ({}+{}, min_shards {})",
        report.volume,
        root.display(),
        report.verdict.name().to_uppercase(),
        report.k,
        report.m,
        report.min_shards
    )];
    for f in &report.reasons {
        lines.push(format!("  {}: {}", f.severity.name(), f.message));
    }
    match &report.stripes {
        Some(s) => lines.push(format!(
            "stripes ({}): {} of {} degraded",
            source_name(report.survey_source),
            s.degraded_stripes,
            s.stripes
        )),
        None => lines.push("stripes: not surveyed (see notes)".into()),
    }
    for d in &report.disks {
        lines.extend(disk_lines(d));
    }
    for note in &report.notes {
        lines.push(format!("note: {note}"));
    }
    lines
}

fn disk_lines(d: &DiskHealth) -> Vec<String> {
    let state = format!("{:?}", d.state).to_lowercase();
    let space = if d.unavailable.is_none() && d.total_bytes > 0 {
        format!(
            "{} of {} free",
            human_bytes(d.free_bytes),
            human_bytes(d.total_bytes)
        )
    } else {
        "space unknown".into()
    };
    let mut lines = vec![format!(
        "{}  {}  {state}  {}  {space}",
        d.name,
        d.verdict.name(),
        d.path
    )];
    if let Some(why) = &d.unavailable {
        lines.push(format!("    unavailable: {why}"));
    }
    if let Some(r) = &d.record {
        let io = &r.io;
        let ms = |us: Option<u64>| {
            us.map_or("-".to_string(), |us| {
                format!("{:.2} ms", us as f64 / 1000.0)
            })
        };
        lines.push(format!(
            "    reads {} ({}), writes {} ({}), read p50/p99 {}/{}, write p50/p99 {}/{}, errors r/w/sync {}/{}/{}, bad shards {}, missing {}, last scrub {}",
            io.reads,
            human_bytes(io.read_bytes),
            io.writes,
            human_bytes(io.write_bytes),
            ms(r.read_latency.p50_us),
            ms(r.read_latency.p99_us),
            ms(r.write_latency.p50_us),
            ms(r.write_latency.p99_us),
            io.read_errors,
            io.write_errors,
            io.sync_errors,
            io.checksum_failures,
            io.missing_shards,
            r.last_scrub_unix.map_or("never".into(), |u| format!("at {u}"))
        ));
    }
    let smart = match (&d.smart.data, &d.smart.unavailable) {
        (Some(s), _) => {
            let passed = match s.passed {
                Some(true) => "passed",
                Some(false) => "FAILED",
                None => "no overall assessment",
            };
            format!("SMART ({:?}): {passed}", d.smart.source).to_lowercase()
        }
        (None, Some(why)) => format!("SMART: {why}"),
        (None, None) => "SMART: none".into(),
    };
    lines.push(format!("    {smart}"));
    for f in &d.reasons {
        lines.push(format!("    {}: {}", f.severity.name(), f.message));
    }
    lines
}

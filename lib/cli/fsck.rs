//! argosfs-fsck: checks (and repairs) a volume that is not mounted.

use super::{CommonArgs, Example, ExitStatus, init_logging, report_error};
use crate::fsck::{self, Finding, Options, Progress, Report, Severity};
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status of argosfs-fsck, as fsck(8).
pub mod exit {
    /// No errors.
    pub const CLEAN: u8 = 0;
    /// Errors were found and all of them corrected.
    pub const CORRECTED: u8 = 1;
    /// Errors are left uncorrected.
    pub const UNCORRECTED: u8 = 4;
    /// Operational error: unreadable superblock, lock held, a repair write failed.
    pub const OPERATIONAL: u8 = 8;
    /// Usage or syntax error.
    pub const USAGE: u8 = 16;
}

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-fsck /srv/argosfs -n",
        "check everything and change nothing",
    ),
    (
        "argosfs-fsck /srv/argosfs --repair --remove-orphans",
        "repair what can be repaired and delete shards nothing references",
    ),
    (
        "argosfs-fsck /srv/argosfs --json | jq 'select(.type == \"summary\") | .data'",
        "the summary of a check as JSON",
    ),
];

/// Exit status of argosfs-fsck, as fsck(8).
pub const EXIT_STATUS: &[ExitStatus] = &[
    (exit::CLEAN, "no errors"),
    (
        exit::CORRECTED,
        "errors were found and all of them corrected",
    ),
    (
        exit::UNCORRECTED,
        "errors are left uncorrected: run again with --repair; lost data cannot be corrected",
    ),
    (
        exit::OPERATIONAL,
        "operational error: no readable superblock, the volume is mounted, a repair write failed",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// Check and repair an ArgosFS volume offline.
///
/// Checks the superblock, both metadata snapshots, the journal, the directory tree, link
/// counts, every shard of every stripe, disk accounting, orphan shards, and that no file
/// or directory of the backing store is open to group or other. Changes nothing
/// unless --repair or --remove-orphans is given. The volume must not be mounted. An
/// encrypted volume's metadata is sealed: without its passphrase (--passphrase-file or
/// ARGOSFS_PASSPHRASE) fsck checks the structure only (every metadata and shard object's
/// frame and checksums, every stripe's shards present and agreeing) and says so; checking
/// the tree and repairing need the passphrase.
#[derive(Debug, Parser)]
#[command(name = "argosfs-fsck", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct FsckArgs {
    /// Volume root directory.
    pub root: PathBuf,
    /// Check only and change nothing (the default without --repair or --remove-orphans).
    #[arg(short = 'n', long = "no-change", conflicts_with_all = ["repair", "remove_orphans"])]
    pub no_change: bool,
    /// Repair: rebuild missing or corrupt shards from the others, fix link counts and the
    /// directory tree, move unreachable inodes to /lost+found, rewrite damaged snapshots,
    /// cut a torn journal tail, free inodes left unlinked-but-open, clear group and other
    /// permission bits in the backing store.
    #[arg(long)]
    pub repair: bool,
    /// Delete shard objects that no metadata (live state, primary or secondary snapshot)
    /// references and that are older than --orphan-grace; objects of another volume or
    /// that do not verify are moved to DISK/argosfs-quarantine/, never deleted.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Unreferenced shard objects younger than this are kept.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub orphan_grace: u64,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE; with neither, only the structure is checked).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-fsck.
pub fn main() -> ExitCode {
    match super::parse_args_or_exit::<FsckArgs>(exit::USAGE) {
        Ok(args) => run(args),
        Err(code) => code,
    }
}

/// The exit status for a command line clap refused (0 for --help and --version).
pub fn parse_error_code(error: &clap::Error) -> u8 {
    super::clap_error_code(error, exit::USAGE)
}

/// A terminal progress bar on stderr.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:28} [{bar:40}] {pos}/{len} {elapsed_precise} (eta {eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(name.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// The exit status for a report.
pub fn exit_code(report: &Report) -> u8 {
    if report.errors_left() > 0 {
        exit::UNCORRECTED
    } else if report.errors_corrected() > 0 {
        exit::CORRECTED
    } else {
        exit::CLEAN
    }
}

/// Runs fsck with parsed arguments.
pub fn run(args: FsckArgs) -> ExitCode {
    init_logging(&args.common, "warn");
    let passphrase = match super::passphrase_if_given(args.passphrase_file.as_deref()) {
        Ok(passphrase) => passphrase,
        Err(e) => {
            report_error("argosfs-fsck", &e);
            return ExitCode::from(exit::OPERATIONAL);
        }
    };
    let options = Options {
        repair: args.repair,
        remove_orphans: args.remove_orphans,
        orphan_grace: Duration::from_secs(args.orphan_grace),
        passphrase,
    };
    let show_bar = std::io::stderr().is_terminal() && !args.common.json && !args.common.quiet;
    let bar = show_bar.then(Bar::new);
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &fsck::NoProgress,
    };
    let root = super::display_path(&args.root);
    match fsck::check(&args.root, &options, progress) {
        Ok(report) => {
            progress.finish();
            let code = exit_code(&report);
            if args.common.json {
                print_json(&report, code);
            } else {
                print_human(&report, code, args.common.quiet);
            }
            ExitCode::from(code)
        }
        Err(e) => {
            progress.finish();
            let error = match e {
                crate::Error::Locked { .. } => super::in_use(&root),
                crate::Error::PassphraseRequired => anyhow::anyhow!(
                    "{} is encrypted: repairing it needs its passphrase (--passphrase-file FILE or ARGOSFS_PASSPHRASE); without one, run a check (-n) of its structure",
                    root.display()
                ),
                other => anyhow::Error::new(other)
                    .context(format!("checking the volume at {}", root.display())),
            };
            report_error("argosfs-fsck", &error);
            if args.common.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "type": "summary",
                        "data": {
                            "schema": 1,
                            "root": super::json_path(&root),
                            "error": super::error_text(&error),
                            "errors_found": 0,
                            "errors_corrected": 0,
                            "errors_left": 0,
                            "exit_code": exit::OPERATIONAL,
                        }
                    })
                );
            }
            ExitCode::from(exit::OPERATIONAL)
        }
    }
}

fn print_json(report: &Report, code: u8) {
    for finding in &report.findings {
        println!(
            "{}",
            serde_json::json!({"type": "finding", "data": finding})
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "type": "summary",
            "data": {
                "schema": 1,
                "root": super::json_path(&report.root),
                "volume": report.volume.to_string(),
                "mode": if report.is_repair { "repair" } else { "check" },
                "errors_found": report.errors_found(),
                "errors_corrected": report.errors_corrected(),
                "errors_left": report.errors_left(),
                "warnings": report.warnings(),
                "exit_code": code,
                "checks": report.checks,
                "stats": report.stats,
                "disks": report.disks,
            }
        })
    );
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn status(f: &Finding, is_repair: bool) -> &'static str {
    match (f.severity, f.repaired, f.repairable, is_repair) {
        (Severity::Error, true, _, _) => "fixed",
        (Severity::Error, false, true, false) => "not fixed (use --repair)",
        (Severity::Error, false, _, _) => "not fixed",
        _ => "",
    }
}

fn print_human(report: &Report, code: u8, quiet: bool) {
    let root = super::display_path(&report.root);
    if !quiet {
        println!(
            "argosfs-fsck: volume {} at {} ({})",
            report.volume,
            root.display(),
            if report.is_repair {
                "repair"
            } else {
                "check only"
            }
        );
    }
    for f in &report.findings {
        if quiet && !f.is_error() {
            continue;
        }
        let status = status(f, report.is_repair);
        let status = if status.is_empty() {
            String::new()
        } else {
            format!(" [{status}]")
        };
        println!(
            "{:7} {}: {}: {}{status}",
            severity(f.severity),
            serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            f.object,
            f.detail
        );
        for path in &f.paths {
            println!("          affects {path}");
        }
    }
    if !quiet {
        for d in &report.disks {
            println!(
                "disk {} {}: {} shards referenced ({} bytes), {} present ({} bytes), {} missing, {} unreferenced{}",
                d.disk,
                d.path.display(),
                d.referenced_shards,
                d.referenced_bytes,
                d.present_shards,
                d.present_bytes,
                d.missing_shards,
                d.unreferenced_shards,
                if d.is_available { "" } else { " (unavailable)" }
            );
        }
        let s = &report.stats;
        println!(
            "checked txid {}, {} inodes, {} stripes ({} decrypted and authenticated), {} shards; rebuilt {}, removed {} orphans, quarantined {}",
            s.txid,
            s.inodes,
            s.stripes_checked,
            s.stripes_authenticated,
            s.shards_checked,
            s.shards_rebuilt,
            s.orphans_removed,
            s.objects_quarantined
        );
    }
    if let Some(why) = &report.checks.tree_skipped {
        println!(
            "structure only: {why}; give --passphrase-file FILE (or ARGOSFS_PASSPHRASE) to check them"
        );
    }
    println!(
        "{} errors found, {} corrected, {} left; {} warnings; exit {code}",
        report.errors_found(),
        report.errors_corrected(),
        report.errors_left(),
        report.warnings()
    );
}

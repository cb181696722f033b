//! argosfs-import: copies a directory tree into a volume, every attribute kept.
//!
//! Also holds what argosfs-export shares with it: opening a volume offline (lock and
//! passphrase), the progress display, and the error and summary output.

use super::{CommonArgs, Example, ExitStatus, exit, init_logging, read_passphrase, report_error};
use crate::transfer::{self, Counts, ImportOptions, ItemError, Observer, Outcome, Report};
use crate::volume::{OpenOptions, Superblock, Volume};
use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-import /srv/argosfs /srv/rootfs --into /images/debian",
        "copy a root filesystem tree into /images/debian of the volume",
    ),
    (
        "argosfs-import /srv/argosfs /home -x --json",
        "copy /home without crossing into other filesystems, as JSON Lines",
    ),
];

/// Exit status of argosfs-import and argosfs-export.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (exit::OK, "everything was copied"),
    (
        exit::FAIL,
        "something was not: each error is reported and the run goes on unless --strict",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// Copy a directory tree into an ArgosFS volume.
///
/// Copies a tree (a root filesystem, say) with everything intact: file types, hard
/// links, devices, all mode bits, owners, nanosecond times, xattrs and ACLs, byte names,
/// holes. Runs without a mount; the volume must not be mounted.
#[derive(Debug, Parser)]
#[command(name = "argosfs-import", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct ImportArgs {
    /// Volume root directory. The volume must not be mounted.
    pub root: PathBuf,
    /// Directory to copy in; its own mode, owner, times and xattrs go onto the target.
    pub source: PathBuf,
    /// Target directory inside the volume ('/'-separated), made as needed.
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub into: OsString,
    /// Stop at the first error (by default an error is reported, the run goes on, and
    /// the exit status is 1).
    #[arg(long)]
    pub strict: bool,
    /// Do not descend into directories on other filesystems (mount points are made
    /// empty).
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-import.
pub fn main() -> ExitCode {
    run(ImportArgs::parse())
}

/// Runs import with parsed arguments.
pub fn run(args: ImportArgs) -> ExitCode {
    const PROGRAM: &str = "argosfs-import";
    init_logging(&args.common, "warn");
    let mut output = Output::new(PROGRAM, &args.common);
    let result = execute(&args, &mut output);
    let summary = json!({
        "command": "import",
        "root": super::json_path(&args.root),
        "source": super::json_path(&args.source),
        "into": String::from_utf8_lossy(args.into.as_bytes()),
    });
    output.finish(result, summary, "imported")
}

fn execute(args: &ImportArgs, output: &mut Output) -> anyhow::Result<Report> {
    transfer::volume_path_components(args.into.as_bytes())
        .map_err(|e| anyhow::Error::new(UsageError(e.to_string())))?;
    let vol = open_volume(&args.root, args.passphrase_file.as_deref(), false)?;
    let options = ImportOptions {
        into: args.into.as_bytes().to_vec(),
        is_strict: args.strict,
        one_file_system: args.one_file_system,
        ..ImportOptions::default()
    };
    let report = transfer::import(&vol, &args.source, &options, output).with_context(|| {
        format!(
            "importing {} into {}",
            args.source.display(),
            args.root.display()
        )
    });
    let closed = if matches!(&report, Ok(r) if r.outcome == Outcome::Aborted) {
        // Nothing more can be written; the last commit holds what is durable.
        drop(vol);
        Ok(())
    } else {
        vol.close().context("closing the volume")
    };
    let report = report?;
    closed?;
    Ok(report)
}

/// A command-line value that does not parse (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Opens a volume for an offline tool: passphrase when it is encrypted, and a clear
/// refusal when it is mounted (its lock is held).
pub(crate) fn open_volume(
    root: &Path,
    passphrase_file: Option<&Path>,
    read_only: bool,
) -> anyhow::Result<Volume> {
    let passphrase = volume_passphrase(root, passphrase_file)?;
    open_volume_with(root, passphrase, read_only)
}

/// The passphrase a volume needs: `None` when it is not encrypted, else from
/// `passphrase_file`, ARGOSFS_PASSPHRASE or a prompt.
pub(crate) fn volume_passphrase(
    root: &Path,
    passphrase_file: Option<&Path>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let sb = Superblock::load(root)
        .with_context(|| format!("reading the volume at {}", root.display()))?;
    match sb.encryption {
        Some(_) => Ok(Some(read_passphrase(
            passphrase_file,
            "--passphrase-file FILE",
            false,
        )?)),
        None => Ok(None),
    }
}

/// [`open_volume`] with the passphrase already at hand.
pub(crate) fn open_volume_with(
    root: &Path,
    passphrase: Option<Vec<u8>>,
    read_only: bool,
) -> anyhow::Result<Volume> {
    let options = OpenOptions {
        passphrase,
        read_only,
        ..OpenOptions::default()
    };
    match Volume::open(root, options) {
        Ok(vol) => Ok(vol),
        Err(crate::Error::Locked { .. }) => Err(super::in_use(root)),
        Err(e) => Err(e).with_context(|| format!("opening the volume at {}", root.display())),
    }
}

/// Where a run's errors, progress and summary go: stderr and stdout as text, or JSON
/// Lines on stdout with --json; a progress line on stderr only when it is a terminal.
pub(crate) struct Output {
    program: &'static str,
    is_json: bool,
    is_quiet: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    last_drawn: Instant,
}

impl Output {
    pub(crate) fn new(program: &'static str, common: &CommonArgs) -> Output {
        let bar = (std::io::stderr().is_terminal() && !common.quiet).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {pos} entries ({per_sec}) {msg}",
                )
                .expect("a valid constant template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Output {
            program,
            is_json: common.json,
            is_quiet: common.quiet,
            bar,
            started: now,
            last_drawn: now,
        }
    }

    /// Prints the summary (or the error that ended the run) and gives the exit status:
    /// 0 when everything was copied, 1 after any error, 2 for a bad command line.
    pub(crate) fn finish(
        mut self,
        result: anyhow::Result<Report>,
        mut summary: Value,
        verb: &str,
    ) -> ExitCode {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                report_error(self.program, &e);
                let is_usage = e.downcast_ref::<UsageError>().is_some();
                return ExitCode::from(if is_usage { exit::USAGE } else { exit::FAIL });
            }
        };
        let counts = report.counts;
        if self.is_json {
            let data = summary.as_object_mut().expect("the summary is an object");
            data.insert("schema".into(), json!(1));
            data.insert("outcome".into(), json!(report.outcome));
            for (key, value) in counts_json(&counts) {
                data.insert(key.into(), value);
            }
            data.insert("seconds".into(), json!(report.elapsed.as_secs_f64()));
            data.insert("files_per_second".into(), json!(report.files_per_second()));
            data.insert("mb_per_second".into(), json!(report.mb_per_second()));
            json_line("summary", summary);
        } else if !self.is_quiet {
            println!(
                "{verb} {} entries ({} files, {} directories, {} symlinks, {} special files, {} hard links), {:.1} MB in {:.1} s: {:.0} files/s, {:.1} MB/s",
                counts.entries(),
                counts.files,
                counts.directories,
                counts.symlinks,
                counts.specials,
                counts.hard_links,
                counts.bytes as f64 / 1e6,
                report.elapsed.as_secs_f64(),
                report.files_per_second(),
                report.mb_per_second(),
            );
        }
        if !self.is_json {
            match report.outcome {
                Outcome::Finished if counts.errors == 0 => {}
                Outcome::Finished => eprintln!(
                    "{}: {} errors (reported above); the rest was copied",
                    self.program, counts.errors
                ),
                Outcome::Stopped => eprintln!(
                    "{}: stopped at the first error (--strict); the copy is incomplete",
                    self.program
                ),
                Outcome::Aborted => eprintln!(
                    "{}: aborted: the error above stops every later entry too; the copy is incomplete",
                    self.program
                ),
            }
        }
        ExitCode::from(if report.is_clean() {
            exit::OK
        } else {
            exit::FAIL
        })
    }

    fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Observer for Output {
    fn on_error(&mut self, error: &ItemError) {
        if self.is_json {
            json_line("error", error_json(error));
            return;
        }
        let line = format!("{}: {error}", self.program);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn on_progress(&mut self, counts: &Counts) {
        let Some(bar) = &self.bar else {
            return;
        };
        if self.last_drawn.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_drawn = Instant::now();
        let seconds = self.elapsed_seconds().max(1e-3);
        bar.set_position(counts.entries());
        bar.set_message(format!(
            "{:.1} MB ({:.1} MB/s), {} errors",
            counts.bytes as f64 / 1e6,
            counts.bytes as f64 / 1e6 / seconds,
            counts.errors
        ));
    }
}

fn counts_json(counts: &Counts) -> Vec<(&'static str, Value)> {
    vec![
        ("files", json!(counts.files)),
        ("directories", json!(counts.directories)),
        ("symlinks", json!(counts.symlinks)),
        ("specials", json!(counts.specials)),
        ("hard_links", json!(counts.hard_links)),
        ("entries", json!(counts.entries())),
        ("bytes", json!(counts.bytes)),
        ("errors", json!(counts.errors)),
    ]
}

/// One error as JSON: the path lossily as text, plus its bytes in hex when they are not
/// UTF-8, so a machine can still find the entry.
fn error_json(error: &ItemError) -> Value {
    let bytes = error.path.as_os_str().as_bytes();
    let mut data = json!({
        "path": String::from_utf8_lossy(bytes),
        "op": error.op,
        "xattr": error.xattr.as_deref().map(String::from_utf8_lossy),
        "side": if error.is_host_side() { "host" } else { "volume" },
        "message": error.cause.to_string(),
        "errno": error.errno(),
        "is_fatal": error.is_fatal(),
    });
    if std::str::from_utf8(bytes).is_err() {
        data["path_hex"] = json!(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    data
}

fn json_line(kind: &str, data: Value) {
    println!(
        "{}",
        serde_json::to_string(&json!({ "type": kind, "data": data }))
            .expect("JSON values serialize")
    );
}

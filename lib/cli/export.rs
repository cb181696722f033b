//! argosfs-export: copies a directory of a volume out to a host directory.

use super::import::{Output, UsageError, open_volume};
use super::{CommonArgs, Example, init_logging};
use crate::transfer::{self, ExportOptions, Report};
use anyhow::Context;
use clap::Parser;
use serde_json::json;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-export /srv/argosfs ./rootfs-export --preserve-metadata",
        "copy the whole volume out with owners, set-id bits, times, xattrs and ACLs",
    ),
    (
        "argosfs-export /srv/argosfs /tmp/etc --from /images/debian/etc --json",
        "copy one directory out, reported as JSON Lines",
    ),
];

/// Exit status of argosfs-export (as argosfs-import).
pub use super::import::EXIT_STATUS;

/// Copy a directory of an ArgosFS volume out to the host.
///
/// Runs without a mount; the volume must not be mounted. With --preserve-metadata
/// everything is kept (owners, set-id bits, nanosecond times, xattrs and ACLs, devices,
/// hard links, holes); without it only contents, types, hard links and the rwx and
/// sticky bits.
#[derive(Debug, Parser)]
#[command(name = "argosfs-export", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct ExportArgs {
    /// Volume root directory. The volume must not be mounted.
    pub root: PathBuf,
    /// Destination directory: made if missing; must be empty unless --force. It gets
    /// the metadata of the exported directory.
    pub dest: PathBuf,
    /// Keep owners and groups, set-user-ID, set-group-ID and sticky bits, atime and
    /// mtime (nanoseconds) and every xattr incl. ACLs (needs root).
    #[arg(long)]
    pub preserve_metadata: bool,
    /// Directory inside the volume to export ('/'-separated).
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub from: OsString,
    /// Write into a non-empty destination: directories are merged, other entries in
    /// the way are replaced.
    #[arg(long)]
    pub force: bool,
    /// Stop at the first error (by default an error is reported, the run goes on, and
    /// the exit status is 1).
    #[arg(long)]
    pub strict: bool,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-export.
pub fn main() -> ExitCode {
    run(ExportArgs::parse())
}

/// Runs export with parsed arguments.
pub fn run(args: ExportArgs) -> ExitCode {
    init_logging(&args.common, "warn");
    let mut output = Output::new("argosfs-export", &args.common);
    let result = execute(&args, &mut output);
    let summary = json!({
        "command": "export",
        "root": super::json_path(&args.root),
        "from": String::from_utf8_lossy(args.from.as_bytes()),
        "destination": super::json_path(&args.dest),
        "preserve_metadata": args.preserve_metadata,
    });
    output.finish(result, summary, "exported")
}

fn execute(args: &ExportArgs, output: &mut Output) -> anyhow::Result<Report> {
    transfer::volume_path_components(args.from.as_bytes())
        .map_err(|e| anyhow::Error::new(UsageError(e.to_string())))?;
    // Read-only: a shared lock (refused while mounted), and nothing written to a
    // volume that may be in trouble.
    let vol = open_volume(&args.root, args.passphrase_file.as_deref(), true)?;
    let options = ExportOptions {
        from: args.from.as_bytes().to_vec(),
        preserve_metadata: args.preserve_metadata,
        is_strict: args.strict,
        force: args.force,
    };
    transfer::export(&vol, &args.dest, &options, output).with_context(|| {
        format!(
            "exporting {} to {}",
            args.root.display(),
            args.dest.display()
        )
    })
}

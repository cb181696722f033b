//! argosfs-mkfs: creates a volume.

use super::{
    CommonArgs, Example, ExitStatus, exit, init_logging, parse_size, read_passphrase, report_error,
};
use crate::data::compress::Compression;
use crate::types::DiskId;
use crate::volume::{self, DiskConfig, FormatOptions, KdfStrength, Layout};
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-mkfs /srv/argosfs --disk /srv/d0 --disk /srv/d1 --disk /srv/d2 --disk /srv/d3 --disk /srv/d4 --disk /srv/d5 --compression zstd",
        "a 4+2 volume on six disks: any two may be lost",
    ),
    (
        "argosfs-mkfs /srv/argosfs --disk /srv/d0:domain=shelf1 --disk /srv/d1:domain=shelf2 --disk /srv/d2:class=ssd --layout 2+1 --encrypt --passphrase-file /etc/argosfs/data.key --json",
        "an encrypted 2+1 volume with failure domains, reported as JSON",
    ),
];

/// Exit status of argosfs-mkfs.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (exit::OK, "the volume was created"),
    (exit::FAIL, "it was not; the message on stderr says why"),
    (exit::USAGE, "the command line is wrong"),
];

/// Create an ArgosFS volume.
///
/// A ROOT directory gets the superblock, metadata and lock; each disk directory (usually
/// the mount point of one drive) gets a label and, later, erasure-coded shards.
#[derive(Debug, Parser)]
#[command(name = "argosfs-mkfs", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct MkfsArgs {
    /// Volume root directory (superblock, metadata, lock); created if missing.
    pub root: PathBuf,
    /// A disk directory, with optional settings: PATH[:weight=W,class=C,domain=D,numa=N].
    /// A relative PATH is relative to the current directory, as ROOT is; a disk inside
    /// ROOT is recorded relative to ROOT, so ROOT can be moved with it. Repeat once per
    /// disk.
    #[arg(long = "disk", value_name = "PATH[:OPTS]", required = true)]
    pub disks: Vec<String>,
    /// Data and parity shards per stripe, e.g. 4+2 (default: 4+2 with six or more disks,
    /// else one parity shard).
    #[arg(long, value_name = "K+M")]
    pub layout: Option<String>,
    /// Fewest shards a stripe may be written with while disks are missing (K..=K+M;
    /// default K+1, or K without parity). Below it writes fail with EIO. K alone means a
    /// stripe written then has no redundancy until healed.
    #[arg(long, value_name = "N")]
    pub min_shards: Option<u8>,
    /// Plaintext bytes per stripe (4K to 64M).
    #[arg(long, value_name = "SIZE", default_value = "1M")]
    pub stripe_size: String,
    /// Compression of stripes: none, zstd, or zstd:LEVEL (1-19).
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub compression: String,
    /// Encrypt data and metadata (names, symlink targets, xattrs, owners, modes, times,
    /// sizes) with XChaCha20-Poly1305 and a key derived from a passphrase
    /// (--passphrase-file, ARGOSFS_PASSPHRASE, or a prompt).
    #[arg(long)]
    pub encrypt: bool,
    /// Read the passphrase from this file (trailing newline ignored).
    #[arg(long, value_name = "FILE", requires = "encrypt")]
    pub passphrase_file: Option<PathBuf>,
    /// Files up to this size are stored inline in the metadata (0 disables; encrypted
    /// with the metadata on encrypted volumes).
    #[arg(long, value_name = "SIZE", default_value = "2K")]
    pub inline_max: String,
    /// Overwrite an existing volume or disk (destroys its data).
    #[arg(long)]
    pub force: bool,
    /// Cheapest key derivation (for tests and demos only; weak against guessing).
    #[arg(long, hide = true)]
    pub insecure_fast_kdf: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-mkfs.
pub fn main() -> ExitCode {
    let args = MkfsArgs::parse();
    run(args)
}

/// Runs mkfs with parsed arguments.
pub fn run(args: MkfsArgs) -> ExitCode {
    init_logging(&args.common, "warn");
    match execute(&args) {
        Ok(report) => {
            if args.common.json {
                super::print_json(&report);
            } else if !args.common.quiet {
                print_human(&report);
            }
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            report_error("argosfs-mkfs", &e);
            let usage = e.downcast_ref::<UsageError>().is_some();
            ExitCode::from(if usage { exit::USAGE } else { exit::FAIL })
        }
    }
}

/// A command-line value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn execute(args: &MkfsArgs) -> anyhow::Result<serde_json::Value> {
    let usage = |e: String| anyhow::Error::new(UsageError(e));
    let mut disks = Vec::new();
    for (i, text) in args.disks.iter().enumerate() {
        let id = DiskId(u16::try_from(i).map_err(|_| usage("too many disks".into()))?);
        disks.push(DiskConfig::parse(id, text).map_err(usage)?);
    }
    let layout = args
        .layout
        .as_deref()
        .map(Layout::parse_km)
        .transpose()
        .map_err(usage)?;
    let stripe_bytes = parse_size(&args.stripe_size).map_err(usage)?;
    let stripe_bytes = u32::try_from(stripe_bytes)
        .map_err(|_| usage(format!("stripe size {} is too large", args.stripe_size)))?;
    let inline_max = parse_size(&args.inline_max).map_err(usage)?;
    let compression = Compression::parse(&args.compression).map_err(usage)?;
    let passphrase = if args.encrypt {
        Some(read_passphrase(
            args.passphrase_file.as_deref(),
            "--passphrase-file FILE",
            true,
        )?)
    } else {
        None
    };
    let options = FormatOptions {
        disks,
        layout,
        min_shards: args.min_shards,
        stripe_bytes,
        compression,
        passphrase,
        kdf: if args.insecure_fast_kdf {
            KdfStrength::Cheap
        } else {
            KdfStrength::Default
        },
        force: args.force,
        inline_max_bytes: u32::try_from(inline_max).unwrap_or(u32::MAX),
    };
    let sb = volume::format(&args.root, options)
        .with_context(|| format!("creating a volume at {}", args.root.display()))?;
    let root = super::display_path(&args.root);
    Ok(serde_json::json!({
        "schema": 1,
        "root": super::json_path(&root),
        "volume": sb.volume.to_string(),
        "layout": format!("{}+{}", sb.layout.k, sb.layout.m),
        "min_shards": sb.layout.min_shards,
        "stripe_bytes": sb.layout.stripe_bytes,
        "codec": sb.layout.codec,
        "compression": sb.compression.to_string(),
        "encrypted": sb.encryption.is_some(),
        "inline_max_bytes": sb.inline_max_bytes,
        "disks": sb.disks.iter().map(|d| serde_json::json!({
            "id": d.id.0,
            "path": super::json_path(&d.resolve(&root)),
            "weight": d.weight,
            "class": d.class,
            "domain": d.domain,
            "numa": d.numa,
        })).collect::<Vec<_>>(),
    }))
}

fn print_human(report: &serde_json::Value) {
    println!(
        "Created ArgosFS volume {} at {}",
        report["volume"].as_str().unwrap_or("?"),
        report["root"].as_str().unwrap_or("?")
    );
    println!(
        "  layout {} ({} bytes per stripe), compression {}, encryption {}",
        report["layout"].as_str().unwrap_or("?"),
        report["stripe_bytes"],
        report["compression"].as_str().unwrap_or("?"),
        if report["encrypted"].as_bool() == Some(true) {
            "xchacha20poly1305"
        } else {
            "off"
        }
    );
    if let Some(disks) = report["disks"].as_array() {
        for d in disks {
            println!(
                "  disk d{}: {} (weight {}, class {}, domain {})",
                d["id"],
                d["path"].as_str().unwrap_or("?"),
                d["weight"],
                d["class"].as_str().unwrap_or("?"),
                d["domain"].as_str().unwrap_or("?")
            );
        }
    }
}

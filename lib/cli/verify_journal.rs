//! argosfs-verify-journal (`argosfs verify-journal`): validates both snapshot slots and
//! the journal without replaying into the live volume.

use super::{CommonArgs, Example, ExitStatus, exit, init_logging, report_error};
use crate::fsck::meta_check::{self, AgreementStatus, MetaVerification, SlotStatus};
use crate::volume::{META_DIR, Superblock};
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-verify-journal /srv/argosfs",
        "which snapshot slot is damaged, where the journal ends, whether they agree",
    ),
    (
        "argosfs-verify-journal /srv/argosfs --json | jq '.slots[] | {slot, status, txid}'",
        "the state of both snapshot slots as JSON",
    ),
];

/// Exit status of argosfs-verify-journal.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (exit::OK, "both snapshots and the journal verify"),
    (
        exit::FAIL,
        "a problem was found (argosfs-fsck --repair fixes most), or the volume could not be read",
    ),
    (exit::USAGE, "the command line is wrong"),
];

/// Verify the metadata snapshots and journal of an ArgosFS volume.
///
/// Checks both snapshot slots (checksum, hash, version), the journal (every record's
/// checksum and order, a torn tail), and whether the secondary snapshot plus the journal
/// rebuilds the primary. Reads only; the volume must not be mounted read-write. An
/// encrypted volume's metadata is sealed: with its passphrase every snapshot and record
/// must also authenticate and decode; without it only the structure is checked, and the
/// output says so.
#[derive(Debug, Parser)]
#[command(name = "argosfs-verify-journal", version)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct VerifyJournalArgs {
    /// Volume root directory.
    pub root: PathBuf,
    /// Read the passphrase of an encrypted volume from this file (else
    /// ARGOSFS_PASSPHRASE; with neither, only the structure is checked).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Entry point of argosfs-verify-journal.
pub fn main() -> ExitCode {
    run(VerifyJournalArgs::parse())
}

/// Runs verify-journal with parsed arguments: exit 0 when everything verifies, 1 when
/// something does not (or the volume cannot be read), 2 for a bad command line.
pub fn run(args: VerifyJournalArgs) -> ExitCode {
    init_logging(&args.common, "error");
    match execute(&args) {
        Ok((sb, verification)) => {
            let root = super::display_path(&args.root);
            if args.common.json {
                print_json(&root, &sb, &verification);
            } else {
                print_human(&root, &verification, args.common.quiet);
            }
            ExitCode::from(if verification.is_ok() {
                exit::OK
            } else {
                exit::FAIL
            })
        }
        Err(e) => {
            report_error("argosfs-verify-journal", &e);
            if args.common.json {
                super::print_json(&serde_json::json!({
                    "schema": 1,
                    "root": super::json_path(&args.root),
                    "ok": false,
                    "error": super::error_text(&e),
                }));
            }
            ExitCode::from(exit::FAIL)
        }
    }
}

fn execute(args: &VerifyJournalArgs) -> anyhow::Result<(Superblock, MetaVerification)> {
    let root = &args.root;
    let sb = Superblock::load(root)
        .with_context(|| format!("reading the superblock of {}", root.display()))?;
    let _lock = match crate::fsck::lock(root, false) {
        Err(crate::Error::Locked { .. }) => return Err(super::in_use(&super::display_path(root))),
        other => other?,
    };
    let passphrase = super::passphrase_if_given(args.passphrase_file.as_deref())?;
    let keys = sb
        .keys_or_locked(passphrase.as_deref())
        .with_context(|| format!("unlocking the metadata of {}", root.display()))?;
    Ok((
        sb.clone(),
        meta_check::verify(&root.join(META_DIR), &keys.meta),
    ))
}

fn print_json(root: &std::path::Path, sb: &Superblock, v: &MetaVerification) {
    let problems: Vec<serde_json::Value> = v
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "kind": p.kind,
                "object": p.object,
                "detail": p.detail,
            })
        })
        .collect();
    super::print_json(&serde_json::json!({
        "schema": 1,
        "root": super::json_path(root),
        "volume": sb.volume.to_string(),
        "ok": v.is_ok(),
        "slots": v.slots,
        "journal": v.journal,
        "primary": v.primary,
        "live_txid": v.live_txid,
        "replayed_records": v.replayed_records,
        "agreement": v.agreement,
        "contents_checked": v.contents_checked,
        "problems": problems,
    }));
}

fn print_human(root: &std::path::Path, v: &MetaVerification, quiet: bool) {
    if !quiet {
        println!("metadata of {}", root.display());
        for s in &v.slots {
            let role = if s.is_primary { " (primary)" } else { "" };
            match s.status {
                SlotStatus::Valid => println!(
                    "  {}: txid {}, valid{role}",
                    s.path.display(),
                    s.txid.unwrap_or(0)
                ),
                SlotStatus::Missing => println!("  {}: missing", s.path.display()),
                SlotStatus::Damaged => println!(
                    "  {}: DAMAGED at offset {}: {}",
                    s.path.display(),
                    s.offset.map_or("?".into(), |o| o.to_string()),
                    s.error.as_deref().unwrap_or("?")
                ),
            }
        }
        let j = &v.journal;
        match (&j.error, j.base_txid) {
            (Some(e), _) => println!("  {}: UNREADABLE: {e}", j.path.display()),
            (None, Some(base)) => {
                let range = match (j.first_txid, j.last_txid) {
                    (Some(a), Some(b)) => format!("txids {a}..={b}"),
                    _ => "no records".into(),
                };
                println!(
                    "  {}: base txid {base}, {} records, {range}, {} bytes",
                    j.path.display(),
                    j.records,
                    j.len_bytes.unwrap_or(0)
                );
            }
            (None, None) => {}
        }
        if let Some(t) = &j.torn_tail {
            println!(
                "  torn tail at offset {} ({} bytes): {} ({})",
                t.offset,
                t.bytes,
                t.reason,
                if t.is_crash_tear {
                    "cut short by a crash: not applied, cut on the next read-write open"
                } else {
                    "damage with later data after it: run argosfs-fsck --repair"
                }
            );
        }
        let agreement = match v.agreement.status {
            AgreementStatus::Agree => "agree",
            AgreementStatus::Disagree => "DISAGREE",
            AgreementStatus::SingleSlot => "single slot",
            AgreementStatus::Unchecked => "not checked",
        };
        println!("  primary/secondary: {agreement}: {}", v.agreement.detail);
        if let Some(txid) = v.live_txid {
            println!(
                "  live state: txid {txid} ({} records replayed on the primary)",
                v.replayed_records
            );
        }
    }
    for p in &v.problems {
        println!("problem: {}: {}", p.object, p.detail);
    }
    if !v.contents_checked {
        println!(
            "structure only: the metadata is encrypted and no passphrase was given (--passphrase-file FILE or ARGOSFS_PASSPHRASE); snapshot and record contents were not read"
        );
    }
    if v.is_ok() {
        println!("ok: snapshots and journal verify");
    } else {
        println!("FAILED: {} problems", v.problems.len());
    }
}

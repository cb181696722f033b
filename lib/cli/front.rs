//! argosfs: the front command. `argosfs SUBCOMMAND ARGS` runs the program
//! `argosfs-SUBCOMMAND ARGS` in this very process, with the same argument struct, so the
//! two spellings take the same flags and give the same output and exit status.
//!
//! [`PROGRAMS`] lists every program with its clap definition, examples and exit status:
//! the man pages and shell completions are generated from it (tests/cli_packaging.rs),
//! and a test requires every `[[bin]]` of Cargo.toml to be in it and to be a subcommand
//! here. A new program joins by adding a variant to [`Command`] and an entry to
//! [`PROGRAMS`].

use super::autopilot::AutopilotArgs;
use super::disk::DiskArgs;
use super::export::ExportArgs;
use super::fsck::FsckArgs;
use super::health::HealthArgs;
use super::import::ImportArgs;
use super::mkfs::MkfsArgs;
use super::mount::MountArgs;
use super::scrub::ScrubArgs;
use super::verify_journal::VerifyJournalArgs;
use super::{Example, ExitStatus, exit};
use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs mkfs /srv/argosfs --disk /srv/d0 --disk /srv/d1 --disk /srv/d2",
        "the same as argosfs-mkfs with those arguments",
    ),
    (
        "argosfs fsck /srv/argosfs --repair --json",
        "the same as argosfs-fsck /srv/argosfs --repair --json",
    ),
    ("argosfs help verify-journal", "the help of one program"),
];

/// Exit status of the front command.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (
        exit::OK,
        "the program succeeded; otherwise the status is the program's own (see its man page)",
    ),
    (
        exit::USAGE,
        "the command line is wrong (16 when the program is fsck, 8 when it is health, as the programs themselves)",
    ),
];

/// Run any ArgosFS program: argosfs fsck ROOT is argosfs-fsck ROOT.
///
/// Each subcommand takes exactly the arguments of the program argosfs-SUBCOMMAND and
/// gives the same output and exit status. argosfs help SUBCOMMAND shows its help.
#[derive(Debug, Parser)]
#[command(name = "argosfs", version)]
#[command(subcommand_required = true, arg_required_else_help = true)]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct FrontArgs {
    /// The program to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The programs, each with its own argument struct. The help of each comes from that
/// struct (hence no doc comments on the variants: they would replace it).
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum Command {
    Mkfs(MkfsArgs),
    Mount(MountArgs),
    Fsck(FsckArgs),
    VerifyJournal(VerifyJournalArgs),
    Import(ImportArgs),
    Export(ExportArgs),
    Disk(DiskArgs),
    Scrub(ScrubArgs),
    Autopilot(AutopilotArgs),
    Health(HealthArgs),
}

/// One program, as its man page and completions see it.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Binary name, e.g. `argosfs-fsck` (`argosfs` for the front command itself).
    pub name: &'static str,
    /// Its clap definition.
    pub command: fn() -> clap::Command,
    /// Examples.
    pub examples: &'static [Example],
    /// Exit status table.
    pub exit_status: &'static [ExitStatus],
}

/// Every program, the front command first.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "argosfs",
        command: FrontArgs::command,
        examples: EXAMPLES,
        exit_status: EXIT_STATUS,
    },
    Program {
        name: "argosfs-mkfs",
        command: MkfsArgs::command,
        examples: super::mkfs::EXAMPLES,
        exit_status: super::mkfs::EXIT_STATUS,
    },
    Program {
        name: "argosfs-mount",
        command: MountArgs::command,
        examples: super::mount::EXAMPLES,
        exit_status: super::mount::EXIT_STATUS,
    },
    Program {
        name: "argosfs-fsck",
        command: FsckArgs::command,
        examples: super::fsck::EXAMPLES,
        exit_status: super::fsck::EXIT_STATUS,
    },
    Program {
        name: "argosfs-verify-journal",
        command: VerifyJournalArgs::command,
        examples: super::verify_journal::EXAMPLES,
        exit_status: super::verify_journal::EXIT_STATUS,
    },
    Program {
        name: "argosfs-import",
        command: ImportArgs::command,
        examples: super::import::EXAMPLES,
        exit_status: super::import::EXIT_STATUS,
    },
    Program {
        name: "argosfs-export",
        command: ExportArgs::command,
        examples: super::export::EXAMPLES,
        exit_status: super::export::EXIT_STATUS,
    },
    Program {
        name: "argosfs-disk",
        command: DiskArgs::command,
        examples: super::disk::EXAMPLES,
        exit_status: super::disk::EXIT_STATUS,
    },
    Program {
        name: "argosfs-scrub",
        command: ScrubArgs::command,
        examples: super::scrub::EXAMPLES,
        exit_status: super::scrub::EXIT_STATUS,
    },
    Program {
        name: "argosfs-autopilot",
        command: AutopilotArgs::command,
        examples: super::autopilot::EXAMPLES,
        exit_status: super::autopilot::EXIT_STATUS,
    },
    Program {
        name: "argosfs-health",
        command: HealthArgs::command,
        examples: super::health::EXAMPLES,
        exit_status: super::health::EXIT_STATUS,
    },
];

/// Entry point of argosfs.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match FrontArgs::try_parse_from(&argv) {
        Ok(args) => run(args),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(parse_error_code(&e, &argv))
        }
    }
}

/// Runs the chosen program.
pub fn run(args: FrontArgs) -> ExitCode {
    match args.command {
        Command::Mkfs(args) => super::mkfs::run(args),
        Command::Mount(args) => super::mount::run_as(args, &["mount"]),
        Command::Fsck(args) => super::fsck::run(args),
        Command::VerifyJournal(args) => super::verify_journal::run(args),
        Command::Import(args) => super::import::run(args),
        Command::Export(args) => super::export::run(args),
        Command::Disk(args) => super::disk::run(args),
        Command::Scrub(args) => super::scrub::run(args),
        Command::Autopilot(args) => super::autopilot::run(args),
        Command::Health(args) => super::health::run(args),
    }
}

/// The exit status for a command line clap refused: what the program itself would
/// return (fsck's 16 for usage errors), 0 for help and version, else clap's own (2).
fn parse_error_code(error: &clap::Error, argv: &[OsString]) -> u8 {
    let subcommand = argv
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'));
    if subcommand.is_some_and(|s| s == "fsck") {
        return super::fsck::parse_error_code(error);
    }
    if subcommand.is_some_and(|s| s == "health") {
        return super::health::parse_error_code(error);
    }
    u8::try_from(error.exit_code()).unwrap_or(exit::USAGE)
}

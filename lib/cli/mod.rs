//! Command-line front ends: argument definitions and `main` of every program, shared
//! flags, logging setup, exit codes. Binaries in bin/ are one-line shells over these.

pub mod autopilot;
pub mod disk;
pub mod export;
pub mod front;
pub mod fsck;
pub mod health;
pub mod import;
pub mod mkfs;
pub mod mount;
mod perform;
pub mod scrub;
mod syslog;
pub mod verify_journal;

use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Exit codes shared by the programs (fsck and health have their own).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation failed.
    pub const FAIL: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;

    /// argosfs-health: the volume is healthy.
    pub const HEALTHY: u8 = 0;
    /// argosfs-health: a warning, or the volume is degraded (its data still readable).
    pub const DEGRADED: u8 = 1;
    /// argosfs-health: critical (more disks lost than the layout survives, or the
    /// volume does not open).
    pub const CRITICAL: u8 = 2;
    /// argosfs-health: the health could not be checked (no volume, a wrong passphrase,
    /// a bad override file, a wrong command line).
    pub const CANNOT_CHECK: u8 = 8;
}

/// An example command line and what it does, for `--help` and the man pages.
pub type Example = (&'static str, &'static str);

/// An exit status and what it means, for `--help` and the man pages.
pub type ExitStatus = (u8, &'static str);

/// The text after the options in `--help`: examples, then the exit status table. The man
/// pages render the same tables as their EXAMPLES and EXIT STATUS sections.
pub fn help_epilogue(examples: &[Example], exit_status: &[ExitStatus]) -> String {
    let mut text = String::from("Examples:\n");
    for (command, what) in examples {
        text.push_str(&format!("  {command}\n      {what}\n"));
    }
    text.push_str("\nExit status:\n");
    for (code, meaning) in exit_status {
        text.push_str(&format!("  {code:<3} {meaning}\n"));
    }
    text.trim_end().to_string()
}

/// Flags every program takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Sets up logging to stderr: `RUST_LOG` wins, else the default level adjusted by -v/-q.
pub fn init_logging(common: &CommonArgs, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let level = if common.quiet {
        "error"
    } else {
        match common.verbose {
            0 => default_level,
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(syslog::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Parses a byte size: a number with an optional K, M, G, T suffix (powers of 1024; "KiB",
/// "MiB", "GiB", "TiB" and lower case accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1M, 256K, 4096)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses an age: a number of seconds, or a number with a unit: s, m (minutes), h, d,
/// w (weeks), e.g. `30d`, `12h`, `90m`, `3600`.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an age (e.g. 30d, 12h, 90m, 3600)"))?;
    let seconds: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit (use s, m, h, d or w)")),
    };
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Where a passphrase comes from, in order: a file, ARGOSFS_PASSPHRASE, a prompt on the
/// terminal (twice when `confirm`). `file_option` is how the program takes the file
/// (`--passphrase-file FILE`), for the message when there is no source at all.
pub fn read_passphrase(
    file: Option<&Path>,
    file_option: &str,
    confirm: bool,
) -> anyhow::Result<Vec<u8>> {
    if let Some(given) = passphrase_if_given(file)? {
        return Ok(given);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "the volume is encrypted and there is no terminal to ask for its passphrase on: give {file_option} or set ARGOSFS_PASSPHRASE"
    );
    let first = prompt_hidden("Passphrase: ")?;
    anyhow::ensure!(!first.is_empty(), "the passphrase is empty");
    if confirm {
        let second = prompt_hidden("Repeat passphrase: ")?;
        anyhow::ensure!(first == second, "the passphrases do not match");
    }
    Ok(first)
}

/// The passphrase from `file` or ARGOSFS_PASSPHRASE, if either is given; never asks.
/// For the checkers, which check an encrypted volume's structure without one.
pub fn passphrase_if_given(file: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    use anyhow::Context;
    if let Some(path) = file {
        let mut bytes = std::fs::read(path)
            .with_context(|| format!("reading passphrase file {}", path.display()))?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        anyhow::ensure!(
            !bytes.is_empty(),
            "passphrase file {} is empty",
            path.display()
        );
        return Ok(Some(bytes));
    }
    if let Some(value) = std::env::var_os("ARGOSFS_PASSPHRASE") {
        let bytes = std::os::unix::ffi::OsStringExt::into_vec(value);
        anyhow::ensure!(!bytes.is_empty(), "ARGOSFS_PASSPHRASE is empty");
        return Ok(Some(bytes));
    }
    Ok(None)
}

fn prompt_hidden(prompt: &str) -> anyhow::Result<Vec<u8>> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

/// Points stdin, stdout and stderr at /dev/null and sends logs to syslog: what a daemon
/// does once its parent has been told it is running.
pub fn detach_stdio() -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let null_fd = null.as_fd();
    nix::unistd::dup2_stdin(null_fd).map_err(std::io::Error::from)?;
    nix::unistd::dup2_stdout(null_fd).map_err(std::io::Error::from)?;
    nix::unistd::dup2_stderr(null_fd).map_err(std::io::Error::from)?;
    syslog::route_logs_to_syslog();
    Ok(())
}

/// What a one-shot program (argosfs-disk, -scrub, -autopilot) did: the fields of its
/// JSON object, its text, the failures to print on stderr, whether it ends well.
pub(crate) struct Done {
    pub(crate) json: serde_json::Value,
    pub(crate) lines: Vec<String>,
    pub(crate) failures: Vec<String>,
    pub(crate) is_ok: bool,
}

/// Failures printed one per line; the rest are counted (all are in --json).
const SHOWN_FAILURES: usize = 10;

/// Prints what a one-shot program did and gives its exit status: with --json one object
/// (`header` and the outcome's fields, or `error`), else the text (none with -q); the
/// failures, at most [`SHOWN_FAILURES`], on stderr. 0 when it ends well, 2 for a usage
/// error, else 1.
pub(crate) fn finish(
    program: &str,
    common: &CommonArgs,
    header: serde_json::Value,
    result: anyhow::Result<Done>,
) -> std::process::ExitCode {
    use serde_json::Value;
    let mut object = header;
    match result {
        Ok(done) => {
            if common.json {
                if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), done.json) {
                    object.extend(fields);
                }
                print_json(&object);
            } else if !common.quiet {
                for line in &done.lines {
                    println!("{line}");
                }
            }
            for failure in done.failures.iter().take(SHOWN_FAILURES) {
                eprintln!("{program}: {failure}");
            }
            if done.failures.len() > SHOWN_FAILURES {
                eprintln!(
                    "{program}: ... and {} more (all of them in --json)",
                    done.failures.len() - SHOWN_FAILURES
                );
            }
            std::process::ExitCode::from(if done.is_ok { exit::OK } else { exit::FAIL })
        }
        Err(e) => {
            report_error(program, &e);
            if common.json {
                object["error"] = serde_json::json!(error_text(&e));
                print_json(&object);
            }
            let is_usage = e.downcast_ref::<import::UsageError>().is_some();
            std::process::ExitCode::from(if is_usage { exit::USAGE } else { exit::FAIL })
        }
    }
}

/// Parses a rate in MiB/s (decimals allowed) into bytes per second.
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    match text.trim().parse::<f64>() {
        Ok(mib) if mib > 0.0 && mib.is_finite() => Ok(((mib * 1_048_576.0) as u64).max(1)),
        _ => Err(format!(
            "{text:?} is not a rate in MiB/s above 0 (e.g. 50, 0.5)"
        )),
    }
}

/// The exit status for a command line clap refused, for a program whose usage errors
/// exit `usage` rather than clap's 2 (fsck's 16; health's 8, since 2 means critical
/// there): 0 for --help and --version.
pub(crate) fn clap_error_code(error: &clap::Error, usage: u8) -> u8 {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => usage,
    }
}

/// Parses the command line of such a program; on an error prints it and gives the exit
/// status ([`clap_error_code`]).
pub(crate) fn parse_args_or_exit<T: clap::Parser>(usage: u8) -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        std::process::ExitCode::from(clap_error_code(&e, usage))
    })
}

/// Prints a JSON report on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

/// Reports an error the way every program does: `argosfs-X: error: ...` with causes.
pub fn report_error(program: &str, error: &anyhow::Error) {
    eprintln!("{program}: error: {}", error_text(error));
}

/// An error as one line: what failed, then each cause not already said by the one
/// before (library errors such as `I/O on PATH: ...` repeat their source), then what to
/// do when the failure is a common one.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    if let Some(hint) = hint(error) {
        text.push_str(" (");
        text.push_str(hint);
        text.push(')');
    }
    text
}

/// What to do about a common failure.
fn hint(error: &anyhow::Error) -> Option<&'static str> {
    error.chain().find_map(|cause| match cause.downcast_ref::<crate::Error>()? {
        crate::Error::Io { path, source }
            if source.kind() == std::io::ErrorKind::NotFound
                && path.file_name()
                    == crate::volume::Superblock::path(Path::new("/")).file_name() =>
        {
            Some("no ArgosFS volume there: give the volume root, the directory argosfs-mkfs made")
        }
        crate::Error::WrongPassphrase => {
            Some("check the passphrase file or ARGOSFS_PASSPHRASE; without the right one the data cannot be read")
        }
        _ => None,
    })
}

/// The error for a volume whose lock another process holds: what is wrong and what to do.
pub(crate) fn in_use(root: &Path) -> anyhow::Error {
    anyhow::Error::new(InUse(root.to_path_buf()))
}

/// A volume whose lock another process holds (see [`in_use`]); a type of its own so a
/// program can recognise it and say more.
#[derive(Debug, thiserror::Error)]
#[error(
    "volume {} is mounted or in use; unmount it first, or wait for the other tool to finish ({} is held)",
    .0.display(),
    .0.join(crate::volume::LOCK_FILE).display()
)]
pub(crate) struct InUse(PathBuf);

/// Absolute form of a path for messages.
pub fn display_path(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Absolute form of a path as JSON text: bytes that are not UTF-8 shown as U+FFFD (a
/// `PathBuf` itself cannot be serialized then, and `json!` would panic).
pub fn json_path(path: &Path) -> String {
    display_path(path).to_string_lossy().into_owned()
}

//! Command-line front ends: argument definitions and `main` of every program, shared
//! flags, logging setup, exit codes. Binaries in bin/ are one-line shells over these.

pub mod export;
pub mod fsck;
pub mod import;
pub mod mkfs;
pub mod mount;
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

/// Parses a byte size: a number with an optional K, M, G suffix (powers of 1024; "KiB",
/// "MiB", "GiB" and lower case accepted).
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
        _ => return Err(format!("{text:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Where a passphrase comes from, in order: a file, ARGOSFS_PASSPHRASE, a prompt on the
/// terminal (twice when `confirm`).
pub fn read_passphrase(file: Option<&Path>, confirm: bool) -> anyhow::Result<Vec<u8>> {
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
        return Ok(bytes);
    }
    if let Some(value) = std::env::var_os("ARGOSFS_PASSPHRASE") {
        let bytes = std::os::unix::ffi::OsStringExt::into_vec(value);
        anyhow::ensure!(!bytes.is_empty(), "ARGOSFS_PASSPHRASE is empty");
        return Ok(bytes);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "a passphrase is needed: give --passphrase-file FILE or set ARGOSFS_PASSPHRASE (no terminal to prompt on)"
    );
    let first = prompt_hidden("Passphrase: ")?;
    anyhow::ensure!(!first.is_empty(), "the passphrase is empty");
    if confirm {
        let second = prompt_hidden("Repeat passphrase: ")?;
        anyhow::ensure!(first == second, "the passphrases do not match");
    }
    Ok(first)
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

/// Prints a JSON report on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

/// Reports an error the way every program does: `argosfs-X: error: ...` with causes.
pub fn report_error(program: &str, error: &anyhow::Error) {
    eprintln!("{program}: error: {error:#}");
}

/// Absolute form of a path for messages and JSON.
pub fn display_path(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

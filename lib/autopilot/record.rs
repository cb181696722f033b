//! What the autopilot keeps in ROOT/autopilot/: its memory across runs
//! (`memory.json`, a checksummed document) and one artifact per run
//! (`run-UNIXTIME-PID.json`: inputs, plan, results, verification; the newest
//! [`KEEP_ARTIFACTS`] are kept), and the volume's event log (`ROOT/events.log`, JSON
//! lines), with the hooks run for each event.

use super::inputs::{Inputs, Memory};
use super::plan::{Plan, Step};
use crate::error::{Error, Result};
use crate::format::json;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The autopilot's directory in ROOT.
pub const DIR: &str = "autopilot";
/// Artifacts kept (older ones are deleted).
pub const KEEP_ARTIFACTS: usize = 50;
/// The event log in ROOT.
pub const EVENTS_FILE: &str = "events.log";
/// An event log larger than this is rotated to `events.log.1` (one old file kept).
pub const EVENTS_MAX_BYTES: u64 = 4 << 20;
/// The hook directory in ROOT.
pub const HOOKS_DIR: &str = "hooks.d";
/// Longest a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

const MEMORY_MAGIC: &str = "argosfs-autopilot-memory";
const MEMORY_VERSION: u32 = 1;

fn dir(root: &Path) -> PathBuf {
    root.join(DIR)
}

fn ensure_dir(root: &Path) -> Result<PathBuf> {
    let dir = dir(root);
    crate::store::create_private_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// The memory of earlier runs; none yet is an empty memory. A damaged file is an error
/// naming it (deleting it forgets only trends and grace periods).
pub fn load_memory(root: &Path) -> Result<Memory> {
    let path = dir(root).join("memory.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Memory::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let (memory, _) = json::open(&path.display().to_string(), &bytes, MEMORY_MAGIC, MEMORY_VERSION)
        .map_err(|e| {
            Error::Config(format!(
                "{e} (deleting {} only forgets what earlier runs saw: grace periods and trends start again)",
                path.display()
            ))
        })?;
    Ok(memory)
}

/// Saves the memory for the next run.
pub fn store_memory(root: &Path, memory: &Memory) -> Result<()> {
    let path = ensure_dir(root)?.join("memory.json");
    let bytes = json::seal(MEMORY_MAGIC, MEMORY_VERSION, memory);
    crate::store::write_atomic(&path, &bytes).map_err(|e| Error::io(&path, e))
}

/// What one step did when executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step.
    pub step: Step,
    /// It completed without error (a bounded run that left work is still ok).
    pub is_ok: bool,
    /// Shard bytes it wrote.
    pub bytes_written: u64,
    /// What it reported, or why it failed.
    pub detail: String,
    /// Its full report, as JSON.
    pub report: serde_json::Value,
}

/// The state after a run's actions, checked against the one before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Degraded stripes before the actions.
    pub degraded_before: u64,
    /// And after.
    pub degraded_after: u64,
    /// Disks lost before and after.
    pub lost_before: usize,
    /// Disks lost after.
    pub lost_after: usize,
    /// Redundancy did not fall: no more degraded stripes after than before, unless
    /// disks were lost meanwhile.
    pub is_redundancy_kept: bool,
}

/// Everything about one run, saved in ROOT/autopilot/.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Format of this document.
    pub schema: u32,
    /// When the run started (unix seconds).
    pub started_unix: u64,
    /// It only planned.
    pub is_dry_run: bool,
    /// What the plan was computed from.
    pub inputs: Inputs,
    /// The plan.
    pub plan: Plan,
    /// What each executed step did (empty for a dry run).
    pub results: Vec<StepResult>,
    /// The state after the actions (None for a dry run, or when it could not be read).
    pub verification: Option<Verification>,
}

/// Saves a run's artifact; deletes the oldest beyond [`KEEP_ARTIFACTS`]. Returns its path.
pub fn store_artifact(root: &Path, artifact: &Artifact) -> Result<PathBuf> {
    let dir = ensure_dir(root)?;
    let path = dir.join(format!(
        "run-{}-{}.json",
        artifact.started_unix,
        std::process::id()
    ));
    let mut bytes =
        serde_json::to_vec_pretty(artifact).map_err(|e| Error::Config(e.to_string()))?;
    bytes.push(b'\n');
    crate::store::write_atomic(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") && n.ends_with(".json"))
        })
        .collect();
    // run-UNIXTIME-PID: oldest first by time, then pid.
    runs.sort_by_key(|p| run_order(p));
    let excess = runs.len().saturating_sub(KEEP_ARTIFACTS);
    for old in &runs[..excess] {
        if let Err(e) = std::fs::remove_file(old) {
            tracing::warn!(path = %old.display(), error = %e, "could not delete an old autopilot artifact");
        }
    }
    Ok(path)
}

fn run_order(path: &Path) -> (u64, u64) {
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    let mut parts = name.trim_start_matches("run-").split('-');
    let number = |p: Option<&str>| p.and_then(|p| p.parse().ok()).unwrap_or(0);
    (number(parts.next()), number(parts.next()))
}

/// Reads an artifact.
pub fn load_artifact(path: &Path) -> Result<Artifact> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "{} is not an autopilot artifact: {e}",
            path.display()
        ))
    })
}

/// One entry of the volume's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When (unix seconds).
    pub unix: u64,
    /// What kind: `autopilot-action`, `autopilot-refused`, `health-changed`, ...
    pub kind: String,
    /// The program that recorded it.
    pub source: String,
    /// The details.
    pub data: serde_json::Value,
}

/// Appends `event` to ROOT/events.log (synced; rotated past [`EVENTS_MAX_BYTES`]), then
/// runs each executable in ROOT/hooks.d with the event as JSON on stdin, each for at
/// most [`HOOK_TIMEOUT`]. A hook that fails is logged, never an error.
pub fn record_event(root: &Path, event: &Event) -> Result<()> {
    let path = root.join(EVENTS_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > EVENTS_MAX_BYTES) {
        let old = root.join(format!("{EVENTS_FILE}.1"));
        std::fs::rename(&path, &old).map_err(|e| Error::io(&path, e))?;
    }
    let mut line = serde_json::to_vec(event).map_err(|e| Error::Config(e.to_string()))?;
    line.push(b'\n');
    let mut file = crate::store::open_private_append(&path).map_err(|e| Error::io(&path, e))?;
    file.write_all(&line).map_err(|e| Error::io(&path, e))?;
    file.sync_data().map_err(|e| Error::io(&path, e))?;
    run_hooks(&root.join(HOOKS_DIR), &line);
    Ok(())
}

/// Runs the hooks in `dir` (executable regular files, in name order) with `input`.
fn run_hooks(dir: &Path, input: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut hooks: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|e| e.path())
        .collect();
    hooks.sort();
    for hook in hooks {
        if let Err(why) = run_hook(&hook, input) {
            tracing::warn!(hook = %hook.display(), why, "event hook failed");
        }
    }
}

fn run_hook(hook: &Path, input: &[u8]) -> std::result::Result<(), String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(hook)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input gets EPIPE here: that is its business.
        let _ = stdin.write_all(input);
    }
    let deadline = std::time::Instant::now() + HOOK_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {} s", HOOK_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

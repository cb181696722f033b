//! The block device behind a disk directory, and smartctl run on it.
//!
//! A directory's filesystem has a device number (`st_dev`); `/sys/dev/block/MAJ:MIN`
//! names the block device when there is one (tmpfs, overlay and other virtual
//! filesystems have none). A partition is replaced by the disk it is on, and a
//! device-mapper or md device with exactly one device beneath it by that device, since
//! SMART belongs to whole physical devices. smartctl runs with a time limit, and its
//! absence is a finding of its own ("smartctl not installed"), never an error.

use super::smart::{self, SmartData};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long smartctl may take for one device (a disk spinning up can take seconds).
pub const SMARTCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The program run for SMART data: `ARGOSFS_SMARTCTL` when set (tests, or a wrapper
/// with other options), else `smartctl` from PATH.
fn smartctl_program() -> std::ffi::OsString {
    std::env::var_os("ARGOSFS_SMARTCTL").unwrap_or_else(|| "smartctl".into())
}

/// The whole block device (`/dev/sda`, `/dev/nvme0n1`) holding the filesystem of
/// `dir`, or why there is none.
pub fn block_device(dir: &Path) -> Result<PathBuf, String> {
    let stat =
        nix::sys::stat::stat(dir).map_err(|e| format!("cannot stat {}: {e}", dir.display()))?;
    let dev = stat.st_dev;
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let sys = std::fs::canonicalize(&link).map_err(|_| {
        format!(
            "no block device: {} is on a virtual filesystem (device {major}:{minor}, such as tmpfs or overlay)",
            dir.display()
        )
    })?;
    whole_device(&sys, 0)
}

/// The device of a `/sys/devices/...` block directory as smartctl wants it.
fn whole_device(sys: &Path, depth: usize) -> Result<PathBuf, String> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // A partition's directory sits inside its disk's.
    let disk = if sys.join("partition").exists() {
        sys.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        sys.to_path_buf()
    };
    let disk_name = name(&disk);
    if disk_name.starts_with("loop") {
        return Err(format!(
            "no SMART: /dev/{disk_name} is a loop device (a file on another filesystem)"
        ));
    }
    let below: Vec<PathBuf> = std::fs::read_dir(disk.join("slaves"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    match below.as_slice() {
        [] => Ok(PathBuf::from("/dev").join(disk_name)),
        [one] if depth < 4 => {
            let one = std::fs::canonicalize(one).map_err(|e| e.to_string())?;
            whole_device(&one, depth + 1)
        }
        _ => Err(format!(
            "no single device: /dev/{disk_name} spans {} devices (check their SMART one by one)",
            below.len()
        )),
    }
}

/// SMART data of a device from smartctl, or why there is none.
pub fn read_smart(device: &Path) -> Result<SmartData, String> {
    let program = smartctl_program();
    let mut child = match Command::new(&program)
        .args(["--json", "-a"])
        .arg(device)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("smartctl not installed (install smartmontools)".into());
        }
        Err(e) => return Err(format!("cannot run {}: {e}", program.to_string_lossy())),
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read on a thread so a large output cannot block the child while we wait.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + SMARTCTL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let bytes = reader.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "smartctl did not answer within {} s for {}",
            SMARTCTL_TIMEOUT.as_secs(),
            device.display()
        ));
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        format!(
            "smartctl gave no JSON for {} ({status}); smartctl 7.0 or newer is needed",
            device.display()
        )
    })?;
    if !smart::has_smart_sections(&json) {
        let why = smart::smartctl_messages(&json).unwrap_or_else(|| status.to_string());
        return Err(format!("no SMART data from {}: {why}", device.display()));
    }
    Ok(smart::parse_smartctl(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_on_a_virtual_filesystem_has_no_block_device() {
        // /proc is never on a block device.
        let why = block_device(Path::new("/proc")).unwrap_err();
        assert!(why.contains("no block device"), "{why}");
        let missing = block_device(Path::new("/nonexistent/argosfs")).unwrap_err();
        assert!(missing.contains("cannot stat"), "{missing}");
    }
}

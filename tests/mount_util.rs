//! Mounting test volumes: a guard that mounts with the real argosfs-mount binary and
//! always unmounts, even when the test fails.

use crate::common::{self, Spec, TestVolume};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSPHRASE: &str = "correct horse battery staple";

/// Why mounted tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is missing".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("mounted tests need root".into());
    }
    None
}

macro_rules! require_fuse {
    () => {
        if let Some(why) = crate::mount_util::unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}
pub(crate) use require_fuse;

/// A mounted volume. Unmounts on drop.
pub struct Mounted {
    pub tv: TestVolume,
    pub mnt: PathBuf,
    pub options: Vec<String>,
    daemon: Option<Child>,
    _mnt_dir: tempfile::TempDir,
}

impl Mounted {
    pub fn new(spec: &Spec) -> Mounted {
        Self::with_options(common::make(spec), &["allow_other"])
    }

    pub fn with_options(tv: TestVolume, options: &[&str]) -> Mounted {
        let mnt_dir = tempfile::tempdir().unwrap();
        let mnt = mnt_dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut m = Mounted {
            tv,
            mnt,
            options: options.iter().map(|s| s.to_string()).collect(),
            daemon: None,
            _mnt_dir: mnt_dir,
        };
        m.mount();
        m
    }

    /// Starts argosfs-mount in the foreground (so the test holds its pid) and waits until
    /// it reports the mount live.
    pub fn mount(&mut self) {
        assert!(self.daemon.is_none());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_argosfs-mount"));
        cmd.arg(&self.tv.root)
            .arg(&self.mnt)
            .args(["--foreground", "--notify-ready"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !self.options.is_empty() {
            cmd.arg("-o").arg(self.options.join(","));
        }
        if self.tv.passphrase.is_some() {
            cmd.env("ARGOSFS_PASSPHRASE", PASSPHRASE);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "READY" {
            let status = child.wait().unwrap();
            panic!("argosfs-mount did not come up: {status}");
        }
        self.daemon = Some(child);
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    pub fn is_mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let target = self.mnt.to_str().unwrap();
        mounts.lines().any(|l| l.split(' ').nth(1) == Some(target))
    }

    /// Unmounts and waits for the daemon to exit cleanly.
    pub fn unmount(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.is_mounted() {
            let ok = Command::new("umount")
                .arg(&self.mnt)
                .status()
                .unwrap()
                .success();
            if !ok {
                assert!(Instant::now() < deadline, "unmount kept failing");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(mut child) = self.daemon.take() {
            let status = child.wait().unwrap();
            assert!(status.success(), "argosfs-mount exited with {status}");
        }
    }

    /// kill -9 of the daemon, then clears the dead mount.
    pub fn kill9(&mut self) {
        let mut child = self.daemon.take().expect("mounted");
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("mounted");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap()
    }

    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for _ in 0..50 {
            if !self.is_mounted() {
                break;
            }
            if Command::new("umount")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.is_mounted() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a shell command as uid/gid 65534 (nobody) and returns (success, stderr).
pub fn as_nobody(script: &str) -> (bool, String) {
    let (ok, _, stderr) = as_nobody_output(script);
    (ok, stderr)
}

/// [`as_nobody`], returning (success, stdout, stderr).
pub fn as_nobody_output(script: &str) -> (bool, String, String) {
    use std::os::unix::process::CommandExt;
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a python3 snippet (Debian's, reachable by any user) and returns stdout; panics
/// with its stderr on failure.
pub fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(script: &str, dir: &Path) -> String {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An address on the loopback a test can give `-o metrics=` (a port free a moment ago).
pub fn free_local_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// GETs `path` from the mount's metrics address: (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample `key` (`name{labels}`) in an exposition.
pub fn sample(text: &str, key: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {key}"))
}

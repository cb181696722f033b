//! argosfs-mount (also the mount(8) helper when run through a link named
//! mount.argosfs): serves a volume over FUSE.
//!
//! Without `-f` the program re-executes itself in the background with `-f` and a readiness
//! pipe, and returns 0 only once the mount is live; errors of the child (wrong passphrase,
//! busy volume, bad mount point) come back on the parent's stderr with exit status 1.

use super::{CommonArgs, Example, ExitStatus, exit, init_logging, read_passphrase, report_error};
use crate::posix::ArgosFs;
use crate::volume::{OpenOptions, Superblock, Volume};
use anyhow::{Context, bail};
use clap::Parser;
use fuser::{Config, MountOption, Session, SessionACL};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The file system subtype: a mount shows as type `fuse.argosfs`.
pub const FS_SUBTYPE: &str = "argosfs";

/// Examples for `--help` and the man page.
pub const EXAMPLES: &[Example] = &[
    (
        "argosfs-mount /srv/argosfs /mnt/data -o allow_other",
        "mount in the background; returns once the mount is live",
    ),
    (
        "argosfs-mount /srv/argosfs /mnt/data -f -v",
        "serve in the foreground with info logs on stderr (Ctrl-C or umount ends it)",
    ),
    (
        "mount -t argosfs -o passphrase_file=/etc/argosfs/data.key /srv/argosfs /mnt/data",
        "through mount(8), once mount.argosfs links to argosfs-mount",
    ),
    ("umount /mnt/data", "unmount: everything is committed first"),
];

/// Exit status of argosfs-mount.
pub const EXIT_STATUS: &[ExitStatus] = &[
    (
        exit::OK,
        "the volume is mounted (with -f: it was served and unmounted cleanly)",
    ),
    (
        exit::FAIL,
        "mounting or serving failed; the message on stderr says why",
    ),
    (exit::USAGE, "the command line or a mount option is wrong"),
];

/// Mount an ArgosFS volume.
#[derive(Debug, Parser)]
#[command(name = "argosfs-mount", version)]
#[command(long_about = "Mount an ArgosFS volume over FUSE.

Without -f the program starts the file system server in the background and exits 0 only \
once the mount is live; the server then logs to syslog (the journal) as argosfs-mount. With \
-f it serves in the foreground and logs to stderr. SIGTERM, SIGINT, SIGHUP or umount(8) \
commit everything and end it.

Called through a link named mount.argosfs (ln -s $(command -v argosfs-mount) \
/sbin/mount.argosfs), it is the mount(8) helper for file system type argosfs and takes \
mount(8)'s helper arguments: mount.argosfs ROOT MOUNTPOINT [-sfnvrw] [-o OPTIONS]. That \
makes fstab lines and systemd .mount units with type argosfs work.

The mount shows as file system type fuse.argosfs (in df -T, findmnt and /proc/mounts), \
with ROOT, or the name given with -o fsname=, as its source.")]
#[command(after_help = super::help_epilogue(EXAMPLES, EXIT_STATUS))]
pub struct MountArgs {
    /// Volume root directory.
    pub root: PathBuf,
    /// Where to mount it (an existing directory).
    pub mountpoint: PathBuf,
    /// Mount options, comma separated: ro, rw, allow_other, allow_root, dev, nodev, suid,
    /// nosuid, exec, noexec, atime, noatime, sync, async, dirsync, passphrase_file=PATH,
    /// commit_interval=SECONDS, threads=N, fsname=NAME, min_shards=N, metrics=ADDR:PORT
    /// (serve Prometheus metrics at http://ADDR:PORT/metrics), cache_size=SIZE (RAM cache
    /// of decoded stripes, default 64M, 0 turns it off), l2_cache=PATH (a persistent cache
    /// of stored stripes in directory PATH, e.g. on an SSD), l2_cache_size=SIZE (its bound,
    /// default 1G); SIZE in bytes or with a K, M, G or T suffix (powers of 1024);
    /// direct_io (O_DIRECT shard I/O on the disks; not FUSE's direct_io), io_uring (shard
    /// I/O through io_uring, a stripe's shards in one submission); fstab-only words
    /// (defaults, auto, noauto, nofail, user, _netdev, x-*) are accepted and ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Stay in the foreground (logs to stderr).
    #[arg(short, long)]
    pub foreground: bool,
    /// Read the passphrase of an encrypted volume from standard input (one line).
    #[arg(long, hide = true)]
    pub passphrase_stdin: bool,
    /// Print READY on stdout once the mount is live, then detach stdio (used by the
    /// background launcher).
    #[arg(long, hide = true)]
    pub notify_ready: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Mount options after parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct MountSettings {
    /// Open read-only.
    pub read_only: bool,
    /// Let other users in (allow_other) or root (allow_root).
    pub acl: SessionACL,
    /// Kernel mount flags and names passed to fuser.
    pub kernel: Vec<MountOption>,
    /// Passphrase file for an encrypted volume.
    pub passphrase_file: Option<PathBuf>,
    /// Seconds between background commits.
    pub commit_interval: Duration,
    /// FUSE worker threads.
    pub threads: usize,
    /// Name shown as the mount source.
    pub fsname: Option<String>,
    /// Fewest shards a new stripe is written with while disks are missing (overrides
    /// the superblock's for this mount).
    pub min_shards: Option<u8>,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// Shard I/O on the disks: direct I/O, io_uring (never FUSE's own direct_io, which
    /// is not passed to the kernel).
    pub store_io: crate::store::IoMode,
    /// Bytes of the RAM cache of decoded stripes (`cache_size=`; None: the default).
    pub cache_bytes: Option<usize>,
    /// The L2 cache directory (`l2_cache=`).
    pub l2_cache: Option<PathBuf>,
    /// The L2 cache's bound (`l2_cache_size=`; None: the default; 0: no L2 cache).
    pub l2_cache_bytes: Option<u64>,
    /// The options as given, minus the passphrase file (for re-execution).
    pub passthrough: Vec<String>,
}

/// Parses `-o` option lists.
pub fn parse_options(lists: &[String]) -> Result<MountSettings, String> {
    let mut s = MountSettings {
        read_only: false,
        acl: SessionACL::Owner,
        kernel: Vec::new(),
        passphrase_file: None,
        commit_interval: Duration::from_secs(5),
        threads: 4,
        fsname: None,
        min_shards: None,
        metrics: None,
        store_io: crate::store::IoMode::default(),
        cache_bytes: None,
        l2_cache: None,
        l2_cache_bytes: None,
        passthrough: Vec::new(),
    };
    for option in lists
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|o| !o.is_empty())
    {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        if key != "passphrase_file" {
            s.passthrough.push(option.to_string());
        }
        let flag = |o: MountOption| Some(o);
        let kernel = match (key, value) {
            ("ro", None) => {
                s.read_only = true;
                flag(MountOption::RO)
            }
            ("rw", None) => {
                s.read_only = false;
                None
            }
            ("allow_other", None) => {
                s.acl = SessionACL::All;
                None
            }
            ("allow_root", None) => {
                s.acl = SessionACL::RootAndOwner;
                None
            }
            ("default_permissions", None) => None, // always on
            ("dev", None) => flag(MountOption::Dev),
            ("nodev", None) => flag(MountOption::NoDev),
            ("suid", None) => flag(MountOption::Suid),
            ("nosuid", None) => flag(MountOption::NoSuid),
            ("exec", None) => flag(MountOption::Exec),
            ("noexec", None) => flag(MountOption::NoExec),
            ("atime", None) => flag(MountOption::Atime),
            ("noatime", None) => flag(MountOption::NoAtime),
            ("sync", None) => flag(MountOption::Sync),
            ("async", None) => flag(MountOption::Async),
            ("dirsync", None) => flag(MountOption::DirSync),
            ("relatime" | "strictatime" | "nodiratime" | "lazytime", None) => None,
            ("defaults" | "auto" | "noauto" | "nofail" | "user" | "nouser" | "users", None) => None,
            ("_netdev", None) => None,
            (k, _) if k.starts_with("x-") || k.starts_with("comment=") => None,
            ("passphrase_file", Some(path)) if !path.is_empty() => {
                s.passphrase_file = Some(PathBuf::from(path));
                None
            }
            ("commit_interval", Some(v)) => {
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or_else(|| format!("commit_interval={v}: give seconds from 1 to 3600"))?;
                s.commit_interval = Duration::from_secs(secs);
                None
            }
            ("threads", Some(v)) => {
                s.threads = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("threads={v}: give a number from 1 to 64"))?;
                None
            }
            ("fsname", Some(v)) if !v.is_empty() => {
                s.fsname = Some(v.to_string());
                None
            }
            ("min_shards", Some(v)) => {
                // The range against the layout is checked when the volume opens.
                s.min_shards =
                    Some(v.parse().map_err(|_| {
                        format!("min_shards={v}: give a number of shards (K to K+M)")
                    })?);
                None
            }
            ("metrics", Some(v)) => {
                s.metrics = Some(v.parse().map_err(|_| {
                    format!("metrics={v}: give an address and port, e.g. 127.0.0.1:9717")
                })?);
                None
            }
            // Shard I/O of the disks below, never FUSE's direct_io (page cache off for
            // the mount's own files): nothing of it goes to the kernel's mount options.
            ("direct_io", None) => {
                s.store_io.is_direct = true;
                None
            }
            ("io_uring", None) => {
                s.store_io.is_uring = true;
                None
            }
            ("cache_size", Some(v)) => {
                let bytes = parse_size("cache_size", v)?;
                let ram = physical_memory_bytes();
                if ram.is_some_and(|ram| bytes >= ram) {
                    return Err(format!(
                        "cache_size={v}: more than the machine's memory ({} MiB); give less",
                        ram.unwrap_or(0) >> 20
                    ));
                }
                s.cache_bytes = Some(usize::try_from(bytes).map_err(|_| {
                    format!("cache_size={v}: too large for this machine's address space")
                })?);
                None
            }
            ("l2_cache", Some(path)) if !path.is_empty() => {
                s.l2_cache = Some(PathBuf::from(path));
                None
            }
            ("l2_cache", Some(_)) => {
                return Err("l2_cache=: give the path of a directory for the L2 cache".into());
            }
            ("l2_cache_size", Some(v)) => {
                s.l2_cache_bytes = Some(parse_size("l2_cache_size", v)?);
                None
            }
            _ => return Err(format!("unknown mount option {option:?}")),
        };
        if let Some(k) = kernel {
            s.kernel.push(k);
        }
    }
    if s.l2_cache_bytes.is_some() && s.l2_cache.is_none() {
        return Err("l2_cache_size= needs l2_cache=PATH, the directory of the L2 cache".into());
    }
    Ok(s)
}

impl MountSettings {
    /// The L2 cache to open, if any (`l2_cache_size=0` turns it off).
    pub fn l2_options(&self) -> Option<crate::cache::l2::L2Options> {
        let capacity_bytes = self
            .l2_cache_bytes
            .unwrap_or(crate::cache::l2::DEFAULT_CAPACITY_BYTES);
        let path = self.l2_cache.clone()?;
        (capacity_bytes > 0).then_some(crate::cache::l2::L2Options {
            path,
            capacity_bytes,
        })
    }
}

/// Parses a size option's value (bytes, or K, M, G, T suffixes as `cli::parse_size`).
fn parse_size(option: &str, value: &str) -> Result<u64, String> {
    super::parse_size(value).map_err(|e| format!("{option}={value}: {e}"))
}

/// Bytes of RAM of this machine, if the system says.
fn physical_memory_bytes() -> Option<u64> {
    let pages = nix::unistd::sysconf(nix::unistd::SysconfVar::_PHYS_PAGES).ok()??;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    u64::try_from(pages)
        .ok()?
        .checked_mul(u64::try_from(page).ok()?)
}

/// Entry point of argosfs-mount. Called through a link named `mount.argosfs` (as
/// mount(8) does for `-t argosfs`), it takes mount(8)'s helper arguments instead.
pub fn main() -> ExitCode {
    let invoked_as = std::env::args_os().next().unwrap_or_default();
    let name = Path::new(&invoked_as).file_name().unwrap_or_default();
    if name == "mount.argosfs" {
        return helper_main();
    }
    run(MountArgs::parse())
}

/// How the background server is started again: this program's arguments come after
/// these (`["mount"]` when this program is the `argosfs` front command).
pub(crate) type ReexecPrefix = &'static [&'static str];

/// The mount(8) helper, called as
/// `mount.argosfs SPEC DIR [-sfnv] [-o OPTIONS]`.
pub fn helper_main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut fake = false;
    let mut verbose = 0;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-o") => match args.next() {
                Some(o) => options.push(o.to_string_lossy().into_owned()),
                None => {
                    eprintln!("mount.argosfs: -o needs a value");
                    return ExitCode::from(exit::USAGE);
                }
            },
            Some(flags) if flags.starts_with('-') && flags.len() > 1 => {
                for c in flags[1..].chars() {
                    match c {
                        'f' => fake = true,
                        'v' => verbose += 1,
                        's' | 'n' | 'r' | 'w' => {}
                        _ => {
                            eprintln!("mount.argosfs: unknown flag -{c}");
                            return ExitCode::from(exit::USAGE);
                        }
                    }
                }
                if flags.contains('r') {
                    options.push("ro".into());
                }
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [root, mountpoint] = <[PathBuf; 2]>::try_from(positional).unwrap_or_else(|_| {
        eprintln!("usage: mount.argosfs ROOT MOUNTPOINT [-o OPTIONS]");
        std::process::exit(i32::from(exit::USAGE));
    });
    if fake {
        return ExitCode::from(exit::OK);
    }
    run(MountArgs {
        root,
        mountpoint,
        options,
        foreground: false,
        passphrase_stdin: false,
        notify_ready: false,
        common: CommonArgs {
            verbose,
            quiet: false,
            json: false,
        },
    })
}

/// Runs argosfs-mount with parsed arguments.
pub fn run(args: MountArgs) -> ExitCode {
    run_as(args, &[])
}

/// Runs `argosfs mount` with parsed arguments.
pub(crate) fn run_as(args: MountArgs, reexec_prefix: ReexecPrefix) -> ExitCode {
    init_logging(&args.common, "info");
    let settings = match parse_options(&args.options) {
        Ok(s) => s,
        Err(e) => {
            report_error(
                "argosfs-mount",
                &anyhow::anyhow!("{e} (see -o in argosfs-mount --help)"),
            );
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = if args.foreground {
        serve(&args, &settings).map(|()| None)
    } else {
        launch_background(&args, &settings, reexec_prefix).map(Some)
    };
    match result {
        Ok(server_pid) => {
            if args.common.json
                && let Some(pid) = server_pid
            {
                super::print_json(&serde_json::json!({
                    "schema": 1,
                    "root": super::json_path(&args.root),
                    "mountpoint": super::json_path(&args.mountpoint),
                    "read_only": settings.read_only,
                    "pid": pid,
                }));
            }
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            report_error("argosfs-mount", &e);
            ExitCode::from(exit::FAIL)
        }
    }
}

/// The passphrase, if the volume needs one.
fn passphrase_for(args: &MountArgs, settings: &MountSettings) -> anyhow::Result<Option<Vec<u8>>> {
    let sb = Superblock::load(&args.root)
        .with_context(|| format!("reading the volume at {}", args.root.display()))?;
    if sb.encryption.is_none() {
        return Ok(None);
    }
    if args.passphrase_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\n', '\r']);
        anyhow::ensure!(!line.is_empty(), "empty passphrase on standard input");
        return Ok(Some(line.as_bytes().to_vec()));
    }
    read_passphrase(
        settings.passphrase_file.as_deref(),
        "-o passphrase_file=FILE",
        false,
    )
    .map(Some)
}

fn check_mountpoint(path: &Path) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("mount point {}", path.display()))?;
    if !meta.is_dir() {
        bail!("mount point {} is not a directory", path.display());
    }
    Ok(())
}

/// Starts `self -f --notify-ready` in the background and waits until it reports the mount
/// live (its process id) or fails (its error on our stderr, exit 1). The server is named
/// argosfs-mount (argv[0]) whichever program started it, so its syslog lines are too;
/// `@argosfs-mount` when this program was started as `@...`: systemd spares processes so
/// named when it leaves the initrd or shuts down, as a root file system needs.
fn launch_background(
    args: &MountArgs,
    settings: &MountSettings,
    reexec_prefix: ReexecPrefix,
) -> anyhow::Result<u32> {
    check_mountpoint(&args.mountpoint)?;
    let passphrase = passphrase_for(args, settings)?;
    let exe = std::env::current_exe().context("finding this program to start the server")?;
    let is_root_storage = std::env::args_os()
        .next()
        .is_some_and(|a| a.as_encoded_bytes().starts_with(b"@"));
    let mut command = Command::new(exe);
    command
        .arg0(if is_root_storage {
            "@argosfs-mount"
        } else {
            "argosfs-mount"
        })
        .args(reexec_prefix)
        .arg(&args.root)
        .arg(&args.mountpoint)
        .arg("--foreground")
        .arg("--notify-ready");
    if !settings.passthrough.is_empty() {
        command.arg("-o").arg(settings.passthrough.join(","));
    }
    for _ in 0..args.common.verbose {
        command.arg("-v");
    }
    if args.common.quiet {
        command.arg("-q");
    }
    if passphrase.is_some() {
        command.arg("--passphrase-stdin");
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let program = "argosfs-mount";
    let mut child = command.spawn().context("starting the mount daemon")?;
    if let Some(mut stdin) = child.stdin.take()
        && let Some(p) = &passphrase
    {
        stdin.write_all(p)?;
        stdin.write_all(b"\n")?;
    }
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() == "READY" {
        tracing::debug!(program, pid = child.id(), "mount daemon ready");
        return Ok(child.id());
    }
    let status = child.wait()?;
    let text = errors.join().unwrap_or_default();
    let text = text.trim();
    let message = text
        .strip_prefix("argosfs-mount: error: ")
        .unwrap_or(text)
        .to_string();
    if message.is_empty() {
        bail!("the mount daemon exited ({status}) before the mount was live");
    }
    bail!("{message}")
}

/// Mounts and serves until unmounted or signalled.
fn serve(args: &MountArgs, settings: &MountSettings) -> anyhow::Result<()> {
    check_mountpoint(&args.mountpoint)?;
    let passphrase = passphrase_for(args, settings)?;
    let options = OpenOptions {
        passphrase,
        read_only: settings.read_only,
        min_shards: settings.min_shards,
        store_io: settings.store_io,
        cache_bytes: settings.cache_bytes,
        l2: settings.l2_options(),
        ..OpenOptions::default()
    };
    // Signals are taken by one thread with sigwait; block them before any thread starts
    // (opening the volume starts the shard I/O pool).
    let signals = shutdown_signals();
    signals.thread_block().context("blocking signals")?;
    let vol = Volume::open(&args.root, options).map_err(|e| match e {
        crate::Error::Locked { root } => anyhow::anyhow!(
            "volume {} is already mounted or in use; unmount it first, or wait for the other tool to finish ({} is held)",
            root.display(),
            root.join(crate::volume::LOCK_FILE).display()
        ),
        e => {
            anyhow::Error::new(e).context(format!("opening the volume at {}", args.root.display()))
        }
    })?;
    for (disk, why) in vol.unavailable_disks() {
        tracing::warn!(%disk, why, "disk unavailable; serving degraded");
    }
    let vol = Arc::new(vol);
    vol.enable_write_behind();

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(
            settings
                .fsname
                .clone()
                .unwrap_or_else(|| crate::cli::display_path(&args.root).display().to_string()),
        ),
        // The type then reads fuse.argosfs (df -T, findmnt, /proc/mounts). fuser 0.18
        // hands MountOption::Subtype only to fusermount and drops it on its direct
        // mount(2) path, the one root takes; as a kernel option the kernel's fuse takes
        // it itself. fusermount3 (fuser's fallback when mount(2) is refused) reads
        // subtype= too and mounts type fuse.argosfs; that path is not tested here.
        MountOption::CUSTOM(format!("subtype={FS_SUBTYPE}")),
        MountOption::DefaultPermissions,
    ];
    config.mount_options.extend(settings.kernel.iter().cloned());
    config.acl = settings.acl;
    config.n_threads = Some(settings.threads);
    // One /dev/fuse descriptor per worker: the kernel hands each request to one thread
    // instead of waking them all on a shared descriptor.
    config.clone_fd = true;

    let ops = Arc::new(crate::posix::ops::OpCounters::default());
    let mut session = Session::new(
        ArgosFs::new(vol.clone(), ops.clone()),
        &args.mountpoint,
        &config,
    )
    .with_context(|| format!("mounting on {}", args.mountpoint.display()))?;
    let mut unmounter = session.unmount_callable();
    raise_readahead(&args.mountpoint);
    tracing::info!(root = %args.root.display(), mountpoint = %args.mountpoint.display(), "mounted");

    let stopping = Arc::new(AtomicBool::new(false));
    let mountpoint = args.mountpoint.clone();
    let stop_flag = stopping.clone();
    std::thread::Builder::new()
        .name("argosfs-signals".into())
        .spawn(move || {
            loop {
                match signals.wait() {
                    Ok(signal) => {
                        tracing::info!(?signal, "unmounting");
                        stop_flag.store(true, Ordering::Release);
                        if let Err(e) = unmounter.unmount() {
                            tracing::error!(error = %e, mountpoint = %mountpoint.display(), "unmount failed (busy?); still serving");
                            stop_flag.store(false, Ordering::Release);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "waiting for signals failed");
                        return;
                    }
                }
            }
        })?;
    if !settings.read_only {
        let committer = Arc::downgrade(&vol);
        let interval = settings.commit_interval;
        let stop_flag = stopping.clone();
        std::thread::Builder::new()
            .name("argosfs-commit".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Acquire) {
                    std::thread::sleep(interval);
                    let Some(vol) = committer.upgrade() else {
                        return;
                    };
                    if let Err(e) = vol.commit() {
                        tracing::error!(error = %e, "periodic commit failed");
                    }
                }
            })?;
    }
    // Disk and scrub commands reach this mount through its control socket.
    let control = match crate::control::Server::start(vol.clone()) {
        Ok(server) => {
            if !settings.read_only {
                resume_scrub(&vol, &server);
            }
            Some(server)
        }
        Err(e) => {
            tracing::error!(error = %e, "no control socket: disk and scrub commands cannot reach this mount");
            None
        }
    };
    let metrics = match settings.metrics {
        Some(addr) => {
            let jobs = control.as_ref().map(|c| c.jobs());
            Some(
                crate::metrics::MetricsServer::start(addr, vol.clone(), ops.clone(), jobs)
                    .with_context(|| format!("serving metrics on {addr}"))?,
            )
        }
        None => None,
    };
    if args.notify_ready {
        println!("READY");
        std::io::stdout().flush()?;
        super::detach_stdio()?;
    }
    let served = session.run();
    stopping.store(true, Ordering::Release);
    // A background job stops after its stripe in progress; running it again continues.
    if let Some(control) = control {
        control.stop();
    }
    if let Some(metrics) = metrics {
        metrics.stop();
    }
    let closed = match Arc::try_unwrap(vol) {
        Ok(vol) => vol.close(),
        // Still shared: close's final save of the disk records is done here.
        Err(vol) => vol.commit().and_then(|()| vol.save_records()),
    };
    served.context("serving FUSE requests")?;
    closed.context("final commit")?;
    tracing::info!("unmounted cleanly");
    Ok(())
}

/// Continues a scrub run the volume's last user left interrupted (not paused), in the
/// background, as ZFS resumes a scrub after import.
fn resume_scrub(vol: &Volume, server: &crate::control::Server) {
    use crate::maint::action::Request;
    use crate::maint::scrub::ScrubOptions;
    match crate::maint::scrub::status(vol) {
        Ok(status) if status.run.as_ref().is_some_and(|run| !run.is_paused) => {
            tracing::info!("continuing the interrupted scrub run in the background");
            let request = Request::Scrub(ScrubOptions {
                is_resume: true,
                ..ScrubOptions::default()
            });
            if let crate::control::Answer::Failed(why) = server.start_job(request) {
                tracing::warn!(why, "could not continue the interrupted scrub run");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the scrub state; no scrub continued"),
    }
}

/// Lets the kernel read ahead 4 MiB instead of its 128 KiB default for FUSE: requests of
/// a whole 1 MiB stripe (the kernel's largest), about four in flight at once, one per FUSE
/// thread (measured: a cold 1 GiB read at 0.88 GB/s with 1 MiB, 1.1-1.2 GB/s with 4 MiB,
/// no better with 8 or 16 MiB). Best effort: a failure only costs speed. The device
/// number comes from /proc/self/mountinfo, because a stat of the mount point would wait
/// for this very process to answer it.
fn raise_readahead(mountpoint: &Path) {
    let Ok(target) = std::path::absolute(mountpoint) else {
        return;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let target = target.to_string_lossy();
    // Fields: id parent major:minor root mount-point ...; the newest mount comes last.
    let Some(dev) = info.lines().rev().find_map(|l| {
        let mut f = l.split(' ');
        let dev = f.nth(2)?;
        let point = f.nth(1)?;
        (point == target).then_some(dev)
    }) else {
        return;
    };
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, "4096") {
        tracing::debug!(knob, error = %e, "could not raise read-ahead");
    }
}

fn shutdown_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let s =
            parse_options(&["ro,allow_other,dev,suid,passphrase_file=/k,defaults".into()]).unwrap();
        assert!(s.read_only);
        assert_eq!(s.acl, SessionACL::All);
        assert!(s.kernel.contains(&MountOption::Dev));
        assert!(s.kernel.contains(&MountOption::Suid));
        assert_eq!(s.passphrase_file, Some(PathBuf::from("/k")));
        assert!(!s.passthrough.iter().any(|o| o.contains("passphrase")));
        assert!(parse_options(&["bogus".into()]).is_err());
        assert!(parse_options(&["threads=0".into()]).is_err());
        assert_eq!(
            parse_options(&["min_shards=5".into()]).unwrap().min_shards,
            Some(5)
        );
        assert!(parse_options(&["min_shards=five".into()]).is_err());
        // Ours, for the disks: neither reaches the kernel as FUSE's direct_io.
        let s = parse_options(&["direct_io,io_uring".into()]).unwrap();
        assert!(s.store_io.is_direct && s.store_io.is_uring);
        assert!(s.kernel.is_empty(), "{:?}", s.kernel);
        let s = parse_options(&["io_uring".into()]).unwrap();
        assert!(!s.store_io.is_direct && s.store_io.is_uring);
        assert!(parse_options(&["direct_io=1".into()]).is_err());
        let s = parse_options(&["cache_size=256M,l2_cache=/ssd/argosfs,l2_cache_size=2G".into()])
            .unwrap();
        assert_eq!(s.cache_bytes, Some(256 << 20));
        let l2 = s.l2_options().unwrap();
        assert_eq!(l2.path, PathBuf::from("/ssd/argosfs"));
        assert_eq!(l2.capacity_bytes, 2 << 30);
        assert_eq!(
            parse_options(&["cache_size=0".into()]).unwrap().cache_bytes,
            Some(0)
        );
        let l2 = parse_options(&["l2_cache=/c".into()])
            .unwrap()
            .l2_options()
            .unwrap();
        assert_eq!(l2.capacity_bytes, crate::cache::l2::DEFAULT_CAPACITY_BYTES);
        let off = parse_options(&["l2_cache=/c,l2_cache_size=0".into()]).unwrap();
        assert!(off.l2_options().is_none());
        for bad in [
            "cache_size=",
            "cache_size=12X",
            "cache_size=-1",
            "cache_size=1.5G",
            "cache_size=M",
            "cache_size=999999999T",
            "cache_size=100000T",
            "l2_cache_size=1G",
            "l2_cache=",
        ] {
            let e = parse_options(&[bad.into()]).unwrap_err();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
        let s = parse_options(&["cache_size=4096,l2_cache=/c,l2_cache_size=2T".into()]).unwrap();
        assert_eq!(s.cache_bytes, Some(4096));
        assert_eq!(s.l2_options().unwrap().capacity_bytes, 2 << 40);
        assert_eq!(
            parse_options(&["commit_interval=2".into()])
                .unwrap()
                .commit_interval,
            Duration::from_secs(2)
        );
    }
}

//! Import and export: whole directory trees between a host filesystem and a volume, with
//! every attribute a copy can keep (types, hard links, devices, all mode bits, owners,
//! nanosecond atime/mtime, xattrs of every namespace incl. POSIX ACLs, byte names and
//! symlink targets, holes).
//!
//! Owns the walk of both trees, the hole-aware copy of contents in bounded pieces and the
//! order in which metadata is replayed. Goes through the public [`Volume`] API only and
//! never touches the metadata store or the data pipeline; prints nothing (errors and
//! progress reach the caller through an [`Observer`]).
//!
//! Order per inode, chosen so no step undoes an earlier one:
//! create → contents (data regions only, so holes stay holes) → size → owner (a chown
//! clears the set-id bits and, on Linux, `security.capability`) → xattrs (ACLs included)
//! → mode (restores the set-id bits) → times. Directories get all of it after their
//! children are done, so adding entries does not move their mtime and an inherited
//! default ACL cannot leak into entries that never had it.
//!
//! The host side is walked with directory file descriptors (`openat`, `fstatat`) and
//! `O_NOATIME`, so reading a tree changes no atime except of symlinks (Linux has no way
//! to read a link without touching it; import captures the atime before reading).

pub mod export;
pub mod import;

pub use export::{ExportOptions, export};
pub use import::{ImportOptions, import};

use crate::meta::Timestamp;
use crate::types::InodeId;
use crate::volume::{Caller, Volume};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes moved per read and per write of file contents.
pub const PIECE_BYTES: usize = 1 << 20;

/// The access ACL xattr (kept verbatim; setting it also sets the group mode bits).
pub const XATTR_ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The default ACL xattr of a directory (kept verbatim).
pub const XATTR_ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// What a run has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Regular files created (hard links to them not counted).
    pub files: u64,
    /// Directories created or merged into (the top directory not counted).
    pub directories: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Character and block devices, FIFOs and sockets created.
    pub specials: u64,
    /// Extra names of an inode already copied (hard links).
    pub hard_links: u64,
    /// Bytes of file contents written (holes not counted, nor the all-zero blocks an
    /// export leaves as holes).
    pub bytes: u64,
    /// Errors reported.
    pub errors: u64,
}

impl Counts {
    /// Every name created, of any kind.
    pub fn entries(&self) -> u64 {
        self.files + self.directories + self.symlinks + self.specials + self.hard_links
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Went through the whole tree (errors, if any, were reported and skipped).
    Finished,
    /// Stopped at the first error because the run was strict.
    Stopped,
    /// Stopped because going on could not work (the volume turned read-only, a disk is
    /// full, a commit failed).
    Aborted,
}

/// The result of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// What was done.
    pub counts: Counts,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

impl Report {
    /// True when the whole tree was copied without a single error.
    pub fn is_clean(&self) -> bool {
        self.outcome == Outcome::Finished && self.counts.errors == 0
    }

    /// Names created per second (every kind counts as a file here).
    pub fn files_per_second(&self) -> f64 {
        per_second(self.counts.entries() as f64, self.elapsed)
    }

    /// Megabytes (10^6 bytes) of contents copied per second.
    pub fn mb_per_second(&self) -> f64 {
        per_second(self.counts.bytes as f64 / 1e6, self.elapsed)
    }
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 { amount / seconds } else { 0.0 }
}

/// What failed on one entry.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// A call on the host filesystem (the source of an import, the destination of an
    /// export) failed.
    #[error("{0}")]
    Host(io::Error),
    /// The volume refused or failed (boxed: the library error is large and entry
    /// errors travel through every call of a run).
    #[error("{0}")]
    Volume(Box<crate::Error>),
    /// The source changed under the copy (replaced, or shrank while being read).
    #[error("{0}")]
    Changed(&'static str),
}

/// One entry that could not be copied, whole or in part. The run goes on after it
/// unless it is strict or the error is fatal ([`ItemError::is_fatal`]).
#[derive(Debug, thiserror::Error)]
#[error("{}: {op}{}: {cause}", path.display(), xattr_suffix(.xattr))]
pub struct ItemError {
    /// The entry: a host path for the host side, the path inside the volume (starting
    /// with '/') when the volume failed during an export. Bytes; for messages only.
    pub path: PathBuf,
    /// What was being done ("open", "read", "write", "setxattr", ...).
    pub op: &'static str,
    /// The xattr concerned, for xattr operations.
    pub xattr: Option<Vec<u8>>,
    /// Why.
    pub cause: Cause,
}

fn xattr_suffix(xattr: &Option<Vec<u8>>) -> String {
    match xattr {
        Some(name) => format!(" {}", String::from_utf8_lossy(name)),
        None => String::new(),
    }
}

impl ItemError {
    fn new(path: impl Into<PathBuf>, op: &'static str, cause: Cause) -> ItemError {
        ItemError {
            path: path.into(),
            op,
            xattr: None,
            cause,
        }
    }

    /// A failed host call.
    pub fn host(
        path: impl Into<PathBuf>,
        op: &'static str,
        error: impl Into<io::Error>,
    ) -> ItemError {
        ItemError::new(path, op, Cause::Host(error.into()))
    }

    /// A failed volume call.
    pub fn volume(path: impl Into<PathBuf>, op: &'static str, error: crate::Error) -> ItemError {
        ItemError::new(path, op, Cause::Volume(Box::new(error)))
    }

    /// The same error about xattr `name`.
    pub fn on_xattr(mut self, name: &[u8]) -> ItemError {
        self.xattr = Some(name.to_vec());
        self
    }

    /// The errno behind the error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match &self.cause {
            Cause::Host(e) => e.raw_os_error(),
            Cause::Volume(e) => Some(e.errno()),
            Cause::Changed(_) => None,
        }
    }

    /// True when the failing side is the host filesystem.
    pub fn is_host_side(&self) -> bool {
        matches!(self.cause, Cause::Host(_) | Cause::Changed(_))
    }

    /// True when every later entry would fail too, so the run stops: the volume is
    /// read-only or out of space or its metadata cannot be written; the host filesystem
    /// is full or read-only.
    pub fn is_fatal(&self) -> bool {
        match &self.cause {
            Cause::Volume(e) => matches!(
                **e,
                crate::Error::ReadOnly(_)
                    | crate::Error::NoSpace(_)
                    | crate::Error::Io { .. }
                    | crate::Error::DiskIo { .. }
            ),
            Cause::Host(e) => matches!(
                e.raw_os_error(),
                Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EMFILE | libc::ENFILE)
            ),
            Cause::Changed(_) => false,
        }
    }
}

/// A failure that keeps a run from starting or finishing.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The host tree cannot be opened or created.
    #[error("{}: {source}", path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The host path is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The host path.
        path: PathBuf,
    },
    /// Export into a directory that already holds entries, without `force`.
    #[error("{} is not empty (use --force to write into it)", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// A path inside the volume is malformed.
    #[error("{0:?}: a path inside the volume may not contain '..' or NUL")]
    BadVolumePath(String),
    /// A directory inside the volume cannot be found or made.
    #[error("{path} in the volume: {source}")]
    Volume {
        /// The path inside the volume (lossy, for the message).
        path: String,
        /// What the volume said.
        #[source]
        source: crate::Error,
    },
    /// The final commit failed: the last changes are not durable.
    #[error("committing the volume: {0}")]
    Commit(#[source] crate::Error),
}

/// Receives what happens during a run.
pub trait Observer {
    /// An entry failed (already counted in [`Counts::errors`]).
    fn on_error(&mut self, error: &ItemError);
    /// Something was copied; called often, so implementations should throttle output.
    fn on_progress(&mut self, counts: &Counts) {
        let _ = counts;
    }
}

/// What one import or export run has counted and reported so far, and whether it goes
/// on: the part of the two walkers that is the same.
struct Tally<'a> {
    observer: &'a mut dyn Observer,
    counts: Counts,
    outcome: Outcome,
    is_strict: bool,
}

impl<'a> Tally<'a> {
    fn new(observer: &'a mut dyn Observer, is_strict: bool) -> Tally<'a> {
        Tally {
            observer,
            counts: Counts::default(),
            outcome: Outcome::Finished,
            is_strict,
        }
    }

    /// Whether the run still goes on.
    fn is_going(&self) -> bool {
        self.outcome == Outcome::Finished
    }

    /// Reports the counts so far.
    fn progress(&mut self) {
        self.observer.on_progress(&self.counts);
    }

    /// Counts and reports a failed entry, and decides whether the run goes on: a fatal
    /// error aborts it; under `--strict` any error stops it.
    fn fail(&mut self, error: ItemError) {
        self.counts.errors += 1;
        self.observer.on_error(&error);
        if error.is_fatal() {
            self.outcome = Outcome::Aborted;
        } else if self.is_strict && self.outcome == Outcome::Finished {
            self.outcome = Outcome::Stopped;
        }
    }

    /// [`Tally::fail`] for an error, nothing for success.
    fn settle(&mut self, result: Result<(), ItemError>) {
        if let Err(e) = result {
            self.fail(e);
        }
    }
}

/// The credentials both directions use: root, with umask 0 so modes are exactly the
/// ones given.
pub fn caller() -> Caller {
    Caller {
        umask: 0,
        ..Caller::root()
    }
}

/// The components of a '/'-separated path inside the volume ("", "." skipped).
pub fn volume_path_components(path: &[u8]) -> Result<Vec<&[u8]>, TransferError> {
    let lossy = || String::from_utf8_lossy(path).into_owned();
    if path.contains(&0) {
        return Err(TransferError::BadVolumePath(lossy()));
    }
    let mut parts = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(TransferError::BadVolumePath(lossy())),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// Looks up a directory inside the volume by path; with `create`, makes missing
/// components (mode 0755, root-owned), like `mkdir -p`.
pub fn resolve_dir(vol: &Volume, path: &[u8], create: bool) -> Result<InodeId, TransferError> {
    let caller = caller();
    let mut ino = InodeId::ROOT;
    let failed = |source| TransferError::Volume {
        path: String::from_utf8_lossy(path).into_owned(),
        source,
    };
    for part in volume_path_components(path)? {
        ino = match vol.lookup(&caller, ino, part) {
            Ok(attr) if attr.kind == crate::meta::FileKind::Directory => attr.ino,
            Ok(_) => return Err(failed(crate::Error::NotDir)),
            Err(crate::Error::NotFound) if create => {
                vol.mkdir(&caller, ino, part, 0o755).map_err(failed)?.ino
            }
            Err(e) => return Err(failed(e)),
        };
    }
    Ok(ino)
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

/// True when every byte is zero.
fn is_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    words
        .by_ref()
        .all(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8")) == 0)
        && words.remainder().iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_split_on_slashes_and_refuse_dotdot() {
        assert!(volume_path_components(b"/").unwrap().is_empty());
        assert_eq!(
            volume_path_components(b"//a/./b\xff/").unwrap(),
            vec![&b"a"[..], &b"b\xff"[..]]
        );
        assert!(volume_path_components(b"/a/../b").is_err());
        assert!(volume_path_components(b"a\0b").is_err());
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 4099]));
        let mut v = vec![0u8; 4099];
        v[4098] = 1;
        assert!(!is_zero(&v));
        v[4098] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    #[test]
    fn rates_are_zero_for_an_instant_run() {
        let report = Report {
            counts: Counts {
                files: 3,
                bytes: 2_000_000,
                ..Counts::default()
            },
            elapsed: Duration::from_secs(2),
            outcome: Outcome::Finished,
        };
        assert_eq!(report.files_per_second(), 1.5);
        assert_eq!(report.mb_per_second(), 1.0);
        let instant = Report {
            elapsed: Duration::ZERO,
            ..report
        };
        assert_eq!(instant.files_per_second(), 0.0);
    }
}

//! The library's one error type, and its one mapping to errno.

use crate::format::FormatError;
use crate::types::{DiskId, InodeId, StripeId};
use std::io;
use std::path::PathBuf;

/// Why the volume refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyReason {
    /// Opened read-only on request.
    Requested,
    /// A journal write or fsync failed; the on-disk state past that point is unknown,
    /// so the volume stopped writing rather than retrying.
    JournalFailed,
}

impl std::fmt::Display for ReadOnlyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Requested => f.write_str("opened read-only"),
            Self::JournalFailed => {
                f.write_str("a journal write failed; remount after checking the disks")
            }
        }
    }
}

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such file, directory or entry.
    #[error("no such entry")]
    NotFound,
    /// The name already exists.
    #[error("entry already exists")]
    Exists,
    /// A directory that must be empty is not.
    #[error("directory not empty")]
    NotEmpty,
    /// A path component or target is not a directory.
    #[error("not a directory")]
    NotDir,
    /// The operation does not apply to a directory.
    #[error("is a directory")]
    IsDir,
    /// Permission bits or ACLs deny the access.
    #[error("permission denied")]
    Access,
    /// Only the owner (or root) may do this.
    #[error("operation not permitted")]
    Perm,
    /// An argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// A name is longer than 255 bytes.
    #[error("file name too long")]
    NameTooLong,
    /// No extended attribute by that name.
    #[error("no such extended attribute")]
    NoXattr,
    /// A caller's buffer is too small, or a value too large.
    #[error("result does not fit")]
    Range,
    /// A file would grow past the largest size the volume supports.
    #[error("file too large")]
    FileTooBig,
    /// SEEK_DATA/SEEK_HOLE past the end of the file, or no data after the offset.
    #[error("no data at or after that offset")]
    NoSuchOffset,
    /// Too many hard links.
    #[error("too many links")]
    TooManyLinks,
    /// The operation is not supported by ArgosFS.
    #[error("operation not supported: {0}")]
    NotSupported(&'static str),
    /// Not enough space on the disks the placement needs.
    #[error("no space left: {0}")]
    NoSpace(String),
    /// The volume does not accept writes.
    #[error("volume is read-only: {0}")]
    ReadOnly(ReadOnlyReason),
    /// Fewer than k shards of a stripe could be read and verified.
    #[error("stripe {stripe} of inode {inode}: {have} of {need} shards readable; data lost")]
    Unrecoverable {
        /// The stripe that cannot be rebuilt.
        stripe: StripeId,
        /// The file it belongs to.
        inode: InodeId,
        /// Verified shards found.
        have: u8,
        /// Shards needed (k).
        need: u8,
    },
    /// Decryption or an end-to-end checksum failed: the bytes are not what was written.
    #[error("stripe {stripe} of inode {inode}: integrity check failed ({detail})")]
    Integrity {
        /// The stripe that failed.
        stripe: StripeId,
        /// The file it belongs to.
        inode: InodeId,
        /// What failed.
        detail: &'static str,
    },
    /// Too few disks can take a shard for a new stripe to keep `min_shards` of them.
    #[error(
        "writes need {need} writable disks in distinct failure domains, only {have} can take a shard ({why})"
    )]
    TooFewDisks {
        /// The volume's `min_shards`.
        need: usize,
        /// Disks that could take a shard.
        have: usize,
        /// Which disks cannot, and why.
        why: String,
    },
    /// The volume is encrypted and no passphrase was given.
    #[error("the volume is encrypted: a passphrase is needed")]
    PassphraseRequired,
    /// The passphrase does not match the volume's key-check value.
    #[error("wrong passphrase for this volume")]
    WrongPassphrase,
    /// Another process holds the volume (mounted or being checked).
    #[error("volume {root} is in use (mounted, or another tool holds its lock)")]
    Locked {
        /// The volume root.
        root: PathBuf,
    },
    /// mkfs found an existing volume and `--force` was not given.
    #[error("{path} already holds an ArgosFS volume or disk (use --force to overwrite)")]
    AlreadyFormatted {
        /// The root or disk directory.
        path: PathBuf,
    },
    /// A disk's label does not belong to this volume or is unreadable.
    #[error("disk {disk} at {path}: {why}")]
    BadDisk {
        /// The disk id from the superblock.
        disk: DiskId,
        /// Where it was looked for.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The volume was made by an earlier build in a format this one no longer opens.
    #[error("{path}: made by an earlier ArgosFS (format version {found}): {why}")]
    OldFormat {
        /// The superblock.
        path: PathBuf,
        /// The format version found.
        found: u32,
        /// Why it is refused and what to do.
        why: &'static str,
    },
    /// The volume configuration asked for is impossible.
    #[error("invalid volume configuration: {0}")]
    Config(String),
    /// Bytes on disk failed to decode or verify.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The scrub state file does not decode (damaged, or written by a newer build).
    #[error(
        "scrub state {path} cannot be used: {source}; delete it to go on (that only forgets when each stripe was last verified, and any unfinished scrub run)"
    )]
    ScrubState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },
    /// A file of the volume (metadata, superblock, lock) could not be read or written.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A disk operation failed.
    #[error("I/O on disk {disk}: {source}")]
    DiskIo {
        /// The disk.
        disk: DiskId,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error on a volume file.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The errno a POSIX caller should see. This is the only errno mapping.
    pub fn errno(&self) -> i32 {
        use libc::*;
        match self {
            Error::NotFound => ENOENT,
            Error::Exists => EEXIST,
            Error::NotEmpty => ENOTEMPTY,
            Error::NotDir => ENOTDIR,
            Error::IsDir => EISDIR,
            Error::Access => EACCES,
            Error::Perm => EPERM,
            Error::Invalid(_) | Error::Config(_) | Error::OldFormat { .. } => EINVAL,
            Error::NameTooLong => ENAMETOOLONG,
            Error::NoXattr => ENODATA,
            Error::Range => ERANGE,
            Error::FileTooBig => EFBIG,
            Error::TooManyLinks => EMLINK,
            Error::NoSuchOffset => ENXIO,
            Error::NotSupported(_) => EOPNOTSUPP,
            Error::NoSpace(_) => ENOSPC,
            Error::ReadOnly(_) => EROFS,
            Error::Locked { .. } => EBUSY,
            Error::PassphraseRequired | Error::WrongPassphrase => EACCES,
            Error::AlreadyFormatted { .. } => EEXIST,
            Error::Io { source, .. } | Error::DiskIo { source, .. } => {
                match source.raw_os_error() {
                    Some(ENOSPC) | Some(EDQUOT) => ENOSPC,
                    _ => EIO,
                }
            }
            Error::Unrecoverable { .. }
            | Error::TooFewDisks { .. }
            | Error::Integrity { .. }
            | Error::BadDisk { .. }
            | Error::ScrubState { .. }
            | Error::Format(_) => EIO,
        }
    }

    /// The same error again, for a second caller it fails (one failed stripe write of
    /// many files' data): its kind and errno kept, I/O details as text.
    pub fn share(&self) -> Error {
        match self {
            Error::NoSpace(why) => Error::NoSpace(why.clone()),
            Error::ReadOnly(reason) => Error::ReadOnly(*reason),
            Error::TooFewDisks { need, have, why } => Error::TooFewDisks {
                need: *need,
                have: *have,
                why: why.clone(),
            },
            other => Error::Io {
                path: PathBuf::new(),
                source: std::io::Error::new(
                    std::io::Error::from_raw_os_error(other.errno()).kind(),
                    other.to_string(),
                ),
            },
        }
    }

    /// True when the error means the disks are full.
    pub fn is_no_space(&self) -> bool {
        self.errno() == libc::ENOSPC
    }
}

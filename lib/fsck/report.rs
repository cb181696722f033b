//! What one fsck run found and did: findings, per-disk accounting, counts.
//!
//! Only errors count toward the exit status; warnings (a recent unreferenced shard kept
//! for its grace period, say) and notes are reported but leave a volume clean.

use crate::types::VolumeId;
use serde::Serialize;
use std::path::PathBuf;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something is wrong: counts toward the exit status until it is repaired.
    Error,
    /// Worth knowing, not wrong (yet): does not change the exit status.
    Warning,
    /// A note.
    Info,
}

/// What a finding is about. The JSON name is the snake_case of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A disk directory is missing, unreadable or carries a wrong label.
    DiskUnavailable,
    /// A disk's store index (checkpoint or log header) fails verification; `--repair`
    /// rebuilds it from the segments.
    StoreIndexDamaged,
    /// A snapshot slot fails verification.
    SnapshotDamaged,
    /// A snapshot slot that should exist does not.
    SnapshotMissing,
    /// The secondary snapshot plus the journal does not rebuild the primary.
    SnapshotMismatch,
    /// The journal ends in a record cut short by a crash.
    JournalTornTail,
    /// The journal is damaged: a bad record with later data after it, an unreadable
    /// header, a record that does not apply, or transactions missing.
    JournalDamaged,
    /// No usable metadata: nothing else can be checked.
    MetadataUnreadable,
    /// A directory entry names an inode that does not exist.
    DanglingEntry,
    /// An inode no directory leads to.
    UnreachableInode,
    /// An inode whose link count differs from the links that exist.
    WrongNlink,
    /// A directory whose `..` is not the directory holding its entry.
    WrongParent,
    /// A directory with more than one entry naming it, or an entry naming the root.
    DirectoryLinks,
    /// A directory inode without its entry table.
    MissingDirTable,
    /// An entry table or chunk table whose inode is missing or of the wrong kind.
    StrayTable,
    /// An inode left on the orphan list (unlinked while open when the volume went down),
    /// or a stale orphan-list entry.
    OrphanInode,
    /// Allocation marks (next inode, next stripe) below ids in use.
    AllocationMark,
    /// A stripe reference that cannot be right (width, unknown disk, used twice).
    BadStripeRef,
    /// A referenced shard is not on its disk.
    ShardMissing,
    /// A referenced shard fails its own checks (frame, checksum, unreadable).
    ShardCorrupt,
    /// A referenced shard's object belongs to another volume.
    ShardForeign,
    /// A referenced shard verifies alone but disagrees with the metadata or the stripe
    /// (header fields, length, or content).
    ShardMismatch,
    /// A referenced shard sits on a disk that is not available.
    ShardUnavailable,
    /// A stripe written degraded (disks were missing): shards never written, which
    /// heal writes; the stripe has less than its redundancy until then.
    StripeDegraded,
    /// A stripe with fewer than k good shards: data lost.
    DataLoss,
    /// A shard object that no metadata references.
    OrphanShard,
    /// An unreferenced object in the shard tree that belongs to another volume.
    ForeignObject,
    /// An unreferenced object in the shard tree that does not verify.
    UnreadableObject,
    /// A small file's packed contents point outside every pack chunk: its data is lost.
    BadPackedRef,
    /// A chunk of the pack file no small file points into any more: `--repair` drops it
    /// and frees its stripe (a mount does so at its next commit).
    UnusedPackChunk,
    /// Objects of the backing store (ROOT, metadata, disk directories, shards) that group
    /// or other may access: other local users could read file contents and metadata
    /// around the mount's permissions.
    LoosePermissions,
}

/// One thing fsck found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What it is about.
    pub kind: Kind,
    /// How bad it is.
    pub severity: Severity,
    /// Where: a disk, shard, inode, path or metadata file.
    pub object: String,
    /// What is wrong, and what was or would be done.
    pub detail: String,
    /// Whether this run repaired it.
    pub repaired: bool,
    /// Whether `--repair` (or `--remove-orphans`) can repair it.
    pub repairable: bool,
    /// Files affected (data loss), shown lossily as UTF-8.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Finding {
    /// An error that `--repair` can fix.
    pub fn error(kind: Kind, object: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            kind,
            severity: Severity::Error,
            object: object.into(),
            detail: detail.into(),
            repaired: false,
            repairable: true,
            paths: Vec::new(),
        }
    }

    /// An error that fsck cannot fix.
    pub fn unrepairable(
        kind: Kind,
        object: impl Into<String>,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            repairable: false,
            ..Finding::error(kind, object, detail)
        }
    }

    /// A warning (never counted as an error).
    pub fn warning(kind: Kind, object: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            repairable: false,
            ..Finding::error(kind, object, detail)
        }
    }

    /// True for an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Shards referenced versus present on one disk. There is no stored per-disk counter to
/// compare with: this is the accounting fsck rebuilds from the metadata and the disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskAccount {
    /// Disk id ("d3").
    pub disk: String,
    /// Its directory.
    #[serde(serialize_with = "super::serialize_path_lossy")]
    pub path: PathBuf,
    /// Whether it could be opened and its label verified.
    pub is_available: bool,
    /// Shards the live metadata places on it.
    pub referenced_shards: u64,
    /// Bytes those shard objects should take (payload plus framing).
    pub referenced_bytes: u64,
    /// Shard objects found on it.
    pub present_shards: u64,
    /// Bytes of the shard objects found.
    pub present_bytes: u64,
    /// Referenced shards not found (before any repair).
    pub missing_shards: u64,
    /// Objects found that the live metadata does not place there.
    pub unreferenced_shards: u64,
}

/// Counts of what was examined and done.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Transaction id of the live metadata.
    pub txid: u64,
    /// Inodes in the live metadata.
    pub inodes: u64,
    /// Stripes checked.
    pub stripes_checked: u64,
    /// Shard objects read and verified.
    pub shards_checked: u64,
    /// Shards rebuilt and written back.
    pub shards_rebuilt: u64,
    /// Unreferenced shard objects deleted.
    pub orphans_removed: u64,
    /// Objects moved to a disk's quarantine directory.
    pub objects_quarantined: u64,
    /// Encrypted stripes whose AEAD tag was checked (with the passphrase).
    pub stripes_authenticated: u64,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The volume root.
    #[serde(serialize_with = "super::serialize_path_lossy")]
    pub root: PathBuf,
    /// The volume UUID.
    pub volume: VolumeId,
    /// Whether repairs were allowed.
    pub is_repair: bool,
    /// Everything found, in the order found.
    pub findings: Vec<Finding>,
    /// Per-disk accounting.
    pub disks: Vec<DiskAccount>,
    /// Counts.
    pub stats: Stats,
    /// Which checks ran.
    pub checks: Checks,
}

/// Which checks a run made: an encrypted volume checked without its passphrase gets the
/// structure checks only.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// Frames and checksums of the metadata files and of every shard object, and every
    /// stripe's shards present and consistent with each other (no key needed).
    pub structure: bool,
    /// The metadata read and replayed, the directory tree, link counts, every stripe
    /// against the metadata and orphans (needs the key of an encrypted volume).
    pub tree: bool,
    /// Why the tree was not checked, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_skipped: Option<String>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            structure: true,
            tree: true,
            tree_skipped: None,
        }
    }
}

impl Report {
    /// Errors found.
    pub fn errors_found(&self) -> usize {
        self.findings.iter().filter(|f| f.is_error()).count()
    }

    /// Errors this run repaired.
    pub fn errors_corrected(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.is_error() && f.repaired)
            .count()
    }

    /// Errors still there after this run.
    pub fn errors_left(&self) -> usize {
        self.errors_found() - self.errors_corrected()
    }

    /// Warnings.
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    /// True when no error was found.
    pub fn is_clean(&self) -> bool {
        self.errors_found() == 0
    }

    pub(crate) fn push(&mut self, finding: Finding) -> usize {
        tracing::debug!(kind = ?finding.kind, object = %finding.object, detail = %finding.detail, "fsck finding");
        self.findings.push(finding);
        self.findings.len() - 1
    }
}

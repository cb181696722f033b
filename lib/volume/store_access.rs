//! Which objects of a volume's backing store must be private, and the audit
//! `Volume::open` runs over them.
//!
//! ROOT's own objects are listed here (ROOT, the superblock, the lock, the scrub state,
//! `meta/` and what it holds), each disk's by `DirDisk::audit`; the modes and the walking are
//! `store::private`'s. The audit at open stays cheap (a stat per object, none per
//! shard) and only warns, once: making the store private is fsck's job
//! (`fsck::access`), which also looks at every shard.

use super::{LOCK_FILE, META_DIR, SCRUB_STATE_FILE, Superblock};
use crate::store::{Audit, DirDisk, LoosePath};
use std::path::{Path, PathBuf};

/// Loose paths named in the warning at open.
const WARN_PATHS: usize = 5;
/// Loose paths kept for `Volume::loose_paths`: more than the objects the open-time audit
/// looks at on a volume of a few disks (about 260 per disk), a bound all the same.
const KEEP_PATHS: usize = 4096;

/// Puts ROOT's own objects into `audit`: ROOT, the superblock, the lock, the scrub
/// state (when there is one), and `meta/`
/// with what it holds directly or, with `is_deep`, everything below it.
pub fn audit_root(root: &Path, is_deep: bool, audit: &mut Audit) {
    audit.configured_dir(root);
    audit.object(&Superblock::path(root));
    audit.object(&root.join(LOCK_FILE));
    audit.object(&root.join(SCRUB_STATE_FILE));
    let meta = root.join(META_DIR);
    if is_deep {
        audit.tree(&meta);
    } else {
        audit.dir_and_entries(&meta);
    }
}

/// The audit at open over ROOT and the disk directories given: returns what group or
/// other may access, after one warning naming the first few.
pub(super) fn audit_on_open(
    root: &Path,
    disk_dirs: impl IntoIterator<Item = PathBuf>,
) -> Vec<LoosePath> {
    let mut audit = Audit::new(KEEP_PATHS);
    audit_root(root, false, &mut audit);
    for dir in disk_dirs {
        DirDisk::audit(&dir, &mut audit);
    }
    for failure in &audit.failures {
        // Only a check: whatever stops it here, fsck meets and reports.
        tracing::debug!(error = %failure, "cannot check the permissions of a store object");
    }
    if audit.loose_count > 0 {
        let first: Vec<String> = audit
            .loose
            .iter()
            .take(WARN_PATHS)
            .map(ToString::to_string)
            .collect();
        tracing::warn!(
            count = audit.loose_count,
            paths = %first.join(", "),
            "the backing store is open to other users (group or other permission bits), who can read file contents and metadata around the mount's permissions; run argosfs-fsck --repair to make it private"
        );
    }
    audit.loose
}

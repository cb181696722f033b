//! Access: the backing store must be private (directories 0700, files 0600), or other
//! local users read file contents and metadata straight from it, around the mount's
//! permissions.
//!
//! Looks at everything fsck may touch: ROOT's objects and everything below `meta/`, and
//! on each disk whose label checks out, the disk directory, its label and everything
//! below `store/` and `argosfs-quarantine/` (a disk that is not this volume's is left
//! alone). One finding per area, ROOT or a disk, naming the first few paths with their
//! modes and counting the rest, so a store loosened by hand does not flood the report. A repair clears the group and other bits as it
//! walks and keeps the owner's. It depends on nothing else fsck checks, so it runs first,
//! whether or not the metadata can be read.

use super::Options;
use super::report::{Finding, Kind, Report};
use super::shards::{DiskHandle, QUARANTINE_DIR};
use crate::store::{Audit, DirDisk};
use std::path::Path;

/// Paths named in a finding; the rest are counted.
const LISTED_PATHS: usize = 8;

/// Checks (with `options.repair`, fixes) the permissions of the store: ROOT and each
/// disk of `disks` that opened.
pub fn check(root: &Path, disks: &[DiskHandle], options: &Options, report: &mut Report) {
    let new_audit = || {
        if options.repair {
            Audit::fixing(LISTED_PATHS)
        } else {
            Audit::new(LISTED_PATHS)
        }
    };
    let mut audit = new_audit();
    crate::volume::audit_root(root, true, &mut audit);
    let root_object = format!("ROOT ({})", root.display());
    conclude(root_object, &audit, options.repair, report);
    for handle in disks.iter().filter(|h| h.disk.is_some()) {
        let mut audit = new_audit();
        DirDisk::audit(&handle.path, &mut audit);
        audit.tree(&handle.path.join(QUARANTINE_DIR));
        let object = format!("disk {} ({})", handle.config.id, handle.path.display());
        conclude(object, &audit, options.repair, report);
    }
}

/// Turns one area's audit into findings: an error for what is loose (repaired when all
/// of it was fixed), a warning for what could not be examined or fixed.
fn conclude(object: String, audit: &Audit, is_repair: bool, report: &mut Report) {
    if audit.loose_count > 0 {
        let mut detail = format!(
            "{} {} group- or other-accessible, so other local users can read file contents and metadata: {}",
            audit.loose_count,
            if audit.loose_count == 1 {
                "object is"
            } else {
                "objects are"
            },
            listing(
                audit.loose.iter().map(ToString::to_string),
                audit.loose_count
            ),
        );
        let mut finding = Finding::error(Kind::LoosePermissions, object.clone(), String::new());
        if !is_repair {
            detail.push_str("; repair clears their group and other bits");
        } else if audit.is_all_fixed() {
            detail.push_str(" (done: group and other bits cleared)");
            finding.repaired = true;
        } else {
            detail.push_str(&format!(
                "; only {} of them made private",
                audit.fixed_count
            ));
        }
        finding.detail = detail;
        report.push(finding);
    }
    if audit.failure_count > 0 {
        report.push(Finding::warning(
            Kind::LoosePermissions,
            object,
            format!(
                "permissions could not be checked or fixed: {}",
                listing(
                    audit.failures.iter().map(ToString::to_string),
                    audit.failure_count
                ),
            ),
        ));
    }
}

/// The items listed, then how many more there are.
fn listing(items: impl Iterator<Item = String>, count: u64) -> String {
    let listed: Vec<String> = items.collect();
    let mut text = listed.join(", ");
    let more = count.saturating_sub(listed.len() as u64);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

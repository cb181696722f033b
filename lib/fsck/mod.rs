//! fsck: offline check and repair of a volume that is not mounted.
//!
//! Works on the layers below the Volume, never through it: the superblock, the disk
//! labels, the metadata files (`meta_check`), the inode graph (`graph`) and the shard
//! objects (`shards`). It holds the volume lock for the whole run (shared when it only
//! reads, exclusive when it may write), so a mount and fsck never overlap.
//!
//! A check-only run changes nothing: it reads the metadata with `Journal::scan` and
//! `snapshot::read_snapshot` and the disks with `Disk::list_shards`/`get_shard`. A repair
//! run fixes, in this order, each step durable before the next one starts:
//! 1. the metadata files: a journal that cannot continue (a damaged record with data
//!    after it, an unreadable header, missing transactions) is saved aside and the live
//!    state rewritten into both snapshot slots with a fresh journal; a crash-torn tail is
//!    cut by opening the metadata read-write;
//! 2. the inode graph: one transaction through `MetaStore::record` + `commit`;
//! 3. a damaged, missing or disagreeing snapshot slot: `MetaStore::snapshot` writes the
//!    live state into it;
//! 4. shards: rebuilt from the survivors and written back; shards of inodes freed in
//!    step 2 deleted; with `remove_orphans`, unreferenced shards deleted (or moved to
//!    quarantine); then every touched disk synced.
//!
//! An encrypted volume seals its metadata, so reading the tree needs the passphrase
//! (`Options::passphrase`). Without it fsck checks what needs no key: the frames and
//! checksums of the metadata files and of every shard object, and that each stripe's
//! shards are all there and agree with each other ([`Checks`] says which ran); repairing
//! needs the key. Shards themselves never need it: Reed-Solomon rebuilds the sealed
//! bytes, and the payload CRC recorded in the metadata checks them.
//!
//! Before all of that, and even when the metadata cannot be read, `access` checks that
//! the backing store is private (a repair clears group and other bits).

pub mod access;
pub mod graph;
pub mod meta_check;
pub mod paths;
pub mod report;
pub mod shards;

pub use report::{Checks, DiskAccount, Finding, Kind, Report, Severity, Stats};

use crate::error::{Error, Result};
use crate::format::{FormatError, FormatErrorKind};
use crate::meta::MetaStore;
use crate::volume::{LOCK_FILE, META_DIR, Superblock};
use meta_check::MetaFix;
use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// Serializes a path as text, bytes that are not UTF-8 shown as U+FFFD (serde refuses a
/// `Path` that is not UTF-8, and the JSON output would then fail).
fn serialize_path_lossy<S: serde::Serializer>(
    path: &Path,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// Unreferenced shards younger than this are kept by default.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// What a run may do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Repair what can be repaired (otherwise nothing is written).
    pub repair: bool,
    /// Delete unreferenced shards of this volume older than `orphan_grace`, and move
    /// unreferenced foreign or unreadable objects to quarantine.
    pub remove_orphans: bool,
    /// Unreferenced objects younger than this are kept.
    pub orphan_grace: Duration,
    /// The passphrase of an encrypted volume: without it only the structure is checked.
    pub passphrase: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            repair: false,
            remove_orphans: false,
            orphan_grace: DEFAULT_ORPHAN_GRACE,
            passphrase: None,
        }
    }
}

impl Options {
    /// True when the run may write.
    pub fn is_writing(&self) -> bool {
        self.repair || self.remove_orphans
    }
}

/// Progress of the long phases (a terminal progress bar in the CLI).
pub trait Progress {
    /// A phase starts with `total` steps.
    fn phase(&self, name: &str, total: u64);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// The run is over.
    fn finish(&self) {}
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
}

/// Takes the volume lock (`ROOT/lock`, flock): exclusive to write, shared to read, with
/// the Volume's own retry of a briefly held lock; `Error::Locked` when a mount or another
/// tool holds it. A reader finding no lock file goes on without one rather than create
/// it (it changes nothing, and no mount runs without the file).
pub fn lock(root: &Path, exclusive: bool) -> Result<Option<File>> {
    if !exclusive && !root.join(LOCK_FILE).exists() {
        return Ok(None);
    }
    crate::volume::take_lock(root, exclusive).map(Some)
}

fn internal(meta_dir: &Path, why: &str) -> Error {
    Error::Format(FormatError::new(
        meta_dir.display().to_string(),
        0,
        FormatErrorKind::Body(why.to_string()),
    ))
}

/// Checks (and with `options`, repairs) the volume at `root`.
///
/// `Err` is an operational failure (no superblock, lock held, a repair write failed):
/// what was found so far is lost with it. Everything wrong with the volume itself is a
/// finding in the report.
pub fn check(root: &Path, options: &Options, progress: &dyn Progress) -> Result<Report> {
    // Absolute, so that disk paths relative to ROOT are reported as they are.
    let root = &std::path::absolute(root).map_err(|e| Error::io(root, e))?;
    let sb = Superblock::load(root)?;
    let keys = sb.keys_or_locked(options.passphrase.as_deref())?;
    if options.is_writing() && !keys.meta.can_read() {
        // Repairs write metadata, which must be sealed; and without the tree nothing
        // tells a shard in use from an orphan.
        return Err(Error::PassphraseRequired);
    }
    let _lock = lock(root, options.is_writing())?;
    let erasure = crate::data::erasure::codec_by_id(&sb.layout.codec).ok_or_else(|| {
        Error::Config(format!("erasure codec {:?} is not known", sb.layout.codec))
    })?;
    let mut report = Report {
        root: root.to_path_buf(),
        volume: sb.volume,
        is_repair: options.is_writing(),
        findings: Vec::new(),
        disks: Vec::new(),
        stats: Stats::default(),
        checks: Checks::default(),
    };
    let disks = shards::open_disks(root, &sb, options.repair, &mut report);
    access::check(root, &disks, options, &mut report);

    // Metadata files.
    let meta_dir = root.join(META_DIR);
    progress.phase("checking metadata", 1);
    let verified = meta_check::verify(&meta_dir, &keys.meta);
    let mut meta_findings = Vec::new();
    for problem in &verified.problems {
        let mut finding = if problem.fix == MetaFix::None {
            Finding::unrepairable(problem.kind, problem.object.clone(), problem.detail.clone())
        } else {
            Finding::error(problem.kind, problem.object.clone(), problem.detail.clone())
        };
        finding.detail.push_str(match problem.fix {
            MetaFix::None => "",
            MetaFix::RewriteSlot => "; repair rewrites this snapshot from the live state",
            MetaFix::CutTornTail => "; repair cuts it",
            MetaFix::ResetJournal => {
                "; repair saves the journal aside and rewrites the metadata from the live state"
            }
        });
        meta_findings.push((report.push(finding), problem.fix));
    }
    progress.advance(1);
    if !verified.contents_checked {
        report.checks.tree = false;
        report.checks.tree_skipped = Some(
            "the volume is encrypted and no passphrase was given: metadata contents, the directory tree and stripe references were not checked".into(),
        );
        let mut check = shards::ShardCheck::new(
            &sb,
            erasure.as_ref(),
            &disks,
            options,
            progress,
            &mut report,
        );
        check.check_structure(&mut report);
        progress.finish();
        return Ok(report);
    }
    let Some(live) = verified.live.clone() else {
        progress.finish();
        return Ok(report);
    };
    report.stats.txid = live.txid;
    report.stats.inodes = live.inodes.len() as u64;

    let mut store = None;
    if options.repair {
        if verified.needs_reset() {
            let saved = meta_check::reset(&meta_dir, &keys.meta, &live, verified.primary)?;
            for (idx, _) in &meta_findings {
                let f = &mut report.findings[*idx];
                if f.repairable {
                    f.repaired = true;
                    f.detail.push_str(&format!(
                        " (done; old journal saved as {})",
                        saved.display()
                    ));
                }
            }
        }
        let (meta, _) = MetaStore::open(&meta_dir, keys.meta.clone(), true)?;
        if meta.table() != &live {
            return Err(internal(
                &meta_dir,
                "the metadata store loaded another state than fsck verified; nothing was repaired",
            ));
        }
        for (idx, fix) in &meta_findings {
            if *fix == MetaFix::CutTornTail {
                report.findings[*idx].repaired = true;
            }
        }
        store = Some(meta);
    }

    // The inode graph.
    progress.phase("checking the directory tree", 1);
    let plan = graph::plan(&live, sb.layout.stripe_bytes);
    let graph_findings: Vec<usize> = plan
        .issues
        .iter()
        .map(|issue| report.push(issue.finding.clone()))
        .collect();
    let mut frees = Vec::new();
    if let Some(meta) = &mut store {
        for issue in &plan.issues {
            for op in &issue.ops {
                meta.record(op.clone())?;
            }
        }
        meta.commit()?;
        let mut expected = plan.table.clone();
        expected.txid = meta.table().txid;
        if meta.table() != &expected {
            return Err(internal(
                &meta_dir,
                "the recorded repairs did not produce the planned tree",
            ));
        }
        for (issue, idx) in plan.issues.iter().zip(&graph_findings) {
            if issue.finding.repairable {
                report.findings[*idx].repaired = true;
                frees.extend(issue.frees.iter().cloned());
            }
        }
        if verified.needs_slot_rewrite() && !verified.needs_reset() {
            meta.snapshot()?;
            for (idx, fix) in &meta_findings {
                if *fix == MetaFix::RewriteSlot {
                    report.findings[*idx].repaired = true;
                }
            }
        }
    }
    progress.advance(1);

    // Shards.
    let check = shards::ShardCheck::new(
        &sb,
        erasure.as_ref(),
        &disks,
        options,
        progress,
        &mut report,
    );
    let mut check = check.with_decoder(keys.stripe.clone().map(|cipher| {
        crate::data::StripeCodec::new(
            sb.layout.k,
            sb.layout.m,
            sb.compression,
            Some(cipher),
            erasure.clone(),
        )
    }));
    check.check_stripes(&plan.table, &mut report);
    for failure in check.delete_stripes(&frees) {
        report.push(Finding::warning(
            Kind::OrphanShard,
            failure,
            "could not delete a shard of a freed inode; a later --remove-orphans will",
        ));
    }
    let mut referenced = HashSet::new();
    shards::referenced_by(&live, &mut referenced);
    shards::referenced_by(&plan.table, &mut referenced);
    for table in verified.slot_tables() {
        shards::referenced_by(table, &mut referenced);
    }
    check.orphans(
        &referenced,
        plan.table.next_stripe,
        verified.is_journal_damaged(),
        &mut report,
    );
    check.sync()?;
    progress.finish();
    Ok(report)
}

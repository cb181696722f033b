//! Shards: each stripe reference against the shard objects on its disks, rebuilding
//! missing or bad shards from the survivors; objects no metadata references; per-disk
//! accounting.
//!
//! A shard is good when its frame verifies for this volume, its header names the stripe,
//! index, inode, chunk and layout the metadata records, its payload has the stripe's
//! shard length, and it agrees with the other shards: some k good shards rebuild a
//! payload with the recorded CRC (and zero padding), and every shard equals what that
//! payload encodes to. Rebuilding needs no key: Reed-Solomon works on the sealed bytes.
//!
//! Deleting is the dangerous part, so it is narrow: only objects that no table fsck can
//! read references (the live state, each valid snapshot slot, the repaired state), that
//! verify as shards of this volume, and that are older than the grace period. Objects of
//! another volume, and objects that do not verify, are never deleted: `--remove-orphans`
//! moves them to `DISK/argosfs-quarantine/` for a human to look at. A referenced shard
//! whose object belongs to another volume is likewise moved there before its rebuilt
//! replacement is written.

mod structure;

use super::Progress;
use super::paths;
use super::report::{DiskAccount, Finding, Kind, Report};
use crate::data::{ErasureCodec, StripeCodec, StripeContext};
use crate::meta::{StripeRef, Table};
use crate::store::shard::{self, OVERHEAD_BYTES, ShardHeader, ShardObject};
use crate::store::{DirDisk, Disk, DiskLabel};
use crate::types::{DiskId, InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use crate::volume::{DiskConfig, DiskState, Superblock};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Directory in a disk directory that receives objects fsck will not delete.
pub const QUARANTINE_DIR: &str = "argosfs-quarantine";

/// One disk of the volume as fsck opened it.
pub struct DiskHandle {
    /// Its configuration.
    pub config: DiskConfig,
    /// Its directory.
    pub path: PathBuf,
    /// The open store, when the directory and label check out.
    pub disk: Option<DirDisk>,
    /// Why it is not open.
    pub why: Option<String>,
}

/// Opens every disk of the superblock and checks its label, as `Volume::open` does.
/// Disks that fail are reported; failed and removed disks are not opened.
/// With `repair`, a disk whose store index is damaged gets it rebuilt from its segments
/// first (only when its label is this volume's).
pub fn open_disks(
    root: &Path,
    sb: &Superblock,
    repair: bool,
    report: &mut Report,
) -> Vec<DiskHandle> {
    sb.disks
        .iter()
        .map(|config| {
            let path = config.resolve(root);
            let opened = match config.state {
                DiskState::Active | DiskState::Draining => {
                    open_or_rebuild(&path, sb.volume, config.id, repair, report)
                }
                DiskState::Failed => Err("marked failed in the superblock".into()),
                DiskState::Removed => Err("removed from the volume".into()),
            };
            let (disk, why) = match opened {
                Ok(disk) => (Some(disk), None),
                Err(why) => {
                    let is_reported = report.findings.iter().any(|f| {
                        f.kind == Kind::StoreIndexDamaged && !f.repaired && f.object.starts_with(&format!("disk {} ", config.id))
                    });
                    if matches!(config.state, DiskState::Active | DiskState::Draining)
                        && !is_reported
                    {
                        report.push(Finding::unrepairable(
                            Kind::DiskUnavailable,
                            format!("disk {} ({})", config.id, path.display()),
                            format!("{why}: its shards are checked as missing and cannot be rebuilt onto it"),
                        ));
                    }
                    (None, Some(why))
                }
            };
            DiskHandle {
                config: config.clone(),
                path,
                disk,
                why,
            }
        })
        .collect()
}

/// Opens a disk; a damaged store index is reported, and rebuilt with `repair`.
fn open_or_rebuild(
    path: &Path,
    volume: VolumeId,
    id: DiskId,
    repair: bool,
    report: &mut Report,
) -> Result<DirDisk, String> {
    let damage = match DirDisk::open(path) {
        Err(e) if DirDisk::is_index_damage(&e) => e,
        _ => return open_disk(path, volume, id),
    };
    // Only a disk labelled as this one of this volume is worth rebuilding.
    DiskLabel::verify(path, DirDisk::label_at(path), volume, id)?;
    let object = format!("disk {id} ({})", path.display());
    if !repair {
        report.push(Finding::error(
            Kind::StoreIndexDamaged,
            object,
            format!("{damage}; --repair rebuilds the index from the segments"),
        ));
        return Err(format!("store index damaged: {damage}"));
    }
    let rebuilt = DirDisk::rebuild_index(path)
        .map_err(|e| format!("store index damaged ({damage}) and not rebuilt: {e}"))?;
    let mut finding = Finding::error(
        Kind::StoreIndexDamaged,
        object,
        format!(
            "{damage}; rebuilt from {} segments ({} objects), the damaged files kept as {}",
            rebuilt.segments,
            rebuilt.objects,
            rebuilt
                .saved
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    finding.repaired = true;
    report.push(finding);
    open_disk(path, volume, id)
}

fn open_disk(path: &Path, volume: VolumeId, id: DiskId) -> Result<DirDisk, String> {
    let disk = DirDisk::open(path).map_err(|e| format!("cannot open: {e}"))?;
    DiskLabel::verify(path, disk.read_label(), volume, id)?;
    Ok(disk)
}

/// What fsck knows while checking shards.
pub struct ShardCheck<'a> {
    /// The volume.
    pub volume: VolumeId,
    /// Data shards per stripe.
    pub k: usize,
    /// Parity shards per stripe.
    pub m: usize,
    /// The volume's erasure code.
    pub erasure: &'a dyn ErasureCodec,
    /// The disks, in superblock order.
    pub disks: &'a [DiskHandle],
    /// Rebuild bad shards.
    pub repair: bool,
    /// Delete (or quarantine) unreferenced objects.
    pub remove_orphans: bool,
    /// Unreferenced objects younger than this are kept.
    pub grace: Duration,
    /// Progress display.
    pub progress: &'a dyn Progress,
    stripe_bytes: u64,
    /// Opens sealed stripes, when the key is known: the deep check of the AEAD tag.
    decoder: Option<StripeCodec>,
    index: HashMap<DiskId, usize>,
    present: Vec<BTreeSet<ShardKey>>,
    by_key: HashMap<ShardKey, Vec<usize>>,
    dirty: Vec<bool>,
}

/// Unreferenced objects reported together: their stripe, class, and whether they are
/// within the grace period.
type StrayGroup = (StripeId, Stray, bool);
/// One unreferenced object: disk slot, key, what it is.
type StrayObject = (usize, ShardKey, String);

/// A referenced shard as found.
enum Found {
    Good(ShardObject),
    /// The metadata records that the shard was never written (a degraded write).
    Unwritten,
    Missing,
    Unavailable(String),
    Bad {
        kind: Kind,
        why: String,
        is_foreign: bool,
    },
}

/// An unreferenced object as found.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Stray {
    /// A shard of this volume.
    Ours,
    /// A shard of another volume.
    Foreign,
    /// Does not verify.
    Unreadable,
}

impl<'a> ShardCheck<'a> {
    /// Lists every disk's shard objects and starts the accounting.
    pub fn new(
        sb: &Superblock,
        erasure: &'a dyn ErasureCodec,
        disks: &'a [DiskHandle],
        options: &super::Options,
        progress: &'a dyn Progress,
        report: &mut Report,
    ) -> ShardCheck<'a> {
        let index = disks
            .iter()
            .enumerate()
            .map(|(i, d)| (d.config.id, i))
            .collect();
        let mut present = Vec::with_capacity(disks.len());
        let mut by_key: HashMap<ShardKey, Vec<usize>> = HashMap::new();
        progress.phase("listing shards", disks.len() as u64);
        for (slot, handle) in disks.iter().enumerate() {
            let mut account = DiskAccount {
                disk: handle.config.id.to_string(),
                path: handle.path.clone(),
                is_available: handle.disk.is_some(),
                ..DiskAccount::default()
            };
            let keys = match &handle.disk {
                None => BTreeSet::new(),
                Some(disk) => match disk.list_shards() {
                    Ok(keys) => keys.into_iter().collect(),
                    Err(e) => {
                        report.push(Finding::unrepairable(
                            Kind::DiskUnavailable,
                            format!("disk {} ({})", handle.config.id, handle.path.display()),
                            format!("cannot list shards: {e}"),
                        ));
                        BTreeSet::new()
                    }
                },
            };
            for key in &keys {
                by_key.entry(*key).or_default().push(slot);
            }
            account.present_shards = keys.len() as u64;
            present.push(keys);
            report.disks.push(account);
            progress.advance(1);
        }
        ShardCheck {
            volume: sb.volume,
            k: usize::from(sb.layout.k),
            m: usize::from(sb.layout.m),
            erasure,
            disks,
            repair: options.repair,
            remove_orphans: options.remove_orphans,
            grace: options.orphan_grace,
            progress,
            stripe_bytes: u64::from(sb.layout.stripe_bytes),
            decoder: None,
            index,
            present,
            by_key,
            dirty: vec![false; disks.len()],
        }
    }

    /// Checks the AEAD tag of every encrypted stripe with `decoder` (a deep check the
    /// passphrase makes possible; without it shards are checked by checksums only).
    pub fn with_decoder(mut self, decoder: Option<StripeCodec>) -> Self {
        self.decoder = decoder;
        self
    }

    fn header(&self, sref: &StripeRef, ino: InodeId, chunk: u64, i: usize) -> ShardHeader {
        ShardHeader {
            stripe: sref.id,
            index: ShardIndex(i as u8),
            k: self.k as u8,
            m: self.m as u8,
            inode: ino,
            chunk,
        }
    }

    /// Reads and verifies the object `key` on disk `slot` as the shard `expect`
    /// describes. `is_placed`: the object is where the metadata puts it (it is counted
    /// in the accounting; a stray copy is counted by the orphan scan instead).
    fn read(
        &self,
        slot: usize,
        key: ShardKey,
        expect: &ShardHeader,
        shard_len: usize,
        is_placed: bool,
        report: &mut Report,
    ) -> Found {
        let Some(disk) = &self.disks[slot].disk else {
            let why = self.disks[slot].why.clone().unwrap_or_default();
            return Found::Unavailable(why);
        };
        if !self.present[slot].contains(&key) {
            return Found::Missing;
        }
        let bytes = match disk.get_shard(key) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
            Err(e) => {
                return Found::Bad {
                    kind: Kind::ShardCorrupt,
                    why: format!("unreadable: {e}"),
                    is_foreign: false,
                };
            }
        };
        if is_placed {
            report.stats.shards_checked += 1;
            report.disks[slot].present_bytes += bytes.len() as u64;
        }
        let name = format!("{}: shard {key}", disk.describe());
        let (object, volume) = match shard::decode_shard(&name, bytes, None) {
            Ok(decoded) => decoded,
            Err(e) => {
                return Found::Bad {
                    kind: Kind::ShardCorrupt,
                    why: e.to_string(),
                    is_foreign: false,
                };
            }
        };
        if volume != self.volume {
            return Found::Bad {
                kind: Kind::ShardForeign,
                why: format!("object belongs to volume {volume}"),
                is_foreign: true,
            };
        }
        let h = object.header;
        if h.key() != key {
            return Found::Bad {
                kind: Kind::ShardCorrupt,
                why: format!("object holds shard {}, not {key}", h.key()),
                is_foreign: false,
            };
        }
        if h.inode != expect.inode || h.chunk != expect.chunk || h.k != expect.k || h.m != expect.m
        {
            return Found::Bad {
                kind: Kind::ShardMismatch,
                why: format!(
                    "header says inode {} chunk {} layout {}+{}, the metadata inode {} chunk {} layout {}+{}",
                    h.inode, h.chunk, h.k, h.m, expect.inode, expect.chunk, expect.k, expect.m
                ),
                is_foreign: false,
            };
        }
        if object.payload().len() != shard_len {
            return Found::Bad {
                kind: Kind::ShardMismatch,
                why: format!(
                    "payload is {} bytes, the stripe's shards are {shard_len}",
                    object.payload().len()
                ),
                is_foreign: false,
            };
        }
        Found::Good(object)
    }

    /// Checks every stripe of `table`, rebuilding bad shards when repairing.
    pub fn check_stripes(&mut self, table: &Table, report: &mut Report) {
        // Paths are only needed to name what is wrong: built on first use.
        let paths = Paths {
            table,
            cell: std::cell::OnceCell::new(),
        };
        let mut stripes: Vec<(InodeId, u64, &StripeRef)> = table.stripes().collect();
        stripes.sort_by_key(|(ino, chunk, s)| (s.id, *ino, *chunk));
        self.progress
            .phase("checking stripes", stripes.len() as u64);
        let mut seen: HashSet<StripeId> = HashSet::new();
        for (ino, chunk, sref) in stripes {
            report.stats.stripes_checked += 1;
            if !seen.insert(sref.id) {
                report.push(Finding::unrepairable(
                    Kind::BadStripeRef,
                    format!("stripe {} (inode {ino} chunk {chunk})", sref.id),
                    "stripe referenced more than once (stripe ids are never shared)",
                ));
            } else {
                self.check_stripe(ino, chunk, sref, &paths, report);
            }
            self.progress.advance(1);
        }
    }

    fn check_stripe(
        &mut self,
        ino: InodeId,
        chunk: u64,
        sref: &StripeRef,
        paths: &Paths<'_>,
        report: &mut Report,
    ) {
        let width = self.k + self.m;
        let where_ = format!("stripe {} (inode {ino} chunk {chunk})", sref.id);
        if sref.disks.len() != width {
            report.push(Finding::unrepairable(
                Kind::BadStripeRef,
                where_,
                format!(
                    "names {} disks, the layout has {width} shards per stripe",
                    sref.disks.len()
                ),
            ));
            return;
        }
        if let Some((_, unknown)) = sref.placed().find(|(_, d)| !self.index.contains_key(d)) {
            report.push(Finding::unrepairable(
                Kind::BadStripeRef,
                where_,
                format!("names disk {unknown}, which the superblock does not have"),
            ));
            return;
        }
        let shard_len = sref.info.shard_len as usize;
        let slots: Vec<Option<usize>> = sref
            .disks
            .iter()
            .map(|d| d.map(|d| self.index[&d]))
            .collect();
        let mut found: Vec<Found> = Vec::with_capacity(width);
        for (i, slot) in slots.iter().enumerate() {
            let Some(slot) = slot else {
                found.push(Found::Unwritten);
                continue;
            };
            let key = ShardKey {
                stripe: sref.id,
                index: ShardIndex(i as u8),
            };
            let account = &mut report.disks[*slot];
            account.referenced_shards += 1;
            account.referenced_bytes += (shard_len + OVERHEAD_BYTES) as u64;
            let header = self.header(sref, ino, chunk, i);
            let f = self.read(*slot, key, &header, shard_len, true, report);
            if matches!(f, Found::Missing) && self.disks[*slot].disk.is_some() {
                report.disks[*slot].missing_shards += 1;
            }
            found.push(f);
        }
        let mut views: Vec<Option<&[u8]>> = found
            .iter()
            .map(|f| match f {
                Found::Good(o) => Some(o.payload()),
                _ => None,
            })
            .collect();
        // Too few at their places: copies of the same shard left on other disks (an
        // earlier placement, say) may still verify and save the stripe.
        let mut strays: Vec<Option<ShardObject>> = (0..width).map(|_| None).collect();
        if views.iter().flatten().count() < self.k {
            for (i, stray) in strays.iter_mut().enumerate() {
                if views[i].is_some() {
                    continue;
                }
                let key = ShardKey {
                    stripe: sref.id,
                    index: ShardIndex(i as u8),
                };
                let header = self.header(sref, ino, chunk, i);
                let others = self.by_key.get(&key).cloned().unwrap_or_default();
                for slot in others.into_iter().filter(|s| Some(*s) != slots[i]) {
                    if let Found::Good(o) = self.read(slot, key, &header, shard_len, false, report)
                    {
                        *stray = Some(o);
                        break;
                    }
                }
            }
            for (i, stray) in strays.iter().enumerate() {
                if let Some(o) = stray {
                    views[i] = Some(o.payload());
                }
            }
        }
        let good = views.iter().flatten().count();
        let solved = crate::data::solve(self.erasure, self.k, self.m, &sref.info, &views);
        let mut bad: Vec<(usize, Kind, String, bool)> = Vec::new();
        for (i, f) in found.iter().enumerate() {
            let disk = shard_home(sref, i);
            match f {
                Found::Good(o) => {
                    if let Some(expected) = &solved
                        && o.payload() != expected[i].as_slice()
                    {
                        bad.push((
                            i,
                            Kind::ShardMismatch,
                            "content disagrees with the stripe's other shards".into(),
                            false,
                        ));
                    }
                }
                Found::Missing => bad.push((i, Kind::ShardMissing, "shard missing".into(), false)),
                Found::Unwritten => bad.push((
                    i,
                    Kind::StripeDegraded,
                    "never written: the stripe was written degraded, with disks missing".into(),
                    false,
                )),
                Found::Unavailable(why) => bad.push((
                    i,
                    Kind::ShardUnavailable,
                    format!("disk {disk} is unavailable ({why})"),
                    false,
                )),
                Found::Bad {
                    kind,
                    why,
                    is_foreign,
                } => bad.push((i, *kind, why.clone(), *is_foreign)),
            }
        }
        if let (Some(expected), Some(decoder)) = (&solved, &self.decoder)
            && sref.info.is_encrypted()
        {
            let ctx = StripeContext {
                volume: self.volume,
                inode: ino,
                chunk,
                stripe: sref.id,
            };
            let all: Vec<Option<&[u8]>> = expected.iter().map(|s| Some(s.as_slice())).collect();
            report.stats.stripes_authenticated += 1;
            if let Err(e) = decoder.decode(&ctx, &sref.info, &all) {
                let mut finding = Finding::unrepairable(
                    Kind::DataLoss,
                    where_.clone(),
                    format!(
                        "the shards agree and match the recorded checksum, but the stripe does not decrypt ({e}): bytes {}..{} of the file are lost",
                        chunk * self.stripe_bytes,
                        chunk * self.stripe_bytes + u64::from(sref.valid_len)
                    ),
                );
                finding.paths = paths.of(ino, chunk);
                report.push(finding);
            }
        }
        let Some(expected) = solved else {
            let detail = if good < self.k {
                format!(
                    "{good} of the {} shards needed are good: bytes {}..{} of the file are lost",
                    self.k,
                    chunk * self.stripe_bytes,
                    chunk * self.stripe_bytes + u64::from(sref.valid_len)
                )
            } else {
                format!(
                    "{good} shards verify alone but no {} of them rebuild the recorded payload checksum: chunk {chunk} of the file is lost",
                    self.k
                )
            };
            let mut finding = Finding::unrepairable(Kind::DataLoss, where_.clone(), detail);
            finding.paths = paths.of(ino, chunk);
            report.push(finding);
            for (i, kind, why, _) in bad {
                let key = ShardKey {
                    stripe: sref.id,
                    index: ShardIndex(i as u8),
                };
                report.push(Finding::unrepairable(
                    kind,
                    format!(
                        "{}:{key} ({})",
                        shard_home(sref, i),
                        paths::describe(paths.get(), ino)
                    ),
                    format!("{why}; cannot be rebuilt: the stripe has too few good shards"),
                ));
            }
            return;
        };
        for (i, kind, why, is_foreign) in bad {
            let key = ShardKey {
                stripe: sref.id,
                index: ShardIndex(i as u8),
            };
            let object = format!(
                "{}:{key} ({})",
                shard_home(sref, i),
                paths::describe(paths.get(), ino)
            );
            let Some(slot) = slots[i] else {
                report.push(Finding::unrepairable(
                    kind,
                    object,
                    format!("{why}: heal writes it (argosfs disk ROOT heal)"),
                ));
                continue;
            };
            if kind == Kind::ShardUnavailable {
                report.push(Finding::unrepairable(
                    kind,
                    object,
                    format!("{why}: not rebuilt (bring the disk back, or replace it and repair)"),
                ));
                continue;
            }
            let mut finding = Finding::error(
                kind,
                object,
                format!("{why}: rebuild from the other shards"),
            );
            if self.repair {
                match self.rebuild(
                    slot,
                    key,
                    &self.header(sref, ino, chunk, i),
                    &expected[i],
                    is_foreign,
                ) {
                    Ok(note) => {
                        finding.repaired = true;
                        finding.detail = format!("{why}: rebuilt from the other shards{note}");
                        report.stats.shards_rebuilt += 1;
                        if is_foreign {
                            report.stats.objects_quarantined += 1;
                        }
                    }
                    Err(e) => finding.detail = format!("{why}: rebuild failed: {e}"),
                }
            }
            report.push(finding);
        }
    }

    fn rebuild(
        &mut self,
        slot: usize,
        key: ShardKey,
        header: &ShardHeader,
        payload: &[u8],
        is_foreign: bool,
    ) -> std::io::Result<String> {
        let handle = &self.disks[slot];
        let disk = handle
            .disk
            .as_ref()
            .expect("only shards on open disks are rebuilt");
        let mut note = String::new();
        if is_foreign {
            let dest = quarantine(handle, disk, key)?;
            note = format!(" (the foreign object was moved to {})", dest.display());
        }
        shard::write_shard(disk, self.volume, header, payload)?;
        self.dirty[slot] = true;
        Ok(note)
    }

    /// Deletes the shards of stripes the repaired metadata no longer references.
    pub fn delete_stripes(&mut self, stripes: &[StripeRef]) -> Vec<String> {
        let mut failures = Vec::new();
        for sref in stripes {
            for (i, disk_id) in sref.placed() {
                let key = ShardKey {
                    stripe: sref.id,
                    index: ShardIndex(i as u8),
                };
                let Some(&slot) = self.index.get(&disk_id) else {
                    continue;
                };
                let Some(disk) = &self.disks[slot].disk else {
                    continue;
                };
                match disk.delete_shard(key) {
                    Ok(()) => self.dirty[slot] = true,
                    Err(e) => failures.push(format!("{disk_id}:{key}: {e}")),
                }
            }
        }
        failures
    }

    /// Reports objects that no table in `referenced` places where they are, and with
    /// `remove_orphans` deletes (ours) or quarantines (foreign, unreadable) those older
    /// than the grace period.
    ///
    /// With `is_journal_damaged`, shards of this volume with stripe ids at or above
    /// `next_stripe` are never removed: they may belong to committed transactions that
    /// the damaged journal lost (and that a human may still recover from its saved copy).
    /// A later run, on a sound journal, treats them as ordinary orphans.
    pub fn orphans(
        &mut self,
        referenced: &HashSet<(DiskId, ShardKey)>,
        next_stripe: u64,
        is_journal_damaged: bool,
        report: &mut Report,
    ) {
        let now = SystemTime::now();
        let in_use: HashSet<StripeId> = referenced.iter().map(|(_, k)| k.stripe).collect();
        let total: usize = self.present.iter().map(BTreeSet::len).sum();
        self.progress
            .phase("looking for orphan shards", total as u64);
        let mut groups: BTreeMap<StrayGroup, Vec<StrayObject>> = BTreeMap::new();
        for slot in 0..self.disks.len() {
            let Some(disk) = &self.disks[slot].disk else {
                continue;
            };
            let id = self.disks[slot].config.id;
            for key in &self.present[slot] {
                self.progress.advance(1);
                if referenced.contains(&(id, *key)) {
                    continue;
                }
                report.disks[slot].unreferenced_shards += 1;
                let (class, why) = match disk.get_shard(*key) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => (Stray::Unreadable, format!("unreadable: {e}")),
                    Ok(bytes) => {
                        report.stats.shards_checked += 1;
                        report.disks[slot].present_bytes += bytes.len() as u64;
                        match shard::decode_shard("", bytes, None) {
                            Err(e) => (Stray::Unreadable, format!("{}", e.kind)),
                            Ok((_, v)) if v != self.volume => {
                                (Stray::Foreign, format!("volume {v}"))
                            }
                            Ok((o, _)) if o.header.key() != *key => {
                                (Stray::Unreadable, format!("holds shard {}", o.header.key()))
                            }
                            Ok((o, _)) => (
                                Stray::Ours,
                                format!("inode {} chunk {}", o.header.inode, o.header.chunk),
                            ),
                        }
                    }
                };
                let age = disk
                    .shard_modified(*key)
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default();
                let is_recent = age < self.grace;
                groups
                    .entry((key.stripe, class, is_recent))
                    .or_default()
                    .push((slot, *key, why));
            }
        }
        for ((stripe, class, is_recent), items) in groups {
            let list = items
                .iter()
                .map(|(slot, key, _)| format!("{}:{}", self.disks[*slot].config.id, key.index))
                .collect::<Vec<_>>()
                .join(", ");
            let (kind, what) = match class {
                Stray::Ours => {
                    let origin = if stripe.0 >= next_stripe {
                        "left by a write that never committed"
                    } else if in_use.contains(&stripe) {
                        "a copy of a stripe that is placed elsewhere"
                    } else {
                        "of a stripe no longer in use"
                    };
                    (
                        Kind::OrphanShard,
                        format!(
                            "{} unreferenced shard object(s) ({}; {origin})",
                            items.len(),
                            items[0].2
                        ),
                    )
                }
                Stray::Foreign => (
                    Kind::ForeignObject,
                    format!(
                        "{} object(s) of another volume ({}) in the shard tree",
                        items.len(),
                        items[0].2
                    ),
                ),
                Stray::Unreadable => (
                    Kind::UnreadableObject,
                    format!(
                        "{} unreferenced object(s) that do not verify ({})",
                        items.len(),
                        items[0].2
                    ),
                ),
            };
            let object = format!("stripe {stripe} [{list}]");
            if is_recent {
                report.push(Finding::warning(
                    kind,
                    object,
                    format!(
                        "{what}: younger than the {}s grace period, kept",
                        self.grace.as_secs()
                    ),
                ));
                continue;
            }
            if class == Stray::Ours && is_journal_damaged && stripe.0 >= next_stripe {
                report.push(Finding::error(
                    kind,
                    object,
                    format!(
                        "{what}: kept while the journal is damaged (they may belong to transactions it lost); a later --remove-orphans removes them"
                    ),
                ));
                continue;
            }
            let action = if class == Stray::Ours {
                "delete"
            } else {
                "move to the disk's quarantine directory"
            };
            let mut finding = Finding::error(
                kind,
                object,
                format!("{what}: --remove-orphans would {action} them"),
            );
            if self.remove_orphans {
                let mut failures = Vec::new();
                for (slot, key, _) in &items {
                    let handle = &self.disks[*slot];
                    let disk = handle.disk.as_ref().expect("listed disks are open");
                    let done = if class == Stray::Ours {
                        disk.delete_shard(*key).map(|()| {
                            report.stats.orphans_removed += 1;
                        })
                    } else {
                        quarantine(handle, disk, *key).map(|_| {
                            report.stats.objects_quarantined += 1;
                        })
                    };
                    match done {
                        Ok(()) => self.dirty[*slot] = true,
                        Err(e) => failures.push(format!("{}:{key}: {e}", handle.config.id)),
                    }
                }
                if failures.is_empty() {
                    finding.repaired = true;
                    let done = if class == Stray::Ours {
                        "deleted"
                    } else {
                        "moved to quarantine"
                    };
                    finding.detail = format!("{what}: {done}");
                } else {
                    finding.detail = format!("{what}: could not remove: {}", failures.join("; "));
                }
            }
            report.push(finding);
        }
    }

    /// Makes every write, delete and move durable on the disks touched.
    pub fn sync(&mut self) -> crate::Result<()> {
        for (slot, dirty) in self.dirty.iter_mut().enumerate() {
            if !*dirty {
                continue;
            }
            let handle = &self.disks[slot];
            if let Some(disk) = &handle.disk {
                disk.sync().map_err(|source| crate::Error::DiskIo {
                    disk: handle.config.id,
                    source,
                })?;
            }
            *dirty = false;
        }
        Ok(())
    }
}

/// The paths of a table, built when first asked for.
struct Paths<'t> {
    table: &'t Table,
    cell: std::cell::OnceCell<HashMap<InodeId, Vec<Vec<u8>>>>,
}

impl Paths<'_> {
    fn get(&self) -> &HashMap<InodeId, Vec<Vec<u8>>> {
        self.cell.get_or_init(|| paths::all_paths(self.table))
    }

    /// The paths of the file whose chunk `chunk` is lost, as shown in findings; for a
    /// chunk of the pack file, those of every file packed into it.
    fn of(&self, ino: InodeId, chunk: u64) -> Vec<String> {
        if let Some(use_) = self.table.packs.get((ino, chunk)) {
            return (use_.members.keys())
                .flat_map(|member| self.of(*member, 0))
                .collect();
        }
        self.get()
            .get(&ino)
            .map(|p| p.iter().map(|p| paths::show(p)).collect())
            .unwrap_or_else(|| vec![format!("<inode {ino}, not reachable>")])
    }
}

/// Moves an object out of the store into a file of `DISK/argosfs-quarantine/`, under a
/// name that keeps its key and says when it was moved: the copy is durable before the
/// object leaves the index. An object whose bytes cannot be read leaves a note
/// (`NAME.unreadable`) saying where it was and why.
fn quarantine(handle: &DiskHandle, disk: &DirDisk, key: ShardKey) -> std::io::Result<PathBuf> {
    let dir = handle.path.join(QUARANTINE_DIR);
    crate::store::create_private_dir(&dir)?;
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{:016x}.{}.{stamp}", key.stripe.0, key.index.0);
    let dest = match disk.get_shard(key) {
        Ok(bytes) => {
            let dest = dir.join(name);
            crate::store::write_atomic(&dest, &bytes)?;
            dest
        }
        Err(e) => {
            let dest = dir.join(format!("{name}.unreadable"));
            let place = disk
                .shard_location(key)
                .map(|(file, at)| format!("{} at {}, {} bytes", file.display(), at.offset, at.len))
                .unwrap_or_default();
            crate::store::write_atomic(&dest, format!("{place}: {e}\n").as_bytes())?;
            dest
        }
    };
    disk.delete_shard(key)?;
    Ok(dest)
}

/// Where shard `i` of a stripe lives, for messages: its disk, or "unwritten".
fn shard_home(sref: &StripeRef, i: usize) -> String {
    sref.disk_of(i)
        .map_or_else(|| "unwritten".to_string(), |d| d.to_string())
}

/// Every (disk, shard) that `table` places.
pub fn referenced_by(table: &Table, into: &mut HashSet<(DiskId, ShardKey)>) {
    for (_, _, sref) in table.stripes() {
        for (i, disk) in sref.placed() {
            into.insert((
                disk,
                ShardKey {
                    stripe: sref.id,
                    index: ShardIndex(i as u8),
                },
            ));
        }
    }
}

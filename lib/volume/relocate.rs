//! Primitives for the maintenance actions (`crate::maint`: heal, drain, replace, scrub):
//! which stripes there are and where their shards are, the disks' states, reading and
//! verifying a stripe's shards, choosing new disks for some shards of a stripe, and
//! moving or rebuilding those shards.
//!
//! Every move follows one order, so no stripe ever has less redundancy than before, even
//! for a moment: write the new shard, sync its disk, read it back and compare, commit the
//! reference to it, and only then delete the shard it replaces. A crash before the commit
//! leaves an unreferenced new shard (an orphan fsck removes); after it, an unreferenced
//! old one.

use super::{DiskState, Volume, lock_poisoned};
use crate::data::StripeCodec;
use crate::error::{Error, Result};
use crate::meta::{Chunk, Op, StripeRef};
use crate::placement::{self, Candidate, Request};
use crate::store::shard::{self, ShardHeader, ShardObject};
use crate::types::{DiskId, InodeId, ShardIndex, ShardKey};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// A stripe and the chunk of the file that references it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeAt {
    /// The file.
    pub ino: InodeId,
    /// The chunk number.
    pub chunk: u64,
    /// The stripe as the metadata records it.
    pub stripe: StripeRef,
}

impl std::fmt::Display for StripeAt {
    /// "stripe s… (inode N chunk C)", for reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stripe {} (inode {} chunk {})",
            self.stripe.id, self.ino, self.chunk
        )
    }
}

/// One disk of the open volume, for `argosfs-disk list` and the maintenance planners.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DiskInfo {
    /// As configured (path, domain, class, weight), with the state now.
    pub config: super::DiskConfig,
    /// Why the disk could not be opened, when it could not.
    pub unavailable: Option<String>,
    /// A shard write failed on it since open: it takes no new shards.
    pub has_failed_write: bool,
    /// Capacity of the filesystem behind it (0 when not open).
    pub total_bytes: u64,
    /// Free bytes there.
    pub free_bytes: u64,
}

impl DiskInfo {
    /// Open, active and not failing writes: it may take new shards.
    pub fn is_writable(&self) -> bool {
        self.unavailable.is_none()
            && !self.has_failed_write
            && self.config.state == DiskState::Active
    }

    /// Open and not failed or removed: its shards can be read.
    pub fn is_readable(&self) -> bool {
        self.unavailable.is_none()
            && matches!(self.config.state, DiskState::Active | DiskState::Draining)
    }
}

/// Where a stripe of a file is, and what placement makes of it now.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StripePlacement {
    /// The chunk of the file.
    pub chunk: u64,
    /// The stripe.
    pub stripe: crate::types::StripeId,
    /// The disk of each shard (None: never written).
    pub disks: Vec<Option<DiskId>>,
    /// Placement of the stripe asked again now, with every candidate's score and why it
    /// is taken or not (a stripe written earlier may sit elsewhere: the disks and their
    /// states, weights and space were what they were then).
    pub now: placement::Explanation,
}

/// Moves recorded but not yet committed ([`Volume::relocate_into`]), and the shards
/// they replace, deleted once [`Volume::finish_moves`] has committed them.
#[derive(Debug, Default)]
pub struct MoveBatch {
    stripes: usize,
    replaced: Vec<(DiskId, ShardKey)>,
}

impl MoveBatch {
    /// Stripes moved since the last commit.
    pub fn len(&self) -> usize {
        self.stripes
    }

    /// Nothing waits for a commit.
    pub fn is_empty(&self) -> bool {
        self.stripes == 0
    }
}

/// What [`Volume::relocate_shards`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relocated {
    /// The new reference is committed; the shards it replaced are deleted.
    Done {
        /// Shard bytes written (payload).
        bytes: u64,
    },
    /// The file changed meanwhile (the chunk no longer references this stripe): the new
    /// shards were removed and nothing changed.
    Stale,
}

/// One shard of a stripe as [`Volume::check_shards`] found it on its disk.
#[derive(Debug)]
pub enum ShardCheck {
    /// The object verifies (frame, head and block CRCs, this volume, its key), its header
    /// names the stripe's inode, chunk and layout, and its payload has the stripe's shard
    /// length. Whether it agrees with the other shards is the caller's to find out.
    Good(ShardObject),
    /// The metadata records that it was never written (a degraded write).
    Unwritten,
    /// Its disk is not open (lost, failed, removed, or not found at open).
    Unreachable,
    /// Its disk has no object under its key.
    Missing,
    /// The object could not be read or does not verify: why.
    Corrupt(String),
    /// The object verifies but describes another shard than the metadata does: why.
    Mismatch(String),
}

impl Volume {
    /// The volume's stripe codec (erasure code, and the key of an encrypted volume), for
    /// checks that work on stored shards, as scrub's.
    pub fn codec(&self) -> &StripeCodec {
        &self.codec
    }

    /// Whether the chunk of `at` still references exactly that stripe (same shards in the
    /// same places): false once a writer replaced it or a move committed new places.
    pub fn is_current(&self, at: &StripeAt) -> bool {
        let state = self.lock_state();
        let current = state
            .meta
            .table()
            .chunks
            .get(&at.ino)
            .and_then(|c| c.get(&at.chunk));
        current == Some(&Chunk::Stripe(at.stripe.clone()))
    }

    /// Reads and verifies every shard of a stripe where the metadata places it (all at
    /// once on the shard I/O pool), without rebuilding or logging anything: each with the
    /// bytes read for it. A shard missing or bad here is reported, never repaired.
    pub fn check_shards(&self, at: &StripeAt) -> Vec<(ShardCheck, u64)> {
        let width = at.stripe.disks.len();
        let check = |i: usize| {
            super::stripe_io::contained(
                || self.check_shard(at, i),
                || (ShardCheck::Corrupt("the read panicked".into()), 0),
            )
        };
        self.shard_io.map((0..width).collect(), check)
    }

    fn check_shard(&self, at: &StripeAt, i: usize) -> (ShardCheck, u64) {
        let stripe = &at.stripe;
        let Some(disk_id) = stripe.disk_of(i) else {
            return (ShardCheck::Unwritten, 0);
        };
        let Some(disk) = self.disk(disk_id) else {
            return (ShardCheck::Unreachable, 0);
        };
        let key = ShardKey {
            stripe: stripe.id,
            index: ShardIndex(i as u8),
        };
        let bytes = match disk.get_shard(key) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (ShardCheck::Missing, 0);
            }
            Err(e) => return (ShardCheck::Corrupt(format!("unreadable: {e}")), 0),
        };
        let read = bytes.len() as u64;
        let name = format!("{}: shard {key}", disk.describe());
        let object = match shard::decode_shard(&name, bytes, Some(self.sb.volume)) {
            Ok((object, _)) => object,
            Err(e) => return (ShardCheck::Corrupt(e.to_string()), read),
        };
        let h = object.header;
        let (k, m) = (self.sb.layout.k, self.sb.layout.m);
        let why = if h.key() != key {
            return (
                ShardCheck::Corrupt(format!("object holds shard {}, not {key}", h.key())),
                read,
            );
        } else if h.inode != at.ino || h.chunk != at.chunk || h.k != k || h.m != m {
            format!(
                "header says inode {} chunk {} layout {}+{}, the metadata inode {} chunk {} layout {k}+{m}",
                h.inode, h.chunk, h.k, h.m, at.ino, at.chunk
            )
        } else if object.payload().len() != stripe.info.shard_len as usize {
            format!(
                "payload is {} bytes, the stripe's shards are {}",
                object.payload().len(),
                stripe.info.shard_len
            )
        } else {
            return (ShardCheck::Good(object), read);
        };
        (ShardCheck::Mismatch(why), read)
    }

    /// Every stripe of every file, as the metadata records it now.
    pub fn stripes(&self) -> Vec<StripeAt> {
        let state = self.lock_state();
        state
            .meta
            .table()
            .stripes()
            .map(|(ino, chunk, stripe)| StripeAt {
                ino,
                chunk,
                stripe: stripe.clone(),
            })
            .collect()
    }

    /// The stripes written degraded (shards never written), from the table's index.
    pub fn degraded_stripes(&self) -> Vec<StripeAt> {
        let state = self.lock_state();
        let table = state.meta.table();
        table
            .degraded
            .values()
            .filter_map(|&(ino, chunk)| match table.chunks.get(&ino)?.get(&chunk)? {
                Chunk::Stripe(s) => Some(StripeAt {
                    ino,
                    chunk,
                    stripe: s.clone(),
                }),
                Chunk::Inline(_) | Chunk::Packed(_) => None,
            })
            .collect()
    }

    /// Every disk of the volume, with its state and space now. An open disk whose
    /// directory no longer answers (removed, its drive gone) is reported unavailable.
    pub fn disk_infos(&self) -> Vec<DiskInfo> {
        self.disk_set()
            .iter()
            .map(|slot| {
                let mut config = slot.config.clone();
                config.state = slot.state();
                let (space, unavailable) = match &slot.disk {
                    None => (
                        crate::store::DiskSpace::default(),
                        Some(
                            slot.why_unavailable
                                .clone()
                                .unwrap_or_else(|| format!("{:?}", config.state).to_lowercase()),
                        ),
                    ),
                    Some(_) => match slot.probe() {
                        Ok(space) => (space, None),
                        Err(e) => (
                            crate::store::DiskSpace::default(),
                            Some(format!("its directory no longer answers: {e}")),
                        ),
                    },
                };
                DiskInfo {
                    unavailable,
                    config,
                    has_failed_write: slot.write_failed.load(Ordering::Acquire),
                    total_bytes: space.total_bytes,
                    free_bytes: space.free_bytes,
                }
            })
            .collect()
    }

    /// Every (disk, shard) present on the open disks: one listing of each disk.
    pub fn shards_present(&self) -> Result<HashSet<(DiskId, ShardKey)>> {
        let mut present = HashSet::new();
        for slot in self.disk_set().iter() {
            let Some(disk) = &slot.disk else { continue };
            let keys = disk.list_shards().map_err(|source| Error::DiskIo {
                disk: slot.config.id,
                source,
            })?;
            present.extend(keys.into_iter().map(|k| (slot.config.id, k)));
        }
        Ok(present)
    }

    /// The placement of every stripe of the file at `path` (components from the root,
    /// as root sees them): where its shards are and what placement would choose now.
    pub fn explain_placement(&self, path: &[u8]) -> Result<Vec<StripePlacement>> {
        let root = super::Caller::root();
        let mut ino = crate::types::InodeId::ROOT;
        for name in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            ino = self.lookup(&root, ino, name)?.ino;
        }
        let set = self.disk_set();
        self.refresh_slow_disks(&set);
        let candidates: Vec<Candidate> =
            set.iter().map(|slot| slot.candidate(false, true)).collect();
        let stripes: Vec<(u64, StripeRef)> = {
            let state = self.lock_state();
            state
                .meta
                .table()
                .chunks
                .get(&ino)
                .map(|chunks| {
                    chunks
                        .iter()
                        .filter_map(|(chunk, c)| match c {
                            Chunk::Stripe(s) => Some((*chunk, s.clone())),
                            Chunk::Inline(_) | Chunk::Packed(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(stripes
            .into_iter()
            .map(|(chunk, stripe)| {
                let request = Request {
                    stripe: stripe.id,
                    count: self.sb.layout.width(),
                    min_count: self.min_shards,
                    max_per_domain: usize::from(self.sb.layout.m).max(1),
                    shard_bytes: u64::from(stripe.info.shard_len) + 64,
                    held_domains: Vec::new(),
                };
                StripePlacement {
                    chunk,
                    stripe: stripe.id,
                    disks: stripe.disks.clone(),
                    now: placement::explain(&request, &candidates),
                }
            })
            .collect())
    }

    /// Changes a disk's state, durably (the superblock is rewritten first, then the open
    /// volume follows it: placement stops or starts giving it new shards at once).
    pub fn set_disk_state(&self, disk: DiskId, state: DiskState, reason: &str) -> Result<()> {
        self.meta_writable()?;
        let disks = self.disk_set();
        let slot = disks
            .slot(disk)
            .ok_or_else(|| Error::Config(format!("no disk {disk} in this volume")))?;
        let _superblock = lock_poisoned(&self.superblock_lock);
        let mut sb = super::Superblock::load(&self.root)?;
        let entry = sb
            .disks
            .iter_mut()
            .find(|d| d.id == disk)
            .ok_or_else(|| Error::Config(format!("no disk {disk} in the superblock")))?;
        entry.state = state;
        entry.state_reason = reason.to_string();
        entry.state_since_unix = crate::types::unix_now();
        sb.store(&self.root)?;
        *lock_poisoned(&slot.state) = state;
        tracing::info!(disk = %disk, state = ?state, reason, "disk state changed");
        Ok(())
    }

    pub(super) fn meta_writable(&self) -> Result<()> {
        self.lock_state().meta.check_writable()
    }

    /// Chooses disks for shards `indices` of `stripe` (their new homes), by the same
    /// placement as new stripes: never a disk holding another shard of the stripe or in
    /// `avoid`, with the domains of the shards that stay counted against the
    /// failure-domain cap. May return fewer disks than asked for (as many as can take
    /// one), in the order of `indices`.
    pub fn choose_disks(
        &self,
        stripe: &StripeRef,
        indices: &[usize],
        avoid: &[DiskId],
    ) -> Vec<DiskId> {
        if indices.is_empty() {
            return Vec::new();
        }
        let disks = self.disk_set();
        let held_domains = stripe
            .placed()
            .filter(|(i, _)| !indices.contains(i))
            .filter_map(|(_, d)| disks.slot(d))
            .map(|slot| slot.config.domain.clone())
            .collect();
        let request = Request {
            stripe: stripe.id,
            count: indices.len(),
            min_count: 1,
            max_per_domain: usize::from(self.sb.layout.m).max(1),
            shard_bytes: u64::from(stripe.info.shard_len) + 64,
            held_domains,
        };
        self.refresh_slow_disks(&disks);
        // Never a disk that already holds a shard of the stripe (staying or moving).
        let place = |is_fresh: bool| {
            let candidates: Vec<Candidate> = disks
                .iter()
                .map(|slot| {
                    let id = slot.config.id;
                    slot.candidate(is_fresh, !avoid.contains(&id) && !stripe.uses(id))
                })
                .collect();
            placement::place(&request, &candidates).unwrap_or_default()
        };
        // Free space as new stripes see it (read at most every half second: a run moves
        // many stripes), checked afresh when it falls short, as new stripes do.
        let chosen = place(false);
        if chosen.len() < indices.len() {
            return place(true);
        }
        chosen
    }

    /// Puts shards of a stripe on new disks (see [`Volume::relocate_into`]) and commits
    /// at once: one stripe, one batch.
    pub fn relocate_shards(&self, at: &StripeAt, moves: &[(usize, DiskId)]) -> Result<Relocated> {
        let mut batch = MoveBatch::default();
        let moved = self.relocate_into(at, moves, &mut batch)?;
        self.finish_moves(&mut batch)?;
        Ok(moved)
    }

    /// Makes the moves of `batch` durable and then deletes the shards they replaced: a
    /// commit (which syncs every disk written since its last sync, the targets among
    /// them, before the journal) makes the new references durable, and only then is
    /// each old shard deleted.
    pub fn finish_moves(&self, batch: &mut MoveBatch) -> Result<()> {
        if batch.stripes == 0 {
            return Ok(());
        }
        self.commit()?;
        for (disk, key) in batch.replaced.drain(..) {
            if let Err(e) = self.delete_shard_on(disk, key) {
                tracing::warn!(disk = %disk, shard = %key, error = %e, "could not delete a moved shard's old copy; fsck --remove-orphans will");
            }
        }
        batch.stripes = 0;
        Ok(())
    }

    /// Puts shards of a stripe on new disks: `moves` lists (shard index, target disk). A
    /// shard is copied where it reads back good, else rebuilt from the others (any k of
    /// them), checked against the stripe's payload CRC either way. Then, in this order:
    /// write each to its target (the disk is then synced by the next commit), read each
    /// back and compare, record the new reference. The shards it replaces (on another
    /// disk, at hand) join `batch`: [`Volume::finish_moves`] commits, and only after that
    /// deletes them, so a crash before the commit leaves the old reference and its shards
    /// whole. A target may be the shard's own disk (a missing shard rewritten in place).
    pub fn relocate_into(
        &self,
        at: &StripeAt,
        moves: &[(usize, DiskId)],
        batch: &mut MoveBatch,
    ) -> Result<Relocated> {
        let stripe = &at.stripe;
        // A shard rewritten on its own disk is missing or bad there (that is why it is
        // rewritten): it is rebuilt from the others without being read, so a heal does not
        // log each one as found missing.
        let in_place: Vec<usize> = moves
            .iter()
            .filter(|&&(i, d)| stripe.disk_of(i) == Some(d))
            .map(|&(i, _)| i)
            .collect();
        let payloads = self.stripe_shards(at, &in_place)?;
        let header = |i: usize| ShardHeader {
            stripe: stripe.id,
            index: ShardIndex(i as u8),
            k: self.sb.layout.k,
            m: self.sb.layout.m,
            inode: at.ino,
            chunk: at.chunk,
        };
        let key = |i: usize| ShardKey {
            stripe: stripe.id,
            index: ShardIndex(i as u8),
        };
        let target = |d: DiskId| {
            self.disk(d)
                .ok_or_else(|| Error::Config(format!("disk {d} is not at hand")))
        };
        let gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let mut written: Vec<(usize, DiskId)> = Vec::new();
        let mut bytes = 0u64;
        let outcome = (|| -> Result<()> {
            for &(i, d) in moves {
                let disk = target(d)?;
                let started = std::time::Instant::now();
                let put =
                    shard::write_shard(disk.as_ref(), self.sb.volume, &header(i), &payloads[i]);
                if let Some(stats) = self.disk_stats(d) {
                    match &put {
                        Ok(()) => {
                            stats.note_write(shard::object_len(payloads[i].len()) as u64, started)
                        }
                        Err(e) => stats.note_write_failure(e),
                    }
                }
                put.map_err(|source| Error::DiskIo { disk: d, source })?;
                written.push((i, d));
                bytes += payloads[i].len() as u64;
            }
            // Synced by the commit that makes the new reference durable.
            let set = self.disk_set();
            for &(_, d) in &written {
                if let Some(slot) = set.slot(d) {
                    slot.is_dirty.store(true, Ordering::Release);
                }
            }
            for &(i, d) in &written {
                let disk = target(d)?;
                let back =
                    shard::read_shard(disk.as_ref(), self.sb.volume, key(i)).map_err(|e| {
                        Error::Config(format!("disk {d}: shard {} did not read back: {e}", key(i)))
                    })?;
                if back.payload() != payloads[i].as_slice() {
                    return Err(Error::Integrity {
                        stripe: stripe.id,
                        inode: at.ino,
                        detail: "a moved shard read back different",
                    });
                }
            }
            Ok(())
        })();
        let unwrite = |written: &[(usize, DiskId)]| {
            for &(i, d) in written {
                // Only a shard on another disk than the recorded one is new: one written
                // in place replaces a missing or bad one and stays.
                if stripe.disk_of(i) != Some(d)
                    && let Err(e) = self.delete_shard_on(d, key(i))
                {
                    tracing::warn!(disk = %d, shard = %key(i), error = %e, "could not remove a shard of a move that did not finish; fsck --remove-orphans will");
                }
            }
        };
        if let Err(e) = outcome {
            unwrite(&written);
            return Err(e);
        }
        let mut moved = stripe.clone();
        for &(i, d) in moves {
            moved.disks[i] = Some(d);
        }
        let is_current = {
            let mut state = self.lock_state();
            let current = state
                .meta
                .table()
                .chunks
                .get(&at.ino)
                .and_then(|c| c.get(&at.chunk));
            if current == Some(&Chunk::Stripe(stripe.clone())) {
                state.meta.record(Op::SetChunk {
                    ino: at.ino,
                    index: at.chunk,
                    chunk: Chunk::Stripe(moved),
                })?;
                true
            } else {
                false
            }
        };
        drop(gate);
        if !is_current {
            unwrite(&written);
            return Ok(Relocated::Stale);
        }
        batch.stripes += 1;
        for &(i, d) in moves {
            if let Some(old) = stripe.disk_of(i)
                && old != d
            {
                batch.replaced.push((old, key(i)));
            }
        }
        Ok(Relocated::Done { bytes })
    }

    /// All k+m shard payloads of a stripe: the good ones read (except `unread`), the rest
    /// rebuilt; checked against the stripe's payload CRC.
    fn stripe_shards(&self, at: &StripeAt, unread: &[usize]) -> Result<Vec<Vec<u8>>> {
        let stripe = &at.stripe;
        let k = usize::from(self.sb.layout.k);
        let m = usize::from(self.sb.layout.m);
        let read: Vec<Option<shard::ShardObject>> = (0..k + m)
            .map(|i| {
                if unread.contains(&i) {
                    None
                } else {
                    self.read_checked_shard(stripe, i)
                }
            })
            .collect();
        let views: Vec<Option<&[u8]>> = read
            .iter()
            .map(|o| o.as_ref().map(|o| o.payload()))
            .collect();
        let have = views.iter().flatten().count();
        let lost = || Error::Unrecoverable {
            stripe: stripe.id,
            inode: at.ino,
            have: have as u8,
            need: k as u8,
        };
        let erasure = self.codec.erasure();
        let data = erasure.recover_data(k, m, &views).map_err(|_| lost())?;
        let shard_len = stripe.info.shard_len as usize;
        let payload_len = stripe.info.payload_len as usize;
        if data.len() != k * shard_len
            || payload_len > data.len()
            || crc32c::crc32c(&data[..payload_len]) != stripe.info.payload_crc
        {
            return Err(Error::Integrity {
                stripe: stripe.id,
                inode: at.ino,
                detail: "the shards do not rebuild the recorded payload",
            });
        }
        let pieces: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
        let parity = erasure.encode(k, m, &pieces).map_err(|_| lost())?;
        let mut all: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        all.extend(parity);
        Ok(all)
    }
}

//! Stripe I/O beneath file contents: placement and shard writes with rollback, direct
//! reads from data shards (of plain stripes, and of the frames of compressed or encrypted
//! ones), degraded reads that rebuild from parity, and decoding a stored chunk back to
//! its plaintext.

use super::{DiskSet, DiskSlot, Volume};
use crate::cache::l2::{Part, PayloadInfo};
use crate::cache::{Plain, Touch, Weigh};
use crate::data::{FrameTable, StripeContext, TransformError};
use crate::error::{Error, Result};
use crate::meta::{Chunk, StripeRef};
use crate::placement::{self, Candidate, Request};
use crate::store::shard::{self, ShardHeader, ShardReadError};
use crate::store::{BatchDone, BatchOp, run_batch};
use crate::types::{DiskId, InodeId, ShardIndex, ShardKey, StripeId};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Bytes of frame tables a volume keeps (`Volume::tables`): a table of a 1 MiB stripe in
/// 16 KiB frames weighs about 400 bytes, so this holds those of some 2,500 stripes
/// (2.5 GiB of file data) for small reads. Tables of freed stripes are not looked for:
/// their ids are never reused, and they age out.
pub(super) const FRAME_TABLE_CACHE_BYTES: usize = 1 << 20;

impl Weigh for FrameTable {
    fn weight_bytes(&self) -> usize {
        FrameTable::weight_bytes(self)
    }
}

/// Where stored payload bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The L2 cache.
    L2,
    /// The data shards.
    Disks,
}

/// What the record says of a stripe's stored payload, for the L2 cache to check against.
fn payload_info(stripe: &StripeRef) -> PayloadInfo {
    PayloadInfo {
        flags: stripe.info.flags,
        plain_len: stripe.info.plain_len,
        payload_len: stripe.info.payload_len,
        shard_len: stripe.info.shard_len,
        payload_crc: stripe.info.payload_crc,
    }
}

/// A data shard as read, handed to the L2 writer without a copy.
struct ShardPart(shard::ShardObject);

impl AsRef<[u8]> for ShardPart {
    fn as_ref(&self) -> &[u8] {
        self.0.payload()
    }
}

/// A cached plain stripe handed to the L2 writer without a copy.
struct PlainPart(Plain);

impl AsRef<[u8]> for PlainPart {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Volume {
    /// Encodes `plain` and writes its shards to disks chosen by placement. Space is
    /// reserved first; on any failure the shards written are removed and the
    /// reservations returned. A disk that fails with an I/O error is avoided from then on
    /// and the stripe placed again.
    ///
    /// With disks missing the stripe is written degraded: as many shards as there are
    /// disks to take them (the last, parity, shards left out), never fewer than
    /// `min_shards`; the reference records which shards were not written, and the table
    /// lists the stripe for heal.
    pub(super) fn write_stripe(&self, ino: InodeId, index: u64, plain: &[u8]) -> Result<StripeRef> {
        let id = {
            let mut state = self.lock_state();
            state.meta.check_writable()?;
            state.meta.allocate_stripe()?
        };
        let ctx = StripeContext {
            volume: self.sb.volume,
            inode: ino,
            chunk: index,
            stripe: id,
        };
        let encoded = self.codec.encode(&ctx, plain).map_err(|e| {
            tracing::error!(stripe = %id, error = %e, "stripe encoding failed");
            Error::Integrity {
                stripe: id,
                inode: ino,
                detail: "encoding failed",
            }
        })?;
        let shard_bytes = u64::from(encoded.info.shard_len) + 64;
        let mut excluded: Vec<DiskId> = Vec::new();
        loop {
            // One set for the whole try: a disk replaced meanwhile is used from the next.
            let set = self.disk_set();
            let disks = self.place(&set, id, shard_bytes, &excluded)?;
            let width = self.sb.layout.width();
            let header = |i: usize| ShardHeader {
                stripe: id,
                index: ShardIndex(i as u8),
                k: self.sb.layout.k,
                m: self.sb.layout.m,
                inode: ino,
                chunk: index,
            };
            let reserved: Vec<&Arc<DiskSlot>> = disks
                .iter()
                .map(|d| set.slot(*d).expect("placement picks disks of the set"))
                .collect();
            for slot in &reserved {
                slot.reserved.fetch_add(shard_bytes, Ordering::Relaxed);
            }
            // Every shard at once, each to its own disk: the stripe costs the slowest
            // disk's write rather than the sum of them. With io_uring on every disk, the
            // writes go to the kernel in one submission from this thread; else each runs
            // on the shard I/O pool.
            let results: Vec<std::io::Result<()>> = if is_batched(reserved.iter().copied()) {
                let headers: Vec<ShardHeader> = (0..reserved.len()).map(header).collect();
                self.write_shards_batched(&reserved, &headers, &encoded)
            } else {
                self.shard_io
                    .map(reserved.iter().enumerate().collect(), |(i, slot)| {
                        let slot_ref = *slot;
                        let disk = slot_ref
                            .disk
                            .as_ref()
                            .expect("placement only picks open disks");
                        let started = Instant::now();
                        let result = contained(
                            || {
                                shard::write_shard(
                                    disk.as_ref(),
                                    self.sb.volume,
                                    &header(i),
                                    encoded.shard(i),
                                )
                            },
                            || Err(std::io::Error::other("shard write panicked")),
                        );
                        note_shard_write(slot_ref, &result, encoded.shard(i).len(), started);
                        result
                    })
            };
            let mut written = vec![false; results.len()];
            let mut failure = None;
            for (i, result) in results.into_iter().enumerate() {
                match result {
                    Ok(()) => written[i] = true,
                    // The first failed disk is avoided on the next try; a second one, if
                    // any, fails that try in turn.
                    Err(e) if failure.is_none() => failure = Some((disks[i], e)),
                    Err(_) => {}
                }
            }
            for slot in &reserved {
                slot.reserved.fetch_sub(shard_bytes, Ordering::Relaxed);
            }
            let Some((bad_disk, error)) = failure else {
                self.stats.stripes_written.fetch_add(1, Ordering::Relaxed);
                if disks.len() < width {
                    self.note_degraded_write(id, disks.len(), width);
                }
                let mut placed: Vec<Option<DiskId>> = disks.into_iter().map(Some).collect();
                placed.resize(width, None);
                return Ok(StripeRef {
                    id,
                    info: encoded.info,
                    disks: placed,
                    valid_len: plain.len() as u32,
                    written: None,
                });
            };
            for (i, disk_id) in disks.iter().enumerate().filter(|(i, _)| written[*i]) {
                let key = ShardKey {
                    stripe: id,
                    index: ShardIndex(i as u8),
                };
                if let Err(e) = self.delete_shard_on(*disk_id, key) {
                    tracing::warn!(disk = %disk_id, shard = %key, error = %e, "could not remove a shard of a failed stripe write");
                }
            }
            let no_space = matches!(
                error.raw_os_error(),
                Some(libc::ENOSPC) | Some(libc::EDQUOT)
            );
            if no_space {
                return Err(Error::NoSpace(format!("disk {bad_disk} is full")));
            }
            tracing::warn!(disk = %bad_disk, error = %error, stripe = %id, "shard write failed; the disk takes no new shards until the volume is opened again; placing the stripe elsewhere");
            self.stats
                .shard_write_failures
                .fetch_add(1, Ordering::Relaxed);
            let slot = set
                .slot(bad_disk)
                .expect("placement picks disks of the set");
            slot.write_failed.store(true, Ordering::Release);
            excluded.push(bad_disk);
            if excluded.len() > usize::from(self.sb.layout.m) + 1 {
                return Err(Error::DiskIo {
                    disk: bad_disk,
                    source: error,
                });
            }
        }
    }

    /// Writes shard `i` of `encoded` as `headers[i]` to the disk of `slots[i]`, all in
    /// one batch (`store::run_batch`: one io_uring submission); each write's result.
    fn write_shards_batched(
        &self,
        slots: &[&Arc<DiskSlot>],
        headers: &[ShardHeader],
        encoded: &crate::data::EncodedStripe,
    ) -> Vec<std::io::Result<()>> {
        let prepared: Vec<std::io::Result<shard::ShardParts>> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| shard::ShardParts::new(self.sb.volume, h, encoded.shard(i)))
            .collect();
        let slices: Vec<Vec<&[u8]>> = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Ok(parts) => parts.slices(encoded.shard(i)),
                Err(_) => Vec::new(),
            })
            .collect();
        let mut which = Vec::new();
        let mut ops = Vec::new();
        for (i, parts) in prepared.iter().enumerate() {
            if let Ok(parts) = parts {
                let disk = slots[i]
                    .disk
                    .as_deref()
                    .expect("placement only picks open disks");
                ops.push(BatchOp::Put {
                    disk,
                    key: parts.key(),
                    parts: &slices[i],
                });
                which.push(i);
            }
        }
        let mut done: Vec<Option<BatchDone>> = prepared.iter().map(|_| None).collect();
        for (i, d) in which.into_iter().zip(run_batch(ops)) {
            done[i] = Some(d);
        }
        prepared
            .into_iter()
            .zip(done)
            .enumerate()
            .map(|(i, (parts, done))| {
                let (result, started) = match (parts, done) {
                    (Err(e), _) => (Err(e), Instant::now()),
                    (Ok(_), Some(d)) => (d.result.map(|_| ()), started_before(d.elapsed)),
                    (Ok(_), None) => (
                        Err(std::io::Error::other("shard write not carried out")),
                        Instant::now(),
                    ),
                };
                note_shard_write(slots[i], &result, encoded.shard(i).len(), started);
                result
            })
            .collect()
    }

    /// Counts a degraded stripe write and says so: a warning the first time since open,
    /// then at debug level (a volume running degraded writes every stripe that way).
    fn note_degraded_write(&self, stripe: StripeId, written: usize, width: usize) {
        self.stats.degraded_writes.fetch_add(1, Ordering::Relaxed);
        let missing = self.unwritable_disks().join("; ");
        if !self.has_warned_degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(stripe = %stripe, written, width, min_shards = self.min_shards, missing = %missing, "writing stripes degraded: too few disks can take a shard; heal completes them once disks are back or replaced");
        } else {
            tracing::debug!(stripe = %stripe, written, width, "stripe written degraded");
        }
    }

    /// The disks that take no new shards, each with why.
    fn unwritable_disks(&self) -> Vec<String> {
        self.disk_set()
            .iter()
            .filter_map(|slot| {
                let why = if slot.disk.is_none() {
                    match slot.state() {
                        super::DiskState::Active | super::DiskState::Draining => {
                            let reason = slot.why_unavailable.as_deref().unwrap_or("not opened");
                            format!("unavailable: {reason}")
                        }
                        state => format!("{state:?}").to_lowercase(),
                    }
                } else if slot.state() != super::DiskState::Active {
                    format!("{:?}", slot.state()).to_lowercase()
                } else if slot.write_failed.load(Ordering::Acquire) {
                    "a write to it failed since the volume was opened".to_string()
                } else {
                    return None;
                };
                Some(format!("disk {} ({why})", slot.config.id))
            })
            .collect()
    }

    /// Chooses the disks of a new stripe: k+m of them, or as many as can take a shard
    /// but at least `min_shards`.
    fn place(
        &self,
        set: &DiskSet,
        stripe: StripeId,
        shard_bytes: u64,
        excluded: &[DiskId],
    ) -> Result<Vec<DiskId>> {
        match self.place_with(set, stripe, shard_bytes, excluded, false) {
            // Free space is read at most every half second; a shortage may be older
            // than that (a delete just freed space), so it is checked afresh first.
            Err(Error::NoSpace(_)) => self.place_with(set, stripe, shard_bytes, excluded, true),
            other => other,
        }
    }

    fn place_with(
        &self,
        set: &DiskSet,
        stripe: StripeId,
        shard_bytes: u64,
        excluded: &[DiskId],
        is_fresh: bool,
    ) -> Result<Vec<DiskId>> {
        self.refresh_slow_disks(set);
        let candidates: Vec<Candidate> = set
            .iter()
            .map(|slot| slot.candidate(is_fresh, !excluded.contains(&slot.config.id)))
            .collect();
        let request = Request {
            stripe,
            count: self.sb.layout.width(),
            min_count: self.min_shards,
            max_per_domain: usize::from(self.sb.layout.m).max(1),
            shard_bytes,
            held_domains: Vec::new(),
        };
        placement::place(&request, &candidates).map_err(|e| match e {
            placement::PlacementError::NotEnoughDisks { need, have, full }
                if have + full >= need =>
            {
                Error::NoSpace(e.to_string())
            }
            placement::PlacementError::NotEnoughDisks { need, have, .. } => {
                let error = Error::TooFewDisks {
                    need,
                    have,
                    why: self.unwritable_disks().join("; "),
                };
                tracing::error!(error = %error, "stripe not written");
                error
            }
        })
    }

    /// Reads `dest.len()` bytes at `from` of a stripe that is neither compressed nor
    /// encrypted straight from its data shards (or the L2 cache) into `dest`, verifying
    /// only the blocks read by their block CRCs: no parity, no decode, no copy. A range
    /// over several shards reads them at once. A stripe read again not long after its
    /// last read (the RAM cache's ghosts remember it) is read whole into the RAM cache
    /// instead, the one copy a hot stripe costs. `false` when the stripe does not
    /// qualify or a shard cannot serve its part; the caller then reads the whole stripe,
    /// which reconstructs from parity, and `dest` holds no promise.
    pub(super) fn read_stripe_direct(
        &self,
        stripe: &StripeRef,
        from: usize,
        dest: &mut [u8],
    ) -> bool {
        let payload_len = stripe.info.payload_len as usize;
        if stripe.info.flags != 0 || from + dest.len() > payload_len {
            return false;
        }
        let touch = Touch::at(from, dest.len());
        if let Some(plain) = self.cache.get_at(stripe.id, touch) {
            return copy_cached(&plain, from, dest);
        }
        if is_large_part(dest.len(), payload_len)
            && self.cache.is_wanted(stripe.id, payload_len, touch)
        {
            let mut whole = vec![0u8; payload_len];
            let Some(source) = self.read_stored(stripe, 0, &mut whole) else {
                return false;
            };
            dest.copy_from_slice(&whole[from..from + dest.len()]);
            let plain = Arc::new(whole);
            if source == Source::Disks {
                self.offer_l2(stripe, || vec![Box::new(PlainPart(plain.clone()))]);
            }
            self.cache.insert_at(stripe.id, plain, touch);
            return true;
        }
        match self.read_stored(stripe, from, dest) {
            None => false,
            Some(Source::Disks) if from == 0 && dest.len() == payload_len => {
                self.offer_l2(stripe, || vec![Box::new(dest.to_vec())]);
                true
            }
            Some(_) => true,
        }
    }

    /// Hands the stored payload of `stripe` (made by `parts` only if it is taken) to the
    /// L2 cache's writer, when there is an L2 cache that wants it.
    fn offer_l2(&self, stripe: &StripeRef, parts: impl FnOnce() -> Vec<Part>) {
        if let Some(l2) = &self.l2
            && l2.wants(stripe.id, stripe.info.payload_len as usize)
        {
            l2.offer(stripe.id, payload_info(stripe), parts());
        }
    }

    /// Reads `dest.len()` plain bytes at `from` of a compressed or encrypted stripe by
    /// opening only the frames that hold them: the frame table (cached by stripe id, or
    /// implied by the record when no frame is compressed), then those frames' bytes from
    /// the one or two data shards holding them, verified by their block CRCs, then the
    /// frames, authenticated when sealed. The same contract as
    /// [`Volume::read_stripe_direct`]: `false` when a shard cannot serve its part or a
    /// frame does not open, and the caller reads the whole stripe; also when the stripe
    /// was read not long ago (the RAM cache's ghosts remember it), so that whole read
    /// decodes it into the cache for the reads after.
    pub(super) fn read_stripe_frames(
        &self,
        ino: InodeId,
        index: u64,
        stripe: &StripeRef,
        from: usize,
        dest: &mut [u8],
    ) -> bool {
        let plain_len = stripe.info.plain_len as usize;
        if !stripe.info.is_framed() || from + dest.len() > plain_len {
            return false;
        }
        let touch = Touch::at(from, dest.len());
        if let Some(plain) = self.cache.get_at(stripe.id, touch) {
            return copy_cached(&plain, from, dest);
        }
        if is_large_part(dest.len(), plain_len) && self.cache.is_wanted(stripe.id, plain_len, touch)
        {
            return false;
        }
        let ctx = StripeContext {
            volume: self.sb.volume,
            inode: ino,
            chunk: index,
            stripe: stripe.id,
        };
        let Some(table) = self.frame_table(&ctx, stripe) else {
            return false;
        };
        let frames = table.covering(from..from + dest.len());
        if frames.is_empty() {
            return false;
        }
        let span = table.stored_span(frames.clone());
        let mut stored = vec![0u8; span.len()];
        if !self.read_payload(stripe, span.start, &mut stored) {
            return false;
        }
        let plain_start = table.plain_range(frames.start).start;
        let mut plain = Vec::with_capacity(table.plain_range(frames.end - 1).end - plain_start);
        for frame in frames.clone() {
            let range = table.stored_range(frame);
            let bytes = &stored[range.start - span.start..range.end - span.start];
            if let Err(e) = self
                .codec
                .open_frame(&ctx, &table, frame, bytes, &mut plain)
            {
                tracing::debug!(stripe = %stripe.id, inode = %ino, frame, error = %e, "frame did not open; reading the whole stripe");
                return false;
            }
        }
        self.stats
            .frames_decoded
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        dest.copy_from_slice(&plain[from - plain_start..][..dest.len()]);
        true
    }

    /// The frame table of a framed stripe: cached, implied by the record when no frame
    /// is compressed, or read from the head of the payload (verified by its block CRCs,
    /// and authenticated when sealed); `None` when it cannot be read or fails its checks.
    fn frame_table(&self, ctx: &StripeContext, stripe: &StripeRef) -> Option<Arc<FrameTable>> {
        if let Some(table) = self.tables.get(stripe.id) {
            return Some(table);
        }
        let found = match self.codec.implied_frame_table(&stripe.info) {
            Ok(Some(table)) => Ok(table),
            Ok(None) => {
                let len = self.codec.frame_table_len(&stripe.info).ok()??;
                let mut bytes = vec![0u8; len];
                if !self.read_payload(stripe, 0, &mut bytes) {
                    return None;
                }
                self.codec.frame_table(ctx, &stripe.info, &bytes)
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(table) => {
                let table = Arc::new(table);
                self.tables.insert(stripe.id, table.clone());
                Some(table)
            }
            Err(e) => {
                tracing::debug!(stripe = %stripe.id, error = %e, "no usable frame table; reading the whole stripe");
                None
            }
        }
    }

    /// Reads stored payload bytes `from..from + dest.len()` of `stripe` into `dest`: from
    /// the L2 cache when it has them, else from the data shards
    /// ([`Volume::read_payload_disks`]); `false` when neither can.
    fn read_payload(&self, stripe: &StripeRef, from: usize, dest: &mut [u8]) -> bool {
        self.read_stored(stripe, from, dest).is_some()
    }

    /// [`Volume::read_payload`], saying where the bytes came from.
    fn read_stored(&self, stripe: &StripeRef, from: usize, dest: &mut [u8]) -> Option<Source> {
        if let Some(l2) = &self.l2
            && l2.read_range(stripe.id, &payload_info(stripe), from, dest)
        {
            return Some(Source::L2);
        }
        self.read_payload_disks(stripe, from, dest)
            .then_some(Source::Disks)
    }

    /// Reads payload bytes `from..from + dest.len()` of `stripe` from its data shards into
    /// `dest`, each shard's part verified by its block CRCs, several shards at once;
    /// `false` when a part cannot be read (a shard on a disk out of reach, missing or
    /// failing its check).
    fn read_payload_disks(&self, stripe: &StripeRef, from: usize, dest: &mut [u8]) -> bool {
        let shard_len = stripe.info.shard_len as usize;
        let k = self.codec.k();
        if shard_len == 0
            || from + dest.len() > stripe.info.payload_len as usize
            || from + dest.len() > k * shard_len
        {
            return false;
        }
        // The parts of the range, one per data shard: (shard, start in shard, bytes).
        let mut parts = Vec::with_capacity(k);
        let mut rest = dest;
        let mut at = from;
        while !rest.is_empty() {
            let index = at / shard_len;
            let start = at - index * shard_len;
            let (part, tail) = rest.split_at_mut(rest.len().min(shard_len - start));
            at += part.len();
            parts.push((index, start, part));
            rest = tail;
        }
        // A part on a disk out of reach means a reconstruction, which reads the whole
        // stripe: reading the other parts first would only read them twice.
        if parts
            .iter()
            .any(|(index, _, _)| self.shard_disk(stripe, *index).is_none())
        {
            return false;
        }
        self.read_shard_parts(stripe, parts, tracing::Level::DEBUG)
            .into_iter()
            .all(|ok| ok)
    }

    /// Reads each `(data shard, start in shard, destination)` part of `stripe` with
    /// [`Volume::read_shard_part`] (failures logged at `level`), at once on the shard
    /// I/O pool when there are several; whether each succeeded.
    fn read_shard_parts(
        &self,
        stripe: &StripeRef,
        parts: Vec<(usize, usize, &mut [u8])>,
        level: tracing::Level,
    ) -> Vec<bool> {
        let read_part = |(index, start, part): (usize, usize, &mut [u8])| {
            contained(
                || self.read_shard_part(stripe, index, start, part, level),
                || false,
            )
        };
        if parts.len() == 1 {
            return parts.into_iter().map(read_part).collect();
        }
        let set = self.disk_set();
        let slots = parts
            .iter()
            .filter_map(|(index, _, _)| stripe.disk_of(*index).and_then(|d| set.slot(d)));
        if is_batched(slots) {
            return self.read_shard_parts_batched(stripe, parts, level);
        }
        self.shard_io.map(parts, read_part)
    }

    /// [`Volume::read_shard_parts`] as one batch (`store::run_batch`: one io_uring
    /// submission for the parts of all disks).
    fn read_shard_parts_batched(
        &self,
        stripe: &StripeRef,
        parts: Vec<(usize, usize, &mut [u8])>,
        level: tracing::Level,
    ) -> Vec<bool> {
        let set = self.disk_set();
        let shard_len = stripe.info.shard_len as usize;
        let mut ok = vec![false; parts.len()];
        let mut targets = Vec::new();
        let mut plans = Vec::new();
        for (position, (index, start, dest)) in parts.into_iter().enumerate() {
            let Some((disk_id, slot, disk)) = set.shard_home(stripe, index) else {
                continue;
            };
            let Ok(plan) = shard::RangeRead::new(shard_len, start, dest.len()) else {
                continue;
            };
            let key = ShardKey {
                stripe: stripe.id,
                index: ShardIndex(index as u8),
            };
            targets.push((position, disk_id, slot, disk, key));
            plans.push((plan, dest));
        }
        let done = {
            let mut ranges: Vec<[crate::store::ShardRange<'_>; 1]> = plans
                .iter_mut()
                .map(|(plan, dest)| plan.ranges(dest))
                .collect();
            let ops = targets
                .iter()
                .zip(ranges.iter_mut())
                .map(|((_, _, _, disk, key), ranges)| BatchOp::Ranges {
                    disk: disk.as_ref(),
                    key: *key,
                    ranges,
                })
                .collect();
            run_batch(ops)
        };
        for (((position, disk_id, slot, disk, key), (plan, dest)), done) in
            targets.into_iter().zip(plans).zip(done)
        {
            let read = done.result.map(|_| ());
            let checked = plan.verify(disk.as_ref(), self.sb.volume, key, dest, read);
            ok[position] = self.note_part_read(
                disk_id,
                slot,
                key,
                dest.len(),
                started_before(done.elapsed),
                checked,
                level,
            );
        }
        ok
    }

    /// Reads a whole stripe that is neither compressed nor encrypted and fills its k
    /// shards exactly, when some data shard is missing or bad, straight into `dest`: the
    /// data shards at hand go there directly, only as many parity shards are read as data
    /// shards are missing, and only those are rebuilt (no copy of the stripe, no cache).
    /// `Ok(false)` when the stripe does not qualify; the caller then reads it whole.
    pub(super) fn read_stripe_rebuilding(
        &self,
        ino: InodeId,
        stripe: &StripeRef,
        dest: &mut [u8],
    ) -> Result<bool> {
        let k = self.codec.k();
        let shard_len = stripe.info.shard_len as usize;
        if stripe.info.flags != 0
            || shard_len == 0
            || stripe.disks.len() < k
            || stripe.info.payload_len as usize != k * shard_len
            || dest.len() != k * shard_len
        {
            return Ok(false);
        }
        let width = stripe.disks.len();
        let at_hand = |i: &usize| self.shard_disk(stripe, *i).is_some();
        let mut missing = vec![true; k];
        let data_parts: Vec<(usize, usize, &mut [u8])> = dest
            .chunks_mut(shard_len)
            .enumerate()
            .filter(|(i, _)| at_hand(i))
            .map(|(i, part)| (i, 0, part))
            .collect();
        let data_indices: Vec<usize> = data_parts.iter().map(|(i, _, _)| *i).collect();
        // Parity on disks at hand: as many as data disks are out of reach are read at
        // once with the data shards; more below if some read fails.
        let mut order = (k..width).filter(at_hand);
        let first_parity: Vec<usize> = order.by_ref().take(k - data_indices.len()).collect();
        let mut parity: Vec<Option<shard::ShardObject>> = (k..width).map(|_| None).collect();
        let (data_ok, first_found) = self.shard_io.join(
            || self.read_shard_parts(stripe, data_parts, tracing::Level::WARN),
            || self.read_checked_shards(stripe, &first_parity),
        );
        for (i, ok) in data_indices.into_iter().zip(data_ok) {
            missing[i] = !ok;
        }
        let lost = missing.iter().filter(|&&gone| gone).count();
        if lost == 0 {
            return Ok(true); // every data shard read fine this time
        }
        // Enough parity for the data shards lost is found below, or the rebuild reports
        // too few shards.
        let (found, first_bad) = keep_shards(&first_parity, first_found, &mut parity, k);
        let still = lost.saturating_sub(found);
        let (_, more_bad) = self.read_more_shards(stripe, &mut order, still, &mut parity, k);
        let bad = lost as u64 + first_bad + more_bad;
        self.stats.stripes_read.fetch_add(1, Ordering::Relaxed);
        self.stats.shard_errors.fetch_add(bad, Ordering::Relaxed);
        self.stats.degraded_reads.fetch_add(1, Ordering::Relaxed);
        self.records.note_degraded_read();
        let views: Vec<Option<&[u8]>> = parity
            .iter()
            .map(|s| s.as_ref().map(|o| o.payload()))
            .collect();
        self.codec
            .rebuild_plain_in_place(&stripe.info, dest, &missing, &views)
            .map_err(|e| self.stripe_failed(stripe, ino, e))?;
        Ok(true)
    }

    /// Reads `dest.len()` payload bytes at `start` of data shard `index` of `stripe` into
    /// `dest`; `false` when the shard is missing or fails verification, logged at `level`
    /// (a failure the caller recovers from by reading more is only a debug message).
    fn read_shard_part(
        &self,
        stripe: &StripeRef,
        index: usize,
        start: usize,
        dest: &mut [u8],
        level: tracing::Level,
    ) -> bool {
        let set = self.disk_set();
        let Some((disk_id, slot, disk)) = set.shard_home(stripe, index) else {
            return false;
        };
        let key = ShardKey {
            stripe: stripe.id,
            index: ShardIndex(index as u8),
        };
        let shard_len = stripe.info.shard_len as usize;
        let started = Instant::now();
        let read = shard::read_shard_range_into(
            disk.as_ref(),
            self.sb.volume,
            key,
            shard_len,
            start,
            dest,
        );
        self.note_part_read(disk_id, slot, key, dest.len(), started, read, level)
    }

    /// Counts and logs (at `level`) a read of `len` payload bytes of shard `key` on
    /// `disk_id` that started at `started`; whether it succeeded.
    #[allow(clippy::too_many_arguments)]
    fn note_part_read(
        &self,
        disk_id: DiskId,
        slot: &DiskSlot,
        key: ShardKey,
        len: usize,
        started: Instant,
        read: std::result::Result<(), ShardReadError>,
        level: tracing::Level,
    ) -> bool {
        match read {
            Ok(()) => {
                // A range read fetches the blocks it covers and their CRCs, no head.
                let crcs = 4 * (len.div_ceil(shard::BLOCK_PAYLOAD) + 1);
                slot.stats.note_read((len + crcs) as u64, started);
                true
            }
            Err(e) => {
                // A failed direct read is read again by the whole-stripe path, which
                // counts the failure: counted once, where it is a warning.
                if level == tracing::Level::WARN {
                    slot.stats.note_read_failure(&e);
                }
                if level == tracing::Level::WARN {
                    tracing::warn!(disk = %disk_id, shard = %key, error = %e, "shard unreadable; reconstructing");
                } else {
                    tracing::debug!(disk = %disk_id, shard = %key, error = %e, "direct shard read failed; reading the whole stripe");
                }
                false
            }
        }
    }

    /// Reads shard `i` of `stripe` and checks it (frame, key, length); logs and returns
    /// `None` when it is missing or bad, so the caller reconstructs.
    pub(super) fn read_checked_shard(
        &self,
        stripe: &StripeRef,
        i: usize,
    ) -> Option<shard::ShardObject> {
        let key = ShardKey {
            stripe: stripe.id,
            index: ShardIndex(i as u8),
        };
        let set = self.disk_set();
        let (disk_id, slot, disk) = set.shard_home(stripe, i)?;
        let started = Instant::now();
        let read = shard::read_shard(disk.as_ref(), self.sb.volume, key);
        self.check_read_shard(stripe, disk_id, slot, key, started, read)
    }

    /// Counts a whole-shard read of `key` on `disk_id` that started at `started` and
    /// checks its length against the stripe's; logs and returns `None` when it is
    /// missing or bad.
    fn check_read_shard(
        &self,
        stripe: &StripeRef,
        disk_id: DiskId,
        slot: &DiskSlot,
        key: ShardKey,
        started: Instant,
        read: std::result::Result<shard::ShardObject, ShardReadError>,
    ) -> Option<shard::ShardObject> {
        match &read {
            Ok(object) => {
                let bytes = shard::object_len(object.payload().len()) as u64;
                slot.stats.note_read(bytes, started);
            }
            Err(e) => slot.stats.note_read_failure(e),
        }
        match read {
            Ok(object) if object.payload().len() == stripe.info.shard_len as usize => Some(object),
            Ok(object) => {
                slot.stats.note_bad_shard();
                tracing::warn!(disk = %disk_id, shard = %key, len = object.payload().len(), "shard has the wrong length; reconstructing");
                None
            }
            Err(ShardReadError::Missing) => {
                tracing::warn!(disk = %disk_id, shard = %key, "shard missing; reconstructing");
                None
            }
            Err(e) => {
                tracing::warn!(disk = %disk_id, shard = %key, error = %e, "shard unreadable; reconstructing");
                None
            }
        }
    }

    /// Reads shards of `stripe` from `candidates` (shard indices), in batches of as many
    /// as are still missing, until `need` were read and verified or the candidates run
    /// out; each goes into `slots[index - base]`. Returns (read, failed).
    fn read_more_shards(
        &self,
        stripe: &StripeRef,
        candidates: &mut dyn Iterator<Item = usize>,
        need: usize,
        slots: &mut [Option<shard::ShardObject>],
        base: usize,
    ) -> (usize, u64) {
        let (mut found, mut bad) = (0, 0);
        while found < need {
            let batch: Vec<usize> = candidates.take(need - found).collect();
            if batch.is_empty() {
                break;
            }
            let objects = self.read_checked_shards(stripe, &batch);
            let (read, failed) = keep_shards(&batch, objects, slots, base);
            found += read;
            bad += failed;
        }
        (found, bad)
    }

    /// [`Volume::read_checked_shard`] for each of `indices`, at once on the shard I/O
    /// pool when there are several.
    fn read_checked_shards(
        &self,
        stripe: &StripeRef,
        indices: &[usize],
    ) -> Vec<Option<shard::ShardObject>> {
        let read = |&i: &usize| contained(|| self.read_checked_shard(stripe, i), || None);
        if indices.len() < 2 {
            return indices.iter().map(read).collect();
        }
        let set = self.disk_set();
        let slots = indices
            .iter()
            .filter_map(|i| stripe.disk_of(*i).and_then(|d| set.slot(d)));
        if is_batched(slots) {
            return self.read_checked_shards_batched(stripe, indices);
        }
        self.shard_io.map(indices.iter().collect(), read)
    }

    /// [`Volume::read_checked_shards`] as one batch (`store::run_batch`: one io_uring
    /// submission for all the shards).
    fn read_checked_shards_batched(
        &self,
        stripe: &StripeRef,
        indices: &[usize],
    ) -> Vec<Option<shard::ShardObject>> {
        let set = self.disk_set();
        let mut found: Vec<Option<shard::ShardObject>> = indices.iter().map(|_| None).collect();
        let mut targets = Vec::new();
        for (position, &i) in indices.iter().enumerate() {
            let Some((disk_id, slot, disk)) = set.shard_home(stripe, i) else {
                continue;
            };
            let key = ShardKey {
                stripe: stripe.id,
                index: ShardIndex(i as u8),
            };
            targets.push((position, disk_id, slot, disk, key));
        }
        let ops = targets
            .iter()
            .map(|(_, _, _, disk, key)| BatchOp::Get {
                disk: disk.as_ref(),
                key: *key,
            })
            .collect();
        let done = run_batch(ops);
        for ((position, disk_id, slot, disk, key), done) in targets.into_iter().zip(done) {
            let read = match done.result {
                Ok(Some(bytes)) => shard::verify_shard(disk.as_ref(), self.sb.volume, key, bytes),
                Ok(None) => Err(ShardReadError::Missing),
                Err(e) => Err(shard::read_error(e)),
            };
            let started = started_before(done.elapsed);
            found[position] = self.check_read_shard(stripe, disk_id, slot, key, started, read);
        }
        found
    }

    /// The plaintext of a stored chunk, for a read of `touch`.
    pub(super) fn read_chunk(
        &self,
        ino: InodeId,
        index: u64,
        chunk: &Chunk,
        touch: Touch,
    ) -> Result<Plain> {
        match chunk {
            Chunk::Inline(bytes) => Ok(Arc::new(bytes.clone())),
            Chunk::Stripe(s) => self.read_stripe(ino, index, s, touch),
            Chunk::Packed(p) => self.read_packed_whole(ino, p).map(Arc::new),
        }
    }

    /// Reads and decodes a stripe for a read of `touch`, kept in the RAM cache: from the
    /// RAM cache, else the L2 cache, else the disks (data shards first, parity only for
    /// shards that are missing or fail verification: a degraded read, counted and
    /// logged). A stripe read from all its data shards is offered to the L2 cache.
    pub(super) fn read_stripe(
        &self,
        ino: InodeId,
        index: u64,
        stripe: &StripeRef,
        touch: Touch,
    ) -> Result<Plain> {
        if let Some(plain) = self.cache.get_at(stripe.id, touch) {
            return Ok(plain);
        }
        if let Some(plain) = self.read_stripe_l2(ino, index, stripe) {
            let plain = Arc::new(plain);
            self.cache.insert_at(stripe.id, plain.clone(), touch);
            return Ok(plain);
        }
        let k = self.codec.k();
        let width = stripe.disks.len();
        let mut shards: Vec<Option<shard::ShardObject>> = (0..width).map(|_| None).collect();
        // The first k shards on disks at hand (the data shards when all are there), then as
        // many more as shards were missing or bad; each batch read at once: a cold read
        // waits for the slowest disk of a batch instead of the sum.
        let absent: Vec<usize> = (0..width)
            .filter(|&i| self.shard_disk(stripe, i).is_none())
            .collect();
        // A data shard out of reach counts as a shard error; a parity shard only if needed.
        let out_of_reach = absent.iter().filter(|&&i| i < k).count() as u64;
        let mut order = (0..width).filter(|i| !absent.contains(i));
        let (good, failed) = self.read_more_shards(stripe, &mut order, k, &mut shards, 0);
        let bad = out_of_reach + failed;
        self.stats.stripes_read.fetch_add(1, Ordering::Relaxed);
        if bad > 0 {
            self.stats.shard_errors.fetch_add(bad, Ordering::Relaxed);
            self.stats.degraded_reads.fetch_add(1, Ordering::Relaxed);
            self.records.note_degraded_read();
        }
        if good < k {
            self.records.note_failed_read();
            tracing::error!(stripe = %stripe.id, inode = %ino, have = good, need = k, "stripe unrecoverable");
            return Err(Error::Unrecoverable {
                stripe: stripe.id,
                inode: ino,
                have: good as u8,
                need: k as u8,
            });
        }
        let views: Vec<Option<&[u8]>> = shards
            .iter()
            .map(|s| s.as_ref().map(|o| o.payload()))
            .collect();
        let ctx = StripeContext {
            volume: self.sb.volume,
            inode: ino,
            chunk: index,
            stripe: stripe.id,
        };
        let plain = self
            .codec
            .decode(&ctx, &stripe.info, &views)
            .map_err(|e| self.stripe_failed(stripe, ino, e))?;
        let plain = Arc::new(plain);
        self.cache.insert_at(stripe.id, plain.clone(), touch);
        // With every data shard read (nothing rebuilt) they are the stored payload.
        if shards[..k].iter().all(Option::is_some) {
            self.offer_l2(stripe, || {
                let data = shards.into_iter().take(k).flatten();
                data.map(|o| Box::new(ShardPart(o)) as Part).collect()
            });
        }
        Ok(plain)
    }

    /// The plaintext of `stripe` decoded from its L2 cache entry; `None` without an L2
    /// cache, on a miss, or when the entry does not decode (logged; the disks are read).
    fn read_stripe_l2(&self, ino: InodeId, index: u64, stripe: &StripeRef) -> Option<Vec<u8>> {
        let l2 = self.l2.as_ref()?;
        let (k, m) = (self.codec.k(), self.codec.m());
        let shard_len = stripe.info.shard_len as usize;
        let payload_len = stripe.info.payload_len as usize;
        if shard_len == 0 || payload_len > k * shard_len {
            return None;
        }
        // The payload in place of the k data shards, zero-padded as they are.
        let mut data = vec![0u8; k * shard_len];
        if !l2.read_whole(stripe.id, &payload_info(stripe), &mut data[..payload_len]) {
            return None;
        }
        if !stripe.info.is_framed() {
            // A plain payload is the plain bytes, checked against the record's CRC.
            data.truncate(payload_len);
            return Some(data);
        }
        let views: Vec<Option<&[u8]>> = (data.chunks(shard_len).map(Some))
            .chain((0..m).map(|_| None))
            .collect();
        let ctx = StripeContext {
            volume: self.sb.volume,
            inode: ino,
            chunk: index,
            stripe: stripe.id,
        };
        match self.codec.decode(&ctx, &stripe.info, &views) {
            Ok(plain) => Some(plain),
            Err(e) => {
                tracing::warn!(stripe = %stripe.id, inode = %ino, error = %e, "a stripe from the L2 cache did not decode; reading the disks");
                None
            }
        }
    }
}

impl Volume {
    /// A stripe that did not decode: counted in the volume's records (an AEAD or
    /// payload CRC failure cannot be blamed on one disk), then [`stripe_error`].
    fn stripe_failed(&self, stripe: &StripeRef, ino: InodeId, e: TransformError) -> Error {
        self.records.note_stripe_failure(&e);
        stripe_error(stripe, ino, e)
    }
}

/// True when a read of `len` bytes of a stripe of `stripe_len` covers enough of it (a
/// quarter) that reading the whole stripe into the RAM cache, when it is read again,
/// costs at most four such reads. Smaller reads are never widened: random 4 KiB reads
/// over a large file touch each stripe a few times, and reading it whole each second
/// time cut their rate to a third (PERFORMANCE.md, "Caches and random reads").
fn is_large_part(len: usize, stripe_len: usize) -> bool {
    len.saturating_mul(4) >= stripe_len
}

/// Copies `dest.len()` bytes at `from` of a cached stripe's plaintext; false when it is
/// shorter than that.
fn copy_cached(plain: &[u8], from: usize, dest: &mut [u8]) -> bool {
    match plain.get(from..from + dest.len()) {
        Some(bytes) => {
            dest.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Whether the shard I/O of these disks can go to the kernel as one batch: every one
/// open and doing io_uring ([`crate::store::Disk::batch_target`]).
fn is_batched<'s>(mut slots: impl Iterator<Item = &'s Arc<DiskSlot>>) -> bool {
    slots.all(|slot| {
        slot.disk
            .as_ref()
            .is_some_and(|d| d.batch_target().is_some())
    })
}

/// When an I/O that took `elapsed` and ended now started.
fn started_before(elapsed: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(elapsed).unwrap_or(now)
}

/// Counts a shard write of a `payload_len`-byte payload started at `started` in its
/// disk's records, and marks the disk for the next sync.
fn note_shard_write(
    slot: &DiskSlot,
    result: &std::io::Result<()>,
    payload_len: usize,
    started: Instant,
) {
    match result {
        Ok(()) => {
            slot.is_dirty.store(true, Ordering::Release);
            let bytes = shard::object_len(payload_len);
            slot.stats.note_write(bytes as u64, started);
        }
        Err(e) => slot.stats.note_write_failure(e),
    }
}

/// Runs one shard I/O task; a panic in it gives `failed()` (logged), so it fails that one
/// shard, which the caller reconstructs or rolls back, rather than the whole request.
pub(super) fn contained<T>(task: impl FnOnce() -> T, failed: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).unwrap_or_else(|_| {
        tracing::error!("a shard I/O task panicked; counting its shard as failed");
        failed()
    })
}

/// Puts each shard read of `batch` (`objects`, in the same order) into
/// `slots[index - base]`; how many were read and how many failed.
fn keep_shards(
    batch: &[usize],
    objects: Vec<Option<shard::ShardObject>>,
    slots: &mut [Option<shard::ShardObject>],
    base: usize,
) -> (usize, u64) {
    let (mut read, mut failed) = (0, 0);
    for (i, object) in batch.iter().zip(objects) {
        match object {
            Some(object) => {
                slots[i - base] = Some(object);
                read += 1;
            }
            None => failed += 1,
        }
    }
    (read, failed)
}

/// The error of a stripe that could not be decoded (logged here).
fn stripe_error(stripe: &StripeRef, ino: InodeId, e: TransformError) -> Error {
    tracing::error!(stripe = %stripe.id, inode = %ino, error = %e, "stripe failed verification");
    match e {
        TransformError::TooFewShards { have, need } => Error::Unrecoverable {
            stripe: stripe.id,
            inode: ino,
            have: have as u8,
            need: need as u8,
        },
        TransformError::Authentication => Error::Integrity {
            stripe: stripe.id,
            inode: ino,
            detail: "authentication failed",
        },
        TransformError::Checksum => Error::Integrity {
            stripe: stripe.id,
            inode: ino,
            detail: "checksum mismatch",
        },
        _ => Error::Integrity {
            stripe: stripe.id,
            inode: ino,
            detail: "undecodable stripe",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_shard_task_fails_only_its_shard() {
        assert_eq!(contained(|| 7, || 0), 7);
        // (The test output shows this expected panic's message.)
        let got = contained(|| -> Option<u8> { panic!("disk driver bug") }, || None);
        assert_eq!(got, None);
    }
}

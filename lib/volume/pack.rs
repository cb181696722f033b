//! Small files packed together: many files' contents in one stripe.
//!
//! A file of at most a quarter of the stripe size (and too big to be inline) is not given
//! a stripe of its own when it is closed. Its bytes stay buffered until the next commit
//! (the background commit, an fsync, a sync), which writes the buffered small files of
//! all files together as chunks of the volume's pack file (a [`FileKind::Pack`] inode in
//! no directory), one stripe of up to the stripe size each, and points each file at its
//! bytes there ([`PackedRef`]). The pack stripes are written and the disks synced before
//! the metadata that points into them commits, as for any stripe, so an fsynced small
//! file is as durable as a big one.
//!
//! The pack file's chunks are ordinary chunks: placement, scrub, heal, drain and
//! rebalance treat them as any file's, and their frames are bound to the pack file and
//! chunk. Who uses each pack chunk is derived by the metadata table
//! ([`crate::meta::Packs`]): a chunk no file points into is dropped, and its stripe
//! freed, in the commit that left it unused; the files of a chunk under a quarter used
//! are packed anew (a few MiB per commit), which leaves it unused.

use super::{FileData, State, Volume};
use crate::error::{Error, Result};
use crate::meta::{Chunk, FileKind, Inode, Op, PackChunk, PackedRef, StripeRef};
use crate::types::InodeId;
use std::collections::HashSet;

/// Live bytes of sparse pack chunks packed anew per commit: bounds the reads a commit
/// makes while it holds writers off.
const REPACK_BUDGET_BYTES: u64 = 4 << 20;

/// A small file on its way into a pack chunk.
pub(super) struct Member {
    /// The file.
    pub ino: InodeId,
    /// Its whole contents.
    pub bytes: Vec<u8>,
    /// For a file packed anew from a sparse chunk: where it is now (it moves only if it
    /// still points there). `None` for buffered contents.
    pub was: Option<PackedRef>,
}

/// Members a commit could not pack, with why (their buffered bytes go back to them).
pub(super) type Unpacked = Vec<(Vec<Member>, Error)>;

impl Volume {
    /// Largest file packed with others: a quarter of the stripe size (256 KiB of a
    /// 1 MiB stripe), so a pack chunk holds at least four files. A bigger file's own
    /// stripe wastes little.
    pub(super) fn pack_max_bytes(&self) -> u64 {
        u64::from(self.sb.layout.stripe_bytes) / 4
    }

    /// True when `data` is the whole buffered contents of small file `ino` that the
    /// next commit packs: one chunk, no holes, too big to be inline. The caller holds
    /// the file's data lock (it takes the state lock, as the lock order allows).
    pub(super) fn is_packable(&self, ino: InodeId, data: &FileData) -> bool {
        if data.dirty.len() != 1 || !data.written.is_empty() {
            return false; // decided without the state lock, for most files
        }
        let size = self.lock_state().inode(ino).map_or(0, |i| i.size);
        size > u64::from(self.sb.inline_max_bytes)
            && size <= self.pack_max_bytes()
            && data.dirty.contains_key(&0)
    }

    /// Writes `members` into new pack chunks (as many as their bytes need) and points
    /// each file at its bytes; what could not be packed comes back with the error.
    pub(super) fn store_packs(&self, members: Vec<Member>) -> Unpacked {
        let limit = self.sb.layout.stripe_bytes as usize;
        let mut groups: Vec<Vec<Member>> = Vec::new();
        let mut filled = usize::MAX;
        for member in members {
            if filled.saturating_add(member.bytes.len()) > limit {
                groups.push(Vec::new());
                filled = 0;
            }
            filled += member.bytes.len();
            groups.last_mut().expect("pushed above").push(member);
        }
        let mut unpacked = Vec::new();
        for group in groups {
            if let Err(failed) = self.write_pack(group) {
                unpacked.push(failed);
            }
        }
        unpacked
    }

    /// Writes one pack chunk holding `group` and records it and the files' references.
    fn write_pack(&self, group: Vec<Member>) -> std::result::Result<(), (Vec<Member>, Error)> {
        let total: usize = group.iter().map(|m| m.bytes.len()).sum();
        let mut bytes = Vec::with_capacity(total);
        for member in &group {
            bytes.extend_from_slice(&member.bytes);
        }
        // Pack chunks are only written by a commit, which holds the commit lock: the
        // chunk number taken here is still free when the stripe is recorded.
        let slot = {
            let mut state = self.lock_state();
            self.next_pack_chunk(&mut state)
        };
        let (pack, index) = match slot {
            Ok(slot) => slot,
            Err(e) => return Err((group, e)),
        };
        let stripe = match self.write_stripe(pack, index, &bytes) {
            Ok(stripe) => stripe,
            Err(e) => return Err((group, e)),
        };
        let mut state = self.lock_state();
        if let Err(e) = self.record_pack_chunk(&mut state, pack, index, &stripe) {
            state.frees.push(stripe);
            return Err((group, e));
        }
        self.stats
            .files_packed
            .fetch_add(group.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut offset = 0u32;
        let mut members = group.into_iter();
        while let Some(member) = members.next() {
            let packed = PackedRef {
                pack,
                index,
                offset,
                len: member.bytes.len() as u32,
            };
            offset += packed.len;
            match self.point_at_pack(&mut state, &member, packed) {
                Ok(()) => {}
                Err(e) => {
                    // The journal refused: this and the later files keep their bytes.
                    let mut rest = vec![member];
                    rest.extend(members);
                    return Err((rest, e));
                }
            }
        }
        Ok(())
    }

    /// The pack file (made on first use) and the number of its next chunk.
    fn next_pack_chunk(&self, state: &mut State) -> Result<(InodeId, u64)> {
        state.meta.check_writable()?;
        let pack = match state.pack {
            Some(pack) => pack,
            None => {
                let ino = state.meta.allocate_inode()?;
                let inode = Inode::new(FileKind::Pack, 0o600, 0, 0);
                state.meta.record(Op::PutInode { ino, inode })?;
                state.pack = Some(ino);
                ino
            }
        };
        let next = (state.meta.table().chunks.get(&pack))
            .and_then(|chunks| chunks.last_key_value())
            .map_or(0, |(index, _)| index + 1);
        Ok((pack, next))
    }

    /// Records chunk `index` of the pack file and the file's new size.
    fn record_pack_chunk(
        &self,
        state: &mut State,
        pack: InodeId,
        index: u64,
        stripe: &StripeRef,
    ) -> Result<()> {
        let chunk = Chunk::Stripe(stripe.clone());
        state.meta.record(Op::SetChunk {
            ino: pack,
            index,
            chunk,
        })?;
        let end = index * u64::from(self.sb.layout.stripe_bytes) + u64::from(stripe.valid_len);
        state.update_inode(pack, |i| i.size = i.size.max(end))?;
        Ok(())
    }

    /// Points `member`'s file at its bytes in a pack chunk, freeing the stripe its
    /// contents had before. A file freed meanwhile, or (packed anew) no longer where it
    /// was, is left alone: its bytes in the chunk are simply unused.
    fn point_at_pack(&self, state: &mut State, member: &Member, packed: PackedRef) -> Result<()> {
        let table = state.meta.table();
        if !table.inodes.contains_key(&member.ino) {
            return Ok(());
        }
        let old = table
            .chunks
            .get(&member.ino)
            .and_then(|c| c.get(&0))
            .cloned();
        if let Some(was) = member.was
            && old != Some(Chunk::Packed(was))
        {
            return Ok(());
        }
        state.meta.record(Op::SetChunk {
            ino: member.ino,
            index: 0,
            chunk: Chunk::Packed(packed),
        })?;
        if let Some(Chunk::Stripe(old)) = old {
            state.frees.push(old);
        }
        Ok(())
    }

    /// Drops the pack chunks no file points into any more; their stripes are freed once
    /// the batch commits.
    pub(super) fn drop_unused_packs(&self, state: &mut State) -> Result<()> {
        if state.meta.check_writable().is_err() {
            return Ok(());
        }
        let unused: Vec<PackChunk> = state.meta.table().packs.dead().iter().copied().collect();
        for (pack, index) in unused {
            let stripe = state.meta.table().pack_chunk_stripe((pack, index)).cloned();
            state.meta.record(Op::DropChunk { ino: pack, index })?;
            state.frees.extend(stripe);
        }
        Ok(())
    }

    /// The files of sparse pack chunks (under a quarter used), read back to be packed
    /// anew, up to [`REPACK_BUDGET_BYTES`]; files in `taken` (packed this commit
    /// anyway) are skipped. A file that cannot be read now stays where it is.
    pub(super) fn repack_members(&self, taken: &HashSet<InodeId>) -> Vec<Member> {
        let mut wanted: Vec<(InodeId, PackedRef, StripeRef)> = Vec::new();
        {
            let state = self.lock_state();
            if state.meta.check_writable().is_err() {
                return Vec::new();
            }
            let table = state.meta.table();
            let mut budget = REPACK_BUDGET_BYTES;
            for &(pack, index) in table.packs.sparse() {
                let Some(stripe) = table.pack_chunk_stripe((pack, index)) else {
                    continue;
                };
                let Some(use_) = table.packs.get((pack, index)) else {
                    continue;
                };
                if use_.live_bytes > budget {
                    break;
                }
                budget -= use_.live_bytes;
                for ino in use_.members.keys() {
                    if taken.contains(ino) {
                        continue;
                    }
                    if let Some(Chunk::Packed(p)) = table.chunks.get(ino).and_then(|c| c.get(&0)) {
                        wanted.push((*ino, *p, stripe.clone()));
                    }
                }
            }
        }
        let mut members = Vec::with_capacity(wanted.len());
        for (ino, packed, stripe) in wanted {
            let mut bytes = vec![0u8; packed.len as usize];
            match self.read_packed(&packed, &stripe, 0, &mut bytes) {
                Ok(()) => members.push(Member {
                    ino,
                    bytes,
                    was: Some(packed),
                }),
                Err(e) => {
                    tracing::warn!(inode = %ino, error = %e, "a packed file could not be read to pack it anew; it stays where it is");
                }
            }
        }
        members
    }

    /// The stripe holding the bytes `packed` points at (`None`: metadata damage that
    /// fsck reports).
    pub(super) fn pack_stripe(state: &State, packed: &PackedRef) -> Option<StripeRef> {
        state
            .meta
            .table()
            .pack_chunk_stripe(packed.chunk())
            .cloned()
    }

    /// Reads `dest.len()` bytes at `from` of a packed file's contents from its pack
    /// stripe: only the blocks (or frames) holding them when it can, else the whole
    /// stripe (reconstructed from parity if need be, and cached).
    pub(super) fn read_packed(
        &self,
        packed: &PackedRef,
        stripe: &StripeRef,
        from: usize,
        dest: &mut [u8],
    ) -> Result<()> {
        let at = packed.offset as usize + from;
        let is_done = if stripe.info.is_framed() {
            self.read_stripe_frames(packed.pack, packed.index, stripe, at, dest)
        } else {
            self.read_stripe_direct(stripe, at, dest)
        };
        if is_done {
            return Ok(());
        }
        // The file's bytes are one read of the pack stripe, wherever they sit in it.
        let touch = crate::cache::Touch::at(at, dest.len());
        let plain = self.read_stripe(packed.pack, packed.index, stripe, touch)?;
        let bytes = plain.get(at..at + dest.len()).ok_or(Error::Integrity {
            stripe: stripe.id,
            inode: packed.pack,
            detail: "a packed file reaches past its pack chunk",
        })?;
        dest.copy_from_slice(bytes);
        Ok(())
    }

    /// The contents of a packed file whose pack chunk is looked up now.
    pub(super) fn read_packed_whole(&self, ino: InodeId, packed: &PackedRef) -> Result<Vec<u8>> {
        let stripe = Self::pack_stripe(&self.lock_state(), packed).ok_or(Error::Invalid(
            "a packed file points at a pack chunk that does not exist (run argosfs-fsck)",
        ));
        let stripe = stripe.inspect_err(|_| {
            tracing::error!(inode = %ino, pack = %packed.pack, chunk = packed.index, "packed file points nowhere");
        })?;
        let mut bytes = vec![0u8; packed.len as usize];
        self.read_packed(packed, &stripe, 0, &mut bytes)?;
        Ok(bytes)
    }
}

//! Who uses each chunk of a pack file: derived from the chunk tables by
//! [`crate::meta::Table::apply`] (and rebuilt when a snapshot is loaded), never stored.
//!
//! A pack chunk is one stripe holding the contents of many small files, each pointing in
//! with a [`PackedRef`]. A chunk no file points into any more is *dead*: the volume drops
//! it (and frees its stripe) in the commit that made it so. A chunk whose files hold less
//! than a quarter of its bytes is *sparse*: the volume packs those files anew, which
//! leaves it dead. Both sets are kept as chunks change, so a commit finds them without a
//! scan.

use super::inode::PackedRef;
use crate::types::InodeId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A pack chunk: (pack file, chunk number).
pub type PackChunk = (InodeId, u64);

/// The files packed into one pack chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackUse {
    /// Each file pointing into the chunk, with its bytes there.
    pub members: BTreeMap<InodeId, u32>,
    /// Bytes of those files together.
    pub live_bytes: u64,
    /// Bytes the chunk holds (its valid length).
    pub stored_bytes: u64,
}

/// The use of every pack chunk, and the chunks to drop or repack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packs {
    uses: HashMap<PackChunk, PackUse>,
    dead: BTreeSet<PackChunk>,
    sparse: BTreeSet<PackChunk>,
}

impl Packs {
    /// The use of `chunk`, if it is a pack chunk.
    pub fn get(&self, chunk: PackChunk) -> Option<&PackUse> {
        self.uses.get(&chunk)
    }

    /// Every pack chunk with its use.
    pub fn iter(&self) -> impl Iterator<Item = (&PackChunk, &PackUse)> {
        self.uses.iter()
    }

    /// Pack chunks no file points into.
    pub fn dead(&self) -> &BTreeSet<PackChunk> {
        &self.dead
    }

    /// Pack chunks mostly unused, whose files are to be packed anew.
    pub fn sparse(&self) -> &BTreeSet<PackChunk> {
        &self.sparse
    }

    /// Chunk `chunk` of a pack file now holds `stored_bytes` (written or moved).
    pub(super) fn set_stored(&mut self, chunk: PackChunk, stored_bytes: u64) {
        self.uses.entry(chunk).or_default().stored_bytes = stored_bytes;
        self.classify(chunk);
    }

    /// Chunk `chunk` of a pack file is gone.
    pub(super) fn remove(&mut self, chunk: PackChunk) {
        self.uses.remove(&chunk);
        self.dead.remove(&chunk);
        self.sparse.remove(&chunk);
    }

    /// File `ino` now points into a pack chunk with `packed` (ignored when that chunk
    /// does not exist: fsck reports such a reference).
    pub(super) fn add(&mut self, ino: InodeId, packed: &PackedRef) {
        let chunk = packed.chunk();
        if let Some(use_) = self.uses.get_mut(&chunk) {
            if let Some(old) = use_.members.insert(ino, packed.len) {
                use_.live_bytes -= u64::from(old);
            }
            use_.live_bytes += u64::from(packed.len);
            self.classify(chunk);
        }
    }

    /// File `ino` no longer points into the pack chunk of `packed`.
    pub(super) fn release(&mut self, ino: InodeId, packed: &PackedRef) {
        let chunk = packed.chunk();
        if let Some(use_) = self.uses.get_mut(&chunk)
            && let Some(len) = use_.members.remove(&ino)
        {
            use_.live_bytes -= u64::from(len);
            self.classify(chunk);
        }
    }

    fn classify(&mut self, chunk: PackChunk) {
        let Some(use_) = self.uses.get(&chunk) else {
            return;
        };
        if use_.members.is_empty() {
            self.dead.insert(chunk);
        } else {
            self.dead.remove(&chunk);
        }
        if !use_.members.is_empty() && use_.live_bytes * 4 < use_.stored_bytes {
            self.sparse.insert(chunk);
        } else {
            self.sparse.remove(&chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(index: u64, len: u32) -> PackedRef {
        PackedRef {
            pack: InodeId(9),
            index,
            offset: 0,
            len,
        }
    }

    #[test]
    fn a_chunk_is_sparse_under_a_quarter_used_and_dead_when_unused() {
        let mut packs = Packs::default();
        let chunk = (InodeId(9), 0);
        packs.set_stored(chunk, 100);
        assert!(packs.dead().contains(&chunk), "nobody points in yet");
        packs.add(InodeId(1), &packed(0, 60));
        packs.add(InodeId(2), &packed(0, 20));
        assert!(packs.dead().is_empty() && packs.sparse().is_empty());
        packs.release(InodeId(1), &packed(0, 60));
        assert!(packs.sparse().contains(&chunk), "20 of 100 bytes used");
        packs.add(InodeId(2), &packed(0, 30));
        assert!(
            packs.sparse().is_empty(),
            "a member grown in place counts once"
        );
        assert_eq!(packs.get(chunk).unwrap().live_bytes, 30);
        packs.release(InodeId(2), &packed(0, 30));
        assert!(packs.dead().contains(&chunk) && packs.sparse().is_empty());
        packs.remove(chunk);
        assert!(packs.dead().is_empty() && packs.get(chunk).is_none());
    }

    #[test]
    fn references_to_a_missing_chunk_are_ignored() {
        let mut packs = Packs::default();
        packs.add(InodeId(1), &packed(3, 10));
        packs.release(InodeId(1), &packed(3, 10));
        assert_eq!(packs.iter().count(), 0);
    }
}

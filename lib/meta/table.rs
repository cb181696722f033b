//! The in-memory metadata table and the operations that change it.
//!
//! Every change is an [`Op`]; the table changes only through [`Table::apply`], so replaying
//! the journal after a snapshot rebuilds exactly the state the ops produced.

use super::inode::{Chunk, FileKind, Inode, StripeRef};
use super::packs::Packs;
use crate::types::{InodeId, StripeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// First cookie given to a real entry; 1 and 2 are "." and "..".
pub const FIRST_COOKIE: u64 = 3;

/// One directory's entries. Each entry carries a cookie, its readdir offset: cookies
/// only grow, so an offset stays valid while entries come and go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The parent directory (the root is its own parent).
    pub parent: InodeId,
    /// Name to entry.
    pub entries: HashMap<Vec<u8>, DirEntry>,
    /// Cookie to name, in readdir order.
    pub by_cookie: BTreeMap<u64, Vec<u8>>,
    /// The next cookie to give out.
    pub next_cookie: u64,
}

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The inode it names.
    pub ino: InodeId,
    /// Its readdir offset.
    pub cookie: u64,
}

/// One change to the table. A transaction is a sequence of ops applied together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Creates or replaces an inode's attributes.
    PutInode {
        /// The inode.
        ino: InodeId,
        /// Its attributes.
        inode: Inode,
    },
    /// Removes an inode with its directory and chunk tables.
    DropInode {
        /// The inode.
        ino: InodeId,
    },
    /// Gives a directory inode its (empty) entry table.
    MakeDir {
        /// The directory.
        ino: InodeId,
        /// Its parent.
        parent: InodeId,
    },
    /// Adds a directory entry.
    Link {
        /// The directory.
        dir: InodeId,
        /// Entry name.
        name: Vec<u8>,
        /// The inode named.
        ino: InodeId,
        /// Readdir cookie of the entry.
        cookie: u64,
    },
    /// Removes a directory entry.
    Unlink {
        /// The directory.
        dir: InodeId,
        /// Entry name.
        name: Vec<u8>,
    },
    /// Changes a directory's parent (after a rename).
    SetParent {
        /// The directory moved.
        dir: InodeId,
        /// Its new parent.
        parent: InodeId,
    },
    /// Sets one chunk of a file.
    SetChunk {
        /// The file.
        ino: InodeId,
        /// Chunk number.
        index: u64,
        /// Where its bytes are.
        chunk: Chunk,
    },
    /// Removes chunks `from..` of a file (truncate).
    DropChunks {
        /// The file.
        ino: InodeId,
        /// First chunk removed.
        from: u64,
    },
    /// Removes a single chunk (punched to a hole).
    DropChunk {
        /// The file.
        ino: InodeId,
        /// Chunk number.
        index: u64,
    },
    /// Adds or removes an inode on the orphan list (unlinked but still open).
    SetOrphan {
        /// The inode.
        ino: InodeId,
        /// On the list or not.
        orphan: bool,
    },
    /// Raises the allocation high-water marks.
    Allocate {
        /// Next inode number to give out.
        next_ino: u64,
        /// Next stripe id to give out.
        next_stripe: u64,
    },
}

/// The whole metadata state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Transaction id of the last transaction applied.
    pub txid: u64,
    /// All live inodes.
    pub inodes: HashMap<InodeId, Inode>,
    /// Entry tables of directories.
    pub dirs: HashMap<InodeId, Directory>,
    /// Chunk tables of regular files.
    pub chunks: HashMap<InodeId, BTreeMap<u64, Chunk>>,
    /// Inodes unlinked while open: freed at last close, or at the next open after a crash.
    pub orphans: BTreeSet<InodeId>,
    /// Next inode number.
    pub next_ino: u64,
    /// Next stripe id.
    pub next_stripe: u64,
    /// Stripes with shards never written (degraded writes), and the chunk referencing
    /// each: what heal completes, found without a scan. Kept by [`Table::apply`].
    pub degraded: BTreeMap<StripeId, (InodeId, u64)>,
    /// Who uses each pack chunk: derived from the chunks by [`Table::apply`] and
    /// [`Table::rebuild_packs`], never stored.
    #[serde(skip)]
    pub packs: Packs,
}

/// Drops a chunk's stripe from the degraded index (the chunk no longer references it).
fn forget_degraded(degraded: &mut BTreeMap<StripeId, (InodeId, u64)>, chunk: &Chunk) {
    if let Chunk::Stripe(s) = chunk {
        degraded.remove(&s.id);
    }
}

/// Why an op could not be applied (a journal that does not fit the snapshot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op {op} does not apply: {why}")]
pub struct ApplyError {
    /// The op kind.
    pub op: &'static str,
    /// What was missing.
    pub why: String,
}

fn missing(op: &'static str, what: impl std::fmt::Display) -> ApplyError {
    ApplyError {
        op,
        why: format!("{what} does not exist"),
    }
}

impl Table {
    /// An empty table holding only the root directory.
    pub fn with_root(root: Inode) -> Table {
        let mut table = Table {
            next_ino: InodeId::ROOT.0 + 1,
            next_stripe: 1,
            ..Table::default()
        };
        table.inodes.insert(InodeId::ROOT, root);
        table.dirs.insert(
            InodeId::ROOT,
            Directory {
                parent: InodeId::ROOT,
                next_cookie: FIRST_COOKIE,
                ..Directory::default()
            },
        );
        table
    }

    /// Applies one op. Ops are only built by code that checked them first, so an error
    /// here means the journal and the snapshot disagree.
    pub fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        match op {
            Op::PutInode { ino, inode } => {
                self.inodes.insert(*ino, inode.clone());
            }
            Op::DropInode { ino } => {
                self.inodes
                    .remove(ino)
                    .ok_or_else(|| missing("DropInode", ino))?;
                self.dirs.remove(ino);
                if let Some(chunks) = self.chunks.remove(ino) {
                    for (index, chunk) in &chunks {
                        self.forget_chunk(*ino, *index, chunk);
                    }
                }
                self.orphans.remove(ino);
            }
            Op::MakeDir { ino, parent } => {
                self.dirs.insert(
                    *ino,
                    Directory {
                        parent: *parent,
                        next_cookie: FIRST_COOKIE,
                        ..Directory::default()
                    },
                );
            }
            Op::Link {
                dir,
                name,
                ino,
                cookie,
            } => {
                let d = self.dirs.get_mut(dir).ok_or_else(|| missing("Link", dir))?;
                if let Some(old) = d.entries.insert(
                    name.clone(),
                    DirEntry {
                        ino: *ino,
                        cookie: *cookie,
                    },
                ) {
                    d.by_cookie.remove(&old.cookie);
                }
                d.by_cookie.insert(*cookie, name.clone());
                d.next_cookie = d.next_cookie.max(cookie + 1);
            }
            Op::Unlink { dir, name } => {
                let d = self
                    .dirs
                    .get_mut(dir)
                    .ok_or_else(|| missing("Unlink", dir))?;
                let old = d
                    .entries
                    .remove(name)
                    .ok_or_else(|| missing("Unlink", "entry"))?;
                d.by_cookie.remove(&old.cookie);
            }
            Op::SetParent { dir, parent } => {
                self.dirs
                    .get_mut(dir)
                    .ok_or_else(|| missing("SetParent", dir))?
                    .parent = *parent;
            }
            Op::SetChunk { ino, index, chunk } => {
                if let Chunk::Stripe(s) = chunk
                    && s.is_degraded()
                {
                    self.degraded.insert(s.id, (*ino, *index));
                }
                let old = self
                    .chunks
                    .entry(*ino)
                    .or_default()
                    .insert(*index, chunk.clone());
                if let Some(Chunk::Packed(p)) = &old {
                    self.packs.release(*ino, p);
                }
                if let Chunk::Packed(p) = chunk {
                    self.packs.add(*ino, p);
                }
                if self.is_pack(*ino) {
                    self.packs.set_stored((*ino, *index), chunk.valid_len());
                }
                if let Some(old) = old
                    && !matches!((&old, chunk), (Chunk::Stripe(a), Chunk::Stripe(b)) if a.id == b.id)
                {
                    forget_degraded(&mut self.degraded, &old);
                }
                if let Chunk::Stripe(s) = chunk
                    && !s.is_degraded()
                {
                    self.degraded.remove(&s.id);
                }
            }
            Op::DropChunks { ino, from } => {
                if let Some(chunks) = self.chunks.get_mut(ino) {
                    let dropped = chunks.split_off(from);
                    for (index, chunk) in &dropped {
                        self.forget_chunk(*ino, *index, chunk);
                    }
                }
            }
            Op::DropChunk { ino, index } => {
                if let Some(chunks) = self.chunks.get_mut(ino)
                    && let Some(chunk) = chunks.remove(index)
                {
                    self.forget_chunk(*ino, *index, &chunk);
                }
            }
            Op::SetOrphan { ino, orphan } => {
                if *orphan {
                    self.orphans.insert(*ino);
                } else {
                    self.orphans.remove(ino);
                }
            }
            Op::Allocate {
                next_ino,
                next_stripe,
            } => {
                self.next_ino = self.next_ino.max(*next_ino);
                self.next_stripe = self.next_stripe.max(*next_stripe);
            }
        }
        Ok(())
    }

    /// A chunk left the table: it is no longer degraded, no longer a pack member, and no
    /// longer a pack chunk.
    fn forget_chunk(&mut self, ino: InodeId, index: u64, chunk: &Chunk) {
        forget_degraded(&mut self.degraded, chunk);
        if let Chunk::Packed(p) = chunk {
            self.packs.release(ino, p);
        }
        self.packs.remove((ino, index));
    }

    /// True when `ino` is a pack file.
    pub fn is_pack(&self, ino: InodeId) -> bool {
        self.inodes
            .get(&ino)
            .is_some_and(|i| i.kind == FileKind::Pack)
    }

    /// The stripe of pack chunk `chunk`, if the pack file has that chunk as a stripe.
    pub fn pack_chunk_stripe(&self, (pack, index): super::PackChunk) -> Option<&StripeRef> {
        match self.chunks.get(&pack)?.get(&index)? {
            Chunk::Stripe(stripe) if self.is_pack(pack) => Some(stripe),
            _ => None,
        }
    }

    /// The pack file (the lowest-numbered, should damage have left several).
    pub fn pack_file(&self) -> Option<InodeId> {
        (self.inodes.iter())
            .filter(|(_, i)| i.kind == FileKind::Pack)
            .map(|(ino, _)| *ino)
            .min()
    }

    /// Derives the use of every pack chunk from the chunk tables (after a snapshot is
    /// loaded, which does not store it).
    pub fn rebuild_packs(&mut self) {
        self.packs = Packs::default();
        for (ino, chunks) in &self.chunks {
            if self.is_pack(*ino) {
                for (index, chunk) in chunks {
                    self.packs.set_stored((*ino, *index), chunk.valid_len());
                }
            }
        }
        for (ino, chunks) in &self.chunks {
            for chunk in chunks.values() {
                if let Chunk::Packed(p) = chunk {
                    self.packs.add(*ino, p);
                }
            }
        }
    }

    /// Every stripe referenced by any file.
    pub fn stripes(&self) -> impl Iterator<Item = (InodeId, u64, &StripeRef)> {
        self.chunks.iter().flat_map(|(ino, chunks)| {
            chunks.iter().filter_map(move |(index, chunk)| match chunk {
                Chunk::Stripe(s) => Some((*ino, *index, s)),
                Chunk::Inline(_) | Chunk::Packed(_) => None,
            })
        })
    }

    /// True when a stripe id is below the allocation mark (so it may be referenced).
    pub fn is_allocated(&self, stripe: StripeId) -> bool {
        stripe.0 < self.next_stripe
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::StripeInfo;
    use crate::meta::{FileKind, Inode};
    use crate::types::DiskId;

    fn stripe(id: u64, missing: bool) -> Chunk {
        let mut disks: Vec<Option<DiskId>> = (0..3).map(|d| Some(DiskId(d))).collect();
        if missing {
            disks[2] = None;
        }
        Chunk::Stripe(StripeRef {
            id: StripeId(id),
            info: StripeInfo {
                flags: 0,
                plain_len: 10,
                payload_len: 10,
                shard_len: 64,
                payload_crc: 0,
            },
            disks,
            valid_len: 10,
            written: None,
        })
    }

    #[test]
    fn the_degraded_index_follows_every_op_that_changes_chunks() {
        let mut t = Table::with_root(Inode::new(FileKind::Directory, 0o755, 0, 0));
        let ino = InodeId(5);
        t.apply(&Op::PutInode {
            ino,
            inode: Inode::new(FileKind::Regular, 0o644, 0, 0),
        })
        .unwrap();
        let set = |t: &mut Table, index: u64, chunk: Chunk| {
            t.apply(&Op::SetChunk { ino, index, chunk }).unwrap();
        };
        set(&mut t, 0, stripe(1, true));
        set(&mut t, 1, stripe(2, true));
        set(&mut t, 2, stripe(3, false));
        set(&mut t, 3, stripe(4, true));
        set(&mut t, 4, stripe(5, true));
        assert_eq!(
            t.degraded.keys().map(|s| s.0).collect::<Vec<_>>(),
            [1, 2, 4, 5]
        );
        assert_eq!(t.degraded[&StripeId(2)], (ino, 1));
        // Healed in place: same stripe, every shard written.
        set(&mut t, 0, stripe(1, false));
        // Replaced by a new stripe, by inline data.
        set(&mut t, 1, stripe(6, false));
        set(&mut t, 3, Chunk::Inline(b"x".to_vec()));
        assert_eq!(t.degraded.keys().map(|s| s.0).collect::<Vec<_>>(), [5]);
        t.apply(&Op::DropChunk { ino, index: 4 }).unwrap();
        assert!(t.degraded.is_empty());
        set(&mut t, 7, stripe(7, true));
        t.apply(&Op::DropChunks { ino, from: 5 }).unwrap();
        assert!(t.degraded.is_empty());
        set(&mut t, 8, stripe(8, true));
        t.apply(&Op::DropInode { ino }).unwrap();
        assert!(t.degraded.is_empty());
    }
}

//! File contents: open/release, read, write, truncate, flush and fsync (the stripe I/O
//! beneath them is in `stripe_io`).
//!
//! Writes land in per-file dirty chunk buffers; a chunk is encoded into a stripe as soon
//! as it is complete, the rest on flush, release, fsync or commit. Every stripe is new
//! (copy-on-write): its reference replaces the old one in the metadata, and the old
//! stripe's shards are deleted only after that change is committed.

use super::access::{self, Caller, MAY_READ, MAY_WRITE};
use super::attr::XATTR_CAPABILITY;
use super::namespace::subject;
use super::{FileData, FileState, MAX_FILE_BYTES, Volume, lock_poisoned, pack};
use crate::error::{Error, Result};
use crate::meta::{
    BATCH_SOFT_LIMIT_BYTES, BlockMap, Chunk, FileKind, Inode, Op, StripeRef, Timestamp,
};
use crate::types::InodeId;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Volume {
    /// Opens `ino` with `open(2)` flags: checks access, truncates on O_TRUNC, and counts
    /// the handle so an unlinked file lives until its last release.
    pub fn open_file(&self, caller: &Caller, ino: InodeId, flags: i32) -> Result<()> {
        let wants_write = matches!(flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR);
        let want = match flags & libc::O_ACCMODE {
            libc::O_RDONLY => MAY_READ,
            libc::O_WRONLY => MAY_WRITE,
            _ => MAY_READ | MAY_WRITE,
        };
        {
            let mut state = self.lock_state();
            let inode = state.inode(ino)?;
            if wants_write {
                if inode.kind == FileKind::Directory {
                    return Err(Error::IsDir);
                }
                state.meta.check_writable()?;
            }
            access::check(caller, &subject(inode), want)?;
            *state.opens.entry(ino).or_insert(0) += 1;
        }
        if wants_write && flags & libc::O_TRUNC != 0 {
            let kind = self.lock_state().inode(ino)?.kind;
            if kind == FileKind::Regular
                && let Err(e) = self.truncate(caller, ino, 0, true)
            {
                let _ = self.release_file(ino);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Creates a regular file and opens it in one step (open(2) with O_CREAT|O_EXCL): the
    /// creator gets the access it asked for even when the new mode would deny it.
    pub fn create_open(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        perm: u32,
    ) -> Result<super::Attr> {
        let attr = self.create(caller, parent, name, perm)?;
        *self.lock_state().opens.entry(attr.ino).or_insert(0) += 1;
        Ok(attr)
    }

    /// fallocate(2): mode 0 extends the size when the range ends past it (space is not
    /// reserved ahead: stripes are written copy-on-write, so preallocation would not hold);
    /// FALLOC_FL_KEEP_SIZE changes nothing. Other modes are not supported.
    pub fn fallocate(
        &self,
        caller: &Caller,
        ino: InodeId,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Result<()> {
        if len == 0 {
            return Err(Error::Invalid("fallocate of zero bytes"));
        }
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= MAX_FILE_BYTES)
            .ok_or(Error::FileTooBig)?;
        match mode {
            0 => {
                let size = self.getattr(ino)?.size;
                if end > size {
                    self.truncate(caller, ino, end, true)?;
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => {
                let attr = self.getattr(ino)?;
                if attr.kind != FileKind::Regular {
                    return Err(Error::Invalid("not a regular file"));
                }
                Ok(())
            }
            _ => Err(Error::NotSupported("fallocate mode")),
        }
    }

    /// Releases one handle of `ino`: encodes its dirty data and, at the last handle of an
    /// unlinked inode, frees it.
    pub fn release_file(&self, ino: InodeId) -> Result<()> {
        let flushed = self.flush(ino);
        let mut state = self.lock_state();
        let remaining = match state.opens.get_mut(&ino) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count
            }
            None => 0,
        };
        if remaining == 0 {
            state.opens.remove(&ino);
            let is_orphan = state.meta.table().orphans.contains(&ino);
            if is_orphan && state.meta.check_writable().is_ok() {
                self.free_inode(&mut state, ino)?;
            }
        }
        flushed
    }

    /// Handles open on `ino` now.
    pub fn open_count(&self, ino: InodeId) -> u32 {
        self.lock_state().opens.get(&ino).copied().unwrap_or(0)
    }

    /// Encodes the dirty buffers of `ino` into stripes (not yet durable: see [`Volume::fsync`]).
    pub fn flush(&self, ino: InodeId) -> Result<()> {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let file = match lock_poisoned(&self.files).get(&ino) {
            Some(f) => f.clone(),
            None => return Ok(()),
        };
        let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
        self.settle(&file, &mut data, 0..=u64::MAX);
        if self.is_packable(ino, &data) {
            // Kept for the next commit, which packs it with the other small files.
            if let Some(buf) = data.dirty.get_mut(&0) {
                buf.shrink_to_fit();
            }
            return Ok(());
        }
        self.flush_file_locked(ino, &mut data)
    }

    /// Makes the file's data and all metadata durable (the whole volume commits: one
    /// journal, like ext4's). Fails when this file's buffered data cannot be stored.
    pub fn fsync(&self, ino: InodeId) -> Result<()> {
        self.commit_for(Some(ino))
    }

    /// Encodes every dirty buffer of every file; returns the files whose data could not be
    /// stored (their bytes stay buffered). The caller holds the gate exclusively.
    pub(super) fn flush_all_dirty(&self) -> Vec<(InodeId, Error)> {
        self.wait_all_landed();
        let files: Vec<_> = lock_poisoned(&self.files)
            .iter()
            .map(|(ino, f)| (*ino, f.clone()))
            .collect();
        // An unlinked file still open keeps its buffered bytes in memory: no name leads
        // to it, a crash frees it, so storing them would only spend disk space (and,
        // on a full disk, fail the commit) for data nobody can find again.
        let orphans = self.lock_state().meta.table().orphans.clone();
        let mut failed = Vec::new();
        let mut members = Vec::new();
        for (ino, file) in &files {
            if orphans.contains(ino) {
                continue;
            }
            let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
            self.settle(file, &mut data, 0..=u64::MAX);
            if self.is_packable(*ino, &data) {
                let bytes = data.dirty.remove(&0).expect("a packable file has chunk 0");
                members.push(pack::Member {
                    ino: *ino,
                    bytes,
                    was: None,
                });
                continue;
            }
            if let Err(e) = self.flush_file_locked(*ino, &mut data) {
                failed.push((*ino, e));
            }
        }
        let packed_bytes: usize = members.iter().map(|m| m.bytes.len()).sum();
        let taken = members.iter().map(|m| m.ino).collect();
        members.extend(self.repack_members(&taken));
        let mut returned = 0;
        for (group, e) in self.store_packs(members) {
            tracing::warn!(files = group.len(), error = %e, "small files could not be packed; kept buffered for the next commit");
            for member in group.into_iter().filter(|m| m.was.is_none()) {
                returned += member.bytes.len();
                if let Some((_, file)) = files.iter().find(|(i, _)| *i == member.ino) {
                    let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
                    data.dirty.insert(0, member.bytes);
                }
                failed.push((member.ino, e.share()));
            }
        }
        self.dirty_bytes
            .fetch_sub((packed_bytes - returned) as u64, Ordering::Relaxed);
        failed
    }

    fn flush_file_locked(&self, ino: InodeId, data: &mut FileData) -> Result<()> {
        while let Some((index, buf)) = data.dirty.pop_first() {
            let len = buf.len() as u64;
            let written = data.written.remove(&index);
            if let Err(e) = self.store_chunk(ino, index, &buf, written.clone()) {
                tracing::warn!(inode = %ino, chunk = index, error = %e, "buffered data could not be stored; kept buffered for the next flush");
                // Keep the bytes: a later flush may succeed (e.g. after space is freed).
                data.dirty.insert(index, buf);
                if let Some(map) = written {
                    data.written.insert(index, map);
                }
                return Err(e);
            }
            self.dirty_bytes.fetch_sub(len, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads up to `size` bytes at `offset` (short at end of file; holes read as zeros).
    pub fn read(&self, ino: InodeId, offset: u64, size: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; size];
        let n = self.read_into(ino, offset, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Reads up to `dest.len()` bytes at `offset` into `dest` and returns how many (short
    /// at end of file). Every byte of `dest[..n]` is written, holes as zeros, so `dest`
    /// may hold anything before: a caller can reuse one buffer without clearing it.
    pub fn read_into(&self, ino: InodeId, offset: u64, dest: &mut [u8]) -> Result<usize> {
        let file = self.file_state(ino);
        let data = file.data.read().unwrap_or_else(|p| p.into_inner());
        let stripe = u64::from(self.sb.layout.stripe_bytes);
        // Chunks still being stored, taken before the stored ones: one that lands in
        // between is then found in one place or the other, never in neither.
        let landing = self.landing_in(&file, offset, dest.len(), stripe);
        let (end, mut chunks, packs) = {
            let state = self.lock_state();
            let inode = state.inode(ino)?;
            match inode.kind {
                FileKind::Regular => {}
                FileKind::Directory => return Err(Error::IsDir),
                _ => return Err(Error::Invalid("not a regular file")),
            }
            let end = offset.saturating_add(dest.len() as u64).min(inode.size);
            if offset >= end {
                return Ok(0);
            }
            let first = offset / stripe;
            let last = (end - 1) / stripe;
            let chunks = state.chunks_in(ino, first, last);
            // The stripes of packed chunks, looked up under the same lock.
            let packs: BTreeMap<u64, Option<StripeRef>> = (chunks.iter())
                .filter_map(|(index, chunk)| match chunk {
                    Chunk::Packed(p) => Some((*index, Volume::pack_stripe(&state, p))),
                    _ => None,
                })
                .collect();
            (end, chunks, packs)
        };
        let out = &mut dest[..(end - offset) as usize];
        let is_sequential = file.next_read_at.swap(end, Ordering::Relaxed) == offset;
        for index in offset / stripe..=(end - 1) / stripe {
            let chunk_start = index * stripe;
            let lo = offset.max(chunk_start);
            let hi = end.min(chunk_start + stripe);
            let dest = &mut out[(lo - offset) as usize..(hi - offset) as usize];
            let stored = chunks.remove(&index);
            let from = (lo - chunk_start) as usize;
            let buffered = (data.dirty.get(&index).map(Vec::as_slice))
                .or_else(|| landing.get(&index).map(|bytes| bytes.as_slice()));
            if let Some(buf) = buffered {
                copy_clipped(dest, buf, from);
                continue;
            }
            let Some(chunk) = stored else {
                dest.fill(0); // a hole
                continue;
            };
            let valid = chunk.valid_len() as usize;
            let wanted = dest.len().min(valid.saturating_sub(from));
            if let Chunk::Packed(packed) = &chunk
                && wanted > 0
            {
                let stripe = packs.get(&index).cloned().flatten().ok_or(Error::Invalid(
                    "a packed file points at a pack chunk that does not exist (run argosfs-fsck)",
                ))?;
                self.read_packed(packed, &stripe, from, &mut dest[..wanted])?;
                dest[wanted..].fill(0);
                continue;
            }
            if let Chunk::Stripe(stripe) = &chunk
                && wanted > 0
            {
                // A compressed or encrypted stripe is read by frames only for a small
                // read off a sequential scan: a scan, and a read of half the stripe or
                // more, decode the whole stripe once into the cache for the reads after.
                let is_done = if !stripe.info.is_framed() {
                    self.read_stripe_direct(stripe, from, &mut dest[..wanted])
                } else if !is_sequential && wanted * 2 < stripe.info.plain_len as usize {
                    self.read_stripe_frames(ino, index, stripe, from, &mut dest[..wanted])
                } else {
                    false
                };
                if is_done {
                    dest[wanted..].fill(0);
                    continue;
                }
            }
            if wanted == 0 {
                dest.fill(0); // past the chunk's data
                continue;
            }
            if let Chunk::Stripe(stripe) = &chunk
                && from == 0
                && self.read_stripe_rebuilding(ino, stripe, dest)?
            {
                // Past a truncate that shortened the chunk the stripe still holds old bytes.
                dest[wanted..].fill(0);
                continue;
            }
            let touch = crate::cache::Touch::at(from, dest.len());
            let plain = self.read_chunk(ino, index, &chunk, touch)?;
            copy_clipped(dest, &plain[..valid.min(plain.len())], from);
        }
        Ok(out.len())
    }

    /// The data regions of a file, in order: `(start, end)` byte ranges that hold stored
    /// or buffered bytes; everything else up to the size is a hole.
    pub fn data_regions(&self, ino: InodeId) -> Result<Vec<(u64, u64)>> {
        let file = self.file_state(ino);
        let data = file.data.read().unwrap_or_else(|p| p.into_inner());
        let stripe = u64::from(self.sb.layout.stripe_bytes);
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        if inode.kind != FileKind::Regular {
            return Err(Error::Invalid("not a regular file"));
        }
        let mut lens: std::collections::BTreeMap<u64, u64> = state
            .meta
            .table()
            .chunks
            .get(&ino)
            .map(|c| c.iter().map(|(i, c)| (*i, c.valid_len())).collect())
            .unwrap_or_default();
        let mut maps: std::collections::BTreeMap<u64, Option<BlockMap>> = state
            .meta
            .table()
            .chunks
            .get(&ino)
            .map(|c| {
                c.iter()
                    .map(|(i, c)| match c {
                        Chunk::Stripe(s) => (*i, s.written.clone()),
                        Chunk::Inline(_) | Chunk::Packed(_) => (*i, None),
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (index, buf) in &data.dirty {
            lens.insert(*index, buf.len() as u64);
            maps.insert(*index, data.written.get(index).cloned());
        }
        for (index, landing) in lock_poisoned(&file.landing).iter() {
            lens.insert(*index, landing.bytes.len() as u64);
            maps.insert(*index, landing.written.clone());
        }
        let mut regions: Vec<(u64, u64)> = Vec::new();
        for (index, len) in lens {
            let start = index * stripe;
            let len = len.min(inode.size.saturating_sub(start));
            let in_chunk = match maps.remove(&index).flatten() {
                Some(map) => map.regions(len),
                None if len > 0 => vec![(0, len)],
                None => Vec::new(),
            };
            for (lo, hi) in in_chunk {
                let (lo, hi) = (start + lo, start + hi);
                match regions.last_mut() {
                    Some(last) if last.1 == lo => last.1 = hi,
                    _ => regions.push((lo, hi)),
                }
            }
        }
        Ok(regions)
    }

    /// lseek(SEEK_DATA): the first data offset at or after `offset`.
    pub fn seek_data(&self, ino: InodeId, offset: u64) -> Result<u64> {
        let size = self.getattr(ino)?.size;
        if offset >= size {
            return Err(Error::NoSuchOffset);
        }
        self.data_regions(ino)?
            .into_iter()
            .find(|(_, end)| *end > offset)
            .map(|(start, _)| start.max(offset))
            .ok_or(Error::NoSuchOffset)
    }

    /// lseek(SEEK_HOLE): the first hole offset at or after `offset` (the size counts as a hole).
    pub fn seek_hole(&self, ino: InodeId, offset: u64) -> Result<u64> {
        let size = self.getattr(ino)?.size;
        if offset >= size {
            return Err(Error::NoSuchOffset);
        }
        for (start, end) in self.data_regions(ino)? {
            if offset < start {
                return Ok(offset);
            }
            if offset < end {
                return Ok(end.min(size));
            }
        }
        Ok(offset)
    }

    /// Writes `bytes` at `offset`, extending the file as needed; returns bytes written.
    pub fn write(&self, caller: &Caller, ino: InodeId, offset: u64, bytes: &[u8]) -> Result<usize> {
        let end = offset
            .checked_add(bytes.len() as u64)
            .filter(|e| *e <= MAX_FILE_BYTES)
            .ok_or(Error::FileTooBig)?;
        {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let file = self.file_state(ino);
            let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
            let stripe = u64::from(self.sb.layout.stripe_bytes);
            if !bytes.is_empty() {
                // The chunks this write touches must be stored or buffered, not landing.
                self.settle(&file, &mut data, offset / stripe..=(end - 1) / stripe);
            }
            let (file_size, existing) = {
                let state = self.lock_state();
                state.meta.check_writable()?;
                let inode = state.inode(ino)?;
                match inode.kind {
                    FileKind::Regular => {}
                    FileKind::Directory => return Err(Error::IsDir),
                    _ => return Err(Error::Invalid("not a regular file")),
                }
                let existing = if bytes.is_empty() {
                    BTreeMap::new()
                } else {
                    state.chunks_in(ino, offset / stripe, (end - 1) / stripe)
                };
                (inode.size, existing)
            };
            self.write_into_buffers(
                ino,
                &file,
                &mut data,
                offset,
                bytes,
                existing,
                end.max(file_size),
            )?;
            let mut state = self.lock_state();
            let now = Timestamp::now();
            state.update_inode(ino, |i| {
                i.size = i.size.max(end);
                contents_changed(caller, i, now);
            })?;
        }
        self.after_write(ino)?;
        Ok(bytes.len())
    }

    /// Copies `bytes` into the dirty buffers, encoding each chunk the write completes.
    #[allow(clippy::too_many_arguments)]
    fn write_into_buffers(
        &self,
        ino: InodeId,
        file: &Arc<FileState>,
        data: &mut FileData,
        offset: u64,
        bytes: &[u8],
        mut existing: BTreeMap<u64, Chunk>,
        new_size: u64,
    ) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let stripe = u64::from(self.sb.layout.stripe_bytes);
        let end = offset + bytes.len() as u64;
        for index in offset / stripe..=(end - 1) / stripe {
            let chunk_start = index * stripe;
            let lo = (offset.max(chunk_start) - chunk_start) as usize;
            let hi = (end.min(chunk_start + stripe) - chunk_start) as usize;
            let src = &bytes[(chunk_start + lo as u64 - offset) as usize..][..hi - lo];
            if lo == 0 && hi as u64 == stripe {
                // The write replaces the whole chunk: encode straight from the caller's
                // bytes, no buffer.
                if let Some(old) = data.dirty.remove(&index) {
                    self.dirty_bytes
                        .fetch_sub(old.len() as u64, Ordering::Relaxed);
                }
                data.written.remove(&index);
                self.dirty_bytes
                    .fetch_add(src.len() as u64, Ordering::Relaxed);
                let chunk = CompleteChunk {
                    index,
                    bytes: Cow::Borrowed(src),
                    written: None,
                };
                self.store_complete_chunk(ino, file, data, chunk, new_size);
                continue;
            }
            let buf = match data.dirty.entry(index) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(slot) => {
                    let stored = existing.remove(&index);
                    let mut buf = Vec::new();
                    if let Some(Chunk::Stripe(s)) = &stored
                        && let Some(map) = &s.written
                    {
                        data.written.insert(index, map.clone());
                    }
                    if let Some(chunk) = stored {
                        let valid = chunk.valid_len() as usize;
                        // Old bytes survive unless this write covers all of them.
                        if lo > 0 || hi < valid {
                            let touch = crate::cache::Touch::at(0, valid);
                            let plain = self.read_chunk(ino, index, &chunk, touch)?;
                            buf.reserve_exact(stripe as usize);
                            buf.extend_from_slice(&plain[..valid.min(plain.len())]);
                        }
                    }
                    self.dirty_bytes
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                    slot.insert(buf)
                }
            };
            // Skipping over unwritten bytes leaves a hole: from then on the chunk needs a
            // map of which blocks hold data.
            if lo > buf.len() || data.written.contains_key(&index) {
                let filled = buf.len() as u64;
                data.written
                    .entry(index)
                    .or_insert_with(|| BlockMap::filled(filled))
                    .mark(lo as u64, hi as u64);
            }
            if buf.len() < hi {
                if buf.capacity() < hi && hi < stripe as usize {
                    buf.reserve_exact(stripe as usize - buf.len());
                }
                self.dirty_bytes
                    .fetch_add((hi - buf.len()) as u64, Ordering::Relaxed);
            }
            if buf.len() <= lo {
                // Appending (the common case): no zero fill of bytes about to be copied.
                buf.resize(lo, 0);
                buf.extend_from_slice(src);
            } else {
                if buf.len() < hi {
                    buf.resize(hi, 0);
                }
                buf[lo..hi].copy_from_slice(src);
            }
            if hi as u64 == stripe {
                // A complete chunk: encode it now so large writes stream to the disks.
                let chunk = CompleteChunk {
                    index,
                    bytes: Cow::Owned(data.dirty.remove(&index).expect("present")),
                    written: data.written.remove(&index),
                };
                self.store_complete_chunk(ino, file, data, chunk, new_size);
            }
        }
        Ok(())
    }

    /// Stores a chunk a write has just completed (its bytes already counted in
    /// `dirty_bytes`): on the pool when write-behind is on, else here. Like a page cache,
    /// a store that fails keeps the bytes buffered, and the error comes back from fsync,
    /// flush or close (or from a later write once the dirty limit is reached).
    fn store_complete_chunk(
        &self,
        ino: InodeId,
        file: &Arc<FileState>,
        data: &mut FileData,
        chunk: CompleteChunk<'_>,
        file_size: u64,
    ) {
        let CompleteChunk {
            index,
            bytes,
            written,
        } = chunk;
        if let Some(vol) = self.write_behind() {
            vol.hand_off(file, ino, file_size, index, bytes.into_owned(), written);
            return;
        }
        match self.store_chunk_sized(ino, index, &bytes, file_size, written.clone()) {
            Ok(()) => {
                self.dirty_bytes
                    .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(inode = %ino, chunk = index, error = %e, "could not store a chunk; keeping it buffered");
                data.dirty.insert(index, bytes.into_owned());
                if let Some(map) = written {
                    data.written.insert(index, map);
                }
            }
        }
    }

    /// After a write: keep dirty memory and the open batch bounded.
    fn after_write(&self, ino: InodeId) -> Result<()> {
        if self.dirty_bytes.load(Ordering::Relaxed) > self.dirty_limit_bytes {
            self.flush(ino)?;
            if self.dirty_bytes.load(Ordering::Relaxed) > self.dirty_limit_bytes {
                self.commit()?;
            }
        }
        self.maybe_commit()
    }

    /// Commits when the open metadata batch has grown past its soft bound.
    pub(super) fn maybe_commit(&self) -> Result<()> {
        if self.lock_state().meta.pending_bytes() > BATCH_SOFT_LIMIT_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    /// Sets the size of `ino`: shrinking drops whole chunks past the end and shortens the
    /// chunk holding the new end (without rewriting it); growing leaves a hole.
    pub(super) fn truncate(
        &self,
        caller: &Caller,
        ino: InodeId,
        size: u64,
        via_handle: bool,
    ) -> Result<()> {
        if size > MAX_FILE_BYTES {
            return Err(Error::FileTooBig);
        }
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let file = self.file_state(ino);
        let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
        self.settle(&file, &mut data, 0..=u64::MAX);
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let inode = state.inode(ino)?.clone();
        match inode.kind {
            FileKind::Regular => {}
            FileKind::Directory => return Err(Error::IsDir),
            _ => return Err(Error::Invalid("not a regular file")),
        }
        if !via_handle {
            access::check(caller, &subject(&inode), MAY_WRITE)?;
        }
        let stripe = u64::from(self.sb.layout.stripe_bytes);
        if size < inode.size {
            let keep = size.div_ceil(stripe);
            let dropped: Vec<StripeRef> = state
                .meta
                .table()
                .chunks
                .get(&ino)
                .map(|c| {
                    c.range(keep..)
                        .filter_map(|(_, c)| match c {
                            Chunk::Stripe(s) => Some(s.clone()),
                            Chunk::Inline(_) | Chunk::Packed(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            state.meta.record(Op::DropChunks { ino, from: keep })?;
            state.frees.extend(dropped);
            data.written.split_off(&keep);
            for (_, buf) in data.dirty.split_off(&keep) {
                self.dirty_bytes
                    .fetch_sub(buf.len() as u64, Ordering::Relaxed);
            }
            let tail = size % stripe;
            if tail != 0 {
                let index = size / stripe;
                if let Some(buf) = data.dirty.get_mut(&index)
                    && buf.len() as u64 > tail
                {
                    self.dirty_bytes
                        .fetch_sub(buf.len() as u64 - tail, Ordering::Relaxed);
                    buf.truncate(tail as usize);
                }
                let shortened = match state
                    .meta
                    .table()
                    .chunks
                    .get(&ino)
                    .and_then(|c| c.get(&index))
                {
                    Some(Chunk::Inline(bytes)) if bytes.len() as u64 > tail => {
                        Some(Chunk::Inline(bytes[..tail as usize].to_vec()))
                    }
                    Some(Chunk::Stripe(s)) if u64::from(s.valid_len) > tail => {
                        let mut s = s.clone();
                        s.valid_len = tail as u32;
                        Some(Chunk::Stripe(s))
                    }
                    Some(Chunk::Packed(p)) if u64::from(p.len) > tail => {
                        let mut p = *p;
                        p.len = tail as u32;
                        Some(Chunk::Packed(p))
                    }
                    _ => None,
                };
                if let Some(chunk) = shortened {
                    state.meta.record(Op::SetChunk { ino, index, chunk })?;
                }
            }
        }
        let now = Timestamp::now();
        state.update_inode(ino, |i| {
            i.size = size;
            contents_changed(caller, i, now);
        })?;
        Ok(())
    }

    fn store_chunk(
        &self,
        ino: InodeId,
        index: u64,
        plain: &[u8],
        written: Option<BlockMap>,
    ) -> Result<()> {
        let size = self.lock_state().inode(ino).map(|i| i.size).unwrap_or(0);
        self.store_chunk_sized(ino, index, plain, size, written)
    }

    /// Stores one chunk (inline when small enough, else as a new stripe) and records it,
    /// queueing the stripe it replaces for deletion after the commit.
    pub(super) fn store_chunk_sized(
        &self,
        ino: InodeId,
        index: u64,
        plain: &[u8],
        file_size: u64,
        written: Option<BlockMap>,
    ) -> Result<()> {
        let inline_max = u64::from(self.sb.inline_max_bytes);
        let chunk = if index == 0 && file_size <= inline_max && plain.len() as u64 <= inline_max {
            Chunk::Inline(plain.to_vec())
        } else {
            let mut stripe = self.write_stripe(ino, index, plain)?;
            stripe.written = written.and_then(|m| m.normalized(plain.len() as u64));
            Chunk::Stripe(stripe)
        };
        let mut state = self.lock_state();
        if !state.meta.table().inodes.contains_key(&ino) {
            // Freed while we wrote: the new stripe is garbage.
            if let Chunk::Stripe(s) = chunk {
                state.frees.push(s);
            }
            return Ok(());
        }
        let old = state
            .meta
            .table()
            .chunks
            .get(&ino)
            .and_then(|c| c.get(&index))
            .cloned();
        let new_id = match &chunk {
            Chunk::Stripe(s) => Some(s.id),
            Chunk::Inline(_) | Chunk::Packed(_) => None,
        };
        if let Err(e) = state.meta.record(Op::SetChunk {
            ino,
            index,
            chunk: chunk.clone(),
        }) {
            if let Chunk::Stripe(s) = chunk {
                state.frees.push(s);
            }
            return Err(e);
        }
        if let Some(Chunk::Stripe(old)) = old
            && Some(old.id) != new_id
        {
            state.frees.push(old);
        }
        Ok(())
    }
}

/// A chunk a write has just filled, on its way to the disks.
struct CompleteChunk<'a> {
    index: u64,
    /// The caller's bytes when the write covered the whole chunk, else the buffer.
    bytes: Cow<'a, [u8]>,
    /// Which blocks hold data, when the chunk has holes.
    written: Option<BlockMap>,
}

/// What a write or truncate by `caller` does to the inode besides its size, as Linux's
/// `file_remove_privs` and `file_update_time` do: new mtime and ctime, set-id bits cleared
/// for a caller without CAP_FSETID, and file capabilities (`security.capability`) dropped
/// whoever writes.
fn contents_changed(caller: &Caller, inode: &mut Inode, now: Timestamp) {
    inode.mtime = now;
    inode.ctime = now;
    inode.perm = access::mode_after_write_for(caller, &subject(inode));
    inode.xattrs.remove(XATTR_CAPABILITY);
}

/// Copies `src[from..]` into `dest` and zeros the rest of `dest` where `src` ends early.
fn copy_clipped(dest: &mut [u8], src: &[u8], from: usize) {
    let src = src.get(from..).unwrap_or_default();
    let n = dest.len().min(src.len());
    dest[..n].copy_from_slice(&src[..n]);
    dest[n..].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_clipped_zeros_what_the_source_does_not_cover() {
        let mut dest = [0xa5u8; 6];
        copy_clipped(&mut dest, b"abcd", 1);
        assert_eq!(&dest, b"bcd\0\0\0");
        copy_clipped(&mut dest, b"ab", 5);
        assert_eq!(dest, [0; 6]);
    }
}

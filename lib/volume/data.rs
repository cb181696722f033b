//! File contents: open/release, read, write, truncate, flush and fsync, and the stripe
//! I/O beneath them (placement, shard writes with rollback, degraded reads).
//!
//! Writes land in per-file dirty chunk buffers; a chunk is encoded into a stripe as soon
//! as it is complete, the rest on flush, release, fsync or commit. Every stripe is new
//! (copy-on-write): its reference replaces the old one in the metadata, and the old
//! stripe's shards are deleted only after that change is committed.

use super::access::{self, Caller, MAY_READ, MAY_WRITE};
use super::namespace::subject;
use super::write_behind::HandOff;
use super::{FileData, FileState, MAX_FILE_BYTES, Volume, lock_poisoned};
use crate::cache::Plain;
use crate::data::{StripeContext, TransformError};
use crate::error::{Error, Result};
use crate::meta::{BATCH_SOFT_LIMIT_BYTES, BlockMap, Chunk, FileKind, Op, StripeRef, Timestamp};
use crate::placement::{self, Candidate, Request};
use crate::store::shard::{self, ShardHeader, ShardReadError};
use crate::types::{DiskId, InodeId, ShardIndex, ShardKey, StripeId};
use rayon::prelude::*;
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
        let mut failed = Vec::new();
        for (ino, file) in files {
            let mut data = file.data.write().unwrap_or_else(|p| p.into_inner());
            self.settle(&file, &mut data, 0..=u64::MAX);
            if let Err(e) = self.flush_file_locked(ino, &mut data) {
                failed.push((ino, e));
            }
        }
        failed
    }

    fn flush_file_locked(&self, ino: InodeId, data: &mut FileData) -> Result<()> {
        while let Some((index, buf)) = data.dirty.pop_first() {
            let len = buf.len() as u64;
            let written = data.written.remove(&index);
            if let Err(e) = self.store_chunk(ino, index, &buf, written.clone()) {
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
        let (end, mut chunks) = {
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
            (end, state.chunks_in(ino, first, last))
        };
        let out = &mut dest[..(end - offset) as usize];
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
            if let Chunk::Stripe(stripe) = &chunk
                && wanted > 0
                && self.read_stripe_direct(stripe, from, &mut dest[..wanted])
            {
                dest[wanted..].fill(0);
                continue;
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
            let plain = self.read_chunk(ino, index, &chunk)?;
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
                        Chunk::Inline(_) => (*i, None),
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
                i.mtime = now;
                i.ctime = now;
                i.perm = access::mode_after_write_for(caller, &subject(i));
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
                if let Some(vol) = self.write_behind() {
                    self.dirty_bytes
                        .fetch_add(src.len() as u64, Ordering::Relaxed);
                    vol.hand_off(
                        file,
                        HandOff {
                            ino,
                            index,
                            bytes: src.to_vec(),
                            file_size: new_size,
                            written: None,
                        },
                    );
                    continue;
                }
                if let Err(e) = self.store_chunk_sized(ino, index, src, new_size, None) {
                    // Like a page cache: the write succeeds into memory and the error
                    // comes back from fsync, flush or close (or from a later write once
                    // the dirty limit is reached).
                    tracing::warn!(inode = %ino, chunk = index, error = %e, "could not store a chunk; keeping it buffered");
                    self.dirty_bytes
                        .fetch_add(src.len() as u64, Ordering::Relaxed);
                    data.dirty.insert(index, src.to_vec());
                }
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
                            let plain = self.read_chunk(ino, index, &chunk)?;
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
                let buf = data.dirty.remove(&index).expect("present");
                let len = buf.len() as u64;
                let written = data.written.remove(&index);
                if let Some(vol) = self.write_behind() {
                    vol.hand_off(
                        file,
                        HandOff {
                            ino,
                            index,
                            bytes: buf,
                            file_size: new_size,
                            written,
                        },
                    );
                    continue;
                }
                if let Err(e) = self.store_chunk_sized(ino, index, &buf, new_size, written.clone())
                {
                    tracing::warn!(inode = %ino, chunk = index, error = %e, "could not store a chunk; keeping it buffered");
                    data.dirty.insert(index, buf);
                    if let Some(map) = written {
                        data.written.insert(index, map);
                    }
                    continue;
                }
                self.dirty_bytes.fetch_sub(len, Ordering::Relaxed);
            }
        }
        Ok(())
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
                            Chunk::Inline(_) => None,
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
            i.mtime = now;
            i.ctime = now;
            i.perm = access::mode_after_write_for(caller, &subject(i));
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
            Chunk::Inline(_) => None,
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

    /// Encodes `plain` and writes its shards to disks chosen by placement. Space is
    /// reserved first; on any failure the shards written are removed and the
    /// reservations returned. A disk that fails with an I/O error is avoided and the
    /// stripe placed again once.
    fn write_stripe(&self, ino: InodeId, index: u64, plain: &[u8]) -> Result<StripeRef> {
        let id = {
            let mut state = self.lock_state();
            state.meta.check_writable()?;
            state.meta.allocate_stripe()?
        };
        let ctx = StripeContext {
            volume: self.sb.volume,
            inode: ino,
            chunk: index,
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
            let disks = self.place(id, shard_bytes, &excluded)?;
            let header = |i: usize| ShardHeader {
                stripe: id,
                index: ShardIndex(i as u8),
                k: self.sb.layout.k,
                m: self.sb.layout.m,
                inode: ino,
                chunk: index,
            };
            let reserved: Vec<usize> = disks.iter().map(|d| self.disk_index[d]).collect();
            for slot in &reserved {
                self.disks[*slot]
                    .reserved
                    .fetch_add(shard_bytes, Ordering::Relaxed);
            }
            // Every shard at once, each to its own disk, on the shard I/O pool: the stripe
            // costs the slowest disk's write rather than the sum of them.
            let results: Vec<std::io::Result<()>> = self.shard_io.install(|| {
                reserved
                    .par_iter()
                    .enumerate()
                    .map(|(i, slot)| {
                        let slot_ref = &self.disks[*slot];
                        let disk = slot_ref
                            .disk
                            .as_ref()
                            .expect("placement only picks open disks");
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
                        if result.is_ok() {
                            slot_ref.is_dirty.store(true, Ordering::Release);
                        }
                        result
                    })
                    .collect()
            });
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
                self.disks[*slot]
                    .reserved
                    .fetch_sub(shard_bytes, Ordering::Relaxed);
            }
            let Some((bad_disk, error)) = failure else {
                self.stats.stripes_written.fetch_add(1, Ordering::Relaxed);
                return Ok(StripeRef {
                    id,
                    info: encoded.info,
                    disks,
                    valid_len: plain.len() as u32,
                    written: None,
                });
            };
            for (i, disk_id) in disks.iter().enumerate().filter(|(i, _)| written[*i]) {
                if let Some(disk) = self.disk(*disk_id) {
                    let key = ShardKey {
                        stripe: id,
                        index: ShardIndex(i as u8),
                    };
                    if let Err(e) = disk.delete_shard(key) {
                        tracing::warn!(disk = %disk_id, shard = %key, error = %e, "could not remove a shard of a failed stripe write");
                    }
                }
            }
            let no_space = matches!(
                error.raw_os_error(),
                Some(libc::ENOSPC) | Some(libc::EDQUOT)
            );
            if no_space {
                return Err(Error::NoSpace(format!("disk {bad_disk} is full")));
            }
            tracing::warn!(disk = %bad_disk, error = %error, stripe = %id, "shard write failed; placing the stripe elsewhere");
            let slot = &self.disks[self.disk_index[&bad_disk]];
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

    /// Chooses the disks of a new stripe.
    fn place(
        &self,
        stripe: StripeId,
        shard_bytes: u64,
        excluded: &[DiskId],
    ) -> Result<Vec<DiskId>> {
        let candidates: Vec<Candidate> = self
            .disks
            .iter()
            .map(|slot| {
                let space = slot.space();
                Candidate {
                    id: slot.config.id,
                    weight: slot.config.weight,
                    class: slot.config.class.clone(),
                    domain: slot.config.domain.clone(),
                    is_writable: slot.disk.is_some()
                        && slot.config.state == super::DiskState::Active
                        && !slot.write_failed.load(Ordering::Acquire)
                        && !excluded.contains(&slot.config.id),
                    free_bytes: space
                        .free_bytes
                        .saturating_sub(slot.reserved.load(Ordering::Relaxed)),
                    total_bytes: space.total_bytes,
                }
            })
            .collect();
        let request = Request {
            stripe,
            count: self.sb.layout.width(),
            max_per_domain: usize::from(self.sb.layout.m).max(1),
            shard_bytes,
        };
        placement::place(&request, &candidates).map_err(|e| Error::NoSpace(e.to_string()))
    }

    /// Reads `dest.len()` bytes at `from` of a stripe that is neither compressed nor
    /// encrypted straight from its data shards into `dest`, verifying only the blocks
    /// read by their block CRCs: no parity, no decode, no copy. A range over several
    /// shards reads them at once. `false` when the stripe does not
    /// qualify or a shard cannot serve its part; the caller then reads the whole stripe,
    /// which reconstructs from parity, and `dest` holds no promise.
    fn read_stripe_direct(&self, stripe: &StripeRef, from: usize, dest: &mut [u8]) -> bool {
        let shard_len = stripe.info.shard_len as usize;
        let k = self.codec.k();
        if stripe.info.flags != 0
            || shard_len == 0
            || from + dest.len() > stripe.info.payload_len as usize
            || from + dest.len() > k * shard_len
        {
            return false;
        }
        if let Some(plain) = self.cache.get(stripe.id) {
            return match plain.get(from..from + dest.len()) {
                Some(bytes) => {
                    dest.copy_from_slice(bytes);
                    true
                }
                None => false,
            };
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
        if parts.iter().any(|(index, _, _)| {
            stripe
                .disks
                .get(*index)
                .and_then(|&d| self.disk(d))
                .is_none()
        }) {
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
        self.shard_io
            .install(|| parts.into_par_iter().map(read_part).collect())
    }

    /// Reads a whole stripe that is neither compressed nor encrypted and fills its k
    /// shards exactly, when some data shard is missing or bad, straight into `dest`: the
    /// data shards at hand go there directly, only as many parity shards are read as data
    /// shards are missing, and only those are rebuilt (no copy of the stripe, no cache).
    /// `Ok(false)` when the stripe does not qualify; the caller then reads it whole.
    fn read_stripe_rebuilding(
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
        let at_hand = |i: &usize| self.disk(stripe.disks[*i]).is_some();
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
        let (data_ok, first_found) = self.shard_io.install(|| {
            rayon::join(
                || self.read_shard_parts(stripe, data_parts, tracing::Level::WARN),
                || self.read_checked_shards(stripe, &first_parity),
            )
        });
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
        let views: Vec<Option<&[u8]>> = parity
            .iter()
            .map(|s| s.as_ref().map(|o| o.payload()))
            .collect();
        self.codec
            .rebuild_plain_in_place(&stripe.info, dest, &missing, &views)
            .map_err(|e| stripe_error(stripe, ino, e))?;
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
        let Some(disk_id) = stripe.disks.get(index).copied() else {
            return false;
        };
        let Some(disk) = self.disk(disk_id) else {
            return false;
        };
        let key = ShardKey {
            stripe: stripe.id,
            index: ShardIndex(index as u8),
        };
        let shard_len = stripe.info.shard_len as usize;
        match shard::read_shard_range_into(
            disk.as_ref(),
            self.sb.volume,
            key,
            shard_len,
            start,
            dest,
        ) {
            Ok(()) => true,
            Err(e) => {
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
    fn read_checked_shard(&self, stripe: &StripeRef, i: usize) -> Option<shard::ShardObject> {
        let disk_id = stripe.disks[i];
        let key = ShardKey {
            stripe: stripe.id,
            index: ShardIndex(i as u8),
        };
        let disk = self.disk(disk_id)?;
        match shard::read_shard(disk.as_ref(), self.sb.volume, key) {
            Ok(object) if object.payload().len() == stripe.info.shard_len as usize => Some(object),
            Ok(object) => {
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
        self.shard_io
            .install(|| indices.par_iter().map(read).collect())
    }

    /// The plaintext of a stored chunk.
    fn read_chunk(&self, ino: InodeId, index: u64, chunk: &Chunk) -> Result<Plain> {
        match chunk {
            Chunk::Inline(bytes) => Ok(Arc::new(bytes.clone())),
            Chunk::Stripe(s) => self.read_stripe(ino, index, s),
        }
    }

    /// Reads and decodes a stripe: data shards first, parity only for shards that are
    /// missing or fail verification (a degraded read, counted and logged).
    pub(super) fn read_stripe(
        &self,
        ino: InodeId,
        index: u64,
        stripe: &StripeRef,
    ) -> Result<Plain> {
        if let Some(plain) = self.cache.get(stripe.id) {
            return Ok(plain);
        }
        let k = self.codec.k();
        let width = stripe.disks.len();
        let mut shards: Vec<Option<shard::ShardObject>> = (0..width).map(|_| None).collect();
        // The first k shards on disks at hand (the data shards when all are there), then as
        // many more as shards were missing or bad; each batch read at once: a cold read
        // waits for the slowest disk of a batch instead of the sum.
        let absent: Vec<usize> = (0..width)
            .filter(|&i| self.disk(stripe.disks[i]).is_none())
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
        }
        if good < k {
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
        };
        let plain = self
            .codec
            .decode(&ctx, &stripe.info, &views)
            .map_err(|e| stripe_error(stripe, ino, e))?;
        let plain = Arc::new(plain);
        self.cache.insert(stripe.id, plain.clone());
        Ok(plain)
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
    fn a_panicking_shard_task_fails_only_its_shard() {
        assert_eq!(contained(|| 7, || 0), 7);
        // (The test output shows this expected panic's message.)
        let got = contained(|| -> Option<u8> { panic!("disk driver bug") }, || None);
        assert_eq!(got, None);
    }

    #[test]
    fn copy_clipped_zeros_what_the_source_does_not_cover() {
        let mut dest = [0xa5u8; 6];
        copy_clipped(&mut dest, b"abcd", 1);
        assert_eq!(&dest, b"bcd\0\0\0");
        copy_clipped(&mut dest, b"ab", 5);
        assert_eq!(dest, [0; 6]);
    }
}

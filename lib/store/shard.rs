//! Shard object format: one object per shard (a record in a disk's segment store),
//! self-describing so fsck can recognise and verify every shard without the metadata,
//! and laid out so that a small read fetches one run of 4 KiB blocks and nothing else.
//!
//! ```text
//! offset size field
//! 0      8    magic      b"ARGSHRD\x1a"
//! 8      2    version    u16 LE, 2
//! 10     2    flags      u16 LE, 0 (no flags defined)
//! 12     4    body_len   u32 LE: the object's bytes after these 32
//! 16     16   volume_id
//! 32     8    stripe     u64 LE   -- shard header
//! 40     8    inode      u64 LE
//! 48     8    chunk      u64 LE   the stripe's position in the file
//! 56     1    index      u8       0..k data, k..k+m parity
//! 57     1    k          u8       at least 1
//! 58     1    m          u8
//! 59     1    reserved   0
//! 60     4    payload_len u32 LE
//! 64     4    head_crc   crc32c of bytes 0..64
//! 68     ..   zeros      up to the first block: 4096 when the payload is larger than
//!                        SMALL_PAYLOAD (so every block is 4 KiB-aligned in its
//!                        record), else right here
//! blocks      the payload in pieces of 4092 bytes (the last one shorter), each
//!             followed by its CRC32C, seeded with the volume, stripe, shard index and
//!             block number: a block read from the wrong object, volume or place fails
//! ```
//!
//! A 4 KiB read of a large shard is one aligned 4 KiB read on the disk, its CRC beside
//! it: no head to fetch first ([`read_shard_range_into`]). A whole object is checked
//! field by field (magic, version, flags, length, head CRC, volume, zero padding, every
//! block CRC) by [`decode_shard`], which gathers the payload into one buffer.
//!
//! Version 1 (a file per shard, the block CRCs in a table at the head, a CRC over the
//! whole frame) was written by format 2 volumes, which this build refuses.
//!
//! This module owns the bytes of one shard object; what a payload means (compression,
//! encryption, erasure coding) belongs to `crate::data`.

use crate::format::{self, Expect, FormatError, FormatErrorKind, FrameHeader};
use crate::store::{Disk, ShardRange};
use crate::types::{InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use std::io;

/// Frame magic of shard objects.
pub const SHARD_MAGIC: [u8; 8] = *b"ARGSHRD\x1a";
/// Newest shard format version this build writes and reads.
pub const SHARD_VERSION: u16 = 2;
/// Length of the shard header after the frame header.
pub const SHARD_HEADER_LEN: usize = 32;
/// Bytes of the head: frame header, shard header, head CRC.
pub const HEAD_LEN: usize = format::HEADER_LEN + SHARD_HEADER_LEN + 4;
/// Bytes of one block on disk: payload and its CRC.
pub const BLOCK_BYTES: usize = 4096;
/// Payload bytes in one block.
pub const BLOCK_PAYLOAD: usize = BLOCK_BYTES - 4;
/// Payloads up to this size follow the head at once (they are read whole, and padding
/// would double a small file's records); larger ones start at 4 KiB.
pub const SMALL_PAYLOAD: usize = 3 * BLOCK_PAYLOAD;
/// Bytes a shard object adds to its payload apart from the block CRCs (the head).
pub const OVERHEAD_BYTES: usize = HEAD_LEN;

/// Offset of the first block of a shard whose payload is `payload_len` bytes (what a
/// range read skips).
pub fn payload_offset(payload_len: usize) -> usize {
    if payload_len > SMALL_PAYLOAD {
        BLOCK_BYTES
    } else {
        HEAD_LEN
    }
}

/// Total bytes of the object holding a payload of `payload_len` bytes.
pub fn object_len(payload_len: usize) -> usize {
    payload_offset(payload_len) + payload_len + 4 * payload_len.div_ceil(BLOCK_PAYLOAD)
}

/// Where payload byte `at` of a payload of `payload_len` bytes lies in the object.
pub fn payload_byte_offset(payload_len: usize, at: usize) -> usize {
    payload_offset(payload_len) + (at / BLOCK_PAYLOAD) * BLOCK_BYTES + at % BLOCK_PAYLOAD
}

/// Bytes of the object a valid head declares (for scans that find objects by their
/// heads); `None` when `head` does not start like a shard object of this version.
pub fn object_len_from_head(head: &[u8]) -> Option<usize> {
    if head.len() < HEAD_LEN || head[..8] != SHARD_MAGIC {
        return None;
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    let stored = u32::from_le_bytes(head[64..68].try_into().expect("4 bytes"));
    if version != SHARD_VERSION || crc32c::crc32c(&head[..64]) != stored {
        return None;
    }
    let body = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
    Some(format::HEADER_LEN + body)
}

/// The CRC seed of block `n` of shard `key` of `volume`.
fn block_seed(volume: VolumeId, key: ShardKey, n: usize) -> u32 {
    let mut bytes = [0u8; 16 + 8 + 1 + 8];
    bytes[..16].copy_from_slice(&volume.0);
    bytes[16..24].copy_from_slice(&key.stripe.0.to_le_bytes());
    bytes[24] = key.index.0;
    bytes[25..].copy_from_slice(&(n as u64).to_le_bytes());
    crc32c::crc32c(&bytes)
}

/// Self-description of a shard, so fsck can recognise it without the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    /// The stripe it belongs to.
    pub stripe: StripeId,
    /// Its position in the stripe.
    pub index: ShardIndex,
    /// Data shards of the stripe.
    pub k: u8,
    /// Parity shards of the stripe.
    pub m: u8,
    /// The file the stripe belongs to.
    pub inode: InodeId,
    /// The stripe's position in the file (chunk number).
    pub chunk: u64,
}

impl ShardHeader {
    /// The key the shard is stored under.
    pub fn key(&self) -> ShardKey {
        ShardKey {
            stripe: self.stripe,
            index: self.index,
        }
    }

    /// Why the header could not describe a real shard, if it cannot.
    fn defect(&self) -> Option<String> {
        if self.k == 0 {
            return Some("k is 0".into());
        }
        if u16::from(self.index.0) >= u16::from(self.k) + u16::from(self.m) {
            return Some(format!(
                "shard index {} outside a {}+{} stripe",
                self.index, self.k, self.m
            ));
        }
        None
    }

    fn to_bytes(self, payload_len: u32) -> [u8; SHARD_HEADER_LEN] {
        let mut out = [0u8; SHARD_HEADER_LEN];
        out[28..32].copy_from_slice(&payload_len.to_le_bytes());
        out[0..8].copy_from_slice(&self.stripe.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.inode.0.to_le_bytes());
        out[16..24].copy_from_slice(&self.chunk.to_le_bytes());
        out[24] = self.index.0;
        out[25] = self.k;
        out[26] = self.m;
        out
    }
}

/// A shard read back and verified.
#[derive(Debug)]
pub struct ShardObject {
    /// Its header.
    pub header: ShardHeader,
    payload: Vec<u8>,
}

impl ShardObject {
    /// The shard's payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Why a shard could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ShardReadError {
    /// No object under that key.
    #[error("shard missing")]
    Missing,
    /// The disk failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes failed verification (magic, version, CRC, volume, or key mismatch).
    #[error(transparent)]
    Corrupt(#[from] FormatError),
}

/// Writes a shard object (head, then the payload in blocks with their CRCs) under its
/// key. Not durable until sync.
///
/// The payload is handed to the disk in place, never copied into a new buffer: the
/// object goes out as a list of slices (head, then each block's payload and CRC). A
/// header that could not be read back (k = 0, index outside k+m) or a payload too large
/// for one object is refused with `InvalidInput` before anything is written.
pub fn write_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    header: &ShardHeader,
    payload: &[u8],
) -> io::Result<()> {
    let parts = ShardParts::new(volume, header, payload)?;
    disk.put_shard(parts.key(), &parts.slices(payload))
}

/// What a shard object adds to its payload (the head, the block CRCs), made ready to go
/// out with it as a list of slices: [`write_shard`], or a batch of several disks' writes
/// (`store::run_batch`).
pub struct ShardParts {
    key: ShardKey,
    head: Vec<u8>,
    crcs: Vec<[u8; 4]>,
}

impl ShardParts {
    /// The head and CRCs of the object holding `payload` as shard `header` of `volume`;
    /// `InvalidInput` for a header that could not be read back or a payload too large.
    pub fn new(volume: VolumeId, header: &ShardHeader, payload: &[u8]) -> io::Result<ShardParts> {
        if let Some(defect) = header.defect() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, defect));
        }
        let too_large = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shard payload of {} bytes exceeds an object", payload.len()),
            )
        };
        let payload_len = u32::try_from(payload.len()).map_err(|_| too_large())?;
        let body_len = u32::try_from(object_len(payload.len()) - format::HEADER_LEN)
            .map_err(|_| too_large())?;
        let frame = FrameHeader {
            magic: SHARD_MAGIC,
            version: SHARD_VERSION,
            flags: 0,
            body_len,
            volume,
        };
        let mut head = vec![0u8; payload_offset(payload.len())];
        head[..format::HEADER_LEN].copy_from_slice(&frame.to_bytes());
        head[format::HEADER_LEN..64].copy_from_slice(&header.to_bytes(payload_len));
        let head_crc = crc32c::crc32c(&head[..64]);
        head[64..HEAD_LEN].copy_from_slice(&head_crc.to_le_bytes());
        let key = header.key();
        let crcs: Vec<[u8; 4]> = payload
            .chunks(BLOCK_PAYLOAD)
            .enumerate()
            .map(|(n, block)| {
                crc32c::crc32c_append(block_seed(volume, key, n), block).to_le_bytes()
            })
            .collect();
        Ok(ShardParts { key, head, crcs })
    }

    /// The key the object goes under.
    pub fn key(&self) -> ShardKey {
        self.key
    }

    /// The object as slices: the head, then each block's payload and CRC (`payload` is
    /// the one given to [`ShardParts::new`]).
    pub fn slices<'a>(&'a self, payload: &'a [u8]) -> Vec<&'a [u8]> {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * self.crcs.len());
        parts.push(&self.head);
        for (block, crc) in payload.chunks(BLOCK_PAYLOAD).zip(&self.crcs) {
            parts.push(block);
            parts.push(crc);
        }
        parts
    }
}

/// Reads and verifies the shard `key` of `volume`.
pub fn read_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
) -> Result<ShardObject, ShardReadError> {
    match disk.get_shard(key) {
        Ok(bytes) => verify_shard(disk, volume, key, bytes),
        Err(e) => Err(read_error(e)),
    }
}

/// A failed read of a shard object as a [`ShardReadError`]: `Missing` when not found.
pub fn read_error(e: io::Error) -> ShardReadError {
    if e.kind() == io::ErrorKind::NotFound {
        ShardReadError::Missing
    } else {
        ShardReadError::Io(e)
    }
}

/// Verifies the bytes of shard object `key` of `volume` read from `disk`, as
/// [`read_shard`] does after reading them.
pub fn verify_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
    bytes: Vec<u8>,
) -> Result<ShardObject, ShardReadError> {
    // The object name costs an allocation, so it is only built for an error.
    let name = || format!("{}: shard {key}", disk.describe());
    let (object, _) = decode_shard("", bytes, Some(volume)).map_err(|mut e| {
        e.object = name();
        e
    })?;
    let found = object.header.key();
    if found != key {
        return Err(FormatError::new(
            name(),
            format::HEADER_LEN as u64,
            FormatErrorKind::Body(format!("object holds shard {found}, not {key}")),
        )
        .into());
    }
    Ok(object)
}

/// What a shard frame must be: this format, of `volume` when given.
fn shard_expect(volume: Option<VolumeId>) -> Expect {
    Expect {
        magic: SHARD_MAGIC,
        newest_version: SHARD_VERSION,
        known_flags: 0,
        volume,
    }
}

/// Decodes shard bytes already read; `volume` None accepts any volume (fsck reports it).
/// Checks, in order: magic, version, flags, length, head CRC, volume, the header's
/// fields, the zero padding, every block CRC; the payload is gathered into one buffer.
pub fn decode_shard(
    object: &str,
    bytes: Vec<u8>,
    volume: Option<VolumeId>,
) -> Result<(ShardObject, VolumeId), FormatError> {
    let err = |offset: usize, kind| FormatError::new(object, offset as u64, kind);
    let expect = shard_expect(volume);
    let frame = format::check_header_fields(object, &bytes, &expect)?;
    if frame.version != SHARD_VERSION {
        return Err(err(
            8,
            FormatErrorKind::Body(format!(
                "shard format {} (an earlier ArgosFS's, a file per shard)",
                frame.version
            )),
        ));
    }
    if bytes.len() < HEAD_LEN {
        return Err(err(
            0,
            FormatErrorKind::Truncated {
                need: HEAD_LEN as u64,
                have: bytes.len() as u64,
            },
        ));
    }
    let declared = format::HEADER_LEN + frame.body_len as usize;
    if declared != bytes.len() {
        return Err(err(
            12,
            FormatErrorKind::LengthMismatch {
                declared: declared as u64,
                actual: bytes.len() as u64,
            },
        ));
    }
    check_head(object, &bytes[..HEAD_LEN])?;
    format::check_volume(object, &frame, &expect)?;
    let head = &bytes[format::HEADER_LEN..64];
    let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    let header = ShardHeader {
        stripe: StripeId(u64_at(0)),
        inode: InodeId(u64_at(8)),
        chunk: u64_at(16),
        index: ShardIndex(head[24]),
        k: head[25],
        m: head[26],
    };
    if head[27] != 0 {
        return Err(err(
            format::HEADER_LEN + 27,
            FormatErrorKind::Body("reserved shard header byte is not zero".into()),
        ));
    }
    if let Some(defect) = header.defect() {
        return Err(err(format::HEADER_LEN + 24, FormatErrorKind::Body(defect)));
    }
    let payload_len = u32::from_le_bytes(head[28..32].try_into().expect("4 bytes")) as usize;
    if object_len(payload_len) != bytes.len() {
        return Err(err(
            format::HEADER_LEN + 28,
            FormatErrorKind::LengthMismatch {
                declared: object_len(payload_len) as u64,
                actual: bytes.len() as u64,
            },
        ));
    }
    let at = payload_offset(payload_len);
    if let Some(bad) = bytes[HEAD_LEN..at].iter().position(|&b| b != 0) {
        return Err(err(
            HEAD_LEN + bad,
            FormatErrorKind::Body("padding after the head is not zero".into()),
        ));
    }
    let key = header.key();
    let mut payload = Vec::with_capacity(payload_len);
    for (n, block) in bytes[at..].chunks(BLOCK_BYTES).enumerate() {
        let (data, crc) = block.split_at(block.len() - 4);
        check_block(
            object,
            frame.volume,
            key,
            n,
            at + n * BLOCK_BYTES,
            &[data],
            crc,
        )?;
        payload.extend_from_slice(data);
    }
    Ok((ShardObject { header, payload }, frame.volume))
}

/// Verifies the head CRC (bytes 64..68 over 0..64).
fn check_head(object: &str, head: &[u8]) -> Result<(), FormatError> {
    let stored = u32::from_le_bytes(head[64..68].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&head[..64]);
    if stored != computed {
        return Err(FormatError::new(
            object,
            64,
            FormatErrorKind::Checksum { stored, computed },
        ));
    }
    Ok(())
}

/// Verifies block `n` (its payload in `pieces`, in order) against its stored CRC; `at`
/// is where the block starts in the object, for the message.
fn check_block(
    object: &str,
    volume: VolumeId,
    key: ShardKey,
    n: usize,
    at: usize,
    pieces: &[&[u8]],
    stored: &[u8],
) -> Result<(), FormatError> {
    let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
    let computed = pieces
        .iter()
        .fold(block_seed(volume, key, n), |crc, piece| {
            crc32c::crc32c_append(crc, piece)
        });
    if stored != computed {
        return Err(FormatError::new(
            object,
            at as u64,
            FormatErrorKind::Checksum { stored, computed },
        ));
    }
    Ok(())
}

/// Reads `dest.len()` payload bytes at `start` of shard `key` straight into `dest`, with
/// one vectored read of the blocks the range covers and nothing else (no head): each
/// block's bytes outside the range and its CRC go to small scratch buffers, and every
/// block is verified by its CRC, whose seed binds it to this volume, shard and place.
/// `payload_len` is the length the metadata records for the shard. On error `dest` holds
/// no promise.
pub fn read_shard_range_into(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
    payload_len: usize,
    start: usize,
    dest: &mut [u8],
) -> Result<(), ShardReadError> {
    let mut plan = RangeRead::new(payload_len, start, dest.len()).map_err(|kind| {
        let object = format!("{}: shard {key}", disk.describe());
        ShardReadError::Corrupt(FormatError::new(object, 0, kind))
    })?;
    let read = disk.read_shard_ranges(key, &mut plan.ranges(dest));
    plan.verify(disk, volume, key, dest, read)
}

/// A read of a range of a shard's payload made ready (see [`read_shard_range_into`],
/// which is `new`, one `Disk::read_shard_ranges` of [`RangeRead::ranges`], then
/// [`RangeRead::verify`]; a batch of several disks' reads does the same steps).
pub struct RangeRead {
    payload_len: usize,
    start: usize,
    len: usize,
    /// Per read: the bytes of the first block before the range, those of the last
    /// block after it, each block's CRC.
    before: Vec<u8>,
    after: Vec<u8>,
    crcs: Vec<[u8; 4]>,
}

impl RangeRead {
    /// Readies a read of `len` payload bytes at `start` of a payload of `payload_len`
    /// bytes; what is wrong with the range when it is empty or outside the payload.
    pub fn new(payload_len: usize, start: usize, len: usize) -> Result<RangeRead, FormatErrorKind> {
        if len == 0 || start + len > payload_len {
            return Err(FormatErrorKind::Body(format!(
                "range {start}+{len} outside a payload of {payload_len} bytes"
            )));
        }
        let end = start + len;
        let (first, last) = (start / BLOCK_PAYLOAD, (end - 1) / BLOCK_PAYLOAD);
        let block_len = BLOCK_PAYLOAD.min(payload_len - last * BLOCK_PAYLOAD);
        Ok(RangeRead {
            payload_len,
            start,
            len,
            before: vec![0u8; start - first * BLOCK_PAYLOAD],
            after: vec![0u8; (last * BLOCK_PAYLOAD + block_len) - end],
            crcs: vec![[0u8; 4]; last - first + 1],
        })
    }

    fn blocks(&self) -> (usize, usize) {
        let end = self.start + self.len;
        (self.start / BLOCK_PAYLOAD, (end - 1) / BLOCK_PAYLOAD)
    }

    fn block_len(&self, n: usize) -> usize {
        BLOCK_PAYLOAD.min(self.payload_len - n * BLOCK_PAYLOAD)
    }

    /// The one range to read: the blocks the payload range covers, their bytes outside
    /// it and their CRCs to scratch buffers, the range's bytes to `dest` (`len` bytes).
    pub fn ranges<'a>(&'a mut self, dest: &'a mut [u8]) -> [ShardRange<'a>; 1] {
        let (first, last) = self.blocks();
        let end = self.start + self.len;
        let lens: Vec<usize> = (first..=last).map(|n| self.block_len(n)).collect();
        let mut bufs: Vec<&mut [u8]> = Vec::with_capacity((last - first + 1) * 2 + 2);
        let mut rest = &mut dest[..];
        let mut crc_slots = self.crcs.iter_mut();
        let (mut before, mut after) = (Some(&mut self.before[..]), Some(&mut self.after[..]));
        for n in first..=last {
            let from = if n == first {
                self.start
            } else {
                n * BLOCK_PAYLOAD
            };
            let to = end.min(n * BLOCK_PAYLOAD + lens[n - first]);
            if n == first
                && let Some(lead) = before.take()
            {
                bufs.push(lead);
            }
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(to - from);
            bufs.push(part);
            rest = tail;
            if n == last
                && let Some(trail) = after.take()
            {
                bufs.push(trail);
            }
            bufs.push(&mut crc_slots.next().expect("one per block")[..]);
        }
        [ShardRange {
            offset: (payload_offset(self.payload_len) + first * BLOCK_BYTES) as u64,
            bufs,
        }]
    }

    /// Checks the read (`read`: how the disk read went) block by block against the
    /// CRCs; `dest` holds the range's bytes after success, no promise after an error.
    pub fn verify(
        &self,
        disk: &dyn Disk,
        volume: VolumeId,
        key: ShardKey,
        dest: &[u8],
        read: io::Result<()>,
    ) -> Result<(), ShardReadError> {
        let name = || format!("{}: shard {key}", disk.describe());
        match read {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ShardReadError::Missing),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ShardReadError::Corrupt(FormatError::new(
                    name(),
                    0,
                    FormatErrorKind::Truncated {
                        need: object_len(self.payload_len) as u64,
                        have: 0,
                    },
                )));
            }
            Err(e) => return Err(ShardReadError::Io(e)),
        }
        let (first, last) = self.blocks();
        let end = self.start + self.len;
        let object = name();
        let at = payload_offset(self.payload_len);
        let mut cursor = 0;
        for (i, n) in (first..=last).enumerate() {
            let from = if n == first {
                self.start
            } else {
                n * BLOCK_PAYLOAD
            };
            let to = end.min(n * BLOCK_PAYLOAD + self.block_len(n));
            let part = &dest[cursor..cursor + (to - from)];
            cursor += to - from;
            let lead_part: &[u8] = if n == first { &self.before } else { &[] };
            let trail_part: &[u8] = if n == last { &self.after } else { &[] };
            check_block(
                &object,
                volume,
                key,
                n,
                at + n * BLOCK_BYTES,
                &[lead_part, part, trail_part],
                &self.crcs[i],
            )
            .map_err(ShardReadError::Corrupt)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DirDisk, DiskSpace, FaultyDisk, MemDisk};
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    fn header(stripe: u64, index: u8) -> ShardHeader {
        ShardHeader {
            stripe: StripeId(stripe),
            index: ShardIndex(index),
            k: 4,
            m: 2,
            inode: InodeId(77),
            chunk: 12,
        }
    }

    fn corrupt(result: Result<ShardObject, ShardReadError>) -> FormatError {
        match result {
            Err(ShardReadError::Corrupt(e)) => e,
            other => panic!("expected a corrupt shard, got {other:?}"),
        }
    }

    /// Replaces the object `key` with `bytes`, whatever they are.
    fn rewrite(disk: &dyn Disk, key: ShardKey, bytes: &[u8]) {
        disk.put_shard(key, &[bytes]).unwrap();
    }

    #[test]
    fn round_trip_on_dir_and_mem_disks() {
        let tmp = tempfile::tempdir().unwrap();
        let disks: Vec<Box<dyn Disk>> = vec![
            Box::new(DirDisk::create(tmp.path()).unwrap()),
            Box::new(MemDisk::new("m", 1 << 20)),
        ];
        let vol = VolumeId::random();
        for disk in &disks {
            let h = header(0xdead_beef, 5);
            let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
            write_shard(disk.as_ref(), vol, &h, &payload).unwrap();
            let bytes = disk.get_shard(h.key()).unwrap();
            assert_eq!(bytes.len(), object_len(payload.len()));
            assert_eq!(&bytes[..8], b"ARGSHRD\x1a");
            let at = payload_offset(payload.len());
            assert_eq!(&bytes[at..at + 1000], &payload[..]);
            let object = read_shard(disk.as_ref(), vol, h.key()).unwrap();
            assert_eq!(object.header, h);
            assert_eq!(object.payload(), &payload[..]);

            let empty = header(1, 0);
            write_shard(disk.as_ref(), vol, &empty, b"").unwrap();
            assert_eq!(
                read_shard(disk.as_ref(), vol, empty.key())
                    .unwrap()
                    .payload(),
                b""
            );
        }
    }

    #[test]
    fn missing_shard_is_missing_and_disk_errors_are_io() {
        let faulty = FaultyDisk::new(Arc::new(MemDisk::new("m", 1 << 20)));
        let vol = VolumeId::random();
        let key = header(3, 1).key();
        assert!(matches!(
            read_shard(&faulty, vol, key),
            Err(ShardReadError::Missing)
        ));
        faulty.fail_next_puts(1, libc::EIO);
        let err = write_shard(&faulty, vol, &header(3, 1), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
    }

    #[test]
    fn every_flipped_byte_in_a_shard_file_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(tmp.path()).unwrap();
        let vol = VolumeId::random();
        let h = header(0x42, 2);
        write_shard(&disk, vol, &h, b"payload bytes of a shard").unwrap();
        let good = disk.get_shard(h.key()).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            rewrite(&disk, h.key(), &bad);
            corrupt(read_shard(&disk, vol, h.key()));
        }
        rewrite(&disk, h.key(), &good);
        read_shard(&disk, vol, h.key()).unwrap();
    }

    #[test]
    fn every_truncation_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(tmp.path()).unwrap();
        let vol = VolumeId::random();
        let h = header(0x43, 0);
        write_shard(&disk, vol, &h, b"some payload").unwrap();
        let good = disk.get_shard(h.key()).unwrap();
        for len in 0..good.len() {
            rewrite(&disk, h.key(), &good[..len]);
            corrupt(read_shard(&disk, vol, h.key()));
        }
    }

    #[test]
    fn faulty_reads_and_torn_writes_are_caught() {
        let faulty = FaultyDisk::new(Arc::new(MemDisk::new("m", 1 << 20)));
        let vol = VolumeId::random();
        let h = header(9, 3);
        write_shard(&faulty, vol, &h, &[0xab; 300]).unwrap();
        faulty.set_flip_reads(true);
        let err = corrupt(read_shard(&faulty, vol, h.key()));
        assert!(matches!(err.kind, FormatErrorKind::Checksum { .. }));
        faulty.clear();
        faulty.torn_next_put(200);
        write_shard(&faulty, vol, &h, &[0xab; 300]).unwrap();
        corrupt(read_shard(&faulty, vol, h.key()));
    }

    #[test]
    fn a_shard_under_another_key_is_caught() {
        let disk = MemDisk::new("m", 1 << 20);
        let vol = VolumeId::random();
        let h = header(100, 1);
        write_shard(&disk, vol, &h, b"shard one").unwrap();
        let bytes = disk.get_shard(h.key()).unwrap();
        for wrong in [header(100, 2).key(), header(101, 1).key()] {
            disk.put_shard(wrong, &[&bytes]).unwrap();
            let err = corrupt(read_shard(&disk, vol, wrong));
            let FormatErrorKind::Body(why) = &err.kind else {
                panic!("expected a body error, got {err}");
            };
            assert!(why.contains(&h.key().to_string()), "{why}");
            assert!(why.contains(&wrong.to_string()), "{why}");
            assert!(err.object.contains("mem:m"), "{}", err.object);
        }
    }

    #[test]
    fn a_shard_of_another_volume_is_refused_and_reported() {
        let disk = MemDisk::new("m", 1 << 20);
        let (ours, theirs) = (VolumeId::random(), VolumeId::random());
        let h = header(5, 0);
        write_shard(&disk, theirs, &h, b"foreign").unwrap();
        let err = corrupt(read_shard(&disk, ours, h.key()));
        assert_eq!(
            err.kind,
            FormatErrorKind::WrongVolume {
                expected: ours,
                found: theirs
            }
        );
        let bytes = disk.get_shard(h.key()).unwrap();
        let (object, found) = decode_shard("s", bytes.clone(), None).unwrap();
        assert_eq!(found, theirs);
        assert_eq!(object.header, h);
        assert_eq!(object.payload(), b"foreign");
        assert!(decode_shard("s", bytes, Some(ours)).is_err());
    }

    #[test]
    fn impossible_headers_are_refused_both_ways() {
        let disk = MemDisk::new("m", 1 << 20);
        let vol = VolumeId::random();
        let mut bad = header(1, 6);
        assert_eq!(
            write_shard(&disk, vol, &bad, b"x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        bad.index = ShardIndex(0);
        bad.k = 0;
        assert!(write_shard(&disk, vol, &bad, b"x").is_err());
        assert!(disk.list_shards().unwrap().is_empty());

        // A head with a valid CRC but a nonzero reserved byte is still refused.
        let mem = MemDisk::new("m", 1 << 20);
        write_shard(&mem, vol, &header(1, 0), b"payload").unwrap();
        let good = mem.get_shard(header(1, 0).key()).unwrap();
        let mut bytes = good.clone();
        bytes[59] = 1;
        let crc = crc32c::crc32c(&bytes[..64]);
        bytes[64..68].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_shard("s", bytes, Some(vol)).is_err());
        // And an object shorter than a head.
        let err = decode_shard("s", good[..40].to_vec(), Some(vol)).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated { .. }));
        // An object of the earlier format (version 1) is named as such.
        let mut old = good.clone();
        old[8] = 1;
        let err = decode_shard("s", old, Some(vol)).unwrap_err();
        assert!(err.to_string().contains("shard format 1"), "{err}");
    }

    #[test]
    fn range_reads_verify_only_the_blocks_they_read() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DirDisk::create(dir.path()).unwrap();
        let vol = VolumeId::random();
        let payload: Vec<u8> = (0..3 * BLOCK_BYTES + 100).map(|i| (i * 7) as u8).collect();
        let h = header(9, 1);
        write_shard(&disk, vol, &h, &payload).unwrap();
        let key = h.key();
        let n = payload.len();
        // Every way a range can sit on the blocks: inside one, cutting both ends, whole
        // blocks with and without cut ends, the short last block, on both stores.
        let mem = MemDisk::new("m", 1 << 20);
        write_shard(&mem, vol, &h, &payload).unwrap();
        let starts = [0, 1, 4095, 4096, 4097, 5000, 8192, n - 100, n - 1];
        let lens = [1, 100, 4095, 4096, 4097, 8192, 9000, n];
        for store in [&disk as &dyn Disk, &mem] {
            for start in starts {
                for len in lens.map(|l| l.min(n - start)) {
                    let got = read_shard_range(store, vol, key, n, start, len).unwrap();
                    assert!(
                        got == payload[start..start + len],
                        "{} {start}+{len}",
                        store.describe()
                    );
                }
            }
        }
        // A flipped payload byte fails the range covering it, not the others.
        let mut bytes = disk.get_shard(key).unwrap();
        let at = payload_byte_offset(n, 2 * BLOCK_PAYLOAD + 5);
        bytes[at] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 2 * BLOCK_PAYLOAD, 10).is_err());
        assert!(read_shard_range(&disk, vol, key, n, 0, 10).is_ok());
        assert!(
            read_shard(&disk, vol, key).is_err(),
            "a whole read still sees it"
        );
        // A flipped CRC fails its block too.
        bytes[at] ^= 1;
        let crc_at = payload_offset(n) + BLOCK_BYTES - 2;
        bytes[crc_at] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 4000, 10).is_err());
        assert!(read_shard_range(&disk, vol, key, n, 5000, 10).is_ok());
        bytes[crc_at] ^= 1;
        // A range read does not read the head: a flipped head byte fails whole reads
        // only (as damage: the head CRC).
        bytes[20] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 0, 10).is_ok());
        let Err(ShardReadError::Corrupt(e)) = read_shard(&disk, vol, key) else {
            panic!("a damaged head was accepted")
        };
        assert!(matches!(e.kind, FormatErrorKind::Checksum { .. }), "{e}");
        bytes[20] ^= 1;
        rewrite(&disk, key, &bytes);
        // The block CRCs are seeded with the volume and the shard: blocks read as
        // another volume's, or moved under another key, fail.
        let Err(ShardReadError::Corrupt(e)) =
            read_shard_range(&disk, VolumeId::random(), key, n, 0, 10)
        else {
            panic!("another volume's shard was accepted")
        };
        assert!(matches!(e.kind, FormatErrorKind::Checksum { .. }), "{e}");
        let moved = ShardKey {
            stripe: StripeId(99),
            index: ShardIndex(1),
        };
        rewrite(&disk, moved, &bytes);
        assert!(read_shard_range(&disk, vol, moved, n, 0, 10).is_err());
        // A wrong length puts the last block's end elsewhere: its CRC fails; past the
        // end is an error.
        assert!(read_shard_range(&disk, vol, key, n - 1, n - 20, 10).is_err());
        assert!(read_shard_range(&disk, vol, key, n, n, 1).is_err());
        assert!(read_shard_range(&disk, vol, key, n + 5000, n, 10).is_err());
        let other = ShardKey {
            stripe: StripeId(10),
            index: ShardIndex(1),
        };
        assert!(matches!(
            read_shard_range(&disk, vol, other, n, 0, 10),
            Err(ShardReadError::Missing)
        ));
    }

    /// [`read_shard_range_into`] into a buffer of stale bytes, which must all be replaced.
    fn read_shard_range(
        disk: &dyn Disk,
        vol: VolumeId,
        key: ShardKey,
        payload_len: usize,
        start: usize,
        len: usize,
    ) -> Result<Vec<u8>, ShardReadError> {
        let mut buf = vec![0xa5; len];
        read_shard_range_into(disk, vol, key, payload_len, start, &mut buf)?;
        Ok(buf)
    }

    /// Records what `put_shard` receives, to check the payload is not copied.
    struct Recorder {
        inner: MemDisk,
        seen: Mutex<Vec<(usize, usize)>>,
    }

    impl Disk for Recorder {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn put_shard(&self, key: ShardKey, parts: &[&[u8]]) -> io::Result<()> {
            let seen = parts.iter().map(|p| (p.as_ptr() as usize, p.len()));
            self.seen.lock().unwrap().extend(seen);
            self.inner.put_shard(key, parts)
        }
        fn get_shard(&self, key: ShardKey) -> io::Result<Vec<u8>> {
            self.inner.get_shard(key)
        }
        fn delete_shard(&self, key: ShardKey) -> io::Result<()> {
            self.inner.delete_shard(key)
        }
        fn list_shards(&self) -> io::Result<Vec<ShardKey>> {
            self.inner.list_shards()
        }
        fn shard_modified(&self, key: ShardKey) -> io::Result<SystemTime> {
            self.inner.shard_modified(key)
        }
        fn sync(&self) -> io::Result<()> {
            self.inner.sync()
        }
        fn space(&self) -> io::Result<DiskSpace> {
            self.inner.space()
        }
        fn read_label(&self) -> io::Result<Option<Vec<u8>>> {
            self.inner.read_label()
        }
        fn write_label(&self, bytes: &[u8]) -> io::Result<()> {
            self.inner.write_label(bytes)
        }
    }

    #[test]
    fn write_shard_hands_the_payload_over_uncopied() {
        let disk = Recorder {
            inner: MemDisk::new("m", 1 << 20),
            seen: Mutex::new(Vec::new()),
        };
        let payload = vec![7u8; 4096];
        write_shard(&disk, VolumeId::random(), &header(1, 0), &payload).unwrap();
        let seen = disk.seen.lock().unwrap().clone();
        // The head, then each block's payload (in place) and CRC.
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].1, payload_offset(payload.len()));
        assert_eq!(seen[1], (payload.as_ptr() as usize, BLOCK_PAYLOAD));
        assert_eq!(seen[2].1, 4);
        assert_eq!(
            seen[3],
            (
                payload.as_ptr() as usize + BLOCK_PAYLOAD,
                4096 - BLOCK_PAYLOAD
            )
        );
        assert_eq!(seen[4].1, 4);
    }

    proptest! {
        #[test]
        fn decode_undoes_write_and_any_flip_is_caught(
            stripe in any::<u64>(),
            inode in any::<u64>(),
            chunk in any::<u64>(),
            k in 1u8..=16,
            m in 0u8..=8,
            index_seed in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..512),
            flip_seed in any::<usize>(),
            flip_bit in 0u8..8,
        ) {
            let disk = MemDisk::new("p", 1 << 20);
            let vol = VolumeId::random();
            let h = ShardHeader {
                stripe: StripeId(stripe),
                index: ShardIndex(index_seed % (k + m)),
                k,
                m,
                inode: InodeId(inode),
                chunk,
            };
            write_shard(&disk, vol, &h, &payload).unwrap();
            let object = read_shard(&disk, vol, h.key()).unwrap();
            prop_assert_eq!(object.header, h);
            prop_assert_eq!(object.payload(), &payload[..]);

            let mut bytes = disk.get_shard(h.key()).unwrap();
            let at = flip_seed % bytes.len();
            bytes[at] ^= 1 << flip_bit;
            prop_assert!(decode_shard("p", bytes, Some(vol)).is_err());
        }
    }
}

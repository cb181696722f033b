//! Shard object format: one object per shard (a record in a disk's segment store),
//! framed by `crate::format`, self-describing so fsck can recognise and verify every
//! shard without the metadata.
//!
//! ```text
//! offset size field
//! 0      8    magic      b"ARGSHRD\x1a"
//! 8      2    version    u16 LE, 1
//! 10     2    flags      u16 LE, 0 (no flags defined)
//! 12     4    body_len   u32 LE: 32 + 4n + 4 + payload length
//! 16     16   volume_id
//! 32     8    stripe     u64 LE   -- shard header (the first 32 bytes of the body)
//! 40     8    inode      u64 LE
//! 48     8    chunk      u64 LE   the stripe's position in the file
//! 56     1    index      u8       0..k data, k..k+m parity
//! 57     1    k          u8       at least 1
//! 58     1    m          u8
//! 59     1    reserved   0
//! 60     4    payload_len u32 LE
//! 64     4*n  block_crcs crc32c of each 4 KiB block of the payload (n = ceil(len/4096))
//! 64+4n  4    head_crc   crc32c of bytes 0..64+4n
//! 68+4n  ..   payload    the erasure-coded shard bytes
//! end-4  4    crc32c     over every byte before it (the frame's)
//! ```
//!
//! The frame CRC verifies a whole object; the head CRC and the block CRCs let a small
//! read fetch and verify only the blocks it needs ([`read_shard_range_into`]).
//!
//! This module owns the bytes of one shard object; what a payload means (compression,
//! encryption, erasure coding) belongs to `crate::data`.

use crate::format::{self, Expect, FormatError, FormatErrorKind, FrameHeader};
use crate::store::{Disk, ShardRange};
use crate::types::{InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use std::io;
use std::ops::Range;

/// Frame magic of shard objects.
pub const SHARD_MAGIC: [u8; 8] = *b"ARGSHRD\x1a";
/// Newest shard format version this build writes and reads.
pub const SHARD_VERSION: u16 = 1;
/// Length of the shard header at the start of the frame body.
pub const SHARD_HEADER_LEN: usize = 32;
/// Bytes a shard object adds to its payload apart from the block CRCs (frame header,
/// shard header, head CRC, frame CRC).
pub const OVERHEAD_BYTES: usize = format::HEADER_LEN + SHARD_HEADER_LEN + 4 + format::TRAILER_LEN;
/// Payload bytes covered by one block CRC.
pub const BLOCK_BYTES: usize = 4096;

/// Offset of the block CRC table.
const TABLE_AT: usize = format::HEADER_LEN + SHARD_HEADER_LEN;

/// Offset of the payload of a shard whose payload is `payload_len` bytes.
pub fn payload_offset(payload_len: usize) -> usize {
    TABLE_AT + 4 * payload_len.div_ceil(BLOCK_BYTES) + 4
}

/// Total bytes of the object holding a payload of `payload_len` bytes.
pub fn object_len(payload_len: usize) -> usize {
    payload_offset(payload_len) + payload_len + format::TRAILER_LEN
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
    bytes: Vec<u8>,
    payload: Range<usize>,
}

impl ShardObject {
    /// The shard's payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload.clone()]
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

/// Writes a shard object (header, payload, CRC) under its key. Not durable until sync.
///
/// The payload is handed to the disk as it is, never copied into a new buffer. A header
/// that could not be read back (k = 0, index outside k+m) or a payload too large for one
/// frame is refused with `InvalidInput` before anything is written.
pub fn write_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    header: &ShardHeader,
    payload: &[u8],
) -> io::Result<()> {
    if let Some(defect) = header.defect() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, defect));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shard payload of {} bytes exceeds a frame", payload.len()),
        )
    };
    let payload_len = u32::try_from(payload.len()).map_err(|_| too_large())?;
    let at = payload_offset(payload.len());
    let body_len =
        u32::try_from(at - format::HEADER_LEN + payload.len()).map_err(|_| too_large())?;
    let frame = FrameHeader {
        magic: SHARD_MAGIC,
        version: SHARD_VERSION,
        flags: 0,
        body_len,
        volume,
    };
    // The head: frame header, shard header, one CRC per payload block, the head's CRC.
    let mut head = Vec::with_capacity(at);
    head.extend_from_slice(&frame.to_bytes());
    head.extend_from_slice(&header.to_bytes(payload_len));
    for block in payload.chunks(BLOCK_BYTES) {
        head.extend_from_slice(&crc32c::crc32c(block).to_le_bytes());
    }
    let head_crc = crc32c::crc32c(&head);
    head.extend_from_slice(&head_crc.to_le_bytes());
    // A second pass over the payload, while it is still in cache, is cheaper than
    // deriving the frame CRC with crc32c_combine (measured: combine per block dominated
    // the whole write path).
    let frame_crc = crc32c::crc32c_append(crc32c::crc32c(&head), payload).to_le_bytes();
    disk.put_shard(header.key(), &[&head, payload, &frame_crc])
}

/// Reads and verifies the shard `key` of `volume`.
pub fn read_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
) -> Result<ShardObject, ShardReadError> {
    let bytes = match disk.get_shard(key) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ShardReadError::Missing),
        Err(e) => return Err(ShardReadError::Io(e)),
    };
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
pub fn decode_shard(
    object: &str,
    bytes: Vec<u8>,
    volume: Option<VolumeId>,
) -> Result<(ShardObject, VolumeId), FormatError> {
    let (frame, body) = format::decode(object, &bytes, &shard_expect(volume))?;
    let err = |offset: usize, kind| FormatError::new(object, offset as u64, kind);
    let Some(head) = body.first_chunk::<SHARD_HEADER_LEN>() else {
        return Err(err(
            format::HEADER_LEN,
            FormatErrorKind::Truncated {
                need: OVERHEAD_BYTES as u64,
                have: bytes.len() as u64,
            },
        ));
    };
    let u64_at = |at: usize| {
        let field: [u8; 8] = head[at..at + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(field)
    };
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
    check_head(object, &bytes[..at])?;
    let payload = at..bytes.len() - format::TRAILER_LEN;
    let volume = frame.volume;
    Ok((
        ShardObject {
            header,
            bytes,
            payload,
        },
        volume,
    ))
}

/// Verifies the head CRC at the end of `head` (frame header through block CRCs).
fn check_head(object: &str, head: &[u8]) -> Result<(), FormatError> {
    let at = head.len() - 4;
    let stored = u32::from_le_bytes(head[at..].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&head[..at]);
    if stored != computed {
        return Err(FormatError::new(
            object,
            at as u64,
            FormatErrorKind::Checksum { stored, computed },
        ));
    }
    Ok(())
}

/// Reads `dest.len()` payload bytes at `start` of shard `key` straight into `dest`,
/// verifying the object's head (magic, version, volume, key, payload length, head CRC)
/// and only the CRCs of the blocks read. `payload_len` is the length the metadata records
/// for the shard. Whole blocks inside the range are read into `dest` itself; only a block
/// the range cuts goes through a scratch buffer. On error `dest` holds no promise.
pub fn read_shard_range_into(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
    payload_len: usize,
    start: usize,
    dest: &mut [u8],
) -> Result<(), ShardReadError> {
    let name = || format!("{}: shard {key}", disk.describe());
    let err = |offset: usize, kind| {
        ShardReadError::Corrupt(FormatError::new(name(), offset as u64, kind))
    };
    let len = dest.len();
    if len == 0 || start + len > payload_len {
        return Err(err(
            0,
            FormatErrorKind::Body(format!(
                "range {start}+{len} outside a payload of {payload_len} bytes"
            )),
        ));
    }
    let at = payload_offset(payload_len);
    let end = start + len;
    let (first, last) = (start / BLOCK_BYTES, (end - 1) / BLOCK_BYTES);
    let block_len = |n: usize| BLOCK_BYTES.min(payload_len - n * BLOCK_BYTES);
    // The range's blocks as three pieces: the first block when the range cuts it, the
    // whole blocks (read into `dest`), the last block when the range cuts it.
    let lead = start - first * BLOCK_BYTES;
    let first_cut = lead > 0 || end < first * BLOCK_BYTES + block_len(first);
    let last_cut = last != first && end < last * BLOCK_BYTES + block_len(last);
    let mut first_block = vec![0u8; if first_cut { block_len(first) } else { 0 }];
    let mut last_block = vec![0u8; if last_cut { block_len(last) } else { 0 }];
    let lead_len = if first_cut {
        len.min(block_len(first) - lead)
    } else {
        0
    };
    let tail_len = if last_cut {
        end - last * BLOCK_BYTES
    } else {
        0
    };
    let (dest_lead, rest) = dest.split_at_mut(lead_len);
    let whole_len = rest.len() - tail_len;
    let (whole, dest_tail) = rest.split_at_mut(whole_len);
    let mut head = vec![0u8; at];
    {
        let mut blocks: Vec<&mut [u8]> = Vec::with_capacity(3);
        blocks.extend([&mut first_block[..], &mut whole[..], &mut last_block[..]]);
        blocks.retain(|b| !b.is_empty());
        let blocks_at = (at + first * BLOCK_BYTES) as u64;
        let mut ranges = if first == 0 {
            let mut bufs = vec![&mut head[..]];
            bufs.extend(blocks);
            vec![ShardRange { offset: 0, bufs }]
        } else {
            vec![
                ShardRange {
                    offset: 0,
                    bufs: vec![&mut head[..]],
                },
                ShardRange {
                    offset: blocks_at,
                    bufs: blocks,
                },
            ]
        };
        match disk.read_shard_ranges(key, &mut ranges) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ShardReadError::Missing),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(err(
                    0,
                    FormatErrorKind::Truncated {
                        need: object_len(payload_len) as u64,
                        have: 0,
                    },
                ));
            }
            Err(e) => return Err(ShardReadError::Io(e)),
        }
    }
    check_range_head(&name, &head, volume, key, payload_len)?;
    // Every block read, in order, with its number.
    let whole_first = if first_cut { first + 1 } else { first };
    let pieces = (first_cut.then_some((first, &first_block[..])).into_iter())
        .chain(
            whole
                .chunks(BLOCK_BYTES)
                .enumerate()
                .map(|(i, b)| (whole_first + i, b)),
        )
        .chain(last_cut.then_some((last, &last_block[..])));
    for (n, block) in pieces {
        let table = TABLE_AT + 4 * n;
        let stored = u32::from_le_bytes(head[table..table + 4].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(block);
        if stored != computed {
            return Err(err(
                at + n * BLOCK_BYTES,
                FormatErrorKind::Checksum { stored, computed },
            ));
        }
    }
    dest_lead.copy_from_slice(&first_block[lead.min(first_block.len())..][..lead_len]);
    dest_tail.copy_from_slice(&last_block[..tail_len]);
    Ok(())
}

/// Checks the head of a shard read by range as `format::decode` checks a whole frame
/// (magic, version, flags; the head CRC where the frame CRC would be; then the volume),
/// and that it is shard `key` with a payload of `payload_len` bytes.
fn check_range_head(
    name: &dyn Fn() -> String,
    head: &[u8],
    volume: VolumeId,
    key: ShardKey,
    payload_len: usize,
) -> Result<(), ShardReadError> {
    let err = |offset: usize, kind| {
        ShardReadError::Corrupt(FormatError::new(name(), offset as u64, kind))
    };
    let expect = shard_expect(Some(volume));
    let frame = format::check_header_fields(&name(), head, &expect)?;
    check_head(&name(), head)?;
    format::check_volume(&name(), &frame, &expect)?;
    let stripe = u64::from_le_bytes(head[32..40].try_into().expect("8 bytes"));
    let declared = u32::from_le_bytes(head[60..64].try_into().expect("4 bytes")) as usize;
    if stripe != key.stripe.0 || head[56] != key.index.0 || declared != payload_len {
        return Err(err(
            32,
            FormatErrorKind::Body(format!(
                "object holds stripe {:016x} shard {} of {declared} bytes, not {key} of {payload_len}",
                stripe, head[56]
            )),
        ));
    }
    Ok(())
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

        // A frame with a valid CRC but a nonzero reserved byte is still refused.
        let mut body = header(1, 0).to_bytes(7).to_vec();
        body[27] = 1;
        body.extend_from_slice(b"payload");
        let frame = FrameHeader {
            magic: SHARD_MAGIC,
            version: 1,
            flags: 0,
            body_len: 0,
            volume: vol,
        };
        let bytes = format::encode(frame, &body);
        assert!(decode_shard("s", bytes, Some(vol)).is_err());
        // And a frame whose body is shorter than a shard header.
        let bytes = format::encode(frame, &[0u8; 10]);
        let err = decode_shard("s", bytes, Some(vol)).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::Truncated { .. }));
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
        let at = payload_offset(n);
        bytes[at + 2 * BLOCK_BYTES + 5] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 2 * BLOCK_BYTES, 10).is_err());
        assert!(read_shard_range(&disk, vol, key, n, 0, 10).is_ok());
        assert!(
            read_shard(&disk, vol, key).is_err(),
            "a whole read still sees it"
        );
        // A flipped head byte, another volume, a wrong length, a missing shard.
        bytes[at + 2 * BLOCK_BYTES + 5] ^= 1;
        bytes[40] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 0, 10).is_err());
        bytes[40] ^= 1;
        rewrite(&disk, key, &bytes);
        assert!(read_shard_range(&disk, vol, key, n, 0, 10).is_ok());
        // A flipped byte of the volume field is damage (head CRC), as in a whole read,
        // not an object of another volume; a real other volume is that.
        bytes[20] ^= 1;
        rewrite(&disk, key, &bytes);
        for result in [
            read_shard_range(&disk, vol, key, n, 0, 10).map(|_| ()),
            read_shard(&disk, vol, key).map(|_| ()),
        ] {
            let Err(ShardReadError::Corrupt(e)) = result else {
                panic!("{result:?}")
            };
            assert!(matches!(e.kind, FormatErrorKind::Checksum { .. }), "{e}");
        }
        bytes[20] ^= 1;
        rewrite(&disk, key, &bytes);
        let Err(ShardReadError::Corrupt(e)) =
            read_shard_range(&disk, VolumeId::random(), key, n, 0, 10)
        else {
            panic!("another volume's shard was accepted")
        };
        assert!(matches!(e.kind, FormatErrorKind::WrongVolume { .. }), "{e}");
        assert!(read_shard_range(&disk, vol, key, n - 1, 0, 10).is_err());
        assert!(read_shard_range(&disk, vol, key, n, n, 1).is_err());
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
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].1, payload_offset(payload.len()));
        assert_eq!(seen[1], (payload.as_ptr() as usize, payload.len()));
        assert_eq!(seen[2].1, format::TRAILER_LEN);
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

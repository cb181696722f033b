//! The index of a segment store: where each shard object of a disk is.
//!
//! Two files in `DISK/store/`, both private:
//!
//! ```text
//! index       checkpoint: header (32 bytes), then one 32-byte entry per live shard
//! index.log   header (32 bytes), then 32-byte entries appended since the checkpoint
//! header      magic (8) | version u16 | kind u16 (1 checkpoint, 2 log) | generation u64 |
//!             entry count u64 (checkpoint; 0 in a log) | reserved u32 | CRC32C u32
//! entry       kind u8 (1 put, 2 delete, 3 synced) | shard index u8 | reserved u16 |
//!             segment u32 | stripe u64 | offset u64 (in sectors of 512 bytes) |
//!             length u32 | written u32 (Unix seconds) | reserved u32 | CRC32C u32
//! ```
//!
//! A log belongs to the checkpoint of the same generation; a log of an older generation
//! is left over from a crash between writing a checkpoint and starting its log, and every
//! entry in it is already in the checkpoint. Replay stops at the first entry that is
//! short or fails its CRC (a torn append). A *synced* entry says every entry before it was
//! made durable by a sync of the disk; entries after the last one may name objects that
//! never reached the disk, and the store checks those before trusting them.
//!
//! Everything little-endian. Decoders never panic on bad bytes.

use crate::types::{ShardIndex, ShardKey, StripeId};
use std::collections::HashMap;

/// Magic of both index files.
pub const INDEX_MAGIC: [u8; 8] = *b"ARGSIDX\x1a";
/// Index format this build writes and reads.
pub const INDEX_VERSION: u16 = 1;
/// Bytes of the header of either file.
pub const HEADER_LEN: usize = 32;
/// Bytes of one entry.
pub const ENTRY_LEN: usize = 40;
/// Records of this many bytes or more start and end at multiples of it in a segment (a
/// 4 KiB read of a large shard is then one block of the filesystem, and direct I/O can
/// read it).
pub const BLOCK: u64 = 4096;
/// Smaller records start and end at multiples of this: a small file's shards (a 4 KiB
/// file makes six of about 1 KiB) then take 1.5 KiB each, not 4 KiB.
pub const SECTOR: u64 = 512;

const KIND_CHECKPOINT: u16 = 1;
const KIND_LOG: u16 = 2;

/// Where one shard object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Segment number (the file `seg.NNNNNNNN`).
    pub segment: u32,
    /// Byte offset of the object in the segment: a multiple of [`BLOCK`] for a large
    /// record, of [`SECTOR`] for a small one.
    pub offset: u64,
    /// Bytes of the object.
    pub len: u32,
    /// When it was written, in seconds since the Unix epoch.
    pub written: u32,
}

impl Location {
    /// Bytes the record takes in its segment: the object rounded up to [`BLOCK`], or to
    /// [`SECTOR`] when it is smaller than a block.
    pub fn span(&self) -> u64 {
        span_of(u64::from(self.len))
    }
}

/// Bytes a record of `len` bytes takes in its segment (see [`Location::span`]).
pub fn span_of(len: u64) -> u64 {
    let unit = alignment_of(len);
    len.div_ceil(unit).max(1) * unit
}

/// Where a record of `len` bytes may start: a multiple of this.
pub fn alignment_of(len: u64) -> u64 {
    if len >= BLOCK { BLOCK } else { SECTOR }
}

/// One change to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The object `key` is now at the location (a put, or a move by compaction).
    Put(ShardKey, Location),
    /// The object `key` was deleted.
    Delete(ShardKey),
    /// Every entry before this one was durable when it was written.
    Synced,
}

impl Entry {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        let (kind, key, at) = match *self {
            Entry::Put(key, at) => (1u8, Some(key), Some(at)),
            Entry::Delete(key) => (2, Some(key), None),
            Entry::Synced => (3, None, None),
        };
        out[0] = kind;
        if let Some(key) = key {
            out[1] = key.index.0;
            out[8..16].copy_from_slice(&key.stripe.0.to_le_bytes());
        }
        if let Some(at) = at {
            out[4..8].copy_from_slice(&at.segment.to_le_bytes());
            out[16..24].copy_from_slice(&(at.offset / SECTOR).to_le_bytes());
            out[24..28].copy_from_slice(&at.len.to_le_bytes());
            out[28..32].copy_from_slice(&at.written.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out[..ENTRY_LEN - 4]);
        out[ENTRY_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes one entry; `None` when it fails its CRC or holds what no writer writes.
    pub fn decode(bytes: &[u8; ENTRY_LEN]) -> Option<Entry> {
        let crc = u32::from_le_bytes(bytes[ENTRY_LEN - 4..].try_into().ok()?);
        if crc32c::crc32c(&bytes[..ENTRY_LEN - 4]) != crc {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let key = ShardKey {
            stripe: StripeId(u64_at(8)),
            index: ShardIndex(bytes[1]),
        };
        match bytes[0] {
            1 => {
                let sectors = u64_at(16);
                Some(Entry::Put(
                    key,
                    Location {
                        segment: u32_at(4),
                        offset: sectors.checked_mul(SECTOR)?,
                        len: u32_at(24),
                        written: u32_at(28),
                    },
                ))
            }
            2 => Some(Entry::Delete(key)),
            3 => Some(Entry::Synced),
            _ => None,
        }
    }
}

/// A header of either index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: u16,
    generation: u64,
    count: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&INDEX_MAGIC);
        out[8..10].copy_from_slice(&INDEX_VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&self.kind.to_le_bytes());
        out[12..20].copy_from_slice(&self.generation.to_le_bytes());
        out[20..28].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c(&out[..HEADER_LEN - 4]);
        out[HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8], kind: u16) -> Result<Header, String> {
        let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(format!("{} bytes, shorter than a header", bytes.len()));
        };
        if head[..8] != INDEX_MAGIC {
            return Err("not an ArgosFS index (bad magic)".into());
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != INDEX_VERSION {
            return Err(format!(
                "index format version {version}, this build reads {INDEX_VERSION}"
            ));
        }
        let crc = u32::from_le_bytes(head[HEADER_LEN - 4..].try_into().expect("4"));
        if crc32c::crc32c(&head[..HEADER_LEN - 4]) != crc {
            return Err("header checksum mismatch".into());
        }
        let found = u16::from_le_bytes([head[10], head[11]]);
        if found != kind {
            return Err(format!("file kind {found}, expected {kind}"));
        }
        Ok(Header {
            kind,
            generation: u64::from_le_bytes(head[12..20].try_into().expect("8")),
            count: u64::from_le_bytes(head[20..28].try_into().expect("8")),
        })
    }
}

/// The bytes of a checkpoint of `generation` holding `map`.
pub fn encode_checkpoint(generation: u64, map: &HashMap<ShardKey, Location>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + map.len() * ENTRY_LEN);
    let header = Header {
        kind: KIND_CHECKPOINT,
        generation,
        count: map.len() as u64,
    };
    out.extend_from_slice(&header.encode());
    let mut keys: Vec<&ShardKey> = map.keys().collect();
    keys.sort_unstable();
    for key in keys {
        out.extend_from_slice(&Entry::Put(*key, map[key]).encode());
    }
    out
}

/// Reads a checkpoint: its generation and every shard in it. Any damage is an error
/// (a checkpoint is written whole with `write_atomic`, so it is never torn).
pub fn decode_checkpoint(bytes: &[u8]) -> Result<(u64, HashMap<ShardKey, Location>), String> {
    let header = Header::decode(bytes, KIND_CHECKPOINT)?;
    let body = &bytes[HEADER_LEN..];
    let expected = header
        .count
        .checked_mul(ENTRY_LEN as u64)
        .filter(|&n| n == body.len() as u64)
        .ok_or_else(|| {
            format!(
                "{} bytes of entries for a count of {}",
                body.len(),
                header.count
            )
        })?;
    let mut map = HashMap::with_capacity(expected as usize / ENTRY_LEN);
    for (n, chunk) in body.chunks_exact(ENTRY_LEN).enumerate() {
        let chunk: &[u8; ENTRY_LEN] = chunk.try_into().expect("exact chunk");
        match Entry::decode(chunk) {
            Some(Entry::Put(key, at)) => {
                map.insert(key, at);
            }
            _ => return Err(format!("entry {n} is damaged")),
        }
    }
    Ok((header.generation, map))
}

/// The header of a fresh log of `generation`.
pub fn log_header(generation: u64) -> [u8; HEADER_LEN] {
    Header {
        kind: KIND_LOG,
        generation,
        count: 0,
    }
    .encode()
}

/// A log as read back.
#[derive(Debug, Default)]
pub struct LogRead {
    /// Its generation.
    pub generation: u64,
    /// Its entries up to the first damaged or short one.
    pub entries: Vec<Entry>,
    /// Bytes of the file that hold those entries (header included): where appends go.
    pub valid_len: u64,
    /// Whether bytes after `valid_len` were cut off (a torn or damaged tail).
    pub has_torn_tail: bool,
}

/// Reads a log. A bad header is an error; a bad entry ends the log there.
pub fn decode_log(bytes: &[u8]) -> Result<LogRead, String> {
    let header = Header::decode(bytes, KIND_LOG)?;
    let mut read = LogRead {
        generation: header.generation,
        valid_len: HEADER_LEN as u64,
        ..LogRead::default()
    };
    for chunk in bytes[HEADER_LEN..].chunks(ENTRY_LEN) {
        let entry = chunk
            .try_into()
            .ok()
            .and_then(|c: &[u8; ENTRY_LEN]| Entry::decode(c));
        match entry {
            Some(entry) => {
                read.entries.push(entry);
                read.valid_len += ENTRY_LEN as u64;
            }
            None => {
                read.has_torn_tail = true;
                break;
            }
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::key;

    fn at(segment: u32, blocks: u64, len: u32) -> Location {
        Location {
            segment,
            offset: blocks * BLOCK,
            len,
            written: 1_767_225_600,
        }
    }

    #[test]
    fn entries_round_trip_and_any_flipped_bit_is_refused() {
        let entries = [
            Entry::Put(key(u64::MAX, 5), at(7, 123_456, 1_048_660)),
            Entry::Delete(key(42, 0)),
            Entry::Synced,
        ];
        for entry in entries {
            let bytes = entry.encode();
            assert_eq!(Entry::decode(&bytes), Some(entry));
            for bit in 0..ENTRY_LEN * 8 {
                let mut bad = bytes;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(Entry::decode(&bad), None, "bit {bit}");
            }
        }
        assert_eq!(Entry::decode(&[0u8; ENTRY_LEN]), None, "zeros are no entry");
    }

    #[test]
    fn checkpoint_round_trips_and_damage_is_an_error() {
        let mut map = HashMap::new();
        map.insert(key(1, 0), at(1, 0, 100));
        map.insert(key(1, 1), at(1, 1, 5000));
        map.insert(key(9, 3), at(2, 77, 4096));
        let bytes = encode_checkpoint(3, &map);
        assert_eq!(decode_checkpoint(&bytes).unwrap(), (3, map.clone()));
        for cut in [0, 10, HEADER_LEN, bytes.len() - 1] {
            assert!(decode_checkpoint(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 9, 20, HEADER_LEN + 3, bytes.len() - 2] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode_checkpoint(&bad).is_err(), "flip at {at}");
        }
        let mut log = log_header(3).to_vec();
        log.extend_from_slice(&bytes[HEADER_LEN..]);
        assert!(decode_checkpoint(&log).is_err(), "a log is no checkpoint");
    }

    #[test]
    fn a_log_is_read_up_to_its_first_torn_or_damaged_entry() {
        let entries = [
            Entry::Put(key(1, 0), at(1, 0, 10)),
            Entry::Synced,
            Entry::Delete(key(1, 0)),
        ];
        let mut bytes = log_header(8).to_vec();
        for entry in &entries {
            bytes.extend_from_slice(&entry.encode());
        }
        let whole = decode_log(&bytes).unwrap();
        assert_eq!(whole.generation, 8);
        assert_eq!(whole.entries, entries);
        assert_eq!(whole.valid_len, bytes.len() as u64);
        assert!(!whole.has_torn_tail);

        let torn = decode_log(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(torn.entries, entries[..2]);
        assert_eq!(torn.valid_len, (HEADER_LEN + 2 * ENTRY_LEN) as u64);
        assert!(torn.has_torn_tail);

        let mut damaged = bytes.clone();
        damaged[HEADER_LEN + ENTRY_LEN + 1] ^= 1;
        let read = decode_log(&damaged).unwrap();
        assert_eq!(read.entries, entries[..1]);
        assert!(read.has_torn_tail);

        assert!(decode_log(&bytes[..HEADER_LEN - 1]).is_err());
        let mut bad_header = bytes;
        bad_header[13] ^= 1;
        assert!(decode_log(&bad_header).is_err());
    }

    #[test]
    fn spans_round_up_to_whole_blocks() {
        assert_eq!(at(0, 0, 0).span(), SECTOR);
        assert_eq!(at(0, 0, 1).span(), SECTOR);
        assert_eq!(at(0, 0, 1100).span(), 3 * SECTOR);
        assert_eq!(at(0, 0, 4095).span(), BLOCK);
        assert_eq!(at(0, 0, 4096).span(), BLOCK);
        assert_eq!(at(0, 0, 4097).span(), 2 * BLOCK);
    }
}

//! The two alternating metadata snapshot slots, `ROOT/meta/snapshot.0` and `snapshot.1`.
//!
//! This module owns the bytes of one snapshot file: framing, verification, and the
//! atomic, durable write. What the payload means (the serialized inode table) belongs to
//! the caller, as does the choice of which slot to write next: always the one *not*
//! holding the newest valid snapshot, so a crash mid-write leaves the other intact.
//!
//! ```text
//! offset size field
//! 0      8    magic      b"ARGSNAP\x1a"
//! 8      2    version    1 (u16 LE)
//! 10     2    flags      u16 LE: bit 0 = the payload is sealed (encrypted metadata)
//! 12     4    body_len   u32 LE = 40 + payload length
//! 16     16   volume_id
//! 32     8    txid       u64 LE: the last transaction the payload includes
//! 40     32   blake3     BLAKE3 hash of the payload
//! 72     ..   payload    opaque bytes
//! end-4  4    crc32c     over every byte before it
//! ```
//!
//! The CRC catches torn and flipped bytes; the BLAKE3 hash is the design's "hash of the
//! body", a strong check that does not depend on the frame. Both cover the payload as
//! stored, sealed or not, so they verify without the key (`meta::codec` seals and opens).

use crate::format::{self, Expect, FormatError, FormatErrorKind, FrameHeader};
use crate::types::VolumeId;
use crate::{Error, Result};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// File names of the two slots, inside `ROOT/meta`.
pub const SLOTS: [&str; 2] = ["snapshot.0", "snapshot.1"];

const MAGIC: [u8; 8] = *b"ARGSNAP\x1a";
const VERSION: u16 = 1;
/// Flag: the payload is sealed by `meta::codec` (an encrypted volume).
pub const FLAG_SEALED: u16 = 1;
/// txid and payload hash, in front of the payload.
const BODY_PREFIX_LEN: usize = 8 + 32;

/// A verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last transaction the payload includes; the journal replays from `txid + 1`.
    pub txid: u64,
    /// The caller's serialized metadata.
    pub payload: Vec<u8>,
    /// The frame says the payload is sealed.
    pub is_sealed: bool,
}

/// What was found in one slot, for fsck and verify-journal reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotReport {
    /// Slot number (index into [`SLOTS`]).
    pub slot: usize,
    /// The slot's file.
    pub path: PathBuf,
    /// The snapshot's txid, when the slot is valid.
    pub txid: Option<u64>,
    /// Why the slot is not usable (missing, unreadable or corrupt), when it is not.
    pub error: Option<String>,
}

fn expect(volume: VolumeId) -> Expect {
    Expect {
        magic: MAGIC,
        newest_version: VERSION,
        known_flags: FLAG_SEALED,
        volume: Some(volume),
    }
}

/// The frame's body length for a payload of `payload_len` bytes, refused when the u32
/// length field cannot hold it.
fn body_len_for(payload_len: usize) -> Result<u32> {
    payload_len
        .checked_add(BODY_PREFIX_LEN)
        .and_then(|len| u32::try_from(len).ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "snapshot payload of {payload_len} bytes exceeds the {} byte limit",
                u32::MAX as usize - BODY_PREFIX_LEN
            ))
        })
}

/// Writes a snapshot to `path` atomically and durably: either the old file or the
/// complete new one survives a crash. `is_sealed` marks a payload sealed by the codec.
pub fn write_snapshot(
    path: &Path,
    volume: VolumeId,
    txid: u64,
    payload: &[u8],
    is_sealed: bool,
) -> Result<()> {
    let body_len = body_len_for(payload.len())?;
    let mut body = Vec::with_capacity(body_len as usize);
    body.extend_from_slice(&txid.to_le_bytes());
    body.extend_from_slice(blake3::hash(payload).as_bytes());
    body.extend_from_slice(payload);
    let header = FrameHeader {
        magic: MAGIC,
        version: VERSION,
        flags: if is_sealed { FLAG_SEALED } else { 0 },
        body_len,
        volume,
    };
    let bytes = format::encode(header, &body);
    crate::store::write_atomic(path, &bytes).map_err(|e| Error::io(path, e))
}

/// Reads and verifies the snapshot at `path`.
///
/// A missing file is `Error::Io` with kind `NotFound`; any verification failure is
/// `Error::Format` naming the path and the offset.
pub fn read_snapshot(path: &Path, volume: VolumeId) -> Result<Snapshot> {
    let object = path.display().to_string();
    let bytes = read_bounded(path, &object)?;
    let (header, body) = format::decode(&object, &bytes, &expect(volume))?;
    let body_at = format::HEADER_LEN as u64;
    if body.len() < BODY_PREFIX_LEN {
        return Err(FormatError::new(
            object,
            body_at,
            FormatErrorKind::Truncated {
                need: BODY_PREFIX_LEN as u64,
                have: body.len() as u64,
            },
        )
        .into());
    }
    let (txid_bytes, rest) = body.split_at(8);
    let (stored_hash, payload) = rest.split_at(32);
    let computed = blake3::hash(payload);
    if computed != *stored_hash {
        return Err(FormatError::new(
            object,
            body_at + 8,
            FormatErrorKind::Body(format!(
                "payload hash mismatch (stored {}, computed {})",
                to_hex(stored_hash),
                computed.to_hex()
            )),
        )
        .into());
    }
    let txid = u64::from_le_bytes(txid_bytes.try_into().expect("8 bytes"));
    Ok(Snapshot {
        txid,
        payload: payload.to_vec(),
        is_sealed: header.flags & FLAG_SEALED != 0,
    })
}

/// Reads both slots in `meta_dir` and returns the valid one with the highest txid (with
/// its slot number; the lower slot on a tie), plus a report on both slots.
///
/// A corrupt slot is logged; a missing one is not, since a young volume has only one.
pub fn newest_valid(
    meta_dir: &Path,
    volume: VolumeId,
) -> (Option<(usize, Snapshot)>, Vec<SlotReport>) {
    let mut best: Option<(usize, Snapshot)> = None;
    let mut reports = Vec::with_capacity(SLOTS.len());
    for (slot, name) in SLOTS.iter().enumerate() {
        let path = meta_dir.join(name);
        match read_snapshot(&path, volume) {
            Ok(snapshot) => {
                reports.push(SlotReport {
                    slot,
                    path,
                    txid: Some(snapshot.txid),
                    error: None,
                });
                if best.as_ref().is_none_or(|(_, b)| snapshot.txid > b.txid) {
                    best = Some((slot, snapshot));
                }
            }
            Err(e) => {
                let missing = matches!(&e, Error::Io { source, .. }
                    if source.kind() == io::ErrorKind::NotFound);
                if !missing {
                    tracing::warn!(slot, error = %e, "metadata snapshot slot is unusable");
                }
                reports.push(SlotReport {
                    slot,
                    path,
                    txid: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    (best, reports)
}

/// Reads a whole snapshot file, refusing one longer than any frame can be before
/// allocating for it.
fn read_bounded(path: &Path, object: &str) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let max = (format::HEADER_LEN + format::TRAILER_LEN) as u64 + u64::from(u32::MAX);
    if len > max {
        return Err(FormatError::new(
            object,
            12,
            FormatErrorKind::LengthMismatch {
                declared: max,
                actual: len,
            },
        )
        .into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn meta_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn format_err(e: Error) -> FormatError {
        match e {
            Error::Format(f) => f,
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let path = dir.path().join(SLOTS[0]);
        write_snapshot(&path, vol, 42, b"inode table bytes", false).unwrap();
        let snap = read_snapshot(&path, vol).unwrap();
        assert_eq!(snap.txid, 42);
        assert_eq!(snap.payload, b"inode table bytes");
        // Byte map: 32 header + 8 txid + 32 hash + payload + 4 crc.
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(len, 32 + 8 + 32 + 17 + 4);
        // Empty payloads are valid too, and no temp files are left behind.
        write_snapshot(&path, vol, 43, b"", false).unwrap();
        assert_eq!(read_snapshot(&path, vol).unwrap().payload, b"");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn newest_valid_picks_the_higher_txid() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        write_snapshot(&dir.path().join(SLOTS[0]), vol, 5, b"five", false).unwrap();
        write_snapshot(&dir.path().join(SLOTS[1]), vol, 7, b"seven", false).unwrap();
        let (best, reports) = newest_valid(dir.path(), vol);
        let (slot, snap) = best.unwrap();
        assert_eq!(
            (slot, snap.txid, snap.payload.as_slice()),
            (1, 7, &b"seven"[..])
        );
        assert_eq!(reports[0].txid, Some(5));
        assert_eq!(reports[1].txid, Some(7));
        assert!(reports.iter().all(|r| r.error.is_none()));

        write_snapshot(&dir.path().join(SLOTS[0]), vol, 9, b"nine", false).unwrap();
        let (best, _) = newest_valid(dir.path(), vol);
        assert_eq!(best.unwrap().0, 0);
    }

    #[test]
    fn the_sealed_flag_round_trips_and_unknown_flags_are_refused() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let path = dir.path().join(SLOTS[0]);
        write_snapshot(&path, vol, 3, b"sealed bytes", true).unwrap();
        let snap = read_snapshot(&path, vol).unwrap();
        assert!(snap.is_sealed);
        write_snapshot(&path, vol, 3, b"plain bytes", false).unwrap();
        assert!(!read_snapshot(&path, vol).unwrap().is_sealed);
        let mut bytes = fs::read(&path).unwrap();
        bytes[10] |= 0x02;
        let crc_at = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..crc_at]);
        bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = format_err(read_snapshot(&path, vol).unwrap_err());
        assert!(matches!(err.kind, FormatErrorKind::UnknownFlags { .. }));
    }

    #[test]
    fn missing_slots_are_reported_not_fatal() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let err = read_snapshot(&dir.path().join(SLOTS[0]), vol).unwrap_err();
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        let (best, reports) = newest_valid(dir.path(), vol);
        assert!(best.is_none());
        assert_eq!(reports.len(), 2);
        assert!(
            reports
                .iter()
                .all(|r| r.txid.is_none() && r.error.is_some())
        );

        write_snapshot(&dir.path().join(SLOTS[1]), vol, 1, b"x", false).unwrap();
        let (best, reports) = newest_valid(dir.path(), vol);
        assert_eq!(best.unwrap().0, 1);
        assert!(reports[0].error.is_some());
        assert_eq!(reports[1].txid, Some(1));
    }

    #[test]
    fn every_flipped_byte_is_caught_and_the_other_slot_used() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let older = dir.path().join(SLOTS[0]);
        let newer = dir.path().join(SLOTS[1]);
        write_snapshot(&older, vol, 10, b"older state", false).unwrap();
        write_snapshot(&newer, vol, 11, b"newer state", false).unwrap();
        let good = fs::read(&newer).unwrap();
        for offset in 0..good.len() {
            let mut bad = good.clone();
            bad[offset] ^= 0x20;
            fs::write(&newer, &bad).unwrap();
            let err = format_err(read_snapshot(&newer, vol).unwrap_err());
            assert_eq!(err.object, newer.display().to_string(), "flip at {offset}");
            assert!(err.offset < good.len() as u64, "flip at {offset}");
            let (best, reports) = newest_valid(dir.path(), vol);
            let (slot, snap) = best.unwrap();
            assert_eq!((slot, snap.txid), (0, 10), "flip at {offset}");
            assert!(reports[1].error.is_some(), "flip at {offset}");
        }
    }

    #[test]
    fn every_truncation_is_caught() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let path = dir.path().join(SLOTS[0]);
        write_snapshot(&path, vol, 1, b"payload", false).unwrap();
        let good = fs::read(&path).unwrap();
        for len in 0..good.len() {
            fs::write(&path, &good[..len]).unwrap();
            assert!(
                matches!(read_snapshot(&path, vol), Err(Error::Format(_))),
                "cut at {len}"
            );
        }
    }

    #[test]
    fn another_volumes_snapshot_is_refused() {
        let dir = meta_dir();
        let path = dir.path().join(SLOTS[0]);
        write_snapshot(&path, VolumeId::random(), 1, b"theirs", false).unwrap();
        let err = format_err(read_snapshot(&path, VolumeId::random()).unwrap_err());
        assert!(matches!(err.kind, FormatErrorKind::WrongVolume { .. }));
        assert_eq!(err.offset, 16);
    }

    #[test]
    fn a_bad_payload_hash_under_a_good_crc_is_caught() {
        let dir = meta_dir();
        let vol = VolumeId::random();
        let path = dir.path().join(SLOTS[0]);
        write_snapshot(&path, vol, 1, b"payload", false).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 1;
        let crc_at = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..crc_at]);
        bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = format_err(read_snapshot(&path, vol).unwrap_err());
        assert_eq!(err.offset, 40);
        assert!(matches!(err.kind, FormatErrorKind::Body(_)));
    }

    #[test]
    fn payloads_beyond_the_length_field_are_refused() {
        assert_eq!(body_len_for(0).unwrap(), 40);
        assert_eq!(body_len_for(u32::MAX as usize - 40).unwrap(), u32::MAX);
        assert!(matches!(
            body_len_for(u32::MAX as usize - 39),
            Err(Error::Config(_))
        ));
        assert!(matches!(body_len_for(usize::MAX), Err(Error::Config(_))));
    }
}

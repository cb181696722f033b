//! Framing shared by every binary on-disk object: magic, version, flags, length,
//! volume id, body, CRC32C.
//!
//! ```text
//! offset size field
//! 0      8    magic      per kind, e.g. b"ARGSNAP\x1a", b"ARGSHRD\x1a"
//! 8      2    version    u16 LE; bumped on any layout change
//! 10     2    flags      u16 LE; an unknown bit refuses read-write use
//! 12     4    body_len   u32 LE
//! 16     16   volume_id
//! 32     ..   body
//! end-4  4    crc32c     over every byte before it
//! ```
//!
//! This module owns only the frame; what a body holds belongs to the format's own module.
//! Decoding checks magic, then version, then length, then CRC, and every failure is a
//! [`FormatError`] naming the object and the offset. It never panics on bad bytes.

pub mod json;

use crate::types::VolumeId;
use std::fmt;

/// Bytes before the body.
pub const HEADER_LEN: usize = 32;
/// Bytes after the body (the CRC32C).
pub const TRAILER_LEN: usize = 4;

/// Why bytes could not be decoded, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {kind} at offset {offset}")]
pub struct FormatError {
    /// The file or object that was being decoded.
    pub object: String,
    /// Byte offset within the object where decoding failed.
    pub offset: u64,
    /// What was wrong.
    pub kind: FormatErrorKind,
}

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatErrorKind {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// Bytes needed.
        need: u64,
        /// Bytes present.
        have: u64,
    },
    /// The magic does not name the expected kind of object.
    BadMagic {
        /// The magic wanted.
        expected: [u8; 8],
        /// The magic found.
        found: [u8; 8],
    },
    /// Written by a newer (or unknown) format version.
    UnknownVersion {
        /// The version found.
        found: u16,
        /// The newest version this build reads.
        newest_known: u16,
    },
    /// Flag bits this version does not understand.
    UnknownFlags {
        /// The unknown bits.
        flags: u16,
    },
    /// The declared length does not match the bytes present.
    LengthMismatch {
        /// Total length the header implies.
        declared: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The checksum does not match the bytes.
    Checksum {
        /// CRC stored in the object.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The object belongs to another volume.
    WrongVolume {
        /// The volume opened.
        expected: VolumeId,
        /// The volume the object names.
        found: VolumeId,
    },
    /// A sealed (encrypted) body failed authentication: altered, moved to another place
    /// or transaction, replayed, sealed under another key, or a plaintext object where
    /// the volume keeps its metadata sealed.
    Unauthenticated(String),
    /// The body could not be decoded.
    Body(String),
}

impl fmt::Display for FormatErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Self::BadMagic { expected, found } => write!(
                f,
                "bad magic {:?} (expected {:?})",
                String::from_utf8_lossy(found),
                String::from_utf8_lossy(expected)
            ),
            Self::UnknownVersion {
                found,
                newest_known,
            } => write!(
                f,
                "format version {found} is not known (this build reads up to {newest_known})"
            ),
            Self::UnknownFlags { flags } => write!(f, "unknown flag bits {flags:#06x}"),
            Self::LengthMismatch { declared, actual } => {
                write!(f, "length {declared} declared but {actual} present")
            }
            Self::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ),
            Self::WrongVolume { expected, found } => {
                write!(f, "belongs to volume {found}, not {expected}")
            }
            Self::Unauthenticated(what) => write!(
                f,
                "{what} fails authentication (altered, moved, replayed or sealed under another key)"
            ),
            Self::Body(why) => write!(f, "malformed body: {why}"),
        }
    }
}

impl FormatError {
    /// Builds an error for `object` at `offset`.
    pub fn new(object: impl Into<String>, offset: u64, kind: FormatErrorKind) -> FormatError {
        FormatError {
            object: object.into(),
            offset,
            kind,
        }
    }
}

/// The fixed part in front of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Kind of object.
    pub magic: [u8; 8],
    /// Layout version of the body.
    pub version: u16,
    /// Feature flags.
    pub flags: u16,
    /// Length of the body in bytes.
    pub body_len: u32,
    /// Volume the object belongs to.
    pub volume: VolumeId,
}

impl FrameHeader {
    /// The 32 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&self.magic);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        out[10..12].copy_from_slice(&self.flags.to_le_bytes());
        out[12..16].copy_from_slice(&self.body_len.to_le_bytes());
        out[16..32].copy_from_slice(&self.volume.0);
        out
    }
}

/// What a reader accepts.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Required magic.
    pub magic: [u8; 8],
    /// Newest version this build understands (all from 1 up are accepted).
    pub newest_version: u16,
    /// Flag bits this build understands.
    pub known_flags: u16,
    /// The volume the object must belong to, when known.
    pub volume: Option<VolumeId>,
}

/// Encodes a whole frame into one buffer.
pub fn encode(header: FrameHeader, body: &[u8]) -> Vec<u8> {
    let mut header = header;
    header.body_len = u32::try_from(body.len()).expect("frame bodies are below 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TRAILER_LEN);
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// CRC32C of a frame assembled from pieces (header then body parts), for writers that
/// avoid copying a large body into one buffer.
pub fn crc_of(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .fold(0u32, |crc, part| crc32c::crc32c_append(crc, part))
}

/// Decodes and verifies a frame: magic, version, length, CRC, then volume.
/// Returns the header and the body slice.
pub fn decode<'a>(
    object: &str,
    bytes: &'a [u8],
    expect: &Expect,
) -> Result<(FrameHeader, &'a [u8]), FormatError> {
    let err = |offset: u64, kind| FormatError::new(object, offset, kind);
    let have = bytes.len() as u64;
    let too_short = || {
        err(
            if bytes.len() < 8 { 0 } else { have },
            FormatErrorKind::Truncated {
                need: (HEADER_LEN + TRAILER_LEN) as u64,
                have,
            },
        )
    };
    if bytes.len() < 8 {
        return Err(too_short());
    }
    // A short object with the wrong magic is someone else's file, not a torn one.
    check_magic(object, bytes, expect)?;
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(too_short());
    }
    let header = check_header_fields(object, bytes, expect)?;
    let total = HEADER_LEN as u64 + u64::from(header.body_len) + TRAILER_LEN as u64;
    if total != have {
        return Err(err(
            12,
            FormatErrorKind::LengthMismatch {
                declared: total,
                actual: have,
            },
        ));
    }
    let crc_at = bytes.len() - TRAILER_LEN;
    let stored = u32::from_le_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&bytes[..crc_at]);
    if stored != computed {
        return Err(err(
            crc_at as u64,
            FormatErrorKind::Checksum { stored, computed },
        ));
    }
    check_volume(object, &header, expect)?;
    Ok((header, &bytes[HEADER_LEN..crc_at]))
}

/// Checks the magic at the start of `bytes` (at least 8 of them).
fn check_magic(object: &str, bytes: &[u8], expect: &Expect) -> Result<(), FormatError> {
    let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
    if magic != expect.magic {
        return Err(FormatError::new(
            object,
            0,
            FormatErrorKind::BadMagic {
                expected: expect.magic,
                found: magic,
            },
        ));
    }
    Ok(())
}

/// Checks the fields of a frame header that can be checked before the whole object is
/// at hand (magic, version, flags) and returns the header; `bytes` starts with it. The
/// length, the CRC and then the volume ([`check_volume`]) are the caller's to check.
pub fn check_header_fields(
    object: &str,
    bytes: &[u8],
    expect: &Expect,
) -> Result<FrameHeader, FormatError> {
    let err = |offset: u64, kind| FormatError::new(object, offset, kind);
    if bytes.len() < HEADER_LEN {
        return Err(err(
            0,
            FormatErrorKind::Truncated {
                need: HEADER_LEN as u64,
                have: bytes.len() as u64,
            },
        ));
    }
    check_magic(object, bytes, expect)?;
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version == 0 || version > expect.newest_version {
        return Err(err(
            8,
            FormatErrorKind::UnknownVersion {
                found: version,
                newest_known: expect.newest_version,
            },
        ));
    }
    let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
    if flags & !expect.known_flags != 0 {
        return Err(err(
            10,
            FormatErrorKind::UnknownFlags {
                flags: flags & !expect.known_flags,
            },
        ));
    }
    Ok(FrameHeader {
        magic: expect.magic,
        version,
        flags,
        body_len: u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")),
        volume: VolumeId(bytes[16..32].try_into().expect("16 bytes")),
    })
}

/// Checks that a frame belongs to the expected volume, if one is expected. Called after
/// the CRC check, so a damaged volume field reads as damage, not as another volume's.
pub fn check_volume(
    object: &str,
    header: &FrameHeader,
    expect: &Expect,
) -> Result<(), FormatError> {
    if let Some(expected) = expect.volume
        && expected != header.volume
    {
        return Err(FormatError::new(
            object,
            16,
            FormatErrorKind::WrongVolume {
                expected,
                found: header.volume,
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 8] = *b"ARGTEST\x1a";

    fn expect(volume: VolumeId) -> Expect {
        Expect {
            magic: MAGIC,
            newest_version: 1,
            known_flags: 0,
            volume: Some(volume),
        }
    }

    fn frame(volume: VolumeId, body: &[u8]) -> Vec<u8> {
        encode(
            FrameHeader {
                magic: MAGIC,
                version: 1,
                flags: 0,
                body_len: 0,
                volume,
            },
            body,
        )
    }

    #[test]
    fn round_trip() {
        let vol = VolumeId::random();
        let bytes = frame(vol, b"hello");
        let (header, body) = decode("t", &bytes, &expect(vol)).unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(header.body_len, 5);
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let vol = VolumeId::random();
        let bytes = frame(vol, b"some body bytes");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode("t", &bad, &expect(vol)).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn every_truncation_is_caught() {
        let vol = VolumeId::random();
        let bytes = frame(vol, b"some body bytes");
        for len in 0..bytes.len() {
            assert!(decode("t", &bytes[..len], &expect(vol)).is_err());
        }
    }

    #[test]
    fn newer_version_and_other_volume_are_refused() {
        let vol = VolumeId::random();
        let mut bytes = frame(vol, b"x");
        let err = decode("t", &bytes, &expect(VolumeId::random())).unwrap_err();
        assert!(matches!(err.kind, FormatErrorKind::WrongVolume { .. }));
        bytes[8] = 2;
        let crc_at = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..crc_at]);
        bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
        let err = decode("t", &bytes, &expect(vol)).unwrap_err();
        assert!(matches!(
            err.kind,
            FormatErrorKind::UnknownVersion { found: 2, .. }
        ));
    }
}

//! The disk label: which volume a disk belongs to and which disk of it this is.
//!
//! A checksummed JSON document (see `crate::format::json`) in `argosfs-disk.json`:
//!
//! ```json
//! {
//!   "checksum": "…blake3 hex…",
//!   "created_unix": 1767225600,
//!   "disk": 3,
//!   "format_version": 1,
//!   "magic": "argosfs-disk-label",
//!   "volume": "6f1c…-…"
//! }
//! ```
//!
//! Labels let a disk be recognised wherever it is mounted; deciding whether a label fits
//! the superblock is the volume's job.

use crate::format::{FormatError, json};
use crate::types::{DiskId, VolumeId};
use serde::{Deserialize, Serialize};

/// Document kind of a disk label.
pub const LABEL_MAGIC: &str = "argosfs-disk-label";
/// Newest label format this build writes and reads.
pub const LABEL_VERSION: u32 = 1;

/// What a disk says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLabel {
    /// The volume the disk belongs to.
    pub volume: VolumeId,
    /// Its id in the volume's superblock.
    pub disk: DiskId,
    /// When the disk was added, in seconds since the Unix epoch.
    pub created_unix: u64,
}

impl DiskLabel {
    /// A label for `disk` of `volume`, created now.
    pub fn new(volume: VolumeId, disk: DiskId) -> DiskLabel {
        let created_unix = crate::types::unix_now();
        DiskLabel {
            volume,
            disk,
            created_unix,
        }
    }

    /// The label file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        json::seal(LABEL_MAGIC, LABEL_VERSION, self)
    }

    /// Parses and verifies label bytes; `object` names the file in errors.
    pub fn decode(object: &str, bytes: &[u8]) -> Result<DiskLabel, FormatError> {
        let (label, _version) = json::open(object, bytes, LABEL_MAGIC, LABEL_VERSION)?;
        Ok(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatErrorKind;

    #[test]
    fn round_trip() {
        let label = DiskLabel::new(VolumeId::random(), DiskId(3));
        assert!(label.created_unix > 1_600_000_000);
        let bytes = label.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"magic\": \"argosfs-disk-label\""));
        assert!(text.contains("\"disk\": 3"));
        assert_eq!(DiskLabel::decode("label", &bytes).unwrap(), label);
    }

    #[test]
    fn tampering_and_wrong_kind_are_refused() {
        let label = DiskLabel {
            volume: VolumeId::random(),
            disk: DiskId(3),
            created_unix: 42,
        };
        let bytes = label.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let tampered = text.replace("\"disk\": 3", "\"disk\": 4");
        assert_ne!(tampered, text);
        assert!(DiskLabel::decode("label", tampered.as_bytes()).is_err());
        assert!(DiskLabel::decode("label", &bytes[..bytes.len() / 2]).is_err());
        let other = json::seal("argosfs-superblock", 1, &label);
        assert!(DiskLabel::decode("label", &other).is_err());
        let newer = json::seal(LABEL_MAGIC, 2, &label);
        let err = DiskLabel::decode("label", &newer).unwrap_err();
        assert!(matches!(
            err.kind,
            FormatErrorKind::UnknownVersion { found: 2, .. }
        ));
        assert_eq!(err.object, "label");
    }
}

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

    /// Checks what was read as the label of the disk directory `path`: there, well
    /// formed, naming `volume` and `disk`. Why not, in the words volume open, fsck and
    /// health all report.
    pub fn verify(
        path: &std::path::Path,
        read: std::io::Result<Option<Vec<u8>>>,
        volume: VolumeId,
        disk: DiskId,
    ) -> Result<DiskLabel, String> {
        let bytes = read
            .map_err(|e| format!("cannot read label: {e}"))?
            .ok_or_else(|| "no ArgosFS label (not a disk of this volume?)".to_string())?;
        let label = DiskLabel::decode(&path.display().to_string(), &bytes)
            .map_err(|e| format!("bad label: {e}"))?;
        if label.volume != volume {
            return Err(format!("label names volume {}, not {volume}", label.volume));
        }
        if label.disk != disk {
            return Err(format!(
                "label names disk {}, the superblock expects {disk} here",
                label.disk
            ));
        }
        Ok(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatErrorKind;

    #[test]
    fn verify_names_what_does_not_fit() {
        let path = std::path::Path::new("/d");
        let (volume, other) = (VolumeId([1; 16]), VolumeId([2; 16]));
        let bytes = || Ok(Some(DiskLabel::new(volume, DiskId(3)).encode()));
        assert!(DiskLabel::verify(path, bytes(), volume, DiskId(3)).is_ok());
        let why = |read, volume, disk| DiskLabel::verify(path, read, volume, disk).unwrap_err();
        assert!(why(Ok(None), volume, DiskId(3)).starts_with("no ArgosFS label"));
        assert!(why(Err(std::io::Error::other("x")), volume, DiskId(3)).starts_with("cannot read"));
        assert!(why(Ok(Some(b"{}".to_vec())), volume, DiskId(3)).starts_with("bad label"));
        assert!(why(bytes(), other, DiskId(3)).starts_with("label names volume"));
        assert!(why(bytes(), volume, DiskId(4)).contains("the superblock expects d4 here"));
    }

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

//! Shard object format (framed by `crate::format`). Byte map: see below once written.

use crate::format::FormatError;
use crate::store::Disk;
use crate::types::{InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use std::io;
use std::ops::Range;

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
pub fn write_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    header: &ShardHeader,
    payload: &[u8],
) -> io::Result<()> {
    let _ = (disk, volume, header, payload);
    todo!("store helper")
}

/// Reads and verifies the shard `key` of `volume`.
pub fn read_shard(
    disk: &dyn Disk,
    volume: VolumeId,
    key: ShardKey,
) -> Result<ShardObject, ShardReadError> {
    let _ = (disk, volume, key);
    todo!("store helper")
}

/// Decodes shard bytes already read; `volume` None accepts any volume (fsck reports it).
pub fn decode_shard(
    object: &str,
    bytes: Vec<u8>,
    volume: Option<VolumeId>,
) -> Result<(ShardObject, VolumeId), FormatError> {
    let _ = (object, bytes, volume);
    todo!("store helper")
}

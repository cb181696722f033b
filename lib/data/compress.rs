//! Stripe compression (zstd), skipped where it does not shrink.

use serde::{Deserialize, Serialize};

/// The compression mode of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Compression {
    /// Store bytes as they are.
    None,
    /// zstd at the given level.
    Zstd {
        /// zstd level (1..=19).
        level: i32,
    },
}

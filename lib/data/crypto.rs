//! Keys and stripe encryption: Argon2id master key, per-purpose subkeys,
//! XChaCha20-Poly1305 sealing with associated data.

use serde::{Deserialize, Serialize};

/// Argon2id parameters stored in the superblock (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Random salt, hex.
    pub salt_hex: String,
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

/// The key derived from the passphrase. Zeroed on drop; never logged.
pub struct MasterKey([u8; 32]);

/// Seals and opens stripes with XChaCha20-Poly1305.
pub struct StripeCipher;

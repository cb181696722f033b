//! Deterministic, policy-aware, explainable shard placement (weighted rendezvous hashing).

use crate::types::{DiskId, StripeId};
use serde::Serialize;

/// What placement knows of one disk.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The disk.
    pub id: DiskId,
    /// Relative weight (default 1.0); larger takes proportionally more shards.
    pub weight: f64,
    /// Device class, e.g. "ssd" or "hdd".
    pub class: String,
    /// Failure domain (a shelf, a controller); disks sharing one can fail together.
    pub domain: String,
    /// False for draining, failed or removed disks: they receive no new shards.
    pub is_writable: bool,
    /// Bytes free.
    pub free_bytes: u64,
    /// Capacity in bytes.
    pub total_bytes: u64,
}

/// One placement question.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// The stripe whose shards are placed.
    pub stripe: StripeId,
    /// How many distinct disks are needed (k + m).
    pub count: usize,
    /// At most this many shards in one failure domain, where the disk set allows it (m, or 1 when m = 0).
    pub max_per_domain: usize,
    /// Size of each shard, for the headroom check.
    pub shard_bytes: u64,
}

/// Why a placement is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer usable disks than shards.
    #[error("need {need} disks with free space, only {have} usable")]
    NotEnoughDisks {
        /// Disks needed.
        need: usize,
        /// Disks usable.
        have: usize,
    },
}

/// Picks `request.count` distinct disks, in shard order.
pub fn place(request: &Request, candidates: &[Candidate]) -> Result<Vec<DiskId>, PlacementError> {
    let _ = (request, candidates);
    todo!("placement helper")
}

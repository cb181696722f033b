//! Copy-on-write metadata: inode table, transactions, journal, snapshots, replay.

pub mod journal;
pub mod snapshot;

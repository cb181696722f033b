//! ArgosFS: a filesystem that spreads each file over several disks as Reed-Solomon
//! shards, with optional compression and encryption, over a journaled copy-on-write
//! metadata plane.
//!
//! Layers (imports flow downward only):
//! `volume` → `meta`, `data` → `placement`, `store` → `format`.
#![warn(missing_docs)]

pub mod cache;
pub mod cli;
pub mod data;
pub mod error;
pub mod format;
pub mod fsck;
pub mod meta;
pub mod placement;
pub mod posix;
pub mod store;
pub mod transfer;
pub mod types;
pub mod volume;

pub use error::{Error, Result};

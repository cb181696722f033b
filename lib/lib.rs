//! ArgosFS: a filesystem that spreads each file over several disks as Reed-Solomon
//! shards, with optional compression and encryption, over a journaled copy-on-write
//! metadata plane.
//!
//! Layers (imports flow downward only):
//! `volume` → `meta`, `data` → `placement`, `store` → `format`.
//!
//! Every tool goes through [`volume::Volume`]; a volume can be made and used without a
//! mount:
//!
//! ```
//! use argosfs::types::{DiskId, InodeId};
//! use argosfs::volume::{format, Caller, DiskConfig, FormatOptions, OpenOptions, Volume};
//!
//! let dir = tempfile::tempdir()?;
//! let disks = (0..3)
//!     .map(|i| DiskConfig::parse(DiskId(i), dir.path().join(format!("d{i}")).to_str().unwrap()))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let root = dir.path().join("root");
//! format(&root, FormatOptions { disks, layout: Some((2, 1)), ..FormatOptions::default() })?;
//!
//! let vol = Volume::open(&root, OpenOptions::default())?;
//! let me = Caller::root();
//! let file = vol.create(&me, InodeId::ROOT, b"hello.txt", 0o644)?;
//! vol.write(&me, file.ino, 0, b"hello, shards")?;
//! vol.fsync(file.ino)?; // durable: shards synced, journal committed
//! assert_eq!(vol.read(file.ino, 0, 100)?, b"hello, shards");
//! vol.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod autopilot;
pub mod cache;
pub mod cli;
pub mod control;
pub mod data;
pub mod error;
pub mod format;
pub mod fsck;
pub mod health;
pub mod maint;
pub mod meta;
pub mod metrics;
pub mod placement;
pub mod posix;
pub mod store;
pub mod transfer;
pub mod types;
pub mod volume;

pub use error::{Error, Result};

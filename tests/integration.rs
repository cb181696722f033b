//! The integration test binary: library-level tests of the Volume (no mount) and
//! command-line tests of the programs. One binary, so it links once.

mod common;

mod cli_mkfs;
mod fsck;
mod volume_data;
mod volume_faults;
mod volume_posix;

//! The integration test binary: library-level tests of the Volume (no mount) and
//! command-line tests of the programs. One binary, so it links once.

mod common;

mod autopilot;
mod boot;
mod cli_disk;
mod cli_health;
mod cli_mkfs;
mod cli_packaging;
mod cli_scrub;
mod crash_maint;
mod fsck;
mod health;
mod maint;
mod meta_sealing;
mod mount;
mod mount_cache;
mod mount_maint;
mod mount_util;
mod scrub;
mod store_access;
mod store_io;
mod transfer;
mod volume_cache;
mod volume_crash;
mod volume_data;
mod volume_faults;
mod volume_frames;
mod volume_pack;
mod volume_posix;
mod volume_write_behind;

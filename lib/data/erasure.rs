//! Erasure codes behind a small trait; the codec id is recorded in the superblock.

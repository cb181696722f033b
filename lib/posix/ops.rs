//! Counts of the FUSE requests a mount served, by operation, and the bytes read and
//! written: what its `/metrics` reports (`argosfs_fuse_requests_total{op="read"}`).
//! One relaxed atomic addition per request.

use std::sync::atomic::{AtomicU64, Ordering};

/// A FUSE operation the mount counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `lookup` requests.
    Lookup,
    /// `getattr` requests.
    Getattr,
    /// `setattr` requests.
    Setattr,
    /// `readlink` requests.
    Readlink,
    /// `mknod` requests.
    Mknod,
    /// `mkdir` requests.
    Mkdir,
    /// `unlink` requests.
    Unlink,
    /// `rmdir` requests.
    Rmdir,
    /// `symlink` requests.
    Symlink,
    /// `rename` requests.
    Rename,
    /// `link` requests.
    Link,
    /// `open` requests.
    Open,
    /// `read` requests.
    Read,
    /// `write` requests.
    Write,
    /// `flush` requests.
    Flush,
    /// `release` requests.
    Release,
    /// `fsync` requests.
    Fsync,
    /// `opendir` requests.
    Opendir,
    /// `readdir` requests.
    Readdir,
    /// `readdirplus` requests.
    Readdirplus,
    /// `fsyncdir` requests.
    Fsyncdir,
    /// `statfs` requests.
    Statfs,
    /// `setxattr` requests.
    Setxattr,
    /// `getxattr` requests.
    Getxattr,
    /// `listxattr` requests.
    Listxattr,
    /// `removexattr` requests.
    Removexattr,
    /// `access` requests.
    Access,
    /// `create` requests.
    Create,
    /// `fallocate` requests.
    Fallocate,
    /// `lseek` requests.
    Lseek,
}

/// The operations' names, in the order of [`Op`].
pub const OP_NAMES: [&str; 30] = [
    "lookup",
    "getattr",
    "setattr",
    "readlink",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "symlink",
    "rename",
    "link",
    "open",
    "read",
    "write",
    "flush",
    "release",
    "fsync",
    "opendir",
    "readdir",
    "readdirplus",
    "fsyncdir",
    "statfs",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "access",
    "create",
    "fallocate",
    "lseek",
];

/// Requests per operation and bytes moved.
#[derive(Debug, Default)]
pub struct OpCounters {
    requests: [AtomicU64; 30],
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
}

impl OpCounters {
    /// Counts one request.
    pub fn count(&self, op: Op) {
        self.requests[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts bytes returned by reads.
    pub fn add_read_bytes(&self, bytes: u64) {
        self.read_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts bytes taken by writes.
    pub fn add_written_bytes(&self, bytes: u64) {
        self.written_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests so far, by operation name.
    pub fn requests(&self) -> Vec<(&'static str, u64)> {
        OP_NAMES
            .iter()
            .zip(&self.requests)
            .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Bytes read and written so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.read_bytes.load(Ordering::Relaxed),
            self.written_bytes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation() {
        let c = OpCounters::default();
        c.count(Op::Read);
        c.count(Op::Read);
        c.count(Op::Lseek);
        c.add_read_bytes(10);
        let r = c.requests();
        assert_eq!(r.len(), OP_NAMES.len());
        assert!(r.contains(&("read", 2)) && r.contains(&("lseek", 1)) && r.contains(&("write", 0)));
        assert_eq!(c.bytes(), (10, 0));
    }
}

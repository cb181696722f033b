//! The Volume: inodes, directories, permissions, xattrs, open files.

pub mod access;
pub mod acl;

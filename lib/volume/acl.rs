//! POSIX ACLs in their xattr form.

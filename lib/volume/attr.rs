//! Attributes: getattr, setattr (mode, owner, size, times), access, xattrs, statfs.

use super::access::{self, Caller, MAY_READ, MAY_WRITE};
use super::acl::{self, XATTR_ACCESS, XATTR_DEFAULT};
use super::namespace::subject;
use super::{Attr, StatFs, Volume};
use crate::error::{Error, Result};
use crate::meta::{FileKind, Timestamp};
use crate::types::InodeId;

/// A time to set: now, or a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// The current time (UTIME_NOW).
    Now,
    /// This time.
    At(Timestamp),
}

/// What setattr changes; `None` leaves a field alone (UTIME_OMIT for times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits.
    pub perm: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
    /// The change comes through an open writable handle (ftruncate): no permission check
    /// on the size change.
    pub via_handle: bool,
}

/// setxattr: fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// setxattr: fail if the attribute does not exist.
pub const XATTR_REPLACE: u32 = 2;
/// Largest xattr value.
pub const XATTR_SIZE_MAX: usize = 65536;
/// File capabilities: dropped by any write, truncate or chown of a non-directory.
pub(super) const XATTR_CAPABILITY: &[u8] = b"security.capability";

/// Which xattr namespace a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    User,
    Trusted,
    Security,
    Acl,
}

fn namespace(name: &[u8]) -> Result<Namespace> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::Range);
    }
    if name == XATTR_ACCESS || name == XATTR_DEFAULT {
        Ok(Namespace::Acl)
    } else if name.starts_with(b"user.") {
        Ok(Namespace::User)
    } else if name.starts_with(b"trusted.") {
        Ok(Namespace::Trusted)
    } else if name.starts_with(b"security.") {
        Ok(Namespace::Security)
    } else {
        Err(Error::NotSupported("xattr namespace"))
    }
}

impl Volume {
    /// Attributes of `ino`.
    pub fn getattr(&self, ino: InodeId) -> Result<Attr> {
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        Ok(self.attr_of(&state, ino, inode))
    }

    /// Checks `mask` (R=4, W=2, X=1; 0 = existence) for `caller` (access(2)).
    pub fn access(&self, caller: &Caller, ino: InodeId, mask: u32) -> Result<()> {
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        if mask == 0 {
            return Ok(());
        }
        if mask & MAY_WRITE != 0 {
            state.meta.check_writable()?;
        }
        access::check(caller, &subject(inode), mask & 7)
    }

    /// Changes attributes; returns the new ones. All checks run before anything changes.
    pub fn setattr(&self, caller: &Caller, ino: InodeId, change: &SetAttr) -> Result<Attr> {
        if let Some(size) = change.size {
            self.truncate(caller, ino, size, change.via_handle)?;
        }
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let old = state.inode(ino)?.clone();
        let mut new = old.clone();
        let is_dir = old.kind == FileKind::Directory;
        if change.uid.is_some() || change.gid.is_some() {
            new.perm = access::chown_checked(caller, &subject(&old), change.uid, change.gid)?;
            new.uid = change.uid.unwrap_or(old.uid);
            new.gid = change.gid.unwrap_or(old.gid);
            if !is_dir {
                new.xattrs.remove(XATTR_CAPABILITY);
            }
        }
        if let Some(perm) = change.perm {
            new.perm = access::chmod(caller, new.uid, new.gid, is_dir, perm & 0o7777)?;
            if let Some(bytes) = new.xattrs.get(XATTR_ACCESS)
                && let Ok(acl) = acl::Acl::parse(bytes)
            {
                let updated = acl.with_mode(new.perm);
                new.xattrs.insert(XATTR_ACCESS.to_vec(), updated.to_bytes());
            }
        }
        if change.atime.is_some() || change.mtime.is_some() {
            let explicit = matches!(change.atime, Some(SetTime::At(_)))
                || matches!(change.mtime, Some(SetTime::At(_)));
            access::check_utimes(caller, &subject(&old), explicit)?;
        }
        let now = Timestamp::now();
        let resolve = |t: SetTime| match t {
            SetTime::Now => now,
            SetTime::At(t) => t,
        };
        if let Some(t) = change.atime {
            new.atime = resolve(t);
        }
        if let Some(t) = change.mtime {
            new.mtime = resolve(t);
        }
        let changed_anything = change.perm.is_some()
            || change.uid.is_some()
            || change.gid.is_some()
            || change.atime.is_some()
            || change.mtime.is_some();
        if changed_anything {
            new.ctime = now;
            state.meta.record(crate::meta::Op::PutInode {
                ino,
                inode: new.clone(),
            })?;
        }
        Ok(self.attr_of(&state, ino, &new))
    }

    /// The value of xattr `name`.
    pub fn getxattr(&self, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<Vec<u8>> {
        let ns = namespace(name)?;
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        match ns {
            Namespace::User => {
                if !matches!(inode.kind, FileKind::Regular | FileKind::Directory) {
                    return Err(Error::NoXattr);
                }
                access::check(caller, &subject(inode), MAY_READ)?;
            }
            Namespace::Trusted if !caller.is_root() => return Err(Error::NoXattr),
            _ => {}
        }
        inode.xattrs.get(name).cloned().ok_or(Error::NoXattr)
    }

    /// Names of the xattrs `caller` may see.
    pub fn listxattr(&self, caller: &Caller, ino: InodeId) -> Result<Vec<Vec<u8>>> {
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        Ok(inode
            .xattrs
            .keys()
            .filter(|name| caller.is_root() || !name.starts_with(b"trusted."))
            .cloned()
            .collect())
    }

    /// Sets xattr `name` (flags: [`XATTR_CREATE`], [`XATTR_REPLACE`]). Setting
    /// `system.posix_acl_access` also updates the permission bits, as on any ACL filesystem.
    pub fn setxattr(
        &self,
        caller: &Caller,
        ino: InodeId,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        let ns = namespace(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Error::Range);
        }
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let mut inode = state.inode(ino)?.clone();
        self.check_xattr_write(caller, &inode, ns)?;
        let exists = inode.xattrs.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Error::Exists);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Error::NoXattr);
        }
        if ns == Namespace::Acl {
            let stored = if name == XATTR_DEFAULT {
                let is_dir = inode.kind == FileKind::Directory;
                acl::on_set_default_acl(caller, inode.uid, is_dir, value)?
            } else {
                let (perm, stored) =
                    acl::on_set_access_acl_by(caller, inode.uid, inode.gid, value, inode.perm)?;
                inode.perm = perm;
                stored
            };
            match stored {
                Some(bytes) => inode.xattrs.insert(name.to_vec(), bytes),
                None => inode.xattrs.remove(name),
            };
        } else {
            inode.xattrs.insert(name.to_vec(), value.to_vec());
        }
        inode.ctime = Timestamp::now();
        state
            .meta
            .record(crate::meta::Op::PutInode { ino, inode })?;
        drop(state);
        self.maybe_commit()
    }

    /// Removes xattr `name`.
    ///
    /// `security.capability` may also be removed by the owner or by anyone who may write
    /// the file. A write, truncate or chown drops it anyway, and through FUSE that is
    /// how Linux does it: `file_remove_privs` and `setattr_prepare` send a removexattr
    /// in the name of the writer or of the chown caller. A removexattr(2) call for it
    /// by an unprivileged user never gets here: the kernel asks for CAP_SETFCAP first.
    pub fn removexattr(&self, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<()> {
        let ns = namespace(name)?;
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let mut inode = state.inode(ino)?.clone();
        let dropping_capability = name == XATTR_CAPABILITY
            && (caller.uid == inode.uid
                || access::check(caller, &subject(&inode), MAY_WRITE).is_ok());
        if !dropping_capability {
            self.check_xattr_write(caller, &inode, ns)?;
        }
        if inode.xattrs.remove(name).is_none() {
            return Err(Error::NoXattr);
        }
        inode.ctime = Timestamp::now();
        state
            .meta
            .record(crate::meta::Op::PutInode { ino, inode })?;
        Ok(())
    }

    fn check_xattr_write(
        &self,
        caller: &Caller,
        inode: &crate::meta::Inode,
        ns: Namespace,
    ) -> Result<()> {
        match ns {
            Namespace::User => {
                if !matches!(inode.kind, FileKind::Regular | FileKind::Directory) {
                    return Err(Error::Perm);
                }
                if inode.perm & 0o1000 != 0
                    && inode.kind == FileKind::Directory
                    && caller.uid != inode.uid
                    && !caller.is_root()
                {
                    return Err(Error::Perm);
                }
                access::check(caller, &subject(inode), MAY_WRITE)
            }
            Namespace::Trusted | Namespace::Security => {
                if caller.is_root() {
                    Ok(())
                } else {
                    Err(Error::Perm)
                }
            }
            Namespace::Acl => {
                if caller.is_root() || caller.uid == inode.uid {
                    Ok(())
                } else {
                    Err(Error::Perm)
                }
            }
        }
    }

    /// Capacity and use, scaled by k/(k+m) so numbers mean user data.
    pub fn statfs(&self) -> StatFs {
        let block = 4096u64;
        let (mut total, mut free) = (0u64, 0u64);
        // Disk directories sharing one filesystem (tests, demos) share its space: count
        // each filesystem once.
        let mut counted = super::SeenDomains::default();
        for slot in self.disk_set().iter() {
            if let Some(disk) = &slot.disk
                && let Ok(space) = disk.space()
                && counted.first(disk.sync_domain())
            {
                total += space.total_bytes;
                free += space.free_bytes;
            }
        }
        let k = u64::from(self.sb.layout.k);
        let width = self.sb.layout.width() as u64;
        let state = self.lock_state();
        let files = state.meta.table().inodes.len() as u64;
        let files_free = u64::from(u32::MAX).saturating_sub(files);
        StatFs {
            block_bytes: block as u32,
            blocks: total / width * k / block,
            blocks_free: free / width * k / block,
            blocks_available: free / width * k / block,
            files: files + files_free,
            files_free,
            name_max: super::NAME_MAX as u32,
        }
    }
}

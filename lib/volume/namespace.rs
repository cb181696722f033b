//! Names: lookup, creating every inode kind, link, unlink, rmdir, rename, readdir,
//! readlink. Each operation checks first and records its ops only once it cannot fail,
//! so a failed call changes nothing.

use super::access::{self, Caller, MAY_EXEC, MAY_WRITE, Subject};
use super::acl::{self, XATTR_ACCESS, XATTR_DEFAULT};
use super::{Attr, State, Volume, check_name};
use crate::error::{Error, Result};
use crate::meta::{FileKind, Inode, Op, Timestamp};
use crate::types::InodeId;

/// How rename treats an existing target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenameFlags {
    /// Fail with EEXIST when the target exists (RENAME_NOREPLACE).
    pub noreplace: bool,
    /// Swap source and target atomically (RENAME_EXCHANGE).
    pub exchange: bool,
}

/// One directory entry as readdir returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryOut {
    /// The inode.
    pub ino: InodeId,
    /// The offset to pass to continue after this entry.
    pub next_offset: u64,
    /// Its kind.
    pub kind: FileKind,
    /// Its name (bytes).
    pub name: Vec<u8>,
}

/// What to create.
#[derive(Debug, Clone)]
pub(super) struct NewNode<'a> {
    pub kind: FileKind,
    pub perm: u32,
    pub rdev: u64,
    pub target: &'a [u8],
}

pub(super) fn subject(inode: &Inode) -> Subject<'_> {
    Subject {
        uid: inode.uid,
        gid: inode.gid,
        mode: inode.perm,
        is_dir: inode.kind == FileKind::Directory,
        acl: inode.xattrs.get(XATTR_ACCESS).map(Vec::as_slice),
    }
}

impl State {
    pub(super) fn inode(&self, ino: InodeId) -> Result<&Inode> {
        self.meta.table().inodes.get(&ino).ok_or(Error::NotFound)
    }

    /// The directory inode `ino`, checked for `want` access by `caller`.
    pub(super) fn dir_for(&self, caller: &Caller, ino: InodeId, want: u32) -> Result<&Inode> {
        let inode = self.inode(ino)?;
        if inode.kind != FileKind::Directory {
            return Err(Error::NotDir);
        }
        access::check(caller, &subject(inode), want)?;
        Ok(inode)
    }

    /// Copies of the stored chunks `first..=last` of file `ino`.
    pub(super) fn chunks_in(
        &self,
        ino: InodeId,
        first: u64,
        last: u64,
    ) -> std::collections::BTreeMap<u64, crate::meta::Chunk> {
        self.meta
            .table()
            .chunks
            .get(&ino)
            .map(|c| {
                c.range(first..=last)
                    .map(|(i, c)| (*i, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn entry(&self, dir: InodeId, name: &[u8]) -> Option<InodeId> {
        self.meta
            .table()
            .dirs
            .get(&dir)
            .and_then(|d| d.entries.get(name))
            .map(|e| e.ino)
    }

    fn next_cookie(&self, dir: InodeId) -> u64 {
        self.meta
            .table()
            .dirs
            .get(&dir)
            .map_or(crate::meta::table::FIRST_COOKIE, |d| d.next_cookie)
    }

    /// Records new attributes for `ino` via `change`.
    pub(super) fn update_inode(
        &mut self,
        ino: InodeId,
        change: impl FnOnce(&mut Inode),
    ) -> Result<Inode> {
        let mut inode = self.inode(ino)?.clone();
        change(&mut inode);
        self.meta.record(Op::PutInode {
            ino,
            inode: inode.clone(),
        })?;
        Ok(inode)
    }

    fn is_dir_empty(&self, dir: InodeId) -> bool {
        self.meta
            .table()
            .dirs
            .get(&dir)
            .is_none_or(|d| d.entries.is_empty())
    }

    /// True when `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: InodeId, ancestor: InodeId) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            if ino == InodeId::ROOT {
                return false;
            }
            match self.meta.table().dirs.get(&ino) {
                Some(d) => ino = d.parent,
                None => return false,
            }
        }
    }
}

fn touch_dir(inode: &mut Inode, now: Timestamp) {
    inode.mtime = now;
    inode.ctime = now;
}

impl Volume {
    /// Looks up `name` in directory `parent` (needs search permission on it).
    pub fn lookup(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        let state = self.lock_state();
        state.dir_for(caller, parent, MAY_EXEC)?;
        let ino = match name {
            b"." => parent,
            b".." => state
                .meta
                .table()
                .dirs
                .get(&parent)
                .map_or(InodeId::ROOT, |d| d.parent),
            _ => {
                if name.len() > super::NAME_MAX {
                    return Err(Error::NameTooLong);
                }
                state.entry(parent, name).ok_or(Error::NotFound)?
            }
        };
        let inode = state.inode(ino)?;
        Ok(self.attr_of(&state, ino, inode))
    }

    /// Creates a regular file (fails with EEXIST if the name exists).
    pub fn create(&self, caller: &Caller, parent: InodeId, name: &[u8], perm: u32) -> Result<Attr> {
        self.make_node(
            caller,
            parent,
            name,
            NewNode {
                kind: FileKind::Regular,
                perm,
                rdev: 0,
                target: b"",
            },
        )
    }

    /// Creates a directory.
    pub fn mkdir(&self, caller: &Caller, parent: InodeId, name: &[u8], perm: u32) -> Result<Attr> {
        self.make_node(
            caller,
            parent,
            name,
            NewNode {
                kind: FileKind::Directory,
                perm,
                rdev: 0,
                target: b"",
            },
        )
    }

    /// Creates any kind of inode from a full `st_mode` (type bits select the kind; no
    /// type bits means a regular file) and a device number.
    pub fn mknod(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        mode: u32,
        rdev: u64,
    ) -> Result<Attr> {
        let kind = FileKind::from_mode(mode).ok_or(Error::Invalid("unknown file type"))?;
        if kind == FileKind::Symlink {
            return Err(Error::Invalid("mknod cannot make a symlink"));
        }
        if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) && !caller.is_root() {
            return Err(Error::Perm);
        }
        self.make_node(
            caller,
            parent,
            name,
            NewNode {
                kind,
                perm: mode & 0o7777,
                rdev,
                target: b"",
            },
        )
    }

    /// Creates a symlink holding `target` (bytes, stored verbatim).
    pub fn symlink(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        target: &[u8],
    ) -> Result<Attr> {
        if target.is_empty() {
            return Err(Error::NotFound);
        }
        if target.len() > 4095 {
            return Err(Error::NameTooLong);
        }
        self.make_node(
            caller,
            parent,
            name,
            NewNode {
                kind: FileKind::Symlink,
                perm: 0o777,
                rdev: 0,
                target,
            },
        )
    }

    pub(super) fn make_node(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        node: NewNode<'_>,
    ) -> Result<Attr> {
        check_name(name)?;
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let parent_inode = state.dir_for(caller, parent, MAY_WRITE | MAY_EXEC)?.clone();
        if name == b"." || name == b".." || state.entry(parent, name).is_some() {
            return Err(Error::Exists);
        }
        let is_dir = node.kind == FileKind::Directory;
        let (gid, perm) = access::initial_gid_and_mode(
            caller,
            parent_inode.gid,
            parent_inode.perm,
            is_dir,
            node.perm & 0o7777,
        );
        let mut inode = Inode::new(node.kind, perm, caller.uid, gid);
        if node.kind == FileKind::Symlink {
            inode.perm = 0o777;
            inode.target = node.target.to_vec();
            inode.size = node.target.len() as u64;
        } else {
            let attrs = acl::on_create(
                parent_inode.xattrs.get(XATTR_DEFAULT).map(Vec::as_slice),
                perm,
                caller.umask,
                is_dir,
            );
            inode.perm = attrs.mode & 0o7777;
            if let Some(a) = attrs.access_acl {
                inode.xattrs.insert(XATTR_ACCESS.to_vec(), a);
            }
            if let Some(d) = attrs.default_acl {
                inode.xattrs.insert(XATTR_DEFAULT.to_vec(), d);
            }
        }
        inode.rdev = node.rdev;
        let now = inode.ctime;
        let ino = state.meta.allocate_inode()?;
        let cookie = state.next_cookie(parent);
        state.meta.record(Op::PutInode {
            ino,
            inode: inode.clone(),
        })?;
        if is_dir {
            state.meta.record(Op::MakeDir { ino, parent })?;
        }
        state.meta.record(Op::Link {
            dir: parent,
            name: name.to_vec(),
            ino,
            cookie,
        })?;
        state.update_inode(parent, |p| {
            touch_dir(p, now);
            if is_dir {
                p.nlink += 1;
            }
        })?;
        let attr = self.attr_of(&state, ino, &inode);
        drop(state);
        self.maybe_commit()?;
        Ok(attr)
    }

    /// Adds a hard link `newparent/newname` to `ino`.
    pub fn link(
        &self,
        caller: &Caller,
        ino: InodeId,
        newparent: InodeId,
        newname: &[u8],
    ) -> Result<Attr> {
        check_name(newname)?;
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let inode = state.inode(ino)?;
        if inode.kind == FileKind::Directory {
            return Err(Error::Perm);
        }
        if inode.nlink == 0 {
            return Err(Error::NotFound);
        }
        if inode.nlink >= u32::MAX - 1 {
            return Err(Error::TooManyLinks);
        }
        state.dir_for(caller, newparent, MAY_WRITE | MAY_EXEC)?;
        if newname == b"." || newname == b".." || state.entry(newparent, newname).is_some() {
            return Err(Error::Exists);
        }
        let now = Timestamp::now();
        let cookie = state.next_cookie(newparent);
        state.meta.record(Op::Link {
            dir: newparent,
            name: newname.to_vec(),
            ino,
            cookie,
        })?;
        state.update_inode(newparent, |p| touch_dir(p, now))?;
        let inode = state.update_inode(ino, |i| {
            i.nlink += 1;
            i.ctime = now;
        })?;
        Ok(self.attr_of(&state, ino, &inode))
    }

    /// Removes a non-directory entry. The inode goes when its last link and last open
    /// handle are gone.
    pub fn unlink(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<()> {
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let dir = state.dir_for(caller, parent, MAY_WRITE | MAY_EXEC)?.clone();
        let ino = state.entry(parent, name).ok_or(Error::NotFound)?;
        let inode = state.inode(ino)?;
        if inode.kind == FileKind::Directory {
            return Err(Error::IsDir);
        }
        access::check_sticky(caller, dir.uid, dir.perm, inode.uid)?;
        let now = Timestamp::now();
        state.meta.record(Op::Unlink {
            dir: parent,
            name: name.to_vec(),
        })?;
        state.update_inode(parent, |p| touch_dir(p, now))?;
        self.drop_link(&mut state, ino, now)
    }

    /// Takes one link away from `ino`; frees it or puts it on the orphan list at zero.
    fn drop_link(&self, state: &mut State, ino: InodeId, now: Timestamp) -> Result<()> {
        let inode = state.update_inode(ino, |i| {
            i.nlink = i.nlink.saturating_sub(1);
            i.ctime = now;
        })?;
        if inode.nlink == 0 {
            if state.opens.get(&ino).copied().unwrap_or(0) > 0 {
                state.meta.record(Op::SetOrphan { ino, orphan: true })?;
            } else {
                self.free_inode(state, ino)?;
            }
        }
        Ok(())
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<()> {
        if name == b"." {
            return Err(Error::Invalid("cannot remove '.'"));
        }
        if name == b".." {
            return Err(Error::NotEmpty);
        }
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let dir = state.dir_for(caller, parent, MAY_WRITE | MAY_EXEC)?.clone();
        let ino = state.entry(parent, name).ok_or(Error::NotFound)?;
        let inode = state.inode(ino)?;
        if inode.kind != FileKind::Directory {
            return Err(Error::NotDir);
        }
        access::check_sticky(caller, dir.uid, dir.perm, inode.uid)?;
        if !state.is_dir_empty(ino) {
            return Err(Error::NotEmpty);
        }
        let now = Timestamp::now();
        state.meta.record(Op::Unlink {
            dir: parent,
            name: name.to_vec(),
        })?;
        state.update_inode(parent, |p| {
            touch_dir(p, now);
            p.nlink = p.nlink.saturating_sub(1);
        })?;
        self.free_inode(&mut state, ino)
    }

    /// Renames `parent/name` to `newparent/newname` in one transaction.
    pub fn rename(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        newparent: InodeId,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        if flags.exchange && flags.noreplace {
            return Err(Error::Invalid("RENAME_EXCHANGE with RENAME_NOREPLACE"));
        }
        for n in [name, newname] {
            if n == b"." || n == b".." {
                return Err(Error::Invalid("cannot rename '.' or '..'"));
            }
        }
        check_name(newname)?;
        let mut state = self.lock_state();
        state.meta.check_writable()?;
        let src_dir = state.dir_for(caller, parent, MAY_WRITE | MAY_EXEC)?.clone();
        let dst_dir = state
            .dir_for(caller, newparent, MAY_WRITE | MAY_EXEC)?
            .clone();
        let src = state.entry(parent, name).ok_or(Error::NotFound)?;
        let src_inode = state.inode(src)?.clone();
        let dst = state.entry(newparent, newname);
        access::check_sticky(caller, src_dir.uid, src_dir.perm, src_inode.uid)?;
        if let Some(dst) = dst {
            let dst_inode = state.inode(dst)?;
            access::check_sticky(caller, dst_dir.uid, dst_dir.perm, dst_inode.uid)?;
        }
        let src_is_dir = src_inode.kind == FileKind::Directory;
        if flags.exchange {
            let dst = dst.ok_or(Error::NotFound)?;
            return self.exchange(
                &mut state,
                caller,
                (parent, name, src),
                (newparent, newname, dst),
            );
        }
        if flags.noreplace && dst.is_some() {
            return Err(Error::Exists);
        }
        if src_is_dir && parent != newparent {
            // Moving a directory rewrites its "..", which needs write access to it.
            access::check(caller, &subject(&src_inode), MAY_WRITE)?;
            if state.is_within(newparent, src) {
                return Err(Error::Invalid("cannot move a directory below itself"));
            }
        }
        if let Some(dst) = dst {
            if dst == src {
                return Ok(()); // two links of one inode: POSIX says do nothing
            }
            let dst_inode = state.inode(dst)?;
            match (src_is_dir, dst_inode.kind == FileKind::Directory) {
                (true, false) => return Err(Error::NotDir),
                (false, true) => return Err(Error::IsDir),
                (true, true) if !state.is_dir_empty(dst) => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        // Checks done: from here on only ops are recorded.
        let now = Timestamp::now();
        if let Some(dst) = dst {
            state.meta.record(Op::Unlink {
                dir: newparent,
                name: newname.to_vec(),
            })?;
            if src_is_dir {
                state.update_inode(newparent, |p| p.nlink = p.nlink.saturating_sub(1))?;
                self.free_inode(&mut state, dst)?;
            } else {
                self.drop_link(&mut state, dst, now)?;
            }
        }
        state.meta.record(Op::Unlink {
            dir: parent,
            name: name.to_vec(),
        })?;
        let cookie = state.next_cookie(newparent);
        state.meta.record(Op::Link {
            dir: newparent,
            name: newname.to_vec(),
            ino: src,
            cookie,
        })?;
        if src_is_dir && parent != newparent {
            state.meta.record(Op::SetParent {
                dir: src,
                parent: newparent,
            })?;
            state.update_inode(parent, |p| p.nlink = p.nlink.saturating_sub(1))?;
            state.update_inode(newparent, |p| p.nlink += 1)?;
        }
        state.update_inode(parent, |p| touch_dir(p, now))?;
        if newparent != parent {
            state.update_inode(newparent, |p| touch_dir(p, now))?;
        }
        state.update_inode(src, |i| i.ctime = now)?;
        Ok(())
    }

    /// RENAME_EXCHANGE: swaps two entries.
    fn exchange(
        &self,
        state: &mut State,
        caller: &Caller,
        (parent, name, src): (InodeId, &[u8], InodeId),
        (newparent, newname, dst): (InodeId, &[u8], InodeId),
    ) -> Result<()> {
        if src == dst {
            return Ok(());
        }
        let src_is_dir = state.inode(src)?.kind == FileKind::Directory;
        let dst_is_dir = state.inode(dst)?.kind == FileKind::Directory;
        if parent != newparent {
            for (ino, is_dir, target) in [(src, src_is_dir, newparent), (dst, dst_is_dir, parent)] {
                if is_dir {
                    access::check(caller, &subject(state.inode(ino)?), MAY_WRITE)?;
                    if state.is_within(target, ino) {
                        return Err(Error::Invalid("cannot move a directory below itself"));
                    }
                }
            }
        }
        let now = Timestamp::now();
        let src_cookie = state.meta.table().dirs[&parent].entries[name].cookie;
        let dst_cookie = state.meta.table().dirs[&newparent].entries[newname].cookie;
        state.meta.record(Op::Link {
            dir: parent,
            name: name.to_vec(),
            ino: dst,
            cookie: src_cookie,
        })?;
        state.meta.record(Op::Link {
            dir: newparent,
            name: newname.to_vec(),
            ino: src,
            cookie: dst_cookie,
        })?;
        if parent != newparent && src_is_dir != dst_is_dir {
            // One directory changes parent: link counts move with it.
            let (gains, loses) = if src_is_dir {
                (newparent, parent)
            } else {
                (parent, newparent)
            };
            state.update_inode(gains, |p| p.nlink += 1)?;
            state.update_inode(loses, |p| p.nlink = p.nlink.saturating_sub(1))?;
        }
        if parent != newparent {
            if src_is_dir {
                state.meta.record(Op::SetParent {
                    dir: src,
                    parent: newparent,
                })?;
            }
            if dst_is_dir {
                state.meta.record(Op::SetParent { dir: dst, parent })?;
            }
        }
        state.update_inode(parent, |p| touch_dir(p, now))?;
        if parent != newparent {
            state.update_inode(newparent, |p| touch_dir(p, now))?;
        }
        state.update_inode(src, |i| i.ctime = now)?;
        state.update_inode(dst, |i| i.ctime = now)?;
        Ok(())
    }

    /// Checks that `caller` may list directory `ino` (opendir).
    pub fn opendir(&self, caller: &Caller, ino: InodeId) -> Result<()> {
        let state = self.lock_state();
        state.dir_for(caller, ino, access::MAY_READ)?;
        Ok(())
    }

    /// Up to `limit` entries of directory `ino` after `offset` (0 starts at "."). Offsets
    /// stay valid while entries are added and removed.
    pub fn readdir(&self, ino: InodeId, offset: u64, limit: usize) -> Result<Vec<DirEntryOut>> {
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        if inode.kind != FileKind::Directory {
            return Err(Error::NotDir);
        }
        let dir = state.meta.table().dirs.get(&ino).ok_or(Error::NotFound)?;
        let mut out = Vec::new();
        if offset < 1 {
            out.push(DirEntryOut {
                ino,
                next_offset: 1,
                kind: FileKind::Directory,
                name: b".".to_vec(),
            });
        }
        if offset < 2 {
            out.push(DirEntryOut {
                ino: dir.parent,
                next_offset: 2,
                kind: FileKind::Directory,
                name: b"..".to_vec(),
            });
        }
        let start = offset.max(2) + 1;
        for (cookie, name) in dir.by_cookie.range(start..) {
            if out.len() >= limit {
                break;
            }
            let entry = dir.entries[name];
            let kind = state
                .meta
                .table()
                .inodes
                .get(&entry.ino)
                .map_or(FileKind::Regular, |i| i.kind);
            out.push(DirEntryOut {
                ino: entry.ino,
                next_offset: *cookie,
                kind,
                name: name.clone(),
            });
        }
        out.truncate(limit.max(1));
        Ok(out)
    }

    /// The target of symlink `ino`.
    pub fn readlink(&self, ino: InodeId) -> Result<Vec<u8>> {
        let state = self.lock_state();
        let inode = state.inode(ino)?;
        if inode.kind != FileKind::Symlink {
            return Err(Error::Invalid("not a symlink"));
        }
        Ok(inode.target.clone())
    }
}

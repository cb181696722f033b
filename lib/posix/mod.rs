//! The FUSE adapter (fuser): maps kernel requests to Volume calls and nothing else.
//! The only module that imports fuser. It holds no storage logic: every operation is a
//! Volume method, tested without a mount.
//!
//! Permissions: the mount runs with `default_permissions` and FUSE_POSIX_ACL, so the
//! kernel checks mode bits and ACLs with the caller's full credentials; the Volume checks
//! again with the same rules (supplementary groups are read from /proc, since FUSE
//! requests carry only uid and gid).

mod groups;
pub mod ops;

use crate::error::Error;
use crate::meta::{FileKind, Timestamp};
use crate::types::InodeId;
use crate::volume::{Attr, Caller, RenameFlags as VolRenameFlags, SetAttr, SetTime, Volume};
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes and entries. Every change goes through this
/// mount, and replies to changes carry fresh attributes, so a short TTL only bounds how
/// stale a value seen through another path can be.
const TTL: Duration = Duration::from_secs(1);
/// Largest write request asked of the kernel (it caps this at its own limit, 1 MiB here).
const MAX_WRITE_BYTES: u32 = 1 << 20;
/// Entries per readdir reply batch fetched from the Volume.
const READDIR_BATCH: usize = 256;

thread_local! {
    /// Each FUSE thread's buffer for read replies.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The filesystem the kernel talks to.
pub struct ArgosFs {
    vol: Arc<Volume>,
    groups: groups::GroupCache,
    ops: Arc<ops::OpCounters>,
}

impl ArgosFs {
    /// Serves `vol`, counting requests in `ops`.
    pub fn new(vol: Arc<Volume>, ops: Arc<ops::OpCounters>) -> ArgosFs {
        ArgosFs {
            vol,
            groups: groups::GroupCache::default(),
            ops,
        }
    }

    /// The volume served.
    pub fn volume(&self) -> &Arc<Volume> {
        &self.vol
    }

    /// Feeds the entries of directory `dir` after `offset` to `add` until it reports its
    /// reply buffer full (returns true) or the directory ends.
    fn each_entry(
        &self,
        dir: InodeId,
        mut offset: u64,
        mut add: impl FnMut(&crate::volume::DirEntryOut) -> bool,
    ) -> crate::Result<()> {
        loop {
            let batch = self.vol.readdir(dir, offset, READDIR_BATCH)?;
            if batch.is_empty() {
                return Ok(());
            }
            for entry in &batch {
                if add(entry) {
                    return Ok(());
                }
                offset = entry.next_offset;
            }
        }
    }

    fn caller(&self, req: &Request, umask: u32) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
            groups: self.groups.groups_of(req.pid(), req.uid()),
            umask,
        }
    }
}

fn errno(e: &Error) -> Errno {
    if matches!(e.errno(), libc::EIO) {
        tracing::warn!(error = %e, "I/O error returned to the kernel");
    }
    Errno::from_i32(e.errno())
}

fn ino(n: INodeNo) -> InodeId {
    InodeId(n.0)
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Regular | FileKind::Pack => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    SystemTime::from(t)
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: file_type(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: a.blksize,
        flags: 0,
    }
}

fn set_time(t: TimeOrNow) -> SetTime {
    match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => SetTime::At(Timestamp::from(t)),
    }
}

fn reply_entry(reply: ReplyEntry, result: crate::Result<Attr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
        Err(e) => reply.error(errno(&e)),
    }
}

fn reply_empty(reply: ReplyEmpty, result: crate::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

/// Answers an xattr request: the size when the caller asks for 0 bytes, ERANGE when its
/// buffer is too small, else the bytes.
fn reply_xattr(reply: ReplyXattr, size: u32, bytes: &[u8]) {
    if size == 0 {
        reply.size(bytes.len() as u32);
    } else if bytes.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(bytes);
    }
}

impl Filesystem for ArgosFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_WRITE_BYTES);
        let wanted = InitFlags::FUSE_DONT_MASK
            | InitFlags::FUSE_POSIX_ACL
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_MAX_PAGES
            | InitFlags::FUSE_CACHE_SYMLINKS
            // The Volume clears setuid/setgid and drops security.capability itself on
            // write, truncate and chown. V2 also lets the kernel mark the superblock
            // SB_NOSEC, so a write stops costing a getxattr(security.capability) round
            // trip once the file is known to carry no privileges.
            | InitFlags::FUSE_HANDLE_KILLPRIV
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2;
        for flag in wanted.iter() {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!(?flag, "kernel does not offer this FUSE capability");
            }
        }
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.vol.commit() {
            tracing::error!(error = %e, "final commit at unmount failed");
        }
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.ops.count(ops::Op::Lookup);
        let caller = self.caller(req, 0);
        reply_entry(
            reply,
            self.vol.lookup(&caller, ino(parent), name.as_bytes()),
        );
    }

    fn getattr(&self, _req: &Request, n: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.ops.count(ops::Op::Getattr);
        match self.vol.getattr(ino(n)) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        n: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.ops.count(ops::Op::Setattr);
        let caller = self.caller(req, 0);
        let change = SetAttr {
            perm: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
            via_handle: fh.is_some(),
        };
        match self.vol.setattr(&caller, ino(n), &change) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, n: INodeNo, reply: ReplyData) {
        self.ops.count(ops::Op::Readlink);
        match self.vol.readlink(ino(n)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.ops.count(ops::Op::Mknod);
        let caller = self.caller(req, umask);
        let result = self
            .vol
            .mknod(&caller, ino(parent), name.as_bytes(), mode, u64::from(rdev));
        reply_entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.ops.count(ops::Op::Mkdir);
        let caller = self.caller(req, umask);
        reply_entry(
            reply,
            self.vol
                .mkdir(&caller, ino(parent), name.as_bytes(), mode & 0o7777),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.ops.count(ops::Op::Unlink);
        let caller = self.caller(req, 0);
        reply_empty(
            reply,
            self.vol.unlink(&caller, ino(parent), name.as_bytes()),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.ops.count(ops::Op::Rmdir);
        let caller = self.caller(req, 0);
        reply_empty(reply, self.vol.rmdir(&caller, ino(parent), name.as_bytes()));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.ops.count(ops::Op::Symlink);
        let caller = self.caller(req, 0);
        let result = self.vol.symlink(
            &caller,
            ino(parent),
            link_name.as_bytes(),
            target.as_os_str().as_bytes(),
        );
        reply_entry(reply, result);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Rename);
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let caller = self.caller(req, 0);
        let flags = VolRenameFlags {
            noreplace: flags.contains(RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(RenameFlags::RENAME_EXCHANGE),
        };
        let result = self.vol.rename(
            &caller,
            ino(parent),
            name.as_bytes(),
            ino(newparent),
            newname.as_bytes(),
            flags,
        );
        reply_empty(reply, result);
    }

    fn link(
        &self,
        req: &Request,
        n: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.ops.count(ops::Op::Link);
        let caller = self.caller(req, 0);
        reply_entry(
            reply,
            self.vol
                .link(&caller, ino(n), ino(newparent), newname.as_bytes()),
        );
    }

    fn open(&self, req: &Request, n: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.ops.count(ops::Op::Open);
        let caller = self.caller(req, 0);
        match self.vol.open_file(&caller, ino(n), flags.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.ops.count(ops::Op::Read);
        READ_BUFFER.with_borrow_mut(|buf| {
            // Grown once per thread to the largest request, never cleared: `read_into`
            // writes every byte it returns, so no request pays for zeroing a buffer.
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            match self
                .vol
                .read_into(ino(n), offset, &mut buf[..size as usize])
            {
                Ok(len) => {
                    self.ops.add_read_bytes(len as u64);
                    reply.data(&buf[..len])
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.ops.count(ops::Op::Write);
        let caller = self.caller(req, 0);
        match self.vol.write(&caller, ino(n), offset, data) {
            Ok(written) => {
                self.ops.add_written_bytes(written as u64);
                reply.written(written as u32)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Flush);
        reply_empty(reply, self.vol.flush(ino(n)));
    }

    fn release(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Release);
        reply_empty(reply, self.vol.release_file(ino(n)));
    }

    fn fsync(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Fsync);
        reply_empty(reply, self.vol.fsync(ino(n)));
    }

    fn opendir(&self, req: &Request, n: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.ops.count(ops::Op::Opendir);
        let caller = self.caller(req, 0);
        match self.vol.opendir(&caller, ino(n)) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.ops.count(ops::Op::Readdir);
        let listed = self.each_entry(ino(n), offset, |entry| {
            reply.add(
                INodeNo(entry.ino.0),
                entry.next_offset,
                file_type(entry.kind),
                OsStr::from_bytes(&entry.name),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.ops.count(ops::Op::Readdirplus);
        let listed = self.each_entry(ino(n), offset, |entry| {
            // An entry removed since the batch was read is skipped, not an error.
            let Ok(attr) = self.vol.getattr(entry.ino) else {
                return false;
            };
            reply.add(
                INodeNo(entry.ino.0),
                entry.next_offset,
                OsStr::from_bytes(&entry.name),
                &TTL,
                &file_attr(&attr),
                Generation(0),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Fsyncdir);
        reply_empty(reply, self.vol.fsync(ino(n)));
    }

    fn statfs(&self, _req: &Request, _n: INodeNo, reply: ReplyStatfs) {
        self.ops.count(ops::Op::Statfs);
        let s = self.vol.statfs();
        reply.statfs(
            s.blocks,
            s.blocks_free,
            s.blocks_available,
            s.files,
            s.files_free,
            s.block_bytes,
            s.name_max,
            s.block_bytes,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        n: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Setxattr);
        let caller = self.caller(req, 0);
        let result = self
            .vol
            .setxattr(&caller, ino(n), name.as_bytes(), value, flags as u32);
        reply_empty(reply, result);
    }

    fn getxattr(&self, req: &Request, n: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.ops.count(ops::Op::Getxattr);
        let caller = self.caller(req, 0);
        match self.vol.getxattr(&caller, ino(n), name.as_bytes()) {
            Ok(value) => reply_xattr(reply, size, &value),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, req: &Request, n: INodeNo, size: u32, reply: ReplyXattr) {
        self.ops.count(ops::Op::Listxattr);
        let caller = self.caller(req, 0);
        match self.vol.listxattr(&caller, ino(n)) {
            Ok(names) => {
                let mut bytes = Vec::new();
                for name in names {
                    bytes.extend_from_slice(&name);
                    bytes.push(0);
                }
                reply_xattr(reply, size, &bytes);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn removexattr(&self, req: &Request, n: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.ops.count(ops::Op::Removexattr);
        let caller = self.caller(req, 0);
        reply_empty(
            reply,
            self.vol.removexattr(&caller, ino(n), name.as_bytes()),
        );
    }

    fn access(&self, req: &Request, n: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.ops.count(ops::Op::Access);
        let caller = self.caller(req, 0);
        reply_empty(reply, self.vol.access(&caller, ino(n), mask.bits() as u32));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        self.ops.count(ops::Op::Create);
        let caller = self.caller(req, umask);
        if FileKind::from_mode(mode) != Some(FileKind::Regular) {
            return reply.error(Errno::EINVAL);
        }
        match self
            .vol
            .create_open(&caller, ino(parent), name.as_bytes(), mode & 0o7777)
        {
            Ok(attr) => reply.created(
                &TTL,
                &file_attr(&attr),
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.ops.count(ops::Op::Fallocate);
        let caller = self.caller(req, 0);
        reply_empty(
            reply,
            self.vol.fallocate(&caller, ino(n), offset, length, mode),
        );
    }

    fn lseek(
        &self,
        _req: &Request,
        n: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.ops.count(ops::Op::Lseek);
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::ENXIO);
        };
        let result = match whence {
            libc::SEEK_DATA => self.vol.seek_data(ino(n), offset),
            libc::SEEK_HOLE => self.vol.seek_hole(ino(n), offset),
            _ => return reply.error(Errno::EINVAL),
        };
        match result {
            Ok(at) => reply.offset(at as i64),
            Err(e) => reply.error(errno(&e)),
        }
    }
}

//! Import: copies a host directory tree into a volume.
//!
//! The host tree is walked depth first with one open directory per level (`openat`,
//! `fstatat`, `O_NOFOLLOW`, `O_NOATIME`); names stay bytes and are sorted per directory
//! so runs are repeatable. The target is addressed by inode ids only. Memory holds the
//! names of the directories on the current path, one 1 MiB buffer, and the map of
//! multiply linked source inodes to the inodes they became.

use super::{
    ItemError, Observer, Outcome, PIECE_BYTES, Report, Tally, TransferError, XATTR_ACL_ACCESS,
    XATTR_ACL_DEFAULT, caller, resolve_dir, timestamp,
};
use crate::Error;
use crate::meta::FileKind;
use crate::types::InodeId;
use crate::volume::{Caller, SetAttr, SetTime, Volume};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::Whence;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Target directory inside the volume ('/'-separated bytes), made as needed. The
    /// metadata of the source directory itself goes onto it.
    pub into: Vec<u8>,
    /// Stop at the first error instead of reporting it and going on.
    pub is_strict: bool,
    /// Do not descend into directories on another filesystem than the source (they are
    /// created, empty, with their metadata).
    pub one_file_system: bool,
    /// Commit the volume after this many entries...
    pub commit_every_entries: u64,
    /// ...or this many bytes of contents, whichever comes first, so the open metadata
    /// batch and the journal stay bounded.
    pub commit_every_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            into: b"/".to_vec(),
            is_strict: false,
            one_file_system: false,
            commit_every_entries: 4096,
            commit_every_bytes: 256 << 20,
        }
    }
}

/// Copies the tree at `source` (a directory; followed if it is a symlink) into `vol`
/// below `options.into`. Entry errors go to `observer` and, unless strict, the run goes
/// on; the volume is committed at the end. The caller closes the volume.
pub fn import(
    vol: &Volume,
    source: &Path,
    options: &ImportOptions,
    observer: &mut dyn Observer,
) -> Result<Report, TransferError> {
    let started = Instant::now();
    let host = |e: io::Error| TransferError::Host {
        path: source.to_path_buf(),
        source: e,
    };
    let root = match open_noatime(nix::fcntl::AT_FDCWD, source, OFlag::O_DIRECTORY) {
        Ok(file) => file,
        Err(Errno::ENOTDIR) => {
            return Err(TransferError::NotADirectory {
                path: source.to_path_buf(),
            });
        }
        Err(e) => return Err(host(e.into())),
    };
    let stat = nix::sys::stat::fstat(&root).map_err(|e| host(e.into()))?;
    let target = resolve_dir(vol, &options.into, true)?;
    let mut run = Importer {
        vol,
        caller: caller(),
        options,
        tally: Tally::new(observer, options.is_strict),
        links: HashMap::new(),
        buf: vec![0; PIECE_BYTES],
        root_dev: stat.st_dev,
        uncommitted_entries: 0,
        uncommitted_bytes: 0,
    };
    run.walk(root, stat, source.to_path_buf(), target);
    let outcome = run.tally.outcome;
    let counts = run.tally.counts;
    if outcome != Outcome::Aborted {
        vol.commit().map_err(TransferError::Commit)?;
    }
    Ok(Report {
        counts,
        elapsed: started.elapsed(),
        outcome,
    })
}

/// Opens `name` in `dir` read-only without following a final symlink (except for the
/// top directory, which the user named) and, when allowed, without touching its atime.
fn open_noatime<Fd: AsFd + Copy>(dir: Fd, name: &Path, extra: OFlag) -> nix::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | extra;
    let fd = match nix::fcntl::openat(dir, name, flags | OFlag::O_NOATIME, Mode::empty()) {
        // O_NOATIME needs ownership or CAP_FOWNER; without it, read anyway.
        Err(Errno::EPERM) => nix::fcntl::openat(dir, name, flags, Mode::empty())?,
        other => other?,
    };
    Ok(File::from(fd))
}

/// Names in directory `dir`, sorted, without "." and "..".
fn list_names(dir: &File) -> io::Result<Vec<Vec<u8>>> {
    let mut listing = nix::dir::Dir::from_fd(dir.try_clone()?.into())?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// The xattrs of a host inode: through its open descriptor when there is one, else by
/// path without following a symlink (symlinks, devices, FIFOs and sockets are never
/// opened).
enum XattrSource<'a> {
    File(&'a File),
    Path(&'a Path),
}

impl XattrSource<'_> {
    fn read(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use xattr::FileExt as _;
        let names = match self {
            XattrSource::File(f) => f.list_xattr(),
            XattrSource::Path(p) => xattr::list(p),
        };
        let names = match names {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in names {
            let value = match self {
                XattrSource::File(f) => f.get_xattr(&name)?,
                XattrSource::Path(p) => xattr::get(p, &name)?,
            };
            // None: removed since the listing.
            if let Some(value) = value {
                out.push((name.into_vec(), value));
            }
        }
        Ok(out)
    }
}

/// One directory of the host tree being copied.
struct Frame {
    /// The open directory; None when it could not be opened (its error was reported).
    dir: Option<File>,
    /// Children not yet copied.
    names: std::vec::IntoIter<Vec<u8>>,
    /// The directory in the volume.
    target: InodeId,
    /// Its attributes, taken before it was listed.
    stat: FileStat,
    /// Its host path, for messages and path-based calls.
    path: PathBuf,
}

struct Importer<'a> {
    vol: &'a Volume,
    caller: Caller,
    options: &'a ImportOptions,
    tally: Tally<'a>,
    /// (st_dev, st_ino) of multiply linked source inodes → the inode made for them.
    links: HashMap<(u64, u64), InodeId>,
    buf: Vec<u8>,
    root_dev: u64,
    uncommitted_entries: u64,
    uncommitted_bytes: u64,
}

impl Importer<'_> {
    fn walk(&mut self, root: File, stat: FileStat, path: PathBuf, target: InodeId) {
        let mut stack = vec![self.frame(Some(root), stat, path, target)];
        while self.tally.is_going() {
            let Some(frame) = stack.last_mut() else {
                break;
            };
            let Some(name) = frame.names.next() else {
                let frame = stack.pop().expect("a frame was just seen");
                let source = match &frame.dir {
                    Some(dir) => XattrSource::File(dir),
                    None => XattrSource::Path(&frame.path),
                };
                let result = self.apply_metadata(
                    frame.target,
                    &frame.stat,
                    source,
                    &frame.path,
                    FileKind::Directory,
                );
                self.tally.settle(result);
                continue;
            };
            let path = frame.path.join(OsStr::from_bytes(&name));
            let parent = frame.target;
            let Some(dir) = &frame.dir else {
                continue;
            };
            match self.entry(dir, parent, &name, path) {
                Ok(Some(child)) => stack.push(child),
                Ok(None) => {}
                Err(e) => self.tally.fail(e),
            }
            self.after_entry();
        }
    }

    /// Lists an opened directory into a frame (a listing error is reported and leaves
    /// the frame empty).
    fn frame(
        &mut self,
        dir: Option<File>,
        stat: FileStat,
        path: PathBuf,
        target: InodeId,
    ) -> Frame {
        let crosses = self.options.one_file_system && stat.st_dev != self.root_dev;
        let names = match &dir {
            Some(dir) if !crosses => match list_names(dir) {
                Ok(names) => names,
                Err(e) => {
                    self.tally.fail(ItemError::host(&path, "list", e));
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        Frame {
            dir,
            names: names.into_iter(),
            target,
            stat,
            path,
        }
    }

    /// Copies one entry; a directory comes back as a frame to descend into.
    fn entry(
        &mut self,
        dir: &File,
        parent: InodeId,
        name: &[u8],
        path: PathBuf,
    ) -> Result<Option<Frame>, ItemError> {
        let name_os = Path::new(OsStr::from_bytes(name));
        let st = nix::sys::stat::fstatat(dir, name_os, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| ItemError::host(&path, "lstat", e))?;
        let kind = FileKind::from_mode(st.st_mode)
            .ok_or_else(|| ItemError::host(&path, "lstat", Errno::EINVAL))?;
        let key = (st.st_dev, st.st_ino);
        let is_linked = kind != FileKind::Directory && st.st_nlink > 1;
        if is_linked && let Some(&ino) = self.links.get(&key) {
            self.vol
                .link(&self.caller, ino, parent, name)
                .map_err(|e| ItemError::volume(&path, "link", e))?;
            self.tally.counts.hard_links += 1;
            return Ok(None);
        }
        let (vol, caller) = (self.vol, &self.caller);
        let (ino, file) = match kind {
            FileKind::Directory => return self.directory(dir, parent, name, path, st).map(Some),
            FileKind::Regular => {
                let file = open_noatime(dir, name_os, OFlag::O_NOFOLLOW)
                    .map_err(|e| ItemError::host(&path, "open", e))?;
                let now =
                    nix::sys::stat::fstat(&file).map_err(|e| ItemError::host(&path, "fstat", e))?;
                if (now.st_dev, now.st_ino) != key {
                    return Err(ItemError::new(
                        &path,
                        "open",
                        super::Cause::Changed("replaced while being copied"),
                    ));
                }
                let attr = vol
                    .create(caller, parent, name, 0o600)
                    .map_err(|e| ItemError::volume(&path, "create", e))?;
                if let Err(e) = self.contents(&file, attr.ino, st.st_size as u64, &path) {
                    // A partial copy must not pass for the file: take it away again.
                    let _ = self.vol.unlink(&self.caller, parent, name);
                    return Err(e);
                }
                self.tally.counts.files += 1;
                (attr.ino, Some(file))
            }
            FileKind::Symlink => {
                let target = nix::fcntl::readlinkat(dir, name_os)
                    .map_err(|e| ItemError::host(&path, "readlink", e))?;
                let attr = vol
                    .symlink(caller, parent, name, &target.into_vec())
                    .map_err(|e| ItemError::volume(&path, "symlink", e))?;
                self.tally.counts.symlinks += 1;
                (attr.ino, None)
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo | FileKind::Socket => {
                let attr = vol
                    .mknod(caller, parent, name, st.st_mode, st.st_rdev)
                    .map_err(|e| ItemError::volume(&path, "mknod", e))?;
                self.tally.counts.specials += 1;
                (attr.ino, None)
            }
            FileKind::Pack => {
                // No host file type maps to the volume's own pack file.
                let why = crate::Error::Invalid("not a file type the volume stores");
                return Err(ItemError::volume(&path, "import", why));
            }
        };
        if is_linked {
            self.links.insert(key, ino);
        }
        let source = match &file {
            Some(f) => XattrSource::File(f),
            None => XattrSource::Path(&path),
        };
        self.apply_metadata(ino, &st, source, &path, kind)?;
        Ok(None)
    }

    /// Makes (or, when it exists, merges into) a directory and opens its source.
    fn directory(
        &mut self,
        dir: &File,
        parent: InodeId,
        name: &[u8],
        path: PathBuf,
        st: FileStat,
    ) -> Result<Frame, ItemError> {
        let ino = match self.vol.mkdir(&self.caller, parent, name, 0o700) {
            Ok(attr) => attr.ino,
            Err(Error::Exists) => match self.vol.lookup(&self.caller, parent, name) {
                Ok(attr) if attr.kind == FileKind::Directory => attr.ino,
                _ => return Err(ItemError::volume(&path, "mkdir", Error::Exists)),
            },
            Err(e) => return Err(ItemError::volume(&path, "mkdir", e)),
        };
        self.tally.counts.directories += 1;
        let name_os = Path::new(OsStr::from_bytes(name));
        let opened = open_noatime(dir, name_os, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            .map_err(io::Error::from)
            .and_then(|file| {
                let now = nix::sys::stat::fstat(&file)?;
                if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) {
                    Ok(file)
                } else {
                    Err(io::Error::other("replaced while being copied"))
                }
            });
        let dir = match opened {
            Ok(file) => Some(file),
            Err(e) => {
                // Still made, with its metadata, so the tree keeps its shape.
                self.tally.fail(ItemError::host(&path, "open", e));
                None
            }
        };
        Ok(self.frame(dir, st, path, ino))
    }

    /// Copies the data regions of `file` into `ino` in pieces; holes are skipped and
    /// the size set at the end, so they stay holes.
    fn contents(
        &mut self,
        file: &File,
        ino: InodeId,
        size: u64,
        path: &Path,
    ) -> Result<(), ItemError> {
        self.vol
            .open_file(&self.caller, ino, libc::O_WRONLY)
            .map_err(|e| ItemError::volume(path, "open", e))?;
        let copied = self.copy_regions(file, ino, size, path);
        let released = self
            .vol
            .release_file(ino)
            .map_err(|e| ItemError::volume(path, "write", e));
        copied.and(released)
    }

    fn copy_regions(
        &mut self,
        file: &File,
        ino: InodeId,
        size: u64,
        path: &Path,
    ) -> Result<(), ItemError> {
        let mut offset = 0u64;
        let mut written_end = 0u64;
        while offset < size {
            let start = match nix::unistd::lseek(file, offset as i64, Whence::SeekData) {
                Ok(start) => start as u64,
                Err(Errno::ENXIO) => break,
                Err(e) => return Err(ItemError::host(path, "seek", e)),
            };
            if start >= size {
                break;
            }
            let end = match nix::unistd::lseek(file, start as i64, Whence::SeekHole) {
                Ok(hole) => (hole as u64).min(size),
                Err(_) => size,
            };
            let mut pos = start;
            while pos < end {
                let want = (end - pos).min(PIECE_BYTES as u64) as usize;
                let got = read_at_most(file, &mut self.buf[..want], pos)
                    .map_err(|e| ItemError::host(path, "read", e))?;
                if got == 0 {
                    return Err(ItemError::new(
                        path,
                        "read",
                        super::Cause::Changed("file shrank while being copied"),
                    ));
                }
                self.vol
                    .write(&self.caller, ino, pos, &self.buf[..got])
                    .map_err(|e| ItemError::volume(path, "write", e))?;
                pos += got as u64;
                written_end = pos;
                self.tally.counts.bytes += got as u64;
                self.uncommitted_bytes += got as u64;
                self.tally.progress();
            }
            offset = end;
        }
        if written_end < size {
            let grow = SetAttr {
                size: Some(size),
                via_handle: true,
                ..SetAttr::default()
            };
            self.vol
                .setattr(&self.caller, ino, &grow)
                .map_err(|e| ItemError::volume(path, "truncate", e))?;
        }
        Ok(())
    }

    /// Xattrs, then owner, mode and times in one change (which applies chown before
    /// chmod, so the set-id bits end up as in the source).
    fn apply_metadata(
        &mut self,
        ino: InodeId,
        st: &FileStat,
        source: XattrSource<'_>,
        path: &Path,
        kind: FileKind,
    ) -> Result<(), ItemError> {
        match source.read() {
            Ok(xattrs) => self.copy_xattrs(ino, &xattrs, path),
            Err(e) => self.tally.fail(ItemError::host(path, "listxattr", e)),
        }
        if !self.tally.is_going() {
            return Ok(());
        }
        let change = SetAttr {
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            perm: (kind != FileKind::Symlink).then_some(st.st_mode & 0o7777),
            atime: Some(SetTime::At(timestamp(st.st_atime, st.st_atime_nsec))),
            mtime: Some(SetTime::At(timestamp(st.st_mtime, st.st_mtime_nsec))),
            ..SetAttr::default()
        };
        self.vol
            .setattr(&self.caller, ino, &change)
            .map_err(|e| ItemError::volume(path, "setattr", e))?;
        Ok(())
    }

    /// Sets every source xattr (one error each, then on) and drops ACLs the target got
    /// by inheritance that the source does not have.
    fn copy_xattrs(&mut self, ino: InodeId, xattrs: &[(Vec<u8>, Vec<u8>)], path: &Path) {
        for (name, value) in xattrs {
            if let Err(e) = self.vol.setxattr(&self.caller, ino, name, value, 0) {
                self.tally
                    .fail(ItemError::volume(path, "setxattr", e).on_xattr(name));
                if !self.tally.is_going() {
                    return;
                }
            }
        }
        for acl in [XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT] {
            if xattrs.iter().any(|(name, _)| name == acl) {
                continue;
            }
            match self.vol.removexattr(&self.caller, ino, acl) {
                Ok(()) | Err(Error::NoXattr) => {}
                Err(e) => self
                    .tally
                    .fail(ItemError::volume(path, "removexattr", e).on_xattr(acl)),
            }
        }
    }

    fn after_entry(&mut self) {
        self.uncommitted_entries += 1;
        self.tally.progress();
        if self.tally.outcome != Outcome::Aborted
            && (self.uncommitted_entries >= self.options.commit_every_entries
                || self.uncommitted_bytes >= self.options.commit_every_bytes)
        {
            self.uncommitted_entries = 0;
            self.uncommitted_bytes = 0;
            if let Err(e) = self.vol.commit() {
                self.tally
                    .fail(ItemError::volume(self.vol.root_path(), "commit", e));
                self.tally.outcome = Outcome::Aborted;
            }
        }
    }
}

/// pread that retries on EINTR; returns 0 only at end of file.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

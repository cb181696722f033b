//! Export: copies a directory of a volume out to a host directory.
//!
//! The volume is walked depth first by inode id, a page of entries at a time; the host
//! side is written by path below the destination (names stay bytes). Contents go out
//! in pieces and only where the volume holds data; inside a stored region, 4 KiB blocks
//! that are all zero are skipped too, because the volume keeps holes only at stripe
//! granularity and the source's smaller holes would otherwise fill in. Memory holds one
//! page of entries per directory level and the first host path of each multiply linked
//! inode.

use super::{
    ItemError, Observer, PIECE_BYTES, Report, Tally, TransferError, XATTR_ACL_ACCESS,
    XATTR_ACL_DEFAULT, caller, is_zero, resolve_dir,
};
use crate::meta::{FileKind, Timestamp};
use crate::types::InodeId;
use crate::volume::{Attr, Caller, DirEntryOut, Volume};
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Entries fetched per readdir call.
const PAGE_ENTRIES: usize = 1024;
/// Granularity of the holes made on the host side.
const HOLE_BLOCK_BYTES: u64 = 4096;

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The directory inside the volume to export ('/'-separated bytes).
    pub from: Vec<u8>,
    /// Keep owners, groups, set-id bits, times and xattrs (ACLs included). Without it,
    /// only contents, types, hard links and the rwx and sticky bits are kept, as a
    /// non-root user can make them.
    pub preserve_metadata: bool,
    /// Stop at the first error instead of reporting it and going on.
    pub is_strict: bool,
    /// Write into a destination that is not empty: directories are merged, other
    /// entries in the way are replaced.
    pub force: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            from: b"/".to_vec(),
            preserve_metadata: true,
            is_strict: false,
            force: false,
        }
    }
}

/// Copies the volume directory `options.from` to `dest` (made if missing; it must be
/// empty unless `options.force`). The directory's own metadata goes onto `dest`.
pub fn export(
    vol: &Volume,
    dest: &Path,
    options: &ExportOptions,
    observer: &mut dyn Observer,
) -> Result<Report, TransferError> {
    let started = Instant::now();
    let from = resolve_dir(vol, &options.from, false)?;
    let attr = vol.getattr(from).map_err(|source| TransferError::Volume {
        path: String::from_utf8_lossy(&options.from).into_owned(),
        source,
    })?;
    prepare_destination(dest, options.force)?;
    let mut run = Exporter {
        vol,
        caller: caller(),
        options,
        tally: Tally::new(observer, options.is_strict),
        links: HashMap::new(),
        dest_root: dest.to_path_buf(),
        buf: vec![0; PIECE_BYTES],
    };
    run.walk(attr, dest.to_path_buf());
    Ok(Report {
        counts: run.tally.counts,
        elapsed: started.elapsed(),
        outcome: run.tally.outcome,
    })
}

fn prepare_destination(dest: &Path, force: bool) -> Result<(), TransferError> {
    let host = |source| TransferError::Host {
        path: dest.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => {
            let is_empty = std::fs::read_dir(dest).map_err(host)?.next().is_none();
            if !is_empty && !force {
                return Err(TransferError::DestinationNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
            Ok(())
        }
        Ok(_) => Err(TransferError::NotADirectory {
            path: dest.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dest)
            .map_err(host),
        Err(e) => Err(host(e)),
    }
}

/// One volume directory being copied.
struct Frame {
    attr: Attr,
    /// Where it goes on the host.
    path: PathBuf,
    /// Entries fetched and not yet copied.
    pending: VecDeque<DirEntryOut>,
    /// readdir offset after the last fetched entry.
    next_offset: u64,
    is_listed: bool,
}

impl Frame {
    fn new(attr: Attr, path: PathBuf) -> Frame {
        Frame {
            attr,
            path,
            pending: VecDeque::new(),
            next_offset: 0,
            is_listed: false,
        }
    }
}

struct Exporter<'a> {
    vol: &'a Volume,
    caller: Caller,
    options: &'a ExportOptions,
    tally: Tally<'a>,
    /// Multiply linked inodes already exported → their first host path.
    links: HashMap<InodeId, PathBuf>,
    dest_root: PathBuf,
    /// One piece of file data; `read_into` replaces what it returns, so it is reused.
    buf: Vec<u8>,
}

impl Exporter<'_> {
    fn walk(&mut self, root: Attr, dest: PathBuf) {
        let mut stack = vec![Frame::new(root, dest)];
        while self.tally.is_going() {
            let Some(frame) = stack.last_mut() else {
                break;
            };
            if frame.pending.is_empty() && !frame.is_listed {
                match self
                    .vol
                    .readdir(frame.attr.ino, frame.next_offset, PAGE_ENTRIES)
                {
                    Ok(page) => {
                        frame.is_listed = page.len() < PAGE_ENTRIES;
                        if let Some(last) = page.last() {
                            frame.next_offset = last.next_offset;
                        }
                        frame.pending.extend(
                            page.into_iter()
                                .filter(|e| e.name != b"." && e.name != b".."),
                        );
                    }
                    Err(e) => {
                        frame.is_listed = true;
                        let path = self.volume_path(&frame.path);
                        self.tally.fail(ItemError::volume(path, "readdir", e));
                    }
                }
                continue;
            }
            let Some(entry) = frame.pending.pop_front() else {
                let frame = stack.pop().expect("a frame was just seen");
                let result = self.apply_metadata(&frame.attr, &frame.path);
                self.tally.settle(result);
                continue;
            };
            let path = frame.path.join(OsStr::from_bytes(&entry.name));
            match self.entry(entry.ino, path) {
                Ok(Some(child)) => stack.push(child),
                Ok(None) => {}
                Err(e) => self.tally.fail(e),
            }
            self.tally.progress();
        }
    }

    /// The path inside the volume of a host path below the destination (for messages).
    fn volume_path(&self, path: &Path) -> PathBuf {
        let from = Path::new("/").join(OsStr::from_bytes(&self.options.from));
        match path.strip_prefix(&self.dest_root) {
            Ok(rel) if rel.as_os_str().is_empty() => from,
            Ok(rel) => from.join(rel),
            Err(_) => path.to_path_buf(),
        }
    }

    /// Copies one entry; a directory comes back as a frame to descend into.
    fn entry(&mut self, ino: InodeId, path: PathBuf) -> Result<Option<Frame>, ItemError> {
        let attr = self
            .vol
            .getattr(ino)
            .map_err(|e| ItemError::volume(self.volume_path(&path), "stat", e))?;
        let is_dir = attr.kind == FileKind::Directory;
        let is_linked = !is_dir && attr.nlink > 1;
        let reuse_dir = if self.options.force {
            self.clear_way(&path, is_dir)?
        } else {
            false
        };
        if is_linked && let Some(first) = self.links.get(&attr.ino) {
            std::fs::hard_link(first, &path).map_err(|e| ItemError::host(&path, "link", e))?;
            self.tally.counts.hard_links += 1;
            return Ok(None);
        }
        let host = |op| {
            let path = &path;
            move |e| ItemError::host(path, op, e)
        };
        match attr.kind {
            FileKind::Directory => {
                if !reuse_dir {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&path)
                        .map_err(host("mkdir"))?;
                }
                self.tally.counts.directories += 1;
                return Ok(Some(Frame::new(attr, path)));
            }
            FileKind::Regular => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(host("create"))?;
                if let Err(e) = self.contents(&attr, &file, &path) {
                    // A partial copy must not pass for the file: take it away again.
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                self.tally.counts.files += 1;
            }
            FileKind::Symlink => {
                let target = self
                    .vol
                    .readlink(ino)
                    .map_err(|e| ItemError::volume(self.volume_path(&path), "readlink", e))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(host("symlink"))?;
                self.tally.counts.symlinks += 1;
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo | FileKind::Socket => {
                nix::sys::stat::mknod(
                    &path,
                    SFlag::from_bits_truncate(attr.kind.type_bits()),
                    Mode::from_bits_truncate(0o600),
                    attr.rdev,
                )
                .map_err(|e| ItemError::host(&path, "mknod", e))?;
                self.tally.counts.specials += 1;
            }
            FileKind::Pack => {
                // The volume's own pack file is in no directory, so no walk meets it.
                let why = crate::Error::Invalid("the volume's pack file is not exported");
                return Err(ItemError::volume(&path, "export", why));
            }
        }
        if is_linked {
            self.links.insert(attr.ino, path.clone());
        }
        self.apply_metadata(&attr, &path)?;
        Ok(None)
    }

    /// With --force: removes a non-directory in the way; says whether an existing
    /// directory can be merged into.
    fn clear_way(&self, path: &Path, is_dir: bool) -> Result<bool, ItemError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ItemError::host(path, "lstat", e)),
            Ok(meta) if meta.is_dir() && is_dir => Ok(true),
            Ok(meta) if meta.is_dir() => Err(ItemError::host(
                path,
                "create",
                io::Error::from_raw_os_error(libc::EISDIR),
            )),
            Ok(_) => std::fs::remove_file(path)
                .map(|()| false)
                .map_err(|e| ItemError::host(path, "unlink", e)),
        }
    }

    /// Copies the stored regions of a file in pieces, then sets the size.
    fn contents(&mut self, attr: &Attr, file: &File, path: &Path) -> Result<(), ItemError> {
        let ino = attr.ino;
        let vpath = || self.volume_path(path);
        self.vol
            .open_file(&self.caller, ino, libc::O_RDONLY)
            .map_err(|e| ItemError::volume(vpath(), "open", e))?;
        let copied = self.copy_regions(ino, file, path);
        let _ = self.vol.release_file(ino);
        copied?;
        file.set_len(attr.size)
            .map_err(|e| ItemError::host(path, "truncate", e))
    }

    fn copy_regions(&mut self, ino: InodeId, file: &File, path: &Path) -> Result<(), ItemError> {
        let regions = self
            .vol
            .data_regions(ino)
            .map_err(|e| ItemError::volume(self.volume_path(path), "read", e))?;
        for (start, end) in regions {
            let mut pos = start;
            while pos < end {
                let want = (end - pos).min(PIECE_BYTES as u64) as usize;
                let got = self
                    .vol
                    .read_into(ino, pos, &mut self.buf[..want])
                    .map_err(|e| ItemError::volume(self.volume_path(path), "read", e))?;
                if got == 0 {
                    break;
                }
                let written = write_sparse(file, pos, &self.buf[..got])
                    .map_err(|e| ItemError::host(path, "write", e))?;
                pos += got as u64;
                self.tally.counts.bytes += written;
                self.tally.progress();
            }
        }
        Ok(())
    }

    /// Owner, xattrs, mode and times with --preserve-metadata (in that order: chown
    /// clears set-id bits and security.capability); otherwise the rwx and sticky bits.
    fn apply_metadata(&mut self, attr: &Attr, path: &Path) -> Result<(), ItemError> {
        let is_symlink = attr.kind == FileKind::Symlink;
        if !self.options.preserve_metadata {
            if !is_symlink {
                chmod(path, attr.perm & 0o1777).map_err(|e| ItemError::host(path, "chmod", e))?;
            }
            return Ok(());
        }
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(nix::unistd::Uid::from_raw(attr.uid)),
            Some(nix::unistd::Gid::from_raw(attr.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ItemError::host(path, "chown", e))?;
        self.copy_xattrs(attr, path);
        if !self.tally.is_going() {
            return Ok(());
        }
        if !is_symlink {
            chmod(path, attr.perm).map_err(|e| ItemError::host(path, "chmod", e))?;
        }
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &timespec(attr.atime),
            &timespec(attr.mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| ItemError::host(path, "utimensat", e))
    }

    /// Sets every xattr of the inode on the host (one error each, then on) and removes
    /// ACLs the host entry inherited that the volume inode does not have.
    fn copy_xattrs(&mut self, attr: &Attr, path: &Path) {
        let names = match self.vol.listxattr(&self.caller, attr.ino) {
            Ok(names) => names,
            Err(e) => {
                self.tally
                    .fail(ItemError::volume(self.volume_path(path), "listxattr", e));
                return;
            }
        };
        for name in &names {
            let result = match self.vol.getxattr(&self.caller, attr.ino, name) {
                Ok(value) => xattr::set(path, OsStr::from_bytes(name), &value)
                    .map_err(|e| ItemError::host(path, "setxattr", e)),
                Err(e) => Err(ItemError::volume(self.volume_path(path), "getxattr", e)),
            };
            if let Err(e) = result {
                self.tally.fail(e.on_xattr(name));
                if !self.tally.is_going() {
                    return;
                }
            }
        }
        if attr.kind == FileKind::Symlink {
            return;
        }
        for acl in [XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT] {
            if names.iter().any(|n| n == acl) {
                continue;
            }
            match xattr::remove(path, OsStr::from_bytes(acl)) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)) => {}
                Err(e) => self
                    .tally
                    .fail(ItemError::host(path, "removexattr", e).on_xattr(acl)),
            }
        }
    }
}

fn chmod(path: &Path, perm: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
}

fn timespec(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.sec, i64::from(t.nsec))
}

/// Writes `data` at `offset`, leaving out aligned 4 KiB blocks that are all zero so
/// they stay (or become) holes; returns the bytes written.
fn write_sparse(file: &File, offset: u64, data: &[u8]) -> io::Result<u64> {
    let mut written = 0u64;
    let mut pos = 0usize;
    let mut run_start: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let block_end = ((abs / HOLE_BLOCK_BYTES + 1) * HOLE_BLOCK_BYTES - offset) as usize;
        let end = block_end.min(data.len());
        let is_hole = is_zero(&data[pos..end]);
        match (is_hole, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                file.write_all_at(&data[start..pos], offset + start as u64)?;
                written += (pos - start) as u64;
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        file.write_all_at(&data[start..], offset + start as u64)?;
        written += (data.len() - start) as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_regions(file: &File, size: u64) -> Vec<(u64, u64)> {
        use nix::unistd::{Whence, lseek};
        let mut out = Vec::new();
        let mut offset = 0i64;
        while (offset as u64) < size {
            let Ok(start) = lseek(file, offset, Whence::SeekData) else {
                break;
            };
            let end = lseek(file, start, Whence::SeekHole).unwrap();
            out.push((start as u64, end as u64));
            offset = end;
        }
        out
    }

    #[test]
    fn zero_blocks_become_holes() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        // Starts mid-block: the partial first block has data, then two zero blocks,
        // then data, then a zero tail.
        let mut data = vec![0u8; 5 * 4096];
        data[10] = 1;
        data[3 * 4096 - 100 + 5] = 2;
        let written = write_sparse(&file, 4096 + 100, &data).unwrap();
        assert_eq!(written, (4096 - 100) + 4096);
        file.set_len(8 * 4096).unwrap();
        let mut back = vec![0u8; data.len()];
        file.read_exact_at(&mut back, 4096 + 100).unwrap();
        assert_eq!(back, data);
        assert_eq!(
            data_regions(&file, 8 * 4096),
            vec![(4096, 2 * 4096), (4 * 4096, 5 * 4096)]
        );
    }
}

//! The backing store is private: directories 0700, files 0600, whatever the umask.
//!
//! The mount's permissions protect nothing if another local user can read the backing
//! files: the journal and snapshots hold names, owners and the contents of inline files,
//! and the shards of an unencrypted volume hold every other file's bytes. So every
//! writer creates its objects with these modes explicitly (the umask can only take bits
//! away, never add group or other ones back), and [`Audit`] finds objects that group or
//! other may reach, for the warning `Volume::open` logs and for fsck, which clears the
//! bits with [`tighten`].
//!
//! Owns the modes, the helpers that create private directories and the audit. Knows
//! nothing of which objects a volume has: `DirDisk::audit` lists a disk's, the volume
//! lists ROOT's, fsck adds its quarantine.

use crate::error::Error;
use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory of the store.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file of the store.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Permission bits that make an object loose: any group or other bit.
pub const LOOSE_BITS: u32 = 0o077;

/// Creates a directory with mode 0700. A directory already there is left as it is
/// (fsck's audit catches a loose one); anything else in the way is an error.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

/// Creates a directory and every missing directory along its path, each with mode
/// 0700. Directories already there are left as they are.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Opens a file for appending, created with mode 0600 when missing (a log).
pub fn open_private_append(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// Sets a directory that may already exist (ROOT, a drive's mount point given as a
/// disk, usually 0755) to mode 0700.
pub fn make_dir_private(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// An object of the store that group or other may access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoosePath {
    /// Where it is.
    pub path: PathBuf,
    /// Its permission bits (`0o7777`) as found.
    pub mode: u32,
    /// Whether it is a directory.
    pub is_dir: bool,
}

impl std::fmt::Display for LoosePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:04o})", self.path.display(), self.mode)
    }
}

/// Clears the group and other bits of a loose object, keeping its owner (and set-id,
/// sticky) bits as found.
pub fn tighten(loose: &LoosePath) -> crate::Result<()> {
    fs::set_permissions(
        &loose.path,
        Permissions::from_mode(loose.mode & !LOOSE_BITS),
    )
    .map_err(|e| Error::io(&loose.path, e))
}

/// What an audit found: loose objects, and objects it could not look at.
///
/// Only the first `keep` of each are listed (a store written by an older version may
/// have millions of loose shard files); the counts cover all of them. A fixing audit
/// tightens each loose object as it finds it, a directory before what it holds, so
/// nobody else can still swap an entry for a symlink by the time that entry is
/// changed. Symbolic links found inside the store are skipped, never followed (their
/// own mode means nothing, and chmod would act on their target); missing objects are
/// skipped too, since saying what is missing is another check's business.
#[derive(Debug, Default)]
pub struct Audit {
    /// Loose objects in the order found, at most `keep`.
    pub loose: Vec<LoosePath>,
    /// Loose objects found, listed or not.
    pub loose_count: u64,
    /// Loose objects made private by a fixing audit.
    pub fixed_count: u64,
    /// Objects that could not be examined or fixed (each error names its path), at most
    /// `keep`.
    pub failures: Vec<Error>,
    /// Objects that could not be examined or fixed, listed or not.
    pub failure_count: u64,
    keep: usize,
    is_fixing: bool,
}

impl Audit {
    /// An audit that only looks, listing at most `keep` objects of each sort.
    pub fn new(keep: usize) -> Audit {
        Audit {
            keep,
            ..Audit::default()
        }
    }

    /// An audit that also clears the group and other bits of what it finds.
    pub fn fixing(keep: usize) -> Audit {
        Audit {
            is_fixing: true,
            ..Audit::new(keep)
        }
    }

    /// True when nothing loose was found and everything could be examined.
    pub fn is_clean(&self) -> bool {
        self.loose_count == 0 && self.failure_count == 0
    }

    /// True when every loose object found was made private.
    pub fn is_all_fixed(&self) -> bool {
        self.fixed_count == self.loose_count
    }

    /// A directory an administrator named (ROOT, a disk directory): a symbolic link is
    /// followed, since the configured path may well be one.
    pub fn configured_dir(&mut self, path: &Path) {
        match fs::metadata(path) {
            Ok(meta) => self.judge(path, &meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.fail(Error::io(path, e)),
        }
    }

    /// One object inside the store.
    pub fn object(&mut self, path: &Path) {
        self.lstat_and_judge(path);
    }

    /// A directory of the store and what it holds directly.
    pub fn dir_and_entries(&mut self, dir: &Path) {
        if self.lstat_and_judge(dir) {
            self.entries(dir, false);
        }
    }

    /// A directory of the store and everything below it.
    pub fn tree(&mut self, dir: &Path) {
        if self.lstat_and_judge(dir) {
            self.entries(dir, true);
        }
    }

    /// Judges `path` by its own metadata; true when it is a directory to look into.
    fn lstat_and_judge(&mut self, path: &Path) -> bool {
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                self.judge(path, &meta);
                meta.is_dir()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                self.fail(Error::io(path, e));
                false
            }
        }
    }

    /// The entries of `dir` (and, with `is_deep`, of every directory below it), each
    /// directory before what it holds.
    fn entries(&mut self, dir: &Path, is_deep: bool) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let listing = match fs::read_dir(&dir) {
                Ok(listing) => listing,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.fail(Error::io(&dir, e));
                    continue;
                }
            };
            for entry in listing {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        self.fail(Error::io(&dir, e));
                        break;
                    }
                };
                let path = entry.path();
                // DirEntry::metadata does not follow a symbolic link.
                match entry.metadata() {
                    Ok(meta) => {
                        self.judge(&path, &meta);
                        if is_deep && meta.is_dir() {
                            stack.push(path);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => self.fail(Error::io(&path, e)),
                }
            }
        }
    }

    fn judge(&mut self, path: &Path, meta: &fs::Metadata) {
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() || mode & LOOSE_BITS == 0 {
            return;
        }
        let loose = LoosePath {
            path: path.to_path_buf(),
            mode,
            is_dir: meta.is_dir(),
        };
        self.loose_count += 1;
        if self.is_fixing {
            match tighten(&loose) {
                Ok(()) => self.fixed_count += 1,
                Err(e) => self.fail(e),
            }
        }
        if self.loose.len() < self.keep {
            self.loose.push(loose);
        }
    }

    fn fail(&mut self, error: Error) {
        self.failure_count += 1;
        if self.failures.len() < self.keep {
            self.failures.push(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    /// A umask that would leave new objects world-readable, restored afterwards; the
    /// helpers must not depend on it. (Process-wide: the tests here that create objects
    /// check only group/other bits, which a stricter umask could only clear.)
    fn with_loose_umask<T>(f: impl FnOnce() -> T) -> T {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        let out = f();
        nix::sys::stat::umask(old);
        out
    }

    #[test]
    fn created_directories_are_private_along_the_whole_path() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        with_loose_umask(|| {
            create_private_dir_all(&deep).unwrap();
            create_private_dir(&deep.join("d")).unwrap();
        });
        for dir in ["a", "a/b", "a/b/c", "a/b/c/d"] {
            assert_eq!(mode_of(&tmp.path().join(dir)), 0o700, "{dir}");
        }
        // Again over what exists: harmless, and a loose directory there is left alone.
        chmod(&deep, 0o755);
        create_private_dir(&deep).unwrap();
        create_private_dir_all(&deep).unwrap();
        assert_eq!(mode_of(&deep), 0o755);
        make_dir_private(&deep).unwrap();
        assert_eq!(mode_of(&deep), 0o700);
        // A file in the way is an error.
        fs::write(tmp.path().join("file"), b"x").unwrap();
        assert!(create_private_dir(&tmp.path().join("file")).is_err());
    }

    #[test]
    fn audit_finds_group_and_other_bits_and_the_fix_keeps_owner_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        fs::create_dir_all(top.join("sub/deeper")).unwrap();
        fs::write(top.join("ok"), b"x").unwrap();
        fs::write(top.join("sub/readable"), b"x").unwrap();
        fs::write(top.join("sub/deeper/writable"), b"x").unwrap();
        fs::write(top.join("sub/deeper/exec"), b"x").unwrap();
        chmod(&top, 0o700);
        chmod(&top.join("ok"), 0o600);
        chmod(&top.join("sub"), 0o750);
        chmod(&top.join("sub/deeper"), 0o701);
        chmod(&top.join("sub/readable"), 0o644);
        chmod(&top.join("sub/deeper/writable"), 0o602);
        chmod(&top.join("sub/deeper/exec"), 0o4510);
        // A symbolic link is neither reported nor followed.
        std::os::unix::fs::symlink("/etc/passwd", top.join("sub/link")).unwrap();

        let mut shallow = Audit::new(10);
        shallow.dir_and_entries(&top);
        let found: Vec<String> = shallow.loose.iter().map(|l| l.to_string()).collect();
        assert_eq!(found, [format!("{} (0750)", top.join("sub").display())]);

        let mut deep = Audit::new(10);
        deep.tree(&top);
        let mut found: Vec<(PathBuf, u32, bool)> = deep
            .loose
            .iter()
            .map(|l| {
                (
                    l.path.strip_prefix(&top).unwrap().to_path_buf(),
                    l.mode,
                    l.is_dir,
                )
            })
            .collect();
        found.sort();
        let expected: Vec<(PathBuf, u32, bool)> = [
            ("sub", 0o750, true),
            ("sub/deeper", 0o701, true),
            ("sub/deeper/exec", 0o4510, false),
            ("sub/deeper/writable", 0o602, false),
            ("sub/readable", 0o644, false),
        ]
        .into_iter()
        .map(|(p, m, d)| (PathBuf::from(p), m, d))
        .collect();
        assert_eq!(found, expected);
        assert_eq!(deep.loose_count, 5);
        assert_eq!(deep.fixed_count, 0);
        assert!(!deep.is_clean());
        assert_eq!(
            mode_of(&top.join("sub")),
            0o750,
            "a plain audit changes nothing"
        );

        // A short list still counts everything.
        let mut capped = Audit::new(2);
        capped.tree(&top);
        assert_eq!((capped.loose.len(), capped.loose_count), (2, 5));

        let mut fix = Audit::fixing(0);
        fix.tree(&top);
        assert_eq!((fix.loose_count, fix.fixed_count), (5, 5));
        assert!(fix.is_all_fixed() && fix.loose.is_empty());
        assert_eq!(mode_of(&top.join("sub")), 0o700);
        assert_eq!(mode_of(&top.join("sub/deeper")), 0o700);
        assert_eq!(mode_of(&top.join("sub/readable")), 0o600);
        assert_eq!(mode_of(&top.join("sub/deeper/writable")), 0o600);
        assert_eq!(mode_of(&top.join("sub/deeper/exec")), 0o4500);
        assert_ne!(mode_of(Path::new("/etc/passwd")) & LOOSE_BITS, 0);
        let mut again = Audit::new(10);
        again.tree(&top);
        assert!(again.is_clean(), "{again:?}");
    }

    #[test]
    fn audit_skips_what_is_missing_and_follows_only_configured_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = Audit::new(10);
        audit.object(&tmp.path().join("nope"));
        audit.tree(&tmp.path().join("nope"));
        audit.dir_and_entries(&tmp.path().join("nope"));
        audit.configured_dir(&tmp.path().join("nope"));
        assert!(audit.is_clean());

        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        chmod(&real, 0o755);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut audit = Audit::new(10);
        audit.object(&link);
        assert!(audit.is_clean(), "a link inside the store is not followed");
        audit.configured_dir(&link);
        assert_eq!(audit.loose_count, 1, "a configured path is");
        assert_eq!(audit.loose[0].path, link);
    }
}

//! Import and export: round trips of a tree holding every kind of entry and attribute
//! (library and binaries), error reporting, --strict, the volume lock, --json.
//!
//! Most tests make their fixture as root (mknod, chown, trusted.* xattrs) and skip
//! with a printed reason otherwise; CI runs as root.

use crate::common::{self, Spec, TestVolume, put_file};
use argosfs::meta::FileKind;
use argosfs::transfer::{self, Counts, ExportOptions, ImportOptions, ItemError, Observer, Outcome};
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, Volume};
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, Whence};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root (mknod of devices, chown, trusted.* xattrs)");
    false
}

// ---- building a fixture ----

fn chown(path: &Path, uid: u32, gid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn write(path: &Path, data: &[u8], uid: u32, gid: u32, mode: u32) {
    fs::write(path, data).unwrap();
    chown(path, uid, gid);
    chmod(path, mode);
}

fn mknod(path: &Path, kind: SFlag, perm: u32, rdev: u64, uid: u32, gid: u32) {
    nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(perm), rdev).unwrap();
    chown(path, uid, gid);
    chmod(path, perm);
}

fn symlink(target: &[u8], path: &Path) {
    std::os::unix::fs::symlink(OsStr::from_bytes(target), path).unwrap();
}

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const NO_ID: u32 = u32::MAX;

/// Sets an ACL with `setfacl` when it is installed, else by writing the xattr bytes.
fn set_acl(path: &Path, is_default: bool, entries: &[(u16, u16, u32)]) {
    let has_setfacl = Command::new("setfacl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_setfacl {
        let rwx = |p: u16| {
            format!(
                "{}{}{}",
                if p & 4 != 0 { 'r' } else { '-' },
                if p & 2 != 0 { 'w' } else { '-' },
                if p & 1 != 0 { 'x' } else { '-' }
            )
        };
        let spec: Vec<String> = entries
            .iter()
            .map(|&(tag, perm, id)| match tag {
                ACL_USER_OBJ => format!("u::{}", rwx(perm)),
                ACL_USER => format!("u:{id}:{}", rwx(perm)),
                ACL_GROUP_OBJ => format!("g::{}", rwx(perm)),
                ACL_GROUP => format!("g:{id}:{}", rwx(perm)),
                ACL_MASK => format!("m::{}", rwx(perm)),
                _ => format!("o::{}", rwx(perm)),
            })
            .collect();
        let mut cmd = Command::new("setfacl");
        if is_default {
            cmd.arg("-d");
        }
        crate::common::run_ok(cmd.arg("--set").arg(spec.join(",")).arg(path));
    } else {
        let bytes = crate::common::acl_xattr(entries);
        let name = if is_default {
            "system.posix_acl_default"
        } else {
            "system.posix_acl_access"
        };
        xattr::set(path, name, &bytes).unwrap();
    }
}

/// A tree holding every item import and export must keep: all file types, hard links
/// across directories, all mode bits, owners, xattrs of every namespace and ACLs,
/// byte names and targets, a sparse file, an empty directory, metadata on the top
/// directory, and distinct nanosecond times everywhere (set last, children first).
fn make_fixture(src: &Path) {
    fs::create_dir(src).unwrap();
    let p = |rel: &[u8]| src.join(OsStr::from_bytes(rel));

    write(
        &p(b"plain.txt"),
        &common::pattern(100_000, 1),
        1000,
        1000,
        0o644,
    );
    xattr::set(p(b"plain.txt"), "user.note", b"hello\0world").unwrap();
    xattr::set(p(b"plain.txt"), "trusted.argosfs", &[1, 2, 3, 0, 255]).unwrap();
    xattr::set(p(b"plain.txt"), "security.argosfs", b"label").unwrap();
    write(&p(b"small.txt"), b"ten bytes!", 0, 0, 0o600);
    write(&p(b"empty"), b"", 7, 8, 0o444);
    write(&p(b"suid"), &common::pattern(5000, 2), 0, 0, 0o4755);
    write(&p(b"sgid"), b"#!/bin/sh\n", 0, 50, 0o2751);
    write(&p(b"suid-sgid-other"), b"x", 1234, 1234, 0o6711);
    write(&p(b"sgid-no-x"), b"y", 1234, 99, 0o2640);
    fs::create_dir(p(b"sticky")).unwrap();
    chmod(&p(b"sticky"), 0o1777);
    fs::create_dir(p(b"sticky/sgid-dir")).unwrap();
    chown(&p(b"sticky/sgid-dir"), 3, 33);
    chmod(&p(b"sticky/sgid-dir"), 0o2775);

    // ACLs: an access ACL with a named user and group; a directory with access and
    // default ACLs, holding one child that inherited them and one that had them removed.
    write(&p(b"acl-file"), b"acl", 1000, 1000, 0o640);
    set_acl(
        &p(b"acl-file"),
        false,
        &[
            (ACL_USER_OBJ, 6, NO_ID),
            (ACL_USER, 4, 1001),
            (ACL_GROUP_OBJ, 4, NO_ID),
            (ACL_GROUP, 2, 2000),
            (ACL_MASK, 6, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ],
    );
    fs::create_dir(p(b"acl-dir")).unwrap();
    set_acl(
        &p(b"acl-dir"),
        false,
        &[
            (ACL_USER_OBJ, 7, NO_ID),
            (ACL_USER, 5, 1002),
            (ACL_GROUP_OBJ, 5, NO_ID),
            (ACL_MASK, 5, NO_ID),
            (ACL_OTHER, 1, NO_ID),
        ],
    );
    set_acl(
        &p(b"acl-dir"),
        true,
        &[
            (ACL_USER_OBJ, 7, NO_ID),
            (ACL_USER, 6, 1003),
            (ACL_GROUP_OBJ, 5, NO_ID),
            (ACL_MASK, 7, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ],
    );
    write(&p(b"acl-dir/inherited"), b"i", 0, 0, 0o660);
    write(&p(b"acl-dir/plain"), b"p", 0, 0, 0o604);
    xattr::remove(p(b"acl-dir/plain"), "system.posix_acl_access").unwrap();
    chmod(&p(b"acl-dir/plain"), 0o604);
    fs::create_dir(p(b"acl-dir/subdir")).unwrap();

    // Sparse: data, a hole inside one 64 KiB stripe, data, a long hole, data, a tail hole.
    let sparse = File::create(p(b"sparse")).unwrap();
    sparse.set_len(3 * (1 << 20) + 123).unwrap();
    sparse.write_all_at(&common::pattern(4096, 3), 0).unwrap();
    sparse
        .write_all_at(&common::pattern(4096, 4), 65536 + 8192)
        .unwrap();
    sparse
        .write_all_at(&common::pattern(100 << 10, 5), 1 << 20)
        .unwrap();
    drop(sparse);
    write(&p(b"all-hole"), b"", 0, 0, 0o644);
    File::options()
        .write(true)
        .open(p(b"all-hole"))
        .unwrap()
        .set_len(5 << 20)
        .unwrap();

    // Hard links: three names in three directories, and a pair.
    fs::create_dir_all(p(b"sub/deeper")).unwrap();
    write(&p(b"hl-a"), &common::pattern(3000, 6), 500, 500, 0o4750);
    xattr::set(p(b"hl-a"), "user.linked", b"yes").unwrap();
    fs::hard_link(p(b"hl-a"), p(b"sub/hl-b")).unwrap();
    fs::hard_link(p(b"hl-a"), p(b"sub/deeper/hl-c")).unwrap();
    write(&p(b"pair-1"), b"pair", 0, 0, 0o644);
    fs::hard_link(p(b"pair-1"), p(b"sub/pair-2")).unwrap();

    // Symlinks: relative, dangling with non-UTF-8 bytes, long, owned, with an xattr.
    symlink(b"plain.txt", &p(b"link-rel"));
    symlink(b"/nonexistent/\xff\xfe target \x01", &p(b"link-dangling"));
    symlink(&b"abcdefghi/".repeat(100), &p(b"link-long"));
    symlink(b"../plain.txt", &p(b"sub/link-owned"));
    chown(&p(b"sub/link-owned"), 1234, 4321);
    xattr::set(p(b"link-dangling"), "trusted.onlink", b"t").unwrap();

    // Devices, a FIFO, a socket.
    mknod(&p(b"chr"), SFlag::S_IFCHR, 0o620, makedev(1, 3), 0, 5);
    mknod(&p(b"blk"), SFlag::S_IFBLK, 0o660, makedev(7, 200), 0, 6);
    mknod(&p(b"fifo"), SFlag::S_IFIFO, 0o1640, 0, 100, 100);
    xattr::set(p(b"fifo"), "trusted.fifo", b"f").unwrap();
    drop(std::os::unix::net::UnixListener::bind(p(b"sock")).unwrap());
    chown(&p(b"sock"), 33, 33);
    chmod(&p(b"sock"), 0o755);

    // Names that are not UTF-8, an empty directory, a deep path.
    write(&p(b"caf\xe9"), b"latin-1 name", 0, 0, 0o644);
    fs::create_dir(p(b"\xff\xfe dir")).unwrap();
    write(&p(b"\xff\xfe dir/na\x80me"), b"inner", 0, 0, 0o644);
    fs::create_dir(p(b"empty-dir")).unwrap();
    chown(&p(b"empty-dir"), 42, 42);
    chmod(&p(b"empty-dir"), 0o700);
    fs::create_dir_all(p(b"a/b/c/d/e")).unwrap();
    write(&p(b"a/b/c/d/e/deep"), b"deep", 0, 0, 0o644);

    // The top directory's own metadata.
    chown(src, 1001, 1002);
    chmod(src, 0o751);
    xattr::set(src, "user.top", b"root of the tree").unwrap();

    let mut counter = 0;
    set_times(src, &mut counter);
}

/// Gives every entry its own atime and mtime (nanoseconds included), children before
/// their directory.
fn set_times(path: &Path, counter: &mut i64) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        let mut names: Vec<PathBuf> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for child in names {
            set_times(&child, counter);
        }
    }
    *counter += 1;
    let n = *counter;
    let atime = TimeSpec::new(1_100_000_000 + n * 86_400, (n * 7_919_017) % 1_000_000_000);
    let mtime = TimeSpec::new(1_000_000_000 + n * 3_600, (n * 104_729 + 1) % 1_000_000_000);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

// ---- comparing trees ----

/// Everything lstat and the xattr calls report that a copy can keep.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    /// None for directories (their size is the host filesystem's business).
    size: Option<u64>,
    atime: (i64, i64),
    mtime: (i64, i64),
    rdev: u64,
    nlink: u64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A tree's metadata by path ("" is the top; children "/a/b"), and the inode of each.
#[derive(Default)]
struct Tree {
    meta: BTreeMap<Vec<u8>, Meta>,
    inode: BTreeMap<Vec<u8>, (u64, u64)>,
}

/// Records metadata without reading contents or links and without touching atimes
/// (directories are listed through O_NOATIME descriptors).
fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::default();
    visit(root, Vec::new(), &mut tree);
    tree
}

fn visit(path: &Path, rel: Vec<u8>, tree: &mut Tree) {
    let st = nix::sys::stat::lstat(path).unwrap();
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut xattrs = BTreeMap::new();
    for name in xattr::list(path).unwrap() {
        if let Some(value) = xattr::get(path, &name).unwrap() {
            xattrs.insert(name.as_bytes().to_vec(), value);
        }
    }
    tree.meta.insert(
        rel.clone(),
        Meta {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: (!is_dir).then_some(st.st_size as u64),
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            rdev: st.st_rdev,
            nlink: if is_dir { 0 } else { st.st_nlink },
            xattrs,
        },
    );
    tree.inode.insert(rel.clone(), (st.st_dev, st.st_ino));
    if !is_dir {
        return;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOATIME | OFlag::O_CLOEXEC;
    let mut dir = nix::dir::Dir::open(path, flags, Mode::empty()).unwrap();
    let mut names: Vec<Vec<u8>> = dir
        .iter()
        .map(|e| e.unwrap().file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    names.sort();
    for name in names {
        let mut child = rel.clone();
        child.push(b'/');
        child.extend_from_slice(&name);
        visit(&path.join(OsStr::from_bytes(&name)), child, tree);
    }
}

fn show(rel: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(rel))
}

/// For each path, the paths that share its inode (hard link groups).
fn link_groups(tree: &Tree) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
    let mut by_inode: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    for (rel, inode) in &tree.inode {
        by_inode.entry(*inode).or_default().push(rel.clone());
    }
    let mut out = BTreeMap::new();
    for paths in by_inode.values() {
        for p in paths {
            out.insert(p.clone(), paths.clone());
        }
    }
    out
}

/// Compares every preservable field of every entry, and the hard link grouping.
fn assert_same_metadata(before: &Tree, after: &Tree) {
    let mut diffs = Vec::new();
    for rel in before.meta.keys() {
        if !after.meta.contains_key(rel) {
            diffs.push(format!("{}: missing after the round trip", show(rel)));
        }
    }
    for rel in after.meta.keys() {
        if !before.meta.contains_key(rel) {
            diffs.push(format!("{}: not in the source", show(rel)));
        }
    }
    for (rel, a) in &before.meta {
        let Some(b) = after.meta.get(rel) else {
            continue;
        };
        let mut fields = Vec::new();
        let mut field = |name: &str, x: String, y: String| {
            if x != y {
                fields.push(format!("{name} {x} != {y}"));
            }
        };
        field("mode", format!("{:o}", a.mode), format!("{:o}", b.mode));
        field("uid", a.uid.to_string(), b.uid.to_string());
        field("gid", a.gid.to_string(), b.gid.to_string());
        field("size", format!("{:?}", a.size), format!("{:?}", b.size));
        field("atime", format!("{:?}", a.atime), format!("{:?}", b.atime));
        field("mtime", format!("{:?}", a.mtime), format!("{:?}", b.mtime));
        field("rdev", a.rdev.to_string(), b.rdev.to_string());
        field("nlink", a.nlink.to_string(), b.nlink.to_string());
        let show_xattrs = |x: &BTreeMap<Vec<u8>, Vec<u8>>| {
            x.iter()
                .map(|(k, v)| format!("{}={v:?}", String::from_utf8_lossy(k)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        field("xattrs", show_xattrs(&a.xattrs), show_xattrs(&b.xattrs));
        if !fields.is_empty() {
            diffs.push(format!("{}: {}", show(rel), fields.join("; ")));
        }
    }
    let (ga, gb) = (link_groups(before), link_groups(after));
    for (rel, group) in &ga {
        if gb.get(rel).is_some_and(|g| g != group) {
            diffs.push(format!(
                "{}: linked with {:?} in the source, {:?} in the copy",
                show(rel),
                group.iter().map(|p| show(p)).collect::<Vec<_>>(),
                gb[rel].iter().map(|p| show(p)).collect::<Vec<_>>()
            ));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

fn data_regions(file: &File, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    while (offset as u64) < size {
        let Ok(start) = nix::unistd::lseek(file, offset, Whence::SeekData) else {
            break;
        };
        let end = nix::unistd::lseek(file, start, Whence::SeekHole).unwrap();
        out.push((start as u64, end as u64));
        offset = end;
    }
    out
}

fn open_noatime(path: &Path) -> File {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
        .unwrap()
}

/// Compares contents and hole layout of regular files and the targets of symlinks
/// (after the metadata: reading a symlink touches its atime).
fn assert_same_data(src: &Path, dst: &Path, tree: &Tree) {
    for (rel, meta) in &tree.meta {
        let rel_path = Path::new(OsStr::from_bytes(rel.strip_prefix(b"/").unwrap_or(rel)));
        let (a, b) = (src.join(rel_path), dst.join(rel_path));
        match meta.mode & libc::S_IFMT {
            libc::S_IFREG => {
                let size = meta.size.unwrap();
                let (fa, fb) = (open_noatime(&a), open_noatime(&b));
                let mut da = vec![0; size as usize];
                let mut db = vec![0; size as usize];
                fa.read_exact_at(&mut da, 0).unwrap();
                fb.read_exact_at(&mut db, 0).unwrap();
                assert!(da == db, "{}: contents differ", show(rel));
                assert_eq!(
                    data_regions(&fa, size),
                    data_regions(&fb, size),
                    "{}: hole layout differs",
                    show(rel)
                );
            }
            libc::S_IFLNK => {
                assert_eq!(
                    fs::read_link(&a).unwrap(),
                    fs::read_link(&b).unwrap(),
                    "{}: symlink target differs",
                    show(rel)
                );
            }
            _ => {}
        }
    }
}

// ---- running ----

/// Collects errors as text.
#[derive(Default)]
struct Collect {
    errors: Vec<String>,
    paths: Vec<PathBuf>,
    last: Counts,
}

impl Observer for Collect {
    fn on_error(&mut self, error: &ItemError) {
        self.errors.push(error.to_string());
        self.paths.push(error.path.clone());
    }
    fn on_progress(&mut self, counts: &Counts) {
        self.last = *counts;
    }
}

fn tool(name: &str, args: &[&OsStr], envs: &[(&str, &[u8])]) -> Command {
    let exe = match name {
        "import" => env!("CARGO_BIN_EXE_argosfs-import"),
        _ => env!("CARGO_BIN_EXE_argosfs-export"),
    };
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("ARGOSFS_PASSPHRASE");
    for (k, v) in envs {
        cmd.env(k, OsStr::from_bytes(v));
    }
    cmd
}

fn run(name: &str, args: &[&OsStr], tv: &TestVolume) -> Output {
    let envs: Vec<(&str, &[u8])> = match &tv.passphrase {
        Some(p) => vec![("ARGOSFS_PASSPHRASE", p.as_slice())],
        None => Vec::new(),
    };
    tool(name, args, &envs).output().unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Parses --json output: JSON Lines of {"type", "data"}.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn summary(lines: &[serde_json::Value]) -> &serde_json::Value {
    let last = lines.last().expect("a summary line");
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["schema"], 1);
    &last["data"]
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn lookup_path(vol: &Volume, path: &[u8]) -> argosfs::Result<InodeId> {
    let caller = transfer::caller();
    let mut ino = InodeId::ROOT;
    for part in path.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
        ino = vol.lookup(&caller, ino, part)?.ino;
    }
    Ok(ino)
}

// ---- tests ----

#[test]
fn library_round_trip_keeps_every_attribute() {
    if !is_root() {
        return;
    }
    let tv = common::make(&Spec::default());
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_fixture(&src);
    let before = snapshot(&src);
    assert_fixture_is_complete(&src, &before);

    // Both targets start with a default ACL that new entries would inherit: the copy
    // must drop what the source does not have.
    let default_acl = [
        (ACL_USER_OBJ, 7, NO_ID),
        (ACL_USER, 7, 4242),
        (ACL_GROUP_OBJ, 7, NO_ID),
        (ACL_MASK, 7, NO_ID),
        (ACL_OTHER, 7, NO_ID),
    ];
    let vol = tv.open();
    let c = common::root();
    let into = vol.mkdir(&c, InodeId::ROOT, b"into", 0o755).unwrap().ino;
    vol.setxattr(
        &c,
        into,
        b"system.posix_acl_default",
        &crate::common::acl_xattr(&default_acl),
        0,
    )
    .unwrap();
    let mut seen = Collect::default();
    let options = ImportOptions {
        into: b"/into".to_vec(),
        ..ImportOptions::default()
    };
    let report = transfer::import(&vol, &src, &options, &mut seen).unwrap();
    assert!(seen.errors.is_empty(), "{:#?}", seen.errors);
    assert!(report.is_clean(), "{report:?}");
    let c = report.counts;
    assert_eq!(c.entries() as usize, before.meta.len() - 1);
    assert_eq!((c.hard_links, c.specials, c.symlinks), (3, 4, 4));
    assert_eq!(seen.last.entries(), c.entries());
    vol.close().unwrap();

    let vol = tv
        .open_with(OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    let sparse = vol
        .getattr(lookup_path(&vol, b"into/sparse").unwrap())
        .unwrap();
    assert_eq!(sparse.size, 3 * (1 << 20) + 123);
    assert!(
        sparse.blocks * 512 < 512 << 10,
        "holes take no space in the volume: {} blocks",
        sparse.blocks
    );
    let hole = vol
        .getattr(lookup_path(&vol, b"into/all-hole").unwrap())
        .unwrap();
    assert_eq!((hole.size, hole.blocks), (5 << 20, 0));
    let chr = vol
        .getattr(lookup_path(&vol, b"into/chr").unwrap())
        .unwrap();
    assert_eq!((chr.kind, chr.rdev), (FileKind::CharDevice, makedev(1, 3)));

    let dest = work.path().join("out");
    fs::create_dir(&dest).unwrap();
    set_acl(&dest, true, &default_acl);
    let options = ExportOptions {
        from: b"/into".to_vec(),
        ..ExportOptions::default()
    };
    let report = transfer::export(&vol, &dest, &options, &mut seen).unwrap();
    assert!(seen.errors.is_empty(), "{:#?}", seen.errors);
    assert!(report.is_clean());
    assert_eq!(report.counts.entries(), c.entries());
    assert_eq!(report.counts.bytes, c.bytes);
    assert_same_metadata(&before, &snapshot(&dest));
    assert_same_data(&src, &dest, &before);
    // The volume's store is private (files 0600), what export writes is not: it keeps
    // the modes the files have in the volume.
    let plain = fs::symlink_metadata(dest.join("plain.txt")).unwrap();
    assert_eq!(plain.mode() & 0o7777, 0o644);
    let superblock = fs::symlink_metadata(tv.root.join("superblock.json")).unwrap();
    assert_eq!(superblock.mode() & 0o7777, 0o600);
}

/// Guards against a vacuous pass: the fixture really holds what the comparison checks.
fn assert_fixture_is_complete(src: &Path, tree: &Tree) {
    let xattrs = |rel: &[u8]| -> Vec<Vec<u8>> { tree.meta[rel].xattrs.keys().cloned().collect() };
    let names =
        |list: &[&str]| -> Vec<Vec<u8>> { list.iter().map(|n| n.as_bytes().to_vec()).collect() };
    assert_eq!(
        xattrs(b"/plain.txt"),
        names(&["security.argosfs", "trusted.argosfs", "user.note"])
    );
    assert_eq!(
        xattrs(b"/acl-dir"),
        names(&["system.posix_acl_access", "system.posix_acl_default"])
    );
    assert_eq!(
        xattrs(b"/acl-dir/inherited"),
        names(&["system.posix_acl_access"])
    );
    assert_eq!(
        xattrs(b"/acl-dir/subdir"),
        names(&["system.posix_acl_access", "system.posix_acl_default"])
    );
    assert!(xattrs(b"/acl-dir/plain").is_empty());
    assert_eq!(xattrs(b"/link-dangling"), names(&["trusted.onlink"]));
    assert_eq!(tree.meta[&b"/sub/deeper/hl-c"[..]].nlink, 3);
    assert_eq!(tree.meta[&b"/suid"[..]].mode & 0o7777, 0o4755);
    let sparse = open_noatime(&src.join("sparse"));
    assert_eq!(
        data_regions(&sparse, 3 * (1 << 20) + 123),
        vec![
            (0, 4096),
            (73728, 77824),
            (1 << 20, (1 << 20) + (100 << 10))
        ]
    );
}

#[test]
fn binaries_round_trip_through_an_encrypted_volume_with_json_summaries() {
    if !is_root() {
        return;
    }
    let tv = common::make(&Spec {
        compression: true,
        encryption: true,
        ..Spec::default()
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_fixture(&src);
    let before = snapshot(&src);
    let root = tv.root.as_os_str();

    let out = run(
        "import",
        &[
            root,
            src.as_os_str(),
            os("--into"),
            os("/nested/dir"),
            os("--json"),
        ],
        &tv,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "only the summary: {lines:?}");
    let data = summary(&lines);
    assert_eq!(data["command"], "import");
    assert_eq!(data["outcome"], "finished");
    assert_eq!(data["errors"], 0);
    assert_eq!(data["into"], "/nested/dir");
    assert_eq!(data["entries"], before.meta.len() as u64 - 1);
    assert_eq!(data["hard_links"], 3);
    for key in ["files", "directories", "symlinks", "specials", "bytes"] {
        assert!(data[key].as_u64().unwrap() > 0, "{key}: {data}");
    }
    for key in ["seconds", "files_per_second", "mb_per_second"] {
        assert!(data[key].as_f64().is_some(), "{key}: {data}");
    }

    let dest = work.path().join("out");
    let out = run(
        "export",
        &[
            root,
            dest.as_os_str(),
            os("--preserve-metadata"),
            os("--from"),
            os("nested/dir"),
            os("--json"),
        ],
        &tv,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let data = summary(&lines);
    assert_eq!(data["command"], "export");
    assert_eq!(data["preserve_metadata"], true);
    assert_eq!(data["entries"], before.meta.len() as u64 - 1);
    assert_same_metadata(&before, &snapshot(&dest));
    assert_same_data(&src, &dest, &before);

    // Text mode: a summary with the rates on stdout, nothing on stderr.
    let again = work.path().join("again");
    let out = run(
        "export",
        &[root, again.as_os_str(), os("--from"), os("/nested/dir")],
        &tv,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("files/s") && text.contains("MB/s"), "{text}");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn an_unreadable_source_file_is_reported_and_the_rest_imported() {
    if !is_root() {
        return;
    }
    // Root reads anything, so the import runs as nobody, over a volume nobody owns,
    // and meets a file only root could read: open fails with EACCES, deterministically.
    let tree = tempfile::tempdir().unwrap();
    chmod(tree.path(), 0o755);
    let src = tree.path().join("src");
    fs::create_dir(&src).unwrap();
    chmod(&src, 0o755);
    write(&src.join("a-ok"), b"a", 0, 0, 0o644);
    write(&src.join("b-secret"), b"secret", 0, 0, 0o000);
    write(&src.join("c-ok"), b"c", 0, 0, 0o644);

    for strict in [false, true] {
        let tv = common::make(&Spec::default());
        chmod(tv.dir.path(), 0o755);
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&tv.root)
            .args(&tv.disks)
            .status()
            .unwrap();
        assert!(status.success());
        let mut args = vec![tv.root.as_os_str(), src.as_os_str(), os("--json")];
        if strict {
            args.push(os("--strict"));
        }
        let mut cmd = tool("import", &args, &[]);
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let lines = json_lines(&out);
        let error = &lines[0];
        assert_eq!(error["type"], "error");
        assert_eq!(
            error["data"]["path"],
            src.join("b-secret").to_str().unwrap()
        );
        assert_eq!(error["data"]["op"], "open");
        assert_eq!(error["data"]["side"], "host");
        assert_eq!(error["data"]["errno"], libc::EACCES);
        let data = summary(&lines);
        assert_eq!(data["errors"], 1);
        assert_eq!(data["outcome"], if strict { "stopped" } else { "finished" });
        assert_eq!(data["files"], if strict { 1 } else { 2 });

        let vol = tv.open();
        assert!(lookup_path(&vol, b"a-ok").is_ok());
        assert!(matches!(
            lookup_path(&vol, b"b-secret"),
            Err(argosfs::Error::NotFound)
        ));
        assert_eq!(lookup_path(&vol, b"c-ok").is_ok(), !strict);
    }
}

#[test]
fn an_entry_in_the_way_is_reported_and_strict_stops_there() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("b")).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    fs::write(src.join("b/inner"), b"inner").unwrap();
    fs::write(src.join("c"), b"c").unwrap();
    for strict in [false, true] {
        let tv = common::make(&Spec::default());
        let vol = tv.open();
        let c = common::root();
        let into = vol.mkdir(&c, InodeId::ROOT, b"into", 0o755).unwrap().ino;
        vol.create(&c, into, b"b", 0o644).unwrap();
        let options = ImportOptions {
            into: b"/into".to_vec(),
            is_strict: strict,
            ..ImportOptions::default()
        };
        let mut seen = Collect::default();
        let report = transfer::import(&vol, &src, &options, &mut seen).unwrap();
        assert_eq!(seen.paths, vec![src.join("b")], "{:?}", seen.errors);
        assert!(seen.errors[0].contains("mkdir"), "{:?}", seen.errors);
        assert_eq!(report.counts.errors, 1);
        assert!(!report.is_clean());
        let expected = if strict {
            Outcome::Stopped
        } else {
            Outcome::Finished
        };
        assert_eq!(report.outcome, expected);
        assert!(lookup_path(&vol, b"into/a").is_ok());
        assert_eq!(
            vol.getattr(lookup_path(&vol, b"into/b").unwrap())
                .unwrap()
                .kind,
            FileKind::Regular
        );
        assert_eq!(lookup_path(&vol, b"into/c").is_ok(), !strict);
        vol.close().unwrap();
    }
}

#[test]
fn export_reports_an_unreadable_file_and_goes_on() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    put_file(&vol, b"a-small", b"inline");
    put_file(&vol, b"b-big", &common::pattern(300_000, 9));
    put_file(&vol, b"c-small", b"also inline");
    vol.close().unwrap();
    // Three of six disks lose every shard: a 4+2 stripe cannot be rebuilt.
    for disk in 0..3 {
        for shard in tv.shard_files(disk) {
            shard.remove();
        }
    }
    for strict in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("out");
        let mut args = vec![tv.root.as_os_str(), dest.as_os_str(), os("--json")];
        if strict {
            args.push(os("--strict"));
        }
        let out = run("export", &args, &tv);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let lines = json_lines(&out);
        assert_eq!(lines[0]["type"], "error");
        assert_eq!(lines[0]["data"]["path"], "/b-big");
        assert_eq!(lines[0]["data"]["side"], "volume");
        assert_eq!(lines[0]["data"]["errno"], libc::EIO);
        let data = summary(&lines);
        assert_eq!(data["errors"], 1);
        assert_eq!(data["outcome"], if strict { "stopped" } else { "finished" });
        assert_eq!(fs::read(dest.join("a-small")).unwrap(), b"inline");
        assert!(!dest.join("b-big").exists(), "no partial copy is left");
        assert_eq!(dest.join("c-small").exists(), !strict);
    }
}

#[test]
fn a_volume_in_use_is_refused_with_a_clear_message() {
    let tv = common::make(&Spec::default());
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("f"), b"f").unwrap();
    let _mounted = tv.open();
    let dest = work.path().join("out");
    for out in [
        run(
            "import",
            &[tv.root.as_os_str(), work.path().as_os_str()],
            &tv,
        ),
        run("export", &[tv.root.as_os_str(), dest.as_os_str()], &tv),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "volume {} is mounted or in use; unmount it first",
                tv.root.display()
            )),
            "{err}"
        );
    }
}

#[test]
fn export_refuses_a_non_empty_destination_unless_forced() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    put_file(&vol, b"f", b"new contents");
    vol.close().unwrap();
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("f"), b"old").unwrap();
    fs::write(work.path().join("keep"), b"keep").unwrap();
    let out = run(
        "export",
        &[tv.root.as_os_str(), work.path().as_os_str()],
        &tv,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(fs::read(work.path().join("f")).unwrap(), b"old");
    let out = run(
        "export",
        &[tv.root.as_os_str(), work.path().as_os_str(), os("--force")],
        &tv,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(work.path().join("f")).unwrap(), b"new contents");
    assert_eq!(fs::read(work.path().join("keep")).unwrap(), b"keep");
}

#[test]
fn export_without_preserve_metadata_keeps_contents_types_and_permission_bits() {
    if !is_root() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    write(&src.join("suid"), b"bin", 1234, 1234, 0o4755);
    xattr::set(src.join("suid"), "user.x", b"x").unwrap();
    fs::create_dir(src.join("tmp")).unwrap();
    chmod(&src.join("tmp"), 0o1777);
    symlink(b"suid", &src.join("link"));
    mknod(&src.join("fifo"), SFlag::S_IFIFO, 0o640, 0, 5, 5);
    let mut counter = 0;
    set_times(&src, &mut counter);
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let mut seen = Collect::default();
    transfer::import(&vol, &src, &ImportOptions::default(), &mut seen).unwrap();
    vol.close().unwrap();

    let dest = work.path().join("out");
    let out = run("export", &[tv.root.as_os_str(), dest.as_os_str()], &tv);
    assert!(out.status.success(), "{}", stderr(&out));
    let suid = fs::symlink_metadata(dest.join("suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o755, "set-id bits dropped");
    assert_eq!(suid.uid(), 0, "owned by whoever exports");
    assert!(suid.mtime() > 1_500_000_000, "times are not kept");
    assert_eq!(xattr::get(dest.join("suid"), "user.x").unwrap(), None);
    assert_eq!(fs::read(dest.join("suid")).unwrap(), b"bin");
    let tmp = fs::symlink_metadata(dest.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777, "sticky kept");
    assert_eq!(fs::read_link(dest.join("link")).unwrap(), Path::new("suid"));
    let fifo = fs::symlink_metadata(dest.join("fifo")).unwrap();
    assert_eq!(fifo.mode() & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(fifo.mode() & 0o7777, 0o640);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let tv = common::make(&Spec::default());
    let work = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<&OsStr>); 4] = [
        ("import", vec![tv.root.as_os_str()]),
        (
            "import",
            vec![
                tv.root.as_os_str(),
                work.path().as_os_str(),
                os("--into"),
                os("/a/../b"),
            ],
        ),
        (
            "export",
            vec![
                tv.root.as_os_str(),
                work.path().as_os_str(),
                os("--from"),
                os(".."),
            ],
        ),
        (
            "export",
            vec![tv.root.as_os_str(), work.path().as_os_str(), os("--bogus")],
        ),
    ];
    for (name, args) in cases {
        let out = run(name, &args, &tv);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} {args:?}: {}",
            stderr(&out)
        );
    }
    // A source that is not a directory is an operational error.
    let file = work.path().join("file");
    fs::write(&file, b"x").unwrap();
    let out = run("import", &[tv.root.as_os_str(), file.as_os_str()], &tv);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn imported_tree_seen_through_the_mount_matches_the_source() {
    crate::mount_util::require_fuse!();
    let tv = common::make(&Spec::default());
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_fixture(&src);
    let before = snapshot(&src);
    assert_fixture_is_complete(&src, &before);
    {
        let vol = tv.open();
        let mut seen = Collect::default();
        let report = transfer::import(&vol, &src, &ImportOptions::default(), &mut seen).unwrap();
        assert!(seen.errors.is_empty(), "{:#?}", seen.errors);
        assert!(report.is_clean(), "{report:?}");
        vol.close().unwrap();
    }
    // Read-only, so looking cannot change what is compared.
    let m = crate::mount_util::Mounted::with_options(tv, &["ro", "allow_other", "dev", "suid"]);
    assert_same_metadata(&before, &snapshot(&m.mnt));
    assert_same_data(&src, &m.mnt, &before);
}

//! Mounted tests: the real argosfs-mount binary, the kernel in between, std::fs, libc
//! (through nix) and real programs on top.

use crate::common::{Spec, pattern};
use crate::mount_util::{Mounted, as_nobody, as_nobody_output, python, require_fuse, sh};
use nix::errno::Errno;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error").raw_os_error().unwrap()
}

#[test]
fn mount_posix_operations_and_errors() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    let p = |n: &str| m.path(n);

    // Files: create, write, read, exclusive create, append, truncate.
    fs::write(p("f"), b"hello world").unwrap();
    assert_eq!(fs::read(p("f")).unwrap(), b"hello world");
    assert_eq!(
        errno_of(OpenOptions::new().write(true).create_new(true).open(p("f"))),
        libc::EEXIST
    );
    let mut f = OpenOptions::new().append(true).open(p("f")).unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    assert_eq!(fs::read(p("f")).unwrap(), b"hello world!");
    let f = OpenOptions::new().write(true).open(p("f")).unwrap();
    f.set_len(5).unwrap();
    f.set_len(8).unwrap();
    drop(f);
    assert_eq!(fs::read(p("f")).unwrap(), b"hello\0\0\0");
    assert_eq!(errno_of(fs::read(p("missing"))), libc::ENOENT);

    // Directories.
    fs::create_dir(p("d")).unwrap();
    assert_eq!(errno_of(fs::create_dir(p("d"))), libc::EEXIST);
    fs::write(p("d/inner"), b"x").unwrap();
    assert_eq!(errno_of(fs::remove_dir(p("d"))), libc::ENOTEMPTY);
    assert_eq!(errno_of(fs::read_dir(p("f/x"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::remove_file(p("d"))), libc::EISDIR);
    let names: Vec<_> = fs::read_dir(p("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsStr::new("inner")]);
    assert_eq!(fs::metadata(p("d")).unwrap().nlink(), 2);

    // Rename across directories never gives EXDEV; RENAME_NOREPLACE and RENAME_EXCHANGE.
    fs::rename(p("d/inner"), p("moved")).unwrap();
    fs::write(p("other"), b"other").unwrap();
    let cwd = nix::fcntl::AT_FDCWD;
    let e = nix::fcntl::renameat2(
        cwd,
        &p("moved"),
        cwd,
        &p("other"),
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    );
    assert_eq!(e, Err(Errno::EEXIST));
    nix::fcntl::renameat2(
        cwd,
        &p("moved"),
        cwd,
        &p("other"),
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .unwrap();
    assert_eq!(fs::read(p("moved")).unwrap(), b"other");
    assert_eq!(fs::read(p("other")).unwrap(), b"x");
    assert_eq!(errno_of(fs::rename(p("d"), p("d/sub"))), libc::EINVAL);

    // Links, symlinks, special files, non-UTF-8 names.
    fs::hard_link(p("other"), p("d/hard")).unwrap();
    assert_eq!(fs::metadata(p("other")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(p("other")).unwrap().ino(),
        fs::metadata(p("d/hard")).unwrap().ino()
    );
    std::os::unix::fs::symlink("../t\u{e9}rget", p("link")).unwrap();
    assert_eq!(
        fs::read_link(p("link")).unwrap(),
        Path::new("../t\u{e9}rget")
    );
    assert!(
        fs::symlink_metadata(p("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(
        &p("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    mknod(
        &p("chr"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .unwrap();
    mknod(
        &p("blk"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(8, 1),
    )
    .unwrap();
    mknod(
        &p("sock"),
        SFlag::S_IFSOCK,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(p("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        fs::symlink_metadata(p("chr")).unwrap().rdev(),
        makedev(1, 3)
    );
    assert!(
        fs::symlink_metadata(p("blk"))
            .unwrap()
            .file_type()
            .is_block_device()
    );
    assert!(
        fs::symlink_metadata(p("sock"))
            .unwrap()
            .file_type()
            .is_socket()
    );
    let odd = m.mnt.join(OsStr::from_bytes(b"caf\xe9\xff"));
    fs::write(&odd, b"bytes").unwrap();
    let listed: Vec<Vec<u8>> = fs::read_dir(&m.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert!(listed.contains(&b"caf\xe9\xff".to_vec()));

    // Attributes: chmod, chown, times with now and omit.
    fs::set_permissions(p("f"), fs::Permissions::from_mode(0o4750)).unwrap();
    assert_eq!(fs::metadata(p("f")).unwrap().mode() & 0o7777, 0o4750);
    std::os::unix::fs::chown(p("f"), Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(p("f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    assert_eq!(md.mode() & 0o4000, 0, "chown clears setuid");
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(1_000_000_000, 123_456_789);
    utimensat(
        cwd,
        &p("f"),
        &t,
        &TimeSpec::UTIME_OMIT,
        UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    let md = fs::metadata(p("f")).unwrap();
    assert_eq!((md.atime(), md.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_ne!(md.mtime(), 1_000_000_000);
    utimensat(
        cwd,
        &p("f"),
        &TimeSpec::UTIME_OMIT,
        &t,
        UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    let md = fs::metadata(p("f")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_000_000_000, 123_456_789));
    utimensat(
        cwd,
        &p("f"),
        &TimeSpec::UTIME_NOW,
        &TimeSpec::UTIME_OMIT,
        UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    assert!(fs::metadata(p("f")).unwrap().atime() > 1_000_000_000);

    // Extended attributes: binary values, flags, namespaces.
    xattr::set(p("f"), "user.bin", &[0, 1, 255, 0]).unwrap();
    xattr::set(p("f"), "trusted.t", b"tv").unwrap();
    assert_eq!(
        xattr::get(p("f"), "user.bin").unwrap(),
        Some(vec![0, 1, 255, 0])
    );
    let names: Vec<_> = xattr::list(p("f")).unwrap().collect();
    assert!(names.contains(&OsStr::new("user.bin").to_owned()));
    assert!(names.contains(&OsStr::new("trusted.t").to_owned()));
    xattr::remove(p("f"), "user.bin").unwrap();
    assert_eq!(xattr::get(p("f"), "user.bin").unwrap(), None);

    // fallocate, SEEK_DATA / SEEK_HOLE, statfs, access.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(p("moved"))
        .unwrap();
    use nix::fcntl::{FallocateFlags, fallocate};
    fallocate(&f, FallocateFlags::empty(), 0, 3 << 20).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 3 << 20);
    fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 5 << 20).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 3 << 20);
    let punch = fallocate(
        &f,
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        0,
        4096,
    );
    assert_eq!(punch, Err(Errno::EOPNOTSUPP));
    drop(f);
    let mut sparse = File::create(p("sparse")).unwrap();
    sparse.seek(SeekFrom::Start(8 << 20)).unwrap();
    sparse.write_all(b"tail").unwrap();
    sparse.sync_all().unwrap();
    use nix::unistd::{Whence, lseek};
    assert_eq!(lseek(&sparse, 0, Whence::SeekData).unwrap(), 8 << 20);
    assert_eq!(lseek(&sparse, 0, Whence::SeekHole).unwrap(), 0);
    drop(sparse);
    let st = nix::sys::statvfs::statvfs(&m.mnt).unwrap();
    assert!(st.blocks() > 0 && st.name_max() == 255);
    assert!(nix::unistd::access(&p("f"), nix::unistd::AccessFlags::R_OK).is_ok());

    // Unlink and rmdir.
    fs::remove_file(p("d/hard")).unwrap();
    assert_eq!(fs::metadata(p("other")).unwrap().nlink(), 1);
    fs::remove_dir(p("d")).unwrap();
    assert_eq!(errno_of(fs::metadata(p("d"))), libc::ENOENT);
}

#[test]
fn mount_permissions_for_an_unprivileged_user() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    let mnt = m.mnt.display().to_string();
    fs::set_permissions(&m.mnt, fs::Permissions::from_mode(0o755)).unwrap();
    // Mode bits.
    fs::write(m.path("secret"), b"s").unwrap();
    fs::set_permissions(m.path("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, err) = as_nobody(&format!("cat {mnt}/secret"));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    let (ok, err) = as_nobody(&format!("touch {mnt}/new"));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    // Sticky directory: nobody may not delete root's file, but may delete its own.
    fs::create_dir(m.path("tmp")).unwrap();
    fs::set_permissions(m.path("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(m.path("tmp/roots"), b"r").unwrap();
    let (ok, err) = as_nobody(&format!("rm -f {mnt}/tmp/roots"));
    assert!(!ok && err.contains("Operation not permitted"), "{err}");
    let (ok, err) = as_nobody(&format!("echo mine > {mnt}/tmp/mine && rm {mnt}/tmp/mine"));
    assert!(ok, "{err}");
    // ACL grant: mode 0600 denies "other", a named-user entry lets 65534 read.
    fs::write(m.path("acl"), b"granted").unwrap();
    fs::set_permissions(m.path("acl"), fs::Permissions::from_mode(0o600)).unwrap();
    let grant = crate::common::acl_xattr(&[
        (0x01, 6, u32::MAX),
        (0x02, 4, 65534),
        (0x04, 0, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ]);
    xattr::set(m.path("acl"), "system.posix_acl_access", &grant).unwrap();
    let (ok, err) = as_nobody(&format!("cat {mnt}/acl"));
    assert!(ok, "ACL grants read: {err}");
    let (ok, _) = as_nobody(&format!("echo x >> {mnt}/acl"));
    assert!(!ok, "ACL grants no write");
    // ACL deny: others may read by mode, but a named-user entry with no rights denies.
    fs::write(m.path("deny"), b"d").unwrap();
    fs::set_permissions(m.path("deny"), fs::Permissions::from_mode(0o644)).unwrap();
    let deny = crate::common::acl_xattr(&[
        (0x01, 6, u32::MAX),
        (0x02, 0, 65534),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 4, u32::MAX),
    ]);
    xattr::set(m.path("deny"), "system.posix_acl_access", &deny).unwrap();
    let (ok, _) = as_nobody(&format!("cat {mnt}/deny"));
    assert!(!ok, "ACL denies the named user");
    // setuid is cleared when an unprivileged user writes.
    fs::write(m.path("suid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(m.path("suid"), fs::Permissions::from_mode(0o4777)).unwrap();
    let (ok, err) = as_nobody(&format!("echo more >> {mnt}/suid"));
    assert!(ok, "{err}");
    assert_eq!(fs::metadata(m.path("suid")).unwrap().mode() & 0o7777, 0o777);
}

/// A `security.capability` value (revision 2, effective, CAP_NET_RAW permitted), as
/// setcap(8) writes it.
const CAP_NET_RAW_EP: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// File capabilities go as Linux drops them: on any write (an unprivileged writer's
/// included, which the kernel sends on as a removexattr in that user's name), truncate
/// and chown; an unprivileged removexattr(2) of them stays refused.
#[test]
fn mount_writes_truncates_and_chowns_drop_file_capabilities() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    let mnt = m.mnt.display().to_string();
    let file = m.path("prog");
    let has_cap = || xattr::get(&file, "security.capability").unwrap().is_some();
    let set_cap = || xattr::set(&file, "security.capability", &CAP_NET_RAW_EP).unwrap();
    fs::write(&file, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o6777)).unwrap();
    set_cap();
    assert!(has_cap());
    let (ok, _) = as_nobody(&format!(
        "python3 -c 'import os; os.removexattr(\"{mnt}/prog\", \"security.capability\")'"
    ));
    assert!(!ok, "an unprivileged removexattr is refused");
    assert!(has_cap());
    let (ok, err) = as_nobody(&format!("echo more >> {mnt}/prog"));
    assert!(ok, "an unprivileged write succeeds: {err}");
    assert!(!has_cap(), "and drops the capability");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o777);
    set_cap();
    OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"root too\n")
        .unwrap();
    assert!(!has_cap(), "root's write drops it too");
    set_cap();
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(3)
        .unwrap();
    assert!(!has_cap(), "truncate drops it");
    set_cap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    assert!(!has_cap(), "chown drops it");
}

const FSX: &str = include_str!("fsx.py");

#[test]
fn mount_fsx_random_operations_with_compression_and_encryption() {
    require_fuse!();
    let spec = Spec {
        disks: 8,
        compression: true,
        encryption: true,
        stripe_bytes: 64 << 10,
        ..Spec::default()
    };
    let mut m = Mounted::new(&spec);
    let file = m.path("fsx.data");
    let model_dir = tempfile::tempdir().unwrap();
    let model = model_dir.path().join("model");
    let out = python(FSX, &[&file, &model, Path::new("3000"), Path::new("1")]);
    assert!(out.contains("fsx: ok"), "{out}");
    // Degraded: two of the eight disks gone; old data reads through parity, new writes
    // still find six disks.
    m.unmount();
    fs::remove_dir_all(&m.tv.disks[0]).unwrap();
    fs::remove_dir_all(&m.tv.disks[5]).unwrap();
    m.mount();
    let out = python(FSX, &[&file, &model, Path::new("2000"), Path::new("2")]);
    assert!(out.contains("fsx: ok"), "{out}");
}

/// Disks that fill up under the mount: the writes are taken, fsync and close report
/// ENOSPC, the mount stays usable, deleting frees the space for new data, and the volume
/// checks clean.
#[test]
fn mount_full_disks_report_enospc_and_recover_after_a_delete() {
    require_fuse!();
    let disks = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = crate::common::Tmpfs::mount(disks.path(), "48m") else {
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        return;
    };
    let tv = crate::common::make_in(&Spec::default(), Some(disks.path()));
    let mut m = Mounted::with_options(tv, &["allow_other"]);
    let data = pattern(64 << 20, 3);
    let mut f = File::create(m.path("big")).unwrap();
    let stored = f.write_all(&data).and_then(|()| f.sync_all());
    let err = stored.expect_err("64 MiB cannot fit on 48 MiB of disks");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    drop(f);
    fs::remove_file(m.path("big")).unwrap();
    // The kernel sends the release of the closed file after close(2) returns, so the
    // unlink may find it still open: it is then freed when the release arrives, at the
    // next commit. fsync of the directory commits; repeat until the space shows as free
    // (a bounded wait: the release is in flight, not lost).
    let free_bytes = |m: &Mounted| {
        let st = nix::sys::statvfs::statvfs(&m.mnt).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        File::open(&m.mnt).unwrap().sync_all().unwrap();
        if free_bytes(&m) >= 16 << 20 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let small = pattern(8 << 20, 4);
    let mut f = File::create(m.path("small")).unwrap();
    f.write_all(&small).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read(m.path("small")).unwrap(), small);
    m.unmount();
    let run = crate::fsck::fsck(&m.tv, &[]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn mount_persistence_across_remount_and_kill9() {
    require_fuse!();
    let mut m = Mounted::new(&Spec::default());
    let data = pattern(3 << 20, 77);
    let mut f = File::create(m.path("durable")).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.remount();
    assert_eq!(fs::read(m.path("durable")).unwrap(), data);
    // fsync, then kill -9: the data must be there after remounting.
    let more = pattern(1 << 20, 78);
    let mut f = File::create(m.path("after-kill")).unwrap();
    f.write_all(&more).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.kill9();
    m.mount();
    assert_eq!(fs::read(m.path("after-kill")).unwrap(), more);
    assert_eq!(fs::read(m.path("durable")).unwrap(), data);
}

#[test]
fn mount_semantics_other_filesystems_got_wrong() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    // Rename over a file a reader holds open: the reader keeps the old bytes.
    fs::write(m.path("target"), b"old contents").unwrap();
    fs::write(m.path("incoming"), b"new contents").unwrap();
    let mut reader = File::open(m.path("target")).unwrap();
    fs::rename(m.path("incoming"), m.path("target")).unwrap();
    let mut old = String::new();
    reader.read_to_string(&mut old).unwrap();
    assert_eq!(old, "old contents");
    assert_eq!(fs::read(m.path("target")).unwrap(), b"new contents");
    // A write through one link shows at once in the other name's size and mtime.
    fs::write(m.path("a"), b"1").unwrap();
    fs::hard_link(m.path("a"), m.path("b")).unwrap();
    let before = fs::metadata(m.path("b")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut w = OpenOptions::new().append(true).open(m.path("a")).unwrap();
    w.write_all(b"2345").unwrap();
    drop(w);
    let after = fs::metadata(m.path("b")).unwrap();
    assert_eq!(after.len(), 5);
    assert!(after.mtime_nsec() != before.mtime_nsec() || after.mtime() != before.mtime());
    assert_eq!(after.nlink(), 2);
    // Unlinked while open: read, write and fstat through the descriptor.
    fs::write(m.path("ghost"), b"boo").unwrap();
    let mut g = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path("ghost"))
        .unwrap();
    fs::remove_file(m.path("ghost")).unwrap();
    assert!(!m.path("ghost").exists());
    g.write_all(b"!!!").unwrap();
    g.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    g.read_to_string(&mut s).unwrap();
    assert_eq!(s, "!!!");
    assert_eq!(g.metadata().unwrap().nlink(), 0);
    drop(g);
    // O_DIRECT is accepted.
    let mut d = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(m.path("direct"))
        .unwrap();
    d.write_all(&vec![7u8; 1 << 16]).unwrap();
    drop(d);
    assert_eq!(fs::read(m.path("direct")).unwrap(), vec![7u8; 1 << 16]);
}

#[test]
fn mount_sqlite_default_and_wal() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    for mode in ["delete", "wal"] {
        let db = m.path(&format!("test-{mode}.db"));
        let out = python(
            r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("pragma journal_mode=" + sys.argv[2])
db.execute("create table t (id integer primary key, v text)")
for i in range(3000):
    db.execute("insert into t (v) values (?)", ("x" * (i % 300),))
    if i % 500 == 0:
        db.commit()
db.commit()
db.execute("update t set v = v || 'y' where id % 7 = 0")
db.execute("delete from t where id % 11 = 0")
db.commit()
print(db.execute("pragma integrity_check").fetchone()[0])
print(db.execute("select count(*) from t").fetchone()[0])
db.close()
"#,
            &[&db, Path::new(mode)],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines, vec!["ok", "2728"], "{mode}");
    }
}

#[test]
fn mount_real_workloads_git_tar_cc() {
    require_fuse!();
    let m = Mounted::new(&Spec {
        compression: true,
        ..Spec::default()
    });
    let repo = m.path("repo");
    fs::create_dir(&repo).unwrap();
    for i in 0..300 {
        let dir = repo.join(format!("d{}", i % 10));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(i % 50 + 1),
        )
        .unwrap();
    }
    let git = "git -c user.name=t -c user.email=t@t -c init.defaultBranch=main";
    sh(
        &format!(
            "{git} init -q . && {git} add -A && {git} commit -qm initial && {git} fsck --full --strict"
        ),
        &repo,
    );
    sh(
        &format!(
            "echo change >> d1/f1.txt && {git} commit -qam second && {git} gc -q && {git} fsck --full"
        ),
        &repo,
    );
    // tar round trip.
    sh(
        "tar -cf ../repo.tar . && mkdir ../untar && tar -xf ../repo.tar -C ../untar && tar -cf ../again.tar -C ../untar . ",
        &repo,
    );
    sh("diff -r repo untar", &m.mnt);
    let sums = sh("sha256sum repo.tar again.tar | cut -d' ' -f1", &m.mnt);
    let sums: Vec<&str> = sums.lines().collect();
    assert_eq!(sums.len(), 2);
    // Build and run a small C program.
    fs::write(
        m.path("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"built on argosfs\");return 0;}\n",
    )
    .unwrap();
    sh("cc -O2 -o hello hello.c", &m.mnt);
    assert_eq!(sh("./hello", &m.mnt), "built on argosfs\n");
}

#[test]
fn mount_refuses_a_second_mount_and_stops_cleanly_on_sigterm() {
    require_fuse!();
    let mut m = Mounted::new(&Spec::default());
    fs::write(m.path("f"), b"data").unwrap();
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_argosfs-mount"))
        .arg(&m.tv.root)
        .arg(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already mounted"), "{err}");
    let status = m.terminate();
    assert!(status.success(), "{status}");
    assert!(!m.is_mounted());
    // A clean shutdown committed everything: nothing left to replay.
    let vol = m.tv.open();
    assert!(vol.open_report().torn_tail.is_none());
    let c = crate::common::root();
    let f = vol.lookup(&c, argosfs::types::InodeId::ROOT, b"f").unwrap();
    assert_eq!(crate::common::read_all(&vol, f.ino).unwrap(), b"data");
}

#[test]
fn mount_helper_and_background_launch() {
    require_fuse!();
    let tv = crate::common::make(&Spec::default());
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    // mount(8) runs /sbin/mount.TYPE; a link named mount.argosfs selects helper mode.
    let helper = dir.path().join("mount.argosfs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_argosfs-mount"), &helper).unwrap();
    let status = std::process::Command::new(&helper)
        .arg(&tv.root)
        .arg(&mnt)
        .args(["-o", "rw,defaults,nofail,dev,suid"])
        .status()
        .unwrap();
    assert!(status.success());
    let guard = UmountGuard(mnt.clone());
    let line = proc_mounts_line(&mnt);
    assert!(
        !line.contains("nosuid") && !line.contains("nodev"),
        "{line}"
    );
    assert_eq!(
        source_and_type(&line),
        (tv.root.to_str().unwrap(), "fuse.argosfs")
    );
    fs::write(mnt.join("x"), b"y").unwrap();
    drop(guard);
    // The real mount(8) through /sbin/mount.argosfs, when we may install the link.
    let system_helper = Path::new("/sbin/mount.argosfs");
    if !system_helper.exists()
        && std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_argosfs-mount"), system_helper).is_ok()
    {
        let status = std::process::Command::new("mount")
            .args(["-t", "argosfs"])
            .arg(&tv.root)
            .arg(&mnt)
            .status()
            .unwrap();
        let _ = fs::remove_file(system_helper);
        assert!(status.success());
        let _guard = UmountGuard(mnt.clone());
        assert_eq!(fs::read(mnt.join("x")).unwrap(), b"y");
        let line = proc_mounts_line(&mnt);
        assert_eq!(
            source_and_type(&line),
            (tv.root.to_str().unwrap(), "fuse.argosfs")
        );
    }
}

/// Issue 10: the mount reads as type fuse.argosfs, not plain fuse, in /proc/mounts (which
/// df -T and findmnt show), with ROOT or the fsname= option as its source.
#[test]
fn issue_10_mount_type_is_fuse_argosfs_with_root_as_source() {
    require_fuse!();
    let m = Mounted::new(&Spec::default());
    let line = proc_mounts_line(&m.mnt);
    assert_eq!(
        source_and_type(&line),
        (m.tv.root.to_str().unwrap(), "fuse.argosfs")
    );
    let named = Mounted::with_options(
        crate::common::make(&Spec::default()),
        &["allow_other", "fsname=archive"],
    );
    let line = proc_mounts_line(&named.mnt);
    assert_eq!(source_and_type(&line), ("archive", "fuse.argosfs"));
}

/// The newest line of /proc/mounts for the mount point `mnt`.
fn proc_mounts_line(mnt: &Path) -> String {
    fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(1) == mnt.to_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{} is not in /proc/mounts", mnt.display()))
}

/// The source and file system type fields of a /proc/mounts line.
fn source_and_type(line: &str) -> (&str, &str) {
    let mut fields = line.split(' ');
    let source = fields.next().unwrap_or_default();
    let fs_type = fields.nth(1).unwrap_or_default();
    (source, fs_type)
}

/// Unmounts a background mount on drop (waiting until the daemon let go of the volume).
struct UmountGuard(std::path::PathBuf);

impl Drop for UmountGuard {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::process::Command::new("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The daemon exits after the unmount; give it a moment to release the lock.
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn mount_a_long_read_does_not_stall_metadata_requests() {
    require_fuse!();
    let spec = Spec {
        encryption: true,
        compression: true,
        ..Spec::default()
    };
    let mut m = Mounted::new(&spec);
    let big = m.path("big");
    let mut f = File::create(&big).unwrap();
    let chunk = pattern(1 << 20, 5);
    for _ in 0..192 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    m.remount(); // cold page cache: the reader goes to the daemon
    fs::remove_dir_all(&m.tv.disks[0]).unwrap(); // and decodes through parity
    m.remount();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let reader = std::thread::spawn(move || {
        let mut total = 0;
        for _ in 0..3 {
            let mut f = File::open(&big).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
        }
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        total
    });
    // While the reader streams, stats and directory listings keep being answered.
    std::thread::sleep(Duration::from_millis(50));
    let mut answered_during_read = 0;
    for i in 0..200 {
        fs::write(m.path(&format!("small{i}")), b"s").unwrap();
        fs::metadata(m.path(&format!("small{i}"))).unwrap();
        fs::read_dir(&m.mnt).unwrap().count();
        if !done.load(std::sync::atomic::Ordering::SeqCst) {
            answered_during_read += 1;
        }
    }
    let total = reader.join().unwrap();
    assert_eq!(total, (3 * 192) << 20);
    assert!(
        answered_during_read > 0,
        "metadata requests were answered while the read ran"
    );
}

#[test]
fn mount_backing_store_keeps_file_contents_from_other_users() {
    require_fuse!();
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    for compression in [false, true] {
        let tv = crate::common::make(&Spec {
            compression,
            ..Spec::default()
        });
        let source = tempfile::tempdir().unwrap();
        // Random hex text, which zstd does not turn into anything grep could not find
        // as it stands (the uncompressed volume's shards hold it verbatim).
        let secret = format!(
            "argosfs-secret-{}",
            hex(&pattern(16, 7 + compression as u64))
        );
        let mut small = secret.clone().into_bytes();
        small.resize(100, b'.'); // inline: kept in the metadata
        let mut big = hex(&pattern(150 << 10, 9)).into_bytes(); // 300 KiB: several stripes
        big[1000..1000 + secret.len()].copy_from_slice(secret.as_bytes());
        // The tree is imported, as a root file system would be.
        for (name, data) in [("inline", &small), ("striped", &big)] {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(source.path().join(name))
                .unwrap();
            f.write_all(data).unwrap();
        }
        fs::write(source.path().join("public"), b"anyone may read this").unwrap();
        fs::set_permissions(
            source.path().join("public"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        crate::common::run_ok(
            std::process::Command::new(env!("CARGO_BIN_EXE_argosfs-import"))
                .arg(&tv.root)
                .arg(source.path()),
        );
        let m = Mounted::with_options(tv, &["allow_other"]);
        // Only the store's own modes may stand between nobody and its files: the test's
        // temporary directories are opened up, whatever the umask made them.
        for dir in [m.tv.dir.path(), m.mnt.parent().unwrap(), m.mnt.as_path()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut store = vec![m.tv.root.display().to_string()];
        store.extend(m.tv.disks.iter().map(|d| d.display().to_string()));
        let store = store.join(" ");
        let mnt = m.mnt.display();

        // Root finds the secret in the store: the metadata holds the inline file, and the
        // uncompressed volume's shards the striped one.
        let found = sh(&format!("grep -r -a -l {secret} {store}"), Path::new("/"));
        assert!(found.contains("/meta/"), "{found}");
        if !compression {
            assert!(found.contains("/store/seg."), "{found}");
        }
        // Nobody reaches the directory the store is in, and the mount.
        let (ok, out, err) = as_nobody_output(&format!("ls {}", m.tv.dir.path().display()));
        assert!(ok && out.contains("root") && out.contains("disk0"), "{err}");
        let (ok, out, err) = as_nobody_output(&format!("cat {mnt}/public"));
        assert!(ok && out == "anyone may read this", "{err}");
        // But nothing in the store: no file, no directory is readable, so no byte of
        // either file, compressed or not, and grep finds nothing.
        let (ok, out, err) = as_nobody_output(&format!("find {store} -readable"));
        assert!(out.is_empty(), "readable by nobody: {out}");
        assert!(!ok && err.contains("Permission denied"), "{err}");
        let (ok, out, err) = as_nobody_output(&format!("grep -r -a -l {secret} {store}"));
        assert!(!ok && out.is_empty(), "{out}{err}");
        // Nor through the mount, where the files are 0600.
        for name in ["inline", "striped"] {
            let (ok, out, err) = as_nobody_output(&format!("cat {mnt}/{name}"));
            assert!(!ok && out.is_empty(), "{name}: {out}");
            assert!(err.contains("Permission denied"), "{name}: {err}");
        }
    }
}

/// Issue 10: a disk vanishes under a mounted 4+2 volume: writes go on (degraded), and
/// after the disk is replaced and healed, any two other disks may go.
#[test]
fn issue_10_mount_writes_go_on_when_a_disk_is_lost_and_heal_restores_redundancy() {
    require_fuse!();
    let mut m = Mounted::new(&Spec::default());
    let before = pattern(600 << 10, 51);
    fs::write(m.path("before"), &before).unwrap();
    File::open(m.path("before")).unwrap().sync_all().unwrap();
    fs::remove_dir_all(&m.tv.disks[3]).unwrap();
    let during = pattern(900 << 10, 52);
    let mut f = File::create(m.path("during")).unwrap();
    f.write_all(&during).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read(m.path("during")).unwrap(), during);
    assert_eq!(fs::read(m.path("before")).unwrap(), before);
    m.unmount();

    // min_shards above what is left: writes fail with EIO, reads go on.
    m.options.push("min_shards=6".into());
    m.mount();
    let err = fs::write(m.path("refused"), pattern(300 << 10, 53))
        .and_then(|()| File::open(m.path("refused"))?.sync_all())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(fs::read(m.path("during")).unwrap(), during);
    // Its bytes stay buffered (a clean unmount would fail to store them): let it go.
    fs::remove_file(m.path("refused")).unwrap();
    m.unmount();
    m.options.pop();

    let new = m.tv.dir.path().join("disk3-new");
    argosfs::maint::disks::replace(
        argosfs::maint::disks::Target::Offline(&m.tv.root),
        argosfs::types::DiskId(3),
        &new,
    )
    .unwrap();
    let vol = m.tv.open();
    let report = argosfs::maint::heal(
        &vol,
        argosfs::maint::Bounds::default(),
        &argosfs::maint::Job::new(),
    )
    .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(vol.degraded_stripes().is_empty());
    vol.close().unwrap();
    let run = crate::fsck::fsck(&m.tv, &[]);
    assert_eq!(run.code, 0, "{run}");
    fs::remove_dir_all(&m.tv.disks[0]).unwrap();
    fs::remove_dir_all(&m.tv.disks[5]).unwrap();
    m.mount();
    assert_eq!(fs::read(m.path("during")).unwrap(), during);
    assert_eq!(fs::read(m.path("before")).unwrap(), before);
}

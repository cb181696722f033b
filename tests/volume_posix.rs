//! POSIX rules of the Volume API, checked without a mount.

use crate::common::{self, Spec, put_file, read_all, root};
use argosfs::Error;
use argosfs::meta::FileKind;
use argosfs::types::InodeId;
use argosfs::volume::{Caller, RenameFlags, SetAttr, SetTime};

const ROOT: InodeId = InodeId::ROOT;

fn errno<T: std::fmt::Debug>(r: argosfs::Result<T>) -> i32 {
    r.expect_err("expected an error").errno()
}

#[test]
fn create_lookup_and_errors() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let f = vol.create(&c, ROOT, b"file", 0o640).unwrap();
    assert_eq!(f.kind, FileKind::Regular);
    assert_eq!(f.perm, 0o640 & !0o022);
    assert_eq!(vol.lookup(&c, ROOT, b"file").unwrap().ino, f.ino);
    assert_eq!(errno(vol.lookup(&c, ROOT, b"nope")), libc::ENOENT);
    assert_eq!(errno(vol.create(&c, ROOT, b"file", 0o644)), libc::EEXIST);
    assert_eq!(errno(vol.mkdir(&c, ROOT, b"file", 0o755)), libc::EEXIST);
    assert_eq!(errno(vol.lookup(&c, f.ino, b"x")), libc::ENOTDIR);
    assert_eq!(errno(vol.create(&c, f.ino, b"x", 0o644)), libc::ENOTDIR);
    let long = vec![b'a'; 256];
    assert_eq!(
        errno(vol.create(&c, ROOT, &long, 0o644)),
        libc::ENAMETOOLONG
    );
    assert_eq!(errno(vol.create(&c, ROOT, b"a/b", 0o644)), libc::EINVAL);
    assert_eq!(vol.lookup(&c, ROOT, b".").unwrap().ino, ROOT);
    assert_eq!(vol.lookup(&c, ROOT, b"..").unwrap().ino, ROOT);
}

#[test]
fn directories_link_counts_and_rmdir() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let d = vol.mkdir(&c, ROOT, b"d", 0o755).unwrap();
    assert_eq!(d.nlink, 2);
    assert_eq!(vol.getattr(ROOT).unwrap().nlink, 3);
    let sub = vol.mkdir(&c, d.ino, b"sub", 0o755).unwrap();
    assert_eq!(vol.getattr(d.ino).unwrap().nlink, 3);
    assert_eq!(vol.lookup(&c, sub.ino, b"..").unwrap().ino, d.ino);
    assert_eq!(errno(vol.rmdir(&c, ROOT, b"d")), libc::ENOTEMPTY);
    assert_eq!(errno(vol.unlink(&c, ROOT, b"d")), libc::EISDIR);
    vol.create(&c, d.ino, b"f", 0o644).unwrap();
    assert_eq!(errno(vol.rmdir(&c, d.ino, b"f")), libc::ENOTDIR);
    vol.unlink(&c, d.ino, b"f").unwrap();
    vol.rmdir(&c, d.ino, b"sub").unwrap();
    vol.rmdir(&c, ROOT, b"d").unwrap();
    assert_eq!(vol.getattr(ROOT).unwrap().nlink, 2);
    assert_eq!(errno(vol.getattr(d.ino)), libc::ENOENT);
}

#[test]
fn hard_links_share_data_and_count() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let ino = put_file(&vol, b"a", b"hello");
    let linked = vol.link(&c, ino, ROOT, b"b").unwrap();
    assert_eq!(linked.ino, ino);
    assert_eq!(linked.nlink, 2);
    vol.write(&c, ino, 5, b" world").unwrap();
    let via_b = vol.lookup(&c, ROOT, b"b").unwrap();
    assert_eq!(via_b.size, 11);
    assert_eq!(read_all(&vol, via_b.ino).unwrap(), b"hello world");
    vol.unlink(&c, ROOT, b"a").unwrap();
    assert_eq!(vol.getattr(ino).unwrap().nlink, 1);
    assert_eq!(read_all(&vol, ino).unwrap(), b"hello world");
    let dir = vol.mkdir(&c, ROOT, b"dir", 0o755).unwrap();
    assert_eq!(errno(vol.link(&c, dir.ino, ROOT, b"dirlink")), libc::EPERM);
    assert_eq!(errno(vol.link(&c, ino, ROOT, b"dir")), libc::EEXIST);
}

#[test]
fn every_inode_kind_and_attribute_survives_reopen() {
    let tv = common::make(&Spec::default());
    let c = root();
    let name_bytes: &[u8] = b"caf\xe9-\xff\xfe";
    let (file, fifo, chr, blk, sock, link, dir);
    {
        let vol = tv.open();
        file = put_file(&vol, name_bytes, b"contents");
        fifo = vol
            .mknod(&c, ROOT, b"fifo", libc::S_IFIFO | 0o600, 0)
            .unwrap();
        chr = vol
            .mknod(&c, ROOT, b"chr", libc::S_IFCHR | 0o620, 0x0501)
            .unwrap();
        blk = vol
            .mknod(&c, ROOT, b"blk", libc::S_IFBLK | 0o660, 0x0803)
            .unwrap();
        sock = vol
            .mknod(&c, ROOT, b"sock", libc::S_IFSOCK | 0o755, 0)
            .unwrap();
        link = vol.symlink(&c, ROOT, b"link", b"../t\xffarget").unwrap();
        dir = vol.mkdir(&c, ROOT, b"dir", 0o1777).unwrap();
        vol.setattr(
            &c,
            file,
            &SetAttr {
                perm: Some(0o4755),
                uid: Some(1000),
                gid: Some(100),
                atime: Some(SetTime::At(argosfs::meta::Timestamp {
                    sec: 1_000_000_000,
                    nsec: 123_456_789,
                })),
                mtime: Some(SetTime::At(argosfs::meta::Timestamp { sec: -5, nsec: 7 })),
                ..SetAttr::default()
            },
        )
        .unwrap();
        vol.setattr(
            &c,
            file,
            &SetAttr {
                perm: Some(0o4755),
                ..SetAttr::default()
            },
        )
        .unwrap();
        vol.setxattr(&c, file, b"user.bin", &[0, 1, 2, 255, 0], 0)
            .unwrap();
        vol.setxattr(&c, file, b"trusted.t", b"", 0).unwrap();
        vol.link(&c, file, dir.ino, b"hard").unwrap();
        vol.close().unwrap();
    }
    let vol = tv.open();
    let a = vol.lookup(&c, ROOT, name_bytes).unwrap();
    assert_eq!(a.ino, file);
    assert_eq!((a.perm, a.uid, a.gid, a.nlink), (0o4755, 1000, 100, 2));
    assert_eq!(
        a.atime,
        argosfs::meta::Timestamp {
            sec: 1_000_000_000,
            nsec: 123_456_789
        }
    );
    assert_eq!(a.mtime, argosfs::meta::Timestamp { sec: -5, nsec: 7 });
    assert_eq!(read_all(&vol, file).unwrap(), b"contents");
    assert_eq!(
        vol.getxattr(&c, file, b"user.bin").unwrap(),
        vec![0, 1, 2, 255, 0]
    );
    assert_eq!(vol.getxattr(&c, file, b"trusted.t").unwrap(), b"");
    for (attr, kind, rdev, perm) in [
        (&fifo, FileKind::Fifo, 0, 0o600),
        (&chr, FileKind::CharDevice, 0x0501, 0o620),
        (&blk, FileKind::BlockDevice, 0x0803, 0o660),
        (&sock, FileKind::Socket, 0, 0o755),
    ] {
        let got = vol.getattr(attr.ino).unwrap();
        assert_eq!((got.kind, got.rdev, got.perm), (kind, rdev, perm & !0o022));
    }
    assert_eq!(vol.readlink(link.ino).unwrap(), b"../t\xffarget");
    assert_eq!(vol.getattr(link.ino).unwrap().size, 10);
    assert_eq!(vol.getattr(dir.ino).unwrap().perm, 0o1755);
    assert_eq!(vol.lookup(&c, dir.ino, b"hard").unwrap().ino, file);
    let names: Vec<Vec<u8>> = vol
        .readdir(ROOT, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&name_bytes.to_vec()));
}

#[test]
fn readdir_offsets_stay_valid_while_entries_change() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    for i in 0..50 {
        vol.create(&c, ROOT, format!("f{i:02}").as_bytes(), 0o644)
            .unwrap();
    }
    let first = vol.readdir(ROOT, 0, 12).unwrap();
    assert_eq!(first.len(), 12);
    assert_eq!(first[0].name, b".");
    assert_eq!(first[1].name, b"..");
    let resume = first.last().unwrap().next_offset;
    // Remove an entry already returned and one not yet returned; add a new one.
    vol.unlink(&c, ROOT, &first[5].name).unwrap();
    vol.unlink(&c, ROOT, b"f40").unwrap();
    vol.create(&c, ROOT, b"new", 0o644).unwrap();
    let mut seen: Vec<Vec<u8>> = first.iter().map(|e| e.name.clone()).collect();
    let mut offset = resume;
    loop {
        let batch = vol.readdir(ROOT, offset, 7).unwrap();
        if batch.is_empty() {
            break;
        }
        offset = batch.last().unwrap().next_offset;
        seen.extend(batch.into_iter().map(|e| e.name));
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no entry twice");
    assert!(!seen.contains(&b"f40".to_vec()));
    assert!(seen.contains(&b"new".to_vec()));
    assert_eq!(seen.len(), 2 + 50 - 1 + 1);
}

#[test]
fn rename_replace_noreplace_exchange_and_loops() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let a = put_file(&vol, b"a", b"AAA");
    let b = put_file(&vol, b"b", b"BBB");
    let flags = RenameFlags::default();
    let noreplace = RenameFlags {
        noreplace: true,
        ..flags
    };
    let exchange = RenameFlags {
        exchange: true,
        ..flags
    };
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"a", ROOT, b"b", noreplace)),
        libc::EEXIST
    );
    vol.rename(&c, ROOT, b"a", ROOT, b"b", exchange).unwrap();
    assert_eq!(vol.lookup(&c, ROOT, b"a").unwrap().ino, b);
    assert_eq!(vol.lookup(&c, ROOT, b"b").unwrap().ino, a);
    vol.rename(&c, ROOT, b"b", ROOT, b"a", flags).unwrap();
    assert_eq!(vol.lookup(&c, ROOT, b"a").unwrap().ino, a);
    assert_eq!(errno(vol.lookup(&c, ROOT, b"b")), libc::ENOENT);
    assert_eq!(
        errno(vol.getattr(b)),
        libc::ENOENT,
        "replaced inode is freed"
    );
    assert_eq!(read_all(&vol, a).unwrap(), b"AAA");
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"zz", ROOT, b"y", flags)),
        libc::ENOENT
    );
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"a", ROOT, b"y", exchange)),
        libc::ENOENT
    );

    let d1 = vol.mkdir(&c, ROOT, b"d1", 0o755).unwrap();
    let d2 = vol.mkdir(&c, d1.ino, b"d2", 0o755).unwrap();
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"d1", d2.ino, b"x", flags)),
        libc::EINVAL
    );
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"d1", d1.ino, b"x", flags)),
        libc::EINVAL
    );
    assert_eq!(
        errno(vol.rename(&c, ROOT, b"a", ROOT, b"d1", flags)),
        libc::EISDIR
    );
    assert_eq!(
        errno(vol.rename(&c, d1.ino, b"d2", ROOT, b"a", flags)),
        libc::ENOTDIR
    );
    let e = vol.mkdir(&c, ROOT, b"e", 0o755).unwrap();
    vol.create(&c, e.ino, b"inside", 0o644).unwrap();
    assert_eq!(
        errno(vol.rename(&c, d1.ino, b"d2", ROOT, b"e", flags)),
        libc::ENOTEMPTY
    );
    // Move d2 up to the root: link counts follow.
    vol.rename(&c, d1.ino, b"d2", ROOT, b"d2", flags).unwrap();
    assert_eq!(vol.getattr(d1.ino).unwrap().nlink, 2);
    assert_eq!(vol.lookup(&c, d2.ino, b"..").unwrap().ino, ROOT);
    // Replace an empty directory with a directory.
    vol.rename(&c, ROOT, b"d2", ROOT, b"d1", flags).unwrap();
    assert_eq!(errno(vol.getattr(d1.ino)), libc::ENOENT);
    assert_eq!(vol.getattr(ROOT).unwrap().nlink, 2 + 2);
    // Exchange a file with a directory across parents.
    vol.rename(&c, ROOT, b"a", e.ino, b"inside", exchange)
        .unwrap();
    assert_eq!(vol.lookup(&c, e.ino, b"inside").unwrap().ino, a);
    assert_eq!(vol.lookup(&c, ROOT, b"a").unwrap().kind, FileKind::Regular);
}

#[test]
fn unlinked_open_file_lives_until_release() {
    let tv = common::make(&Spec::default());
    let c = root();
    let ino;
    {
        let vol = tv.open();
        ino = put_file(&vol, b"f", &common::pattern(200_000, 1));
        vol.open_file(&c, ino, libc::O_RDWR).unwrap();
        vol.unlink(&c, ROOT, b"f").unwrap();
        assert_eq!(errno(vol.lookup(&c, ROOT, b"f")), libc::ENOENT);
        assert_eq!(vol.getattr(ino).unwrap().nlink, 0);
        assert_eq!(read_all(&vol, ino).unwrap(), common::pattern(200_000, 1));
        vol.write(&c, ino, 0, b"still writable").unwrap();
        vol.fsync(ino).unwrap();
        // Crash with the handle open: the orphan must be freed at the next open.
        drop(vol);
    }
    let vol = tv.open();
    assert_eq!(errno(vol.getattr(ino)), libc::ENOENT);
    let shards: usize = (0..6).map(|i| tv.shard_files(i).len()).sum();
    vol.commit().unwrap();
    let after: usize = (0..6).map(|i| tv.shard_files(i).len()).sum();
    assert_eq!(after, 0, "orphan's shards deleted (had {shards})");

    let ino = put_file(&vol, b"g", b"data");
    vol.open_file(&c, ino, libc::O_RDONLY).unwrap();
    vol.unlink(&c, ROOT, b"g").unwrap();
    assert_eq!(read_all(&vol, ino).unwrap(), b"data");
    vol.release_file(ino).unwrap();
    assert_eq!(errno(vol.getattr(ino)), libc::ENOENT);
}

#[test]
fn permissions_for_unprivileged_callers() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let r = root();
    let alice = Caller::new(1000, 1000);
    let bob = Caller::new(1001, 1001);
    let tmp = vol.mkdir(&r, ROOT, b"tmp", 0o1777).unwrap();
    vol.setattr(
        &r,
        tmp.ino,
        &SetAttr {
            perm: Some(0o1777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let f = vol.create(&alice, tmp.ino, b"alice", 0o600).unwrap();
    assert_eq!(f.uid, 1000);
    assert_eq!(
        errno(vol.open_file(&bob, f.ino, libc::O_RDONLY)),
        libc::EACCES
    );
    assert_eq!(
        errno(vol.unlink(&bob, tmp.ino, b"alice")),
        libc::EPERM,
        "sticky dir"
    );
    assert_eq!(
        errno(vol.setattr(
            &bob,
            f.ino,
            &SetAttr {
                perm: Some(0o777),
                ..SetAttr::default()
            }
        )),
        libc::EPERM
    );
    assert_eq!(
        errno(vol.setattr(
            &alice,
            f.ino,
            &SetAttr {
                uid: Some(1001),
                ..SetAttr::default()
            }
        )),
        libc::EPERM
    );
    // A private directory cannot be searched.
    let private = vol.mkdir(&alice, tmp.ino, b"private", 0o700).unwrap();
    assert_eq!(errno(vol.lookup(&bob, private.ino, b"x")), libc::EACCES);
    assert_eq!(
        errno(vol.create(&bob, private.ino, b"x", 0o644)),
        libc::EACCES
    );
    // setuid is cleared when someone other than root writes.
    let s = vol.create(&alice, tmp.ino, b"suid", 0o755).unwrap();
    vol.setattr(
        &alice,
        s.ino,
        &SetAttr {
            perm: Some(0o4755),
            ..SetAttr::default()
        },
    )
    .unwrap();
    vol.open_file(&alice, s.ino, libc::O_WRONLY).unwrap();
    vol.write(&alice, s.ino, 0, b"x").unwrap();
    assert_eq!(vol.getattr(s.ino).unwrap().perm, 0o755);
    // An ACL grants bob read access the mode bits deny.
    let acl = crate::common::acl_xattr(&[
        (0x01, 6, u32::MAX),
        (0x02, 4, 1001),
        (0x04, 0, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ]);
    vol.setxattr(&alice, f.ino, b"system.posix_acl_access", &acl, 0)
        .unwrap();
    assert_eq!(vol.getattr(f.ino).unwrap().perm, 0o640);
    vol.open_file(&bob, f.ino, libc::O_RDONLY).unwrap();
    assert_eq!(
        errno(vol.open_file(&bob, f.ino, libc::O_WRONLY)),
        libc::EACCES
    );
    assert_eq!(
        errno(vol.setxattr(&bob, f.ino, b"system.posix_acl_access", &acl, 0)),
        libc::EPERM
    );
    // A default ACL is inherited.
    vol.setxattr(&alice, private.ino, b"system.posix_acl_default", &acl, 0)
        .unwrap();
    let child = vol.create(&alice, private.ino, b"child", 0o666).unwrap();
    assert_eq!(
        vol.getxattr(&alice, child.ino, b"system.posix_acl_access")
            .unwrap(),
        acl
    );
}

#[test]
fn xattr_flags_and_namespaces() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let f = put_file(&vol, b"f", b"");
    assert_eq!(
        errno(vol.setxattr(&c, f, b"user.a", b"1", 2)),
        libc::ENODATA
    );
    vol.setxattr(&c, f, b"user.a", b"1", 1).unwrap();
    assert_eq!(errno(vol.setxattr(&c, f, b"user.a", b"2", 1)), libc::EEXIST);
    vol.setxattr(&c, f, b"user.a", b"2", 2).unwrap();
    assert_eq!(vol.getxattr(&c, f, b"user.a").unwrap(), b"2");
    assert_eq!(
        errno(vol.setxattr(&c, f, b"bogus.a", b"1", 0)),
        libc::EOPNOTSUPP
    );
    vol.setxattr(&c, f, b"trusted.x", b"t", 0).unwrap();
    let user = Caller::new(1000, 1000);
    assert!(
        !vol.listxattr(&user, f)
            .unwrap()
            .contains(&b"trusted.x".to_vec())
    );
    assert!(
        vol.listxattr(&c, f)
            .unwrap()
            .contains(&b"trusted.x".to_vec())
    );
    vol.removexattr(&c, f, b"user.a").unwrap();
    assert_eq!(errno(vol.getxattr(&c, f, b"user.a")), libc::ENODATA);
    assert_eq!(errno(vol.removexattr(&c, f, b"user.a")), libc::ENODATA);
}

#[test]
fn setattr_times_now_and_omit() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let f = put_file(&vol, b"f", b"x");
    let t = argosfs::meta::Timestamp {
        sec: 12345,
        nsec: 6789,
    };
    let a = vol
        .setattr(
            &c,
            f,
            &SetAttr {
                atime: Some(SetTime::At(t)),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(a.atime, t);
    let before = a.mtime;
    let b = vol
        .setattr(
            &c,
            f,
            &SetAttr {
                mtime: Some(SetTime::At(t)),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!((b.atime, b.mtime), (t, t), "atime omitted: unchanged");
    assert_ne!(before, t);
    let now = vol
        .setattr(
            &c,
            f,
            &SetAttr {
                mtime: Some(SetTime::Now),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert!(now.mtime > t);
    assert_eq!(now.atime, t);
    let other = Caller::new(1000, 1000);
    assert_eq!(
        errno(vol.setattr(
            &other,
            f,
            &SetAttr {
                mtime: Some(SetTime::At(t)),
                ..SetAttr::default()
            }
        )),
        libc::EPERM
    );
}

#[test]
fn statfs_reports_usable_capacity() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let s = vol.statfs();
    assert!(s.blocks > 0 && s.blocks_free <= s.blocks);
    assert_eq!(s.name_max, 255);
}

#[test]
fn read_only_open_refuses_writes_and_second_writer_is_locked_out() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let second = tv.open_with(tv.options());
    assert!(matches!(second, Err(Error::Locked { .. })));
    drop(vol);
    let ro = tv
        .open_with(argosfs::volume::OpenOptions {
            read_only: true,
            ..tv.options()
        })
        .unwrap();
    assert_eq!(errno(ro.create(&root(), ROOT, b"x", 0o644)), libc::EROFS);
}

#[test]
fn writes_truncates_and_chowns_drop_file_capabilities() {
    const CAP: &[u8] = b"security.capability";
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    let c = root();
    let alice = Caller::new(1000, 1000);
    let bob = Caller::new(1001, 1001);
    let f = put_file(&vol, b"prog", b"#!/bin/sh\n");
    vol.setattr(
        &c,
        f,
        &SetAttr {
            uid: Some(1000),
            gid: Some(1000),
            perm: Some(0o4755),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let set_cap = || {
        vol.setxattr(&c, f, CAP, &[1, 0, 0, 2, 0, 0x20, 0, 0], 0)
            .unwrap()
    };
    let has_cap = || vol.getxattr(&c, f, CAP).is_ok();

    set_cap();
    assert_eq!(errno(vol.setxattr(&alice, f, CAP, b"x", 0)), libc::EPERM);
    assert_eq!(
        errno(vol.removexattr(&bob, f, CAP)),
        libc::EPERM,
        "neither owner nor writer"
    );
    vol.removexattr(&alice, f, CAP).unwrap(); // the owner (the kernel's chown path)
    assert!(!has_cap());

    set_cap();
    vol.write(&alice, f, 0, b"#").unwrap();
    assert!(!has_cap(), "a write drops it");
    assert_eq!(
        vol.getattr(f).unwrap().perm & 0o7777,
        0o755,
        "and the set-id bit"
    );

    set_cap();
    vol.write(&c, f, 0, b"#").unwrap();
    assert!(!has_cap(), "root's write too");

    set_cap();
    vol.setattr(
        &alice,
        f,
        &SetAttr {
            size: Some(2),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert!(!has_cap(), "a truncate drops it");

    set_cap();
    vol.setattr(
        &c,
        f,
        &SetAttr {
            gid: Some(1000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert!(!has_cap(), "a chown drops it");

    // A directory keeps its xattrs across chown.
    let d = vol.mkdir(&c, InodeId::ROOT, b"dir", 0o755).unwrap().ino;
    vol.setxattr(&c, d, CAP, b"v", 0).unwrap();
    vol.setattr(
        &c,
        d,
        &SetAttr {
            uid: Some(1000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert!(vol.getxattr(&c, d, CAP).is_ok());
}

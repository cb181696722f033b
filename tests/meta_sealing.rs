//! Encrypted volumes seal their metadata at rest (issue 15): names, symlink targets,
//! xattr names and values, ACLs and inline data appear nowhere in the backing store;
//! a flipped, swapped or replayed metadata record fails authentication, the volume
//! refuses to open and fsck exits 4, and nothing is ever read as other names. fsck and
//! verify-journal without the passphrase check the structure and say so.

use crate::common::{self, Spec, TestVolume, root};
use crate::mount_util::{Mounted, PASSPHRASE, require_fuse};
use argosfs::Error;
use argosfs::format::{FormatError, FormatErrorKind};
use argosfs::meta::journal::{FILE_HEADER_BYTES, JOURNAL_FILE};
use argosfs::meta::snapshot::SLOTS;
use argosfs::types::InodeId;
use argosfs::volume::{OpenOptions, Superblock, Volume};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DIR_NAME: &[u8] = b"zebra-directory-7f3a9c";
const FILE_NAME: &[u8] = b"quokka-file-name-91c2d4";
const BIG_NAME: &[u8] = b"numbat-large-file-5e0b17";
const LINK_NAME: &[u8] = b"bilby-link-3d9e20";
const LINK_TARGET: &[u8] = b"/wombat/link-target-44d1e8";
const XATTR_NAME: &[u8] = b"user.echidna-attribute-2b8e";
const XATTR_VALUE: &[u8] = b"platypus-xattr-value-6a3f01";
const INLINE_TEXT: &[u8] = b"kakapo-inline-contents-0c77aa";
/// A named-user ACL entry for this uid is part of the ACL searched for.
const ACL_UID: u32 = 0x5a17_c0de;

const FSCK: &str = env!("CARGO_BIN_EXE_argosfs-fsck");
const VERIFY: &str = env!("CARGO_BIN_EXE_argosfs-verify-journal");
const EXPORT: &str = env!("CARGO_BIN_EXE_argosfs-export");

fn acl() -> Vec<u8> {
    common::acl_xattr(&[
        (0x01, 6, u32::MAX),
        (0x02, 6, ACL_UID),
        (0x04, 4, u32::MAX),
        (0x10, 6, u32::MAX),
        (0x20, 4, u32::MAX),
    ])
}

/// Everything that must not be readable at rest, with a name for messages.
fn needles() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("directory name", DIR_NAME.to_vec()),
        ("file name", FILE_NAME.to_vec()),
        ("symlink target", LINK_TARGET.to_vec()),
        ("xattr name", XATTR_NAME.to_vec()),
        ("xattr value", XATTR_VALUE.to_vec()),
        ("ACL", acl()),
        ("inline data", INLINE_TEXT.to_vec()),
    ]
}

fn spec(encryption: bool, compression: bool) -> Spec {
    Spec {
        encryption,
        compression,
        ..Spec::default()
    }
}

/// The tree of the needles: DIR/FILE (inline-sized, with the xattr and the ACL),
/// DIR/BIG (several stripes), DIR/LINK -> TARGET.
fn populate(vol: &Volume) {
    let c = root();
    let dir = vol.mkdir(&c, InodeId::ROOT, DIR_NAME, 0o755).unwrap().ino;
    let file = vol.create(&c, dir, FILE_NAME, 0o640).unwrap().ino;
    vol.write(&c, file, 0, INLINE_TEXT).unwrap();
    vol.setxattr(&c, file, XATTR_NAME, XATTR_VALUE, 0).unwrap();
    vol.setxattr(&c, file, b"system.posix_acl_access", &acl(), 0)
        .unwrap();
    let big = vol.create(&c, dir, BIG_NAME, 0o600).unwrap().ino;
    vol.write(&c, big, 0, &common::pattern(200 << 10, 5))
        .unwrap();
    vol.symlink(&c, dir, LINK_NAME, LINK_TARGET).unwrap();
    vol.commit().unwrap();
}

/// Reads the tree back and checks every needle is there as written.
fn assert_tree(vol: &Volume) {
    let c = root();
    let dir = vol.lookup(&c, InodeId::ROOT, DIR_NAME).unwrap().ino;
    let file = vol.lookup(&c, dir, FILE_NAME).unwrap().ino;
    assert_eq!(common::read_all(vol, file).unwrap(), INLINE_TEXT);
    assert_eq!(vol.getxattr(&c, file, XATTR_NAME).unwrap(), XATTR_VALUE);
    assert_eq!(
        vol.getxattr(&c, file, b"system.posix_acl_access").unwrap(),
        acl()
    );
    let big = vol.lookup(&c, dir, BIG_NAME).unwrap().ino;
    assert_eq!(
        common::read_all(vol, big).unwrap(),
        common::pattern(200 << 10, 5)
    );
    let link = vol.lookup(&c, dir, LINK_NAME).unwrap().ino;
    assert_eq!(vol.readlink(link).unwrap(), LINK_TARGET);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

/// The needles found in any file of the volume's store (ROOT and every disk), as
/// `grep -r` as root would find them.
fn needles_at_rest(tv: &TestVolume) -> Vec<String> {
    let mut files = Vec::new();
    files_under(&tv.root, &mut files);
    for disk in &tv.disks {
        files_under(disk, &mut files);
    }
    let contents: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let bytes = fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect();
    let mut found = Vec::new();
    for (what, needle) in needles() {
        for (path, bytes) in &contents {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(format!("{what} in {}", path.display()));
            }
        }
    }
    found
}

#[test]
fn an_encrypted_volume_keeps_no_name_target_xattr_acl_or_inline_data_in_the_clear() {
    for compression in [false, true] {
        // The control: a plain volume holds every needle in the clear, so the search
        // below can find them.
        let plain = common::make(&spec(false, compression));
        let vol = plain.open();
        populate(&vol);
        vol.close().unwrap();
        let found = needles_at_rest(&plain);
        for (what, _) in needles() {
            assert!(
                found.iter().any(|f| f.starts_with(what)),
                "control: {what} not found in a plain volume: {found:?}"
            );
        }

        let tv = common::make(&spec(true, compression));
        let vol = tv.open();
        populate(&vol);
        vol.close().unwrap();
        // Now in the journal's records.
        assert_eq!(needles_at_rest(&tv), Vec::<String>::new());
        // Now in both snapshot slots too (every commit writes one).
        let vol = tv
            .open_with(OpenOptions {
                journal_limit_bytes: Some(1),
                ..tv.options()
            })
            .unwrap();
        for round in 0..2u8 {
            let c = root();
            let dir = vol.lookup(&c, InodeId::ROOT, DIR_NAME).unwrap().ino;
            vol.setxattr(&c, dir, b"user.round", &[round], 0).unwrap();
            vol.commit().unwrap();
        }
        vol.close().unwrap();
        for slot in SLOTS {
            assert!(tv.root.join("meta").join(slot).exists());
        }
        assert_eq!(needles_at_rest(&tv), Vec::<String>::new());
        let vol = tv.open();
        assert_tree(&vol);
        vol.close().unwrap();
    }
}

fn is_unauthenticated(result: argosfs::Result<Volume>) -> bool {
    matches!(
        result,
        Err(Error::Format(FormatError {
            kind: FormatErrorKind::Unauthenticated(_),
            ..
        }))
    )
}

/// The journal's records as (txid, payload).
fn journal_records(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = fs::read(path).unwrap();
    let mut at = FILE_HEADER_BYTES as usize;
    let mut records = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let txid = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        records.push((txid, bytes[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    records
}

/// Rewrites the journal with these records behind its header, each with a correct CRC,
/// as someone who knows the format (but not the key) would.
fn write_journal(path: &Path, records: &[(u64, Vec<u8>)]) {
    let mut bytes = fs::read(path).unwrap()[..FILE_HEADER_BYTES as usize].to_vec();
    for (txid, payload) in records {
        let mut head = Vec::new();
        head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        head.extend_from_slice(&txid.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&head), payload);
        head.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(payload);
    }
    fs::write(path, bytes).unwrap();
}

/// Flips a payload byte of a snapshot file and fixes its BLAKE3 hash and CRC.
fn forge_snapshot(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let crc_at = bytes.len() - 4;
    // The first ciphertext byte: after the frame header, txid, hash and the nonce.
    bytes[72 + 24] ^= 0x01;
    let hash = blake3::hash(&bytes[72..crc_at]);
    bytes[40..72].copy_from_slice(hash.as_bytes());
    let crc = crc32c::crc32c(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

fn fsck_cli(tv: &TestVolume, args: &[&str], with_key: bool) -> (i32, String) {
    let mut cmd = Command::new(FSCK);
    cmd.arg(&tv.root)
        .args(args)
        .env_remove("ARGOSFS_PASSPHRASE");
    if with_key {
        cmd.env("ARGOSFS_PASSPHRASE", PASSPHRASE);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Damages the metadata with `tamper`, then: the volume refuses to open (read-write and
/// read-only) with an authentication error, fsck -n exits 4; with the good bytes back,
/// it opens and reads the tree.
fn assert_refused(tv: &TestVolume, what: &str, tamper: impl FnOnce(&Path)) {
    let meta = tv.root.join("meta");
    let saved: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&meta)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    tamper(&meta);
    assert!(
        is_unauthenticated(tv.open_with(tv.options())),
        "{what}: read-write open"
    );
    let read_only = OpenOptions {
        read_only: true,
        ..tv.options()
    };
    assert!(
        is_unauthenticated(tv.open_with(read_only)),
        "{what}: read-only open"
    );
    let report = common::fsck_check(tv);
    assert!(report.errors_left() > 0, "{what}: {:#?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.detail.contains("fails authentication")),
        "{what}: {:#?}",
        report.findings
    );
    let (code, text) = fsck_cli(tv, &["-n"], true);
    assert_eq!(code, 4, "{what}: {text}");
    for (path, bytes) in saved {
        fs::write(path, bytes).unwrap();
    }
    let vol = tv.open();
    assert_tree(&vol);
    vol.close().unwrap();
}

#[test]
fn flipped_swapped_or_replayed_metadata_fails_authentication() {
    let tv = common::make(&spec(true, false));
    // Both snapshot slots written, then three transactions in the journal.
    let vol = tv
        .open_with(OpenOptions {
            journal_limit_bytes: Some(1),
            ..tv.options()
        })
        .unwrap();
    populate(&vol);
    vol.close().unwrap();
    let vol = tv.open();
    assert_tree(&vol);
    let c = root();
    for name in [&b"one"[..], b"two", b"three"] {
        vol.create(&c, InodeId::ROOT, name, 0o644).unwrap();
        vol.commit().unwrap();
    }
    vol.close().unwrap();
    let journal = tv.root.join("meta").join(JOURNAL_FILE);
    assert!(journal_records(&journal).len() >= 3);

    assert_refused(&tv, "flipped record byte", |_| {
        let mut records = journal_records(&journal);
        let last = records.len() - 1;
        records[last].1[30] ^= 0x04;
        write_journal(&journal, &records);
    });
    assert_refused(&tv, "swapped records", |_| {
        let mut records = journal_records(&journal);
        let (a, b) = (records[1].1.clone(), records[2].1.clone());
        records[1].1 = b;
        records[2].1 = a;
        write_journal(&journal, &records);
    });
    assert_refused(&tv, "replayed record", |_| {
        let mut records = journal_records(&journal);
        let next = records.last().unwrap().0 + 1;
        let first = records[0].1.clone();
        records.push((next, first));
        write_journal(&journal, &records);
    });
    assert_refused(&tv, "swapped snapshot slots", |meta| {
        let (a, b) = (meta.join(SLOTS[0]), meta.join(SLOTS[1]));
        let (bytes_a, bytes_b) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, bytes_b).unwrap();
        fs::write(&b, bytes_a).unwrap();
    });
    assert_refused(&tv, "forged snapshot", |meta| {
        for slot in SLOTS {
            forge_snapshot(&meta.join(slot));
        }
    });

    // The repair path: fsck --repair rebuilds the metadata from what authenticates.
    let mut records = journal_records(&journal);
    let next = records.last().unwrap().0 + 1;
    let first = records[0].1.clone();
    records.push((next, first));
    write_journal(&journal, &records);
    let (code, text) = fsck_cli(&tv, &["--repair"], true);
    assert_eq!(code, 1, "{text}");
    let (code, text) = fsck_cli(&tv, &["-n"], true);
    assert_eq!(code, 0, "{text}");
    let vol = tv.open();
    assert_tree(&vol);
    vol.close().unwrap();
}

#[test]
fn fsck_and_verify_journal_without_the_passphrase_check_the_structure_and_say_so() {
    let tv = common::make(&spec(true, true));
    let vol = tv.open();
    populate(&vol);
    vol.close().unwrap();

    let (code, text) = fsck_cli(&tv, &["-n"], false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("structure only"), "{text}");
    let (code, text) = fsck_cli(&tv, &["-n", "--json"], false);
    assert_eq!(code, 0, "{text}");
    let summary: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .unwrap()["data"]
        .clone();
    assert_eq!(summary["checks"]["structure"], true, "{text}");
    assert_eq!(summary["checks"]["tree"], false, "{text}");
    assert!(
        summary["stats"]["shards_checked"].as_u64().unwrap() >= 6,
        "{text}"
    );
    let (code, text) = fsck_cli(&tv, &["-n"], true);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("structure only"), "{text}");
    // With the key every encrypted stripe is decrypted and its tag checked too.
    let report = common::fsck_check(&tv);
    assert!(
        report.stats.stripes_authenticated >= 4,
        "{:?}",
        report.stats
    );
    assert!(text.contains("decrypted and authenticated"), "{text}");

    // Repairs need the key; a wrong one is an operational error.
    let (code, text) = fsck_cli(&tv, &["--repair"], false);
    assert_eq!(code, 8, "{text}");
    assert!(text.contains("passphrase"), "{text}");
    let out = Command::new(FSCK)
        .arg(&tv.root)
        .arg("-n")
        .env("ARGOSFS_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));

    // A damaged shard is found without the key, repaired with it.
    let shard = tv.shard_files(0).into_iter().next().unwrap();
    let bytes = shard.read();
    let at = bytes.len() - 10;
    shard.overwrite_at(at as u64, &[bytes[at] ^ 0x10]);
    let (code, text) = fsck_cli(&tv, &["-n"], false);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("shard_corrupt"), "{text}");
    let (code, text) = fsck_cli(&tv, &["--repair"], true);
    assert_eq!(code, 1, "{text}");
    let (code, text) = fsck_cli(&tv, &["-n"], false);
    assert_eq!(code, 0, "{text}");

    // verify-journal: structure without the key, contents with it.
    let verify = |with_key: bool| {
        let mut cmd = Command::new(VERIFY);
        cmd.arg(&tv.root).env_remove("ARGOSFS_PASSPHRASE");
        if with_key {
            cmd.env("ARGOSFS_PASSPHRASE", PASSPHRASE);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = verify(false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("structure only"), "{text}");
    let (code, text) = verify(true);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("structure only"), "{text}");
}

#[test]
fn a_volume_of_the_earlier_format_is_refused_with_a_clear_message() {
    let rewrite_as_v1 = |tv: &TestVolume| {
        let path = Superblock::path(&tv.root);
        let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let fields = doc.as_object_mut().unwrap();
        fields.remove("checksum");
        fields.remove("magic");
        fields.remove("format_version");
        let bytes =
            argosfs::format::json::seal(argosfs::volume::superblock::SUPERBLOCK_MAGIC, 1, &doc);
        fs::write(&path, bytes).unwrap();
    };
    for encrypted in [true, false] {
        let tv = common::make(&spec(encrypted, false));
        rewrite_as_v1(&tv);
        match tv.open_with(tv.options()) {
            Err(e @ Error::OldFormat { found: 1, .. }) => {
                let text = e.to_string();
                assert!(text.contains("format version 1"), "{text}");
                assert!(text.contains("export"), "{text}");
            }
            Err(other) => panic!("expected OldFormat, got {other}"),
            Ok(_) => panic!("expected OldFormat, the volume opened"),
        }
        // fsck says the same, as an operational error.
        let (code, text) = fsck_cli(&tv, &["-n"], true);
        assert_eq!(code, 8, "{text}");
        assert!(text.contains("format version 1"), "{text}");
    }
}

#[test]
fn mount_an_encrypted_tree_reads_back_through_the_mount_and_export_and_stays_sealed() {
    require_fuse!();
    let mut m = Mounted::new(&spec(true, true));
    let p = |rel: &[u8]| -> PathBuf { m.mnt.join(std::ffi::OsStr::from_bytes(rel)) };
    let dir = p(DIR_NAME);
    fs::create_dir(&dir).unwrap();
    let file = dir.join(std::ffi::OsStr::from_bytes(FILE_NAME));
    fs::write(&file, INLINE_TEXT).unwrap();
    xattr::set(&file, std::ffi::OsStr::from_bytes(XATTR_NAME), XATTR_VALUE).unwrap();
    xattr::set(&file, "system.posix_acl_access", &acl()).unwrap();
    let big = dir.join(std::ffi::OsStr::from_bytes(BIG_NAME));
    fs::write(&big, common::pattern(200 << 10, 5)).unwrap();
    std::os::unix::fs::symlink(
        std::ffi::OsStr::from_bytes(LINK_TARGET),
        dir.join(std::ffi::OsStr::from_bytes(LINK_NAME)),
    )
    .unwrap();
    fs::File::open(&big).unwrap().sync_all().unwrap();
    assert_eq!(needles_at_rest(&m.tv), Vec::<String>::new());

    let check = |base: &Path| {
        let dir = base.join(std::ffi::OsStr::from_bytes(DIR_NAME));
        let file = dir.join(std::ffi::OsStr::from_bytes(FILE_NAME));
        assert_eq!(fs::read(&file).unwrap(), INLINE_TEXT);
        assert_eq!(
            xattr::get(&file, std::ffi::OsStr::from_bytes(XATTR_NAME))
                .unwrap()
                .unwrap(),
            XATTR_VALUE
        );
        assert_eq!(
            xattr::get(&file, "system.posix_acl_access")
                .unwrap()
                .unwrap(),
            acl()
        );
        assert_eq!(
            fs::read(dir.join(std::ffi::OsStr::from_bytes(BIG_NAME))).unwrap(),
            common::pattern(200 << 10, 5)
        );
        assert_eq!(
            fs::read_link(dir.join(std::ffi::OsStr::from_bytes(LINK_NAME)))
                .unwrap()
                .as_os_str()
                .as_bytes(),
            LINK_TARGET
        );
    };
    m.unmount();
    assert_eq!(needles_at_rest(&m.tv), Vec::<String>::new());
    m.mount();
    check(&m.mnt);
    m.unmount();

    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("export");
    common::run_ok(
        Command::new(EXPORT)
            .arg(&m.tv.root)
            .arg(&dest)
            .arg("--preserve-metadata")
            .env("ARGOSFS_PASSPHRASE", PASSPHRASE),
    );
    check(&dest);
}

//! argosfs-fsck and argosfs-verify-journal from the command line: a corruption matrix
//! (each case a fresh volume damaged on purpose), locking, data loss, orphan safety.

use crate::common::{self, Shard, Spec, TestVolume, pattern, put_file, read_all, root};
use argosfs::meta::journal::{JOURNAL_FILE, Journal};
use argosfs::meta::snapshot::{self, SLOTS};
use argosfs::meta::{Chunk, MetaStore, Op, StripeRef};
use argosfs::store::DirDisk;
use argosfs::store::shard::{self, ShardHeader};
use argosfs::types::{DiskId, InodeId, ShardIndex, ShardKey, StripeId, VolumeId};
use argosfs::volume::{OpenOptions, Superblock};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const FSCK: &str = env!("CARGO_BIN_EXE_argosfs-fsck");
const VERIFY: &str = env!("CARGO_BIN_EXE_argosfs-verify-journal");
const STRIPE: usize = 16 << 10;
/// Repairs in the matrix remove orphans at once.
const REPAIR: &[&str] = &["--repair", "--remove-orphans", "--orphan-grace", "0"];

pub(crate) struct Run {
    pub(crate) code: i32,
    stdout: String,
    stderr: String,
    findings: Vec<Value>,
    summary: Value,
}

impl Run {
    fn kinds(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f["severity"] == "error")
            .map(|f| f["kind"].as_str().unwrap().to_string())
            .collect()
    }

    fn has(&self, kind: &str) -> bool {
        self.kinds().iter().any(|k| k == kind)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Gives a checker the passphrase of an encrypted volume, so it checks the whole tree.
fn with_passphrase(cmd: &mut Command, tv: &TestVolume) {
    cmd.env_remove("ARGOSFS_PASSPHRASE");
    if let Some(passphrase) = &tv.passphrase {
        cmd.env(
            "ARGOSFS_PASSPHRASE",
            std::ffi::OsStr::from_bytes(passphrase),
        );
    }
}

/// Runs argosfs-fsck on `tv` with `args` and `--json`, parsed.
pub(crate) fn fsck(tv: &TestVolume, args: &[&str]) -> Run {
    let mut cmd = Command::new(FSCK);
    cmd.arg(&tv.root)
        .args(args)
        .arg("--json")
        .env_remove("RUST_LOG");
    with_passphrase(&mut cmd, tv);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut findings = Vec::new();
    let mut summary = Value::Null;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match v["type"].as_str() {
            Some("finding") => findings.push(v["data"].clone()),
            Some("summary") => summary = v["data"].clone(),
            other => panic!("unexpected line type {other:?}"),
        }
    }
    let run = Run {
        code: out.status.code().unwrap(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        findings,
        summary,
    };
    assert_eq!(run.summary["schema"], 1, "{run}");
    assert_eq!(run.summary["exit_code"], run.code, "{run}");
    run
}

fn verify_journal(tv: &TestVolume, json: bool) -> (i32, String) {
    let mut cmd = Command::new(VERIFY);
    cmd.arg(&tv.root);
    with_passphrase(&mut cmd, tv);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A file written by the fixture.
#[derive(Clone, Debug)]
struct File {
    name: Vec<u8>,
    ino: InodeId,
    data: Vec<u8>,
}

/// A fresh volume with a few files of several stripes (and one inline), each written
/// and committed on its own; with `snapshots`, every commit also writes a snapshot so
/// both slots are valid.
fn fixture(spec: Spec, snapshots: bool) -> (TestVolume, Vec<File>) {
    let tv = common::make(&Spec {
        stripe_bytes: STRIPE as u32,
        ..spec
    });
    let vol = open_with(
        &tv,
        OpenOptions {
            journal_limit_bytes: snapshots.then_some(1),
            ..tv.options()
        },
    );
    let mut files = Vec::new();
    for (i, (name, len)) in [
        (&b"a"[..], STRIPE * 3 + 5_000),
        (b"b", STRIPE * 2),
        (b"c", STRIPE + 77),
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(len, i as u64 + 1);
        let ino = put_file(&vol, name, &data);
        vol.commit().unwrap();
        files.push(File {
            name: name.to_vec(),
            ino,
            data,
        });
    }
    if !spec.encryption {
        let data = b"small enough to live in the metadata".to_vec();
        let ino = put_file(&vol, b"tiny", &data);
        files.push(File {
            name: b"tiny".to_vec(),
            ino,
            data,
        });
    }
    let dir = vol.mkdir(&root(), InodeId::ROOT, b"dir", 0o755).unwrap();
    let data = pattern(STRIPE * 2 + 1, 9);
    let attr = vol.create(&root(), dir.ino, b"nested", 0o644).unwrap();
    vol.write(&root(), attr.ino, 0, &data).unwrap();
    files.push(File {
        name: b"dir/nested".to_vec(),
        ino: attr.ino,
        data,
    });
    vol.close().unwrap();
    (tv, files)
}

fn volume_id(tv: &TestVolume) -> VolumeId {
    Superblock::load(&tv.root).unwrap().volume
}

/// The volume's metadata codec (sealed with the test passphrase when encrypted).
fn meta_codec(tv: &TestVolume) -> argosfs::meta::MetaCodec {
    Superblock::load(&tv.root)
        .unwrap()
        .keys(tv.passphrase.as_deref())
        .unwrap()
        .meta
}

fn meta_dir(tv: &TestVolume) -> PathBuf {
    tv.root.join("meta")
}

/// The live metadata, read-only.
fn table(tv: &TestVolume) -> argosfs::meta::Table {
    let (store, _) = MetaStore::open(&meta_dir(tv), meta_codec(tv), false).unwrap();
    store.table().clone()
}

/// The stripes holding a file's data (for a packed small file, its pack chunk's).
fn stripes(tv: &TestVolume, ino: InodeId) -> Vec<StripeRef> {
    let table = table(tv);
    table.chunks[&ino]
        .values()
        .filter_map(|c| match c {
            Chunk::Stripe(s) => Some(s.clone()),
            Chunk::Packed(p) => table.pack_chunk_stripe(p.chunk()).cloned(),
            Chunk::Inline(_) => None,
        })
        .collect()
}

fn disk_path(tv: &TestVolume, disk: DiskId) -> PathBuf {
    tv.disks[usize::from(disk.0)].clone()
}

fn key(stripe: &StripeRef, index: usize) -> ShardKey {
    ShardKey {
        stripe: stripe.id,
        index: ShardIndex(index as u8),
    }
}

/// Shard `index` of `stripe` where the metadata places it.
fn shard_file(tv: &TestVolume, stripe: &StripeRef, index: usize) -> Shard {
    Shard::at(
        &disk_path(tv, stripe.disk_of(index).unwrap()),
        key(stripe, index),
    )
}

fn flip_file_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn flip_byte(shard: &Shard, at: usize) {
    let bytes = shard.read();
    shard.overwrite_at(at as u64, &[bytes[at] ^ 0x5a]);
}

/// Bytes and mtimes of everything under the test directory (ROOT and the disks).
fn tree_state(tv: &TestVolume) -> BTreeMap<PathBuf, (Option<Vec<u8>>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![tv.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let path = entry.path();
            if meta.is_dir() {
                out.insert(path.clone(), (None, meta.modified().unwrap()));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, (Some(bytes), meta.modified().unwrap()));
            }
        }
    }
    out
}

fn shard_count(tv: &TestVolume) -> usize {
    (0..tv.disks.len()).map(|i| tv.shard_files(i).len()).sum()
}

/// Opens the volume. A lock held for a moment is waited for: while another test spawns
/// a program, the child holds a copy of every descriptor of this process between fork
/// and exec, the volume lock of a volume just closed included.
fn open(tv: &TestVolume) -> argosfs::volume::Volume {
    open_with(tv, tv.options())
}

fn open_with(tv: &TestVolume, options: OpenOptions) -> argosfs::volume::Volume {
    let started = std::time::Instant::now();
    loop {
        match tv.open_with(options.clone()) {
            Err(argosfs::Error::Locked { .. }) if started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

/// Every file in `files` reads back byte-identical, by inode.
fn assert_files(tv: &TestVolume, files: &[File]) {
    let vol = open(tv);
    for f in files {
        let got = read_all(&vol, f.ino)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&f.name)));
        assert!(
            got == f.data,
            "{} differs after repair",
            String::from_utf8_lossy(&f.name)
        );
    }
    vol.close().unwrap();
}

/// The matrix protocol: `fsck -n` reports `kind` and exits 4 without changing a byte;
/// the repair exits 1; a second fsck exits 0; every file in `keep` reads back.
fn matrix(tv: &TestVolume, kind: &str, keep: &[File]) -> Run {
    let before = tree_state(tv);
    let check = fsck(tv, &["-n"]);
    assert_eq!(check.code, 4, "{check}");
    assert!(check.has(kind), "{kind} not reported: {check}");
    assert!(
        check.findings.iter().all(|f| f["repaired"] == false),
        "{check}"
    );
    assert_eq!(tree_state(tv), before, "fsck -n changed the volume");
    let repair = fsck(tv, REPAIR);
    assert_eq!(repair.code, 1, "{repair}");
    assert!(repair.has(kind), "{repair}");
    assert_eq!(repair.summary["errors_left"], 0, "{repair}");
    let again = fsck(tv, &[]);
    assert_eq!(again.code, 0, "second fsck: {again}");
    assert_files(tv, keep);
    repair
}

fn specs() -> [Spec; 2] {
    [
        Spec::layout(4, 2),
        Spec {
            encryption: true,
            ..Spec::layout(4, 2)
        },
    ]
}

#[test]
fn a_clean_volume_exits_0_checked_or_repaired() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let shards = shard_count(&tv);
    let check = fsck(&tv, &["-n"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(check.kinds().is_empty(), "{check}");
    assert!(check.summary["stats"]["stripes_checked"].as_u64().unwrap() >= 10);
    let disks = check.summary["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 6);
    let referenced: u64 = disks
        .iter()
        .map(|d| d["referenced_shards"].as_u64().unwrap())
        .sum();
    assert_eq!(referenced as usize, shards);
    assert!(
        disks
            .iter()
            .all(|d| d["referenced_shards"] == d["present_shards"] && d["missing_shards"] == 0)
    );
    let repair = fsck(&tv, REPAIR);
    assert_eq!(repair.code, 0, "{repair}");
    assert_eq!(shard_count(&tv), shards);
    assert_files(&tv, &files);
    // Human output names the result too.
    let out = Command::new(FSCK).arg(&tv.root).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 errors found, 0 corrected, 0 left"),
        "{text}"
    );
}

#[test]
fn matrix_deleted_shard() {
    for spec in specs() {
        let (tv, files) = fixture(spec, false);
        let s = stripes(&tv, files[0].ino);
        shard_file(&tv, &s[0], 0).remove();
        shard_file(&tv, &s[1], 5).remove();
        let repair = matrix(&tv, "shard_missing", &files);
        assert_eq!(repair.summary["stats"]["shards_rebuilt"], 2, "{repair}");
        assert!(shard_file(&tv, &s[0], 0).exists());
    }
}

#[test]
fn matrix_flipped_byte_in_a_shard() {
    for spec in specs() {
        let (tv, files) = fixture(spec, false);
        let s = stripes(&tv, files[1].ino);
        let shard = shard_file(&tv, &s[0], 2);
        let len = shard.read().len();
        flip_byte(&shard, len / 2);
        matrix(&tv, "shard_corrupt", &files);
    }
}

#[test]
fn matrix_shard_header_of_another_volume() {
    for spec in specs() {
        let (tv, files) = fixture(spec, false);
        let s = stripes(&tv, files[0].ino);
        let disk = DirDisk::open(&disk_path(&tv, s[1].disk_of(1).unwrap())).unwrap();
        let bytes = shard_file(&tv, &s[1], 1).read();
        let (object, _) = shard::decode_shard("test", bytes, None).unwrap();
        let other = VolumeId::random();
        shard::write_shard(&disk, other, &object.header, object.payload()).unwrap();
        argosfs::store::Disk::sync(&disk).unwrap();
        let repair = matrix(&tv, "shard_foreign", &files);
        assert_eq!(
            repair.summary["stats"]["objects_quarantined"], 1,
            "{repair}"
        );
        // The foreign object was kept, out of the shard tree.
        let kept: Vec<_> = std::fs::read_dir(disk.path().join("argosfs-quarantine"))
            .unwrap()
            .collect();
        assert_eq!(kept.len(), 1);
    }
}

#[test]
fn matrix_flipped_byte_in_the_primary_snapshot() {
    let (tv, files) = fixture(Spec::layout(4, 2), true);
    let vol = volume_id(&tv);
    let txids: Vec<u64> = SLOTS
        .iter()
        .map(|s| {
            snapshot::read_snapshot(&meta_dir(&tv).join(s), vol)
                .unwrap()
                .txid
        })
        .collect();
    let primary = usize::from(txids[1] > txids[0]);
    let path = meta_dir(&tv).join(SLOTS[primary]);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    flip_file_byte(&path, len / 2);
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DAMAGED"), "{text}");
    matrix(&tv, "snapshot_damaged", &files);
    assert!(snapshot::read_snapshot(&path, vol).is_ok());
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn matrix_journal_cut_mid_record() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let late = {
        let vol = open(&tv);
        let ino = put_file(&vol, b"late", &pattern(STRIPE * 2, 77));
        vol.close().unwrap();
        ino
    };
    let path = meta_dir(&tv).join(JOURNAL_FILE);
    let scan = Journal::scan(&path, volume_id(&tv)).unwrap();
    let last = scan.records.last().unwrap();
    let cut = last.offset + 16 + last.payload.len() as u64 / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("torn tail"), "{text}");
    let repair = matrix(&tv, "journal_torn_tail", &files);
    // The late file never committed: its shards were orphans and are gone.
    assert!(
        repair
            .findings
            .iter()
            .any(|f| f["kind"] == "orphan_shard" && f["repaired"] == true),
        "{repair}"
    );
    let vol = open(&tv);
    assert!(vol.lookup(&root(), InodeId::ROOT, b"late").is_err());
    assert!(vol.getattr(late).is_err());
    vol.close().unwrap();
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn matrix_orphan_shard_file() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let disk = DirDisk::open(&tv.disks[3]).unwrap();
    let header = ShardHeader {
        stripe: StripeId(1_000_000),
        index: ShardIndex(3),
        k: 4,
        m: 2,
        inode: InodeId(99),
        chunk: 0,
    };
    shard::write_shard(&disk, volume_id(&tv), &header, &[7u8; 4096]).unwrap();
    argosfs::store::Disk::sync(&disk).unwrap();
    drop(disk);
    let path = Shard::at(&tv.disks[3], header.key());
    path.backdate(Duration::from_secs(2 * 3600));
    let repair = matrix(&tv, "orphan_shard", &files);
    assert_eq!(repair.summary["stats"]["orphans_removed"], 1, "{repair}");
    assert!(!path.exists());
}

#[test]
fn matrix_damaged_store_index_is_rebuilt_from_the_segments() {
    for spec in specs() {
        let (tv, files) = fixture(spec, false);
        let before = tv.shard_files(2);
        assert!(!before.is_empty());
        let checkpoint = tv.disks[2].join("store/index");
        let mut bytes = std::fs::read(&checkpoint).unwrap();
        bytes[9] ^= 0x40;
        std::fs::write(&checkpoint, &bytes).unwrap();
        let repair = matrix(&tv, "store_index_damaged", &files);
        assert!(!repair.has("disk_unavailable"), "{repair}");
        assert_eq!(tv.shard_files(2), before);
    }
}

/// Opens the metadata directly, records raw ops and commits them.
fn raw_ops(tv: &TestVolume, ops: impl FnOnce(&argosfs::meta::Table) -> Vec<Op>) {
    let (mut store, _) = MetaStore::open(&meta_dir(tv), meta_codec(tv), true).unwrap();
    for op in ops(store.table()) {
        store.record(op).unwrap();
    }
    store.commit().unwrap();
}

#[test]
fn matrix_wrong_nlink() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let ino = files[0].ino;
    raw_ops(&tv, |t| {
        let mut inode = t.inodes[&ino].clone();
        inode.nlink = 5;
        vec![Op::PutInode { ino, inode }]
    });
    matrix(&tv, "wrong_nlink", &files);
    assert_eq!(table(&tv).inodes[&ino].nlink, 1);
}

#[test]
fn matrix_dangling_directory_entry() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    raw_ops(&tv, |t| {
        vec![Op::Link {
            dir: InodeId::ROOT,
            name: b"ghost".to_vec(),
            ino: InodeId(4242),
            cookie: t.dirs[&InodeId::ROOT].next_cookie,
        }]
    });
    matrix(&tv, "dangling_entry", &files);
    assert!(
        !table(&tv).dirs[&InodeId::ROOT]
            .entries
            .contains_key(b"ghost".as_slice())
    );
}

#[test]
fn matrix_unreachable_inode() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let lost = files[1].clone();
    raw_ops(&tv, |_| {
        vec![Op::Unlink {
            dir: InodeId::ROOT,
            name: lost.name.clone(),
        }]
    });
    let repair = matrix(&tv, "unreachable_inode", &files);
    assert_eq!(repair.kinds(), vec!["unreachable_inode"], "{repair}");
    // It is found again under /lost+found/#INO, with its bytes.
    let vol = open(&tv);
    let lf = vol.lookup(&root(), InodeId::ROOT, b"lost+found").unwrap();
    let name = format!("#{}", lost.ino);
    let attr = vol.lookup(&root(), lf.ino, name.as_bytes()).unwrap();
    assert_eq!(attr.ino, lost.ino);
    assert_eq!(attr.nlink, 1);
    assert_eq!(read_all(&vol, attr.ino).unwrap(), lost.data);
    assert_eq!(vol.getattr(InodeId::ROOT).unwrap().nlink, 4);
    vol.close().unwrap();
}

#[test]
fn matrix_wrong_parent() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let dir = table(&tv).dirs[&InodeId::ROOT].entries[b"dir".as_slice()].ino;
    raw_ops(&tv, |_| {
        vec![Op::SetParent {
            dir,
            parent: InodeId(4242),
        }]
    });
    let repair = matrix(&tv, "wrong_parent", &files);
    assert_eq!(repair.kinds(), vec!["wrong_parent"], "{repair}");
    assert_eq!(table(&tv).dirs[&dir].parent, InodeId::ROOT);
}

#[test]
fn matrix_secondary_snapshot_that_disagrees() {
    let (tv, files) = fixture(Spec::layout(4, 2), true);
    let vol = volume_id(&tv);
    let snaps: Vec<_> = SLOTS
        .iter()
        .map(|s| snapshot::read_snapshot(&meta_dir(&tv).join(s), vol).unwrap())
        .collect();
    let secondary = usize::from(snaps[1].txid < snaps[0].txid);
    // A validly framed secondary whose table is not what the journal says it was.
    let codec = meta_codec(&tv);
    let snap = &snaps[secondary];
    let mut wrong = codec
        .decode_table(
            "",
            secondary,
            snap.txid,
            snap.is_sealed,
            snap.payload.clone(),
        )
        .unwrap();
    wrong.next_ino += 1000;
    let body = codec.encode_table(secondary, &wrong).unwrap();
    let path = meta_dir(&tv).join(SLOTS[secondary]);
    snapshot::write_snapshot(&path, vol, snap.txid, &body, codec.is_sealed()).unwrap();
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DISAGREE"), "{text}");
    matrix(&tv, "snapshot_mismatch", &files);
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn matrix_damaged_record_in_the_middle_of_the_journal() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let path = meta_dir(&tv).join(JOURNAL_FILE);
    let scan = Journal::scan(&path, volume_id(&tv)).unwrap();
    assert!(scan.records.len() >= 3);
    // The record committing "b": "a" came before it, everything after is lost.
    let record = &scan.records[1];
    flip_file_byte(
        &path,
        (record.offset + 16) as usize + record.payload.len() / 2,
    );
    assert!(
        tv.open_with(tv.options()).is_err(),
        "a volume refuses such a journal"
    );
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("damage with later data"), "{text}");
    let before = tree_state(&tv);
    let check = fsck(&tv, &["-n"]);
    assert_eq!(check.code, 4, "{check}");
    assert!(check.has("journal_damaged"), "{check}");
    assert_eq!(tree_state(&tv), before, "fsck -n changed the volume");
    // The repair rebuilds the metadata but keeps the shards of the lost transactions
    // (they may still be recovered by hand from the saved journal): errors are left.
    let repair = fsck(&tv, REPAIR);
    assert_eq!(repair.code, 4, "{repair}");
    let kept: Vec<&Value> = repair
        .findings
        .iter()
        .filter(|f| f["kind"] == "orphan_shard")
        .collect();
    assert!(!kept.is_empty(), "{repair}");
    assert!(kept.iter().all(|f| f["repaired"] == false), "{repair}");
    assert_eq!(repair.summary["stats"]["orphans_removed"], 0, "{repair}");
    // On the sound journal they are ordinary orphans.
    let again = fsck(&tv, REPAIR);
    assert_eq!(again.code, 1, "{again}");
    assert_eq!(
        again
            .kinds()
            .iter()
            .filter(|k| *k != "orphan_shard")
            .count(),
        0,
        "{again}"
    );
    let last = fsck(&tv, &[]);
    assert_eq!(last.code, 0, "{last}");
    assert_files(&tv, &files[..1]);
    let saved = std::fs::read_dir(meta_dir(&tv))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("journal.fsck-saved.")
        })
        .count();
    assert_eq!(saved, 1, "the damaged journal is kept aside");
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn matrix_unreachable_directory() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let t = table(&tv);
    let dir = t.dirs[&InodeId::ROOT].entries[b"dir".as_slice()].ino;
    raw_ops(&tv, |t| {
        let mut root_inode = t.inodes[&InodeId::ROOT].clone();
        root_inode.nlink -= 1;
        vec![
            Op::Unlink {
                dir: InodeId::ROOT,
                name: b"dir".to_vec(),
            },
            Op::PutInode {
                ino: InodeId::ROOT,
                inode: root_inode,
            },
        ]
    });
    let repair = matrix(&tv, "unreachable_inode", &files);
    assert_eq!(repair.kinds(), vec!["unreachable_inode"], "{repair}");
    let t = table(&tv);
    let lf = t.dirs[&InodeId::ROOT].entries[b"lost+found".as_slice()].ino;
    assert_eq!(t.dirs[&dir].parent, lf);
    assert_eq!(t.inodes[&lf].nlink, 3);
}

#[test]
fn matrix_orphan_inode_left_by_a_crash() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let before = shard_count(&tv);
    let ino = {
        let vol = open(&tv);
        let ino = put_file(&vol, b"open", &pattern(STRIPE * 2, 5));
        vol.commit().unwrap();
        vol.open_file(&root(), ino, libc::O_RDONLY).unwrap();
        vol.unlink(&root(), InodeId::ROOT, b"open").unwrap();
        vol.commit().unwrap();
        // The process dies with the file open: no release, no close.
        drop(vol);
        ino
    };
    assert!(table(&tv).orphans.contains(&ino));
    assert!(shard_count(&tv) > before);
    matrix(&tv, "orphan_inode", &files);
    assert!(!table(&tv).inodes.contains_key(&ino));
    assert_eq!(
        shard_count(&tv),
        before,
        "the freed inode's shards are deleted"
    );
}

#[test]
fn lost_stripes_are_data_loss_with_the_path_and_stay_exit_4() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let victim = &files[4];
    assert_eq!(victim.name, b"dir/nested");
    let s = stripes(&tv, victim.ino);
    for index in [0, 2, 4] {
        shard_file(&tv, &s[1], index).remove();
    }
    for args in [&["-n"][..], REPAIR] {
        let run = fsck(&tv, args);
        assert_eq!(run.code, 4, "{run}");
        let loss: Vec<&Value> = run
            .findings
            .iter()
            .filter(|f| f["kind"] == "data_loss")
            .collect();
        assert_eq!(loss.len(), 1, "{run}");
        assert_eq!(loss[0]["paths"][0], "/dir/nested", "{run}");
        assert_eq!(loss[0]["repaired"], false);
    }
    // The other files are untouched and still read; the damaged one fails cleanly.
    let others: Vec<File> = files
        .iter()
        .filter(|f| f.ino != victim.ino)
        .cloned()
        .collect();
    assert_files(&tv, &others);
    let vol = open(&tv);
    assert_eq!(read_all(&vol, victim.ino).unwrap_err().errno(), libc::EIO);
    vol.close().unwrap();
}

#[test]
fn a_mounted_volume_is_refused_with_exit_8() {
    let (tv, _) = fixture(Spec::layout(4, 2), false);
    let vol = open(&tv);
    for args in [&["-n"][..], REPAIR] {
        let run = fsck(&tv, args);
        assert_eq!(run.code, 8, "{run}");
        assert!(run.stderr.contains("is mounted or in use"), "{run}");
    }
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("mounted or in use"), "{text}");
    vol.close().unwrap();
    assert_eq!(fsck(&tv, &[]).code, 0);
}

#[test]
fn usage_errors_exit_16() {
    let out = Command::new(FSCK)
        .args(["/nonexistent", "-n", "--repair"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(16));
    let out = Command::new(FSCK).args(["--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(16));
    let out = Command::new(FSCK).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Not a volume: an operational error.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(FSCK).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn a_fresh_orphan_is_kept_for_the_grace_period() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let disk = DirDisk::open(&tv.disks[0]).unwrap();
    let header = ShardHeader {
        stripe: StripeId(5_000_000),
        index: ShardIndex(0),
        k: 4,
        m: 2,
        inode: InodeId(99),
        chunk: 0,
    };
    shard::write_shard(&disk, volume_id(&tv), &header, &[1u8; 4096]).unwrap();
    argosfs::store::Disk::sync(&disk).unwrap();
    drop(disk);
    let path = Shard::at(&tv.disks[0], header.key());
    let run = fsck(&tv, &["--repair", "--remove-orphans"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.findings
            .iter()
            .any(|f| f["kind"] == "orphan_shard" && f["severity"] == "warning"),
        "{run}"
    );
    assert!(path.exists(), "a fresh orphan was deleted");
    let run = fsck(&tv, REPAIR);
    assert_eq!(run.code, 1, "{run}");
    assert!(!path.exists());
    assert_files(&tv, &files);
}

#[test]
fn shards_of_a_just_committed_file_are_never_orphans() {
    for snapshots in [false, true] {
        let (tv, mut files) = fixture(Spec::layout(4, 2), snapshots);
        // Written, committed and closed a moment ago: every shard is brand new.
        let vol = open(&tv);
        let data = pattern(STRIPE * 3, 42);
        let ino = put_file(&vol, b"just-written", &data);
        vol.fsync(ino).unwrap();
        vol.close().unwrap();
        files.push(File {
            name: b"just-written".to_vec(),
            ino,
            data,
        });
        let before = shard_count(&tv);
        let run = fsck(&tv, REPAIR);
        assert_eq!(run.code, 0, "{run}");
        assert!(run.findings.is_empty(), "{run}");
        assert_eq!(shard_count(&tv), before);
        assert_files(&tv, &files);
    }
}

#[test]
fn verify_journal_reports_a_clean_volume() {
    let (tv, _) = fixture(Spec::layout(4, 2), true);
    let (code, text) = verify_journal(&tv, false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("primary/secondary: agree"), "{text}");
    let (code, text) = verify_journal(&tv, true);
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["agreement"]["status"], "agree");
    assert_eq!(v["slots"].as_array().unwrap().len(), 2);
    // Right after mkfs only slot 0 exists: that verifies too.
    let young = common::make(&Spec::default());
    let (code, text) = verify_journal(&young, true);
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["agreement"]["status"], "single_slot");
}

#[test]
fn a_missing_disk_is_reported_and_left_to_the_operator() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    std::fs::remove_dir_all(&tv.disks[5]).unwrap();
    for args in [&["-n"][..], REPAIR] {
        let run = fsck(&tv, args);
        assert_eq!(run.code, 4, "{run}");
        assert!(run.has("disk_unavailable"), "{run}");
        assert!(run.has("shard_unavailable"), "{run}");
        assert!(!run.has("data_loss"), "{run}");
        assert_eq!(run.summary["errors_corrected"], 0, "{run}");
    }
    assert!(!tv.disks[5].exists(), "fsck does not recreate a disk");
    assert_files(&tv, &files);
}

#[test]
fn a_stray_copy_of_a_shard_saves_a_stripe() {
    let (tv, files) = fixture(Spec::layout(4, 2), false);
    let s = &stripes(&tv, files[0].ino)[2];
    // A copy of shard 0 sits on the disk of shard 1 (as an earlier placement could
    // leave it); then three shards are lost where the metadata puts them.
    let copy = Shard::at(&disk_path(&tv, s.disk_of(1).unwrap()), key(s, 0));
    copy.write(&shard_file(&tv, s, 0).read());
    for index in [0, 2, 4] {
        shard_file(&tv, s, index).remove();
    }
    let repair = matrix(&tv, "shard_missing", &files);
    assert!(!repair.has("data_loss"), "{repair}");
    assert_eq!(repair.summary["stats"]["shards_rebuilt"], 3, "{repair}");
    assert!(
        !copy.exists(),
        "the stray copy is an orphan once the stripe is whole"
    );
}

#[test]
fn json_reports_name_a_root_that_is_not_utf8() {
    let mut tv = common::make(&Spec::default());
    {
        let vol = tv.open();
        put_file(&vol, b"f", &pattern(3 * STRIPE, 4));
        vol.close().unwrap();
    }
    use std::os::unix::ffi::OsStrExt;
    let odd = tv
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"root-\xff"));
    std::fs::rename(&tv.root, &odd).unwrap();
    tv.root = odd;
    // fsck: every line is JSON naming the root, lossily; the volume is clean.
    let run = fsck(&tv, &["-n"]);
    assert_eq!(run.code, 0, "{run}");
    let shown = run.summary["root"].as_str().unwrap();
    assert!(shown.ends_with("root-\u{fffd}"), "{run}");
    // verify-journal: the slot and journal paths go into its JSON too.
    let (code, out) = verify_journal(&tv, true);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        report["journal"]["path"]
            .as_str()
            .unwrap()
            .contains("root-\u{fffd}")
    );
}

//! The append-only metadata journal, `ROOT/meta/journal`: one checksummed record per
//! transaction, replayed on top of the newest snapshot.
//!
//! This module owns the journal's bytes: the file header, record framing, verification,
//! torn-tail handling, durable appends and compaction. Payloads are opaque (the caller
//! serializes its transactions); deciding when to snapshot and compact is the caller's.
//!
//! ```text
//! file header (a crate::format frame, 44 bytes)
//! offset size field
//! 0      8    magic      b"ARGJRNL\x1a"
//! 8      2    version    1 (u16 LE)
//! 10     2    flags      u16 LE: bit 0 = payloads are sealed (encrypted metadata)
//! 12     4    body_len   8 (u32 LE)
//! 16     16   volume_id
//! 32     8    base_txid  u64 LE: the txid just before the first record
//! 40     4    crc32c     over bytes 0..40
//!
//! records, back to back from offset 44 (offsets relative to the record)
//! 0      4    len        u32 LE: payload length, at most 256 MiB
//! 4      8    txid       u64 LE: base_txid + 1 for the first record, then previous + 1
//! 12     4    crc32c     over bytes 0..12 and the payload
//! 16     len  payload
//! ```
//!
//! Payloads are opaque here; on an encrypted volume `meta::codec` seals each one, and the
//! CRCs cover the sealed bytes, so the journal's structure verifies without the key.
//!
//! A crash can leave a partial record at the end. Scanning stops at the first record that
//! is short, fails its checksum, is out of txid order or declares an oversized length, and
//! reports it as the torn tail: it is never applied. Opening read-write truncates it so
//! appends continue after the last good record.

use crate::error::ReadOnlyReason;
use crate::format::{self, Expect, FormatError, FormatErrorKind, FrameHeader};
use crate::store::write_atomic;
use crate::types::VolumeId;
use crate::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name of the journal, inside `ROOT/meta`.
pub const JOURNAL_FILE: &str = "journal";

/// Length of the file header.
pub const FILE_HEADER_BYTES: u64 = (format::HEADER_LEN + 8 + format::TRAILER_LEN) as u64;
/// Length of a record's fixed part (len, txid, crc) in front of its payload.
pub const RECORD_HEADER_BYTES: u64 = 16;
/// Largest payload a record may carry. Larger lengths read from disk are corruption, so
/// a garbage length field cannot make a reader trust gigabytes of bytes.
pub const MAX_PAYLOAD_BYTES: u32 = 256 << 20;

const MAGIC: [u8; 8] = *b"ARGJRNL\x1a";
const VERSION: u16 = 1;
/// Header flag: record payloads are sealed by `meta::codec`.
pub const FLAG_SEALED: u16 = 1;
/// A commit buffer grown past this by one big record is released rather than kept.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// One verified record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    /// The transaction id.
    pub txid: u64,
    /// Byte offset of the record (its length field) in the file.
    pub offset: u64,
    /// The caller's serialized transaction.
    pub payload: Vec<u8>,
}

/// Where scanning stopped before the end of the file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// Byte offset where the first bad record starts.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// Why the record was rejected: short header, short payload, checksum mismatch, txid
    /// out of order or oversized length, with details.
    pub reason: String,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "torn tail at offset {} ({} bytes): {}",
            self.offset, self.bytes, self.reason
        )
    }
}

/// The result of reading a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalScan {
    /// The txid just before the first record (the snapshot the journal continues).
    pub base_txid: u64,
    /// The header says the payloads are sealed.
    pub is_sealed: bool,
    /// Every good record, in order, up to the first bad one.
    pub records: Vec<JournalRecord>,
    /// The first bad record and what follows it, if any.
    pub torn_tail: Option<TornTail>,
    /// Offset just past the last good record (the header's end when there is none).
    pub valid_len: u64,
}

/// An open journal: appends are buffered in memory and made durable by [`Journal::commit`].
///
/// Records appended but not committed are lost when the journal is dropped. After any
/// I/O failure the journal refuses further work with `ReadOnly(JournalFailed)`: the
/// file's state past the failure is unknown, so it is never written again.
pub struct Journal {
    path: PathBuf,
    volume: VolumeId,
    /// Payloads are sealed (kept in the header across compactions).
    is_sealed: bool,
    file: File,
    base_txid: u64,
    last_txid: u64,
    /// Bytes written and synced to the file; the next commit writes here.
    committed_len: u64,
    /// Encoded records not yet committed.
    buffer: Vec<u8>,
    failed: bool,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("base_txid", &self.base_txid)
            .field("last_txid", &self.last_txid)
            .field("committed_len", &self.committed_len)
            .field("buffered_bytes", &self.buffer.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Journal {
    /// Writes a fresh journal holding only a header, atomically replacing any file at
    /// `path`, and opens it for appending. `is_sealed` marks payloads sealed by the codec.
    pub fn create(
        path: &Path,
        volume: VolumeId,
        base_txid: u64,
        is_sealed: bool,
    ) -> Result<Journal> {
        let header = header_bytes(volume, base_txid, is_sealed);
        write_atomic(path, &header).map_err(|e| Error::io(path, e))?;
        let file = open_for_append(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            volume,
            is_sealed,
            file,
            base_txid,
            last_txid: base_txid,
            committed_len: FILE_HEADER_BYTES,
            buffer: Vec::new(),
            failed: false,
        })
    }

    /// Reads and verifies the journal without changing it.
    ///
    /// A bad file header is an error; a bad record is not: scanning stops there and
    /// reports it as the torn tail.
    pub fn scan(path: &Path, volume: VolumeId) -> Result<JournalScan> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        let walk = walk(&path.display().to_string(), &bytes, volume)?;
        let records = walk
            .records
            .into_iter()
            .map(|span| JournalRecord {
                txid: span.txid,
                offset: span.offset,
                payload: bytes[span.payload].to_vec(),
            })
            .collect();
        Ok(JournalScan {
            base_txid: walk.base_txid,
            is_sealed: walk.is_sealed,
            records,
            torn_tail: walk.torn_tail,
            valid_len: walk.valid_len,
        })
    }

    /// Opens the journal for appending. A torn tail is logged, then truncated away (and
    /// the truncation made durable) so appends continue after the last good record; the
    /// returned scan still reports it.
    pub fn open(path: &Path, volume: VolumeId) -> Result<(Journal, JournalScan)> {
        let scan = Journal::scan(path, volume)?;
        if let Some(tail) = &scan.torn_tail
            && !is_crash_tear(path, tail)?
        {
            return Err(Error::Format(FormatError::new(
                path.display().to_string(),
                tail.offset,
                FormatErrorKind::Body(format!(
                    "journal record is damaged ({}) and {} bytes of later data follow it: this is not a crash-torn tail, so it is not cut away; run `argosfs fsck` (or open read-only)",
                    tail.reason, tail.bytes
                )),
            )));
        }
        let file = open_for_append(path)?;
        if let Some(tail) = &scan.torn_tail {
            tracing::warn!(
                journal = %path.display(),
                offset = tail.offset,
                bytes = tail.bytes,
                reason = %tail.reason,
                "journal has a torn tail; truncating it, its records are not applied"
            );
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(path, e))?;
        }
        let last_txid = scan.records.last().map_or(scan.base_txid, |r| r.txid);
        let journal = Journal {
            path: path.to_path_buf(),
            volume,
            is_sealed: scan.is_sealed,
            file,
            base_txid: scan.base_txid,
            last_txid,
            committed_len: scan.valid_len,
            buffer: Vec::new(),
            failed: false,
        };
        Ok((journal, scan))
    }

    /// Buffers a record; `txid` must be `last_txid() + 1`. Not durable until
    /// [`Journal::commit`].
    pub fn append(&mut self, txid: u64, payload: &[u8]) -> Result<()> {
        self.check_usable()?;
        if self.last_txid.checked_add(1) != Some(txid) {
            return Err(Error::Invalid("journal txid must be the last txid + 1"));
        }
        if payload.len() > MAX_PAYLOAD_BYTES as usize {
            return Err(Error::Invalid("journal record payload larger than 256 MiB"));
        }
        encode_record(&mut self.buffer, txid, payload);
        self.last_txid = txid;
        Ok(())
    }

    /// Writes the buffered records with one write and fdatasyncs the file. A no-op when
    /// nothing is buffered. After a failure every later call fails too.
    pub fn commit(&mut self) -> Result<()> {
        self.check_usable()?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        // Writing at an explicit offset keeps a failed partial write from moving where
        // the next one lands (not that there is a next one: the journal latches).
        let written = self
            .file
            .write_all_at(&self.buffer, self.committed_len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.failed = true;
            return Err(Error::io(&self.path, e));
        }
        self.committed_len += self.buffer.len() as u64;
        if self.buffer.capacity() > KEEP_BUFFER_BYTES {
            self.buffer = Vec::new();
        } else {
            self.buffer.clear();
        }
        Ok(())
    }

    /// The txid of the last record appended (committed or not), or the base txid.
    pub fn last_txid(&self) -> u64 {
        self.last_txid
    }

    /// The txid just before the journal's first record.
    pub fn base_txid(&self) -> u64 {
        self.base_txid
    }

    /// Length of the file once the buffered records are committed.
    pub fn len_bytes(&self) -> u64 {
        self.committed_len + self.buffer.len() as u64
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits, then atomically rewrites the journal keeping only the records with
    /// txid > `keep_after_txid`, which becomes the new base txid. Appending continues on
    /// the new file. Call it once a snapshot holding `keep_after_txid` is durable.
    pub fn compact(&mut self, keep_after_txid: u64) -> Result<()> {
        self.commit()?;
        if keep_after_txid < self.base_txid || keep_after_txid > self.last_txid {
            return Err(Error::Invalid(
                "journal compaction point must be between its base and last txid",
            ));
        }
        let rewritten = self.rewrite(keep_after_txid);
        if rewritten.is_err() {
            // The rename may or may not have happened: appending to either file could
            // lose records, so stop writing.
            self.failed = true;
        }
        rewritten
    }

    fn rewrite(&mut self, keep_after_txid: u64) -> Result<()> {
        let object = self.path.display().to_string();
        // Read back from the file rather than trusting memory: what is copied forward is
        // what is verifiably on disk.
        let bytes = fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let walk = walk(&object, &bytes, self.volume)?;
        if let Some(tail) = walk.torn_tail {
            return Err(FormatError::new(
                object,
                tail.offset,
                FormatErrorKind::Body(format!("committed journal record is bad: {}", tail.reason)),
            )
            .into());
        }
        let last_on_disk = walk.records.last().map_or(walk.base_txid, |r| r.txid);
        if walk.base_txid != self.base_txid
            || last_on_disk != self.last_txid
            || walk.is_sealed != self.is_sealed
        {
            return Err(FormatError::new(
                object,
                walk.valid_len,
                FormatErrorKind::Body(format!(
                    "journal holds txids {}..={last_on_disk} (sealed: {}), its writer expected {}..={} (sealed: {})",
                    walk.base_txid, walk.is_sealed, self.base_txid, self.last_txid, self.is_sealed
                )),
            )
            .into());
        }
        // Records are contiguous, so the kept ones are one run of bytes copied verbatim.
        let keep_from = walk
            .records
            .iter()
            .find(|r| r.txid > keep_after_txid)
            .map_or(walk.valid_len, |r| r.offset);
        let kept = bytes
            .get(to_index(keep_from)..to_index(walk.valid_len))
            .expect("record offsets lie inside the scanned bytes");
        let mut content = header_bytes(self.volume, keep_after_txid, self.is_sealed);
        content.extend_from_slice(kept);
        write_atomic(&self.path, &content).map_err(|e| Error::io(&self.path, e))?;
        self.file = open_for_append(&self.path)?;
        self.base_txid = keep_after_txid;
        self.committed_len = content.len() as u64;
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::ReadOnly(ReadOnlyReason::JournalFailed));
        }
        Ok(())
    }
}

fn expect(volume: VolumeId) -> Expect {
    Expect {
        magic: MAGIC,
        newest_version: VERSION,
        known_flags: FLAG_SEALED,
        volume: Some(volume),
    }
}

fn header_bytes(volume: VolumeId, base_txid: u64, is_sealed: bool) -> Vec<u8> {
    let header = FrameHeader {
        magic: MAGIC,
        version: VERSION,
        flags: if is_sealed { FLAG_SEALED } else { 0 },
        body_len: 8,
        volume,
    };
    format::encode(header, &base_txid.to_le_bytes())
}

fn open_for_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn encode_record(out: &mut Vec<u8>, txid: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked against the limit");
    let mut head = [0u8; RECORD_HEADER_BYTES as usize];
    head[0..4].copy_from_slice(&len.to_le_bytes());
    head[4..12].copy_from_slice(&txid.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[0..12]), payload);
    head[12..16].copy_from_slice(&crc.to_le_bytes());
    out.reserve(head.len() + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
}

/// True when a torn tail reported by [`Journal::scan`] is what a crash during an append
/// leaves, so [`Journal::open`] would cut it; false when it is damage followed by later
/// data, which `open` refuses. For fsck and verify-journal, which report the difference.
pub fn is_crash_torn(path: &Path, tail: &TornTail) -> Result<bool> {
    is_crash_tear(path, tail)
}

/// True when the bad tail is what a crash during an append leaves: a record cut short
/// (it reaches past the end of the file) or an extension of the file that holds only
/// zeros. A complete damaged record followed by other data is corruption instead, and
/// cutting it away would throw away committed transactions.
fn is_crash_tear(path: &Path, tail: &TornTail) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let rest = bytes.get(to_index(tail.offset)..).unwrap_or_default();
    if rest.iter().all(|b| *b == 0) {
        return Ok(true);
    }
    let head_len = to_index(RECORD_HEADER_BYTES);
    let Some(head) = rest.get(..head_len) else {
        return Ok(true);
    };
    let payload_len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    Ok(payload_len <= MAX_PAYLOAD_BYTES
        && head_len as u64 + u64::from(payload_len) >= rest.len() as u64)
}

/// Offsets come from lengths of in-memory buffers, so they fit in usize.
fn to_index(offset: u64) -> usize {
    usize::try_from(offset).expect("offsets into an in-memory buffer fit in usize")
}

/// One good record, located in the scanned bytes.
struct RecordSpan {
    txid: u64,
    offset: u64,
    payload: Range<usize>,
}

struct Walk {
    base_txid: u64,
    is_sealed: bool,
    records: Vec<RecordSpan>,
    torn_tail: Option<TornTail>,
    valid_len: u64,
}

/// Verifies the header and walks the records of a whole journal file held in memory.
fn walk(object: &str, bytes: &[u8], volume: VolumeId) -> Result<Walk, FormatError> {
    let header_len = to_index(FILE_HEADER_BYTES);
    let head = bytes.get(..header_len).unwrap_or(bytes);
    let (header, body) = format::decode(object, head, &expect(volume))?;
    let is_sealed = header.flags & FLAG_SEALED != 0;
    let base_txid = u64::from_le_bytes(body.try_into().map_err(|_| {
        FormatError::new(
            object,
            12,
            FormatErrorKind::Body(format!(
                "journal header body is {} bytes, expected 8",
                body.len()
            )),
        )
    })?);

    let mut records = Vec::new();
    let mut at = header_len;
    let mut prev_txid = base_txid;
    let torn_tail = loop {
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.is_empty() {
            break None;
        }
        match check_record(rest, prev_txid) {
            Ok((txid, payload_len)) => {
                let payload_at = at + to_index(RECORD_HEADER_BYTES);
                records.push(RecordSpan {
                    txid,
                    offset: at as u64,
                    payload: payload_at..payload_at + payload_len,
                });
                prev_txid = txid;
                at = payload_at + payload_len;
            }
            Err(reason) => {
                break Some(TornTail {
                    offset: at as u64,
                    bytes: rest.len() as u64,
                    reason,
                });
            }
        }
    };
    Ok(Walk {
        base_txid,
        is_sealed,
        records,
        torn_tail,
        valid_len: at as u64,
    })
}

/// Checks the record at the start of `rest`, which must follow `prev_txid`. Returns its
/// txid and payload length, or why it is bad. The length field is bounded before it is
/// used, and only ever to slice `rest`, never to allocate.
fn check_record(rest: &[u8], prev_txid: u64) -> Result<(u64, usize), String> {
    let head_len = to_index(RECORD_HEADER_BYTES);
    let Some(head) = rest.get(..head_len) else {
        return Err(format!("short header: {} of {head_len} bytes", rest.len()));
    };
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    let txid = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
    let stored = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
    if len > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "oversized length: {len} bytes declared, limit {MAX_PAYLOAD_BYTES}"
        ));
    }
    let payload_len = len as usize;
    let Some(payload) = rest.get(head_len..head_len + payload_len) else {
        return Err(format!(
            "short payload: {payload_len} bytes declared, {} present",
            rest.len() - head_len
        ));
    };
    let computed = crc32c::crc32c_append(crc32c::crc32c(&head[0..12]), payload);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    match prev_txid.checked_add(1) {
        Some(expected) if expected == txid => Ok((txid, payload_len)),
        Some(expected) => Err(format!(
            "txid out of order: expected {expected}, found {txid}"
        )),
        None => Err(format!(
            "txid out of order: found {txid} after the largest txid"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        vol: VolumeId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        Fixture {
            _dir: dir,
            path,
            vol: VolumeId::random(),
        }
    }

    fn payload(txid: u64) -> Vec<u8> {
        format!("transaction number {txid}").into_bytes()
    }

    /// A committed journal with base `base` and records `base+1..=last`.
    fn journal_with(f: &Fixture, base: u64, last: u64) -> Journal {
        let mut j = Journal::create(&f.path, f.vol, base, false).unwrap();
        for txid in base + 1..=last {
            j.append(txid, &payload(txid)).unwrap();
        }
        j.commit().unwrap();
        j
    }

    fn txids(scan: &JournalScan) -> Vec<u64> {
        scan.records.iter().map(|r| r.txid).collect()
    }

    fn assert_payloads(scan: &JournalScan) {
        for r in &scan.records {
            assert_eq!(r.payload, payload(r.txid), "txid {}", r.txid);
        }
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    #[test]
    fn append_commit_scan_round_trip_across_reopen() {
        let f = fixture();
        let j = journal_with(&f, 10, 13);
        assert_eq!(j.base_txid(), 10);
        assert_eq!(j.last_txid(), 13);
        assert_eq!(j.len_bytes(), file_len(&f.path));
        drop(j);

        let (mut j, scan) = Journal::open(&f.path, f.vol).unwrap();
        assert_eq!(scan.base_txid, 10);
        assert_eq!(txids(&scan), [11, 12, 13]);
        assert_payloads(&scan);
        assert_eq!(scan.torn_tail, None);
        assert_eq!(scan.valid_len, file_len(&f.path));
        assert_eq!(scan.records[0].offset, FILE_HEADER_BYTES);
        assert_eq!(j.last_txid(), 13);

        j.append(14, &payload(14)).unwrap();
        assert_eq!(
            j.len_bytes(),
            scan.valid_len + 16 + payload(14).len() as u64
        );
        // Buffered records are not in the file until commit.
        assert_eq!(file_len(&f.path), scan.valid_len);
        j.commit().unwrap();
        j.commit().unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!(txids(&scan), [11, 12, 13, 14]);
        assert_payloads(&scan);
    }

    #[test]
    fn a_fresh_journal_is_just_its_header() {
        let f = fixture();
        let j = Journal::create(&f.path, f.vol, 7, false).unwrap();
        assert_eq!(j.len_bytes(), 44);
        assert_eq!(file_len(&f.path), 44);
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!((scan.base_txid, scan.valid_len), (7, 44));
        assert!(scan.records.is_empty() && scan.torn_tail.is_none());
        // create replaces an existing journal.
        drop(journal_with(&f, 0, 3));
        Journal::create(&f.path, f.vol, 3, false).unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!((scan.base_txid, scan.records.len()), (3, 0));
    }

    #[test]
    fn appends_out_of_sequence_or_oversized_are_refused() {
        let f = fixture();
        let mut j = journal_with(&f, 5, 6);
        assert!(matches!(j.append(6, b"again"), Err(Error::Invalid(_))));
        assert!(matches!(j.append(8, b"skip"), Err(Error::Invalid(_))));
        // calloc'd zeros: the limit check comes before any copy, so this stays cheap.
        let huge = vec![0u8; MAX_PAYLOAD_BYTES as usize + 1];
        assert!(matches!(j.append(7, &huge), Err(Error::Invalid(_))));
        assert_eq!(j.last_txid(), 6);
        j.append(7, b"fine").unwrap();
        j.commit().unwrap();
        assert_eq!(txids(&Journal::scan(&f.path, f.vol).unwrap()), [6, 7]);
    }

    #[test]
    fn a_cut_anywhere_in_the_last_record_is_a_torn_tail_and_open_truncates_it() {
        let f = fixture();
        drop(journal_with(&f, 0, 3));
        let full = fs::read(&f.path).unwrap();
        let last_at = Journal::scan(&f.path, f.vol).unwrap().records[2].offset;
        for cut in last_at + 1..full.len() as u64 {
            fs::write(&f.path, &full[..cut as usize]).unwrap();
            let scan = Journal::scan(&f.path, f.vol).unwrap();
            assert_eq!(txids(&scan), [1, 2], "cut at {cut}");
            assert_payloads(&scan);
            let tail = scan.torn_tail.clone().unwrap();
            assert_eq!((tail.offset, tail.bytes), (last_at, cut - last_at));
            let expected = if cut - last_at < 16 {
                "short header"
            } else {
                "short payload"
            };
            assert!(tail.reason.starts_with(expected), "cut at {cut}: {tail}");
            assert_eq!(scan.valid_len, last_at);

            let (mut j, opened) = Journal::open(&f.path, f.vol).unwrap();
            assert_eq!(opened.torn_tail, Some(tail), "open still reports the tail");
            assert_eq!(file_len(&f.path), last_at, "cut at {cut}");
            assert_eq!(j.last_txid(), 2);
            j.append(3, b"rewritten three").unwrap();
            j.append(4, &payload(4)).unwrap();
            j.commit().unwrap();
            let scan = Journal::scan(&f.path, f.vol).unwrap();
            assert_eq!(txids(&scan), [1, 2, 3, 4], "cut at {cut}");
            assert_eq!(scan.records[2].payload, b"rewritten three");
            assert_eq!(scan.torn_tail, None);
        }
        // A cut exactly between records is a clean, shorter journal.
        fs::write(&f.path, &full[..last_at as usize]).unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!((txids(&scan), scan.torn_tail), (vec![1, 2], None));
    }

    #[test]
    fn a_flipped_byte_in_a_middle_record_stops_the_scan_there() {
        let f = fixture();
        drop(journal_with(&f, 0, 3));
        let good = fs::read(&f.path).unwrap();
        let records = Journal::scan(&f.path, f.vol).unwrap().records;
        let (start, end) = (records[1].offset, records[2].offset);
        for at in start..end {
            let mut bad = good.clone();
            bad[at as usize] ^= 0x01;
            fs::write(&f.path, &bad).unwrap();
            let scan = Journal::scan(&f.path, f.vol).unwrap();
            assert_eq!(txids(&scan), [1], "flip at {at}");
            let tail = scan.torn_tail.unwrap();
            assert_eq!(tail.offset, start, "flip at {at}");
            assert_eq!(tail.bytes, good.len() as u64 - start);
            assert_eq!(scan.valid_len, start);
        }
    }

    #[test]
    fn out_of_order_txids_are_reported() {
        let f = fixture();
        drop(journal_with(&f, 0, 2));
        let valid_len = file_len(&f.path);
        let mut bytes = fs::read(&f.path).unwrap();
        // A well-formed record whose txid skips one.
        encode_record(&mut bytes, 4, b"from the future");
        fs::write(&f.path, &bytes).unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!(txids(&scan), [1, 2]);
        let tail = scan.torn_tail.unwrap();
        assert_eq!(tail.offset, valid_len);
        assert!(tail.reason.starts_with("txid out of order"), "{tail}");

        // The first record must follow the base txid.
        Journal::create(&f.path, f.vol, 10, false).unwrap();
        let mut bytes = fs::read(&f.path).unwrap();
        encode_record(&mut bytes, 10, b"replayed twice");
        fs::write(&f.path, &bytes).unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert!(scan.records.is_empty());
        assert_eq!(scan.torn_tail.unwrap().offset, FILE_HEADER_BYTES);
    }

    #[test]
    fn an_absurd_length_is_corruption_not_an_allocation() {
        let f = fixture();
        drop(journal_with(&f, 0, 1));
        let valid_len = file_len(&f.path);
        let mut bytes = fs::read(&f.path).unwrap();
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        head[4..12].copy_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(b"a little trailing garbage");
        fs::write(&f.path, &bytes).unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!(txids(&scan), [1]);
        let tail = scan.torn_tail.unwrap();
        assert_eq!((tail.offset, tail.bytes), (valid_len, 16 + 25));
        assert!(tail.reason.starts_with("oversized length"), "{tail}");

        // Just under the limit: a length the file cannot back is a short payload.
        let at = valid_len as usize;
        bytes[at..at + 4].copy_from_slice(&MAX_PAYLOAD_BYTES.to_le_bytes());
        fs::write(&f.path, &bytes).unwrap();
        let tail = Journal::scan(&f.path, f.vol).unwrap().torn_tail.unwrap();
        assert!(tail.reason.starts_with("short payload"), "{tail}");
    }

    #[test]
    fn compact_keeps_exactly_the_records_after_the_cut() {
        let f = fixture();
        let mut j = journal_with(&f, 0, 3);
        // Buffered records are committed first and kept.
        j.append(4, &payload(4)).unwrap();
        j.append(5, &payload(5)).unwrap();
        j.compact(3).unwrap();
        assert_eq!((j.base_txid(), j.last_txid()), (3, 5));
        assert_eq!(j.len_bytes(), file_len(&f.path));
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!(scan.base_txid, 3);
        assert_eq!(txids(&scan), [4, 5]);
        assert_payloads(&scan);
        assert_eq!(scan.records[0].offset, FILE_HEADER_BYTES);

        j.append(6, &payload(6)).unwrap();
        j.commit().unwrap();
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!(txids(&scan), [4, 5, 6]);
        assert_payloads(&scan);
        assert_eq!(scan.torn_tail, None);

        assert!(matches!(j.compact(2), Err(Error::Invalid(_))));
        assert!(matches!(j.compact(7), Err(Error::Invalid(_))));
        // A failed argument check does not stop the journal.
        j.compact(6).unwrap();
        assert_eq!(j.len_bytes(), FILE_HEADER_BYTES);
        j.append(7, &payload(7)).unwrap();
        j.commit().unwrap();
        drop(j);
        let (j, scan) = Journal::open(&f.path, f.vol).unwrap();
        assert_eq!((scan.base_txid, txids(&scan)), (6, vec![7]));
        assert_eq!(j.last_txid(), 7);
        // No temp files are left next to the journal.
        let entries = fs::read_dir(f.path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn a_bad_header_is_an_error_naming_the_file() {
        let f = fixture();
        let object = f.path.display().to_string();
        fs::write(&f.path, b"this is not a journal at all, just some text").unwrap();
        for result in [
            Journal::scan(&f.path, f.vol).map(|_| ()),
            Journal::open(&f.path, f.vol).map(|_| ()),
        ] {
            match result {
                Err(Error::Format(e)) => {
                    assert_eq!(e.object, object);
                    assert!(matches!(e.kind, FormatErrorKind::BadMagic { .. }));
                }
                other => panic!("expected a format error, got {other:?}"),
            }
        }

        drop(journal_with(&f, 0, 1));
        let good = fs::read(&f.path).unwrap();
        for at in 0..FILE_HEADER_BYTES as usize {
            let mut bad = good.clone();
            bad[at] ^= 0x80;
            fs::write(&f.path, &bad).unwrap();
            match Journal::scan(&f.path, f.vol) {
                Err(Error::Format(e)) => assert_eq!(e.object, object, "flip at {at}"),
                other => panic!("flip at {at}: expected a format error, got {other:?}"),
            }
        }
        for cut in 0..FILE_HEADER_BYTES as usize {
            fs::write(&f.path, &good[..cut]).unwrap();
            assert!(matches!(
                Journal::scan(&f.path, f.vol),
                Err(Error::Format(_))
            ));
        }

        fs::write(&f.path, &good).unwrap();
        match Journal::scan(&f.path, VolumeId::random()) {
            Err(Error::Format(e)) => {
                assert!(matches!(e.kind, FormatErrorKind::WrongVolume { .. }))
            }
            other => panic!("expected a wrong-volume error, got {other:?}"),
        }
        fs::remove_file(&f.path).unwrap();
        assert!(matches!(
            Journal::scan(&f.path, f.vol),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
    }

    #[test]
    fn after_a_failed_commit_the_journal_refuses_further_work() {
        let f = fixture();
        let mut j = journal_with(&f, 0, 1);
        // A read-only handle makes the next write fail with EBADF, deterministically.
        j.file = File::open(&f.path).unwrap();
        j.append(2, &payload(2)).unwrap();
        assert!(matches!(j.commit(), Err(Error::Io { .. })));
        let latched =
            |r: Result<()>| matches!(r, Err(Error::ReadOnly(ReadOnlyReason::JournalFailed)));
        // Even with a working handle again, nothing more is written.
        j.file = open_for_append(&f.path).unwrap();
        assert!(latched(j.commit()));
        assert!(latched(j.append(3, &payload(3))));
        assert!(latched(j.compact(1)));
        let scan = Journal::scan(&f.path, f.vol).unwrap();
        assert_eq!((txids(&scan), scan.torn_tail), (vec![1], None));
    }
}

//! Verification of the metadata files without replaying into the live volume: both
//! snapshot slots, the journal, and whether the secondary snapshot plus the journal
//! rebuilds the primary. Used by fsck and by verify-journal.
//!
//! On an encrypted volume the payloads are sealed: without the key ([`MetaCodec::locked`])
//! only the structure is verified (frames, hashes, record checksums and order, the torn
//! tail), and [`MetaVerification::contents_checked`] says so; with it, every payload must
//! also authenticate, and one that does not is reported like damage.
//!
//! Everything here reads; the one writer, [`reset`], is called by fsck's repair only. It
//! goes through the meta module's public writers (`snapshot::write_snapshot`,
//! `Journal::create`) and never edits a metadata file in place.

use super::report::Kind;
use crate::Error;
use crate::meta::journal::{self, JOURNAL_FILE, Journal, JournalScan};
use crate::meta::snapshot::{self, SLOTS};
use crate::meta::{MetaCodec, Table, replay_record};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// State of one snapshot slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    /// Verifies and decodes.
    Valid,
    /// No file.
    Missing,
    /// The file does not verify or its table does not decode.
    Damaged,
}

/// One snapshot slot as found.
#[derive(Debug, Clone, Serialize)]
pub struct SlotState {
    /// Slot number.
    pub slot: usize,
    /// Its file.
    #[serde(serialize_with = "super::serialize_path_lossy")]
    pub path: PathBuf,
    /// What was found.
    pub status: SlotStatus,
    /// The snapshot's transaction id, when valid.
    pub txid: Option<u64>,
    /// Why it is not valid.
    pub error: Option<String>,
    /// Byte offset of the failure, when known.
    pub offset: Option<u64>,
    /// The newest valid slot: the state is loaded from it.
    pub is_primary: bool,
    /// The decoded table (valid slots only).
    #[serde(skip)]
    pub table: Option<Table>,
    /// The frame and hash verify but the table does not decode or authenticate
    /// (`MetaStore::open` would still pick this slot and fail).
    #[serde(skip)]
    is_undecodable: bool,
}

/// A torn or damaged journal tail.
#[derive(Debug, Clone, Serialize)]
pub struct TailState {
    /// Offset of the first bad record.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// Why the record is bad.
    pub reason: String,
    /// A crash tear (cut on the next read-write open) rather than damage with later data.
    pub is_crash_tear: bool,
}

/// The journal as found.
#[derive(Debug, Clone, Serialize)]
pub struct JournalState {
    /// Its file.
    #[serde(serialize_with = "super::serialize_path_lossy")]
    pub path: PathBuf,
    /// File length.
    pub len_bytes: Option<u64>,
    /// Transaction id before its first record.
    pub base_txid: Option<u64>,
    /// Good records.
    pub records: usize,
    /// First good record's txid.
    pub first_txid: Option<u64>,
    /// Last good record's txid.
    pub last_txid: Option<u64>,
    /// Where scanning stopped early.
    pub torn_tail: Option<TailState>,
    /// Why the journal could not be read at all.
    pub error: Option<String>,
}

/// Whether the two snapshots agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    /// The secondary plus the journal up to the primary's txid equals the primary.
    Agree,
    /// They differ, or the secondary cannot be brought forward.
    Disagree,
    /// Only one slot is valid (normal right after mkfs).
    SingleSlot,
    /// Could not be checked (no valid slot, or the journal is unreadable).
    Unchecked,
}

/// Primary/secondary agreement.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// The verdict.
    pub status: AgreementStatus,
    /// Details.
    pub detail: String,
}

/// How a metadata problem is repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFix {
    /// Cannot be repaired by fsck.
    None,
    /// Write a fresh snapshot of the live table into the bad slot (`MetaStore::snapshot`
    /// picks a slot whose txid is unknown, else the older one).
    RewriteSlot,
    /// Opening the metadata read-write cuts the crash-torn tail.
    CutTornTail,
    /// Save the journal aside, write the live table into both slots and start a fresh
    /// journal after it ([`reset`]).
    ResetJournal,
}

/// One problem with the metadata files.
#[derive(Debug, Clone)]
pub struct MetaProblem {
    /// Finding kind.
    pub kind: Kind,
    /// The file concerned.
    pub object: String,
    /// What is wrong.
    pub detail: String,
    /// How repair fixes it.
    pub fix: MetaFix,
}

/// Everything verify-journal reports, and what fsck starts from.
#[derive(Debug, Clone, Serialize)]
pub struct MetaVerification {
    /// Both slots.
    pub slots: Vec<SlotState>,
    /// The journal.
    pub journal: JournalState,
    /// Slot the state is loaded from.
    pub primary: Option<usize>,
    /// Transaction id of the live state (primary plus replayed records).
    pub live_txid: Option<u64>,
    /// Journal records replayed on top of the primary.
    pub replayed_records: usize,
    /// Primary/secondary agreement.
    pub agreement: Agreement,
    /// The contents were read (tables decoded, records replayed): false for an encrypted
    /// volume checked without its passphrase, where only the structure is verified.
    pub contents_checked: bool,
    /// Problems found (empty when everything verifies).
    #[serde(skip)]
    pub problems: Vec<MetaProblem>,
    /// The live table (none when no slot is usable).
    #[serde(skip)]
    pub live: Option<Table>,
}

impl MetaVerification {
    /// True when every check passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when repair must rebuild the metadata files with [`reset`].
    pub fn needs_reset(&self) -> bool {
        self.problems.iter().any(|p| p.fix == MetaFix::ResetJournal)
    }

    /// True when the journal lost committed transactions (a damaged record with data
    /// after it, an unreadable header, a record that does not apply, missing records):
    /// shards written by those transactions then look unreferenced.
    pub fn is_journal_damaged(&self) -> bool {
        self.problems.iter().any(|p| p.kind == Kind::JournalDamaged)
    }

    /// True when a snapshot must be rewritten after opening.
    pub fn needs_slot_rewrite(&self) -> bool {
        self.problems.iter().any(|p| p.fix == MetaFix::RewriteSlot)
    }

    /// Decoded tables of every valid slot.
    pub fn slot_tables(&self) -> impl Iterator<Item = &Table> {
        self.slots.iter().filter_map(|s| s.table.as_ref())
    }

    fn problem(&mut self, kind: Kind, object: &Path, detail: String, fix: MetaFix) {
        self.problems.push(MetaProblem {
            kind,
            object: object.display().to_string(),
            detail,
            fix,
        });
    }
}

fn read_slot(meta_dir: &Path, slot: usize, codec: &MetaCodec) -> SlotState {
    let path = meta_dir.join(SLOTS[slot]);
    let mut state = SlotState {
        slot,
        path: path.clone(),
        status: SlotStatus::Damaged,
        txid: None,
        error: None,
        offset: None,
        is_primary: false,
        table: None,
        is_undecodable: false,
    };
    let object = path.display().to_string();
    match snapshot::read_snapshot(&path, codec.volume()) {
        Ok(snap) if !codec.can_read() => {
            // Without the key: the frame and hash verified, the sealing is the volume's.
            match codec.check_sealing(&object, 10, "snapshot", snap.is_sealed) {
                Ok(()) => {
                    state.status = SlotStatus::Valid;
                    state.txid = Some(snap.txid);
                }
                Err(e) => {
                    state.error = Some(e.to_string());
                    state.offset = Some(10);
                    state.is_undecodable = true;
                }
            }
        }
        Ok(snap) => {
            match codec.decode_table(&object, slot, snap.txid, snap.is_sealed, snap.payload) {
                Ok(table) => {
                    state.status = SlotStatus::Valid;
                    state.txid = Some(table.txid);
                    state.table = Some(table);
                }
                Err(e) => {
                    state.offset = match &e {
                        Error::Format(f) => Some(f.offset),
                        _ => Some(72),
                    };
                    state.error = Some(e.to_string());
                    state.is_undecodable = true;
                }
            }
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            state.status = SlotStatus::Missing;
        }
        Err(Error::Format(f)) => {
            state.offset = Some(f.offset);
            state.error = Some(f.to_string());
        }
        Err(e) => state.error = Some(e.to_string()),
    }
    state
}

fn read_journal(path: &Path, codec: &MetaCodec) -> (JournalState, Option<JournalScan>) {
    let mut state = JournalState {
        path: path.to_path_buf(),
        len_bytes: std::fs::metadata(path).ok().map(|m| m.len()),
        base_txid: None,
        records: 0,
        first_txid: None,
        last_txid: None,
        torn_tail: None,
        error: None,
    };
    let scan = match Journal::scan(path, codec.volume()) {
        Ok(scan) => scan,
        Err(e) => {
            state.error = Some(e.to_string());
            return (state, None);
        }
    };
    state.base_txid = Some(scan.base_txid);
    state.records = scan.records.len();
    state.first_txid = scan.records.first().map(|r| r.txid);
    state.last_txid = scan.records.last().map(|r| r.txid);
    if let Some(tail) = &scan.torn_tail {
        // If the file cannot be read again, call it damage: the stricter verdict.
        let is_crash_tear = journal::is_crash_torn(path, tail).unwrap_or(false);
        state.torn_tail = Some(TailState {
            offset: tail.offset,
            bytes: tail.bytes,
            reason: tail.reason.clone(),
            is_crash_tear,
        });
    }
    (state, Some(scan))
}

/// Reads and verifies the metadata in `meta_dir` with `codec` (a locked codec verifies
/// the structure only). Changes nothing.
pub fn verify(meta_dir: &Path, codec: &MetaCodec) -> MetaVerification {
    let slots: Vec<SlotState> = (0..SLOTS.len())
        .map(|slot| read_slot(meta_dir, slot, codec))
        .collect();
    let journal_path = meta_dir.join(JOURNAL_FILE);
    let (journal, scan) = read_journal(&journal_path, codec);
    let mut v = MetaVerification {
        slots,
        journal,
        primary: None,
        live_txid: None,
        replayed_records: 0,
        agreement: Agreement {
            status: AgreementStatus::Unchecked,
            detail: String::new(),
        },
        contents_checked: codec.can_read(),
        problems: Vec::new(),
        live: None,
    };

    // Slots. An undecodable table behind a good frame is picked by `MetaStore::open` all
    // the same (it goes by txid), so only a reset gets the volume past it.
    for i in 0..v.slots.len() {
        let s = &v.slots[i];
        let path = s.path.clone();
        match s.status {
            SlotStatus::Valid => {}
            SlotStatus::Damaged => {
                let detail = format!(
                    "snapshot does not verify: {}",
                    s.error.as_deref().unwrap_or("?")
                );
                let fix = if s.is_undecodable {
                    MetaFix::ResetJournal
                } else {
                    MetaFix::RewriteSlot
                };
                v.problem(Kind::SnapshotDamaged, &path, detail, fix);
            }
            SlotStatus::Missing => {
                // Until the first snapshot after mkfs only slot 0 exists, at txid 0, and
                // the journal starts at 0; any later state has both.
                let is_young =
                    i == 1 && v.journal.base_txid == Some(0) && v.slots[0].txid == Some(0);
                let is_unknown = i == 1 && v.journal.base_txid.is_none();
                if !is_young && !is_unknown {
                    v.problem(
                        Kind::SnapshotMissing,
                        &path,
                        "snapshot slot is missing".into(),
                        MetaFix::RewriteSlot,
                    );
                }
            }
        }
    }
    let primary = v
        .slots
        .iter()
        .filter(|s| s.status == SlotStatus::Valid)
        .max_by_key(|s| (s.txid, std::cmp::Reverse(s.slot)))
        .map(|s| s.slot);
    let Some(primary) = primary else {
        let why = v
            .slots
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    SLOTS[s.slot],
                    s.error.as_deref().unwrap_or("missing")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        v.problem(
            Kind::MetadataUnreadable,
            meta_dir,
            format!("no valid metadata snapshot ({why})"),
            MetaFix::None,
        );
        v.agreement.detail = "no valid snapshot".into();
        return v;
    };
    v.primary = Some(primary);
    v.slots[primary].is_primary = true;
    let primary_txid = v.slots[primary].txid.expect("valid slots have a txid");
    // Without the key there is no table: the checks below stop after the structure.
    let mut live = v.slots[primary].table.clone();

    // Journal.
    let object = journal_path.display().to_string();
    let Some(scan) = scan else {
        let detail = format!(
            "journal unreadable ({}): transactions after the snapshot at txid {primary_txid} are lost",
            v.journal.error.as_deref().unwrap_or("?")
        );
        v.problem(
            Kind::JournalDamaged,
            &journal_path,
            detail,
            MetaFix::ResetJournal,
        );
        v.agreement.detail = "journal unreadable".into();
        v.live_txid = live.as_ref().map(|t| t.txid);
        v.live = live;
        return v;
    };
    if let Err(e) = codec.check_sealing(&object, 10, "journal", scan.is_sealed) {
        v.problem(
            Kind::JournalDamaged,
            &journal_path,
            format!("{e}: its records cannot be trusted"),
            MetaFix::ResetJournal,
        );
        v.agreement.detail = "journal sealing differs from the volume's".into();
        v.live_txid = live.as_ref().map(|t| t.txid);
        v.live = live;
        return v;
    }
    if let Some(tail) = v.journal.torn_tail.clone() {
        if tail.is_crash_tear {
            v.problem(
                Kind::JournalTornTail,
                &journal_path,
                format!(
                    "torn tail at offset {} ({} bytes): {}; not applied",
                    tail.offset, tail.bytes, tail.reason
                ),
                MetaFix::CutTornTail,
            );
        } else {
            v.problem(
                Kind::JournalDamaged,
                &journal_path,
                format!(
                    "record at offset {} is damaged ({}) and {} bytes follow it: later transactions cannot be applied",
                    tail.offset, tail.reason, tail.bytes
                ),
                MetaFix::ResetJournal,
            );
        }
    }
    let last_txid = scan.records.last().map_or(scan.base_txid, |r| r.txid);
    if scan.base_txid > primary_txid {
        v.problem(
            Kind::JournalDamaged,
            &journal_path,
            format!(
                "journal starts after txid {} but the newest snapshot is at {primary_txid}: transactions are missing",
                scan.base_txid
            ),
            MetaFix::ResetJournal,
        );
    } else if let Some(live) = &mut live {
        for record in scan.records.iter().filter(|r| r.txid > primary_txid) {
            if let Err(e) = replay_record(live, codec, scan.is_sealed, &object, record) {
                v.problem(
                    Kind::JournalDamaged,
                    &journal_path,
                    format!("record txid {} does not apply: {e}", record.txid),
                    MetaFix::ResetJournal,
                );
                break;
            }
            v.replayed_records += 1;
        }
    }
    if last_txid < primary_txid {
        v.problem(
            Kind::JournalDamaged,
            &journal_path,
            format!(
                "journal ends at txid {last_txid}, before the newest snapshot (txid {primary_txid}): new transactions would be lost on replay"
            ),
            MetaFix::ResetJournal,
        );
    }
    let Some(live) = live else {
        v.agreement.detail =
            "not checked: the metadata is encrypted and no passphrase was given".into();
        return v;
    };
    v.live_txid = Some(live.txid);
    v.live = Some(live);

    // Agreement: the secondary plus the journal up to the primary's txid must equal it.
    let secondary = v
        .slots
        .iter()
        .find(|s| s.slot != primary && s.status == SlotStatus::Valid)
        .map(|s| s.slot);
    let Some(secondary) = secondary else {
        v.agreement = Agreement {
            status: AgreementStatus::SingleSlot,
            detail: format!("only {} is valid", SLOTS[primary]),
        };
        return v;
    };
    let sec_path = v.slots[secondary].path.clone();
    let mut table = v.slots[secondary]
        .table
        .clone()
        .expect("valid slots hold a table");
    let sec_txid = table.txid;
    let target = v.slots[primary].table.as_ref().expect("valid");
    let verdict = if scan.base_txid > sec_txid {
        Err(format!(
            "{} (txid {sec_txid}) is older than the journal's base (txid {}): it cannot rebuild the state",
            SLOTS[secondary], scan.base_txid
        ))
    } else if last_txid < primary_txid {
        Err(format!(
            "the journal ends at txid {last_txid} and cannot bring {} (txid {sec_txid}) to txid {primary_txid}",
            SLOTS[secondary]
        ))
    } else {
        let mut outcome = Ok(0usize);
        for record in scan
            .records
            .iter()
            .filter(|r| r.txid > sec_txid && r.txid <= primary_txid)
        {
            if let Err(e) = replay_record(&mut table, codec, scan.is_sealed, &object, record) {
                outcome = Err(format!(
                    "record txid {} does not apply to {}: {e}",
                    record.txid, SLOTS[secondary]
                ));
                break;
            }
            outcome = outcome.map(|n| n + 1);
        }
        match outcome {
            Ok(n) if &table == target => Ok(format!(
                "{} (txid {sec_txid}) plus {n} journal records equals {} (txid {primary_txid})",
                SLOTS[secondary], SLOTS[primary]
            )),
            Ok(n) => Err(format!(
                "{} (txid {sec_txid}) plus {n} journal records differs from {} (txid {primary_txid})",
                SLOTS[secondary], SLOTS[primary]
            )),
            Err(e) => Err(e),
        }
    };
    match verdict {
        Ok(detail) => {
            v.agreement = Agreement {
                status: AgreementStatus::Agree,
                detail,
            }
        }
        Err(detail) => {
            v.agreement = Agreement {
                status: AgreementStatus::Disagree,
                detail: detail.clone(),
            };
            v.problem(
                Kind::SnapshotMismatch,
                &sec_path,
                detail,
                MetaFix::RewriteSlot,
            );
        }
    }
    v
}

/// Rebuilds the metadata files around `live`: saves the journal as
/// `journal.fsck-saved.UNIXSECS` (when it exists), writes `live` into both snapshot
/// slots (the non-primary first), then starts a fresh journal based at `live.txid`.
///
/// Crash-safe at every step: the newest valid slot is at `live.txid` from the first
/// write on, and the old journal holds no good record after it.
pub fn reset(
    meta_dir: &Path,
    codec: &MetaCodec,
    live: &Table,
    primary: Option<usize>,
) -> crate::Result<PathBuf> {
    let journal_path = meta_dir.join(JOURNAL_FILE);
    let stamp = crate::types::unix_now();
    let saved = meta_dir.join(format!("{JOURNAL_FILE}.fsck-saved.{stamp}"));
    match std::fs::read(&journal_path) {
        Ok(bytes) => {
            crate::store::write_atomic(&saved, &bytes).map_err(|e| Error::io(&saved, e))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&journal_path, e)),
    }
    let first = 1 - primary.unwrap_or(1);
    for slot in [first, 1 - first] {
        let body = codec.encode_table(slot, live)?;
        snapshot::write_snapshot(
            &meta_dir.join(SLOTS[slot]),
            codec.volume(),
            live.txid,
            &body,
            codec.is_sealed(),
        )?;
    }
    Journal::create(&journal_path, codec.volume(), live.txid, codec.is_sealed())?;
    tracing::info!(txid = live.txid, saved = %saved.display(), "metadata files rebuilt from the live state");
    Ok(saved)
}

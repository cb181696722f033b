//! Copy-on-write metadata: inode table, transactions, journal, snapshots, replay.
//!
//! The table lives in memory. Each change is an [`Op`] applied at once and encoded into
//! the open batch; [`MetaStore::commit`] writes the batch as one journal record (one
//! transaction: all of it or none of it survives a crash) and fsyncs the journal. When the
//! journal passes its bound, the whole table is written to the older of two snapshot
//! slots and the journal is cut back to the records after the other slot, so either slot
//! plus the journal rebuilds the newest state. Cost per op: O(1) amortised.
//!
//! On an encrypted volume every snapshot payload and journal record is sealed at rest by
//! [`MetaCodec`] (see `codec`); the live table in memory is plaintext.
//!
//! This module knows nothing of disks or shards beyond the references it stores.

pub mod codec;
pub mod inode;
pub mod journal;
pub mod packs;
pub mod snapshot;
pub mod table;

pub use codec::MetaCodec;
pub use inode::{BlockMap, Chunk, FileKind, Inode, PackedRef, StripeRef, Timestamp};
pub use packs::{PackChunk, PackUse, Packs};
pub use table::{DirEntry, Directory, Op, Table};

use crate::error::{Error, ReadOnlyReason, Result};
use crate::format::{FormatError, FormatErrorKind};
use journal::{JOURNAL_FILE, Journal, JournalScan, TornTail};
use snapshot::{SLOTS, SlotReport};
use std::path::{Path, PathBuf};

/// Journal size past which a commit also writes a snapshot.
pub const DEFAULT_JOURNAL_LIMIT_BYTES: u64 = 64 << 20;
/// Open-batch size past which callers should commit rather than keep buffering.
pub const BATCH_SOFT_LIMIT_BYTES: usize = 16 << 20;

/// What opening the metadata found.
#[derive(Debug, serde::Serialize)]
pub struct OpenReport {
    /// Slot the state was loaded from.
    pub snapshot_slot: usize,
    /// Transaction id of that snapshot.
    pub snapshot_txid: u64,
    /// Journal records replayed on top of it.
    pub replayed_records: usize,
    /// Transaction id after replay.
    pub txid: u64,
    /// A torn or corrupt journal tail that was not applied.
    pub torn_tail: Option<TornTail>,
    /// Both snapshot slots as found.
    pub slots: Vec<SlotReport>,
}

/// The metadata of one open volume.
pub struct MetaStore {
    dir: PathBuf,
    codec: MetaCodec,
    /// The live table. Change it only through [`MetaStore::record`].
    table: Table,
    journal: Option<Journal>,
    pending: Vec<u8>,
    pending_ops: usize,
    slot_txids: [Option<u64>; 2],
    journal_limit_bytes: u64,
    /// Journal length right after the newest snapshot (or at open).
    journal_bytes_at_snapshot: u64,
    /// Size of the newest snapshot's body.
    snapshot_bytes: u64,
    read_only: Option<ReadOnlyReason>,
}

fn encode_op(out: &mut Vec<u8>, op: &Op) {
    let bytes = postcard::to_stdvec(op).expect("ops always serialize");
    out.extend_from_slice(&bytes);
}

/// Decodes a journal record's payload into its ops.
pub fn decode_ops(object: &str, offset: u64, mut payload: &[u8]) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    while !payload.is_empty() {
        let (op, rest) = postcard::take_from_bytes::<Op>(payload).map_err(|e| {
            FormatError::new(
                object,
                offset,
                FormatErrorKind::Body(format!("undecodable transaction: {e}")),
            )
        })?;
        ops.push(op);
        payload = rest;
    }
    Ok(ops)
}

/// Opens a record of the journal `object` with `codec` (the journal's header said
/// `is_sealed`) and applies its ops to a table (used by replay and verification).
pub fn replay_record(
    table: &mut Table,
    codec: &MetaCodec,
    is_sealed: bool,
    object: &str,
    record: &journal::JournalRecord,
) -> Result<()> {
    let (record_offset, txid) = (record.offset, record.txid);
    let ops = codec.decode_record(object, record_offset, txid, is_sealed, &record.payload)?;
    for op in decode_ops(object, record_offset, &ops)? {
        table.apply(&op).map_err(|e| {
            FormatError::new(
                object,
                record_offset,
                FormatErrorKind::Body(format!("transaction {txid} does not apply: {e}")),
            )
        })?;
    }
    table.txid = txid;
    Ok(())
}

impl MetaStore {
    /// Writes the metadata of a new volume: snapshot slot 0 at transaction 0 holding the
    /// root directory, and an empty journal, both encoded by `codec`.
    pub fn create(dir: &Path, codec: &MetaCodec, root: Inode) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for slot in SLOTS {
            let path = dir.join(slot);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(path, e));
            }
        }
        let table = Table::with_root(root);
        let volume = codec.volume();
        let body = codec.encode_table(0, &table)?;
        snapshot::write_snapshot(&dir.join(SLOTS[0]), volume, 0, &body, codec.is_sealed())?;
        Journal::create(&dir.join(JOURNAL_FILE), volume, 0, codec.is_sealed())?;
        Ok(())
    }

    /// Loads the newest valid snapshot and replays the journal after it. Read-write opens
    /// cut a torn journal tail (after reporting it) so appends continue cleanly.
    ///
    /// A sealed snapshot or record that fails authentication is an error, read-only or
    /// not: it is tampering or damage that fsck must look at, never a reason to fall back
    /// to other metadata silently.
    pub fn open(dir: &Path, codec: MetaCodec, writable: bool) -> Result<(MetaStore, OpenReport)> {
        let volume = codec.volume();
        let (newest, slots) = snapshot::newest_valid(dir, volume);
        let Some((slot, snap)) = newest else {
            let why = slots
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.path.display(),
                        s.error.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Format(FormatError::new(
                dir.display().to_string(),
                0,
                FormatErrorKind::Body(format!("no valid metadata snapshot ({why})")),
            )));
        };
        let snapshot_bytes = snap.payload.len() as u64;
        let snap_txid = snap.txid;
        let mut table = codec.decode_table(
            &dir.join(SLOTS[slot]).display().to_string(),
            slot,
            snap.txid,
            snap.is_sealed,
            snap.payload,
        )?;
        let journal_path = dir.join(JOURNAL_FILE);
        let (journal, scan) = if writable {
            let (j, s) = Journal::open(&journal_path, volume)?;
            (Some(j), s)
        } else {
            (None, Journal::scan(&journal_path, volume)?)
        };
        let replayed = Self::replay(&mut table, &codec, &journal_path, &scan, snap_txid)?;
        let journal_bytes_at_snapshot = scan
            .records
            .iter()
            .find(|r| r.txid > snap_txid)
            .map_or(scan.valid_len, |r| r.offset);
        let mut slot_txids = [None, None];
        for report in &slots {
            if report.error.is_none() {
                slot_txids[report.slot] = report.txid;
            }
        }
        let report = OpenReport {
            snapshot_slot: slot,
            snapshot_txid: snap_txid,
            replayed_records: replayed,
            txid: table.txid,
            torn_tail: scan.torn_tail,
            slots,
        };
        let store = MetaStore {
            dir: dir.to_path_buf(),
            codec,
            table,
            journal,
            pending: Vec::new(),
            pending_ops: 0,
            slot_txids,
            journal_limit_bytes: DEFAULT_JOURNAL_LIMIT_BYTES,
            journal_bytes_at_snapshot,
            snapshot_bytes,
            read_only: (!writable).then_some(ReadOnlyReason::Requested),
        };
        Ok((store, report))
    }

    fn replay(
        table: &mut Table,
        codec: &MetaCodec,
        path: &Path,
        scan: &JournalScan,
        from_txid: u64,
    ) -> Result<usize> {
        let object = path.display().to_string();
        // Appends continue with the header's sealing, so it must be the volume's.
        codec.check_sealing(&object, 10, "journal", scan.is_sealed)?;
        if scan.base_txid > from_txid {
            return Err(Error::Format(FormatError::new(
                object,
                0,
                FormatErrorKind::Body(format!(
                    "journal starts after transaction {} but the snapshot is at {from_txid}: transactions are missing",
                    scan.base_txid
                )),
            )));
        }
        let mut replayed = 0;
        for record in scan.records.iter().filter(|r| r.txid > from_txid) {
            replay_record(table, codec, scan.is_sealed, &object, record)?;
            replayed += 1;
        }
        Ok(replayed)
    }

    /// The live table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Why the metadata refuses changes, if it does.
    pub fn read_only(&self) -> Option<ReadOnlyReason> {
        self.read_only
    }

    /// Fails with `ReadOnly` when changes are refused.
    pub fn check_writable(&self) -> Result<()> {
        match self.read_only {
            Some(reason) => Err(Error::ReadOnly(reason)),
            None => Ok(()),
        }
    }

    /// Sets the journal size that triggers a snapshot.
    pub fn set_journal_limit(&mut self, bytes: u64) {
        self.journal_limit_bytes = bytes;
    }

    /// Applies an op to the live table and adds it to the open batch.
    pub fn record(&mut self, op: Op) -> Result<()> {
        self.check_writable()?;
        if let Err(e) = self.table.apply(&op) {
            tracing::error!(error = %e, "metadata op refused: internal inconsistency");
            return Err(Error::Invalid("internal metadata inconsistency"));
        }
        encode_op(&mut self.pending, &op);
        self.pending_ops += 1;
        Ok(())
    }

    /// Hands out a fresh inode number.
    pub fn allocate_inode(&mut self) -> Result<crate::types::InodeId> {
        let ino = self.table.next_ino;
        self.record(Op::Allocate {
            next_ino: ino + 1,
            next_stripe: self.table.next_stripe,
        })?;
        Ok(crate::types::InodeId(ino))
    }

    /// Hands out a fresh stripe id.
    pub fn allocate_stripe(&mut self) -> Result<crate::types::StripeId> {
        let id = self.table.next_stripe;
        self.record(Op::Allocate {
            next_ino: self.table.next_ino,
            next_stripe: id + 1,
        })?;
        Ok(crate::types::StripeId(id))
    }

    /// Bytes in the open batch.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// True when there are uncommitted changes.
    pub fn has_pending(&self) -> bool {
        self.pending_ops > 0
    }

    /// Writes the open batch as one journal transaction and makes it durable. A failed
    /// journal write latches the store read-only: the state on disk is then unknown and
    /// retrying could tear it further.
    pub fn commit(&mut self) -> Result<()> {
        if self.pending_ops == 0 {
            return Ok(());
        }
        self.check_writable()?;
        let journal = self
            .journal
            .as_mut()
            .expect("writable stores have a journal");
        let txid = journal.last_txid() + 1;
        let payload = self.codec.encode_record(txid, &self.pending)?;
        let result = journal
            .append(txid, &payload)
            .and_then(|()| journal.commit());
        if let Err(e) = result {
            tracing::error!(error = %e, "journal commit failed; volume is now read-only");
            self.read_only = Some(ReadOnlyReason::JournalFailed);
            return Err(e);
        }
        self.table.txid = txid;
        self.pending.clear();
        self.pending_ops = 0;
        // Snapshot once the journal grown since the newest snapshot outweighs both the bound
        // and twice the snapshot itself: a snapshot then costs at most a constant share of
        // the bytes journaled, so each op stays O(1) amortised however large the table.
        let grown = journal
            .len_bytes()
            .saturating_sub(self.journal_bytes_at_snapshot);
        if grown > self.journal_limit_bytes.max(2 * self.snapshot_bytes) {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Writes the whole table to the older snapshot slot and cuts the journal back to the
    /// records after the other slot. Call only with an empty batch.
    pub fn snapshot(&mut self) -> Result<()> {
        self.check_writable()?;
        debug_assert_eq!(self.pending_ops, 0, "snapshot with an open batch");
        let txid = self.table.txid;
        let slot = match self.slot_txids {
            [None, _] => 0,
            [_, None] => 1,
            [Some(a), Some(b)] => usize::from(a > b),
        };
        let body = self.codec.encode_table(slot, &self.table)?;
        snapshot::write_snapshot(
            &self.dir.join(SLOTS[slot]),
            self.codec.volume(),
            txid,
            &body,
            self.codec.is_sealed(),
        )?;
        self.slot_txids[slot] = Some(txid);
        let keep_after = self.slot_txids[1 - slot].unwrap_or(txid).min(txid);
        let journal = self
            .journal
            .as_mut()
            .expect("writable stores have a journal");
        if keep_after > journal.base_txid()
            && let Err(e) = journal.compact(keep_after)
        {
            self.read_only = Some(ReadOnlyReason::JournalFailed);
            return Err(e);
        }
        self.journal_bytes_at_snapshot = journal.len_bytes();
        self.snapshot_bytes = body.len() as u64;
        tracing::debug!(slot, txid, "metadata snapshot written");
        Ok(())
    }

    /// Bytes in the journal file.
    pub fn journal_bytes(&self) -> u64 {
        self.journal.as_ref().map_or(0, Journal::len_bytes)
    }
}

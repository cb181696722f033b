//! How the metadata becomes bytes at rest: postcard for the table (a snapshot's payload)
//! and for each transaction's ops (a journal record's payload), then, on an encrypted
//! volume, XChaCha20-Poly1305 under the metadata subkey (`MasterKey::metadata_cipher`,
//! domain-separated from the data key).
//!
//! A sealed payload is `nonce (24) || ciphertext || tag (16)`. Its associated data binds
//! it to the one place it belongs, so a payload moved anywhere else fails authentication:
//!
//! ```text
//! offset size field
//! 0      8    domain   b"ARGSMETA"
//! 8      1    object   0 = snapshot slot 0, 1 = snapshot slot 1, 2 = journal record
//! 9      16   volume   volume UUID
//! 25     8    txid     u64 LE: the snapshot's txid, or the record's
//! ```
//!
//! So a flipped byte, a record swapped with another or copied to a later position
//! (replayed), a snapshot put in the other slot or given another txid, an object of
//! another volume, and a plaintext object on a volume that seals its metadata (a
//! downgrade) all fail with [`FormatErrorKind::Unauthenticated`]; nothing is decoded
//! from them. Cutting whole records off the journal's end is not detected: on its own
//! it is what a crash before those commits leaves (the threat model in argosfs(5) says
//! so).
//!
//! The frames around the payloads (the snapshot frame with its BLAKE3 hash, the journal
//! record CRCs) are over the sealed bytes, so structure checks need no key: a codec made
//! with [`MetaCodec::locked`] verifies framing but reads no content.

use super::table::Table;
use crate::data::crypto::{Cipher, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::{FormatError, FormatErrorKind};
use crate::types::VolumeId;
use std::borrow::Cow;

/// Length of the associated data.
const AAD_LEN: usize = 33;
const AAD_DOMAIN: &[u8; 8] = b"ARGSMETA";
/// Object code of a journal record in the associated data (snapshot slots use 0 and 1).
const JOURNAL_RECORD: u8 = 2;

/// Whether and how a volume's metadata is sealed.
#[derive(Debug, Clone)]
enum Sealing {
    /// An unencrypted volume: payloads are plain postcard.
    Plain,
    /// An encrypted volume, key at hand.
    Sealed(Cipher),
    /// An encrypted volume without its key: framing verifies, contents stay closed.
    Locked,
}

/// Encodes and decodes the metadata of one volume.
#[derive(Debug, Clone)]
pub struct MetaCodec {
    volume: VolumeId,
    sealing: Sealing,
}

impl MetaCodec {
    /// The codec of an unencrypted volume.
    pub fn plain(volume: VolumeId) -> MetaCodec {
        MetaCodec {
            volume,
            sealing: Sealing::Plain,
        }
    }

    /// The codec of an encrypted volume, with its metadata cipher.
    pub fn sealed(volume: VolumeId, cipher: Cipher) -> MetaCodec {
        MetaCodec {
            volume,
            sealing: Sealing::Sealed(cipher),
        }
    }

    /// The codec of an encrypted volume whose key is not known: enough to check frames
    /// and checksums, not to read or write anything.
    pub fn locked(volume: VolumeId) -> MetaCodec {
        MetaCodec {
            volume,
            sealing: Sealing::Locked,
        }
    }

    /// The volume the metadata belongs to.
    pub fn volume(&self) -> VolumeId {
        self.volume
    }

    /// Whether payloads at rest are sealed (the volume is encrypted).
    pub fn is_sealed(&self) -> bool {
        !matches!(self.sealing, Sealing::Plain)
    }

    /// Whether contents can be read and written (false without the key).
    pub fn can_read(&self) -> bool {
        !matches!(self.sealing, Sealing::Locked)
    }

    fn cipher(&self) -> Result<Option<&Cipher>> {
        match &self.sealing {
            Sealing::Plain => Ok(None),
            Sealing::Sealed(cipher) => Ok(Some(cipher)),
            Sealing::Locked => Err(Error::PassphraseRequired),
        }
    }

    fn aad(&self, object: u8, txid: u64) -> [u8; AAD_LEN] {
        let mut aad = [0u8; AAD_LEN];
        aad[0..8].copy_from_slice(AAD_DOMAIN);
        aad[8] = object;
        aad[9..25].copy_from_slice(&self.volume.0);
        aad[25..33].copy_from_slice(&txid.to_le_bytes());
        aad
    }

    /// The payload of snapshot `slot` holding `table` (at `table.txid`).
    pub fn encode_table(&self, slot: usize, table: &Table) -> Result<Vec<u8>> {
        let Some(cipher) = self.cipher()? else {
            return Ok(postcard::to_stdvec(table).expect("tables serialize"));
        };
        // Serialize behind room for the nonce and seal in place: no copy of the table.
        let mut out = postcard::to_extend(table, vec![0u8; NONCE_LEN]).expect("tables serialize");
        let aad = self.aad(slot_code(slot), table.txid);
        let (nonce, tag) = cipher.seal_in_place(&aad, &mut out[NONCE_LEN..]);
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The table in snapshot `slot` at `txid`, whose frame said `is_sealed`. `object`
    /// names the file for errors.
    pub fn decode_table(
        &self,
        object: &str,
        slot: usize,
        txid: u64,
        is_sealed: bool,
        mut payload: Vec<u8>,
    ) -> Result<Table> {
        // The payload follows the snapshot frame's header and its txid and hash.
        const PAYLOAD_AT: u64 = 72;
        self.check_sealing(object, PAYLOAD_AT, "snapshot", is_sealed)?;
        let plain: &[u8] = match self.cipher()? {
            None => &payload,
            Some(cipher) => {
                let aad = self.aad(slot_code(slot), txid);
                open_in_place(cipher, &aad, &mut payload).ok_or_else(|| {
                    FormatError::new(
                        object,
                        PAYLOAD_AT,
                        FormatErrorKind::Unauthenticated(format!("snapshot at txid {txid}")),
                    )
                })?
            }
        };
        let mut table: Table = postcard::from_bytes(plain).map_err(|e| {
            FormatError::new(
                object,
                PAYLOAD_AT,
                FormatErrorKind::Body(format!("undecodable snapshot: {e}")),
            )
        })?;
        table.txid = txid;
        table.rebuild_packs();
        Ok(table)
    }

    /// The journal payload of transaction `txid` whose encoded ops are `ops`.
    pub fn encode_record<'a>(&self, txid: u64, ops: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        Ok(match self.cipher()? {
            None => Cow::Borrowed(ops),
            Some(cipher) => Cow::Owned(cipher.seal(&self.aad(JOURNAL_RECORD, txid), ops)),
        })
    }

    /// The encoded ops of the journal record of `txid` at `offset` of the journal
    /// `object`, whose header said `is_sealed`.
    pub fn decode_record<'a>(
        &self,
        object: &str,
        offset: u64,
        txid: u64,
        is_sealed: bool,
        payload: &'a [u8],
    ) -> Result<Cow<'a, [u8]>> {
        self.check_sealing(object, offset, "journal record", is_sealed)?;
        Ok(match self.cipher()? {
            None => Cow::Borrowed(payload),
            Some(cipher) => Cow::Owned(
                cipher
                    .open(&self.aad(JOURNAL_RECORD, txid), payload)
                    .map_err(|_| {
                        FormatError::new(
                            object,
                            offset,
                            FormatErrorKind::Unauthenticated(format!(
                                "journal record of txid {txid}"
                            )),
                        )
                    })?,
            ),
        })
    }

    /// Refuses an object whose sealing differs from the volume's: a plaintext object on
    /// an encrypted volume could have been put there by anyone, and a sealed one on a
    /// plain volume cannot be read.
    pub fn check_sealing(
        &self,
        object: &str,
        offset: u64,
        what: &str,
        is_sealed: bool,
    ) -> Result<()> {
        match (self.is_sealed(), is_sealed) {
            (true, false) => Err(FormatError::new(
                object,
                offset,
                FormatErrorKind::Unauthenticated(format!(
                    "plaintext {what} on a volume whose metadata is encrypted"
                )),
            )
            .into()),
            (false, true) => Err(FormatError::new(
                object,
                offset,
                FormatErrorKind::Body(format!(
                    "{what} is encrypted but the volume is not: it is not this volume's"
                )),
            )
            .into()),
            _ => Ok(()),
        }
    }
}

fn slot_code(slot: usize) -> u8 {
    u8::try_from(slot).expect("two snapshot slots")
}

/// Opens `nonce || ciphertext || tag` in place and returns the plaintext within it.
fn open_in_place<'a>(cipher: &Cipher, aad: &[u8], sealed: &'a mut [u8]) -> Option<&'a [u8]> {
    let len = sealed.len().checked_sub(NONCE_LEN + TAG_LEN)?;
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let (body, tag) = rest.split_at_mut(len);
    let nonce: [u8; NONCE_LEN] = (&*nonce).try_into().expect("split at NONCE_LEN");
    let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("TAG_LEN bytes remain");
    cipher.open_in_place(aad, &nonce, body, &tag).ok()?;
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::crypto::{KdfParams, MasterKey};
    use crate::meta::{FileKind, Inode};

    fn codecs() -> (MetaCodec, MetaCodec, MetaCodec) {
        let volume = VolumeId::random();
        let key = MasterKey::derive(b"pw", &KdfParams::generate_cheap()).unwrap();
        (
            MetaCodec::plain(volume),
            MetaCodec::sealed(volume, key.metadata_cipher()),
            MetaCodec::locked(volume),
        )
    }

    fn table(txid: u64) -> Table {
        let mut t = Table::with_root(Inode::new(FileKind::Directory, 0o755, 0, 0));
        t.txid = txid;
        t
    }

    #[test]
    fn tables_round_trip_and_sealed_ones_hide_their_bytes() {
        let (plain, sealed, locked) = codecs();
        let t = table(7);
        let p = plain.encode_table(0, &t).unwrap();
        assert_eq!(plain.decode_table("s", 0, 7, false, p.clone()).unwrap(), t);
        let s = sealed.encode_table(1, &t).unwrap();
        assert_eq!(s.len(), p.len() + NONCE_LEN + TAG_LEN);
        assert!(!s.windows(p.len()).any(|w| w == p.as_slice()));
        assert_eq!(sealed.decode_table("s", 1, 7, true, s.clone()).unwrap(), t);
        assert!(matches!(
            locked.decode_table("s", 1, 7, true, s),
            Err(Error::PassphraseRequired)
        ));
        assert!(matches!(
            locked.encode_table(0, &t),
            Err(Error::PassphraseRequired)
        ));
    }

    fn is_unauthenticated<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(
            r,
            Err(Error::Format(FormatError {
                kind: FormatErrorKind::Unauthenticated(_),
                ..
            }))
        )
    }

    #[test]
    fn a_sealed_table_opens_only_in_its_slot_at_its_txid_unaltered() {
        let (plain, sealed, _) = codecs();
        let s = sealed.encode_table(0, &table(7)).unwrap();
        assert!(is_unauthenticated(sealed.decode_table(
            "s",
            1,
            7,
            true,
            s.clone()
        )));
        assert!(is_unauthenticated(sealed.decode_table(
            "s",
            0,
            8,
            true,
            s.clone()
        )));
        for at in [0, NONCE_LEN, s.len() - 1] {
            let mut bad = s.clone();
            bad[at] ^= 1;
            assert!(is_unauthenticated(
                sealed.decode_table("s", 0, 7, true, bad)
            ));
        }
        assert!(is_unauthenticated(sealed.decode_table(
            "s",
            0,
            7,
            true,
            s[..10].to_vec()
        )));
        // Another volume, or another key, for the same bytes.
        let (_, other, _) = codecs();
        assert!(is_unauthenticated(other.decode_table("s", 0, 7, true, s)));
        // A plaintext table where sealed ones are expected is refused, not read.
        let p = plain.encode_table(0, &table(7)).unwrap();
        assert!(is_unauthenticated(sealed.decode_table("s", 0, 7, false, p)));
    }

    #[test]
    fn records_open_only_at_their_txid() {
        let (plain, sealed, locked) = codecs();
        let ops = b"some encoded ops";
        assert_eq!(&*plain.encode_record(3, ops).unwrap(), ops);
        let s = sealed.encode_record(3, ops).unwrap().into_owned();
        assert!(!s.windows(ops.len()).any(|w| w == ops));
        assert_eq!(&*sealed.decode_record("j", 44, 3, true, &s).unwrap(), ops);
        assert!(is_unauthenticated(
            sealed.decode_record("j", 44, 4, true, &s)
        ));
        assert!(is_unauthenticated(
            sealed.decode_record("j", 44, 3, false, ops)
        ));
        assert!(matches!(
            locked.decode_record("j", 44, 3, true, &s),
            Err(Error::PassphraseRequired)
        ));
        assert!(matches!(
            plain.decode_record("j", 44, 3, true, &s),
            Err(Error::Format(_))
        ));
        // A record sealed as a snapshot does not open as a record, nor the reverse.
        let t = sealed.encode_table(0, &table(3)).unwrap();
        assert!(is_unauthenticated(
            sealed.decode_record("j", 44, 3, true, &t)
        ));
    }
}

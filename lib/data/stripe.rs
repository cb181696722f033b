//! One stripe through the pipeline: plain bytes → frames, each compressed (when it
//! shrinks) and sealed (when the volume is encrypted) → payload split into k data + m
//! parity shards.
//!
//! ```text
//! payload   = the plain bytes                      (flags 0: nothing compressed or sealed)
//!           | frame table || frames                (FLAG_COMPRESSED and/or FLAG_ENCRYPTED;
//!                                                   layout in `frame.rs`)
//! data      = payload || zeros, k * shard_len bytes; shard i is bytes [i*shard_len, (i+1)*shard_len)
//! parity    = m shards of shard_len bytes from the erasure codec
//! ```
//!
//! A stripe is framed when the volume seals, or compresses and some frame shrank; a stripe
//! of incompressible bytes on an unencrypted volume stays plain, so small reads take it
//! straight from the data shards. Frames let a small read open only the frames it covers
//! ([`StripeCodec::open_frame`]); [`StripeCodec::decode`] opens them all.
//!
//! Owns the payload layout and [`StripeInfo`]; the bytes of a stripe are only ever held
//! in one data buffer (plus parity), never as k separate copies. It does no I/O and
//! never sees a disk or an inode record.

use super::compress::{self, Compression};
use super::crypto::{Cipher, NONCE_LEN, TAG_LEN};
use super::erasure::ErasureCodec;
use super::frame::{self, FRAME_AAD_LEN, FRAME_BYTES, FRAME_COMPRESSED, FrameShape, FrameTable};
use crate::types::{InodeId, StripeId, VolumeId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

/// [`StripeInfo::flags`] bit: the payload is framed and some frame is a zstd frame.
pub const FLAG_COMPRESSED: u8 = 1;
/// [`StripeInfo::flags`] bit: the payload is framed and every frame is sealed with the
/// volume's stripe key.
pub const FLAG_ENCRYPTED: u8 = 2;
/// Frames in a row that zstd could not shrink after which the rest of the stripe is
/// stored without trying (incompressible data, such as media, archives or ciphertext,
/// then costs one try per 64 KiB, not per frame; PERFORMANCE.md, "Giving up on
/// incompressible stripes").
pub const COMPRESS_GIVE_UP_FRAMES: usize = 4;
/// Every flag bit this version understands.
const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_ENCRYPTED;

/// What metadata keeps about an encoded stripe (kept in memory for every stripe: no
/// per-frame data here; the frame table is in the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeInfo {
    /// [`FLAG_COMPRESSED`] and [`FLAG_ENCRYPTED`] bits.
    pub flags: u8,
    /// Bytes before compression.
    pub plain_len: u32,
    /// Bytes after compression and encryption: what is split into shards.
    pub payload_len: u32,
    /// Bytes of each shard: a positive multiple of the codec alignment, with
    /// `k * shard_len >= payload_len` (the rest is zero padding).
    pub shard_len: u32,
    /// CRC32C of the payload: the end-to-end check after reconstruction.
    pub payload_crc: u32,
}

impl StripeInfo {
    /// True when some frame of the payload is compressed.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// True when the payload's frames are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    /// True when the payload is a frame table and frames rather than the plain bytes.
    pub fn is_framed(&self) -> bool {
        self.flags != 0
    }
}

/// Where a stripe belongs; bound into each sealed frame so that a frame moved to another
/// volume, file, position or stripe fails authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeContext {
    /// The volume.
    pub volume: VolumeId,
    /// The file.
    pub inode: InodeId,
    /// The stripe's position in the file (byte offset / stripe size).
    pub chunk: u64,
    /// The stripe: ids are never reused and stay with the stripe when its shards move,
    /// so an older version of the same chunk replayed in its place fails.
    pub stripe: StripeId,
}

impl StripeContext {
    /// The associated data of frame `index` of `count`: volume (16 bytes) || inode (u64
    /// LE) || chunk (u64 LE) || stripe (u64 LE) || index (u32 LE) || count (u32 LE) ||
    /// BLAKE3 of the frame table (32 bytes).
    pub fn frame_aad(&self, index: u32, count: u32, table_hash: &[u8; 32]) -> [u8; FRAME_AAD_LEN] {
        let mut out = [0u8; FRAME_AAD_LEN];
        out[..16].copy_from_slice(&self.volume.0);
        out[16..24].copy_from_slice(&self.inode.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.chunk.to_le_bytes());
        out[32..40].copy_from_slice(&self.stripe.0.to_le_bytes());
        out[40..44].copy_from_slice(&index.to_le_bytes());
        out[44..48].copy_from_slice(&count.to_le_bytes());
        out[48..].copy_from_slice(table_hash);
        out
    }
}

/// A stripe ready to be written as k + m shards.
pub struct EncodedStripe {
    /// What metadata keeps about the stripe.
    pub info: StripeInfo,
    /// The k data shards, back to back: payload then zero padding.
    data: Vec<u8>,
    parity: Vec<Vec<u8>>,
    k: usize,
}

impl EncodedStripe {
    /// Shard `index`: `0..k` are data, `k..k+m` parity. Panics when `index` is not below
    /// [`EncodedStripe::shard_count`].
    pub fn shard(&self, index: usize) -> &[u8] {
        let shard_len = self.shard_len();
        if index < self.k {
            &self.data[index * shard_len..(index + 1) * shard_len]
        } else {
            &self.parity[index - self.k]
        }
    }

    /// k + m.
    pub fn shard_count(&self) -> usize {
        self.k + self.parity.len()
    }

    /// Every shard in index order.
    pub fn shards(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.shard_count()).map(|index| self.shard(index))
    }

    /// Bytes of each shard.
    pub fn shard_len(&self) -> usize {
        self.info.shard_len as usize
    }
}

impl fmt::Debug for EncodedStripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedStripe")
            .field("info", &self.info)
            .field("k", &self.k)
            .field("m", &self.parity.len())
            .finish_non_exhaustive()
    }
}

/// Encodes and decodes stripes for one volume.
pub struct StripeCodec {
    k: u8,
    m: u8,
    compression: Compression,
    cipher: Option<Cipher>,
    erasure: Arc<dyn ErasureCodec>,
    frame_bytes: NonZeroU32,
}

impl fmt::Debug for StripeCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeCodec")
            .field("k", &self.k)
            .field("m", &self.m)
            .field("compression", &self.compression)
            .field("encrypted", &self.cipher.is_some())
            .field("erasure", &self.erasure.id())
            .field("frame_bytes", &self.frame_bytes)
            .finish()
    }
}

/// Why a stripe could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// Fewer than k shards were available.
    #[error("only {have} shards available, {need} needed to rebuild the stripe")]
    TooFewShards {
        /// Shards present.
        have: usize,
        /// Shards needed (k).
        need: usize,
    },
    /// A shard does not have the length the stripe records.
    #[error("shard {index} is {found} bytes, expected {expected}")]
    ShardSize {
        /// Position of the shard in the stripe.
        index: usize,
        /// The length it should have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// The reassembled payload does not match its CRC32C (or its padding is not zero).
    #[error("stripe payload checksum mismatch")]
    Checksum,
    /// Decryption failed: wrong key, or the ciphertext was altered or moved.
    #[error("stripe failed authentication (wrong key, or altered or moved ciphertext)")]
    Authentication,
    /// The stripe is encrypted and the codec has no key.
    #[error("stripe is encrypted and no key was given")]
    KeyRequired,
    /// A frame table breaks the layout's rules (or disagrees with the stripe record).
    #[error("stripe frame table: {0}")]
    FrameTable(String),
    /// The compressed body is invalid or does not expand to the recorded length.
    #[error("stripe decompression failed: {0}")]
    Decompress(String),
    /// The passphrase could not be turned into a key.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// A layout, stripe record or erasure-code call is inconsistent.
    #[error("stripe codec: {0}")]
    Codec(String),
}

impl StripeCodec {
    /// A codec for a k + m layout. `cipher` is `Some` for encrypted volumes.
    pub fn new(
        k: u8,
        m: u8,
        compression: Compression,
        cipher: Option<Cipher>,
        erasure: Arc<dyn ErasureCodec>,
    ) -> StripeCodec {
        StripeCodec {
            k,
            m,
            compression,
            cipher,
            erasure,
            frame_bytes: NonZeroU32::new(FRAME_BYTES).expect("FRAME_BYTES is not zero"),
        }
    }

    /// The same codec cutting frames of `frame_bytes` plain bytes instead of
    /// [`FRAME_BYTES`]: for measuring frame sizes. A volume always uses [`FRAME_BYTES`]
    /// (its stripes decode only with the frame size they were written with).
    pub fn with_frame_bytes(self, frame_bytes: NonZeroU32) -> StripeCodec {
        StripeCodec {
            frame_bytes,
            ..self
        }
    }

    /// Plain bytes per frame.
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes.get() as usize
    }

    /// Data shards per stripe.
    pub fn k(&self) -> usize {
        usize::from(self.k)
    }

    /// Parity shards per stripe.
    pub fn m(&self) -> usize {
        usize::from(self.m)
    }

    /// The compression applied to new stripes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// True when new stripes are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The erasure codec.
    pub fn erasure(&self) -> &Arc<dyn ErasureCodec> {
        &self.erasure
    }

    fn check_k(&self) -> Result<(), TransformError> {
        if self.k == 0 {
            return Err(TransformError::Codec(format!(
                "a 0+{} layout has no data shards",
                self.m
            )));
        }
        Ok(())
    }

    /// Shard length for a payload: the smallest aligned length that holds it in k
    /// shards, and never zero (a shard must exist even for an empty file tail).
    fn shard_len_for(&self, payload_len: usize) -> usize {
        let alignment = self.erasure.shard_alignment();
        payload_len.div_ceil(self.k()).div_ceil(alignment).max(1) * alignment
    }

    /// Cuts one stripe into frames, compresses and seals them, and erasure-codes the
    /// payload; a stripe the volume neither seals nor could compress is stored plain.
    pub fn encode(
        &self,
        ctx: &StripeContext,
        plain: &[u8],
    ) -> Result<EncodedStripe, TransformError> {
        self.check_k()?;
        let k = self.k();
        let too_big =
            || TransformError::Codec(format!("a {} byte stripe is too large", plain.len()));
        let plain_len = u32::try_from(plain.len()).map_err(|_| too_big())?;
        let transforms = self.cipher.is_some() || self.compression != Compression::None;
        // Room for the worst case (nothing compresses) up front, so that compression,
        // sealing and padding all happen inside this one buffer.
        let worst = if transforms {
            let count = frame::frame_count(plain.len(), self.frame_bytes());
            let overhead = if self.cipher.is_some() {
                Cipher::OVERHEAD
            } else {
                0
            };
            frame::table_len(count) + count * overhead + plain.len()
        } else {
            plain.len()
        };
        let mut data = Vec::with_capacity(k * self.shard_len_for(worst));
        let flags = if transforms {
            self.encode_frames(ctx, plain, &mut data)?
        } else {
            0
        };
        if flags == 0 {
            data.clear();
            data.extend_from_slice(plain);
        }
        let payload_len = data.len();
        let payload_crc = crc32c::crc32c(&data);
        let shard_len = self.shard_len_for(payload_len);
        data.resize(k * shard_len, 0);
        if flags & FLAG_COMPRESSED != 0 {
            // The buffer was sized for the uncompressed bytes; give the rest back while
            // the stripe waits to be written (a shrinking realloc rarely copies).
            data.shrink_to_fit();
        }
        let parity = {
            let refs: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
            self.erasure.encode(k, self.m(), &refs)?
        };
        if parity.len() != self.m() || parity.iter().any(|p| p.len() != shard_len) {
            return Err(TransformError::Codec(format!(
                "{} returned malformed parity",
                self.erasure.id()
            )));
        }
        Ok(EncodedStripe {
            info: StripeInfo {
                flags,
                plain_len,
                payload_len: u32::try_from(payload_len).map_err(|_| too_big())?,
                shard_len: u32::try_from(shard_len).map_err(|_| too_big())?,
                payload_crc,
            },
            data,
            parity,
            k,
        })
    }

    /// Writes the frame table and the frames of `plain` into `data` (empty, with room for
    /// the worst case) and returns the stripe flags; 0 when nothing was sealed or
    /// compressed, and the caller stores the plain bytes instead.
    fn encode_frames(
        &self,
        ctx: &StripeContext,
        plain: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<u8, TransformError> {
        let frame_bytes = self.frame_bytes();
        let count = frame::frame_count(plain.len(), frame_bytes);
        let is_sealed = self.cipher.is_some();
        let table_len = frame::table_len(count);
        // Room for the table, sealed or not, written once the frames are.
        data.resize(table_len + if is_sealed { Cipher::OVERHEAD } else { 0 }, 0);
        let mut ends = Vec::with_capacity(count);
        let mut flags = Vec::with_capacity(count);
        let mut failed_in_a_row = 0;
        for index in 0..count {
            let start = index * frame_bytes;
            let piece = &plain[start..plain.len().min(start + frame_bytes)];
            if is_sealed {
                // Placeholder for the nonce, which the cipher picks.
                data.extend_from_slice(&[0u8; NONCE_LEN]);
            }
            let is_tried = failed_in_a_row < COMPRESS_GIVE_UP_FRAMES;
            if is_tried && compress::compress_append(self.compression, piece, data) {
                flags.push(FRAME_COMPRESSED);
                failed_in_a_row = 0;
            } else {
                data.extend_from_slice(piece);
                flags.push(0);
                failed_in_a_row += usize::from(is_tried);
            }
            if is_sealed {
                data.extend_from_slice(&[0u8; TAG_LEN]);
            }
            let end = u32::try_from(data.len()).map_err(|_| {
                TransformError::Codec(format!("a {} byte stripe is too large", plain.len()))
            })?;
            ends.push(end);
        }
        let is_compressed = flags.contains(&FRAME_COMPRESSED);
        if !is_sealed && !is_compressed {
            return Ok(0);
        }
        let shape = FrameShape {
            frame_bytes,
            plain_len: plain.len(),
            payload_len: data.len(),
            is_sealed,
            is_compressed,
        };
        // Sealing changes no length, so the table (whose hash each frame's associated
        // data holds) is final before any frame is sealed.
        let table = FrameTable::new(shape, ends, flags);
        match &self.cipher {
            Some(cipher) => {
                let body = NONCE_LEN..NONCE_LEN + table_len;
                data[body.clone()].copy_from_slice(&table.to_bytes());
                let aad = table_aad(ctx, count);
                let (nonce, tag) = cipher.seal_in_place(&aad, &mut data[body.clone()]);
                data[..NONCE_LEN].copy_from_slice(&nonce);
                data[body.end..body.end + TAG_LEN].copy_from_slice(&tag);
            }
            None => data[..table_len].copy_from_slice(&table.to_bytes()),
        }
        if let Some(cipher) = &self.cipher {
            for index in 0..count {
                let range = table.stored_range(index);
                let body = range.start + NONCE_LEN..range.end - TAG_LEN;
                let (nonce, tag) = cipher.seal_in_place(&table.aad(ctx, index), &mut data[body]);
                data[range.start..range.start + NONCE_LEN].copy_from_slice(&nonce);
                data[range.end - TAG_LEN..range.end].copy_from_slice(&tag);
            }
        }
        let mut stripe_flags = 0;
        if is_sealed {
            stripe_flags |= FLAG_ENCRYPTED;
        }
        if is_compressed {
            stripe_flags |= FLAG_COMPRESSED;
        }
        Ok(stripe_flags)
    }

    /// Rejects a stripe record that no encoder of this version could have written, so
    /// that damaged metadata fails cleanly instead of steering the decoder.
    fn check_info(&self, info: &StripeInfo) -> Result<(), TransformError> {
        let bad = |what: String| Err(TransformError::Codec(format!("stripe record: {what}")));
        if info.flags & !KNOWN_FLAGS != 0 {
            return bad(format!("unknown flags {:#04x}", info.flags));
        }
        let shard_len = info.shard_len as usize;
        let alignment = self.erasure.shard_alignment();
        if shard_len == 0 || !shard_len.is_multiple_of(alignment) {
            return bad(format!(
                "shard length {shard_len} is not a positive multiple of {alignment}"
            ));
        }
        let payload_len = info.payload_len as usize;
        if payload_len > self.k() * shard_len {
            return bad(format!(
                "payload of {payload_len} bytes does not fit {} shards of {shard_len}",
                self.k()
            ));
        }
        match self.frame_shape(info) {
            None if payload_len != info.plain_len as usize => bad(format!(
                "plain payload of {payload_len} bytes for {} plain bytes",
                info.plain_len
            )),
            None => Ok(()),
            Some(shape) => shape.check().or_else(bad),
        }
    }

    /// What the record says about a framed stripe's frames; `None` for a plain stripe.
    fn frame_shape(&self, info: &StripeInfo) -> Option<FrameShape> {
        info.is_framed().then(|| FrameShape {
            frame_bytes: self.frame_bytes(),
            plain_len: info.plain_len as usize,
            payload_len: info.payload_len as usize,
            is_sealed: info.is_encrypted(),
            is_compressed: info.is_compressed(),
        })
    }

    /// Rebuilds, in place, the data shards of a stripe that is neither compressed nor
    /// encrypted and fills its k shards exactly (`payload_len == k * shard_len`): `data`
    /// holds the k data shards end to end, those flagged in `missing` to be rebuilt from
    /// the others and `parity` (m entries, `None` for one not at hand). The result is
    /// checked against the stripe's payload CRC.
    pub fn rebuild_plain_in_place(
        &self,
        info: &StripeInfo,
        data: &mut [u8],
        missing: &[bool],
        parity: &[Option<&[u8]>],
    ) -> Result<(), TransformError> {
        self.check_k()?;
        self.check_info(info)?;
        let (k, m) = (self.k(), self.m());
        let shard_len = info.shard_len as usize;
        if info.flags != 0
            || info.payload_len as usize != k * shard_len
            || data.len() != k * shard_len
            || missing.len() != k
            || parity.len() != m
        {
            return Err(TransformError::Codec(format!(
                "in-place rebuild of a stripe of {} bytes into {} with {} data and {} parity flags",
                info.payload_len,
                data.len(),
                missing.len(),
                parity.len()
            )));
        }
        {
            // The shards at hand are read from `data` while the missing ones are written
            // into it: split it into the two kinds first.
            let mut holes: Vec<(usize, &mut [u8])> = Vec::new();
            let mut shards: Vec<Option<&[u8]>> = Vec::with_capacity(k + m);
            for (index, (shard, &gone)) in data.chunks_mut(shard_len).zip(missing).enumerate() {
                if gone {
                    holes.push((index, shard));
                    shards.push(None);
                } else {
                    shards.push(Some(shard));
                }
            }
            shards.extend(parity.iter().copied());
            let have = shards.iter().flatten().count();
            if have < k {
                return Err(TransformError::TooFewShards { have, need: k });
            }
            self.erasure
                .rebuild_missing(k, m, &shards, &mut |index, bytes| {
                    // A shard the codec left out or got wrong fails the CRC check below.
                    if let Some((_, hole)) = holes.iter_mut().find(|(i, _)| *i == index)
                        && hole.len() == bytes.len()
                    {
                        hole.copy_from_slice(bytes);
                    }
                })?;
        }
        if crc32c::crc32c(data) != info.payload_crc {
            return Err(TransformError::Checksum);
        }
        Ok(())
    }

    /// Checks the AEAD tag of every frame of a sealed stripe whose k data shards are
    /// `data` (each `shard_len` bytes, as [`solve`] gives them, already checked against the
    /// payload CRC): the deep check a scrub makes. Each frame's plaintext is dropped at
    /// once and not decompressed. A stripe that is not sealed passes.
    pub fn authenticate(
        &self,
        ctx: &StripeContext,
        info: &StripeInfo,
        data: &[&[u8]],
    ) -> Result<(), TransformError> {
        if !info.is_encrypted() {
            return Ok(());
        }
        self.check_info(info)?;
        let shard_len = info.shard_len as usize;
        if data.len() != self.k() || data.iter().any(|d| d.len() != shard_len) {
            return Err(TransformError::Codec(format!(
                "{} data shards given to authenticate a {}-data-shard stripe of {shard_len}-byte shards",
                data.len(),
                self.k()
            )));
        }
        let payload = Pieces(data);
        let table = self.payload_table(ctx, info, &payload)?;
        let mut scratch = Vec::new();
        let mut parts = Vec::new();
        for index in 0..table.count() {
            let range = table.stored_range(index);
            parts.clear();
            parts.extend(payload.range(range.start, range.end));
            scratch.clear();
            self.unseal(ctx, &table, index, &Pieces(&parts), &mut scratch)?;
        }
        Ok(())
    }

    /// Rebuilds the plain bytes of a stripe from `shards` (`k + m` entries, `None` for
    /// a shard that could not be read or failed its own check).
    pub fn decode(
        &self,
        ctx: &StripeContext,
        info: &StripeInfo,
        shards: &[Option<&[u8]>],
    ) -> Result<Vec<u8>, TransformError> {
        self.check_k()?;
        let (k, m) = (self.k(), self.m());
        if shards.len() != k + m {
            return Err(TransformError::Codec(format!(
                "{} shards given for a {k}+{m} layout",
                shards.len()
            )));
        }
        self.check_info(info)?;
        let shard_len = info.shard_len as usize;
        let payload_len = info.payload_len as usize;
        for (index, shard) in shards.iter().enumerate() {
            if let Some(shard) = shard
                && shard.len() != shard_len
            {
                return Err(TransformError::ShardSize {
                    index,
                    expected: shard_len,
                    found: shard.len(),
                });
            }
        }
        let have = shards.iter().flatten().count();
        if have < k {
            return Err(TransformError::TooFewShards { have, need: k });
        }

        // With every data shard at hand the payload is read from them in place and the
        // erasure codec is never called.
        let rebuilt = if shards[..k].iter().all(Option::is_some) {
            None
        } else {
            let data = self.erasure.recover_data(k, m, shards)?;
            if data.len() != k * shard_len {
                return Err(TransformError::Codec(format!(
                    "{} rebuilt {} bytes, expected {}",
                    self.erasure.id(),
                    data.len(),
                    k * shard_len
                )));
            }
            Some(data)
        };
        let pieces: Vec<&[u8]> = match &rebuilt {
            Some(data) => vec![data.as_slice()],
            None => shards[..k].iter().flatten().copied().collect(),
        };
        let payload = Pieces(&pieces);
        let crc = payload.range(0, payload_len).fold(0, crc32c::crc32c_append);
        let padding_is_zero = payload
            .range(payload_len, k * shard_len)
            .all(|part| part.iter().all(|&b| b == 0));
        if crc != info.payload_crc || !padding_is_zero {
            return Err(TransformError::Checksum);
        }

        if !info.is_framed() {
            return Ok(match rebuilt {
                Some(mut data) => {
                    data.truncate(payload_len);
                    data
                }
                None => payload.gather(0, payload_len),
            });
        }
        // Each frame is opened straight into the output: a raw frame is copied there and
        // decrypted in place, a compressed one decompressed there (from the shard when
        // it is neither sealed nor split over two shards).
        let table = self.payload_table(ctx, info, &payload)?;
        let mut out = Vec::with_capacity(info.plain_len as usize);
        let mut scratch = Vec::new();
        let mut parts = Vec::new();
        for index in 0..table.count() {
            let range = table.stored_range(index);
            parts.clear();
            parts.extend(payload.range(range.start, range.end));
            self.open_frame_pieces(ctx, &table, index, &Pieces(&parts), &mut scratch, &mut out)?;
        }
        Ok(out)
    }

    /// Bytes of the frame table (sealed when the frames are) at the head of a framed
    /// stripe's payload; `None` for a plain stripe, whose payload is its plain bytes.
    pub fn frame_table_len(&self, info: &StripeInfo) -> Result<Option<usize>, TransformError> {
        self.check_info(info)?;
        Ok(self.frame_shape(info).map(|shape| shape.stored_table_len()))
    }

    /// The frame table of the framed stripe at `ctx` from its first
    /// [`StripeCodec::frame_table_len`] payload bytes: authenticated and decrypted when
    /// sealed, and checked against the record.
    pub fn frame_table(
        &self,
        ctx: &StripeContext,
        info: &StripeInfo,
        stored: &[u8],
    ) -> Result<FrameTable, TransformError> {
        self.check_info(info)?;
        let shape = self.frame_shape(info).ok_or_else(|| {
            TransformError::FrameTable("the stripe is plain: it has no frame table".into())
        })?;
        if stored.len() != shape.stored_table_len() {
            return Err(TransformError::FrameTable(format!(
                "{} bytes where the table takes {}",
                stored.len(),
                shape.stored_table_len()
            )));
        }
        if !shape.is_sealed {
            return FrameTable::parse(shape, stored);
        }
        let cipher = self.cipher.as_ref().ok_or(TransformError::KeyRequired)?;
        let (nonce, rest) = stored.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let tag: [u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN from the end");
        let mut plain = body.to_vec();
        cipher.open_in_place(&table_aad(ctx, shape.count()), &nonce, &mut plain, &tag)?;
        FrameTable::parse(shape, &plain)
    }

    /// The frame table of a framed stripe none of whose frames is compressed: the record
    /// alone determines it, so a reader need not read it. `None` for other stripes.
    pub fn implied_frame_table(
        &self,
        info: &StripeInfo,
    ) -> Result<Option<FrameTable>, TransformError> {
        self.check_info(info)?;
        Ok(self
            .frame_shape(info)
            .filter(|shape| !shape.is_compressed)
            .map(|shape| shape.implied_table()))
    }

    /// Opens frame `index` of the stripe at `ctx` whose table is `table`, from its stored
    /// bytes (`stored`, the payload's [`FrameTable::stored_range`]), and appends its
    /// plain bytes to `out`. A sealed frame is authenticated first; on any error `out`
    /// is left as it was. Stored bytes that are not sealed are not checked here: the
    /// caller has verified them (the shards' block CRCs).
    pub fn open_frame(
        &self,
        ctx: &StripeContext,
        table: &FrameTable,
        index: usize,
        stored: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        if index >= table.count() || stored.len() != table.stored_range(index).len() {
            return Err(TransformError::Codec(format!(
                "{} stored bytes given for frame {index} of {}",
                stored.len(),
                table.count()
            )));
        }
        let mut scratch = Vec::new();
        self.open_frame_pieces(ctx, table, index, &Pieces(&[stored]), &mut scratch, out)
    }

    /// The table of a framed payload, read from its head.
    fn payload_table(
        &self,
        ctx: &StripeContext,
        info: &StripeInfo,
        payload: &Pieces<'_>,
    ) -> Result<FrameTable, TransformError> {
        let len = self.frame_table_len(info)?.ok_or_else(|| {
            TransformError::FrameTable("the stripe is plain: it has no frame table".into())
        })?;
        self.frame_table(ctx, info, &payload.gather(0, len))
    }

    /// [`StripeCodec::open_frame`] over a frame held in pieces; `scratch` is reused
    /// between frames.
    fn open_frame_pieces(
        &self,
        ctx: &StripeContext,
        table: &FrameTable,
        index: usize,
        stored: &Pieces<'_>,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        let plain_len = table.plain_range(index).len();
        let is_sealed = table.shape().is_sealed;
        if !table.is_compressed(index) {
            let start = out.len();
            if is_sealed {
                self.unseal(ctx, table, index, stored, out)?;
            } else {
                stored
                    .range(0, stored.len())
                    .for_each(|part| out.extend_from_slice(part));
            }
            if out.len() - start != plain_len {
                out.truncate(start);
                return Err(TransformError::FrameTable(format!(
                    "frame {index} holds other than its {plain_len} plain bytes"
                )));
            }
            return Ok(());
        }
        let body: &[u8] = if is_sealed {
            scratch.clear();
            self.unseal(ctx, table, index, stored, scratch)?;
            scratch.as_slice()
        } else if let [one] = stored.0 {
            one
        } else {
            *scratch = stored.gather(0, stored.len());
            scratch.as_slice()
        };
        compress::decompress_append(body, plain_len, out)
    }

    /// Authenticates and decrypts sealed frame `index` (held in `stored`) and appends its
    /// body to `into`; on failure `into` is left as it was, no unauthenticated byte kept.
    fn unseal(
        &self,
        ctx: &StripeContext,
        table: &FrameTable,
        index: usize,
        stored: &Pieces<'_>,
        into: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        let cipher = self.cipher.as_ref().ok_or(TransformError::KeyRequired)?;
        let len = stored.len();
        if len < Cipher::OVERHEAD {
            return Err(TransformError::Authentication);
        }
        let nonce = stored.array::<NONCE_LEN>(0);
        let tag = stored.array::<TAG_LEN>(len - TAG_LEN);
        let start = into.len();
        stored
            .range(NONCE_LEN, len - TAG_LEN)
            .for_each(|part| into.extend_from_slice(part));
        let opened = cipher.open_in_place(&table.aad(ctx, index), &nonce, &mut into[start..], &tag);
        if opened.is_err() {
            into.truncate(start);
        }
        opened
    }
}

/// The associated data sealing the frame table of a stripe of `count` frames.
fn table_aad(ctx: &StripeContext, count: usize) -> [u8; FRAME_AAD_LEN] {
    ctx.frame_aad(frame::TABLE_INDEX, count as u32, &[0; 32])
}

/// Most combinations of k shards [`solve`] tries to find a consistent stripe.
pub const MAX_SOLVE_TRIES: usize = 64;

/// Finds the full, consistent set of shards of a stripe from what was read (`views`,
/// `k + m` entries, `None` for a shard missing or bad on its own): some k of them rebuild
/// a payload with the recorded CRC and zero padding, and the result is every shard that
/// payload encodes to (data then parity). A shard read whose bytes differ from its entry
/// in the result disagrees with the others (a bad shard whose own checks pass). Tries
/// data shards first and at most [`MAX_SOLVE_TRIES`] combinations; `None` when none
/// agree. Works on the stored (sealed) bytes: no key is needed.
pub fn solve(
    erasure: &dyn ErasureCodec,
    k: usize,
    m: usize,
    info: &StripeInfo,
    views: &[Option<&[u8]>],
) -> Option<Vec<Vec<u8>>> {
    let shard_len = info.shard_len as usize;
    let payload_len = info.payload_len as usize;
    if shard_len == 0 || payload_len > k * shard_len {
        return None;
    }
    let present: Vec<usize> = (0..views.len()).filter(|i| views[*i].is_some()).collect();
    if present.len() < k {
        return None;
    }
    let mut combo: Vec<usize> = (0..k).collect();
    for _ in 0..MAX_SOLVE_TRIES {
        let chosen: Vec<Option<&[u8]>> = (0..views.len())
            .map(|i| {
                if combo.iter().any(|c| present[*c] == i) {
                    views[i]
                } else {
                    None
                }
            })
            .collect();
        if let Ok(data) = erasure.recover_data(k, m, &chosen)
            && data.len() == k * shard_len
            && crc32c::crc32c(&data[..payload_len]) == info.payload_crc
            && data[payload_len..].iter().all(|b| *b == 0)
        {
            let pieces: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
            let parity = erasure.encode(k, m, &pieces).ok()?;
            let mut all: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
            all.extend(parity);
            return Some(all);
        }
        if !next_combination(&mut combo, present.len()) {
            break;
        }
    }
    None
}

/// Advances `combo` (increasing indices below `n`) to the next combination in
/// lexicographic order; false after the last.
fn next_combination(combo: &mut [usize], n: usize) -> bool {
    let k = combo.len();
    for i in (0..k).rev() {
        if combo[i] < n - k + i {
            combo[i] += 1;
            for j in i + 1..k {
                combo[j] = combo[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// A payload held as consecutive slices (the data shards, or one rebuilt buffer).
struct Pieces<'a>(&'a [&'a [u8]]);

impl<'a> Pieces<'a> {
    /// Bytes in all the pieces.
    fn len(&self) -> usize {
        self.0.iter().map(|piece| piece.len()).sum()
    }

    /// The parts of the bytes `start..end`, in order.
    fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut offset = 0;
        self.0.iter().filter_map(move |piece| {
            let piece_start = offset;
            offset += piece.len();
            let from = start.max(piece_start);
            let to = end.min(offset);
            (from < to).then(|| &piece[from - piece_start..to - piece_start])
        })
    }

    /// A copy of the bytes `start..end`.
    fn gather(&self, start: usize, end: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(end - start);
        self.range(start, end)
            .for_each(|part| out.extend_from_slice(part));
        out
    }

    /// A copy of the `N` bytes at `start`; the caller has checked they exist.
    fn array<const N: usize>(&self, start: usize) -> [u8; N] {
        let mut out = [0u8; N];
        let mut at = 0;
        for part in self.range(start, start + N) {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::crypto::{KdfParams, MasterKey};
    use crate::data::erasure::ReedSolomonSimd;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ZSTD: Compression = Compression::Zstd { level: 3 };

    fn params() -> KdfParams {
        KdfParams {
            salt_hex: "000102030405060708090a0b0c0d0e0f".into(),
            ..KdfParams::generate_cheap()
        }
    }

    fn key(passphrase: &[u8]) -> MasterKey {
        MasterKey::derive(passphrase, &params()).unwrap()
    }

    fn codec(k: u8, m: u8, compress: bool, encrypt: bool) -> StripeCodec {
        StripeCodec::new(
            k,
            m,
            if compress { ZSTD } else { Compression::None },
            encrypt.then(|| key(b"test passphrase").stripe_cipher()),
            Arc::new(ReedSolomonSimd),
        )
    }

    fn ctx() -> StripeContext {
        StripeContext {
            volume: VolumeId([7; 16]),
            inode: InodeId(42),
            chunk: 3,
            stripe: StripeId(99),
        }
    }

    /// The shards of `e` as [`solve`] and `authenticate` take them.
    fn views(e: &EncodedStripe) -> Vec<Option<&[u8]>> {
        e.shards().map(Some).collect()
    }

    #[test]
    fn solve_finds_the_shards_that_agree_and_the_one_that_does_not() {
        let c = codec(4, 2, false, false);
        let e = c.encode(&ctx(), &sample(0, 50_000, 9)).unwrap();
        let rs = ReedSolomonSimd;
        let all = solve(&rs, 4, 2, &e.info, &views(&e)).unwrap();
        assert!(all.iter().enumerate().all(|(i, s)| s == e.shard(i)));
        // A parity shard with other bytes (its own checks would pass): the others agree
        // and say what it should hold.
        let mut wrong = e.shard(5).to_vec();
        wrong[10] ^= 1;
        let mut v = views(&e);
        v[5] = Some(&wrong);
        let all = solve(&rs, 4, 2, &e.info, &v).unwrap();
        assert_eq!(all[5], e.shard(5));
        assert_ne!(all[5], wrong);
        // Too few present: nothing to solve.
        let v: Vec<Option<&[u8]>> = (0..6).map(|i| (i < 3).then(|| e.shard(i))).collect();
        assert!(solve(&rs, 4, 2, &e.info, &v).is_none());
    }

    #[test]
    fn combinations_are_enumerated_in_order() {
        let mut c = vec![0, 1];
        let mut all = vec![c.clone()];
        while next_combination(&mut c, 4) {
            all.push(c.clone());
        }
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
    }

    #[test]
    fn authenticate_catches_a_stripe_moved_elsewhere_whose_checksums_pass() {
        for compress in [false, true] {
            let c = codec(3, 2, compress, true);
            let e = c.encode(&ctx(), &sample(1, 30_000, 4)).unwrap();
            let data: Vec<&[u8]> = (0..3).map(|i| e.shard(i)).collect();
            c.authenticate(&ctx(), &e.info, &data).unwrap();
            // The same bytes (so the payload CRC holds) read as another chunk's.
            let moved = StripeContext { chunk: 4, ..ctx() };
            assert_eq!(
                c.authenticate(&moved, &e.info, &data),
                Err(TransformError::Authentication)
            );
            assert!(matches!(
                c.authenticate(&ctx(), &e.info, &data[..2]),
                Err(TransformError::Codec(_))
            ));
        }
        // Plain stripes have no tag: they pass.
        let c = codec(3, 2, true, false);
        let e = c.encode(&ctx(), &sample(1, 30_000, 4)).unwrap();
        let data: Vec<&[u8]> = (0..3).map(|i| e.shard(i)).collect();
        c.authenticate(&ctx(), &e.info, &data).unwrap();
    }

    /// Test data: random, compressible text or zeros, from a seed.
    fn sample(kind: u8, len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        match kind % 3 {
            0 => (0..len).map(|_| next() as u8).collect(),
            1 => {
                const WORDS: [&[u8]; 6] =
                    [b"stripe ", b"shard ", b"disk ", b"argos ", b"\n", b"0 "];
                let mut out = Vec::with_capacity(len + 8);
                while out.len() < len {
                    out.extend_from_slice(WORDS[(next() % 6) as usize]);
                }
                out.truncate(len);
                out
            }
            _ => vec![0; len],
        }
    }

    fn all(stripe: &EncodedStripe) -> Vec<Option<&[u8]>> {
        stripe.shards().map(Some).collect()
    }

    #[test]
    fn a_stripe_gives_up_compressing_after_frames_in_a_row_that_did_not_shrink() {
        let c = codec(4, 2, true, false);
        let frame = FRAME_BYTES as usize;
        // Text, then random frames one fewer than the give-up count, then text again
        // (compressed: the count starts over), then enough random frames to give up,
        // then text that is no longer tried.
        let give_up = COMPRESS_GIVE_UP_FRAMES;
        let kinds: Vec<u8> = [1]
            .into_iter()
            .chain(std::iter::repeat_n(0, give_up - 1))
            .chain([1])
            .chain(std::iter::repeat_n(0, give_up))
            .chain([1, 1])
            .collect();
        let plain: Vec<u8> = (kinds.iter().enumerate())
            .flat_map(|(i, kind)| sample(*kind, frame, i as u64))
            .collect();
        let e = c.encode(&ctx(), &plain).unwrap();
        let len = c.frame_table_len(&e.info).unwrap().unwrap();
        let table = c.frame_table(&ctx(), &e.info, &e.shard(0)[..len]).unwrap();
        let compressed: Vec<bool> = (0..kinds.len()).map(|i| table.is_compressed(i)).collect();
        let mut expected: Vec<bool> = kinds.iter().map(|k| *k == 1).collect();
        let tail = expected.len() - 2;
        expected[tail..].fill(false);
        assert_eq!(compressed, expected);
        assert_eq!(c.decode(&ctx(), &e.info, &all(&e)).unwrap(), plain);
    }

    #[test]
    fn plain_rebuild_in_place_restores_lost_data_shards_and_checks_the_result() {
        let plain_codec = codec(4, 2, false, false);
        let plain = sample(0, 4 * 4096, 9);
        let stripe = plain_codec.encode(&ctx(), &plain).unwrap();
        assert_eq!(
            stripe.info.payload_len as usize,
            plain.len(),
            "fills its shards"
        );
        let shard_len = stripe.shard_len();
        let parity: Vec<&[u8]> = (4..6).map(|i| stripe.shard(i)).collect();
        for lost in [[true, false, false, false], [false, true, false, true]] {
            let mut data = plain.clone();
            for (i, _) in lost.iter().enumerate().filter(|(_, gone)| **gone) {
                data[i * shard_len..(i + 1) * shard_len].fill(0xa5); // stale bytes
            }
            let views = [Some(parity[0]), Some(parity[1])];
            plain_codec
                .rebuild_plain_in_place(&stripe.info, &mut data, &lost, &views)
                .unwrap();
            assert!(data == plain, "{lost:?}");
        }
        // Too few shards, a wrong parity shard (caught by the payload CRC), a compressed
        // stripe: errors, never bytes passed off as the data.
        let mut data = plain.clone();
        let lost = [true, true, true, false];
        let err = plain_codec
            .rebuild_plain_in_place(&stripe.info, &mut data, &lost, &[Some(parity[0]), None])
            .unwrap_err();
        assert!(matches!(
            err,
            TransformError::TooFewShards { have: 2, need: 4 }
        ));
        let mut wrong = parity[0].to_vec();
        wrong[7] ^= 1;
        let err = plain_codec
            .rebuild_plain_in_place(
                &stripe.info,
                &mut data,
                &[true, false, false, false],
                &[Some(&wrong), None],
            )
            .unwrap_err();
        assert!(matches!(err, TransformError::Checksum), "{err}");
        let zstd = codec(4, 2, true, false);
        let packed = zstd.encode(&ctx(), &sample(1, 4 * 4096, 2)).unwrap();
        assert!(
            zstd.rebuild_plain_in_place(&packed.info, &mut data, &[false; 4], &[None, None])
                .is_err()
        );
    }

    fn layout() -> impl Strategy<Value = (u8, u8)> {
        prop::sample::select(vec![(1u8, 0u8), (2, 1), (4, 2), (3, 3)])
    }

    fn data() -> impl Strategy<Value = Vec<u8>> {
        let len = prop_oneof![
            Just(0usize),
            Just(1usize),
            2usize..4096,
            4096usize..300 * 1024
        ];
        (any::<u8>(), len, any::<u64>()).prop_map(|(kind, len, seed)| sample(kind, len, seed))
    }

    fn is_integrity_error(r: &Result<Vec<u8>, TransformError>) -> bool {
        matches!(
            r,
            Err(TransformError::Checksum | TransformError::Authentication)
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn decode_undoes_encode(
            (k, m) in layout(),
            compress in any::<bool>(),
            encrypt in any::<bool>(),
            plain in data(),
        ) {
            let codec = codec(k, m, compress, encrypt);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let info = stripe.info;
            let (k, m) = (usize::from(k), usize::from(m));
            prop_assert_eq!(stripe.shard_count(), k + m);
            prop_assert_eq!(info.plain_len as usize, plain.len());
            prop_assert_eq!(info.is_encrypted(), encrypt);
            prop_assert!(compress || !info.is_compressed());
            let shard_len = info.shard_len as usize;
            prop_assert!(shard_len >= 64 && shard_len.is_multiple_of(64));
            prop_assert!(k * shard_len >= info.payload_len as usize);
            prop_assert!(k * (shard_len - 64) < (info.payload_len as usize).max(1));
            for shard in stripe.shards() {
                prop_assert_eq!(shard.len(), shard_len);
            }
            let data: Vec<u8> = stripe.shards().take(k).flatten().copied().collect();
            let (payload, padding) = data.split_at(info.payload_len as usize);
            prop_assert_eq!(crc32c::crc32c(payload), info.payload_crc);
            prop_assert!(padding.iter().all(|&b| b == 0));
            if !compress && !encrypt {
                prop_assert_eq!(payload, &plain[..]);
            }
            prop_assert_eq!(codec.decode(&ctx(), &info, &all(&stripe)).unwrap(), plain);
        }

        #[test]
        fn any_k_shards_rebuild_the_stripe(
            ((k, m), missing) in layout().prop_flat_map(|(k, m)| {
                let n = usize::from(k + m);
                (Just((k, m)), prop::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=usize::from(m)))
            }),
            compress in any::<bool>(),
            encrypt in any::<bool>(),
            plain in data(),
        ) {
            let codec = codec(k, m, compress, encrypt);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let mut shards = all(&stripe);
            for &index in &missing {
                shards[index] = None;
            }
            prop_assert_eq!(codec.decode(&ctx(), &stripe.info, &shards).unwrap(), plain);
        }

        #[test]
        fn losing_more_than_m_shards_is_too_few(
            ((k, m), missing) in layout().prop_flat_map(|(k, m)| {
                let n = usize::from(k + m);
                (Just((k, m)), prop::sample::subsequence((0..n).collect::<Vec<_>>(), usize::from(m) + 1))
            }),
            encrypt in any::<bool>(),
            plain in data(),
        ) {
            let codec = codec(k, m, false, encrypt);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let mut shards = all(&stripe);
            for &index in &missing {
                shards[index] = None;
            }
            let err = codec.decode(&ctx(), &stripe.info, &shards).unwrap_err();
            prop_assert_eq!(err, TransformError::TooFewShards { have: usize::from(k) - 1, need: usize::from(k) });
        }

        #[test]
        fn a_flipped_byte_in_a_data_shard_is_caught(
            (k, m) in layout(),
            compress in any::<bool>(),
            encrypt in any::<bool>(),
            plain in data(),
            shard in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            bits in 1u8..=255,
        ) {
            let codec = codec(k, m, compress, encrypt);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let index = shard.index(usize::from(k));
            let mut bad = stripe.shard(index).to_vec();
            let pos = at.index(bad.len());
            bad[pos] ^= bits;
            let mut shards = all(&stripe);
            shards[index] = Some(&bad);
            let result = codec.decode(&ctx(), &stripe.info, &shards);
            prop_assert!(is_integrity_error(&result), "{:?}", result.map(|v| v.len()));
        }

        #[test]
        fn a_flipped_byte_in_a_degraded_read_is_caught(
            (k, m) in prop::sample::select(vec![(2u8, 1u8), (4, 2), (3, 3)]),
            compress in any::<bool>(),
            encrypt in any::<bool>(),
            plain in data(),
            lost in any::<prop::sample::Index>(),
            shard in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            bits in 1u8..=255,
        ) {
            let codec = codec(k, m, compress, encrypt);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let n = usize::from(k + m);
            let lost = lost.index(usize::from(k));
            let index = (lost + 1 + shard.index(n - 1)) % n;
            let mut bad = stripe.shard(index).to_vec();
            let pos = at.index(bad.len());
            bad[pos] ^= bits;
            let mut shards = all(&stripe);
            shards[lost] = None;
            shards[index] = Some(&bad);
            // Parity is only read to rebuild: drop enough of it that every remaining
            // shard, the flipped one included, takes part.
            let mut extra = usize::from(m) - 1;
            for i in (usize::from(k)..n).rev() {
                if extra > 0 && i != index {
                    shards[i] = None;
                    extra -= 1;
                }
            }
            let result = codec.decode(&ctx(), &stripe.info, &shards);
            prop_assert!(is_integrity_error(&result), "{:?}", result.map(|v| v.len()));
        }

        #[test]
        fn a_stripe_moved_elsewhere_fails_authentication(
            (k, m) in layout(),
            compress in any::<bool>(),
            plain in data(),
            which in 0u8..4,
        ) {
            let codec = codec(k, m, compress, true);
            let stripe = codec.encode(&ctx(), &plain).unwrap();
            let mut other = ctx();
            match which {
                0 => other.inode = InodeId(43),
                1 => other.chunk = 4,
                2 => other.stripe = StripeId(98),
                _ => other.volume = VolumeId([8; 16]),
            }
            let err = codec.decode(&other, &stripe.info, &all(&stripe)).unwrap_err();
            prop_assert_eq!(err, TransformError::Authentication);
        }

        #[test]
        fn the_wrong_key_fails_authentication(
            (k, m) in layout(),
            compress in any::<bool>(),
            plain in data(),
        ) {
            let stripe = codec(k, m, compress, true).encode(&ctx(), &plain).unwrap();
            let wrong = StripeCodec::new(
                k,
                m,
                ZSTD,
                Some(key(b"another passphrase").stripe_cipher()),
                Arc::new(ReedSolomonSimd),
            );
            let err = wrong.decode(&ctx(), &stripe.info, &all(&stripe)).unwrap_err();
            prop_assert_eq!(err, TransformError::Authentication);
        }
    }

    #[test]
    fn frame_aad_layout_is_volume_inode_chunk_stripe_index_count_table_le() {
        let ctx = StripeContext {
            volume: VolumeId([0xaa; 16]),
            inode: InodeId(0x0102_0304_0506_0708),
            chunk: 0x1112_1314_1516_1718,
            stripe: StripeId(0x2122_2324_2526_2728),
        };
        let aad = ctx.frame_aad(0x3132_3334, 0x4142_4344, &[0xbb; 32]);
        assert_eq!(aad[..16], [0xaa; 16]);
        assert_eq!(aad[16..24], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            aad[24..32],
            [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]
        );
        assert_eq!(
            aad[32..40],
            [0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21]
        );
        assert_eq!(aad[40..44], [0x34, 0x33, 0x32, 0x31]);
        assert_eq!(aad[44..48], [0x44, 0x43, 0x42, 0x41]);
        assert_eq!(aad[48..], [0xbb; 32]);
    }

    #[test]
    fn empty_stripes_still_have_aligned_shards() {
        for encrypt in [false, true] {
            let codec = codec(4, 2, true, encrypt);
            let stripe = codec.encode(&ctx(), &[]).unwrap();
            assert_eq!(stripe.info.shard_len, 64);
            assert_eq!(stripe.info.plain_len, 0);
            assert!(!stripe.info.is_compressed());
            // Sealed: a sealed table of one frame (8 + 5 bytes) and one empty sealed frame.
            assert_eq!(
                stripe.info.payload_len as usize,
                if encrypt { 13 + 40 + 40 } else { 0 }
            );
            assert_eq!(
                codec.decode(&ctx(), &stripe.info, &all(&stripe)).unwrap(),
                b""
            );
        }
    }

    #[test]
    fn compressible_stripes_shrink_and_noise_is_stored_raw() {
        let codec = codec(4, 2, true, false);
        let text = sample(1, 1 << 20, 1);
        let stripe = codec.encode(&ctx(), &text).unwrap();
        assert!(stripe.info.is_compressed());
        assert!((stripe.info.payload_len as usize) < text.len() / 3);
        let noise = sample(0, 1 << 20, 1);
        let stripe = codec.encode(&ctx(), &noise).unwrap();
        assert!(!stripe.info.is_compressed());
        assert_eq!(stripe.info.payload_len as usize, noise.len());
        assert_eq!(stripe.info.shard_len as usize, noise.len() / 4);
    }

    #[test]
    fn encrypted_shards_do_not_show_the_plaintext_and_nonces_differ() {
        let codec = codec(2, 1, false, true);
        let plain = sample(1, 4096, 5);
        let a = codec.encode(&ctx(), &plain).unwrap();
        let b = codec.encode(&ctx(), &plain).unwrap();
        let a_data: Vec<u8> = a.shards().take(2).flatten().copied().collect();
        assert!(!a_data.windows(64).any(|w| w == &plain[..64]));
        assert_ne!(a.shard(0), b.shard(0));
        assert_eq!(codec.decode(&ctx(), &b.info, &all(&b)).unwrap(), plain);
    }

    /// An erasure codec that counts calls, to prove the fast path skips it.
    struct Counting(AtomicUsize);

    impl ErasureCodec for Counting {
        fn id(&self) -> &'static str {
            "counting"
        }
        fn shard_alignment(&self) -> usize {
            64
        }
        fn encode(
            &self,
            k: usize,
            m: usize,
            data: &[&[u8]],
        ) -> Result<Vec<Vec<u8>>, TransformError> {
            ReedSolomonSimd.encode(k, m, data)
        }
        fn reconstruct(
            &self,
            k: usize,
            m: usize,
            shards: &mut [Option<Vec<u8>>],
        ) -> Result<(), TransformError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            ReedSolomonSimd.reconstruct(k, m, shards)
        }
        fn recover_data(
            &self,
            k: usize,
            m: usize,
            shards: &[Option<&[u8]>],
        ) -> Result<Vec<u8>, TransformError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            ReedSolomonSimd.recover_data(k, m, shards)
        }
    }

    #[test]
    fn decode_with_all_data_shards_never_calls_the_erasure_codec() {
        let counting = Arc::new(Counting(AtomicUsize::new(0)));
        let codec = StripeCodec::new(4, 2, ZSTD, None, counting.clone());
        let plain = sample(0, 300_000, 9);
        let stripe = codec.encode(&ctx(), &plain).unwrap();
        let mut shards = all(&stripe);
        shards[4] = None;
        shards[5] = None;
        assert_eq!(codec.decode(&ctx(), &stripe.info, &shards).unwrap(), plain);
        assert_eq!(counting.0.load(Ordering::Relaxed), 0);
        shards[4] = Some(stripe.shard(4));
        shards[1] = None;
        assert_eq!(codec.decode(&ctx(), &stripe.info, &shards).unwrap(), plain);
        assert_eq!(counting.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn decode_refuses_the_wrong_number_of_shards() {
        let codec = codec(2, 1, false, false);
        let stripe = codec.encode(&ctx(), b"hello").unwrap();
        let shards = all(&stripe);
        for count in [0, 2, 4] {
            let mut given = shards.clone();
            given.resize(count, None);
            let err = codec.decode(&ctx(), &stripe.info, &given).unwrap_err();
            assert!(matches!(err, TransformError::Codec(_)), "{count}: {err:?}");
        }
    }

    #[test]
    fn decode_refuses_a_shard_of_the_wrong_length() {
        let codec = codec(2, 1, false, false);
        let stripe = codec.encode(&ctx(), b"hello").unwrap();
        let long = [0u8; 128];
        for index in 0..3 {
            let mut shards = all(&stripe);
            shards[index] = Some(&long);
            let err = codec.decode(&ctx(), &stripe.info, &shards).unwrap_err();
            assert_eq!(
                err,
                TransformError::ShardSize {
                    index,
                    expected: 64,
                    found: 128
                }
            );
        }
    }

    #[test]
    fn decode_with_no_parity_needs_every_data_shard() {
        let codec = codec(1, 0, false, false);
        let stripe = codec.encode(&ctx(), b"x").unwrap();
        let err = codec.decode(&ctx(), &stripe.info, &[None]).unwrap_err();
        assert_eq!(err, TransformError::TooFewShards { have: 0, need: 1 });
    }

    #[test]
    fn decode_refuses_a_wrong_payload_checksum() {
        let codec = codec(2, 1, true, true);
        let stripe = codec.encode(&ctx(), &sample(1, 10_000, 2)).unwrap();
        let mut info = stripe.info;
        info.payload_crc ^= 1;
        let err = codec.decode(&ctx(), &info, &all(&stripe)).unwrap_err();
        assert_eq!(err, TransformError::Checksum);
    }

    #[test]
    fn decode_of_an_encrypted_stripe_needs_a_key() {
        let plain = sample(1, 10_000, 3);
        let stripe = codec(2, 1, true, true).encode(&ctx(), &plain).unwrap();
        let keyless = codec(2, 1, true, false);
        let err = keyless
            .decode(&ctx(), &stripe.info, &all(&stripe))
            .unwrap_err();
        assert_eq!(err, TransformError::KeyRequired);
        // A keyed codec still reads stripes written before encryption was on.
        let plain_stripe = keyless.encode(&ctx(), &plain).unwrap();
        let keyed = codec(2, 1, true, true);
        assert_eq!(
            keyed
                .decode(&ctx(), &plain_stripe.info, &all(&plain_stripe))
                .unwrap(),
            plain
        );
    }

    #[test]
    fn decode_refuses_a_body_that_expands_to_another_length() {
        let codec = codec(2, 1, true, false);
        let plain = sample(1, 10_000, 4);
        let stripe = codec.encode(&ctx(), &plain).unwrap();
        assert!(stripe.info.is_compressed());
        for plain_len in [9_999, 10_001] {
            let info = StripeInfo {
                plain_len,
                ..stripe.info
            };
            let err = codec.decode(&ctx(), &info, &all(&stripe)).unwrap_err();
            assert!(matches!(err, TransformError::Decompress(_)), "{err:?}");
        }
        // No compressed frame fits an empty stripe: the record is refused as such.
        let info = StripeInfo {
            plain_len: 0,
            ..stripe.info
        };
        let err = codec.decode(&ctx(), &info, &all(&stripe)).unwrap_err();
        assert!(matches!(err, TransformError::Codec(_)), "{err:?}");
    }

    #[test]
    fn decode_refuses_inconsistent_stripe_records() {
        let codec = codec(2, 1, false, false);
        let stripe = codec.encode(&ctx(), &sample(0, 1000, 5)).unwrap();
        let info = stripe.info;
        let records = [
            StripeInfo { flags: 4, ..info },
            StripeInfo {
                shard_len: 0,
                ..info
            },
            StripeInfo {
                shard_len: 100,
                ..info
            },
            StripeInfo {
                payload_len: 2 * info.shard_len + 1,
                ..info
            },
            StripeInfo {
                plain_len: info.plain_len + 1,
                ..info
            },
            StripeInfo {
                flags: FLAG_ENCRYPTED,
                payload_len: 39,
                plain_len: 0,
                ..info
            },
        ];
        for record in records {
            let err = codec.decode(&ctx(), &record, &all(&stripe)).unwrap_err();
            assert!(
                matches!(err, TransformError::Codec(_)),
                "{record:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_zero_data_shard_layout_is_refused() {
        let codec = codec(0, 2, false, false);
        assert!(matches!(
            codec.encode(&ctx(), b"x"),
            Err(TransformError::Codec(_))
        ));
        let info = StripeInfo {
            flags: 0,
            plain_len: 0,
            payload_len: 0,
            shard_len: 64,
            payload_crc: 0,
        };
        assert!(matches!(
            codec.decode(&ctx(), &info, &[None, None]),
            Err(TransformError::Codec(_))
        ));
    }

    #[test]
    fn codec_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<StripeCodec>();
        assert_send_sync::<EncodedStripe>();
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            TransformError::TooFewShards { have: 3, need: 4 }.to_string(),
            "only 3 shards available, 4 needed to rebuild the stripe"
        );
        assert_eq!(
            TransformError::ShardSize {
                index: 2,
                expected: 64,
                found: 10
            }
            .to_string(),
            "shard 2 is 10 bytes, expected 64"
        );
    }

    /// The framed layout: every frame opens alone, and a frame anywhere but where it was
    /// sealed, or read through another table, fails.
    mod frames {
        use super::*;
        use crate::data::frame::{self as layout, FRAME_BYTES};

        fn framed(compress: bool, encrypt: bool, frame_bytes: u32) -> StripeCodec {
            codec(4, 2, compress, encrypt).with_frame_bytes(NonZeroU32::new(frame_bytes).unwrap())
        }

        fn payload(codec: &StripeCodec, e: &EncodedStripe) -> Vec<u8> {
            let mut data: Vec<u8> = e.shards().take(codec.k()).flatten().copied().collect();
            data.truncate(e.info.payload_len as usize);
            data
        }

        /// The table and every frame of a stored payload, each frame opened on its own
        /// from its stored bytes alone.
        fn open_each(
            codec: &StripeCodec,
            ctx: &StripeContext,
            info: &StripeInfo,
            payload: &[u8],
        ) -> Result<(FrameTable, Vec<Vec<u8>>), TransformError> {
            let len = codec.frame_table_len(info)?.expect("framed");
            let table = codec.frame_table(ctx, info, &payload[..len])?;
            let mut frames = Vec::new();
            for i in 0..table.count() {
                let mut out = b"prefix".to_vec();
                codec.open_frame(ctx, &table, i, &payload[table.stored_range(i)], &mut out)?;
                frames.push(out.split_off(6));
            }
            Ok((table, frames))
        }

        /// Stores `payload` as a stripe whose record and shards agree with it (CRC,
        /// lengths, parity): what someone who can rewrite shard files and records could
        /// leave, so that only authentication stands in the way.
        fn forge(
            codec: &StripeCodec,
            info: &StripeInfo,
            payload: &[u8],
        ) -> (StripeInfo, Vec<Vec<u8>>) {
            let k = codec.k();
            let shard_len = codec.shard_len_for(payload.len());
            let mut data = payload.to_vec();
            data.resize(k * shard_len, 0);
            let pieces: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
            let mut shards: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
            shards.extend(codec.erasure().encode(k, codec.m(), &pieces).unwrap());
            let info = StripeInfo {
                payload_len: payload.len() as u32,
                shard_len: shard_len as u32,
                payload_crc: crc32c::crc32c(payload),
                ..*info
            };
            (info, shards)
        }

        fn decode_forged(
            codec: &StripeCodec,
            ctx: &StripeContext,
            info: &StripeInfo,
            payload: &[u8],
        ) -> Result<Vec<u8>, TransformError> {
            let (info, shards) = forge(codec, info, payload);
            let views: Vec<Option<&[u8]>> = shards.iter().map(|s| Some(s.as_slice())).collect();
            codec.decode(ctx, &info, &views)
        }

        #[test]
        fn sizes_round_trip_and_every_frame_opens_alone() {
            let f = FRAME_BYTES as usize;
            for len in [0, 1, f - 1, f, f + 1, 3 * f + 17, 1 << 20] {
                for (compress, encrypt) in [(true, false), (false, true), (true, true)] {
                    let codec = framed(compress, encrypt, FRAME_BYTES);
                    let plain = sample(1 + (len % 2) as u8, len, len as u64);
                    let e = codec.encode(&ctx(), &plain).unwrap();
                    let what = format!("{len} bytes, compress {compress}, encrypt {encrypt}");
                    assert_eq!(
                        codec.decode(&ctx(), &e.info, &all(&e)).unwrap(),
                        plain,
                        "{what}"
                    );
                    if !e.info.is_framed() {
                        // Compression alone, and nothing shrank: stored plain.
                        assert!(!encrypt && payload(&codec, &e) == plain, "{what}");
                        continue;
                    }
                    let (table, frames) =
                        open_each(&codec, &ctx(), &e.info, &payload(&codec, &e)).unwrap();
                    assert_eq!(table.count(), len.div_ceil(f).max(1), "{what}");
                    for (i, frame) in frames.iter().enumerate() {
                        assert!(
                            frame[..] == plain[table.plain_range(i)],
                            "{what}: frame {i}"
                        );
                    }
                }
            }
        }

        #[test]
        fn frames_compress_each_on_its_own_and_raw_ones_stay_raw() {
            let f = FRAME_BYTES as usize;
            // Text, then noise, then text: the noise frames stay raw.
            let mut plain = sample(1, 2 * f, 1);
            plain.extend(sample(0, 2 * f, 2));
            plain.extend(sample(1, f, 3));
            let codec = framed(true, false, FRAME_BYTES);
            let e = codec.encode(&ctx(), &plain).unwrap();
            assert!(e.info.is_compressed() && !e.info.is_encrypted());
            let (table, _) = open_each(&codec, &ctx(), &e.info, &payload(&codec, &e)).unwrap();
            let compressed: Vec<bool> = (0..5).map(|i| table.is_compressed(i)).collect();
            assert_eq!(compressed, [true, true, false, false, true]);
            assert_eq!(table.stored_range(2).len(), f);
            // A sealed volume's incompressible stripe: framed, no frame compressed, and
            // its table follows from the record alone.
            let codec = framed(true, true, FRAME_BYTES);
            let noise = sample(0, 3 * f, 4);
            let e = codec.encode(&ctx(), &noise).unwrap();
            assert!(e.info.is_encrypted() && !e.info.is_compressed());
            let implied = codec.implied_frame_table(&e.info).unwrap().unwrap();
            let (read, _) = open_each(&codec, &ctx(), &e.info, &payload(&codec, &e)).unwrap();
            assert_eq!(implied, read);
            let e = codec.encode(&ctx(), &plain).unwrap();
            assert_eq!(codec.implied_frame_table(&e.info).unwrap(), None);
        }

        #[test]
        fn a_frame_moved_swapped_or_replayed_fails_authentication() {
            let f = 1024usize;
            let codec = framed(false, true, f as u32);
            let plain = sample(0, 4 * f, 7);
            let e = codec.encode(&ctx(), &plain).unwrap();
            let good = payload(&codec, &e);
            let (table, _) = open_each(&codec, &ctx(), &e.info, &good).unwrap();
            let r = |i: usize| table.stored_range(i);
            // Frame 1's bytes opened as frame 2 (same length: raw frames).
            let err = codec
                .open_frame(&ctx(), &table, 2, &good[r(1)], &mut Vec::new())
                .unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            // Swapped in the stored payload, with every checksum made to agree.
            let mut swapped = good.clone();
            swapped[r(1)].copy_from_slice(&good[r(2)]);
            swapped[r(2)].copy_from_slice(&good[r(1)]);
            let err = decode_forged(&codec, &ctx(), &e.info, &swapped).unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            // One frame copied over another.
            let mut copied = good.clone();
            copied[r(3)].copy_from_slice(&good[r(0)]);
            let err = decode_forged(&codec, &ctx(), &e.info, &copied).unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            // A frame of the same chunk from another stripe (an older version of it),
            // another file, another chunk, another volume.
            let elsewhere = [
                StripeContext {
                    stripe: StripeId(98),
                    ..ctx()
                },
                StripeContext {
                    inode: InodeId(43),
                    ..ctx()
                },
                StripeContext { chunk: 4, ..ctx() },
                StripeContext {
                    volume: VolumeId([8; 16]),
                    ..ctx()
                },
            ];
            for other_ctx in elsewhere {
                let other = codec.encode(&other_ctx, &plain).unwrap();
                let other_payload = payload(&codec, &other);
                let mut mixed = good.clone();
                mixed[r(1)].copy_from_slice(&other_payload[r(1)]);
                let err = decode_forged(&codec, &ctx(), &e.info, &mixed).unwrap_err();
                assert_eq!(err, TransformError::Authentication, "{other_ctx:?}");
                let err = codec
                    .open_frame(&ctx(), &table, 1, &other_payload[r(1)], &mut Vec::new())
                    .unwrap_err();
                assert_eq!(err, TransformError::Authentication, "{other_ctx:?}");
            }
        }

        #[test]
        fn a_stripe_cut_short_or_a_changed_table_fails_authentication() {
            let f = 1024usize;
            let codec = framed(true, true, f as u32);
            // Compressible frames and one raw frame, so the table is not implied.
            let mut plain = sample(1, 3 * f, 8);
            plain.extend(sample(0, f, 9));
            let e = codec.encode(&ctx(), &plain).unwrap();
            let good = payload(&codec, &e);
            let (table, _) = open_each(&codec, &ctx(), &e.info, &good).unwrap();
            assert!(e.info.is_compressed());
            let stored_table = table.stored_range(0).start;
            assert_eq!(stored_table, layout::table_len(4) + Cipher::OVERHEAD);
            // The table is sealed: its plain bytes appear nowhere in the payload.
            let plain_table = table.to_bytes();
            assert!(!good.windows(plain_table.len()).any(|w| w == plain_table));
            // The last frame dropped: a well-formed table of the first three frames, the
            // record saying 3 KiB. In plain bytes (no key at hand) it fails as a table;
            // sealed with the key (a bug, say) each frame still fails, bound to 4 frames
            // and the other table.
            let short_shape = layout::FrameShape {
                plain_len: 3 * f,
                payload_len: table.stored_range(2).end - 5,
                ..*table.shape()
            };
            let ends: Vec<u32> = (0..3)
                .map(|i| (table.stored_range(i).end - 5) as u32)
                .collect();
            let flags: Vec<u8> = (0..3).map(|i| u8::from(table.is_compressed(i))).collect();
            let short_table = FrameTable::new(short_shape, ends, flags).to_bytes();
            let frames = &good[stored_table..table.stored_range(2).end];
            let info = StripeInfo {
                plain_len: 3 * f as u32,
                ..e.info
            };
            let unsealed = [&short_table[..], &[0; Cipher::OVERHEAD], frames].concat();
            let err = decode_forged(&codec, &ctx(), &info, &unsealed).unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            let cipher = codec.cipher.as_ref().unwrap();
            let resealed = cipher.seal(&table_aad(&ctx(), 3), &short_table);
            let err = decode_forged(&codec, &ctx(), &info, &[&resealed[..], frames].concat())
                .unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            // The same table of the same chunk's other version (another stripe id): the
            // frames line up, the table does not authenticate here.
            let other_ctx = StripeContext {
                stripe: StripeId(98),
                ..ctx()
            };
            let other = payload(&codec, &codec.encode(&other_ctx, &plain).unwrap());
            let mut mixed = good.clone();
            mixed[..stored_table].copy_from_slice(&other[..stored_table]);
            let err = decode_forged(&codec, &ctx(), &e.info, &mixed).unwrap_err();
            assert_eq!(err, TransformError::Authentication);
            // Any bit of the stored table flipped, checksums made to agree: an error.
            for at in 0..stored_table {
                for bit in 0..8 {
                    let mut bad = good.clone();
                    bad[at] ^= 1 << bit;
                    let result = decode_forged(&codec, &ctx(), &e.info, &bad);
                    assert_eq!(
                        result.map(|p| p.len()),
                        Err(TransformError::Authentication),
                        "table byte {at} bit {bit}"
                    );
                }
            }
            // Without sealing (compression only) only the payload CRC guards the table;
            // past it, a table that breaks the layout's rules is refused as such, and one
            // that moves a compressed frame's bounds does not decompress.
            let packing = framed(true, false, f as u32);
            let e = packing.encode(&ctx(), &plain).unwrap();
            let good = payload(&packing, &e);
            // Count, frame size, the last end, frame 3 (raw) said to be compressed;
            // frame 0's end moved.
            for (at, bit, broken) in [
                (0, 0, true),
                (4, 0, true),
                (20, 2, true),
                (27, 0, true),
                (8, 2, false),
            ] {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                let err = decode_forged(&packing, &ctx(), &e.info, &bad).unwrap_err();
                assert_eq!(
                    matches!(err, TransformError::FrameTable(_)),
                    broken,
                    "byte {at} bit {bit}: {err:?}"
                );
                assert!(
                    broken || matches!(err, TransformError::Decompress(_)),
                    "{err:?}"
                );
            }
        }

        #[test]
        fn open_frame_refuses_bytes_of_the_wrong_length_or_index() {
            let sealing = framed(false, true, 1024);
            let e = sealing.encode(&ctx(), &sample(0, 3000, 1)).unwrap();
            let good = payload(&sealing, &e);
            let (table, _) = open_each(&sealing, &ctx(), &e.info, &good).unwrap();
            let r = table.stored_range(0);
            let mut out = Vec::new();
            for (index, bytes) in [(0, &good[r.start..r.end - 1]), (3, &good[r.clone()])] {
                let err = sealing
                    .open_frame(&ctx(), &table, index, bytes, &mut out)
                    .unwrap_err();
                assert!(matches!(err, TransformError::Codec(_)), "{err:?}");
            }
            assert!(out.is_empty());
            // A plain stripe has no table.
            let plain = codec(4, 2, false, false);
            let e = plain.encode(&ctx(), b"abc").unwrap();
            assert_eq!(plain.frame_table_len(&e.info).unwrap(), None);
            assert!(plain.frame_table(&ctx(), &e.info, &[]).is_err());
            // The keyless codec cannot open sealed frames.
            let keyless = framed(false, false, 1024);
            let err = keyless
                .open_frame(&ctx(), &table, 0, &good[r], &mut out)
                .unwrap_err();
            assert_eq!(err, TransformError::KeyRequired);
        }

        #[test]
        fn scrub_authentication_checks_every_frame() {
            let f = 1024usize;
            let codec = framed(true, true, f as u32);
            let plain = sample(0, 5 * f, 3);
            let e = codec.encode(&ctx(), &plain).unwrap();
            let good = payload(&codec, &e);
            let (table, _) = open_each(&codec, &ctx(), &e.info, &good).unwrap();
            for i in 0..table.count() {
                // The last byte of frame i's tag flipped, checksums made to agree.
                let mut bad = good.clone();
                bad[table.stored_range(i).end - 1] ^= 1;
                let (info, shards) = forge(&codec, &e.info, &bad);
                let data: Vec<&[u8]> = shards[..4].iter().map(Vec::as_slice).collect();
                assert_eq!(
                    codec.authenticate(&ctx(), &info, &data),
                    Err(TransformError::Authentication),
                    "frame {i}"
                );
            }
        }

        fn frame_sizes() -> impl Strategy<Value = u32> {
            prop::sample::select(vec![64u32, 1000, 4096, FRAME_BYTES])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            #[test]
            fn any_frame_size_round_trips_frame_by_frame(
                frame_bytes in frame_sizes(),
                compress in any::<bool>(),
                encrypt in any::<bool>(),
                plain in data(),
            ) {
                let codec = framed(compress, encrypt, frame_bytes);
                let e = codec.encode(&ctx(), &plain).unwrap();
                prop_assert_eq!(codec.decode(&ctx(), &e.info, &all(&e)).unwrap(), &plain[..]);
                prop_assert_eq!(e.info.is_framed(), encrypt || e.info.is_compressed());
                if e.info.is_framed() {
                    let (table, frames) = open_each(&codec, &ctx(), &e.info, &payload(&codec, &e)).unwrap();
                    prop_assert_eq!(frames.concat(), plain);
                    prop_assert_eq!(table.covering(0..usize::MAX).len(), if frames.concat().is_empty() { 0 } else { table.count() });
                }
            }

            #[test]
            fn a_flipped_bit_in_a_sealed_payload_is_an_error_even_with_its_checksums(
                frame_bytes in frame_sizes(),
                compress in any::<bool>(),
                plain in data(),
                at in any::<prop::sample::Index>(),
                bit in 0u8..8,
            ) {
                let codec = framed(compress, true, frame_bytes);
                let e = codec.encode(&ctx(), &plain).unwrap();
                let mut bad = payload(&codec, &e);
                let pos = at.index(bad.len());
                bad[pos] ^= 1 << bit;
                let result = decode_forged(&codec, &ctx(), &e.info, &bad);
                prop_assert!(
                    matches!(result, Err(TransformError::Authentication | TransformError::FrameTable(_))),
                    "byte {} of {}: {:?}", pos, bad.len(), result.map(|p| p.len())
                );
            }

            #[test]
            fn any_table_bytes_and_frame_bytes_are_an_answer_never_a_panic(
                frame_bytes in frame_sizes(),
                compress in any::<bool>(),
                encrypt in any::<bool>(),
                plain in data(),
                noise in prop::collection::vec(any::<u8>(), 0..4096),
            ) {
                let codec = framed(compress, encrypt, frame_bytes);
                let e = codec.encode(&ctx(), &plain).unwrap();
                if let Some(len) = codec.frame_table_len(&e.info).unwrap() {
                    let mut bytes = noise.clone();
                    bytes.resize(len, 0);
                    let _ = codec.frame_table(&ctx(), &e.info, &bytes);
                    let good = payload(&codec, &e);
                    let table = codec.frame_table(&ctx(), &e.info, &good[..len]).unwrap();
                    let range = table.stored_range(0);
                    let mut stored = noise;
                    stored.resize(range.len(), 0xa5);
                    let mut out = Vec::new();
                    if codec.open_frame(&ctx(), &table, 0, &stored, &mut out).is_err() {
                        prop_assert!(out.is_empty());
                    }
                }
            }
        }
    }
}

//! Frames: the pieces a compressed or encrypted stripe is transformed in, so that a small
//! read opens the frames it covers instead of the whole stripe.
//!
//! A transformed stripe's plaintext is cut into frames of `frame_bytes` plain bytes (the
//! last one shorter; an empty stripe has one empty frame). Each frame is compressed on its
//! own where that makes it smaller and, on an encrypted volume, sealed on its own. The
//! payload opens with the frame table, so a reader finds frame i's bytes without reading
//! the others:
//!
//! ```text
//! payload = table || frames                              not sealed
//!         | nonce (24) || table' || tag (16) || frames   sealed (table' = table encrypted)
//!
//! table:
//! offset  size  field
//! 0       4     frame_count  u32 LE: max(1, ceil(plain_len / frame_bytes))
//! 4       4     frame_bytes  u32 LE: plain bytes of every frame but the last
//! 8       4n    ends         u32 LE each: where frame i ends in the payload; frame 0
//!                            starts where the (sealed) table ends, frame i+1 where
//!                            frame i ends
//! 8+4n    n     flags        u8 each: bit 0 FRAME_COMPRESSED; other bits zero
//!
//! frame   = nonce (24) || body' || tag (16)   sealed (body' = body encrypted)
//!         | body                              not sealed
//! body    = a zstd frame (FRAME_COMPRESSED, strictly shorter than the frame's plain
//!           bytes) or the plain bytes
//! ```
//!
//! The last frame ends where the payload ends. On an encrypted volume the table is sealed
//! like a frame, so the disks show how large each stripe is stored but not how well each
//! frame compressed. The associated data ([`StripeContext::frame_aad`]) binds the table
//! and each frame to its volume, file, chunk and stripe id, and each frame also to its
//! index, the frame count and the table (BLAKE3 of the table's plain bytes); the table
//! takes the index `u32::MAX`, which no frame has, and no hash. So a frame or table moved
//! to another position or stripe, swapped, replayed from an older version of the chunk
//! (which had another stripe id), or a stripe cut short, fails authentication. Like every
//! payload byte, the stored table is covered by the stripe's payload CRC.
//!
//! Owns the table's bytes and the rules a valid one obeys; compressing and sealing the
//! frames is the codec's (`stripe.rs`). No I/O.

use super::crypto::Cipher;
use super::stripe::{StripeContext, TransformError};
use std::ops::Range;

/// Plain bytes per frame on every volume (see docs/PERFORMANCE.md, "Frame size").
pub const FRAME_BYTES: u32 = 16 << 10;

/// Frame flag bit: the body is a zstd frame.
pub const FRAME_COMPRESSED: u8 = 1;

/// Bytes of the table before its per-frame entries (count, frame size).
const HEAD_BYTES: usize = 8;

/// The index the sealed table's associated data carries: no frame has it (a stripe has
/// fewer than `u32::MAX` frames).
pub const TABLE_INDEX: u32 = u32::MAX;

/// Bytes of the associated data of a sealed frame.
pub const FRAME_AAD_LEN: usize = 80;

/// Frames of a stripe of `plain_len` bytes: never zero, so that even an empty sealed
/// stripe carries a tag binding it to its place.
pub fn frame_count(plain_len: usize, frame_bytes: usize) -> usize {
    plain_len.div_ceil(frame_bytes.max(1)).max(1)
}

/// Bytes of the table of `count` frames (before sealing).
pub fn table_len(count: usize) -> usize {
    HEAD_BYTES + 5 * count
}

/// What a stripe record says about its frames: enough to size and check the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    /// Plain bytes of every frame but the last.
    pub frame_bytes: usize,
    /// Plain bytes of the stripe.
    pub plain_len: usize,
    /// Bytes of the payload (table and frames).
    pub payload_len: usize,
    /// Frames are sealed.
    pub is_sealed: bool,
    /// At least one frame is compressed.
    pub is_compressed: bool,
}

impl FrameShape {
    /// Frames of the stripe.
    pub fn count(&self) -> usize {
        frame_count(self.plain_len, self.frame_bytes)
    }

    /// Bytes the table takes at the head of the payload: sealed when the frames are.
    pub fn stored_table_len(&self) -> usize {
        table_len(self.count()) + self.overhead()
    }

    /// Bytes each frame has beyond its body.
    pub fn overhead(&self) -> usize {
        if self.is_sealed { Cipher::OVERHEAD } else { 0 }
    }

    /// Plain bytes of frame `index`.
    fn plain_frame_len(&self, index: usize) -> usize {
        let start = index * self.frame_bytes;
        self.plain_len.min(start + self.frame_bytes) - start
    }

    /// Checks that a payload of this length can hold such a table and frames: exactly
    /// table + frames when no frame is compressed, less when one is.
    pub fn check(&self) -> Result<(), String> {
        if self.frame_bytes == 0 {
            return Err("frames of 0 bytes".into());
        }
        if !self.is_sealed && !self.is_compressed {
            return Err("a framed stripe neither sealed nor compressed".into());
        }
        let count = self.count();
        let fixed = self.stored_table_len() + count * self.overhead();
        let raw = fixed + self.plain_len;
        let fits = if self.is_compressed {
            // Each compressed body is at least a byte and strictly shorter than its frame.
            self.payload_len >= fixed + count && self.payload_len < raw
        } else {
            self.payload_len == raw
        };
        if !fits {
            return Err(format!(
                "a payload of {} bytes for {count} frames of {} plain bytes ({}{})",
                self.payload_len,
                self.plain_len,
                if self.is_sealed {
                    "sealed"
                } else {
                    "not sealed"
                },
                if self.is_compressed {
                    ", some compressed"
                } else {
                    ", none compressed"
                }
            ));
        }
        Ok(())
    }

    /// The table of a stripe none of whose frames is compressed, which the record alone
    /// determines (no read needed). The caller has checked the shape.
    pub fn implied_table(&self) -> FrameTable {
        let count = self.count();
        let mut ends = Vec::with_capacity(count);
        let mut at = self.stored_table_len();
        for index in 0..count {
            at += self.overhead() + self.plain_frame_len(index);
            ends.push(at as u32);
        }
        FrameTable::new(*self, ends, vec![0; count])
    }
}

/// A stripe's frame table, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTable {
    shape: FrameShape,
    ends: Box<[u32]>,
    flags: Box<[u8]>,
    /// BLAKE3 of the table's bytes, bound into each sealed frame.
    hash: [u8; 32],
}

impl FrameTable {
    /// A table of the given frame ends and flags (the encoder's).
    pub(crate) fn new(shape: FrameShape, ends: Vec<u32>, flags: Vec<u8>) -> FrameTable {
        let mut table = FrameTable {
            shape,
            ends: ends.into_boxed_slice(),
            flags: flags.into_boxed_slice(),
            hash: [0; 32],
        };
        table.hash = *blake3::hash(&table.to_bytes()).as_bytes();
        table
    }

    /// The table's plain bytes: as they open the payload when it is not sealed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let count = self.ends.len();
        let mut out = Vec::with_capacity(table_len(count));
        out.extend_from_slice(&(count as u32).to_le_bytes());
        out.extend_from_slice(&(self.shape.frame_bytes as u32).to_le_bytes());
        for end in &self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&self.flags);
        out
    }

    /// Parses the plain bytes of the table of a payload of `shape` (`bytes` is exactly
    /// [`table_len`] of its frame count long) and checks every rule of the layout: the count and
    /// frame size the shape implies, frames end to end up to the payload's end, each as
    /// long as its flags say, flags known, and some frame compressed exactly when the
    /// record says so.
    pub fn parse(shape: FrameShape, bytes: &[u8]) -> Result<FrameTable, TransformError> {
        let bad = |what: String| Err(TransformError::FrameTable(what));
        if let Err(why) = shape.check() {
            return bad(why);
        }
        let count = shape.count();
        if bytes.len() != table_len(count) {
            return bad(format!(
                "{} bytes where a table of {count} frames takes {}",
                bytes.len(),
                table_len(count)
            ));
        }
        let word =
            |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if word(0) != count {
            return bad(format!("{} frames where {count} were written", word(0)));
        }
        if word(4) != shape.frame_bytes {
            return bad(format!(
                "frames of {} bytes where this codec makes {}",
                word(4),
                shape.frame_bytes
            ));
        }
        let ends: Vec<u32> = (0..count)
            .map(|i| word(HEAD_BYTES + 4 * i) as u32)
            .collect();
        let flags = bytes[HEAD_BYTES + 4 * count..].to_vec();
        let mut start = shape.stored_table_len();
        for (index, (&end, &flag)) in ends.iter().zip(&flags).enumerate() {
            if flag & !FRAME_COMPRESSED != 0 {
                return bad(format!("frame {index}: unknown flags {flag:#04x}"));
            }
            let plain = shape.plain_frame_len(index);
            let body = (end as usize)
                .checked_sub(start)
                .and_then(|len| len.checked_sub(shape.overhead()));
            let fits = match body {
                Some(body) if flag & FRAME_COMPRESSED != 0 => body > 0 && body < plain,
                Some(body) => body == plain,
                None => false,
            };
            if !fits {
                return bad(format!(
                    "frame {index}: bytes {start}..{end} for {plain} plain bytes{}",
                    if flag & FRAME_COMPRESSED != 0 {
                        ", compressed"
                    } else {
                        ""
                    }
                ));
            }
            start = end as usize;
        }
        if start != shape.payload_len {
            return bad(format!(
                "frames end at {start} in a payload of {} bytes",
                shape.payload_len
            ));
        }
        if flags.iter().any(|f| f & FRAME_COMPRESSED != 0) != shape.is_compressed {
            return bad("the frames' compression disagrees with the stripe record".into());
        }
        Ok(FrameTable::new(shape, ends, flags))
    }

    /// What the table was checked against.
    pub fn shape(&self) -> &FrameShape {
        &self.shape
    }

    /// Frames in the stripe.
    pub fn count(&self) -> usize {
        self.ends.len()
    }

    /// Where frame `index` is stored in the payload.
    pub fn stored_range(&self, index: usize) -> Range<usize> {
        let start = match index {
            0 => self.shape.stored_table_len(),
            _ => self.ends[index - 1] as usize,
        };
        start..self.ends[index] as usize
    }

    /// Where the stored bytes of frames `frames` lie in the payload, end to end.
    pub fn stored_span(&self, frames: Range<usize>) -> Range<usize> {
        if frames.is_empty() {
            return 0..0;
        }
        self.stored_range(frames.start).start..self.stored_range(frames.end - 1).end
    }

    /// Which plain bytes of the stripe frame `index` holds.
    pub fn plain_range(&self, index: usize) -> Range<usize> {
        let start = index * self.shape.frame_bytes;
        start..start + self.shape.plain_frame_len(index)
    }

    /// The frames holding the plain bytes `plain` (clipped to the stripe).
    pub fn covering(&self, plain: Range<usize>) -> Range<usize> {
        let end = plain.end.min(self.shape.plain_len);
        if plain.start >= end {
            return 0..0;
        }
        plain.start / self.shape.frame_bytes..(end - 1) / self.shape.frame_bytes + 1
    }

    /// True when frame `index`'s body is a zstd frame.
    pub fn is_compressed(&self, index: usize) -> bool {
        self.flags[index] & FRAME_COMPRESSED != 0
    }

    /// The associated data sealing frame `index` of the stripe at `ctx`.
    pub fn aad(&self, ctx: &StripeContext, index: usize) -> [u8; FRAME_AAD_LEN] {
        ctx.frame_aad(index as u32, self.count() as u32, &self.hash)
    }

    /// Roughly what the table takes in memory, for caches that bound their bytes.
    pub fn weight_bytes(&self) -> usize {
        std::mem::size_of::<FrameTable>() + 5 * self.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(plain_len: usize, payload_len: usize, sealed: bool, compressed: bool) -> FrameShape {
        FrameShape {
            frame_bytes: 100,
            plain_len,
            payload_len,
            is_sealed: sealed,
            is_compressed: compressed,
        }
    }

    #[test]
    fn counts_and_table_lengths() {
        assert_eq!(frame_count(0, 100), 1);
        assert_eq!(frame_count(1, 100), 1);
        assert_eq!(frame_count(100, 100), 1);
        assert_eq!(frame_count(101, 100), 2);
        assert_eq!(table_len(3), 8 + 12 + 3);
    }

    #[test]
    fn the_implied_table_is_what_parse_accepts_and_locates_every_frame() {
        // Sealed: a table of 23 bytes sealed in 63, then frames of 140, 140 and 90.
        let s = shape(250, 63 + 250 + 3 * 40, true, false);
        s.check().unwrap();
        let table = s.implied_table();
        assert_eq!(FrameTable::parse(s, &table.to_bytes()).unwrap(), table);
        assert_eq!(table.stored_range(0), 63..203);
        assert_eq!(table.stored_range(2), 343..433);
        assert_eq!(table.stored_span(1..3), 203..433);
        assert_eq!(table.plain_range(2), 200..250);
        assert_eq!(table.covering(99..101), 0..2);
        assert_eq!(table.covering(200..1000), 2..3);
        assert_eq!(table.covering(250..260), 0..0);
    }

    #[test]
    fn parse_refuses_what_no_encoder_writes() {
        // Frame 1 compressed to 30 bytes: 23 + 100 + 30 + 50.
        let s = shape(200 + 50, 23 + 100 + 30 + 50, false, true);
        let good = FrameTable::new(s, vec![123, 153, 203], vec![0, 1, 0]);
        let bytes = good.to_bytes();
        assert_eq!(FrameTable::parse(s, &bytes).unwrap(), good);
        let word = |b: &mut Vec<u8>, at: usize, v: u32| {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let mut b = bytes.clone();
        word(&mut b, 0, 2); // count
        cases.push(b);
        let mut b = bytes.clone();
        word(&mut b, 4, 64); // frame size
        cases.push(b);
        let mut b = bytes.clone();
        word(&mut b, 8, 124); // frame 0 one byte long
        cases.push(b);
        let mut b = bytes.clone();
        word(&mut b, 12, 122); // frame 1 ends before it starts
        cases.push(b);
        let mut b = bytes.clone();
        word(&mut b, 16, 204); // past the payload
        cases.push(b);
        let mut b = bytes.clone();
        b[20] = 1; // frame 0 "compressed" at its full length
        cases.push(b);
        let mut b = bytes.clone();
        b[21] = 0; // frame 1 raw but shorter than its plain bytes
        cases.push(b);
        let mut b = bytes.clone();
        b[22] = 4; // unknown flag
        cases.push(b);
        cases.push(bytes[..bytes.len() - 1].to_vec()); // truncated
        for (i, case) in cases.iter().enumerate() {
            let err = FrameTable::parse(s, case).unwrap_err();
            assert!(matches!(err, TransformError::FrameTable(_)), "{i}: {err:?}");
        }
        // The record disagreeing with the table: no compressed frame claimed.
        let plain_shape = FrameShape {
            is_compressed: false,
            payload_len: 23 + 250,
            ..s
        };
        assert!(FrameTable::parse(plain_shape, &bytes).is_err());
    }

    #[test]
    fn shapes_no_encoder_writes_are_refused() {
        for s in [
            shape(10, 10, false, false),
            shape(250, table_len(3) + 40 + 250 + 120 + 1, true, false),
            shape(250, table_len(3) + 40 + 250 + 120, true, true),
            shape(250, table_len(3) + 2, false, true),
            FrameShape {
                frame_bytes: 0,
                ..shape(1, 100, true, false)
            },
        ] {
            assert!(s.check().is_err(), "{s:?}");
        }
        shape(0, table_len(1) + 40 + 40, true, false)
            .check()
            .unwrap();
    }
}

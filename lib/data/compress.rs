//! Stripe compression (zstd), skipped where it does not shrink.
//!
//! Owns the compression mode of a volume, its text form (`none`, `zstd:N`) and the
//! bounded zstd calls of the data path. It knows nothing of shards, keys or metadata.
//!
//! zstd contexts are kept per thread: creating one allocates and fills around a MiB of
//! tables, which would otherwise be paid again for every stripe.

use super::stripe::TransformError;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::io::Cursor;

/// The compression mode of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Compression {
    /// Store bytes as they are.
    None,
    /// zstd at the given level.
    Zstd {
        /// zstd level (1..=19).
        level: i32,
    },
}

/// The zstd level used when none is given (`zstd`).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The zstd levels [`Compression::parse`] accepts. Levels above 19 need far more memory
/// to compress and gain little on 1 MiB stripes.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

impl Compression {
    /// Parses `none`, `zstd` (level 3) or `zstd:N` with N in 1..=19.
    pub fn parse(text: &str) -> Result<Compression, String> {
        const ALLOWED: &str = "expected \"none\", \"zstd\" or \"zstd:N\" with N in 1..=19";
        match text {
            "none" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd {
                level: DEFAULT_ZSTD_LEVEL,
            }),
            _ => {
                let level = text
                    .strip_prefix("zstd:")
                    .ok_or_else(|| format!("unknown compression {text:?}: {ALLOWED}"))?;
                match level.parse::<i32>() {
                    Ok(level) if ZSTD_LEVELS.contains(&level) => Ok(Compression::Zstd { level }),
                    _ => Err(format!("invalid zstd level {level:?}: {ALLOWED}")),
                }
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

thread_local! {
    /// The level the context is set to, and the context.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compresses `input`; `None` when `mode` is [`Compression::None`] or the output would
/// not be smaller than the input.
pub fn compress(mode: Compression, input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if compress_append(mode, input, &mut out) {
        out.shrink_to_fit();
        Some(out)
    } else {
        None
    }
}

/// Appends the compressed form of `input` to `out` and returns true, if compression is on
/// and the result is strictly smaller than `input`; otherwise leaves `out` as it was and
/// returns false.
///
/// zstd writes straight into `out`'s spare capacity, so a caller that reserved room for
/// the uncompressed bytes gets the compressed ones without an intermediate buffer.
pub fn compress_append(mode: Compression, input: &[u8], out: &mut Vec<u8>) -> bool {
    let Compression::Zstd { level } = mode else {
        return false;
    };
    // Nothing shorter than an empty input exists, and a zstd frame is never empty.
    if input.is_empty() {
        return false;
    }
    let start = out.len();
    out.reserve(input.len());
    let written = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(current, _)| *current != level) {
            // A failure to set up zstd only means this stripe is stored as it is.
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, compressor) = slot.as_mut()?;
        let mut cursor = Cursor::new(&mut *out);
        cursor.set_position(start as u64);
        compressor.compress_to_buffer(input, &mut cursor).ok()
    });
    match written {
        Some(n) if n < input.len() && out.len() == start + n => true,
        _ => {
            out.truncate(start);
            false
        }
    }
}

/// Decompresses `input`, which must expand to exactly `expected_len` bytes, and appends
/// the result to `out`; on failure `out` is left as it was.
///
/// zstd writes into a slice of exactly `expected_len` bytes and is never allowed past it,
/// so a hostile frame cannot make this allocate more (no decompression bombs).
pub fn decompress_append(
    input: &[u8],
    expected_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), TransformError> {
    let start = out.len();
    out.resize(start + expected_len, 0);
    let written = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.take() {
            Some(decompressor) => slot.insert(decompressor),
            None => slot.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| TransformError::Decompress(format!("zstd setup: {e}")))?,
            ),
        };
        decompressor
            .decompress_to_buffer(input, &mut out[start..])
            .map_err(|e| TransformError::Decompress(e.to_string()))
    });
    let result = match written {
        Ok(n) if n == expected_len => Ok(()),
        Ok(n) => Err(TransformError::Decompress(format!(
            "expanded to {n} bytes, expected {expected_len}"
        ))),
        Err(e) => Err(e),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, TransformError> {
        let mut out = Vec::new();
        decompress_append(input, expected_len, &mut out).map(|()| out)
    }

    const ZSTD3: Compression = Compression::Zstd { level: 3 };

    #[test]
    fn parse_accepts_the_documented_forms() {
        assert_eq!(Compression::parse("none"), Ok(Compression::None));
        assert_eq!(Compression::parse("zstd"), Ok(ZSTD3));
        assert_eq!(
            Compression::parse("zstd:1"),
            Ok(Compression::Zstd { level: 1 })
        );
        assert_eq!(
            Compression::parse("zstd:19"),
            Ok(Compression::Zstd { level: 19 })
        );
    }

    #[test]
    fn parse_refuses_other_text_and_says_what_is_allowed() {
        for bad in [
            "", "lz4", "zstd:", "zstd:0", "zstd:20", "zstd:-1", "zstd:x", "ZSTD",
        ] {
            let err = Compression::parse(bad).unwrap_err();
            assert!(err.contains("zstd:N"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for mode in [Compression::None, ZSTD3, Compression::Zstd { level: 19 }] {
            assert_eq!(Compression::parse(&mode.to_string()), Ok(mode));
        }
        assert_eq!(ZSTD3.to_string(), "zstd:3");
    }

    #[test]
    fn serde_form_is_tagged_by_mode() {
        let json = serde_json::to_string(&ZSTD3).unwrap();
        assert_eq!(json, r#"{"mode":"zstd","level":3}"#);
        assert_eq!(
            serde_json::to_string(&Compression::None).unwrap(),
            r#"{"mode":"none"}"#
        );
        assert_eq!(serde_json::from_str::<Compression>(&json).unwrap(), ZSTD3);
    }

    #[test]
    fn compressible_input_round_trips() {
        let input: Vec<u8> = b"argosfs ".iter().copied().cycle().take(100_000).collect();
        let packed = compress(ZSTD3, &input).expect("repetitive data shrinks");
        assert!(packed.len() < input.len() / 10);
        assert_eq!(decompress(&packed, input.len()).unwrap(), input);
    }

    #[test]
    fn compress_skips_when_off_empty_or_not_shrinking() {
        let input = vec![7u8; 4096];
        assert_eq!(compress(Compression::None, &input), None);
        assert_eq!(compress(ZSTD3, &[]), None);
        // One byte cannot shrink: a zstd frame alone is longer.
        assert_eq!(compress(ZSTD3, &[42]), None);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..65_536)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert_eq!(compress(ZSTD3, &noise), None);
    }

    #[test]
    fn compress_append_keeps_the_prefix_and_restores_it_on_skip() {
        let mut out = b"prefix".to_vec();
        assert!(!compress_append(ZSTD3, &[1], &mut out));
        assert_eq!(out, b"prefix");
        let input = vec![0u8; 10_000];
        assert!(compress_append(ZSTD3, &input, &mut out));
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(decompress(&out[6..], input.len()).unwrap(), input);
    }

    #[test]
    fn switching_levels_on_one_thread_uses_the_new_level() {
        let input: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect();
        for level in [1, 19, 1] {
            let packed = compress(Compression::Zstd { level }, &input).unwrap();
            assert_eq!(decompress(&packed, input.len()).unwrap(), input);
        }
    }

    #[test]
    fn decompress_refuses_output_longer_than_expected() {
        let input = vec![0u8; 1 << 20];
        let packed = compress(ZSTD3, &input).unwrap();
        assert!(packed.len() < 1024, "a bomb: tiny input, large output");
        let err = decompress(&packed, 4096).unwrap_err();
        assert!(matches!(err, TransformError::Decompress(_)), "{err:?}");
    }

    #[test]
    fn decompress_refuses_output_shorter_than_expected() {
        let input = vec![5u8; 10_000];
        let packed = compress(ZSTD3, &input).unwrap();
        let err = decompress(&packed, input.len() + 1).unwrap_err();
        assert!(matches!(err, TransformError::Decompress(_)), "{err:?}");
    }

    #[test]
    fn decompress_refuses_garbage_and_truncation() {
        let err = decompress(b"definitely not zstd", 100).unwrap_err();
        assert!(matches!(err, TransformError::Decompress(_)));
        let input = vec![9u8; 10_000];
        let packed = compress(ZSTD3, &input).unwrap();
        let err = decompress(&packed[..packed.len() - 1], input.len()).unwrap_err();
        assert!(matches!(err, TransformError::Decompress(_)));
    }
}

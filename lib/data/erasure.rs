//! Erasure codes behind a small trait; the codec id is recorded in the superblock.
//!
//! Owns the parity math only: shards in, parity or rebuilt data shards out. It knows
//! nothing of payloads, padding, checksums or where shards live. Parity bytes are part of
//! the on-disk format, so a codec's output for a given id must never change.

use super::stripe::TransformError;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::cell::RefCell;
use std::sync::Arc;

/// The codec new volumes use.
pub const DEFAULT_CODEC_ID: &str = "rs-gf16-simd-v1";

/// A systematic erasure code: k data shards stay as they are, m parity shards are added,
/// and any k of the k + m rebuild the data.
pub trait ErasureCodec: Send + Sync {
    /// The id recorded in the superblock: parity bytes are part of the on-disk format.
    fn id(&self) -> &'static str;

    /// Shard lengths must be a multiple of this.
    fn shard_alignment(&self) -> usize;

    /// Computes the m parity shards of the k equally long `data` shards; `m == 0` gives
    /// an empty Vec.
    fn encode(&self, k: usize, m: usize, data: &[&[u8]]) -> Result<Vec<Vec<u8>>, TransformError>;

    /// Fills every missing data shard (index < k) of `shards` (`k + m` long) from any k
    /// present ones; [`TransformError::TooFewShards`] when fewer than k are present.
    /// Missing parity shards stay missing.
    fn reconstruct(
        &self,
        k: usize,
        m: usize,
        shards: &mut [Option<Vec<u8>>],
    ) -> Result<(), TransformError>;

    /// Rebuilds each missing data shard (index < k, `None` in the `k + m` long `shards`)
    /// from any k present ones and hands it to `sink` with its index, in index order;
    /// present shards are not handed over. Same errors as [`ErasureCodec::reconstruct`].
    ///
    /// The default goes through `reconstruct`, copying every present shard first.
    fn rebuild_missing(
        &self,
        k: usize,
        m: usize,
        shards: &[Option<&[u8]>],
        sink: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), TransformError> {
        let mut owned: Vec<Option<Vec<u8>>> =
            shards.iter().map(|s| s.map(<[u8]>::to_vec)).collect();
        self.reconstruct(k, m, &mut owned)?;
        for (index, shard) in owned.iter().enumerate().take(k) {
            if shards[index].is_none() {
                let shard = shard.as_deref().ok_or_else(|| {
                    TransformError::Codec(format!("codec left data shard {index} missing"))
                })?;
                sink(index, shard);
            }
        }
        Ok(())
    }

    /// Returns the k data shards concatenated (`k * shard_len` bytes), rebuilding missing
    /// ones from any k of the borrowed `shards` (`k + m` long). Same errors as
    /// [`ErasureCodec::reconstruct`].
    ///
    /// The default goes through `reconstruct` and copies every present shard first;
    /// codecs override it to write rebuilt shards straight into the result.
    fn recover_data(
        &self,
        k: usize,
        m: usize,
        shards: &[Option<&[u8]>],
    ) -> Result<Vec<u8>, TransformError> {
        let shard_len = check_present(k, m, shards, self.shard_alignment())?;
        let mut owned: Vec<Option<Vec<u8>>> =
            shards.iter().map(|s| s.map(<[u8]>::to_vec)).collect();
        self.reconstruct(k, m, &mut owned)?;
        let mut out = Vec::with_capacity(k * shard_len);
        for (index, shard) in owned.iter().take(k).enumerate() {
            let shard = shard.as_deref().ok_or_else(|| {
                TransformError::Codec(format!("codec left data shard {index} missing"))
            })?;
            out.extend_from_slice(shard);
        }
        Ok(out)
    }
}

/// Reed-Solomon over GF(2^16) with SIMD (the `reed-solomon-simd` crate).
///
/// Layouts with m = 0 need no parity and never reach the library, which refuses them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReedSolomonSimd;

/// Shard alignment of [`ReedSolomonSimd`]: the library needs even lengths; 64 bytes keeps
/// every shard a whole number of SIMD blocks, which is its fast path.
const RS_ALIGNMENT: usize = 64;

thread_local! {
    // The encoder and decoder own work buffers of a few shard lengths; keeping them per
    // thread avoids allocating and faulting those in again for every stripe.
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

fn rs_error(e: reed_solomon_simd::Error) -> TransformError {
    TransformError::Codec(format!("reed-solomon: {e}"))
}

impl ReedSolomonSimd {
    /// Runs the library decoder over `shards` (checked by the caller to hold at least k,
    /// with some data shard missing) and hands each data shard, present or rebuilt, to
    /// `sink` in index order.
    fn decode_with(
        k: usize,
        m: usize,
        shard_len: usize,
        shards: &[Option<&[u8]>],
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), TransformError> {
        DECODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let mut decoder = match slot.take() {
                Some(mut decoder) => {
                    decoder.reset(k, m, shard_len).map_err(rs_error)?;
                    decoder
                }
                None => ReedSolomonDecoder::new(k, m, shard_len).map_err(rs_error)?,
            };
            for (index, shard) in shards.iter().enumerate() {
                if let Some(shard) = shard {
                    if index < k {
                        decoder.add_original_shard(index, shard).map_err(rs_error)?;
                    } else {
                        decoder
                            .add_recovery_shard(index - k, shard)
                            .map_err(rs_error)?;
                    }
                }
            }
            let result = decoder.decode().map_err(rs_error)?;
            for (index, shard) in shards.iter().take(k).enumerate() {
                let bytes = match shard {
                    Some(bytes) => *bytes,
                    None => result.restored_original(index).ok_or_else(|| {
                        TransformError::Codec(format!("decoder did not restore shard {index}"))
                    })?,
                };
                sink(index, bytes);
            }
            drop(result);
            *slot = Some(decoder);
            Ok(())
        })
    }
}

impl ErasureCodec for ReedSolomonSimd {
    fn id(&self) -> &'static str {
        DEFAULT_CODEC_ID
    }

    fn shard_alignment(&self) -> usize {
        RS_ALIGNMENT
    }

    fn encode(&self, k: usize, m: usize, data: &[&[u8]]) -> Result<Vec<Vec<u8>>, TransformError> {
        check_layout(k, m)?;
        if data.len() != k {
            return Err(TransformError::Codec(format!(
                "{} data shards given for a {k}+{m} layout",
                data.len()
            )));
        }
        let shard_len = data[0].len();
        check_shard_len(shard_len, RS_ALIGNMENT)?;
        for (index, shard) in data.iter().enumerate() {
            if shard.len() != shard_len {
                return Err(TransformError::ShardSize {
                    index,
                    expected: shard_len,
                    found: shard.len(),
                });
            }
        }
        if m == 0 {
            return Ok(Vec::new());
        }
        ENCODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let mut encoder = match slot.take() {
                Some(mut encoder) => {
                    encoder.reset(k, m, shard_len).map_err(rs_error)?;
                    encoder
                }
                None => ReedSolomonEncoder::new(k, m, shard_len).map_err(rs_error)?,
            };
            for shard in data {
                encoder.add_original_shard(shard).map_err(rs_error)?;
            }
            let parity: Vec<Vec<u8>> = encoder
                .encode()
                .map_err(rs_error)?
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect();
            *slot = Some(encoder);
            Ok(parity)
        })
    }

    fn reconstruct(
        &self,
        k: usize,
        m: usize,
        shards: &mut [Option<Vec<u8>>],
    ) -> Result<(), TransformError> {
        let borrowed: Vec<Option<&[u8]>> = shards.iter().map(|s| s.as_deref()).collect();
        let shard_len = check_present(k, m, &borrowed, RS_ALIGNMENT)?;
        if borrowed[..k].iter().all(Option::is_some) {
            return Ok(());
        }
        let mut rebuilt: Vec<(usize, Vec<u8>)> = Vec::new();
        Self::decode_with(k, m, shard_len, &borrowed, |index, bytes| {
            if borrowed[index].is_none() {
                rebuilt.push((index, bytes.to_vec()));
            }
        })?;
        for (index, bytes) in rebuilt {
            shards[index] = Some(bytes);
        }
        Ok(())
    }

    fn rebuild_missing(
        &self,
        k: usize,
        m: usize,
        shards: &[Option<&[u8]>],
        sink: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), TransformError> {
        let shard_len = check_present(k, m, shards, RS_ALIGNMENT)?;
        if shards[..k].iter().all(Option::is_some) {
            return Ok(());
        }
        Self::decode_with(k, m, shard_len, shards, |index, bytes| {
            if shards[index].is_none() {
                sink(index, bytes);
            }
        })
    }

    fn recover_data(
        &self,
        k: usize,
        m: usize,
        shards: &[Option<&[u8]>],
    ) -> Result<Vec<u8>, TransformError> {
        let shard_len = check_present(k, m, shards, RS_ALIGNMENT)?;
        let mut out = Vec::with_capacity(k * shard_len);
        if shards[..k].iter().all(Option::is_some) {
            shards[..k]
                .iter()
                .flatten()
                .for_each(|s| out.extend_from_slice(s));
            return Ok(out);
        }
        Self::decode_with(k, m, shard_len, shards, |_, bytes| {
            out.extend_from_slice(bytes)
        })?;
        Ok(out)
    }
}

/// The codec recorded under `id`, if this build has it.
pub fn codec_by_id(id: &str) -> Option<Arc<dyn ErasureCodec>> {
    match id {
        DEFAULT_CODEC_ID => Some(Arc::new(ReedSolomonSimd)),
        _ => None,
    }
}

fn check_layout(k: usize, m: usize) -> Result<(), TransformError> {
    if k == 0 {
        return Err(TransformError::Codec(format!(
            "a {k}+{m} layout has no data shards"
        )));
    }
    Ok(())
}

fn check_shard_len(len: usize, alignment: usize) -> Result<(), TransformError> {
    if len == 0 || !len.is_multiple_of(alignment) {
        return Err(TransformError::Codec(format!(
            "shard length {len} is not a positive multiple of {alignment}"
        )));
    }
    Ok(())
}

/// Checks a `k + m` shard set for reconstruction: layout, equal and aligned lengths, and
/// at least k present. Returns the shard length.
pub(crate) fn check_present(
    k: usize,
    m: usize,
    shards: &[Option<&[u8]>],
    alignment: usize,
) -> Result<usize, TransformError> {
    check_layout(k, m)?;
    if shards.len() != k + m {
        return Err(TransformError::Codec(format!(
            "{} shards given for a {k}+{m} layout",
            shards.len()
        )));
    }
    let mut present = shards
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i, s)));
    let Some((_, first)) = present.next() else {
        return Err(TransformError::TooFewShards { have: 0, need: k });
    };
    let shard_len = first.len();
    let mut have = 1;
    for (index, shard) in present {
        if shard.len() != shard_len {
            return Err(TransformError::ShardSize {
                index,
                expected: shard_len,
                found: shard.len(),
            });
        }
        have += 1;
    }
    if have < k {
        return Err(TransformError::TooFewShards { have, need: k });
    }
    check_shard_len(shard_len, alignment)?;
    Ok(shard_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shards_of(k: usize, shard_len: usize, seed: u8) -> Vec<Vec<u8>> {
        (0..k)
            .map(|i| {
                (0..shard_len)
                    .map(|j| (j as u8).wrapping_mul(31) ^ (i as u8).wrapping_add(seed))
                    .collect()
            })
            .collect()
    }

    fn encode_all(k: usize, m: usize, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let parity = ReedSolomonSimd.encode(k, m, &refs).unwrap();
        assert_eq!(parity.len(), m);
        data.iter().cloned().chain(parity).collect()
    }

    #[test]
    fn codec_lookup_by_id() {
        let codec = codec_by_id(DEFAULT_CODEC_ID).unwrap();
        assert_eq!(codec.id(), "rs-gf16-simd-v1");
        assert_eq!(codec.shard_alignment(), 64);
        assert!(codec_by_id("rs-gf8-v0").is_none());
    }

    #[test]
    fn parity_bytes_are_frozen() {
        // Parity is on disk: if the library ever changes its output for this id, old
        // volumes could no longer be rebuilt. CRCs of parity for fixed inputs.
        let data = shards_of(4, 128, 7);
        let all = encode_all(4, 2, &data);
        let crcs: Vec<u32> = all[4..].iter().map(|p| crc32c::crc32c(p)).collect();
        assert_eq!(crcs, [0xa383_c90d, 0x43bc_6f88]);
        let data = shards_of(2, 64, 1);
        let all = encode_all(2, 1, &data);
        assert_eq!(crc32c::crc32c(&all[2]), 0x7a9a_9d9a);
    }

    #[test]
    fn parity_does_not_depend_on_the_cpu() {
        // The library picks AVX2, SSSE3 or portable code at run time; a disk moved to
        // another machine must see the same parity as the portable engine computes.
        use reed_solomon_simd::engine::NoSimd;
        use reed_solomon_simd::rate::{DefaultRateEncoder, RateEncoder};
        for (k, m) in [(2usize, 1usize), (4, 2), (3, 3), (10, 4)] {
            let data = shards_of(k, 256, k as u8);
            let ours = encode_all(k, m, &data);
            let mut portable = DefaultRateEncoder::new(k, m, 256, NoSimd::new(), None).unwrap();
            for shard in &data {
                portable.add_original_shard(shard).unwrap();
            }
            let result = portable.encode().unwrap();
            let expected: Vec<&[u8]> = result.recovery_iter().collect();
            assert_eq!(
                ours[k..].iter().map(Vec::as_slice).collect::<Vec<_>>(),
                expected
            );
        }
    }

    #[test]
    fn m_zero_has_no_parity_and_needs_every_shard() {
        let data = shards_of(3, 64, 0);
        let all = encode_all(3, 0, &data);
        assert_eq!(all.len(), 3);
        let mut shards: Vec<Option<Vec<u8>>> = all.into_iter().map(Some).collect();
        ReedSolomonSimd.reconstruct(3, 0, &mut shards).unwrap();
        shards[1] = None;
        let err = ReedSolomonSimd.reconstruct(3, 0, &mut shards).unwrap_err();
        assert!(matches!(
            err,
            TransformError::TooFewShards { have: 2, need: 3 }
        ));
    }

    #[test]
    fn encode_refuses_bad_input() {
        let codec = ReedSolomonSimd;
        let a = [0u8; 64];
        let b = [0u8; 128];
        let odd = [0u8; 65];
        let codec_err = |r: Result<Vec<Vec<u8>>, TransformError>| {
            assert!(matches!(r, Err(TransformError::Codec(_))), "{r:?}")
        };
        codec_err(codec.encode(0, 1, &[]));
        codec_err(codec.encode(2, 1, &[&a]));
        codec_err(codec.encode(1, 1, &[&odd]));
        codec_err(codec.encode(1, 1, &[&[]]));
        let err = codec.encode(2, 1, &[&a, &b]).unwrap_err();
        assert!(matches!(
            err,
            TransformError::ShardSize {
                index: 1,
                expected: 64,
                found: 128
            }
        ));
    }

    #[test]
    fn reconstruct_refuses_bad_shard_sets() {
        let codec = ReedSolomonSimd;
        let all = encode_all(2, 1, &shards_of(2, 64, 3));
        let mut wrong_count: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).take(2).collect();
        assert!(matches!(
            codec.reconstruct(2, 1, &mut wrong_count),
            Err(TransformError::Codec(_))
        ));
        let mut uneven: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
        uneven[2].as_mut().unwrap().push(0);
        assert!(matches!(
            codec.reconstruct(2, 1, &mut uneven),
            Err(TransformError::ShardSize { index: 2, .. })
        ));
        let mut too_few = vec![None, Some(all[1].clone()), None];
        assert!(matches!(
            codec.reconstruct(2, 1, &mut too_few),
            Err(TransformError::TooFewShards { have: 1, need: 2 })
        ));
        let mut none: Vec<Option<Vec<u8>>> = vec![None; 3];
        assert!(matches!(
            codec.reconstruct(2, 1, &mut none),
            Err(TransformError::TooFewShards { have: 0, need: 2 })
        ));
        let mut unaligned = vec![Some(vec![0u8; 10]), None, Some(vec![0u8; 10])];
        assert!(matches!(
            codec.reconstruct(2, 1, &mut unaligned),
            Err(TransformError::Codec(_))
        ));
    }

    #[test]
    fn default_recover_data_and_rebuild_missing_match_the_overrides() {
        /// Forwards everything but `recover_data` and `rebuild_missing`, so the trait's
        /// defaults run.
        struct Plain;
        impl ErasureCodec for Plain {
            fn id(&self) -> &'static str {
                "test"
            }
            fn shard_alignment(&self) -> usize {
                RS_ALIGNMENT
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
                ReedSolomonSimd.reconstruct(k, m, shards)
            }
        }
        let data = shards_of(3, 192, 9);
        let all = encode_all(3, 2, &data);
        let mut shards: Vec<Option<&[u8]>> = all.iter().map(|s| Some(s.as_slice())).collect();
        shards[0] = None;
        shards[2] = None;
        let expected = data.concat();
        assert_eq!(Plain.recover_data(3, 2, &shards).unwrap(), expected);
        assert_eq!(
            ReedSolomonSimd.recover_data(3, 2, &shards).unwrap(),
            expected
        );
        // Only the missing data shards, in index order, each the original.
        for codec in [&Plain as &dyn ErasureCodec, &ReedSolomonSimd] {
            let mut rebuilt = Vec::new();
            codec
                .rebuild_missing(3, 2, &shards, &mut |i, bytes| {
                    rebuilt.push((i, bytes.to_vec()))
                })
                .unwrap();
            assert_eq!(rebuilt, vec![(0, data[0].clone()), (2, data[2].clone())]);
        }
        shards[1] = None;
        assert!(matches!(
            Plain.recover_data(3, 2, &shards),
            Err(TransformError::TooFewShards { have: 2, need: 3 })
        ));
        assert!(matches!(
            Plain.rebuild_missing(3, 2, &shards, &mut |_, _| {}),
            Err(TransformError::TooFewShards { have: 2, need: 3 })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_k_shards_rebuild_the_data(
            (k, m, missing) in (1usize..=6, 0usize..=4).prop_flat_map(|(k, m)| {
                (Just(k), Just(m), proptest::sample::subsequence((0..k + m).collect::<Vec<_>>(), 0..=m))
            }),
            blocks in 1usize..=4,
            seed in any::<u8>(),
        ) {
            let data = shards_of(k, blocks * RS_ALIGNMENT, seed);
            let all = encode_all(k, m, &data);
            let mut owned: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
            let mut borrowed: Vec<Option<&[u8]>> = all.iter().map(|s| Some(s.as_slice())).collect();
            for &index in &missing {
                owned[index] = None;
                borrowed[index] = None;
            }
            ReedSolomonSimd.reconstruct(k, m, &mut owned).unwrap();
            for index in 0..k {
                prop_assert_eq!(owned[index].as_ref(), Some(&data[index]));
            }
            for (index, shard) in owned.iter().enumerate().skip(k) {
                prop_assert_eq!(shard.is_some(), !missing.contains(&index));
            }
            prop_assert_eq!(ReedSolomonSimd.recover_data(k, m, &borrowed).unwrap(), data.concat());
        }
    }
}

//! The stripe pipeline: cut into frames, compress, encrypt, erasure-code; and back.
//! Pure transformations over buffers: no I/O, no metadata.
//!
//! Owns how a stripe's bytes become k + m shards and how any k of them become the
//! stripe again. It must not touch disks, placement or the inode table: callers hand in
//! buffers and a [`StripeContext`], and keep the returned [`StripeInfo`] in metadata.

pub mod compress;
pub mod crypto;
pub mod erasure;
pub mod frame;
pub mod stripe;

pub use compress::Compression;
pub use crypto::{Cipher, KdfParams, MasterKey};
pub use erasure::{DEFAULT_CODEC_ID, ErasureCodec, ReedSolomonSimd, codec_by_id};
pub use frame::{FRAME_BYTES, FrameTable};
pub use stripe::{
    EncodedStripe, FLAG_COMPRESSED, FLAG_ENCRYPTED, StripeCodec, StripeContext, StripeInfo,
    TransformError, solve,
};

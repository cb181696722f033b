//! The stripe pipeline: compress, encrypt, erasure-code; and back.
//! Pure transformations over buffers: no I/O, no metadata.

pub mod compress;
pub mod crypto;
pub mod erasure;
pub mod stripe;

pub use stripe::{EncodedStripe, StripeCodec, StripeInfo, TransformError};

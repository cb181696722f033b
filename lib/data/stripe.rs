//! One stripe through the pipeline.

use serde::{Deserialize, Serialize};

/// What metadata keeps about an encoded stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeInfo;

/// A stripe ready to be written as k + m shards.
pub struct EncodedStripe;

/// Encodes and decodes stripes for one volume.
pub struct StripeCodec;

/// Why a stripe could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {}

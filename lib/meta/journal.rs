//! Append-only journal of checksummed transaction records.

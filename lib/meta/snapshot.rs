//! The two alternating metadata snapshot slots.

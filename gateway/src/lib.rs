//! The gateway service (filled in by later issues).

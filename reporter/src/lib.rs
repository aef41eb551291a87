//! The reporter service (filled in by later issues).

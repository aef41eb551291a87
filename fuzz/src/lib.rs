//! The production parsers, compiled from their own source files.
//!
//! The modules are included by path rather than through the `gateway` and
//! `detector` crates, so a fuzz build compiles only what the parsers use
//! (teloxide's types, `image`) and not the AWS SDK, tonic and ONNX Runtime
//! bindings those crates also pull in. The code fuzzed is the same file the
//! services run.

#![allow(dead_code)]

/// `detector/src/error.rs`: the typed errors `decode` returns.
#[path = "../../detector/src/error.rs"]
pub mod error;

/// `detector/src/decode.rs`: image decoding with the size and pixel caps.
#[path = "../../detector/src/decode.rs"]
pub mod decode;

/// `gateway/src/inbound.rs`: a Telegram `Update` to the gateway's `Inbound`.
#[path = "../../gateway/src/inbound.rs"]
pub mod inbound;

//! The production parsers, compiled from their own source files.
//!
//! The gateway's update parser is included by path rather than through the
//! `gateway` crate, so a fuzz build compiles only what it uses (teloxide's
//! types) and not the AWS SDK and tonic. Image decoding comes from the
//! engine crate itself, `polybot-inference`, which has neither. The code
//! fuzzed is the code the services run.

#![allow(dead_code)]

pub use polybot_inference::{DetectError, decode};

/// `gateway/src/inbound.rs`: a Telegram `Update` to the gateway's `Inbound`.
#[path = "../../gateway/src/inbound.rs"]
pub mod inbound;

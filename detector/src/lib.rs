//! The detector service: workers that take jobs from the queue, run them on
//! the inference engine ([`polybot_inference`]), store the results, and
//! report them to the gateway's `Results` service. Also the `detector`
//! command line (one-off detection, the worker, the benchmark).
//!
//! The engine's modules are re-exported, so `polybot_detector::model` and
//! `polybot_detector::Detector` keep working for the service's callers.

pub mod bench;
pub mod cli;
mod metrics;
pub mod model_args;
pub mod worker;

pub use polybot_inference::*;
pub use polybot_inference::{
    agreement, annotate, decode, engine, error, filtering, geometry, model, pool, postprocess,
};

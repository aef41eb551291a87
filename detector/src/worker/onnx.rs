//! The ONNX engine as the worker's [`JobEngine`]: the inference crate's
//! lane pool ([`Detector`]) and its reserved lanes ([`Slot`]).

use async_trait::async_trait;
use polybot_domain::{Direction, Filter};
use polybot_inference::{
    AnnotatedSize, DetectError, DetectOutput, Detector, FilterOutput, Precision, Slot,
};

use super::ports::{EngineLane, JobEngine, Lane};

#[async_trait]
impl JobEngine for Detector {
    async fn reserve(&self) -> Result<Lane, DetectError> {
        Ok(Box::new(Detector::reserve(self).await?))
    }

    fn try_reserve(&self) -> Option<Lane> {
        Detector::try_reserve(self).map(|slot| Box::new(slot) as Lane)
    }

    fn lanes(&self) -> usize {
        Detector::lanes(self)
    }

    fn precision(&self) -> Precision {
        Detector::precision(self)
    }

    fn close(&self) {
        Detector::close(self)
    }
}

#[async_trait]
impl EngineLane for Slot {
    async fn detect_sized(
        self: Box<Self>,
        bytes: Vec<u8>,
        size: AnnotatedSize,
    ) -> Result<DetectOutput, DetectError> {
        Slot::detect_sized(*self, bytes, size).await
    }

    async fn filter(
        self: Box<Self>,
        bytes: Vec<u8>,
        filter: Filter,
        seed: u64,
    ) -> Result<FilterOutput, DetectError> {
        Slot::filter(*self, bytes, filter, seed).await
    }

    async fn concat(
        self: Box<Self>,
        photos: Vec<Vec<u8>>,
        direction: Direction,
    ) -> Result<FilterOutput, DetectError> {
        Slot::concat(*self, photos, direction).await
    }
}

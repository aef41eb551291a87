//! The ONNX engine as the worker's [`JobEngine`]: the inference crate's
//! lane pool ([`Detector`]) and its reserved lanes ([`Slot`]).

use async_trait::async_trait;
use polybot_domain::{ChatSettings, Direction, Filter, Label};
use polybot_inference::{AnnotatedSize, DetectError, Detector, Precision, Slot};

use super::ports::{Cropped, Detected, EngineLane, Filtered, JobEngine, Lane, ProgressFn, Videoed};

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

    fn classes(&self) -> Vec<String> {
        Detector::info(self).classes.clone()
    }

    fn close(&self) {
        Detector::close(self)
    }
}

#[async_trait]
impl EngineLane for Slot {
    async fn detect_sized(
        self: Box<Self>,
        photo: Vec<u8>,
        size: AnnotatedSize,
        settings: ChatSettings,
    ) -> Detected {
        Slot::detect_for(*self, photo, size, settings).await
    }

    async fn filter(self: Box<Self>, photo: Vec<u8>, filter: Filter, seed: u64) -> Filtered {
        Slot::filter(*self, photo, filter, seed).await
    }

    async fn concat(self: Box<Self>, photos: Vec<Vec<u8>>, direction: Direction) -> Filtered {
        Slot::concat(*self, photos, direction).await
    }

    async fn crops(self: Box<Self>, photo: Vec<u8>, boxes: Vec<Label>) -> Cropped {
        Slot::crops(*self, photo, boxes).await
    }

    async fn video(
        self: Box<Self>,
        clip: Vec<u8>,
        settings: ChatSettings,
        progress: ProgressFn,
    ) -> Videoed {
        Slot::video(*self, clip, settings, progress).await
    }
}

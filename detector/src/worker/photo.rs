//! One photo through its job kind: the one place a kind's handler is
//! chosen, for a photo of its own and for each photo of an album.

use polybot_domain::{Job, JobKind};

use super::job::{Done, JobStep, Photo, RetryLater};
use super::ports::Lane;
use super::{detect, filter};

pub(super) async fn run(
    step: &JobStep,
    job: &Job,
    lane: Lane,
    photo: Photo<'_>,
    kind: JobKind,
) -> Result<Done, RetryLater> {
    match kind {
        JobKind::Detect => detect::run(step, job, lane, photo).await,
        JobKind::Filter(filter) => filter::run(step, job, lane, photo, filter).await,
    }
}

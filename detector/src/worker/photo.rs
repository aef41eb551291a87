//! One photo through its job kind: the one place a kind's handler is
//! chosen, for a photo of its own and for each photo of an album.

use polybot_domain::{Job, JobKind};

use super::job::{Handled, JobStep, Photo};
use super::{detect, filter};

pub(super) async fn run(step: &JobStep, job: &Job, photo: Photo<'_>, kind: JobKind) -> Handled {
    match kind {
        JobKind::Detect => detect::run(step, job, photo).await,
        JobKind::Filter(filter) => filter::run(step, job, photo, filter).await,
    }
}

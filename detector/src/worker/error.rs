//! Why a worker could not start.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("POLYBOT_RESULTS_URL={url} is not a valid URL: {source}")]
    ResultsUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("could not read the jobs queue's settings: {0}")]
    QueueSettings(#[source] polybot_storage::StorageError),
    #[error(
        "the heartbeat would run every {interval:?} (a third of POLYBOT_VISIBILITY={}s), which is not comfortably below the jobs queue's visibility timeout of {}s: a job would go to another worker before its first heartbeat. Set POLYBOT_VISIBILITY to at most {}s, or leave it unset to use the queue's",
        visibility.as_secs(), queue.as_secs(), (queue.as_secs() * 3) / 2
    )]
    Heartbeat {
        interval: Duration,
        visibility: Duration,
        queue: Duration,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

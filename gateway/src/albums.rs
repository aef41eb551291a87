//! Closing albums. Telegram delivers an album (`media_group_id`) as one
//! update per item, perhaps to different gateways; each item joins the
//! album in the shared table ([`Intake`] does that) and asks this
//! gateway's closer to close it. The album is closed once no item joined
//! it for the quiet window (`POLYBOT_ALBUM_QUIET_MS`); the table lets one
//! closer at a time hold it, and that one submits it as one request and
//! only then marks it finished.
//!
//! Nothing about an album lives only in a gateway's memory: every closer
//! also sweeps the table for albums that are quiet, unfinished and held by
//! nobody (their gateway was killed or stopped during the quiet window, or
//! failed to queue them) and closes those too. A close that fails is
//! retried until the album is finished, here or elsewhere.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use polybot_storage::AlbumKey;
use polybot_telemetry::tasks::Supervisor;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::intake::Intake;

/// The pause after a failed close, doubling up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// How often the table is swept for albums nobody is closing, and how
/// many are taken per sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const SWEEP_BATCH: usize = 50;

/// How long closes already under way may go on once the gateway stops
/// (after that they are left to the other gateways' sweeps).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The albums to close, shared by the runs of the (supervised) closer.
pub type AlbumsToClose = Arc<Mutex<mpsc::Receiver<AlbumKey>>>;

/// The albums this gateway is closing, so that each has one task here.
type Closing = Arc<std::sync::Mutex<HashSet<AlbumKey>>>;

/// Closes each album sent on `albums`, and each the table holds as
/// pending, on a task of its own, until the supervisor stops. Run it as a
/// supervised loop: a run that dies leaves the queue of albums to the next.
pub async fn close_albums(intake: Arc<Intake>, albums: AlbumsToClose, supervisor: Supervisor) {
    let mut albums = albums.lock().await;
    let cancel = supervisor.cancel_token();
    let closing: Closing = Arc::default();
    // The first tick is at once: a gateway that starts picks up what one
    // that stopped left.
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let keys = tokio::select! {
            _ = cancel.cancelled() => return,
            key = albums.recv() => match key {
                Some(key) => vec![key],
                None => return,
            },
            _ = sweep.tick() => match intake.pending_albums(SWEEP_BATCH).await {
                Ok(keys) => {
                    if !keys.is_empty() {
                        info!(albums = keys.len(), "closing albums left pending");
                    }
                    keys
                }
                Err(e) => {
                    warn!(error = %e, "could not look for pending albums");
                    Vec::new()
                }
            },
        };
        for key in keys {
            let Some(guard) = Closer::enter(&closing, key.clone()) else {
                continue;
            };
            let span = tracing::info_span!("album.close", chat_id = key.chat.0, album = %key.album);
            supervisor.spawn(
                "album_close",
                close_later(Arc::clone(&intake), key, cancel.clone(), guard).instrument(span),
            );
        }
    }
}

/// This gateway's close of one album; leaving the set when it ends, however.
struct Closer {
    closing: Closing,
    key: AlbumKey,
}

impl Closer {
    fn enter(closing: &Closing, key: AlbumKey) -> Option<Self> {
        let fresh = closing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone());
        fresh.then(|| Self {
            closing: Arc::clone(closing),
            key,
        })
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.closing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Closes one album after the quiet window, retrying until it is finished;
/// once the gateway stops it gets [`STOP_GRACE`] more, and is then left to
/// the sweeps.
async fn close_later(intake: Arc<Intake>, key: AlbumKey, cancel: CancellationToken, _: Closer) {
    let close = async {
        tokio::time::sleep(intake.album_quiet()).await;
        let mut pause = FIRST_PAUSE;
        loop {
            match intake.close_album(&key).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(error = %e, retry_in = ?pause, "could not close the album yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
        }
    };
    tokio::pin!(close);
    tokio::select! {
        () = &mut close => {}
        () = cancel.cancelled() => {
            let _ = tokio::time::timeout(STOP_GRACE, close).await;
        }
    }
}

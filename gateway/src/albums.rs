//! Closing albums. Telegram delivers an album (`media_group_id`) as one
//! update per photo, perhaps to different gateways; each photo joins the
//! album in the shared table ([`Intake`] does that), and every gateway that
//! took a photo schedules a close here. The album is closed once no photo
//! joined it for the quiet window (`POLYBOT_ALBUM_QUIET_MS`); the table
//! lets exactly one closer have it, and that one submits the album as one
//! request. Closes still waiting when the gateway stops are not carried
//! over: another gateway that took a photo of the same album still closes
//! it, but an album held by this gateway alone is then not answered.

use std::sync::Arc;
use std::time::Duration;

use polybot_storage::AlbumKey;
use polybot_telemetry::tasks::Supervisor;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, warn};

use crate::intake::Intake;

/// Attempts at closing one album when the table fails, and the pause
/// between them.
const ATTEMPTS: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// How long closes already under way may go on once the gateway stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The albums to close, shared by the runs of the (supervised) closer.
pub type AlbumsToClose = Arc<Mutex<mpsc::Receiver<AlbumKey>>>;

/// Closes each album sent on `albums` after the quiet window, each on a
/// task of its own, until the supervisor stops. Run it as a supervised
/// loop: a run that dies leaves the queue of albums to the next.
pub async fn close_albums(intake: Arc<Intake>, albums: AlbumsToClose, supervisor: Supervisor) {
    let mut albums = albums.lock().await;
    let cancel = supervisor.cancel_token();
    loop {
        let key = tokio::select! {
            _ = cancel.cancelled() => return,
            key = albums.recv() => match key {
                Some(key) => key,
                None => return,
            },
        };
        let span = tracing::info_span!("album.close", chat_id = key.chat.0, album = %key.album);
        supervisor.spawn(
            "album_close",
            close_later(Arc::clone(&intake), key, cancel.clone()).instrument(span),
        );
    }
}

/// Closes one album after the quiet window; once the gateway stops it
/// gets [`STOP_GRACE`] more, and is dropped after that.
async fn close_later(intake: Arc<Intake>, key: AlbumKey, cancel: CancellationToken) {
    let close = async {
        tokio::time::sleep(intake.album_quiet()).await;
        for attempt in 1..=ATTEMPTS {
            match intake.close_album(&key).await {
                Ok(()) => return,
                Err(e) if attempt < ATTEMPTS => {
                    warn!(error = %e, attempt, "could not close the album yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => warn!(error = %e, "giving up closing the album"),
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

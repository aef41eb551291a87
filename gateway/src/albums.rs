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
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, warn};

use crate::intake::Intake;

/// Attempts at closing one album when the table fails, and the pause
/// between them.
const ATTEMPTS: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Closes each album sent on `albums` after the quiet window, until `cancel`.
pub async fn close_albums(
    intake: Arc<Intake>,
    mut albums: mpsc::Receiver<AlbumKey>,
    cancel: CancellationToken,
) {
    let mut closing = JoinSet::new();
    loop {
        while closing.try_join_next().is_some() {}
        let key = tokio::select! {
            _ = cancel.cancelled() => break,
            key = albums.recv() => match key {
                Some(key) => key,
                None => break,
            },
        };
        let intake = Arc::clone(&intake);
        let span = tracing::info_span!("album.close", chat_id = key.chat.0, album = %key.album);
        closing.spawn(
            async move {
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
            }
            .instrument(span),
        );
    }
    // Let closes already under way finish briefly; the rest are dropped.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while closing.join_next().await.is_some() {}
    })
    .await;
}

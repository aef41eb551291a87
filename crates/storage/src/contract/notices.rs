//! The [`Notices`] contract.

use polybot_domain::PredictionId;

use crate::{NoticeState, Notices};

/// The notice protocol: whichever of the notice and the answer comes second
/// cleans up, so a notice never outlives its answer.
pub async fn notices(table: &dyn Notices) {
    let early = PredictionId::new();
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState::default(),
        "table: a prediction starts without a notice, unanswered"
    );
    assert!(
        attach(table, early, 41).await,
        "table: a notice attaches before the answer"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        attached(41, false)
    );
    assert_eq!(
        table
            .close_notice(early)
            .await
            .expect("table: close_notice"),
        Some(41),
        "table: closing returns the attached notice for removal"
    );
    assert_eq!(
        table.close_notice(early).await.expect("table: close again"),
        Some(41),
        "table: closing twice returns the same notice (a retried reply)"
    );
    assert!(
        !attach(table, early, 42).await,
        "table: a notice after the answer must not attach"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        attached(41, true)
    );

    let fast = PredictionId::new();
    assert_eq!(
        table.close_notice(fast).await.expect("table: close_notice"),
        None,
        "table: an answer with no notice has nothing to remove"
    );
    assert!(
        !attach(table, fast, 7).await,
        "table: a notice sent after a fast answer must be removed by its sender"
    );
}

/// The state of a prediction with the notice `message_id` attached.
fn attached(message_id: i64, answered: bool) -> NoticeState {
    NoticeState {
        message_id: Some(message_id),
        answered,
    }
}

async fn attach(table: &dyn Notices, id: PredictionId, message_id: i64) -> bool {
    table
        .attach_notice(id, message_id)
        .await
        .unwrap_or_else(|e| panic!("table: attach_notice({id}) failed: {e}"))
}

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
        table
            .attach_notice(early, 41)
            .await
            .expect("table: attach_notice"),
        "table: a notice attaches before the answer"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState {
            message_id: Some(41),
            answered: false
        }
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
        !table
            .attach_notice(early, 42)
            .await
            .expect("table: late attach"),
        "table: a notice after the answer must not attach"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState {
            message_id: Some(41),
            answered: true
        }
    );

    let fast = PredictionId::new();
    assert_eq!(
        table.close_notice(fast).await.expect("table: close_notice"),
        None,
        "table: an answer with no notice has nothing to remove"
    );
    assert!(
        !table
            .attach_notice(fast, 7)
            .await
            .expect("table: late attach"),
        "table: a notice sent after a fast answer must be removed by its sender"
    );
}

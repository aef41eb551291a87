//! The sweep for deferred updates ([`crate::intake`]'s text answers off
//! the webhook path) whose gateway died or could not answer them: every
//! [`SWEEP_EVERY`], each one past its grace is answered on a task of its
//! own. The update's claim makes an answer already sent a duplicate.

use std::sync::Arc;
use std::time::Duration;

use polybot_telemetry::tasks::Supervisor;
use tracing::{Instrument, info, warn};

use crate::inbound;
use crate::intake::Intake;

const SWEEP_EVERY: Duration = Duration::from_secs(5);
const SWEEP_BATCH: usize = 50;

/// Run it as a supervised loop: it returns only on cancel.
pub async fn sweep_deferred(intake: Arc<Intake>, supervisor: Supervisor) {
    let cancel = supervisor.cancel_token();
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sweep.tick() => {}
        }
        let due = match intake.due_deferred(SWEEP_BATCH).await {
            Ok(due) => due,
            Err(e) => {
                warn!(error = %e, "could not look for deferred updates");
                continue;
            }
        };
        if !due.is_empty() {
            info!(
                updates = due.len(),
                "answering deferred updates left behind"
            );
        }
        for update in due {
            let inbound = match inbound::parse_bytes(update.body.as_bytes(), intake.me()) {
                Ok(inbound) => inbound,
                Err(e) => {
                    // We stored it as Telegram sent it; it read before.
                    warn!(update_id = update.update.0, error = %e, "a deferred update no longer reads");
                    continue;
                }
            };
            let sender = inbound::sender_language(update.body.as_bytes());
            answer_later(&intake, &supervisor, inbound, sender);
        }
    }
}

/// Answers a deferred update on a supervised task of its own.
pub fn answer_later(
    intake: &Arc<Intake>,
    supervisor: &Supervisor,
    inbound: inbound::Inbound,
    sender: Option<polybot_domain::Lang>,
) {
    let span = tracing::info_span!("deferred.answer", update_id = inbound.update_id().0);
    let intake = Arc::clone(intake);
    supervisor.spawn(
        "deferred_answer",
        async move { intake.answer_deferred(inbound, sender).await }.instrument(span),
    );
}

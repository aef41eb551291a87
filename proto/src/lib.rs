//! The gRPC contracts (`polybot.v1`), the code generated from them, the
//! descriptor set for server reflection, and conversions between the wire
//! types and the domain types.

pub mod auth;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("polybot.v1");
}

/// Encoded `FileDescriptorSet` of every contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("polybot_descriptor");

use polybot_domain as domain;

/// A wire message that does not make a valid domain value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidMessage {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl ToString) -> InvalidMessage {
    InvalidMessage {
        field,
        reason: reason.to_string(),
    }
}

impl From<domain::FailureKind> for v1::FailureKind {
    fn from(k: domain::FailureKind) -> Self {
        match k {
            domain::FailureKind::NotAnImage => Self::NotAnImage,
            domain::FailureKind::TooLarge => Self::TooLarge,
            domain::FailureKind::CorruptImage => Self::CorruptImage,
            domain::FailureKind::GaveUp => Self::GaveUp,
            domain::FailureKind::Internal => Self::Internal,
        }
    }
}

impl v1::FailureKind {
    /// Unknown or unspecified kinds become `Internal`: the user still gets
    /// a reply that asks them to try again.
    pub fn to_domain(self) -> domain::FailureKind {
        match self {
            Self::NotAnImage => domain::FailureKind::NotAnImage,
            Self::TooLarge => domain::FailureKind::TooLarge,
            Self::CorruptImage => domain::FailureKind::CorruptImage,
            Self::GaveUp => domain::FailureKind::GaveUp,
            Self::Unspecified | Self::Internal => domain::FailureKind::Internal,
        }
    }
}

impl From<&domain::PredictionSummary> for v1::PredictionSummary {
    fn from(s: &domain::PredictionSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            original_img_path: s.original_img_path.clone(),
            predicted_img_path: s.predicted_img_path.clone(),
            full_img_path: s.full_img_path.clone(),
            labels: s
                .labels
                .iter()
                .map(|l| v1::Label {
                    class: l.class.clone(),
                    cx: l.cx,
                    cy: l.cy,
                    width: l.width,
                    height: l.height,
                    confidence: l.confidence,
                })
                .collect(),
            time: s.time,
        }
    }
}

impl TryFrom<v1::PredictionSummary> for domain::PredictionSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::PredictionSummary) -> Result<Self, Self::Error> {
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("summary.prediction_id", e))?,
            original_img_path: s.original_img_path,
            predicted_img_path: s.predicted_img_path,
            full_img_path: s.full_img_path,
            labels: s
                .labels
                .into_iter()
                .map(|l| domain::Label {
                    class: l.class,
                    cx: l.cx,
                    cy: l.cy,
                    width: l.width,
                    height: l.height,
                    confidence: l.confidence,
                })
                .collect(),
            time: s.time,
        })
    }
}

impl From<&domain::PredictionRecord> for v1::Prediction {
    fn from(r: &domain::PredictionRecord) -> Self {
        let status = match r.status {
            domain::PredictionStatus::Pending => v1::PredictionStatus::Pending,
            domain::PredictionStatus::Succeeded => v1::PredictionStatus::Succeeded,
            domain::PredictionStatus::Failed => v1::PredictionStatus::Failed,
        };
        Self {
            prediction_id: r.prediction_id.to_string(),
            chat_id: r.chat_id.0,
            status: status as i32,
            original_key: r.original_key.to_string(),
            summary: r.summary.as_ref().map(Into::into),
            failure: r
                .failure
                .map(|f| v1::FailureKind::from(f) as i32)
                .unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A parsed `ReportResult` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub prediction_id: domain::PredictionId,
    pub chat_id: domain::ChatId,
    pub reply_to_message_id: Option<i64>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(domain::PredictionSummary),
    Failure {
        kind: domain::FailureKind,
        detail: String,
    },
}

impl TryFrom<v1::ReportResultRequest> for Report {
    type Error = InvalidMessage;

    fn try_from(r: v1::ReportResultRequest) -> Result<Self, Self::Error> {
        let prediction_id = r
            .prediction_id
            .parse()
            .map_err(|e| invalid("prediction_id", e))?;
        if r.chat_id == 0 {
            return Err(invalid("chat_id", "must be set"));
        }
        let outcome = match r.outcome {
            Some(v1::report_result_request::Outcome::Success(s)) => {
                let summary: domain::PredictionSummary = s
                    .summary
                    .ok_or_else(|| invalid("success.summary", "must be set"))?
                    .try_into()?;
                if summary.prediction_id != prediction_id {
                    return Err(invalid(
                        "success.summary.prediction_id",
                        "differs from prediction_id",
                    ));
                }
                Outcome::Success(summary)
            }
            Some(v1::report_result_request::Outcome::Failure(f)) => Outcome::Failure {
                kind: v1::FailureKind::try_from(f.kind)
                    .unwrap_or(v1::FailureKind::Unspecified)
                    .to_domain(),
                detail: f.detail,
            },
            None => return Err(invalid("outcome", "must be success or failure")),
        };
        Ok(Self {
            prediction_id,
            chat_id: domain::ChatId(r.chat_id),
            reply_to_message_id: (r.reply_to_message_id != 0).then_some(r.reply_to_message_id),
            outcome,
        })
    }
}

impl From<&Report> for v1::ReportResultRequest {
    fn from(r: &Report) -> Self {
        let outcome = match &r.outcome {
            Outcome::Success(s) => v1::report_result_request::Outcome::Success(v1::Success {
                summary: Some(s.into()),
            }),
            Outcome::Failure { kind, detail } => {
                v1::report_result_request::Outcome::Failure(v1::Failure {
                    kind: v1::FailureKind::from(*kind) as i32,
                    detail: detail.clone(),
                })
            }
        };
        Self {
            prediction_id: r.prediction_id.to_string(),
            chat_id: r.chat_id.0,
            reply_to_message_id: r.reply_to_message_id.unwrap_or_default(),
            outcome: Some(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: domain::PredictionId) -> domain::PredictionSummary {
        domain::PredictionSummary {
            prediction_id: id,
            original_img_path: "1/original/a.jpg".into(),
            predicted_img_path: "1/predicted/a.jpg".into(),
            full_img_path: None,
            labels: vec![domain::Label {
                class: "tie".into(),
                cx: 0.1,
                cy: 0.2,
                width: 0.3,
                height: 0.4,
                confidence: 0.5,
            }],
            time: 12.5,
        }
    }

    #[test]
    fn reports_round_trip_through_the_wire_format() {
        let id = domain::PredictionId::new();
        for outcome in [
            Outcome::Success(summary(id)),
            Outcome::Failure {
                kind: domain::FailureKind::CorruptImage,
                detail: "eof".into(),
            },
        ] {
            let report = Report {
                prediction_id: id,
                chat_id: domain::ChatId(1243002838),
                reply_to_message_id: Some(3),
                outcome,
            };
            let wire = v1::ReportResultRequest::from(&report);
            assert_eq!(Report::try_from(wire).expect("parse"), report);
        }
    }

    #[test]
    fn reports_without_an_outcome_or_with_a_bad_id_are_rejected() {
        let mut wire = v1::ReportResultRequest {
            prediction_id: "x".into(),
            chat_id: 1,
            reply_to_message_id: 0,
            outcome: None,
        };
        assert_eq!(
            Report::try_from(wire.clone()).err().map(|e| e.field),
            Some("prediction_id")
        );
        wire.prediction_id = domain::PredictionId::new().to_string();
        assert_eq!(
            Report::try_from(wire).err().map(|e| e.field),
            Some("outcome")
        );
    }

    #[test]
    fn a_summary_for_another_prediction_is_rejected() {
        let report = Report {
            prediction_id: domain::PredictionId::new(),
            chat_id: domain::ChatId(5),
            reply_to_message_id: None,
            outcome: Outcome::Success(summary(domain::PredictionId::new())),
        };
        let err = Report::try_from(v1::ReportResultRequest::from(&report)).err();
        assert_eq!(err.map(|e| e.field), Some("success.summary.prediction_id"));
    }

    #[test]
    fn the_descriptor_set_names_the_results_service() {
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        assert!(text.contains("polybot.v1") && text.contains("Results"));
    }
}

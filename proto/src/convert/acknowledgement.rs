//! `Acknowledgement`.

use lhcie_model::{AckLevel, AckOutcome, Acknowledgement, MessageId, ValidationError};

use super::{nested, optional, required, unknown_enum, unspecified};
use crate::canonical as pb;

impl TryFrom<pb::Acknowledgement> for Acknowledgement {
    type Error = ValidationError;
    fn try_from(wire: pb::Acknowledgement) -> Result<Self, Self::Error> {
        let refers_to = MessageId::parse(&required(
            wire.refers_to_message_id,
            "refers_to_message_id",
        )?)
        .map_err(|e| ValidationError::invalid("refers_to_message_id", e))?;
        let level = match pb::AckLevel::try_from(wire.level) {
            Ok(pb::AckLevel::Unspecified) => return Err(unspecified("level")),
            Ok(pb::AckLevel::Infrastructure) => AckLevel::Infrastructure,
            Ok(pb::AckLevel::Business) => AckLevel::Business,
            Err(_) => return Err(unknown_enum("level", wire.level)),
        };
        let outcome = match pb::AckOutcome::try_from(wire.outcome) {
            Ok(pb::AckOutcome::Unspecified) => return Err(unspecified("outcome")),
            Ok(pb::AckOutcome::Positive) => AckOutcome::Positive,
            Ok(pb::AckOutcome::Negative) => AckOutcome::Negative,
            Err(_) => return Err(unknown_enum("outcome", wire.outcome)),
        };
        Ok(Self {
            refers_to,
            level,
            outcome,
            code: nested(wire.code, "code")?,
            text: optional(wire.text),
        })
    }
}

impl From<Acknowledgement> for pb::Acknowledgement {
    fn from(ack: Acknowledgement) -> Self {
        let level = match ack.level {
            AckLevel::Infrastructure => pb::AckLevel::Infrastructure,
            AckLevel::Business => pb::AckLevel::Business,
        };
        let outcome = match ack.outcome {
            AckOutcome::Positive => pb::AckOutcome::Positive,
            AckOutcome::Negative => pb::AckOutcome::Negative,
        };
        Self {
            refers_to_message_id: ack.refers_to.into(),
            level: level as i32,
            outcome: outcome as i32,
            code: ack.code.map(Into::into),
            text: ack.text.unwrap_or_default(),
        }
    }
}

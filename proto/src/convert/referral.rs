//! `Referral`.

use lhcie_model::{Referral, ReferralPriority, ValidationError};

use super::{each, nested, optional, required, timestamp, unknown_enum};
use crate::canonical as pb;

impl TryFrom<pb::Referral> for Referral {
    type Error = ValidationError;
    fn try_from(wire: pb::Referral) -> Result<Self, Self::Error> {
        use pb::ReferralPriority as W;
        let priority = match W::try_from(wire.priority) {
            Ok(W::Unspecified | W::Routine) => ReferralPriority::Routine,
            Ok(W::Urgent) => ReferralPriority::Urgent,
            Ok(W::Asap) => ReferralPriority::Asap,
            Ok(W::Stat) => ReferralPriority::Stat,
            Err(_) => return Err(unknown_enum("priority", wire.priority)),
        };
        Ok(Self {
            referral_id: required(wire.referral_id, "referral_id")?,
            service_requested: nested(wire.service_requested, "service_requested")?,
            reason: nested(wire.reason, "reason")?,
            priority,
            requester: nested(wire.requester, "requester")?,
            recipient_service: optional(wire.recipient_service),
            requested_at: timestamp::optional_from_wire(wire.requested_at, "requested_at")?,
            summary: optional(wire.summary),
            attachments: each(wire.attachments, "attachments")?,
        })
    }
}

impl From<Referral> for pb::Referral {
    fn from(referral: Referral) -> Self {
        let priority = match referral.priority {
            ReferralPriority::Routine => pb::ReferralPriority::Routine,
            ReferralPriority::Urgent => pb::ReferralPriority::Urgent,
            ReferralPriority::Asap => pb::ReferralPriority::Asap,
            ReferralPriority::Stat => pb::ReferralPriority::Stat,
        };
        Self {
            referral_id: referral.referral_id,
            service_requested: referral.service_requested.map(Into::into),
            reason: referral.reason.map(Into::into),
            priority: priority as i32,
            requester: referral.requester.map(Into::into),
            recipient_service: referral.recipient_service.unwrap_or_default(),
            requested_at: timestamp::optional_to_wire(referral.requested_at),
            summary: referral.summary.unwrap_or_default(),
            attachments: referral.attachments.into_iter().map(Into::into).collect(),
        }
    }
}

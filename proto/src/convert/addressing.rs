//! `Addressing` and `Recipient`.

use lhcie_model::{Addressing, OdsCode, Recipient, RecipientIntent, RoutingRule, ValidationError};

use super::{each, required, unknown_enum};
use crate::canonical as pb;

impl TryFrom<pb::Addressing> for Addressing {
    type Error = ValidationError;
    fn try_from(wire: pb::Addressing) -> Result<Self, Self::Error> {
        use pb::RoutingRule as W;
        let rule = match W::try_from(wire.rule) {
            Ok(W::Unspecified) => None,
            Ok(W::RegisteredGp) => Some(RoutingRule::RegisteredGp),
            Ok(W::Subscribers) => Some(RoutingRule::Subscribers),
            Err(_) => return Err(unknown_enum("rule", wire.rule)),
        };
        Ok(Self {
            recipients: each(wire.recipients, "recipients")?,
            rule,
        })
    }
}

impl From<Addressing> for pb::Addressing {
    fn from(addressing: Addressing) -> Self {
        let rule = match addressing.rule {
            None => pb::RoutingRule::Unspecified,
            Some(RoutingRule::RegisteredGp) => pb::RoutingRule::RegisteredGp,
            Some(RoutingRule::Subscribers) => pb::RoutingRule::Subscribers,
        };
        Self {
            recipients: addressing.recipients.into_iter().map(Into::into).collect(),
            rule: rule as i32,
        }
    }
}

impl TryFrom<pb::Recipient> for Recipient {
    type Error = ValidationError;
    fn try_from(wire: pb::Recipient) -> Result<Self, Self::Error> {
        use pb::RecipientIntent as W;
        let intent = match W::try_from(wire.intent) {
            Ok(W::Unspecified | W::ForAction) => RecipientIntent::ForAction,
            Ok(W::ForInformation) => RecipientIntent::ForInformation,
            Err(_) => return Err(unknown_enum("intent", wire.intent)),
        };
        let ods_code = OdsCode::parse(&required(wire.ods_code, "ods_code")?)
            .map_err(|e| ValidationError::invalid("ods_code", e))?;
        Ok(Self { ods_code, intent })
    }
}

impl From<Recipient> for pb::Recipient {
    fn from(recipient: Recipient) -> Self {
        let intent = match recipient.intent {
            RecipientIntent::ForAction => pb::RecipientIntent::ForAction,
            RecipientIntent::ForInformation => pb::RecipientIntent::ForInformation,
        };
        Self {
            ods_code: recipient.ods_code.into(),
            intent: intent as i32,
        }
    }
}

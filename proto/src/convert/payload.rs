//! `OriginalPayload`.

use lhcie_model::{OriginalPayload, ValidationError};

use super::required;
use crate::canonical as pb;

impl TryFrom<pb::OriginalPayload> for OriginalPayload {
    type Error = ValidationError;
    fn try_from(wire: pb::OriginalPayload) -> Result<Self, Self::Error> {
        Ok(Self {
            media_type: required(wire.media_type, "media_type")?,
            content: wire.content,
        })
    }
}

impl From<OriginalPayload> for pb::OriginalPayload {
    fn from(payload: OriginalPayload) -> Self {
        Self {
            media_type: payload.media_type,
            content: payload.content,
        }
    }
}

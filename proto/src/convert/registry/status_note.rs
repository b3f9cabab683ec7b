//! `StatusNote`.

use lhcie_consent::StatusNote;
use lhcie_model::ValidationError;

use super::{registry_time, to_wire};
use crate::registry as pb;

impl TryFrom<pb::StatusNote> for StatusNote {
    type Error = ValidationError;
    fn try_from(wire: pb::StatusNote) -> Result<Self, Self::Error> {
        Ok(Self {
            at: registry_time(wire.at, "at")?,
            by: wire.by,
            reason: wire.reason,
        })
    }
}

impl From<StatusNote> for pb::StatusNote {
    fn from(note: StatusNote) -> Self {
        Self {
            at: Some(to_wire(note.at)),
            by: note.by,
            reason: note.reason,
        }
    }
}

//! `Attachment`.

use lhcie_model::{Attachment, AttachmentContent, ValidationError};

use super::{optional, required, timestamp};
use crate::canonical as pb;

impl TryFrom<pb::Attachment> for Attachment {
    type Error = ValidationError;
    fn try_from(wire: pb::Attachment) -> Result<Self, Self::Error> {
        let sha256: [u8; 32] = wire.sha256.as_ref().try_into().map_err(|_| {
            ValidationError::invalid(
                "sha256",
                format!("must be 32 bytes, found {}", wire.sha256.len()),
            )
        })?;
        let content = match wire.content {
            Some(pb::attachment::Content::Data(data)) => AttachmentContent::Inline(data),
            Some(pb::attachment::Content::Url(url)) => {
                AttachmentContent::Url(required(url, "url")?)
            }
            None => return Err(ValidationError::missing("content")),
        };
        let attachment = Self {
            media_type: required(wire.media_type, "media_type")?,
            title: optional(wire.title),
            size: wire.size,
            sha256,
            content,
            created_at: timestamp::optional_from_wire(wire.created_at, "created_at")?,
        };
        attachment.validate()?;
        Ok(attachment)
    }
}

impl From<Attachment> for pb::Attachment {
    fn from(attachment: Attachment) -> Self {
        Self {
            media_type: attachment.media_type,
            title: attachment.title.unwrap_or_default(),
            size: attachment.size,
            sha256: bytes::Bytes::copy_from_slice(&attachment.sha256),
            content: Some(match attachment.content {
                AttachmentContent::Inline(data) => pb::attachment::Content::Data(data),
                AttachmentContent::Url(url) => pb::attachment::Content::Url(url),
            }),
            created_at: timestamp::optional_to_wire(attachment.created_at),
        }
    }
}

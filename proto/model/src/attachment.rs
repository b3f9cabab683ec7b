//! Binary content carried with a document, result or referral.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ValidationError;

/// A file attached to a document (a PDF discharge summary, an image...).
/// Its size and SHA-256 hash are always given, so a receiver can check what
/// it got, even when the content itself is only referenced by URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// MIME type, e.g. `application/pdf`.
    pub media_type: String,
    /// A title for people.
    pub title: Option<String>,
    /// Size of the content in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// The content, inline or by reference.
    pub content: AttachmentContent,
    /// When the content was created.
    pub created_at: Option<OffsetDateTime>,
}

/// Where an attachment's bytes are.
#[derive(Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    /// Carried in the message.
    Inline(Bytes),
    /// Held elsewhere (e.g. a document repository), fetched by URL.
    Url(String),
}

impl Attachment {
    /// An inline attachment; size and hash are computed from the data.
    pub fn inline(media_type: impl Into<String>, title: Option<String>, data: Bytes) -> Self {
        Self {
            media_type: media_type.into(),
            title,
            size: data.len() as u64,
            sha256: Sha256::digest(&data).into(),
            content: AttachmentContent::Inline(data),
            created_at: None,
        }
    }

    /// Checks the media type is given and, for inline content, that size and
    /// hash match the bytes.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.media_type.trim().is_empty() {
            return Err(ValidationError::missing("media_type"));
        }
        match &self.content {
            AttachmentContent::Inline(data) => {
                if data.len() as u64 != self.size {
                    return Err(ValidationError::new(
                        "size",
                        crate::ValidationErrorKind::Inconsistent,
                        format!(
                            "says {} bytes but the content has {}",
                            self.size,
                            data.len()
                        ),
                    ));
                }
                let actual: [u8; 32] = Sha256::digest(data).into();
                if actual != self.sha256 {
                    return Err(ValidationError::new(
                        "sha256",
                        crate::ValidationErrorKind::Inconsistent,
                        "does not match the content",
                    ));
                }
            }
            AttachmentContent::Url(url) => {
                if url.trim().is_empty() {
                    return Err(ValidationError::missing("url"));
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let content = match &self.content {
            AttachmentContent::Inline(data) => format!("inline {} bytes", data.len()),
            AttachmentContent::Url(_) => "by url".to_owned(),
        };
        f.debug_struct("Attachment")
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("content", &content)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_attachments_check_size_and_hash() {
        let good = Attachment::inline("application/pdf", None, Bytes::from_static(b"%PDF-1.4"));
        assert!(good.validate().is_ok());
        let mut wrong_size = good.clone();
        wrong_size.size = 3;
        assert_eq!(wrong_size.validate().unwrap_err().field, "size");
        let mut wrong_hash = good.clone();
        wrong_hash.sha256[0] ^= 1;
        assert_eq!(wrong_hash.validate().unwrap_err().field, "sha256");
        let mut no_type = good;
        no_type.media_type.clear();
        assert_eq!(no_type.validate().unwrap_err().field, "media_type");
    }
}

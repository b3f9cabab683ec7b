//! Why an envelope could not be rendered. Errors name fields and rules,
//! never a value from the envelope (they are patient data).

use lhcie_model::{Category, ValidationErrorKind};

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The envelope breaks a rule of the canonical model
    /// ([`lhcie_model::Envelope::validate`]); `field` is its path.
    #[error("the envelope is not valid at {field} ({kind:?})")]
    InvalidEnvelope {
        /// Dotted path of the field, e.g. `document.attachments[0].sha256`.
        field: String,
        /// The rule broken.
        kind: ValidationErrorKind,
    },
    /// No TXA-2 document type is configured for the document's category
    /// ([`crate::from_canonical::RenderContext::document_types`]).
    #[error("no TXA-2 document type is configured for category {category}")]
    UnmappedDocumentType {
        /// The envelope's category.
        category: Category,
    },
    /// The content has no faithful HL7 v2 form in the messages we write;
    /// sending a weaker form would mislead the receiver.
    #[error("cannot be rendered as HL7 v2: {what}")]
    Unrepresentable {
        /// What, in words (no values).
        what: &'static str,
    },
    /// A control id given in the context is empty, longer than 20
    /// characters or not printable ASCII.
    #[error("the given control id must be 1 to 20 printable ASCII characters")]
    InvalidControlId,
}

//! The message as the sender's local system wrote it.

use bytes::Bytes;

/// Media type of HL7 v2 messages in ER7 (pipe-delimited) encoding.
pub const MEDIA_TYPE_HL7V2_ER7: &str = "x-application/hl7-v2+er7";
/// Media type of FHIR resources in JSON.
pub const MEDIA_TYPE_FHIR_JSON: &str = "application/fhir+json";

/// The original bytes of a message, kept so that a recipient that speaks
/// the sender's format can get it byte-exact.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginalPayload {
    /// Its media type, e.g. [`MEDIA_TYPE_HL7V2_ER7`].
    pub media_type: String,
    /// The bytes, unchanged.
    pub content: Bytes,
}

impl std::fmt::Debug for OriginalPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginalPayload")
            .field("media_type", &self.media_type)
            .field("bytes", &self.content.len())
            .finish()
    }
}

//! Clinical documents: discharge summaries, repatriation forms, cancer
//! documents, end-of-life care plans.

use time::OffsetDateTime;

use crate::{Attachment, Coding, Identifier, OdsCode, Practitioner, ValidationError};

/// A clinical document. Its id is stable across versions; each new version
/// names the version it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicalDocument {
    /// Stable id of the document, the same for every version.
    pub document_id: String,
    /// Version number, from 1.
    pub version: u32,
    /// The version this one supersedes, if any.
    pub replaces: Option<DocumentVersionRef>,
    /// Document type, SNOMED CT coded (e.g. 373942005 "Discharge summary").
    pub document_type: Coding,
    /// Title for people.
    pub title: String,
    /// Who wrote it.
    pub author: Option<Author>,
    /// Where it stands in its life.
    pub status: DocumentStatus,
    /// When it was written.
    pub authored_at: Option<OffsetDateTime>,
    /// The encounter it belongs to.
    pub encounter: Option<Identifier>,
    /// Structured sections (e.g. "Diagnoses", "Medications on discharge").
    pub sections: Vec<DocumentSection>,
    /// Attached files (e.g. the PDF rendering).
    pub attachments: Vec<Attachment>,
}

/// A reference to one version of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersionRef {
    /// The document's stable id.
    pub document_id: String,
    /// The version referred to.
    pub version: u32,
}

/// The author of a document, result or referral: a practitioner, their
/// organisation, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Author {
    /// The practitioner.
    pub practitioner: Option<Practitioner>,
    /// Their organisation's ODS code.
    pub organisation: Option<OdsCode>,
}

/// Status of a document (after FHIR `CompositionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentStatus {
    /// Not yet final.
    Preliminary,
    /// Final.
    Final,
    /// Changed after being final.
    Amended,
    /// Issued by mistake; must be disregarded.
    EnteredInError,
}

/// A titled section of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSection {
    /// What the section is, if coded.
    pub code: Option<Coding>,
    /// Its heading.
    pub title: String,
    /// Its text.
    pub text: String,
    /// `text/plain` or `text/html` (FHIR narrative XHTML).
    pub media_type: String,
}

impl ClinicalDocument {
    /// Checks the fields a receiver cannot do without.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.document_id.trim().is_empty() {
            return Err(ValidationError::missing("document_id"));
        }
        if self.version == 0 {
            return Err(ValidationError::invalid("version", "versions start at 1"));
        }
        if let Some(replaced) = &self.replaces {
            if replaced.document_id != self.document_id {
                return Err(ValidationError::new(
                    "replaces.document_id",
                    crate::ValidationErrorKind::Inconsistent,
                    "a new version must replace a version of the same document",
                ));
            }
            if replaced.version >= self.version {
                return Err(ValidationError::new(
                    "replaces.version",
                    crate::ValidationErrorKind::Inconsistent,
                    format!(
                        "version {} cannot replace version {}",
                        self.version, replaced.version
                    ),
                ));
            }
        }
        if self.document_type.code.trim().is_empty() {
            return Err(ValidationError::missing("document_type.code"));
        }
        if self.sections.is_empty() && self.attachments.is_empty() {
            return Err(ValidationError::new(
                "sections",
                crate::ValidationErrorKind::Missing,
                "a document needs at least one section or attachment",
            ));
        }
        for (i, attachment) in self.attachments.iter().enumerate() {
            attachment
                .validate()
                .map_err(|e| e.within(&format!("attachments[{i}]")))?;
        }
        Ok(())
    }
}

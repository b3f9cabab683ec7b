//! `ClinicalDocument` and its parts.

use lhcie_model::{
    ClinicalDocument, DocumentSection, DocumentStatus, DocumentVersionRef, ValidationError,
};

use super::{each, nested, optional, present, required, timestamp, unknown_enum, unspecified};
use crate::canonical as pb;

impl TryFrom<pb::ClinicalDocument> for ClinicalDocument {
    type Error = ValidationError;
    fn try_from(wire: pb::ClinicalDocument) -> Result<Self, Self::Error> {
        use pb::DocumentStatus as W;
        let status = match W::try_from(wire.status) {
            Ok(W::Unspecified) => return Err(unspecified("status")),
            Ok(W::Preliminary) => DocumentStatus::Preliminary,
            Ok(W::Final) => DocumentStatus::Final,
            Ok(W::Amended) => DocumentStatus::Amended,
            Ok(W::EnteredInError) => DocumentStatus::EnteredInError,
            Err(_) => return Err(unknown_enum("status", wire.status)),
        };
        Ok(Self {
            document_id: required(wire.document_id, "document_id")?,
            version: wire.version,
            replaces: wire.replaces.map(|r| DocumentVersionRef {
                document_id: r.document_id,
                version: r.version,
            }),
            document_type: present(
                nested(wire.document_type, "document_type")?,
                "document_type",
            )?,
            title: wire.title,
            author: nested(wire.author, "author")?,
            status,
            authored_at: timestamp::optional_from_wire(wire.authored_at, "authored_at")?,
            encounter: nested(wire.encounter, "encounter")?,
            sections: each(wire.sections, "sections")?,
            attachments: each(wire.attachments, "attachments")?,
        })
    }
}

impl From<ClinicalDocument> for pb::ClinicalDocument {
    fn from(document: ClinicalDocument) -> Self {
        let status = match document.status {
            DocumentStatus::Preliminary => pb::DocumentStatus::Preliminary,
            DocumentStatus::Final => pb::DocumentStatus::Final,
            DocumentStatus::Amended => pb::DocumentStatus::Amended,
            DocumentStatus::EnteredInError => pb::DocumentStatus::EnteredInError,
        };
        Self {
            document_id: document.document_id,
            version: document.version,
            replaces: document.replaces.map(|r| pb::DocumentVersionRef {
                document_id: r.document_id,
                version: r.version,
            }),
            document_type: Some(document.document_type.into()),
            title: document.title,
            author: document.author.map(Into::into),
            status: status as i32,
            authored_at: timestamp::optional_to_wire(document.authored_at),
            encounter: document.encounter.map(Into::into),
            sections: document.sections.into_iter().map(Into::into).collect(),
            attachments: document.attachments.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::DocumentSection> for DocumentSection {
    type Error = ValidationError;
    fn try_from(wire: pb::DocumentSection) -> Result<Self, Self::Error> {
        Ok(Self {
            code: nested(wire.code, "code")?,
            title: wire.title,
            text: wire.text,
            media_type: optional(wire.media_type).unwrap_or_else(|| "text/plain".into()),
        })
    }
}

impl From<DocumentSection> for pb::DocumentSection {
    fn from(section: DocumentSection) -> Self {
        Self {
            code: section.code.map(Into::into),
            title: section.title,
            text: section.text,
            media_type: section.media_type,
        }
    }
}

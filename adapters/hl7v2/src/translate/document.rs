//! MDM T02 → clinical document.
//!
//! TXA-2 picks the category and document type (configured mappings, see
//! [`crate::document_types`]; a code that is not there is AE 103 at
//! TXA-2.1, with ERR-8 naming the code); TXA-12 (unique document number) is the
//! document id, version 1; TXA-17 the status; TXA-4 (else TXA-6) when it
//! was written; TXA-9 (else TXA-5) its author; PV1-19 the encounter. Text
//! OBX (TX, ST, FT) become sections, one per OBX-3 (consecutive OBX with the
//! same code and sub-id are joined line by line); ED OBX become
//! attachments.

use lhcie_model::{Author, Category, ClinicalDocument, DocumentSection, DocumentStatus, OdsCode};

use super::TranslateContext;
use super::error::{TranslateError, TranslateErrorKind};
use super::fields::Seg;
use super::result::{ed_attachment, obx_segments, text_of};
use super::values::{coding, cx_identifier, practitioner};
use crate::Message;

/// TXA-17 (HL7 table 0271).
fn status(txa: Seg<'_>) -> Result<DocumentStatus, TranslateError> {
    let v = txa.required(17, 1)?;
    Ok(match v.to_ascii_uppercase().as_str() {
        "AU" | "LA" | "DO" => DocumentStatus::Final,
        "DI" | "IN" | "IP" | "PA" => DocumentStatus::Preliminary,
        _ => {
            return Err(TranslateError::at(
                TranslateErrorKind::UnknownCode,
                txa.loc(17).comp(1),
            ));
        }
    })
}

/// AE 103 at TXA-2.1, saying which code and where to configure it.
fn unmapped_document_type(txa: Seg<'_>, txa_type: &str) -> TranslateError {
    TranslateError::at(TranslateErrorKind::UnknownCode, txa.loc(2).comp(1)).with_user_message(
        "Document type {code} (TXA-2.1) is not mapped: neither a default nor configured ([[hl7v2.document_types]])",
        txa_type,
    )
}

pub(crate) fn document(
    message: &Message,
    sender: &OdsCode,
    ctx: &TranslateContext,
) -> Result<(Category, ClinicalDocument), TranslateError> {
    let txa = Seg::required_segment(message, "TXA")?;
    let txa_type = txa.required(2, 1)?;
    let mapping = ctx
        .document_types
        .iter()
        .find(|m| m.txa_type.eq_ignore_ascii_case(txa_type))
        .ok_or_else(|| unmapped_document_type(txa, txa_type))?;
    let document_id = txa.required(12, 1)?.to_owned();
    let status = status(txa)?;
    let authored_at = match txa.datetime(4, ctx.local_time)? {
        Some(t) => Some(t),
        None => txa.datetime(6, ctx.local_time)?,
    };
    let author_practitioner = txa
        .rep(9)
        .and_then(practitioner)
        .or_else(|| txa.rep(5).and_then(practitioner));
    let encounter = Seg::first(message, "PV1")
        .and_then(|p| p.rep(19))
        .and_then(|r| cx_identifier(r, sender.as_str(), "VN"));

    let mut sections: Vec<DocumentSection> = Vec::new();
    let mut last_key: Option<(String, Option<String>)> = None;
    let mut attachments = Vec::new();
    for (_, obx) in obx_segments(message) {
        let code = obx.rep(3).and_then(coding);
        let value_type = obx.get(2, 1).unwrap_or("TX").to_ascii_uppercase();
        if value_type == "ED" {
            let title = code.as_ref().and_then(|c| c.display.clone());
            for (r, rep) in obx.reps(5) {
                attachments.push(ed_attachment(obx, r, rep, title.clone())?);
            }
            last_key = None;
            continue;
        }
        let text = obx
            .reps(5)
            .filter_map(|(_, r)| {
                let parts: Vec<String> = (1..=r.components().len())
                    .map(|c| text_of(r, c).unwrap_or_default())
                    .collect();
                let t = parts.join("^");
                let t = t.trim_end_matches('^').to_owned();
                (!t.is_empty()).then_some(t)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let key = (
            code.as_ref().map(|c| c.code.clone()).unwrap_or_default(),
            obx.get(4, 1).map(str::to_owned),
        );
        if last_key.as_ref() == Some(&key)
            && let Some(section) = sections.last_mut()
        {
            section.text.push('\n');
            section.text.push_str(&text);
            continue;
        }
        last_key = Some(key);
        let title = code
            .as_ref()
            .and_then(|c| c.display.clone())
            .or_else(|| code.as_ref().map(|c| c.code.clone()))
            .unwrap_or_else(|| "Text".into());
        sections.push(DocumentSection {
            code,
            title,
            text,
            media_type: "text/plain".into(),
        });
    }
    if sections.is_empty() && attachments.is_empty() {
        return Err(TranslateError::at(
            TranslateErrorKind::MissingSegment,
            super::ErrorLocation::segment("OBX", 1),
        ));
    }
    let title = txa
        .get(2, 2)
        .map(str::to_owned)
        .or_else(|| mapping.document_type.display.clone())
        .unwrap_or_else(|| mapping.document_type.code.clone());
    Ok((
        mapping.category,
        ClinicalDocument {
            document_id,
            version: 1,
            replaces: None,
            document_type: mapping.document_type.clone(),
            title,
            author: Some(Author {
                practitioner: author_practitioner,
                organisation: Some(sender.clone()),
            }),
            status,
            authored_at,
            encounter,
            sections,
            attachments,
        },
    ))
}

//! Clinical document → `MDM^T02^MDM_T02` (original document notification
//! and content): `MSH EVN PID PV1 TXA {OBX}`.
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | (message) | EVN-1 `T02`, EVN-2 the envelope's creation time |
//! | encounter | PV1-19 (CX); PV1-2 `U` with an encounter, else `N` (not applicable) |
//! | category + document type | TXA-2 `<code>^<title>^^<SNOMED code>^<display>^SCT`; the code from [`super::RenderContext::document_types`] (same category and type, else same category) |
//! | title | TXA-2.2 (where the translator reads it) |
//! | authored at | TXA-4 (activity) and TXA-6 (origination) |
//! | author | TXA-9 (XCN, one repetition per identifier); the author's organisation, when not the sender, in XCN-14 |
//! | document id | TXA-12 (unique document number) |
//! | replaces | TXA-13 (parent document number) = the document id |
//! | version | TXA-21 (change reason), `Version <n>` / `Version <n> replaces version <m>`, written when the version is above 1 or replaces one |
//! | status | TXA-17: preliminary `IP`, final `AU`, amended `AU` with TXA-21 saying so |
//! | sections | one OBX each: OBX-2 `TX`, OBX-3 `<code>^<title>^<system>` (uncoded: `SECTION^<title>^99LHCIE`), OBX-4 the section number (so that the translator never joins two sections), OBX-5 one repetition per line, OBX-11 `F` (`P` preliminary, `C` amended) |
//! | HTML sections | converted to plain text first ([`super::html_to_text`]) |
//! | attachments | OBX ED, or a TX note for one held by URL (see the attachment mapping in the module source) |
//!
//! HL7 v2.4 TXA has no version number field, so the version travels as
//! text in TXA-21 and the translator (which reads every MDM as version 1)
//! does not read it back. A document entered in error is refused
//! ([`super::RenderError::Unrepresentable`]): its HL7 form is a cancel
//! notification (MDM^T11), which we do not write, and any T02 would tell
//! the receiver it is valid. The translator reads line breaks in sections
//! back as `\n` and drops blank lines.

use lhcie_model::{ClinicalDocument, DocumentStatus, Envelope, PatientIdentity, SNOMED_CT_SYSTEM};

use super::attachment::{self, LOCAL_SYSTEM};
use super::build::{
    SegmentBuilder, coding_system_name, cx, lines_field, rep, reps, ts, value, xcn,
};
use super::patient::pid;
use super::{Header, RenderContext, RenderError, html_to_text, msh};
use crate::translate::DocumentTypeMapping;
use crate::{Component, Repetition, Segment};

fn mapping<'a>(
    envelope: &Envelope,
    doc: &ClinicalDocument,
    ctx: &'a RenderContext,
) -> Result<&'a DocumentTypeMapping, RenderError> {
    let same_category = |m: &&DocumentTypeMapping| m.category == envelope.category;
    ctx.document_types
        .iter()
        .filter(same_category)
        .find(|m| {
            m.document_type.code == doc.document_type.code
                && m.document_type.system == doc.document_type.system
        })
        .or_else(|| ctx.document_types.iter().find(same_category))
        .ok_or(RenderError::UnmappedDocumentType {
            category: envelope.category,
        })
}

fn with_facility(r: &Repetition, facility: &str) -> Repetition {
    let mut c = r.components().to_vec();
    c.resize(13, Component::from_value(""));
    c.push(Component::from_value(facility));
    rep(c)
}

fn txa(
    envelope: &Envelope,
    doc: &ClinicalDocument,
    mapping: &DocumentTypeMapping,
) -> Result<Segment, RenderError> {
    let (status, amended) = match doc.status {
        DocumentStatus::Preliminary => ("IP", false),
        DocumentStatus::Final => ("AU", false),
        DocumentStatus::Amended => ("AU", true),
        DocumentStatus::EnteredInError => {
            return Err(RenderError::Unrepresentable {
                what: "a document entered in error (its HL7 v2 form, MDM^T11, is not written)",
            });
        }
    };
    let t = &doc.document_type;
    let system = if t.system == SNOMED_CT_SYSTEM {
        "SCT".to_owned()
    } else {
        coding_system_name(&t.system)
    };
    let mut b = SegmentBuilder::new("TXA");
    b.set(1, value("1"))
        .set(
            2,
            reps(vec![super::build::rep_of(&[
                &mapping.txa_type,
                &doc.title,
                "",
                &t.code,
                t.display.as_deref().unwrap_or(""),
                &system,
            ])]),
        )
        .set(3, value("TX"));
    if let Some(at) = doc.authored_at {
        b.set(4, value(ts(at))).set(6, value(ts(at)));
    }
    if let Some(p) = doc.author.as_ref().and_then(|a| a.practitioner.as_ref()) {
        let org = doc
            .author
            .as_ref()
            .and_then(|a| a.organisation.as_ref())
            .filter(|o| **o != envelope.sender.ods_code);
        let r = xcn(p)
            .iter()
            .map(|r| match org {
                Some(o) => with_facility(r, o.as_str()),
                None => r.clone(),
            })
            .collect();
        b.set(9, reps(r));
    }
    b.set(12, value(doc.document_id.as_str()));
    if let Some(parent) = &doc.replaces {
        b.set(13, value(parent.document_id.as_str()));
    }
    b.set(17, value(status));
    let mut reason = Vec::new();
    if doc.version > 1 || doc.replaces.is_some() {
        reason.push(match &doc.replaces {
            Some(r) => format!("Version {} replaces version {}", doc.version, r.version),
            None => format!("Version {}", doc.version),
        });
    }
    if amended {
        reason.push("Amended after being final".into());
    }
    if !reason.is_empty() {
        b.set(21, value(reason.join("; ")));
    }
    Ok(b.build())
}

/// The segments of the MDM^T02 for a document.
pub(crate) fn segments<'a>(
    envelope: &Envelope,
    doc: &ClinicalDocument,
    patient: &PatientIdentity,
    ctx: &RenderContext,
    header: impl Fn([&'static str; 3]) -> Header<'a>,
) -> Result<Vec<Segment>, RenderError> {
    let mapping = mapping(envelope, doc, ctx)?;
    let mut segments = vec![
        msh(ctx, &header(["MDM", "T02", "MDM_T02"])),
        SegmentBuilder::new("EVN")
            .set(1, value("T02"))
            .set(2, value(ts(envelope.created_at)))
            .build(),
        pid(patient),
    ];
    let mut pv1 = SegmentBuilder::new("PV1");
    pv1.set(1, value("1"));
    match &doc.encounter {
        Some(enc) => pv1.set(2, value("U")).set(19, reps(vec![cx(enc)])),
        None => pv1.set(2, value("N")),
    };
    segments.push(pv1.build());
    segments.push(txa(envelope, doc, mapping)?);

    let status = match doc.status {
        DocumentStatus::Preliminary => "P",
        DocumentStatus::Amended => "C",
        _ => "F",
    };
    let mut n = 0;
    for section in &doc.sections {
        n += 1;
        let text = if section.media_type.to_ascii_lowercase().contains("html") {
            html_to_text(&section.text)
        } else {
            section.text.clone()
        };
        let code = match &section.code {
            Some(c) => {
                super::build::rep_of(&[&c.code, &section.title, &coding_system_name(&c.system)])
            }
            None => super::build::rep_of(&["SECTION", &section.title, LOCAL_SYSTEM]),
        };
        segments.push(
            SegmentBuilder::new("OBX")
                .set(1, value(n.to_string()))
                .set(2, value("TX"))
                .set(3, reps(vec![code]))
                .set(4, value(n.to_string()))
                .set(5, lines_field(&text))
                .set(11, value(status))
                .build(),
        );
    }
    for a in &doc.attachments {
        n += 1;
        segments.push(
            attachment::obx(n, a, status)
                .set(4, value(n.to_string()))
                .build(),
        );
    }
    Ok(segments)
}

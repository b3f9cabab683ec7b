//! ORU R01 → diagnostic report, and OBX values shared with MDM.
//!
//! The report is the first OBR: OBR-3 (filler) or OBR-2 (placer) order
//! number as its id, OBR-4 its code, OBR-25 its status, OBR-7 effective,
//! OBR-22 issued, OBR-2 the order. Every OBX becomes an observation (code
//! OBX-3, value by OBX-2, units OBX-6, range OBX-7, flag OBX-8, status
//! OBX-11, time OBX-14, NTE notes), except ED values, which become
//! attachments (OBX-5.5 decoded as OBX-5.4 says: Base64, Hex or A).

use base64::Engine;
use lhcie_model::{
    Attachment, Author, Bytes, DiagnosticReport, Observation, ObservationValue, OdsCode,
    ResultStatus,
};

use super::TranslateContext;
use super::error::{TranslateError, TranslateErrorKind};
use super::fields::{Seg, comp, present};
use super::values::{coding, ei_identifier, notes_after};
use crate::{Message, Repetition};

/// OBR-25 / OBX-11 (HL7 tables 0123 and 0085).
fn status(seg: Seg<'_>, field: usize) -> Result<Option<ResultStatus>, TranslateError> {
    let Some(v) = seg.get(field, 1) else {
        return Ok(None);
    };
    Ok(Some(match v.to_ascii_uppercase().as_str() {
        "F" | "V" => ResultStatus::Final,
        "P" | "A" | "R" | "S" => ResultStatus::Preliminary,
        "C" => ResultStatus::Corrected,
        "M" => ResultStatus::Amended,
        "I" | "O" | "N" => ResultStatus::Registered,
        "X" => ResultStatus::Cancelled,
        "D" | "W" => ResultStatus::EnteredInError,
        _ => {
            return Err(TranslateError::at(
                TranslateErrorKind::UnknownCode,
                seg.loc(field).comp(1),
            ));
        }
    }))
}

/// A text value: every subcomponent of a component, rejoined with `&`
/// (text such as `A & B` is split by the parser).
pub(crate) fn text_of(rep: &Repetition, c: usize) -> Option<String> {
    let t = rep.component(c)?.subcomponents().join("&");
    present(Some(&t)).is_some().then_some(t)
}

/// The MIME type of an ED value (type of data ^ data subtype).
fn media_type(rep: &Repetition) -> String {
    let main = comp(rep, 2).unwrap_or("application").to_ascii_lowercase();
    let subtype = comp(rep, 3).map(|s| s.to_ascii_lowercase());
    match (main.as_str(), subtype.as_deref()) {
        (_, Some("pdf")) => "application/pdf".into(),
        ("ap" | "application", Some(s)) => format!("application/{s}"),
        ("im" | "image", Some(s)) => format!("image/{s}"),
        ("tx" | "text", Some(s)) => format!("text/{s}"),
        ("tx" | "text", None) => "text/plain".into(),
        (m, Some(s)) if m.contains('/') => format!("{m}{s}"),
        (m, _) if m.contains('/') => m.to_owned(),
        _ => "application/octet-stream".into(),
    }
}

/// Decodes an ED value (OBX-5 repetition) into an attachment.
pub(crate) fn ed_attachment(
    obx: Seg<'_>,
    r: usize,
    rep: &Repetition,
    title: Option<String>,
) -> Result<Attachment, TranslateError> {
    let at = |c: usize| obx.loc(5).rep(r).comp(c);
    let data: String = rep
        .component(5)
        .map(|c| c.subcomponents().join("&"))
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if data.is_empty() {
        return Err(TranslateError::at(TranslateErrorKind::MissingField, at(5)));
    }
    let encoding = comp(rep, 4).unwrap_or("Base64").to_ascii_uppercase();
    let bytes = match encoding.as_str() {
        "BASE64" => base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|_| TranslateError::at(TranslateErrorKind::InvalidEncodedData, at(5)))?,
        "HEX" => decode_hex(&data)
            .ok_or_else(|| TranslateError::at(TranslateErrorKind::InvalidEncodedData, at(5)))?,
        "A" => data.into_bytes(),
        _ => return Err(TranslateError::at(TranslateErrorKind::UnknownCode, at(4))),
    };
    Ok(Attachment::inline(
        media_type(rep),
        title,
        Bytes::from(bytes),
    ))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An OBX value other than ED, by OBX-2.
fn value(obx: Seg<'_>) -> Option<ObservationValue> {
    let value_type = obx.get(2, 1).unwrap_or("ST").to_ascii_uppercase();
    let reps: Vec<&Repetition> = obx.reps(5).map(|(_, r)| r).collect();
    let first = *reps.first()?;
    let unit = || obx.get(6, 1).map(str::to_owned);
    match value_type.as_str() {
        "NM" => text_of(first, 1).map(|value| ObservationValue::Quantity {
            value,
            unit: unit(),
        }),
        "SN" => {
            // comparator ^ num1 ^ separator ^ num2
            match (
                comp(first, 1),
                comp(first, 2),
                comp(first, 3),
                comp(first, 4),
            ) {
                (None, Some(n), None, None) => Some(ObservationValue::Quantity {
                    value: n.to_owned(),
                    unit: unit(),
                }),
                (c, n1, s, n2) => {
                    let t: String = [c, n1, s, n2].into_iter().flatten().collect();
                    (!t.is_empty()).then_some(ObservationValue::Text(t))
                }
            }
        }
        "CE" | "CWE" | "CNE" | "CF" => coding(first).map(ObservationValue::Coded),
        _ => {
            // Text types (ST, TX, FT...) and anything else: the text, with
            // repetitions as lines.
            let lines: Vec<String> = reps
                .iter()
                .map(|r| {
                    r.components()
                        .iter()
                        .map(|c| c.subcomponents().join("&"))
                        .collect::<Vec<_>>()
                        .join("^")
                })
                .collect();
            let t = lines.join("\n");
            present(Some(&t))
                .is_some()
                .then_some(ObservationValue::Text(t))
        }
    }
}

/// OBX segments with their index among all segments.
pub(crate) fn obx_segments(message: &Message) -> Vec<(usize, Seg<'_>)> {
    let mut seq = 0;
    message
        .all_segments()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.id() == "OBX")
        .map(|(i, seg)| {
            seq += 1;
            (i, Seg { seg, seq })
        })
        .collect()
}

pub(crate) fn report(
    message: &Message,
    sender: &OdsCode,
    ctx: &TranslateContext,
) -> Result<DiagnosticReport, TranslateError> {
    let obr = Seg::required_segment(message, "OBR")?;
    let report_id = obr
        .get(3, 1)
        .or_else(|| obr.get(2, 1))
        .ok_or_else(|| TranslateError::at(TranslateErrorKind::MissingField, obr.loc(3).comp(1)))?
        .to_owned();
    let code = obr
        .rep(4)
        .and_then(coding)
        .ok_or_else(|| TranslateError::at(TranslateErrorKind::MissingField, obr.loc(4).comp(1)))?;
    let report_status = status(obr, 25)?
        .ok_or_else(|| TranslateError::at(TranslateErrorKind::MissingField, obr.loc(25).comp(1)))?;
    let mut observations = Vec::new();
    let mut attachments = Vec::new();
    for (index, obx) in obx_segments(message) {
        let obs_code = obx.rep(3).and_then(coding);
        if obx.get(2, 1).is_some_and(|t| t.eq_ignore_ascii_case("ED")) {
            let title = obs_code
                .as_ref()
                .and_then(|c| c.display.clone().or(Some(c.code.clone())));
            for (r, rep) in obx.reps(5) {
                attachments.push(ed_attachment(obx, r, rep, title.clone())?);
            }
            continue;
        }
        let code = obs_code.ok_or_else(|| {
            TranslateError::at(TranslateErrorKind::MissingField, obx.loc(3).comp(1))
        })?;
        observations.push(Observation {
            code,
            value: value(obx),
            reference_range: obx.get(7, 1).map(str::to_owned),
            interpretation: obx.get(8, 1).map(str::to_owned),
            status: status(obx, 11)?.unwrap_or(report_status),
            effective_at: obx.datetime(14, ctx.local_time)?,
            notes: notes_after(message, index),
        });
    }
    Ok(DiagnosticReport {
        report_id,
        code,
        status: report_status,
        effective_at: obr.datetime(7, ctx.local_time)?,
        issued_at: obr.datetime(22, ctx.local_time)?,
        performer: Some(Author {
            practitioner: obr.rep(32).and_then(|r| {
                // OBR-32 is an NDL: its first component is a CNN (id & family & given).
                let c = r.component(1)?;
                let family = c.subcomponent(2).and_then(|s| present(Some(s)));
                let id = c.subcomponent(1).and_then(|s| present(Some(s)));
                (family.is_some() || id.is_some()).then(|| lhcie_model::Practitioner {
                    name: family.map(|f| lhcie_model::HumanName {
                        family: Some(f.to_owned()),
                        given: c
                            .subcomponent(3)
                            .and_then(|s| present(Some(s)))
                            .map(str::to_owned)
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    }),
                    identifiers: id
                        .map(|v| lhcie_model::Identifier {
                            system: "urn:lhcie:hl7v2:local-practitioner".into(),
                            value: v.to_owned(),
                            type_code: None,
                        })
                        .into_iter()
                        .collect(),
                    role: None,
                })
            }),
            organisation: Some(sender.clone()),
        }),
        order: obr
            .rep(2)
            .and_then(|r| ei_identifier(r, "urn:lhcie:hl7v2:placer", "PLAC")),
        observations,
        conclusion: None,
        attachments,
    })
}

//! Diagnostic report → `ORU^R01^ORU_R01` (the inverse of the translator's
//! ORU reading): `MSH PID OBR [NTE] {OBX [NTE]}`.
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | order | OBR-2 (placer order number, EI `value^system`) |
//! | report id | OBR-3 (filler order number) |
//! | code | OBR-4 (CE) |
//! | effective at / issued at | OBR-7 / OBR-22 |
//! | performer | OBR-32 `id&family&given` (the first identifier and given name) |
//! | status | OBR-25 / OBX-11: registered `I`, preliminary `P`, final `F`, amended and corrected `C`, cancelled `X`, entered in error `W` |
//! | conclusion | NTE after the OBR, one repetition per line |
//! | observation | OBX: OBX-3 code, OBX-5 value, OBX-6 unit, OBX-7 range, OBX-8 flag, OBX-11 status, OBX-14 time; each note an NTE after it |
//! | quantity | OBX-2 `NM` when the value is a plain decimal, else `ST` with the text |
//! | text | OBX-2 `TX`, one repetition per line |
//! | coded | OBX-2 `CE` |
//! | attachments | OBX ED (see the attachment mapping) |
//!
//! Read back by the translator with these differences: the conclusion is
//! not read; amended comes back as corrected; a non-decimal quantity comes
//! back as text; the performer's organisation is the sender.

use lhcie_model::{DiagnosticReport, ObservationValue, PatientIdentity, ResultStatus};

use super::attachment;
use super::build::{SegmentBuilder, ce, comps, lines_field, reps, subs, ts, value};
use super::patient::pid;
use super::{Header, RenderContext, msh};
use crate::Segment;

fn status(s: ResultStatus) -> &'static str {
    match s {
        ResultStatus::Registered => "I",
        ResultStatus::Preliminary => "P",
        ResultStatus::Final => "F",
        ResultStatus::Amended | ResultStatus::Corrected => "C",
        ResultStatus::Cancelled => "X",
        ResultStatus::EnteredInError => "W",
    }
}

/// True for an HL7 NM value: optional sign, digits, optional decimals.
fn is_decimal(v: &str) -> bool {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn nte(set_id: usize, text: &str) -> Segment {
    SegmentBuilder::new("NTE")
        .set(1, value(set_id.to_string()))
        .set(3, value(text))
        .build()
}

/// The segments of the ORU^R01 for a report.
pub(crate) fn segments<'a>(
    r: &DiagnosticReport,
    patient: &PatientIdentity,
    ctx: &RenderContext,
    header: impl Fn([&'static str; 3]) -> Header<'a>,
) -> Vec<Segment> {
    let mut obr = SegmentBuilder::new("OBR");
    obr.set(1, value("1"));
    obr.set_opt(2, r.order.as_ref().map(|o| comps(&[&o.value, &o.system])));
    obr.set(3, value(r.report_id.as_str()))
        .set(4, reps(vec![ce(&r.code)]));
    obr.set_opt(7, r.effective_at.map(|t| value(ts(t))));
    obr.set_opt(22, r.issued_at.map(|t| value(ts(t))));
    obr.set(25, value(status(r.status)));
    if let Some(p) = r.performer.as_ref().and_then(|a| a.practitioner.as_ref()) {
        let name = p.name.clone().unwrap_or_default();
        let id = p
            .identifiers
            .first()
            .map(|i| i.value.as_str())
            .unwrap_or("");
        let given = name.given.first().map(String::as_str).unwrap_or("");
        obr.set(
            32,
            reps(vec![crate::Repetition::new(vec![subs(&[
                id,
                name.family.as_deref().unwrap_or(""),
                given,
            ])])]),
        );
    }
    let mut segments = vec![
        msh(ctx, &header(["ORU", "R01", "ORU_R01"])),
        pid(patient),
        obr.build(),
    ];
    if let Some(c) = &r.conclusion {
        segments.push(
            SegmentBuilder::new("NTE")
                .set(1, value("1"))
                .set(3, lines_field(c))
                .build(),
        );
    }
    let mut n = 0;
    for o in &r.observations {
        n += 1;
        let mut b = SegmentBuilder::new("OBX");
        b.set(1, value(n.to_string()));
        match &o.value {
            Some(ObservationValue::Quantity { value: v, unit }) => {
                b.set(2, value(if is_decimal(v) { "NM" } else { "ST" }))
                    .set(5, value(v.as_str()));
                b.set_opt(6, unit.as_deref().map(|u| comps(&[u])));
            }
            Some(ObservationValue::Text(t)) => {
                b.set(2, value("TX")).set(5, lines_field(t));
            }
            Some(ObservationValue::Coded(c)) => {
                b.set(2, value("CE")).set(5, reps(vec![ce(c)]));
            }
            None => {}
        }
        b.set(3, reps(vec![ce(&o.code)]));
        b.set_opt(7, o.reference_range.as_deref().map(value));
        b.set_opt(8, o.interpretation.as_deref().map(value));
        b.set(11, value(status(o.status)));
        b.set_opt(14, o.effective_at.map(|t| value(ts(t))));
        segments.push(b.build());
        for (i, note) in o.notes.iter().enumerate() {
            segments.push(nte(i + 1, note));
        }
    }
    for a in &r.attachments {
        n += 1;
        segments.push(attachment::obx(n, a, status(r.status)).build());
    }
    segments
}

//! Care event → ADT (the inverse of the translator's ADT reading):
//! `MSH EVN PID [PD1] [MRG] PV1 [PV2]`.
//!
//! | kind | trigger ^ structure |
//! |---|---|
//! | admission | `A01^ADT_A01` |
//! | transfer | `A02^ADT_A02` |
//! | discharge | `A03^ADT_A03` |
//! | death | `A03^ADT_A03` with PV1-36 `20` (expired) |
//! | attendance | `A04^ADT_A01` |
//! | registration | `A04^ADT_A01` with an encounter and a class other than E/O, else `A28^ADT_A05` |
//! | pre-admission | `A05^ADT_A05` |
//! | demographics update | `A08^ADT_A01` with an encounter, else `A31^ADT_A05` |
//! | merge | `A40^ADT_A39`, MRG-1 the merged identity |
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | recorded at | EVN-2 (the envelope's creation time when absent: EVN-2 is required) |
//! | occurred at | EVN-6; also PV1-44 (admission, attendance) or PV1-45 (discharge, death) |
//! | patient class | PV1-2: I O E P D, community `C`, other `U`, none `N` |
//! | location / prior location | PV1-3 / PV1-6 (PL, see the builders) |
//! | attending | PV1-7 (XCN) |
//! | encounter | PV1-19 (CX) |
//! | discharge destination | PV1-36 if coded in HL7 table 0112, else PV1-37 (discharged to location) |
//! | reason | PV2-3 (admit reason, CE) |
//! | registered GP | PD1-3 |
//!
//! Read back by the translator with these differences: an attendance whose
//! class is not E or O comes back as a registration; occurred at, when
//! absent, comes back as the recorded time; community and other classes
//! come back as other and none; a death's destination comes back as table
//! 0112 `20`; a location's site comes back as its ODS code when it has one
//! (the site name is written in PL-7, building).

use lhcie_model::{CareEvent, CareEventKind, Envelope, PatientClass, PatientIdentity};

use super::build::{SegmentBuilder, ce, cx, pl, reps, ts, value, xcn};
use super::patient::{mrg, pd1, pid};
use super::{Header, RenderContext, msh};
use crate::Segment;

/// The system the translator gives PV1-36 codes (HL7 table 0112).
const TABLE_0112: &str = "http://terminology.hl7.org/CodeSystem/v2-0112";

/// The trigger event and message structure for an event.
pub fn trigger(event: &CareEvent) -> (&'static str, &'static str) {
    let eo = matches!(
        event.patient_class,
        Some(PatientClass::Emergency | PatientClass::Outpatient)
    );
    match event.kind {
        CareEventKind::Admission => ("A01", "ADT_A01"),
        CareEventKind::Transfer => ("A02", "ADT_A02"),
        CareEventKind::Discharge | CareEventKind::Death => ("A03", "ADT_A03"),
        CareEventKind::Attendance => ("A04", "ADT_A01"),
        CareEventKind::Registration if event.encounter.is_some() && !eo => ("A04", "ADT_A01"),
        CareEventKind::Registration => ("A28", "ADT_A05"),
        CareEventKind::PreAdmission => ("A05", "ADT_A05"),
        CareEventKind::DemographicsUpdate if event.encounter.is_some() => ("A08", "ADT_A01"),
        CareEventKind::DemographicsUpdate => ("A31", "ADT_A05"),
        CareEventKind::Merge => ("A40", "ADT_A39"),
    }
}

fn class(c: Option<PatientClass>) -> &'static str {
    match c {
        Some(PatientClass::Inpatient) => "I",
        Some(PatientClass::Outpatient) => "O",
        Some(PatientClass::Emergency) => "E",
        Some(PatientClass::PreAdmission) => "P",
        Some(PatientClass::DayCase) => "D",
        Some(PatientClass::Community) => "C",
        Some(PatientClass::Other) => "U",
        None => "N",
    }
}

fn pv1(event: &CareEvent) -> Segment {
    let mut b = SegmentBuilder::new("PV1");
    b.set(1, value("1"))
        .set(2, value(class(event.patient_class)));
    b.set_opt(3, event.location.as_ref().map(|l| reps(vec![pl(l)])));
    b.set_opt(6, event.prior_location.as_ref().map(|l| reps(vec![pl(l)])));
    b.set_opt(7, event.attending.as_ref().map(|p| reps(xcn(p))));
    b.set_opt(19, event.encounter.as_ref().map(|e| reps(vec![cx(e)])));
    let discharge = matches!(event.kind, CareEventKind::Discharge | CareEventKind::Death);
    if discharge {
        match &event.discharge_destination {
            Some(d) if d.system == TABLE_0112 && event.kind == CareEventKind::Discharge => {
                b.set(36, value(d.code.as_str()));
            }
            Some(d) => {
                b.set(37, value(d.code.as_str()));
            }
            None => {}
        }
        if event.kind == CareEventKind::Death {
            b.set(36, value("20"));
        }
    }
    if let Some(t) = event.occurred_at {
        match event.kind {
            CareEventKind::Admission | CareEventKind::Attendance => {
                b.set(44, value(ts(t)));
            }
            CareEventKind::Discharge | CareEventKind::Death => {
                b.set(45, value(ts(t)));
            }
            _ => {}
        }
    }
    b.build()
}

/// The segments of the ADT message for a care event.
pub(crate) fn segments<'a>(
    envelope: &Envelope,
    event: &CareEvent,
    patient: &PatientIdentity,
    ctx: &RenderContext,
    header: impl Fn([&'static str; 3]) -> Header<'a>,
) -> Vec<Segment> {
    let (trigger, structure) = trigger(event);
    let mut evn = SegmentBuilder::new("EVN");
    evn.set(1, value(trigger)).set(
        2,
        value(ts(event.recorded_at.unwrap_or(envelope.created_at))),
    );
    evn.set_opt(6, event.occurred_at.map(|t| value(ts(t))));
    let mut segments = vec![
        msh(ctx, &header(["ADT", trigger, structure])),
        evn.build(),
        pid(patient),
    ];
    segments.extend(pd1(patient));
    if let Some(merged) = &event.merged_from {
        segments.push(mrg(merged));
    }
    segments.push(pv1(event));
    if let Some(reason) = &event.reason {
        segments.push(
            SegmentBuilder::new("PV2")
                .set(3, reps(vec![ce(reason)]))
                .build(),
        );
    }
    segments
}

//! ADT → care event.
//!
//! | trigger | kind |
//! |---|---|
//! | A01 | admission |
//! | A02 | transfer |
//! | A03 | discharge (death if PV1-36 is 20, expired) |
//! | A04 | attendance if PV1-2 is E or O, else registration |
//! | A05 | pre-admission |
//! | A08, A31 | demographics update |
//! | A28 | registration (add person) |
//! | A40 | merge (MRG-1 → merged from) |

use lhcie_model::{CareEvent, CareEventKind, Coding, PatientClass};

use super::error::TranslateError;
use super::fields::Seg;
use super::values::{coding, cx_identifier, hl7_table, location, patient_class, practitioner};
use super::{TranslateContext, patient};
use crate::Message;

pub(crate) fn care_event(
    message: &Message,
    event: &str,
    facility: &str,
    ctx: &TranslateContext,
) -> Result<CareEvent, TranslateError> {
    let class = patient_class(message);
    let evn = Seg::first(message, "EVN");
    let pv1 = Seg::first(message, "PV1");
    let pv2 = Seg::first(message, "PV2");
    let discharge_disposition = pv1.and_then(|p| p.get(36, 1));
    let kind = match event {
        "A01" => CareEventKind::Admission,
        "A02" => CareEventKind::Transfer,
        "A03" if discharge_disposition == Some("20") => CareEventKind::Death,
        "A03" => CareEventKind::Discharge,
        "A04" => match class {
            Some(PatientClass::Emergency | PatientClass::Outpatient) => CareEventKind::Attendance,
            _ => CareEventKind::Registration,
        },
        "A05" => CareEventKind::PreAdmission,
        "A08" | "A31" => CareEventKind::DemographicsUpdate,
        "A28" => CareEventKind::Registration,
        // A40, the only other event the dispatcher lets through.
        _ => CareEventKind::Merge,
    };
    let recorded_at = match evn {
        Some(e) => e.datetime(2, ctx.local_time)?,
        None => None,
    };
    let evn_occurred = match evn {
        Some(e) => e.datetime(6, ctx.local_time)?,
        None => None,
    };
    // PV1-44 admit, PV1-45 discharge date/time.
    let pv1_time = |field: usize| -> Result<_, TranslateError> {
        match pv1 {
            Some(p) => p.datetime(field, ctx.local_time),
            None => Ok(None),
        }
    };
    let occurred_at = match kind {
        CareEventKind::Admission | CareEventKind::Attendance => {
            evn_occurred.or(pv1_time(44)?).or(recorded_at)
        }
        CareEventKind::Discharge | CareEventKind::Death => {
            evn_occurred.or(pv1_time(45)?).or(recorded_at)
        }
        _ => evn_occurred.or(recorded_at),
    };
    let merged_from = if kind == CareEventKind::Merge {
        Some(Box::new(patient::merged_from(message, facility)?))
    } else {
        None
    };
    let discharge_destination = pv1.and_then(|p| {
        p.rep(37)
            .and_then(|r| super::fields::comp(r, 1))
            .map(|code| Coding {
                system: "urn:lhcie:hl7v2:discharged-to-location".into(),
                code: code.to_owned(),
                display: None,
            })
            .or_else(|| {
                p.get(36, 1).map(|code| Coding {
                    system: hl7_table(112),
                    code: code.to_owned(),
                    display: None,
                })
            })
    });
    Ok(CareEvent {
        kind,
        occurred_at,
        recorded_at,
        location: pv1.and_then(|p| p.rep(3)).and_then(location),
        prior_location: pv1.and_then(|p| p.rep(6)).and_then(location),
        encounter: pv1
            .and_then(|p| p.rep(19))
            .and_then(|r| cx_identifier(r, facility, "VN")),
        patient_class: class,
        attending: pv1.and_then(|p| p.rep(7)).and_then(practitioner),
        reason: pv2.and_then(|p| p.rep(3)).and_then(coding),
        discharge_destination: if matches!(kind, CareEventKind::Discharge | CareEventKind::Death) {
            discharge_destination
        } else {
            None
        },
        merged_from,
    })
}

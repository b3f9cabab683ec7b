//! Care events: a MessageHeader event and its focus `Encounter` (or, for a
//! demographics update, the `Patient`) → [`CareEvent`].
//!
//! Encounter.class (v3 ActCode) gives the patient class: `IMP`, `ACUTE`,
//! `NONAC` inpatient; `AMB` outpatient; `EMER` emergency; `PRENC`
//! pre-admission; `SS` day case; `HH`, `VR` community; anything else other.
//! The event happened at `period.end` for discharges and deaths, else at
//! `period.start`. The current location is the first `Encounter.location`
//! that is not `completed`; the prior location the first that is.

use lhcie_model::{CareEvent, CareEventKind, Location, PatientClass};

use super::{Subject, organisation_of, resolve_lenient};
use crate::bundle::{Entries, Entry};
use crate::datetime;
use crate::identity;
use crate::node::Node;
use crate::outcome::Rejection;
use crate::systems::*;

/// The canonical name of a kind in our event codes (`care-event-<name>`).
pub(crate) fn kind_name(kind: CareEventKind) -> &'static str {
    match kind {
        CareEventKind::Admission => "admission",
        CareEventKind::Discharge => "discharge",
        CareEventKind::Transfer => "transfer",
        CareEventKind::Attendance => "attendance",
        CareEventKind::Registration => "registration",
        CareEventKind::PreAdmission => "pre-admission",
        CareEventKind::Death => "death",
        CareEventKind::DemographicsUpdate => "demographics-update",
        CareEventKind::Merge => "merge",
    }
}

/// v3 ActCode of a patient class.
pub(crate) fn class_code(class: PatientClass) -> (&'static str, &'static str) {
    match class {
        PatientClass::Inpatient => ("IMP", "inpatient encounter"),
        PatientClass::Outpatient => ("AMB", "ambulatory"),
        PatientClass::Emergency => ("EMER", "emergency"),
        PatientClass::PreAdmission => ("PRENC", "pre-admission"),
        PatientClass::DayCase => ("SS", "short stay"),
        PatientClass::Community => ("HH", "home health"),
        PatientClass::Other => ("OTHER", "other"),
    }
}

fn class_of(code: &str) -> PatientClass {
    match code {
        "IMP" | "ACUTE" | "NONAC" => PatientClass::Inpatient,
        "AMB" => PatientClass::Outpatient,
        "EMER" => PatientClass::Emergency,
        "PRENC" => PatientClass::PreAdmission,
        "SS" => PatientClass::DayCase,
        "HH" | "VR" => PatientClass::Community,
        _ => PatientClass::Other,
    }
}

fn kind(code: &str, class: Option<PatientClass>, path: &str) -> Result<CareEventKind, Rejection> {
    const OURS: [CareEventKind; 8] = [
        CareEventKind::Admission,
        CareEventKind::Discharge,
        CareEventKind::Transfer,
        CareEventKind::Attendance,
        CareEventKind::Registration,
        CareEventKind::PreAdmission,
        CareEventKind::Death,
        CareEventKind::DemographicsUpdate,
    ];
    if let Some(name) = code.strip_prefix("care-event-") {
        return OURS
            .into_iter()
            .find(|k| kind_name(*k) == name)
            .ok_or_else(|| {
                Rejection::not_supported(path, "this care event kind is not supported")
            });
    }
    Ok(match code {
        "A01" => CareEventKind::Admission,
        "A02" => CareEventKind::Transfer,
        "A03" => CareEventKind::Discharge,
        "A04" => match class {
            Some(PatientClass::Emergency | PatientClass::Outpatient) => CareEventKind::Attendance,
            _ => CareEventKind::Registration,
        },
        "A05" => CareEventKind::PreAdmission,
        "A28" => CareEventKind::Registration,
        _ => CareEventKind::DemographicsUpdate,
    })
}

fn location(entries: &Entries<'_>, l: &Node<'_>) -> Result<Location, Rejection> {
    let Some(reference) = l.obj("location")? else {
        return Err(Rejection::required(&l.at("location"), "is required"));
    };
    let mut out = Location::default();
    match resolve_lenient(entries, &reference, &["Location"])? {
        Some(e) => {
            let r = &e.resource;
            out.point_of_care = r.str("name")?.map(str::to_owned);
            out.description = r.str("description")?.map(str::to_owned);
            if let Some(org) = r.obj("managingOrganization")? {
                out.organisation = organisation_of(entries, &org)?;
            }
            for i in r.arr("identifier")? {
                let value = i.str("value")?.map(str::to_owned);
                match i.str("system")? {
                    Some(LHCIE_LOCATION_SITE) => out.site = value,
                    Some(LHCIE_LOCATION_ROOM) => out.room = value,
                    Some(LHCIE_LOCATION_BED) => out.bed = value,
                    _ => {}
                }
            }
        }
        None => out.description = reference.str("display")?.map(str::to_owned),
    }
    Ok(out)
}

/// The care event of a message whose focus is an Encounter or a Patient.
pub(super) fn care_event<'a>(
    entries: &Entries<'a>,
    focus: &Entry<'a>,
    code: &str,
) -> Result<(CareEvent, Subject<'a>), Rejection> {
    let e = &focus.resource;
    let code_path = "Bundle.entry[0].resource.eventCoding.code";
    if focus.resource_type == "Patient" {
        let kind = kind(code, None, code_path)?;
        if kind != CareEventKind::DemographicsUpdate {
            return Err(Rejection::not_supported(
                &e.at("resourceType"),
                "a care event's focus is its Encounter",
            ));
        }
        return Ok((empty(kind), Subject::Resource(e.clone())));
    }
    if focus.resource_type != "Encounter" {
        return Err(Rejection::not_supported(
            &e.at("resourceType"),
            "a care event's focus is its Encounter",
        ));
    }
    let class = match e.obj("class")? {
        Some(c) if matches!(c.str("system")?, None | Some(V3_ACT_CODE)) => {
            c.str("code")?.map(class_of)
        }
        Some(_) => None,
        None => None,
    };
    let kind = kind(code, class, code_path)?;
    let mut event = empty(kind);
    event.patient_class = class;
    if let Some(period) = e.obj("period")? {
        let field = match kind {
            CareEventKind::Discharge | CareEventKind::Death => "end",
            _ => "start",
        };
        event.occurred_at = datetime::date_time(&period, field)?;
    }
    if let Some(meta) = e.obj("meta")? {
        event.recorded_at = datetime::date_time(&meta, "lastUpdated")?;
    }
    for l in e.arr("location")? {
        let completed = l.str("status")? == Some("completed");
        if completed && event.prior_location.is_none() {
            event.prior_location = Some(location(entries, &l)?);
        } else if !completed && event.location.is_none() {
            event.location = Some(location(entries, &l)?);
        }
    }
    if event.location.is_none()
        && let Some(sp) = e.obj("serviceProvider")?
        && let Some(code) = organisation_of(entries, &sp)?
    {
        event.location = Some(Location {
            organisation: Some(code),
            ..Location::default()
        });
    }
    if let Some(i) = e.first("identifier")? {
        event.encounter = identity::local_identifier(&i)?;
    }
    if let Some(p) = e.first("participant")?
        && let Some(individual) = p.obj("individual")?
        && let Some(entry) =
            resolve_lenient(entries, &individual, &["Practitioner", "PractitionerRole"])?
        && entry.resource_type == "Practitioner"
    {
        event.attending = Some(identity::practitioner(&entry.resource)?);
    }
    if let Some(r) = e.first("reasonCode")? {
        event.reason = identity::concept_of(&r)?;
    }
    if let Some(h) = e.obj("hospitalization")? {
        event.discharge_destination = identity::concept(&h, "dischargeDisposition")?;
    }
    Ok((event, Subject::of(e)?))
}

fn empty(kind: CareEventKind) -> CareEvent {
    CareEvent {
        kind,
        occurred_at: None,
        recorded_at: None,
        location: None,
        prior_location: None,
        encounter: None,
        patient_class: None,
        attending: None,
        reason: None,
        discharge_destination: None,
        merged_from: None,
    }
}

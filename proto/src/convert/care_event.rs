//! `CareEvent` and `Location`.

use lhcie_model::{CareEvent, CareEventKind, Location, PatientClass, ValidationError};

use super::{nested, optional, optional_ods, timestamp, unknown_enum, unspecified};
use crate::canonical as pb;

impl TryFrom<pb::CareEvent> for CareEvent {
    type Error = ValidationError;
    fn try_from(wire: pb::CareEvent) -> Result<Self, Self::Error> {
        use pb::CareEventKind as K;
        let kind = match K::try_from(wire.kind) {
            Ok(K::Unspecified) => return Err(unspecified("kind")),
            Ok(K::Admission) => CareEventKind::Admission,
            Ok(K::Discharge) => CareEventKind::Discharge,
            Ok(K::Transfer) => CareEventKind::Transfer,
            Ok(K::Attendance) => CareEventKind::Attendance,
            Ok(K::Registration) => CareEventKind::Registration,
            Ok(K::PreAdmission) => CareEventKind::PreAdmission,
            Ok(K::Death) => CareEventKind::Death,
            Ok(K::DemographicsUpdate) => CareEventKind::DemographicsUpdate,
            Ok(K::Merge) => CareEventKind::Merge,
            Err(_) => return Err(unknown_enum("kind", wire.kind)),
        };
        use pb::PatientClass as C;
        let patient_class = match C::try_from(wire.patient_class) {
            Ok(C::Unspecified) => None,
            Ok(C::Inpatient) => Some(PatientClass::Inpatient),
            Ok(C::Outpatient) => Some(PatientClass::Outpatient),
            Ok(C::Emergency) => Some(PatientClass::Emergency),
            Ok(C::PreAdmission) => Some(PatientClass::PreAdmission),
            Ok(C::DayCase) => Some(PatientClass::DayCase),
            Ok(C::Community) => Some(PatientClass::Community),
            Ok(C::Other) => Some(PatientClass::Other),
            Err(_) => return Err(unknown_enum("patient_class", wire.patient_class)),
        };
        Ok(Self {
            kind,
            occurred_at: timestamp::optional_from_wire(wire.occurred_at, "occurred_at")?,
            recorded_at: timestamp::optional_from_wire(wire.recorded_at, "recorded_at")?,
            location: nested(wire.location, "location")?,
            prior_location: nested(wire.prior_location, "prior_location")?,
            encounter: nested(wire.encounter, "encounter")?,
            patient_class,
            attending: nested(wire.attending, "attending")?,
            reason: nested(wire.reason, "reason")?,
            discharge_destination: nested(wire.discharge_destination, "discharge_destination")?,
            merged_from: nested(wire.merged_from, "merged_from")?.map(Box::new),
        })
    }
}

impl From<CareEvent> for pb::CareEvent {
    fn from(event: CareEvent) -> Self {
        let kind = match event.kind {
            CareEventKind::Admission => pb::CareEventKind::Admission,
            CareEventKind::Discharge => pb::CareEventKind::Discharge,
            CareEventKind::Transfer => pb::CareEventKind::Transfer,
            CareEventKind::Attendance => pb::CareEventKind::Attendance,
            CareEventKind::Registration => pb::CareEventKind::Registration,
            CareEventKind::PreAdmission => pb::CareEventKind::PreAdmission,
            CareEventKind::Death => pb::CareEventKind::Death,
            CareEventKind::DemographicsUpdate => pb::CareEventKind::DemographicsUpdate,
            CareEventKind::Merge => pb::CareEventKind::Merge,
        };
        let patient_class = match event.patient_class {
            None => pb::PatientClass::Unspecified,
            Some(PatientClass::Inpatient) => pb::PatientClass::Inpatient,
            Some(PatientClass::Outpatient) => pb::PatientClass::Outpatient,
            Some(PatientClass::Emergency) => pb::PatientClass::Emergency,
            Some(PatientClass::PreAdmission) => pb::PatientClass::PreAdmission,
            Some(PatientClass::DayCase) => pb::PatientClass::DayCase,
            Some(PatientClass::Community) => pb::PatientClass::Community,
            Some(PatientClass::Other) => pb::PatientClass::Other,
        };
        Self {
            kind: kind as i32,
            occurred_at: timestamp::optional_to_wire(event.occurred_at),
            recorded_at: timestamp::optional_to_wire(event.recorded_at),
            location: event.location.map(Into::into),
            prior_location: event.prior_location.map(Into::into),
            encounter: event.encounter.map(Into::into),
            patient_class: patient_class as i32,
            attending: event.attending.map(Into::into),
            reason: event.reason.map(Into::into),
            discharge_destination: event.discharge_destination.map(Into::into),
            merged_from: event.merged_from.map(|p| (*p).into()),
        }
    }
}

impl TryFrom<pb::Location> for Location {
    type Error = ValidationError;
    fn try_from(wire: pb::Location) -> Result<Self, Self::Error> {
        Ok(Self {
            organisation: optional_ods(wire.organisation_ods, "organisation_ods")?,
            site: optional(wire.site),
            point_of_care: optional(wire.point_of_care),
            room: optional(wire.room),
            bed: optional(wire.bed),
            description: optional(wire.description),
        })
    }
}

impl From<Location> for pb::Location {
    fn from(location: Location) -> Self {
        Self {
            organisation_ods: location.organisation.map(String::from).unwrap_or_default(),
            site: location.site.unwrap_or_default(),
            point_of_care: location.point_of_care.unwrap_or_default(),
            room: location.room.unwrap_or_default(),
            bed: location.bed.unwrap_or_default(),
            description: location.description.unwrap_or_default(),
        }
    }
}

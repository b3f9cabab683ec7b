//! Care events: admissions, discharges, transfers, attendances and the other
//! notifications that tell a patient's other carers something happened.

use time::OffsetDateTime;

use crate::{Coding, Identifier, OdsCode, PatientIdentity, Practitioner, ValidationError};

/// Something that happened to a patient in a care setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareEvent {
    /// What happened.
    pub kind: CareEventKind,
    /// When it happened.
    pub occurred_at: Option<OffsetDateTime>,
    /// When it was recorded.
    pub recorded_at: Option<OffsetDateTime>,
    /// Where the patient is (after the event).
    pub location: Option<Location>,
    /// Where the patient was before (transfers).
    pub prior_location: Option<Location>,
    /// The encounter (visit) number.
    pub encounter: Option<Identifier>,
    /// Inpatient, outpatient, emergency...
    pub patient_class: Option<PatientClass>,
    /// The responsible clinician.
    pub attending: Option<Practitioner>,
    /// Reason for the event (e.g. admission reason), if coded.
    pub reason: Option<Coding>,
    /// Where the patient went on discharge.
    pub discharge_destination: Option<Coding>,
    /// For a merge: the identity that was merged into this message's patient.
    pub merged_from: Option<Box<PatientIdentity>>,
}

/// The kinds of care event (after HL7 v2 ADT trigger events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CareEventKind {
    /// Admitted (ADT A01).
    Admission,
    /// Discharged (A03).
    Discharge,
    /// Transferred within or between sites (A02).
    Transfer,
    /// An attendance, e.g. emergency department or outpatient (A04).
    Attendance,
    /// Registered as a patient, e.g. with a GP practice (A04/A28).
    Registration,
    /// Booked for a future admission (A05).
    PreAdmission,
    /// Died.
    Death,
    /// Demographics changed (A08, A31).
    DemographicsUpdate,
    /// Two records of the same patient merged (A40).
    Merge,
}

/// A place of care.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The organisation responsible.
    pub organisation: Option<OdsCode>,
    /// Site (hospital) name or code.
    pub site: Option<String>,
    /// Ward, clinic or department.
    pub point_of_care: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Bed.
    pub bed: Option<String>,
    /// Free text description.
    pub description: Option<String>,
}

/// The setting of an encounter (after HL7 v2 PV1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatientClass {
    /// Inpatient.
    Inpatient,
    /// Outpatient.
    Outpatient,
    /// Emergency department.
    Emergency,
    /// Booked for admission.
    PreAdmission,
    /// Day case.
    DayCase,
    /// Community care.
    Community,
    /// Anything else.
    Other,
}

impl CareEvent {
    /// Checks cross-field rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.kind == CareEventKind::Merge && self.merged_from.is_none() {
            return Err(ValidationError::new(
                "merged_from",
                crate::ValidationErrorKind::Missing,
                "a merge must say which identity was merged",
            ));
        }
        if self.kind != CareEventKind::Merge && self.merged_from.is_some() {
            return Err(ValidationError::new(
                "merged_from",
                crate::ValidationErrorKind::Inconsistent,
                "only a merge names a merged identity",
            ));
        }
        Ok(())
    }
}

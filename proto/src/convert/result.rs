//! `DiagnosticReport` and `Observation`.

use lhcie_model::{DiagnosticReport, Observation, ObservationValue, ResultStatus, ValidationError};

use super::{each, nested, optional, present, required, timestamp, unknown_enum, unspecified};
use crate::canonical as pb;

fn status_from_wire(value: i32) -> Result<ResultStatus, ValidationError> {
    use pb::ResultStatus as W;
    match W::try_from(value) {
        Ok(W::Unspecified) => Err(unspecified("status")),
        Ok(W::Registered) => Ok(ResultStatus::Registered),
        Ok(W::Preliminary) => Ok(ResultStatus::Preliminary),
        Ok(W::Final) => Ok(ResultStatus::Final),
        Ok(W::Amended) => Ok(ResultStatus::Amended),
        Ok(W::Corrected) => Ok(ResultStatus::Corrected),
        Ok(W::Cancelled) => Ok(ResultStatus::Cancelled),
        Ok(W::EnteredInError) => Ok(ResultStatus::EnteredInError),
        Err(_) => Err(unknown_enum("status", value)),
    }
}

fn status_to_wire(status: ResultStatus) -> i32 {
    let wire = match status {
        ResultStatus::Registered => pb::ResultStatus::Registered,
        ResultStatus::Preliminary => pb::ResultStatus::Preliminary,
        ResultStatus::Final => pb::ResultStatus::Final,
        ResultStatus::Amended => pb::ResultStatus::Amended,
        ResultStatus::Corrected => pb::ResultStatus::Corrected,
        ResultStatus::Cancelled => pb::ResultStatus::Cancelled,
        ResultStatus::EnteredInError => pb::ResultStatus::EnteredInError,
    };
    wire as i32
}

impl TryFrom<pb::DiagnosticReport> for DiagnosticReport {
    type Error = ValidationError;
    fn try_from(wire: pb::DiagnosticReport) -> Result<Self, Self::Error> {
        Ok(Self {
            report_id: required(wire.report_id, "report_id")?,
            code: present(nested(wire.code, "code")?, "code")?,
            status: status_from_wire(wire.status)?,
            effective_at: timestamp::optional_from_wire(wire.effective_at, "effective_at")?,
            issued_at: timestamp::optional_from_wire(wire.issued_at, "issued_at")?,
            performer: nested(wire.performer, "performer")?,
            order: nested(wire.order, "order")?,
            observations: each(wire.observations, "observations")?,
            conclusion: optional(wire.conclusion),
            attachments: each(wire.attachments, "attachments")?,
        })
    }
}

impl From<DiagnosticReport> for pb::DiagnosticReport {
    fn from(report: DiagnosticReport) -> Self {
        Self {
            report_id: report.report_id,
            code: Some(report.code.into()),
            status: status_to_wire(report.status),
            effective_at: timestamp::optional_to_wire(report.effective_at),
            issued_at: timestamp::optional_to_wire(report.issued_at),
            performer: report.performer.map(Into::into),
            order: report.order.map(Into::into),
            observations: report.observations.into_iter().map(Into::into).collect(),
            conclusion: report.conclusion.unwrap_or_default(),
            attachments: report.attachments.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::Observation> for Observation {
    type Error = ValidationError;
    fn try_from(wire: pb::Observation) -> Result<Self, Self::Error> {
        let value = match wire.value {
            None => None,
            Some(pb::observation::Value::Text(text)) => Some(ObservationValue::Text(text)),
            Some(pb::observation::Value::Quantity(q)) => Some(ObservationValue::Quantity {
                value: required(q.value, "quantity.value")?,
                unit: optional(q.unit),
            }),
            Some(pb::observation::Value::Coded(c)) => Some(ObservationValue::Coded(
                c.try_into()
                    .map_err(|e: ValidationError| e.within("coded"))?,
            )),
        };
        Ok(Self {
            code: present(nested(wire.code, "code")?, "code")?,
            value,
            reference_range: optional(wire.reference_range),
            interpretation: optional(wire.interpretation),
            status: status_from_wire(wire.status)?,
            effective_at: timestamp::optional_from_wire(wire.effective_at, "effective_at")?,
            notes: wire.notes,
        })
    }
}

impl From<Observation> for pb::Observation {
    fn from(observation: Observation) -> Self {
        let value = observation.value.map(|value| match value {
            ObservationValue::Text(text) => pb::observation::Value::Text(text),
            ObservationValue::Quantity { value, unit } => {
                pb::observation::Value::Quantity(pb::Quantity {
                    value,
                    unit: unit.unwrap_or_default(),
                })
            }
            ObservationValue::Coded(coding) => pb::observation::Value::Coded(coding.into()),
        });
        Self {
            code: Some(observation.code.into()),
            value,
            reference_range: observation.reference_range.unwrap_or_default(),
            interpretation: observation.interpretation.unwrap_or_default(),
            status: status_to_wire(observation.status),
            effective_at: timestamp::optional_to_wire(observation.effective_at),
            notes: observation.notes,
        }
    }
}

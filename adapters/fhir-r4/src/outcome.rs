//! Why an inbound resource was refused: a [`Rejection`] carries the HTTP
//! status, FHIR `OperationOutcome` issues and, where one applies, the ITK3
//! response code.
//!
//! Diagnostics are built from fixed text, element paths and indices only.
//! No constructor takes a value read from the message, so a rejection can
//! be logged and returned without leaking patient data.

use serde_json::{Value, json};

use lhcie_model::ITK_RESPONSE_CODE_SYSTEM;

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The action failed.
    Fatal,
    /// The content is in error.
    Error,
    /// A problem that did not stop processing.
    Warning,
    /// For information.
    Information,
}

impl Severity {
    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code`: the subset of the FHIR `IssueType` value
/// set this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    /// Not JSON, or not the JSON shape of a FHIR resource.
    Structure,
    /// A required element is missing.
    Required,
    /// An element's value is wrong (e.g. an NHS number failing modulus 11,
    /// an identifier system spelt wrongly).
    Value,
    /// Content invalid in some other way.
    Invalid,
    /// Understood but not handled here (resource type, event, document
    /// type).
    NotSupported,
    /// Too large.
    TooLong,
    /// Too expensive to process (nesting deeper than allowed).
    TooCostly,
    /// A duplicate (e.g. two entries with the same `fullUrl`).
    Duplicate,
    /// A reference that does not resolve within the Bundle.
    NotFound,
    /// Not allowed for this sender.
    Security,
}

impl IssueType {
    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invalid => "invalid",
            IssueType::NotSupported => "not-supported",
            IssueType::TooLong => "too-long",
            IssueType::TooCostly => "too-costly",
            IssueType::Duplicate => "duplicate",
            IssueType::NotFound => "not-found",
            IssueType::Security => "security",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How bad.
    pub severity: Severity,
    /// What kind of problem.
    pub code: IssueType,
    /// FHIRPath of the element at fault, e.g.
    /// `Bundle.entry[2].resource.identifier[0].system`.
    pub expression: Option<String>,
    /// Explanation for people; never contains a value from the message.
    pub diagnostics: String,
}

/// An inbound resource refused. `Debug` and `Display` show only the
/// status, codes, paths and fixed diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status to answer with (400, 403, 413, 415 or 422).
    pub status: u16,
    /// What was wrong; at least one.
    pub issues: Vec<Issue>,
    /// The ITK3 response code, when one applies (e.g. `20015` too large).
    pub itk_code: Option<&'static str>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issue = self.issue();
        write!(f, "{} {}", self.status, issue.code.as_str())?;
        if let Some(expression) = &issue.expression {
            write!(f, " at {expression}")?;
        }
        write!(f, ": {}", issue.diagnostics)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// A rejection with one error issue.
    pub fn new(
        status: u16,
        code: IssueType,
        expression: Option<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            status,
            issues: vec![Issue {
                severity: Severity::Error,
                code,
                expression,
                diagnostics: diagnostics.into(),
            }],
            itk_code: None,
        }
    }

    /// 400 `structure`: not the shape of a FHIR resource.
    pub(crate) fn structure(path: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(
            400,
            IssueType::Structure,
            Some(path.to_owned()),
            diagnostics,
        )
    }

    /// 422 `required`: a required element is missing.
    pub(crate) fn required(path: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(422, IssueType::Required, Some(path.to_owned()), diagnostics)
    }

    /// 422 `value`: an element's value is wrong.
    pub(crate) fn value(path: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(422, IssueType::Value, Some(path.to_owned()), diagnostics)
    }

    /// 422 `not-supported`.
    pub(crate) fn not_supported(path: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(
            422,
            IssueType::NotSupported,
            Some(path.to_owned()),
            diagnostics,
        )
    }

    /// The first (main) issue.
    pub fn issue(&self) -> &Issue {
        // Every constructor gives one issue; a default keeps this total.
        static NONE: Issue = Issue {
            severity: Severity::Error,
            code: IssueType::Invalid,
            expression: None,
            diagnostics: String::new(),
        };
        self.issues.first().unwrap_or(&NONE)
    }

    /// The rejection as a FHIR R4 `OperationOutcome`. When an ITK3 code
    /// applies it is given in `issue.details.coding`.
    pub fn operation_outcome(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|issue| {
                let mut out = json!({
                    "severity": issue.severity.as_str(),
                    "code": issue.code.as_str(),
                    "diagnostics": issue.diagnostics,
                });
                if let Some(expression) = &issue.expression {
                    out["expression"] = json!([expression]);
                }
                if let Some(code) = self.itk_code {
                    out["details"] = json!({
                        "coding": [{ "system": ITK_RESPONSE_CODE_SYSTEM, "code": code }]
                    });
                }
                out
            })
            .collect();
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_outcome_carries_code_expression_and_itk_code() {
        let mut r = Rejection::new(413, IssueType::TooLong, None, "too large");
        r.itk_code = Some("20015");
        let oo = r.operation_outcome();
        assert_eq!(oo["issue"][0]["code"], "too-long");
        assert_eq!(oo["issue"][0]["details"]["coding"][0]["code"], "20015");
        let r = Rejection::value("Patient.identifier[0].value", "fails modulus 11");
        let oo = r.operation_outcome();
        assert_eq!(
            oo["issue"][0]["expression"][0],
            "Patient.identifier[0].value"
        );
        assert_eq!(
            r.to_string(),
            "422 value at Patient.identifier[0].value: fails modulus 11"
        );
    }
}

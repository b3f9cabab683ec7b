//! What a local FHIR endpoint answered, for the server to decide whether a
//! delivery succeeded, may be retried, or failed for good.
//!
//! | answer | disposition |
//! |---|---|
//! | a response Bundle: `MessageHeader.response.code` | `ok` → ok, `transient-error` → transient, `fatal-error` → fatal |
//! | ITK3 code 20007 / 20008 (duplicate) | ok: it was delivered before |
//! | HTTP 2xx otherwise | ok, unless an OperationOutcome has an `error`/`fatal` issue (fatal) |
//! | HTTP 408, 429, 5xx, or an issue code `transient`, `throttled`, `timeout`, `lock-error`, `no-store`, `exception` | transient |
//! | other HTTP statuses | fatal |
//!
//! The body is read under the default [`ReadLimits`]; an unreadable body
//! leaves the decision to the status.

use lhcie_model::itk_response;
use serde_json::Value;

use crate::limits::{ReadLimits, parse_json};
use crate::node::Node;
use crate::read::itk_code;

/// What to do after a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseDisposition {
    /// Delivered.
    Ok,
    /// Not delivered; try again later.
    Transient,
    /// Not delivered and never will be (a negative acknowledgement).
    Fatal,
}

/// A local endpoint's answer, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Ok, transient or fatal.
    pub disposition: ResponseDisposition,
    /// The ITK3 response code, if the body gave one.
    pub itk_code: Option<String>,
    /// The OperationOutcome issue codes (FHIR IssueType), in order.
    pub issue_codes: Vec<String>,
}

const TRANSIENT_ISSUES: [&str; 6] = [
    "transient",
    "throttled",
    "timeout",
    "lock-error",
    "no-store",
    "exception",
];

fn outcome_of(oo: &Node<'_>, out: &mut LocalResponse) -> bool {
    let mut error = false;
    if let Ok(issues) = oo.arr("issue") {
        for issue in issues {
            if let Ok(Some(code)) = issue.str("code") {
                out.issue_codes.push(code.to_owned());
            }
            if matches!(issue.str("severity"), Ok(Some("error" | "fatal"))) {
                error = true;
            }
        }
    }
    if out.itk_code.is_none() {
        out.itk_code = itk_code(oo).ok().flatten().map(|c| c.code);
    }
    error
}

/// Interprets an HTTP status and body from a local FHIR endpoint.
pub fn read_response(status: u16, body: &[u8]) -> LocalResponse {
    let mut out = LocalResponse {
        disposition: ResponseDisposition::Fatal,
        itk_code: None,
        issue_codes: Vec::new(),
    };
    let value = parse_json(body, &ReadLimits::default()).unwrap_or(Value::Null);
    let mut error = false;
    let mut message_code = None;
    match value.get("resourceType").and_then(Value::as_str) {
        Some("OperationOutcome") => {
            error = outcome_of(&Node::root(&value, "OperationOutcome"), &mut out)
        }
        Some("Bundle") => {
            let root = Node::root(&value, "Bundle");
            for entry in root.arr("entry").unwrap_or_default() {
                let Ok(Some(r)) = entry.obj("resource") else {
                    continue;
                };
                match r.resource_type() {
                    Some("MessageHeader") => {
                        message_code =
                            r.obj("response").ok().flatten().and_then(|resp| {
                                resp.str("code").ok().flatten().map(str::to_owned)
                            });
                    }
                    Some("OperationOutcome") => error |= outcome_of(&r, &mut out),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let duplicate = matches!(
        out.itk_code.as_deref(),
        Some(itk_response::DUPLICATE_MESSAGE | itk_response::DUPLICATE_DOCUMENT)
    );
    let transient_issue = out
        .issue_codes
        .iter()
        .any(|c| TRANSIENT_ISSUES.contains(&c.as_str()));
    out.disposition = if duplicate {
        ResponseDisposition::Ok
    } else if let Some(code) = message_code.as_deref() {
        match code {
            "ok" => ResponseDisposition::Ok,
            "transient-error" => ResponseDisposition::Transient,
            _ => ResponseDisposition::Fatal,
        }
    } else if status == 408 || status == 429 || status >= 500 || transient_issue {
        ResponseDisposition::Transient
    } else if (200..300).contains(&status) {
        if error {
            ResponseDisposition::Fatal
        } else {
            ResponseDisposition::Ok
        }
    } else {
        ResponseDisposition::Fatal
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseDisposition::*;

    fn oo(severity: &str, code: &str, itk: Option<&str>) -> Vec<u8> {
        let mut issue = serde_json::json!({"severity": severity, "code": code});
        if let Some(c) = itk {
            issue["details"] = serde_json::json!({"coding": [{"system": crate::systems::ITK_RESPONSE_CODE_SYSTEM, "code": c}]});
        }
        serde_json::to_vec(
            &serde_json::json!({"resourceType": "OperationOutcome", "issue": [issue]}),
        )
        .unwrap_or_default()
    }

    #[test]
    fn dispositions() {
        let table: [(u16, Vec<u8>, ResponseDisposition); 9] = [
            (200, b"".to_vec(), Ok),
            (201, oo("information", "informational", Some("20013")), Ok),
            (200, oo("error", "invalid", None), Fatal),
            (400, oo("error", "invalid", None), Fatal),
            (422, oo("error", "duplicate", Some("20007")), Ok),
            (503, b"<html>busy</html>".to_vec(), Transient),
            (429, b"".to_vec(), Transient),
            (400, oo("error", "transient", None), Transient),
            (404, b"not json".to_vec(), Fatal),
        ];
        for (status, body, expected) in table {
            assert_eq!(
                read_response(status, &body).disposition,
                expected,
                "{status}"
            );
        }
        let bundle = serde_json::json!({"resourceType": "Bundle", "type": "message", "entry": [
            {"resource": {"resourceType": "MessageHeader", "response": {"identifier": "x", "code": "transient-error"}}}]});
        let r = read_response(200, &serde_json::to_vec(&bundle).unwrap_or_default());
        assert_eq!(r.disposition, Transient);
        let r = read_response(201, &oo("information", "informational", Some("20013")));
        assert_eq!(r.itk_code.as_deref(), Some("20013"));
    }
}

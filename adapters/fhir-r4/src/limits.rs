//! Limits on inbound content, checked before anything is built from it:
//! size (413, ITK3 20015), JSON nesting depth (a linear, non-recursive scan
//! of the bytes, so 100,000 nested arrays cost one pass and no stack), and
//! the media type (415, for the server to apply to `Content-Type`).

use lhcie_model::itk_response;
use serde_json::Value;

use crate::outcome::{IssueType, Rejection};

/// Limits applied to every inbound body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The largest body accepted, in bytes (413 and ITK3 20015 beyond).
    pub max_bytes: usize,
    /// The deepest JSON nesting accepted (objects and arrays). Real FHIR
    /// messages stay under 20; serde_json itself stops at 128.
    pub max_depth: usize,
    /// The most Bundle entries accepted.
    pub max_entries: usize,
}

impl Default for ReadLimits {
    /// 10 MiB, depth 64, 1,000 entries.
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_depth: 64,
            max_entries: 1000,
        }
    }
}

/// Checks size and depth, then parses JSON. Errors: 413 `too-long` (ITK3
/// 20015), 400 `too-costly` (too deep), 400 `structure` (not JSON, or not a
/// JSON object).
pub fn parse_json(bytes: &[u8], limits: &ReadLimits) -> Result<Value, Rejection> {
    if bytes.len() > limits.max_bytes {
        let mut r = Rejection::new(
            413,
            IssueType::TooLong,
            None,
            format!(
                "the body has {} bytes; at most {} are accepted",
                bytes.len(),
                limits.max_bytes
            ),
        );
        r.itk_code = Some(itk_response::TOO_LARGE);
        return Err(r);
    }
    check_depth(bytes, limits.max_depth)?;
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message names a line and column, never the content.
        Rejection::new(
            400,
            IssueType::Structure,
            None,
            format!(
                "not valid JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if !value.is_object() {
        return Err(Rejection::new(
            400,
            IssueType::Structure,
            None,
            "a FHIR resource is a JSON object",
        ));
    }
    Ok(value)
}

/// Rejects nesting deeper than `max_depth` with one pass over the bytes,
/// skipping strings (and their escapes). Malformed JSON is left for the
/// parser to report.
pub fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), Rejection> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Rejection::new(
                        400,
                        IssueType::TooCostly,
                        None,
                        format!("JSON nested deeper than {max_depth} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks an HTTP `Content-Type` header: `application/fhir+json` or
/// `application/json` (parameters such as `charset` and `fhirVersion`
/// allowed). Anything else, or none, is 415 `not-supported`.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), Rejection> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/fhir+json" | "application/json") => Ok(()),
        _ => Err(Rejection::new(
            415,
            IssueType::NotSupported,
            None,
            "send FHIR JSON: Content-Type application/fhir+json",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(check_depth(br#"{"a":[[[1]]]}"#, 4).is_ok());
        assert!(check_depth(br#"{"a":[[[[1]]]]}"#, 4).is_err());
        assert!(check_depth(br#"{"a":"[[[[[[\"[[[["}"#, 1).is_ok());
        let deep = "[".repeat(100_000);
        let r = check_depth(deep.as_bytes(), 64).unwrap_err();
        assert_eq!(r.issue().code, IssueType::TooCostly);
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/fhir+json; fhirVersion=4.0")).is_ok());
        assert!(check_content_type(Some("Application/JSON")).is_ok());
        assert_eq!(
            check_content_type(Some("application/xml"))
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(check_content_type(None).unwrap_err().status, 415);
    }

    #[test]
    fn size_limit_gives_413_and_itk_code() {
        let limits = ReadLimits {
            max_bytes: 4,
            ..ReadLimits::default()
        };
        let r = parse_json(b"{\"a\":1}", &limits).unwrap_err();
        assert_eq!((r.status, r.itk_code), (413, Some("20015")));
        assert_eq!(
            parse_json(b"[1]", &ReadLimits::default())
                .unwrap_err()
                .status,
            400
        );
    }
}

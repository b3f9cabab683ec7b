//! Response messages: `MessageHeader.response` (and the OperationOutcome
//! it points to) → canonical [`Acknowledgement`].
//!
//! `ok` is positive, `transient-error` and `fatal-error` negative. The
//! ITK3 response code is the first `issue.details.coding` with the ITK3
//! system; codes `3xxxx` are business acknowledgements, the rest (and none)
//! infrastructure. The text is the ITK3 code's display only: free-text
//! diagnostics may name the patient and are not copied.

use lhcie_model::{AckLevel, AckOutcome, Acknowledgement, Coding, MessageId};

use crate::bundle::Entries;
use crate::node::Node;
use crate::outcome::Rejection;
use crate::systems::ITK_RESPONSE_CODE_SYSTEM;

/// The acknowledgement, and the response identifier as sent.
pub(super) fn acknowledgement(
    entries: &Entries<'_>,
    header: &Node<'_>,
) -> Result<(Acknowledgement, String), Rejection> {
    let response = header.req_obj("response")?;
    let identifier = response.req_str("identifier")?;
    let refers_to = MessageId::parse(identifier)
        .map_err(|_| Rejection::value(&response.at("identifier"), "not a usable message id"))?;
    let outcome = match response.req_str("code")? {
        "ok" => AckOutcome::Positive,
        "transient-error" | "fatal-error" => AckOutcome::Negative,
        _ => {
            return Err(Rejection::value(
                &response.at("code"),
                "ok, transient-error or fatal-error",
            ));
        }
    };
    let mut code = None;
    if let Some(details) = response.obj("details")?
        && let Some(r) = details.str("reference")?
    {
        let oo = entries.resolve_str(r, &details.at("reference"))?;
        if oo.resource_type != "OperationOutcome" {
            return Err(Rejection::value(
                &details.at("reference"),
                "must refer to an OperationOutcome",
            ));
        }
        code = itk_code(&oo.resource)?;
    }
    let level = match &code {
        Some(c) if c.code.starts_with('3') => AckLevel::Business,
        _ => AckLevel::Infrastructure,
    };
    let text = code.as_ref().and_then(|c| c.display.clone());
    Ok((
        Acknowledgement {
            refers_to,
            level,
            outcome,
            code,
            text,
        },
        identifier.to_owned(),
    ))
}

/// The first ITK3 response code of an OperationOutcome.
pub(crate) fn itk_code(oo: &Node<'_>) -> Result<Option<Coding>, Rejection> {
    for issue in oo.arr("issue")? {
        if let Some(details) = issue.obj("details")? {
            for c in details.arr("coding")? {
                if c.str("system")? == Some(ITK_RESPONSE_CODE_SYSTEM)
                    && let Some(code) = c.str("code")?
                {
                    return Ok(Some(Coding {
                        system: ITK_RESPONSE_CODE_SYSTEM.into(),
                        code: code.to_owned(),
                        display: c.str("display")?.map(str::to_owned),
                    }));
                }
            }
        }
    }
    Ok(None)
}

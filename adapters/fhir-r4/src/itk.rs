//! ITK3 message handling: the `Extension-ITK-MessageHandling-2` complex
//! extension on `MessageHeader`, one sub-extension per key:
//!
//! | key | value | canonical |
//! |---|---|---|
//! | `BusAckRequested` | `valueBoolean` | `acknowledgements_requested.business` |
//! | `InfAckRequested` | `valueBoolean` | `acknowledgements_requested.infrastructure` |
//! | `RecipientType` | `valueCoding` `FA` / `FI` | intent of the named recipients |
//! | `MessageDefinition` | `valueReference` | kept in [`Handling`] |
//! | `SenderReference` | `valueString` | `sender_reference` |
//! | `LocalExtension` | `valueString` | kept in [`Handling`] |
//!
//! Without the extension, both acknowledgements are taken as requested
//! (ITK3's default for messages that ask for nothing is to be answered) and
//! recipients are for action. Unknown keys are ignored.

use lhcie_model::RecipientIntent;
use serde_json::{Value, json};

use crate::node::Node;
use crate::outcome::Rejection;
use crate::systems::{ITK_MESSAGE_HANDLING, ITK_RECIPIENT_TYPE_SYSTEM};

/// The ITK3 handling keys of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handling {
    /// A business acknowledgement is requested.
    pub business_ack: bool,
    /// An infrastructure acknowledgement is requested.
    pub infrastructure_ack: bool,
    /// For action or for information; `None` when not given.
    pub recipient_type: Option<RecipientIntent>,
    /// The ITK3 MessageDefinition reference.
    pub message_definition: Option<String>,
    /// The sender's own reference, echoed back in responses.
    pub sender_reference: Option<String>,
    /// A local extension key.
    pub local_extension: Option<String>,
    /// Whether the message carried the extension at all.
    pub present: bool,
}

impl Default for Handling {
    fn default() -> Self {
        Self {
            business_ack: true,
            infrastructure_ack: true,
            recipient_type: None,
            message_definition: None,
            sender_reference: None,
            local_extension: None,
            present: false,
        }
    }
}

/// Reads the handling extension of a MessageHeader.
pub(crate) fn read(header: &Node<'_>) -> Result<Handling, Rejection> {
    let mut out = Handling::default();
    for ext in header.arr("extension")? {
        if ext.str("url")? != Some(ITK_MESSAGE_HANDLING) {
            continue;
        }
        out.present = true;
        for key in ext.arr("extension")? {
            match key.str("url")? {
                Some("BusAckRequested") => {
                    out.business_ack = key.bool("valueBoolean")?.ok_or_else(|| {
                        Rejection::required(&key.at("valueBoolean"), "is required")
                    })?;
                }
                Some("InfAckRequested") => {
                    out.infrastructure_ack = key.bool("valueBoolean")?.ok_or_else(|| {
                        Rejection::required(&key.at("valueBoolean"), "is required")
                    })?;
                }
                Some("RecipientType") => {
                    let coding = key.req_obj("valueCoding")?;
                    out.recipient_type = Some(match coding.req_str("code")? {
                        "FA" => RecipientIntent::ForAction,
                        "FI" => RecipientIntent::ForInformation,
                        _ => {
                            return Err(Rejection::value(
                                &coding.at("code"),
                                "ITK3 RecipientType is FA or FI",
                            ));
                        }
                    });
                }
                Some("MessageDefinition") => {
                    out.message_definition = key
                        .obj("valueReference")?
                        .map(|r| r.str("reference"))
                        .transpose()?
                        .flatten()
                        .map(str::to_owned);
                }
                Some("SenderReference") => {
                    out.sender_reference = key.str("valueString")?.map(str::to_owned);
                }
                Some("LocalExtension") => {
                    out.local_extension = key.str("valueString")?.map(str::to_owned);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The extension for a MessageHeader.
pub(crate) fn render(handling: &Handling) -> Value {
    let mut keys = vec![
        json!({"url": "BusAckRequested", "valueBoolean": handling.business_ack}),
        json!({"url": "InfAckRequested", "valueBoolean": handling.infrastructure_ack}),
    ];
    if let Some(intent) = handling.recipient_type {
        let (code, display) = match intent {
            RecipientIntent::ForAction => ("FA", "For Action"),
            RecipientIntent::ForInformation => ("FI", "For Information"),
        };
        keys.push(json!({"url": "RecipientType", "valueCoding": {
            "system": ITK_RECIPIENT_TYPE_SYSTEM, "code": code, "display": display}}));
    }
    if let Some(d) = &handling.message_definition {
        keys.push(json!({"url": "MessageDefinition", "valueReference": {"reference": d}}));
    }
    if let Some(r) = &handling.sender_reference {
        keys.push(json!({"url": "SenderReference", "valueString": r}));
    }
    if let Some(l) = &handling.local_extension {
        keys.push(json!({"url": "LocalExtension", "valueString": l}));
    }
    json!({"url": ITK_MESSAGE_HANDLING, "extension": keys})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let h = Handling {
            business_ack: false,
            infrastructure_ack: true,
            recipient_type: Some(RecipientIntent::ForInformation),
            message_definition: Some("https://fhir.nhs.uk/MessageDefinition/x".into()),
            sender_reference: Some("REF1".into()),
            local_extension: Some("L".into()),
            present: true,
        };
        let header = json!({"extension": [render(&h)]});
        assert_eq!(read(&Node::root(&header, "MessageHeader")).unwrap(), h);
        let none = json!({});
        assert_eq!(
            read(&Node::root(&none, "MessageHeader")).unwrap(),
            Handling::default()
        );
        let bad = json!({"extension": [{"url": ITK_MESSAGE_HANDLING, "extension": [
            {"url": "RecipientType", "valueCoding": {"code": "XX"}}]}]});
        let e = read(&Node::root(&bad, "MessageHeader")).unwrap_err();
        assert_eq!(
            e.issue().expression.as_deref(),
            Some("MessageHeader.extension[0].extension[0].valueCoding.code")
        );
    }
}

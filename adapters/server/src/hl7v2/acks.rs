//! Acknowledgements beyond those `lhcie-hl7v2` builds: the ACK for a
//! message the hub rejected, and reading the local system's ACK to a
//! delivery (and naming why sending it failed, [`send_problem`]).
//!
//! Nothing from the message body goes into an ACK: the hub's reason is
//! reported by its name (e.g. `REJECT_REASON_INVALID_NHS_NUMBER`) and a
//! table 0357 code, never with the hub's free-text detail.

use lhcie_hl7v2::{
    AckCode, AckError, ErrorCode, ErrorLocation, Field, Message, Segment, build_ack,
};
use lhcie_proto::hub as hubpb;
use time::OffsetDateTime;

/// The ACK for a message the hub rejected: AE for content the sender can
/// correct, AR otherwise, one ERR with a table 0357 code (at PID-3 for an
/// invalid NHS number) and ERR-8 naming the hub's reason.
pub fn hub_rejection_ack(
    original: &Message,
    rejection: &hubpb::Rejected,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    use hubpb::RejectReason as R;
    let reason = hubpb::RejectReason::try_from(rejection.reason).unwrap_or_default();
    let (code, error, location) = match reason {
        R::InvalidNhsNumber => (
            AckCode::Error,
            ErrorCode::DataTypeError,
            Some(ErrorLocation::field("PID", 1, 3)),
        ),
        R::InvalidEnvelope => (AckCode::Error, ErrorCode::DataTypeError, None),
        R::UnknownRecipient => (AckCode::Error, ErrorCode::TableValueNotFound, None),
        R::UnknownCategory => (AckCode::Reject, ErrorCode::UnsupportedMessageType, None),
        R::SenderNotAuthorised | R::TooLarge | R::Unspecified => {
            (AckCode::Reject, ErrorCode::ApplicationInternalError, None)
        }
    };
    let ack = build_ack(
        original,
        code,
        &[AckError {
            code: error,
            location,
        }],
        control_id,
        now,
    );
    with_user_message(
        ack,
        &format!("Rejected by the hub: {}", reason.as_str_name()),
    )
}

/// Sets ERR-8 (user message) of the first ERR segment.
pub fn with_user_message(ack: Message, text: &str) -> Message {
    let delimiters = *ack.delimiters();
    let mut segments: Vec<Segment> = ack.all_segments().to_vec();
    if let Some(err) = segments.iter_mut().find(|s| s.id() == "ERR") {
        let mut fields: Vec<Field> = err.fields().to_vec();
        fields.resize(7, Field::from_value(""));
        fields.push(Field::from_value(text));
        if let Ok(segment) = Segment::new("ERR", fields) {
            *err = segment;
        }
    }
    Message::new(delimiters, segments.clone()).unwrap_or(ack)
}

/// What the local system said to a delivery (MSA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAnswer {
    /// AA or CA (the code).
    Accepted(&'static str),
    /// AE, AR, CE or CR (the code, for the dead-letter reason).
    Refused(&'static str),
    /// No usable MSA-1, or MSA-2 names another message.
    Unusable,
}

/// Reads the local system's ACK to the message whose MSH-10 is
/// `control_id` (if known).
pub fn read_local_ack(ack: &[u8], control_id: Option<&str>) -> LocalAnswer {
    let Ok(message) = lhcie_hl7v2::parse_message(ack) else {
        return LocalAnswer::Unusable;
    };
    if let (Some(expected), Some(acked)) = (control_id, message.value("MSA", 2, 1, 1, 1))
        && expected.trim() != acked.trim()
    {
        return LocalAnswer::Unusable;
    }
    match message.value("MSA", 1, 1, 1, 1).map(str::trim) {
        Some("AA") => LocalAnswer::Accepted("AA"),
        Some("CA") => LocalAnswer::Accepted("CA"),
        Some("AE") => LocalAnswer::Refused("AE"),
        Some("AR") => LocalAnswer::Refused("AR"),
        Some("CE") => LocalAnswer::Refused("CE"),
        Some("CR") => LocalAnswer::Refused("CR"),
        _ => LocalAnswer::Unusable,
    }
}

/// A code for why sending to the local system failed (for metrics and
/// trace events: no addresses, no message content).
pub fn send_problem(error: &lhcie_mllp::SendError) -> &'static str {
    use lhcie_mllp::SendError as E;
    match error {
        E::InvalidMessage(_) => "not-framable",
        E::Connect { .. } => "no-connection",
        E::WriteTimeout(_) => "write-timeout",
        E::Tls { .. } => "tls-failed",
        E::AckTimeout(_) => "ack-timeout",
        E::ConnectionClosed => "connection-closed",
        E::InvalidAck(_) => "invalid-acknowledgement",
        E::Io(_) => "io-error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"MSH|^~\\&|PAS|RYJ|EPR|RAL|20240101120000||ADT^A01^ADT_A01|MSG0001|P|2.4\rPID|1||9434765919^^^NHS\r";

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn an_invalid_nhs_number_rejection_is_ae_at_pid_3_with_the_reason_name_only() {
        let original = lhcie_hl7v2::parse_message(MESSAGE).unwrap();
        let rejection = hubpb::Rejected {
            reason: hubpb::RejectReason::InvalidNhsNumber as i32,
            detail: "secret detail 9434765919".into(),
        };
        let ack = hub_rejection_ack(&original, &rejection, "ACK1", now());
        let text = String::from_utf8(ack.render()).unwrap();
        assert_eq!(ack.value("MSA", 1, 1, 1, 1), Some("AE"));
        assert_eq!(ack.value("MSA", 2, 1, 1, 1), Some("MSG0001"));
        assert_eq!(ack.value("ERR", 2, 1, 1, 1), Some("PID"));
        assert_eq!(ack.value("ERR", 2, 1, 3, 1), Some("3"));
        assert_eq!(
            ack.value("ERR", 8, 1, 1, 1),
            Some("Rejected by the hub: REJECT_REASON_INVALID_NHS_NUMBER")
        );
        assert!(!text.contains("9434765919"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn a_sender_not_authorised_rejection_is_ar() {
        let original = lhcie_hl7v2::parse_message(MESSAGE).unwrap();
        let rejection = hubpb::Rejected {
            reason: hubpb::RejectReason::SenderNotAuthorised as i32,
            detail: String::new(),
        };
        let ack = hub_rejection_ack(&original, &rejection, "ACK1", now());
        assert_eq!(ack.value("MSA", 1, 1, 1, 1), Some("AR"));
        assert_eq!(ack.value("ERR", 3, 1, 1, 1), Some("207"));
    }

    #[test]
    fn local_acks_are_read_by_msa() {
        let ack = |code: &str, id: &str| {
            format!(
                "MSH|^~\\&|EPR|RAL|PAS|RYJ|20240101120000||ACK^A01^ACK|A1|P|2.4\rMSA|{code}|{id}\r"
            )
        };
        assert_eq!(
            read_local_ack(ack("AA", "MSG1").as_bytes(), Some("MSG1")),
            LocalAnswer::Accepted("AA")
        );
        assert_eq!(
            read_local_ack(ack("CA", "MSG1").as_bytes(), None),
            LocalAnswer::Accepted("CA")
        );
        assert_eq!(
            read_local_ack(ack("AE", "MSG1").as_bytes(), Some("MSG1")),
            LocalAnswer::Refused("AE")
        );
        assert_eq!(
            read_local_ack(ack("AR", "MSG1").as_bytes(), Some("MSG1")),
            LocalAnswer::Refused("AR")
        );
        assert_eq!(
            read_local_ack(ack("AA", "OTHER").as_bytes(), Some("MSG1")),
            LocalAnswer::Unusable
        );
        assert_eq!(read_local_ack(b"garbage", None), LocalAnswer::Unusable);
    }
}

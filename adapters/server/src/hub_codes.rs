//! The hub's response codes (`lhcie_model::hub_response`, system
//! `HUB_RESPONSE_CODE_SYSTEM`) and the wire's reject reasons, both ways:
//! a rejection answered on the uplink carries the enum, a rejection that
//! comes back as an acknowledgement (over AMQP) carries the code.

use lhcie_model::hub_response;
use lhcie_proto::hub::RejectReason;

/// Every reason with its code.
const CODES: [(RejectReason, &str); 6] = [
    (
        RejectReason::InvalidEnvelope,
        hub_response::INVALID_ENVELOPE,
    ),
    (
        RejectReason::UnknownRecipient,
        hub_response::UNKNOWN_RECIPIENT,
    ),
    (
        RejectReason::UnknownCategory,
        hub_response::UNKNOWN_CATEGORY,
    ),
    (
        RejectReason::InvalidNhsNumber,
        hub_response::INVALID_NHS_NUMBER,
    ),
    (
        RejectReason::SenderNotAuthorised,
        hub_response::SENDER_NOT_AUTHORISED,
    ),
    (RejectReason::TooLarge, hub_response::TOO_LARGE),
];

/// The reject reason a hub response code names, if it names one.
pub fn reject_reason(code: &str) -> Option<RejectReason> {
    CODES.iter().find(|(_, c)| *c == code).map(|(r, _)| *r)
}

/// The hub response code of a reject reason (`None` for an unspecified
/// one).
pub fn code_of(reason: RejectReason) -> Option<&'static str> {
    CODES.iter().find(|(r, _)| *r == reason).map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_one_code_and_back() {
        for (reason, code) in CODES {
            assert_eq!(reject_reason(code), Some(reason));
            assert_eq!(code_of(reason), Some(code));
        }
        assert_eq!(reject_reason(hub_response::NOT_PERMITTED), None);
        assert_eq!(code_of(RejectReason::Unspecified), None);
    }
}

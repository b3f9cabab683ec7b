//! What an acknowledgement from an exchange must be before the hub routes
//! it. Acknowledgements travel without an agreement or a consent decision
//! (they say that a message arrived or what was done with it), so the hub
//! makes sure that is all they are: the canonical model already refuses one
//! that carries a patient, an original payload or a long text
//! (`Envelope::validate`); here, an acknowledgement must answer a message
//! the hub routed *to* the acknowledging organisation, and go back to that
//! message's sender. Otherwise an exchange could send any organisation
//! free text, or tell another exchange's system that its message failed.

use lhcie_model::{Body, Category, Envelope, ExchangeId, HUB_RESPONSE_CODE_SYSTEM};

use crate::audit::{AuditOutcome, AuditRecord};
use crate::routing::{RejectReason, Rejection};

/// Checks an acknowledgement submitted by `submitter` against the hub's
/// audit records of the message it refers to (`answered`: every record
/// with that message id). `None` if it may be routed, or if `envelope` is
/// not an acknowledgement.
pub fn check_acknowledgement(
    envelope: &Envelope,
    submitter: &ExchangeId,
    answered: &[AuditRecord],
) -> Option<Rejection> {
    let Body::Acknowledgement(ack) = &envelope.body else {
        return None;
    };
    if ack
        .code
        .as_ref()
        .is_some_and(|code| code.system == HUB_RESPONSE_CODE_SYSTEM)
    {
        return Some(refused(format!(
            "acknowledgement.code.system: {HUB_RESPONSE_CODE_SYSTEM} is the hub's own; an exchange may not use it"
        )));
    }
    if envelope.addressing.rule.is_some() {
        return Some(refused(
            "addressing.rule: an acknowledgement is addressed to the sender of the message it answers, not by rule",
        ));
    }
    let refers_to = ack.refers_to.as_str();
    if answered.is_empty() {
        return Some(refused(format!(
            "acknowledgement.refers_to: {refers_to} is not a message this hub routed"
        )));
    }
    if answered
        .iter()
        .any(|record| answers(envelope, submitter, record))
    {
        return None;
    }
    Some(refused(format!(
        "acknowledgement.refers_to: {refers_to} was not sent to {} by the organisations this acknowledgement is addressed to; an acknowledgement goes back to the sender of the message it answers",
        envelope.sender.ods_code
    )))
}

/// Whether `record` is of a message (not itself an acknowledgement) sent by
/// every organisation the acknowledgement is addressed to, to the
/// acknowledging organisation through the submitting exchange.
fn answers(envelope: &Envelope, submitter: &ExchangeId, record: &AuditRecord) -> bool {
    let AuditOutcome::Routed { recipients } = &record.outcome else {
        return false;
    };
    let Some(original_sender) = record.sender.as_deref() else {
        return false;
    };
    let acknowledger = envelope.sender.ods_code.as_str();
    record.category != Some(Category::Acknowledgement)
        && recipients
            .iter()
            .any(|r| r.recipient == acknowledger && r.exchange == submitter.as_str())
        && envelope
            .addressing
            .recipients
            .iter()
            .all(|r| r.ods_code.as_str() == original_sender)
}

fn refused(detail: impl Into<String>) -> Rejection {
    Rejection::new(RejectReason::InvalidEnvelope, detail)
}

#[cfg(test)]
mod tests {
    use lhcie_model::{Coding, ExchangeId, examples};
    use time::macros::datetime;

    use super::*;
    use crate::audit::{AuditRecipient, Ingress};

    fn ex(id: &str) -> ExchangeId {
        ExchangeId::parse(id).unwrap()
    }

    /// The example acknowledgement: the Royal Free (RAL, ncl-royal-free)
    /// answers Imperial's (RYJ) discharge summary.
    fn ack() -> Envelope {
        let mut ack = examples::acknowledgement();
        ack.sender.exchange_id = ex("ncl-royal-free");
        ack
    }

    /// The audit record of the discharge summary the example answers, sent
    /// by `sender` to `recipient` served by `exchange`.
    fn routed(sender: &str, recipient: &str, exchange: &str) -> AuditRecord {
        let summary = examples::discharge_summary();
        AuditRecord {
            message_id: summary.message_id.to_string(),
            decided_at: datetime!(2026-11-20 14:30:00 UTC),
            submitted_by: "nwl-imperial".into(),
            ingress: Ingress::Grpc,
            sender: Some(sender.into()),
            category: Some(summary.category),
            purpose: Some(summary.purpose),
            nhs_number: None,
            outcome: AuditOutcome::Routed {
                recipients: vec![AuditRecipient {
                    recipient: recipient.into(),
                    exchange: exchange.into(),
                    decision: "forwarded".into(),
                    reason: "implied-consent".into(),
                    isa: None,
                    directives: vec![],
                    obligations: vec![],
                    registry_revision: None,
                }],
            },
        }
    }

    fn detail(rejection: Option<Rejection>) -> String {
        rejection.expect("refused").detail
    }

    #[test]
    fn an_answer_to_a_message_routed_the_other_way_passes() {
        let record = routed("RYJ", "RAL", "ncl-royal-free");
        assert_eq!(
            check_acknowledgement(&ack(), &ex("ncl-royal-free"), &[record]),
            None
        );
    }

    #[test]
    fn an_answer_to_an_unknown_message_is_refused() {
        let refused = detail(check_acknowledgement(&ack(), &ex("ncl-royal-free"), &[]));
        assert!(
            refused.contains("is not a message this hub routed"),
            "{refused}"
        );
    }

    #[test]
    fn an_answer_in_the_wrong_direction_is_refused() {
        // The message went from the Royal Free to Imperial: the Royal Free
        // cannot acknowledge its own message to Imperial.
        let backwards = routed("RAL", "RYJ", "nwl-imperial");
        let refused = detail(check_acknowledgement(
            &ack(),
            &ex("ncl-royal-free"),
            &[backwards],
        ));
        assert!(refused.contains("goes back to the sender"), "{refused}");
        // Sent to another organisation, or through another exchange.
        for record in [
            routed("RYJ", "RKE", "ncl-whittington"),
            routed("RYJ", "RAL", "ncl-whittington"),
        ] {
            assert!(check_acknowledgement(&ack(), &ex("ncl-royal-free"), &[record]).is_some());
        }
        // Addressed to someone other than the message's sender.
        let mut elsewhere = ack();
        elsewhere.addressing.recipients[0].ods_code = lhcie_model::OdsCode::parse("RKE").unwrap();
        let record = routed("RYJ", "RAL", "ncl-royal-free");
        assert!(check_acknowledgement(&elsewhere, &ex("ncl-royal-free"), &[record]).is_some());
    }

    #[test]
    fn an_acknowledgement_of_an_acknowledgement_is_refused() {
        let mut record = routed("RYJ", "RAL", "ncl-royal-free");
        record.category = Some(Category::Acknowledgement);
        assert!(check_acknowledgement(&ack(), &ex("ncl-royal-free"), &[record]).is_some());
    }

    #[test]
    fn the_hubs_own_code_system_is_refused_from_an_exchange() {
        let mut forged = ack();
        if let Body::Acknowledgement(a) = &mut forged.body {
            a.code = Some(Coding {
                system: HUB_RESPONSE_CODE_SYSTEM.into(),
                code: "not-permitted".into(),
                display: None,
            });
        }
        let record = routed("RYJ", "RAL", "ncl-royal-free");
        let refused = detail(check_acknowledgement(
            &forged,
            &ex("ncl-royal-free"),
            &[record],
        ));
        assert!(refused.contains("the hub's own"), "{refused}");
    }

    #[test]
    fn other_envelopes_are_not_its_business() {
        let summary = examples::discharge_summary();
        assert_eq!(
            check_acknowledgement(&summary, &ex("nwl-imperial"), &[]),
            None
        );
    }
}

//! The names of everything the hub declares on the broker.
//!
//! With prefix `lhcie` (the default):
//!
//! | name | what |
//! |---|---|
//! | `lhcie.ingress` | fanout exchange adapters publish envelopes to |
//! | `lhcie.ingress` | quorum queue the hub consumes (bound to the exchange above) |
//! | `lhcie.egress` | direct exchange the hub publishes to, routing key = exchange id |
//! | `lhcie.egress.<exchange-id>` | quorum queue of one exchange's deliveries |
//! | `lhcie.dlx.<destination>` | fanout dead-letter exchange of one destination (`ingress` or an exchange id) |
//! | `lhcie.dlq.<destination>` | quorum queue holding that destination's dead letters |
//! | `lhcie.patient-notifications` | fanout exchange the hub publishes patient notifications to (an emergency override of the patient's refusal) |
//! | `lhcie.patient-notifications` | quorum queue the patient-notification service consumes (bound to the exchange above) |

use lhcie_model::ExchangeId;

/// Derives names from a prefix. Exchange ids contain only lower-case
/// letters, digits and hyphens, so names never collide across
/// destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

/// Where dead letters come from: the ingress queue, or one exchange's egress
/// queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The hub's ingress queue.
    Ingress,
    /// One local exchange's egress queue.
    Exchange(ExchangeId),
}

impl Destination {
    fn suffix(&self) -> &str {
        match self {
            Destination::Ingress => "ingress",
            Destination::Exchange(id) => id.as_str(),
        }
    }
}

impl Names {
    /// Names under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The fanout exchange adapters publish envelopes to.
    pub fn ingress_exchange(&self) -> String {
        format!("{}.ingress", self.prefix)
    }

    /// The quorum queue the hub consumes envelopes from.
    pub fn ingress_queue(&self) -> String {
        format!("{}.ingress", self.prefix)
    }

    /// The direct exchange the hub publishes deliveries to.
    pub fn egress_exchange(&self) -> String {
        format!("{}.egress", self.prefix)
    }

    /// The quorum queue of one exchange's deliveries.
    pub fn egress_queue(&self, exchange: &ExchangeId) -> String {
        format!("{}.egress.{exchange}", self.prefix)
    }

    /// The routing key on the egress exchange for one exchange.
    pub fn egress_routing_key(&self, exchange: &ExchangeId) -> String {
        exchange.to_string()
    }

    /// The dead-letter exchange of a destination.
    pub fn dead_letter_exchange(&self, destination: &Destination) -> String {
        format!("{}.dlx.{}", self.prefix, destination.suffix())
    }

    /// The fanout exchange the hub publishes patient notifications to.
    pub fn patient_notifications_exchange(&self) -> String {
        format!("{}.patient-notifications", self.prefix)
    }

    /// The quorum queue of patient notifications, for the
    /// patient-notification service; no adapter may read it.
    pub fn patient_notifications_queue(&self) -> String {
        format!("{}.patient-notifications", self.prefix)
    }

    /// The broker user of an exchange's adapter: `<prefix>-<exchange-id>`.
    /// The hub identifies AMQP submitters by this name, from the
    /// broker-validated `user-id` property.
    pub fn adapter_user(&self, exchange: &ExchangeId) -> String {
        format!("{}-{exchange}", self.prefix)
    }

    /// The exchange whose adapter uses broker user `user`, if the name has
    /// the adapter form.
    pub fn exchange_of_user(&self, user: &str) -> Option<ExchangeId> {
        let id = user.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        ExchangeId::parse(id).ok()
    }

    /// The queue holding a destination's dead letters.
    pub fn dead_letter_queue(&self, destination: &Destination) -> String {
        format!("{}.dlq.{}", self.prefix, destination.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_per_destination() {
        let names = Names::new("lhcie");
        let id = ExchangeId::parse("nwl-imperial").unwrap();
        assert_eq!(names.ingress_queue(), "lhcie.ingress");
        assert_eq!(names.egress_queue(&id), "lhcie.egress.nwl-imperial");
        assert_eq!(
            names.dead_letter_exchange(&Destination::Exchange(id.clone())),
            "lhcie.dlx.nwl-imperial"
        );
        assert_eq!(
            names.dead_letter_queue(&Destination::Ingress),
            "lhcie.dlq.ingress"
        );
        assert_eq!(
            names.patient_notifications_queue(),
            "lhcie.patient-notifications"
        );
        // No exchange id can be "ingress"'s twin: ids have no dots, and the
        // egress queues live under ".egress.".
        assert_ne!(names.egress_queue(&id), names.ingress_queue());
    }

    #[test]
    fn adapter_users_map_back_to_their_exchange() {
        let names = Names::new("lhcie");
        let id = ExchangeId::parse("nwl-imperial").unwrap();
        assert_eq!(names.adapter_user(&id), "lhcie-nwl-imperial");
        assert_eq!(names.exchange_of_user("lhcie-nwl-imperial"), Some(id));
        assert_eq!(names.exchange_of_user("guest"), None);
        assert_eq!(names.exchange_of_user("lhcie"), None);
        assert_eq!(names.exchange_of_user("lhcienwl-imperial"), None);
        assert_eq!(names.exchange_of_user("other-nwl-imperial"), None);
    }
}

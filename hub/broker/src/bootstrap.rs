//! Declares the broker topology the hub and adapters use: durable quorum
//! queues, a dead-letter exchange and queue per destination, a delivery
//! limit for poison messages, and the patient notifications' exchange and
//! queue.
//!
//! Declaring is idempotent: the broker accepts a declaration identical to
//! what exists and changes nothing. A declaration that differs from what
//! exists (say, a classic queue of the same name, or another delivery limit)
//! is refused by the broker and reported as [`BrokerError::Conflict`];
//! nothing is deleted or recreated behind the operator's back.
//!
//! The plan ([`BrokerTopology::declarations`]) is plain data, so it can be
//! shown and tested without a broker.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use lhcie_config::{BrokerConfig, Topology};
use lhcie_model::ExchangeId;

use crate::error::precondition_failed;
use crate::{BrokerError, Destination, Names};

/// Everything to declare for a set of local exchanges.
#[derive(Debug, Clone)]
pub struct BrokerTopology {
    names: Names,
    exchanges: Vec<ExchangeId>,
    delivery_limit: u32,
}

/// One thing to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declaration {
    /// A durable exchange.
    Exchange {
        /// Its name.
        name: String,
        /// `fanout` or `direct`.
        fanout: bool,
    },
    /// A durable quorum queue.
    Queue {
        /// Its name.
        name: String,
        /// Where its rejected and poison messages go (`None` for dead-letter
        /// queues themselves, which keep what they hold until an operator
        /// replays or discards it).
        dead_letter_exchange: Option<String>,
    },
    /// A binding of a queue to an exchange.
    Binding {
        /// The queue.
        queue: String,
        /// The exchange.
        exchange: String,
        /// The routing key (ignored by fanout exchanges).
        routing_key: String,
    },
}

impl BrokerTopology {
    /// The topology for these exchanges, named under `names`.
    pub fn new(
        names: Names,
        exchanges: impl IntoIterator<Item = ExchangeId>,
        delivery_limit: u32,
    ) -> Self {
        Self {
            names,
            exchanges: exchanges.into_iter().collect(),
            delivery_limit,
        }
    }

    /// The topology for every exchange of a validated configuration.
    pub fn from_config(broker: &BrokerConfig, topology: &Topology) -> Self {
        Self::new(
            Names::new(&broker.prefix),
            topology.exchanges().iter().map(|e| e.id.clone()),
            broker.delivery_limit,
        )
    }

    /// The names used.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The delivery limit of the ingress and egress queues.
    pub fn delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    /// Everything to declare, in an order the broker accepts (exchanges
    /// before the queues that dead-letter to them, queues before bindings).
    pub fn declarations(&self) -> Vec<Declaration> {
        let names = &self.names;
        let mut plan = Vec::new();
        let destination = |plan: &mut Vec<Declaration>, dest: Destination, queue: String| {
            let dlx = names.dead_letter_exchange(&dest);
            let dlq = names.dead_letter_queue(&dest);
            plan.push(Declaration::Exchange {
                name: dlx.clone(),
                fanout: true,
            });
            plan.push(Declaration::Queue {
                name: dlq.clone(),
                dead_letter_exchange: None,
            });
            plan.push(Declaration::Binding {
                queue: dlq,
                exchange: dlx.clone(),
                routing_key: String::new(),
            });
            plan.push(Declaration::Queue {
                name: queue,
                dead_letter_exchange: Some(dlx),
            });
        };
        plan.push(Declaration::Exchange {
            name: names.ingress_exchange(),
            fanout: true,
        });
        destination(&mut plan, Destination::Ingress, names.ingress_queue());
        plan.push(Declaration::Binding {
            queue: names.ingress_queue(),
            exchange: names.ingress_exchange(),
            routing_key: String::new(),
        });
        plan.push(Declaration::Exchange {
            name: names.egress_exchange(),
            fanout: false,
        });
        for exchange in &self.exchanges {
            let queue = names.egress_queue(exchange);
            destination(
                &mut plan,
                Destination::Exchange(exchange.clone()),
                queue.clone(),
            );
            plan.push(Declaration::Binding {
                queue,
                exchange: names.egress_exchange(),
                routing_key: names.egress_routing_key(exchange),
            });
        }
        plan.extend(self.patient_notifications());
        plan
    }

    /// The patient notifications' exchange and queue. The queue does not
    /// dead-letter: like a dead-letter queue it keeps what it holds until
    /// its consumer (the patient-notification service) acknowledges it.
    fn patient_notifications(&self) -> [Declaration; 3] {
        let exchange = self.names.patient_notifications_exchange();
        let queue = self.names.patient_notifications_queue();
        [
            Declaration::Exchange {
                name: exchange.clone(),
                fanout: true,
            },
            Declaration::Queue {
                name: queue.clone(),
                dead_letter_exchange: None,
            },
            Declaration::Binding {
                queue,
                exchange,
                routing_key: String::new(),
            },
        ]
    }

    /// The arguments of a quorum queue: dead-lettering at least once (a dead
    /// letter is not lost if the dead-letter queue is briefly unavailable),
    /// which RabbitMQ allows only with `reject-publish` overflow; and, for
    /// queues that dead-letter, the delivery limit for poison messages.
    pub fn queue_arguments(&self, dead_letter_exchange: Option<&str>) -> FieldTable {
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        if let Some(dlx) = dead_letter_exchange {
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.into()),
            );
            arguments.insert(
                "x-dead-letter-strategy".into(),
                AMQPValue::LongString("at-least-once".into()),
            );
            arguments.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
            );
        }
        arguments
    }

    /// Declares everything on the broker through `channel`. Running it again
    /// changes nothing. Returns what was declared.
    pub async fn declare(&self, channel: &Channel) -> Result<Vec<Declaration>, BrokerError> {
        let plan = self.declarations();
        for declaration in &plan {
            self.declare_one(channel, declaration).await?;
        }
        tracing::info!(
            prefix = self.names.prefix(),
            exchanges = self.exchanges.len(),
            declarations = plan.len(),
            "broker topology declared"
        );
        Ok(plan)
    }

    async fn declare_one(
        &self,
        channel: &Channel,
        declaration: &Declaration,
    ) -> Result<(), BrokerError> {
        match declaration {
            Declaration::Exchange { name, fanout } => {
                let kind = if *fanout {
                    ExchangeKind::Fanout
                } else {
                    ExchangeKind::Direct
                };
                let options = ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .exchange_declare(short(name), kind, options, FieldTable::default())
                    .await
                    .map_err(|e| classify(e, "exchange", name))
            }
            Declaration::Queue {
                name,
                dead_letter_exchange,
            } => {
                let options = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .queue_declare(
                        short(name),
                        options,
                        self.queue_arguments(dead_letter_exchange.as_deref()),
                    )
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, "queue", name))
            }
            Declaration::Binding {
                queue,
                exchange,
                routing_key,
            } => channel
                .queue_bind(
                    short(queue),
                    short(exchange),
                    short(routing_key),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BrokerError::Operation {
                    operation: format!("binding queue {queue} to exchange {exchange}"),
                    source,
                }),
        }
    }
}

fn short(text: &str) -> ShortString {
    text.into()
}

fn classify(error: lapin::Error, kind: &'static str, name: &str) -> BrokerError {
    match precondition_failed(&error) {
        Some(detail) => BrokerError::Conflict {
            kind,
            name: name.to_owned(),
            detail,
        },
        None => BrokerError::Operation {
            operation: format!("declaring {kind} {name}"),
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> BrokerTopology {
        BrokerTopology::new(
            Names::new("lhcie"),
            ["nwl-imperial", "ncl-royal-free"].map(|id| ExchangeId::parse(id).unwrap()),
            5,
        )
    }

    #[test]
    fn every_data_queue_dead_letters_to_its_own_exchange() {
        let plan = topology().declarations();
        let queues: Vec<(&str, Option<&str>)> = plan
            .iter()
            .filter_map(|d| match d {
                Declaration::Queue {
                    name,
                    dead_letter_exchange,
                } => Some((name.as_str(), dead_letter_exchange.as_deref())),
                _ => None,
            })
            .collect();
        assert_eq!(
            queues,
            [
                ("lhcie.dlq.ingress", None),
                ("lhcie.ingress", Some("lhcie.dlx.ingress")),
                ("lhcie.dlq.nwl-imperial", None),
                ("lhcie.egress.nwl-imperial", Some("lhcie.dlx.nwl-imperial")),
                ("lhcie.dlq.ncl-royal-free", None),
                (
                    "lhcie.egress.ncl-royal-free",
                    Some("lhcie.dlx.ncl-royal-free")
                ),
                ("lhcie.patient-notifications", None),
            ]
        );
    }

    #[test]
    fn exchanges_come_before_what_uses_them() {
        let plan = topology().declarations();
        let position = |wanted: &Declaration| plan.iter().position(|d| d == wanted).unwrap();
        for (i, declaration) in plan.iter().enumerate() {
            let needs: Vec<&String> = match declaration {
                Declaration::Queue {
                    dead_letter_exchange: Some(dlx),
                    ..
                } => vec![dlx],
                Declaration::Binding { exchange, .. } => vec![exchange],
                _ => vec![],
            };
            for exchange in needs {
                let at = position(&Declaration::Exchange {
                    name: exchange.clone(),
                    fanout: exchange.contains(".dlx.")
                        || exchange.ends_with(".ingress")
                        || exchange.ends_with(".patient-notifications"),
                });
                assert!(at < i, "{exchange} declared after its use at {i}");
            }
        }
    }

    #[test]
    fn quorum_arguments() {
        let topology = topology();
        let with_dlx = topology.queue_arguments(Some("lhcie.dlx.x"));
        let map = with_dlx.inner();
        assert_eq!(
            map.get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        assert_eq!(
            map.get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(5))
        );
        assert_eq!(
            map.get("x-dead-letter-strategy"),
            Some(&AMQPValue::LongString("at-least-once".into()))
        );
        let plain = topology.queue_arguments(None);
        assert_eq!(plain.inner().len(), 1);
    }
}

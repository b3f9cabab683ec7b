//! The adapter kit's durable outbox across a hub outage: with the hub
//! stopped the local system keeps handing envelopes over (each on disk
//! before it is acknowledged); once the hub is back every envelope is
//! accepted exactly once and delivered once to the recipient's egress
//! queue.

use std::collections::HashMap;
use std::time::Duration;

use lhcie_adapter_kit::outbox::Outcome;
use lhcie_adapter_kit::{Outbox, Uplink};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary};
use lhcie_model::ExchangeId;
use lhcie_proto::hub as hubpb;
use tokio_util::sync::CancellationToken;

const COUNT: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_duplicated_when_the_hub_is_down() {
    with_env(TestEnv::new("outbox"), |env| async move {
        // The hub declares the broker topology, then stops.
        let mut hub = HubProcess::start(&env).await;
        hub.terminate();

        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let shutdown = CancellationToken::new();
        let (uplink, answers) = Uplink::start(env.connection("nwl-imperial"), 16, shutdown.clone());
        let forwarder = {
            let outbox = outbox.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { outbox.forward(uplink, answers, shutdown).await })
        };
        let mut answered = outbox.subscribe();

        let envelopes: Vec<_> = (0..COUNT)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        for envelope in envelopes {
            let ticket = tokio::time::timeout(Duration::from_secs(5), outbox.put(envelope))
                .await
                .expect("put does not wait for the hub")
                .unwrap();
            assert!(!ticket.duplicate);
        }
        // The local system may resend after a lost acknowledgement.
        let resent = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let resent = lhcie_proto::canonical::Envelope {
            message_id: ids[7].clone(),
            ..resent
        };
        assert!(outbox.put(resent).await.unwrap().duplicate);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            outbox.pending_len(),
            COUNT as u64,
            "nothing answered while the hub is down"
        );

        let _hub = HubProcess::start(&env).await;
        let mut answers: HashMap<String, Vec<Outcome>> = HashMap::new();
        tokio::time::timeout(Duration::from_secs(60), async {
            while answers.len() < COUNT {
                let answer = answered.recv().await.expect("answers");
                answers
                    .entry(answer.message_id)
                    .or_default()
                    .push(answer.outcome);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {COUNT} answered", answers.len()));
        assert_eq!(outbox.pending_len(), 0);
        assert!(outbox.rejected().unwrap().is_empty());
        for id in &ids {
            let outcomes = &answers[id];
            assert_eq!(outcomes.len(), 1, "{id} answered once");
            let Outcome::Accepted(accepted) = &outcomes[0] else {
                panic!("{id} not accepted: {:?}", outcomes[0]);
            };
            assert!(
                !accepted.duplicate,
                "{id} routed the first time it reached the hub"
            );
            assert_eq!(accepted.recipients.len(), 1);
            assert_eq!(
                accepted.recipients[0].disposition,
                hubpb::Disposition::Forwarded as i32
            );
        }

        shutdown.cancel();
        let report = forwarder.await.expect("forwarder").expect("outbox");
        assert_eq!(report.accepted, COUNT as u64);
        assert_eq!(report.rejected, 0);

        let queue = env
            .names()
            .egress_queue(&ExchangeId::parse("ncl-royal-free").unwrap());
        let copies = traffic::drain(&env, &queue).await;
        let mut delivered: HashMap<String, usize> = HashMap::new();
        for (envelope, _) in &copies {
            *delivered.entry(envelope.message_id.clone()).or_default() += 1;
        }
        assert_eq!(copies.len(), COUNT, "one copy each in the egress queue");
        for id in &ids {
            assert_eq!(delivered.get(id), Some(&1), "{id} delivered once");
        }
    })
    .await;
}

//! The MLLP listener's limits (`[hl7v2.limits]`) and what the adapter
//! says when one is reached.
//!
//! - [`listener_config`]: the configured limits as the listener's settings.
//! - [`Guarded`] wraps the inbound handler: a frame over `max_frame_bytes`
//!   is answered with [`too_large_ack`] (then the listener closes the
//!   connection), counted in `lhcie_adapter_mllp_frames_too_large_total`
//!   and as a `refused` answer; a connection refused because its peer
//!   address has `max_connections_per_peer` already is counted in
//!   `lhcie_adapter_mllp_connections_refused_total` (the listener logs it:
//!   address and limit, nothing else).
//!
//! **The answer to a frame too large.** `AR` (the message is not processed
//! and the same bytes will never be accepted: a sending engine must not
//! resend it unchanged), addressed from the frame's MSH when its first
//! segment could be read (sending and receiving application and facility
//! swapped, MSA-2 its MSH-10), otherwise a minimal ACK with what can be
//! salvaged (as for an unparseable message). MSA-3 and ERR-8 say, in
//! words, that the message is too large and what the maximum is. HL7 table
//! 0357 has no code for it (207, "application internal error", would read
//! as a transient fault on our side), so ERR-1.4 and ERR-3 carry the local
//! code `MSGTOOLARGE` of table `99LHCIE`; ERR-4 is `E`. Nothing but the
//! MSH is read: the rest of the frame is discarded unread.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use lhcie_config::MllpLimits;
use lhcie_hl7v2::{
    AckCode, Component, Field, Message, Repetition, Segment, build_ack, build_ack_for_unparseable,
    parse_message,
};
use lhcie_mllp::{Handler, ListenerConfig, PeerInfo, Refusal};
use time::OffsetDateTime;

use crate::ops::metrics::{MLLP_CONNECTIONS_REFUSED, MLLP_FRAMES_TOO_LARGE};
use crate::ops::{Ops, Received};

/// The local code (ERR-3.1) of a frame over the maximum.
pub const TOO_LARGE_CODE: &str = "MSGTOOLARGE";
/// The local table of [`TOO_LARGE_CODE`] (ERR-3.3).
pub const LOCAL_TABLE: &str = "99LHCIE";

/// The listener's settings from `[hl7v2.limits]`.
pub fn listener_config(limits: &MllpLimits) -> ListenerConfig {
    use std::time::Duration;
    ListenerConfig {
        max_connections: limits.max_connections,
        max_connections_per_peer: limits.max_connections_per_peer,
        first_byte_timeout: Duration::from_millis(limits.first_byte_timeout_ms),
        idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
        byte_timeout: Duration::from_millis(limits.byte_timeout_ms),
        frame_timeout: Duration::from_millis(limits.frame_timeout_ms),
        max_frame_len: limits.max_frame_bytes,
        ..ListenerConfig::default()
    }
}

/// The inbound handler `H` with the adapter's answers and counts for the
/// listener's limits.
pub struct Guarded<H> {
    inner: H,
    ops: Ops,
    refused: ::metrics::Counter,
    too_large: ::metrics::Counter,
}

impl<H> Guarded<H> {
    /// Wraps `inner`, counting for the adapter of `ops` (the counters
    /// appear at zero).
    pub fn new(inner: H, ops: Ops) -> Self {
        let exchange = ops.exchange().to_owned();
        let refused = ::metrics::counter!(MLLP_CONNECTIONS_REFUSED,
            "exchange" => exchange.clone(), "reason" => Refusal::PerPeerLimit.as_str());
        let too_large = ::metrics::counter!(MLLP_FRAMES_TOO_LARGE, "exchange" => exchange);
        refused.increment(0);
        too_large.increment(0);
        Self {
            inner,
            ops,
            refused,
            too_large,
        }
    }
}

impl<H: Handler> Handler for Guarded<H> {
    fn handle(
        &self,
        message: Bytes,
        peer: PeerInfo,
    ) -> impl std::future::Future<Output = Bytes> + Send {
        self.inner.handle(message, peer)
    }

    async fn too_large(&self, head: Bytes, max_frame_len: usize, peer: PeerInfo) -> Option<Bytes> {
        let started = Instant::now();
        let ack = too_large_ack(
            &head,
            max_frame_len,
            &control_id(),
            OffsetDateTime::now_utc(),
        );
        tracing::info!(
            connection = peer.connection_id,
            max_frame_bytes = max_frame_len,
            msh_read = !head.is_empty(),
            "HL7 v2 message over the maximum frame size: AR; nothing stored or forwarded"
        );
        self.too_large.increment(1);
        self.ops
            .answered(started, Received::Refused, None, "AR", TOO_LARGE_CODE);
        Some(Bytes::from(ack.render()))
    }

    fn connection_refused(&self, _remote_addr: SocketAddr, reason: Refusal) {
        if reason == Refusal::PerPeerLimit {
            self.refused.increment(1);
        }
    }
}

/// The `AR` for a frame over `max_frame_bytes` whose first segment is
/// `head` (see the module docs).
pub fn too_large_ack(
    head: &[u8],
    max_frame_bytes: usize,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    let base = match parse_message(head) {
        Ok(msh) => build_ack(&msh, AckCode::Reject, &[], control_id, now),
        Err(_) => build_ack_for_unparseable(head, None, control_id, now),
    };
    let text = format!("Message too large: the maximum is {max_frame_bytes} bytes");
    let msh = base.msh().clone();
    let msa2 = base
        .segment("MSA")
        .and_then(|msa| msa.field(2).cloned())
        .unwrap_or_else(|| Field::from_value(""));
    let msa = segment(
        "MSA",
        vec![
            Field::from_value(AckCode::Reject.as_str()),
            msa2,
            Field::from_value(text.clone()),
        ],
    );
    let code = || {
        Component::new(vec![
            TOO_LARGE_CODE.to_owned(),
            "Message too large".to_owned(),
            LOCAL_TABLE.to_owned(),
        ])
    };
    let eld = Field::new(vec![Repetition::new(vec![
        Component::from_value(""),
        Component::from_value(""),
        Component::from_value(""),
        code(),
    ])]);
    let cwe = Field::new(vec![Repetition::new(
        [TOO_LARGE_CODE, "Message too large", LOCAL_TABLE]
            .into_iter()
            .map(Component::from_value)
            .collect(),
    )]);
    let empty = || Field::from_value("");
    let err = segment(
        "ERR",
        vec![
            eld,
            empty(),
            cwe,
            Field::from_value("E"),
            empty(),
            empty(),
            empty(),
            Field::from_value(text),
        ],
    );
    Message::new(*base.delimiters(), vec![msh, msa, err]).unwrap_or(base)
}

fn segment(id: &str, fields: Vec<Field>) -> Segment {
    Segment::new(id, fields).unwrap_or_else(|_| unreachable!("constant segment id {id}"))
}

/// A fresh MSH-10 for an ACK: 20 characters (the limit before v2.5).
fn control_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("A{}", &id[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_268_800).unwrap()
    }

    fn lines(ack: &Message) -> Vec<String> {
        String::from_utf8(ack.render())
            .unwrap()
            .split('\r')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn addressed_from_the_msh_when_it_can_be_read() {
        let head = b"MSH|^~\\&|PAS|RYJ|EPR|RAL|202601011200||MDM^T02^MDM_T02|BIG0001|P|2.4";
        let ack = too_large_ack(head, 4_194_304, "A1", now());
        let lines = lines(&ack);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("MSH|^~\\&|EPR|RAL|PAS|RYJ|"),
            "{lines:?}"
        );
        assert!(lines[0].contains("|ACK^T02^ACK|A1|P|2.4"), "{lines:?}");
        assert_eq!(
            lines[1],
            "MSA|AR|BIG0001|Message too large: the maximum is 4194304 bytes"
        );
        assert_eq!(
            lines[2],
            "ERR|^^^MSGTOOLARGE&Message too large&99LHCIE||MSGTOOLARGE^Message too large^99LHCIE|E||||Message too large: the maximum is 4194304 bytes"
        );
    }

    #[test]
    fn a_minimal_ack_when_the_msh_cannot_be_read() {
        for head in [&b""[..], b"not HL7 at all"] {
            let ack = too_large_ack(head, 1024, "A2", now());
            let lines = lines(&ack);
            assert!(lines[0].starts_with("MSH|^~\\&|"), "{lines:?}");
            assert!(lines[0].contains("|ACK|A2|P|"), "{lines:?}");
            assert_eq!(
                lines[1],
                "MSA|AR||Message too large: the maximum is 1024 bytes"
            );
            assert!(lines[2].contains("|MSGTOOLARGE^"), "{lines:?}");
        }
    }

    #[test]
    fn the_limits_reach_the_listener() {
        let limits = MllpLimits {
            max_frame_bytes: 2048,
            max_connections: 10,
            max_connections_per_peer: Some(3),
            first_byte_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            byte_timeout_ms: 2_000,
            frame_timeout_ms: 20_000,
        };
        let config = listener_config(&limits);
        assert_eq!(config.max_frame_len, 2048);
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.max_connections_per_peer, Some(3));
        assert_eq!(config.first_byte_timeout.as_millis(), 5_000);
        assert_eq!(config.idle_timeout.as_millis(), 60_000);
        assert_eq!(config.byte_timeout.as_millis(), 2_000);
        assert_eq!(config.frame_timeout.as_millis(), 20_000);
        let defaults = listener_config(&MllpLimits::default());
        let listener = ListenerConfig::default();
        assert_eq!(defaults.max_frame_len, listener.max_frame_len);
        assert_eq!(defaults.max_connections, listener.max_connections);
        assert_eq!(defaults.idle_timeout, listener.idle_timeout);
        assert_eq!(defaults.frame_timeout, listener.frame_timeout);
        assert_eq!(defaults.byte_timeout, listener.byte_timeout);
        assert_eq!(defaults.first_byte_timeout, listener.first_byte_timeout);
    }
}

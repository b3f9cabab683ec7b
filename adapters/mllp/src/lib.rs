//! MLLP (Minimal Lower Layer Protocol) transport for HL7 v2.
//!
//! HL7 v2 messages travel over TCP in MLLP frames: `0x0B`, the message,
//! `0x1C 0x0D`. This crate has three parts:
//!
//! - [`codec`]: [`MllpCodec`], a `tokio_util` codec that frames and unframes
//!   messages, tolerant of the usual deviations (missing trailing CR, stray
//!   bytes between frames) and bounded in frame size;
//! - [`listener`]: [`MllpListener`], a server that reads frames on many
//!   concurrent connections and answers each with the acknowledgement its
//!   [`Handler`] returns, in order, with first-byte, idle, between-byte and
//!   slow-client timeouts, a connection limit in total and per peer address,
//!   a negative acknowledgement for an oversized frame, and graceful
//!   shutdown;
//! - [`sender`]: [`MllpSender`], a client delivering messages one at a time
//!   over one reused connection and waiting for each acknowledgement, with
//!   bounded reconnection.
//!
//! The crate only moves bytes: it neither parses HL7 nor builds
//! acknowledgements (that is `lhcie-hl7v2`'s job), and it never logs message
//! content, which is patient data.

pub mod codec;
pub mod listener;
pub mod sender;

pub use codec::{CodecError, DEFAULT_MAX_FRAME_LEN, MllpCodec};
pub use listener::{Handler, ListenerConfig, MllpListener, PeerInfo, Refusal};
pub use sender::{MllpSender, SendError, SenderConfig};

//! # lhcie-proto: the canonical model on the wire
//!
//! The protobuf packages of the London Health and Care Information Exchange
//! and their generated Rust code (prost messages, tonic services), plus the
//! conversions between the wire types and the validated domain types of
//! [`lhcie_model`].
//!
//! - `lhcie.canonical.v1` ([`canonical`]): the envelope and everything it
//!   carries. The `.proto` sources are under `proto/lhcie/` and are the
//!   contract with adapters written in other languages.
//! - `lhcie.hub.v1` ([`hub`]): the `Exchange` service adapters use to submit
//!   and receive envelopes.
//! - `lhcie.registry.v1` ([`registry`]): the consent and ISA registry's
//!   service.
//!
//! Conversions live in [`convert`], one file per type. Wire to domain is
//! `TryFrom` and validates (an error names the field path, e.g.
//! `patient.nhs_number`); domain to wire is `From` and cannot fail. To
//! decode and validate an envelope in one step use [`decode_envelope`].

pub mod convert;

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/lhcie.rs"));
}

/// `lhcie.canonical.v1`: the canonical model on the wire.
pub use generated::lhcie::canonical::v1 as canonical;
/// `lhcie.hub.v1`: the hub's `Exchange` service.
pub use generated::lhcie::hub::v1 as hub;
/// `lhcie.registry.v1`: the consent and ISA registry's service.
pub use generated::lhcie::registry::v1 as registry;

pub use convert::DecodeError;

/// The compiled descriptors of every package (a serialized
/// `google.protobuf.FileDescriptorSet`), for reflection: proto3 JSON,
/// gRPC server reflection, tools.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lhcie_descriptor.bin"));
pub use prost::Message;

/// Decodes protobuf bytes into a validated domain envelope.
pub fn decode_envelope(bytes: &[u8]) -> Result<lhcie_model::Envelope, DecodeError> {
    let wire = canonical::Envelope::decode(bytes).map_err(DecodeError::Protobuf)?;
    lhcie_model::Envelope::try_from(wire).map_err(DecodeError::Invalid)
}

/// Encodes a domain envelope as protobuf bytes.
pub fn encode_envelope(envelope: &lhcie_model::Envelope) -> Vec<u8> {
    canonical::Envelope::from(envelope.clone()).encode_to_vec()
}

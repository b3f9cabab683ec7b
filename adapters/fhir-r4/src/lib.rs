//! # lhcie-fhir-r4: FHIR R4 messages and the canonical model
//!
//! Pure: no I/O, no network, no async runtime. The clock and configuration
//! come in a [`TranslateContext`] / [`RenderContext`]. The FHIR adapter's
//! HTTP server and client (`adapters/server`) call it.
//!
//! - Reading: [`read_message_bundle`] (a `Bundle` of type `message`,
//!   `$process-message`) and [`read_document_reference`] (a single
//!   `DocumentReference` POST) check [`ReadLimits`], the structure and the
//!   content, and translate to a validated [`lhcie_model::Envelope`] whose
//!   original is the bytes received ([`Inbound`]). A refusal is a
//!   [`Rejection`]: HTTP status, an `OperationOutcome` with issue codes and
//!   FHIRPath expressions, and the ITK3 response code when one applies.
//!   [`check_content_type`] gives the 415 for the server.
//! - ITK3 handling keys ([`Handling`]) map to the envelope's
//!   acknowledgement requests, recipient intent and sender reference.
//! - Rendering: [`render_message`] writes a canonical envelope as an R4
//!   message Bundle; [`render_response`] writes an acknowledgement as an
//!   ITK3-style response Bundle; [`original_if_fhir`] gives back an
//!   original FHIR payload to deliver unchanged; [`read_response`]
//!   interprets what a local FHIR endpoint answered.
//!
//! ## Why serde_json::Value navigation and not the `fhir` crate
//!
//! The `fhir` crate models all of R4 and compiles slowly; we need a dozen
//! resources, read leniently (unknown elements and extensions are normal)
//! but checked strictly where it matters (identifier systems, NHS numbers,
//! references). Reading goes through a path-carrying cursor over a
//! `serde_json::Value` (`node` module), so every refusal names the exact
//! FHIRPath of the element at fault, which derived serde structs cannot do
//! without a second parse. Rendering builds `serde_json::Value`s with
//! `json!`; the tests validate every rendered Bundle with Python's
//! `fhir.resources` (R4B models, which accept R4 content of this scope).
//!
//! ## Tolerated variants (documented, tested)
//!
//! - `null` is read as absent; empty strings as absent.
//! - A `dateTime` given as a date (or a partial date) is read as midnight
//!   UTC of its first day (`datetime` module).
//! - Relative references `Type/id` resolve against entry types and ids as
//!   well as `fullUrl`s (`bundle` module).
//!
//! Not tolerated: NHS number and ODS identifier systems spelt any other way
//! than `https://fhir.nhs.uk/Id/nhs-number` and
//! `https://fhir.nhs.uk/Id/ods-organization-code` (`http://`, lower-case
//! `id`, British `organisation`): 422 `value` at `...identifier[n].system`.
//!
//! ## Layout
//!
//! [`limits`] (size, depth, media type) → `node` (typed access with
//! paths) → `bundle` (entries, references) → `identity` (NHS numbers,
//! ODS codes, patients) and [`itk`] → [`read`] (one module per body kind)
//! → [`render`] (messages, responses). [`outcome`] holds the rejection
//! type; [`systems`] the URIs.
//!
//! Patient data never reaches a diagnostic: rejections are built from
//! fixed text and element paths only.

mod bundle;
pub mod context;
mod datetime;
mod identity;
pub mod itk;
pub mod limits;
mod node;
pub mod outcome;
pub mod patients;
pub mod read;
pub mod render;
pub mod response;
pub mod systems;

pub use context::{
    DocumentTypeMapping, RouteRule, RouteTarget, TranslateContext, default_document_types,
};
pub use datetime::parse_date_time;
pub use itk::Handling;
pub use limits::{ReadLimits, check_content_type, check_depth, parse_json};
pub use outcome::{Issue, IssueType, Rejection, Severity};
pub use patients::{PatientsNamed, patients_named};
pub use read::{
    Inbound, NotCarried, derive_message_id, read_document_reference, read_message_bundle,
};
pub use render::{RenderContext, RenderError, original_if_fhir, render_message, render_response};
pub use response::{LocalResponse, ResponseDisposition, read_response};

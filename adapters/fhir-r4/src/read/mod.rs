//! Reading inbound FHIR: a message `Bundle` ([`read_message_bundle`]) or a
//! single `DocumentReference` ([`read_document_reference`]), checked and
//! translated into a validated canonical [`Envelope`]. Pure.
//!
//! Order of checks (the first failure is reported): limits and JSON;
//! `resourceType`; `Bundle.type` = `message`; `MessageHeader` first; ITK3
//! handling; the event; the sender; the body; the patient; routing.
//!
//! Events (`MessageHeader.eventCoding`):
//!
//! | system | codes | canonical |
//! |---|---|---|
//! | `urn:lhcie:fhir:message-event` (ours) | `discharge-summary`, `repatriation-request`, `cancer-document`, `end-of-life-care-plan` | that document category (Composition or DocumentReference) |
//! | ours | `care-event-admission`, `-discharge`, `-transfer`, `-attendance`, `-registration`, `-pre-admission`, `-death`, `-demographics-update` | [`Category::CareEvent`] (Encounter) |
//! | ours | `referral` | [`Category::Referral`] (ServiceRequest) |
//! | HL7 v2 table 0003 | `A01` `A02` `A03` `A04` `A05` `A08` `A28` `A31` | care event, kind as in `lhcie-hl7v2` |
//! | HL7 v2 table 0003 | `I12` | referral |
//! | HL7 v2 table 0003 | `T02` | a document, category by document type |
//! | BaRS `message-events-bars` | `servicerequest-request` | referral |
//!
//! A MessageHeader with `response` is a response message, whatever its
//! event, and becomes an [`Category::Acknowledgement`]. Merges (`A40`) are
//! not supported: the canonical merge needs the merged identity, which FHIR
//! messages carry in no agreed way.
//!
//! Message id: [`derive_message_id`] over the exchange, the sender's ODS
//! code and the MessageHeader id (else its `fullUrl`, else `Bundle.id`),
//! so a resent message is a duplicate at the hub.
//!
//! Recipients: the ODS codes of `MessageHeader.destination.receiver`, plus
//! every matching [`crate::RouteRule`]; if neither names anyone, the
//! configured defaults; none at all is 422 `required`.

mod care_event;
mod document;
mod referral;
mod response;

pub(crate) use care_event::{
    class_code as care_event_class_code, kind_name as care_event_kind_name,
};
pub(crate) use document::hex;
pub(crate) use response::itk_code;

use lhcie_model::{
    AcknowledgementRequest, Addressing, Author, Body, Bytes, Category, Envelope, ExchangeId,
    MEDIA_TYPE_FHIR_JSON, MessageId, OdsCode, OriginalPayload, Party, PatientClass,
    PatientIdentity, PurposeOfUse, Recipient, RecipientIntent, RoutingRule,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bundle::{Entries, Entry};
use crate::context::{RouteTarget, TranslateContext};
use crate::identity;
use crate::itk::{self, Handling};
use crate::limits::{ReadLimits, parse_json};
use crate::node::Node;
use crate::outcome::{IssueType, Rejection};
use crate::systems::*;

/// Something in the inbound content the canonical model does not carry.
/// It is not lost: the original travels with the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCarried {
    /// FHIRPath of the element.
    pub expression: String,
    /// Why it is not carried.
    pub reason: &'static str,
}

/// A message read and translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The canonical envelope, validated; its `original` is the bytes read.
    pub envelope: Envelope,
    /// The ITK3 handling keys.
    pub handling: Handling,
    /// `MessageHeader.id` (or its `fullUrl`), to echo in
    /// `MessageHeader.response.identifier` when answering. For a single
    /// DocumentReference, its id.
    pub message_header_id: String,
    /// For a response message: `MessageHeader.response.identifier` as
    /// sent. The acknowledgement's `refers_to` is this id taken as a
    /// canonical message id, which is right when the message answered was
    /// rendered by this crate (its MessageHeader id is the canonical id);
    /// when an original was delivered unchanged, the server maps it back.
    pub response_to: Option<String>,
    /// What the canonical form does not carry.
    pub not_carried: Vec<NotCarried>,
}

/// The canonical id of a FHIR message: a version 8 UUID from the SHA-256 of
/// the exchange, the sender's ODS code and the message's own id.
pub fn derive_message_id(exchange: &ExchangeId, sender: &OdsCode, local_id: &str) -> MessageId {
    let mut hasher = Sha256::new();
    for part in [
        "lhcie-fhir-r4-message-id-v1",
        exchange.as_str(),
        sender.as_str(),
        local_id.trim(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    // 36 graphic ASCII characters: always a valid message id.
    MessageId::parse(&text).unwrap_or_else(|_| MessageId::new_random())
}

/// What a message's event asks for.
#[derive(Debug, Clone, Copy)]
enum MessageEvent<'a> {
    Document(Option<Category>),
    CareEvent(&'a str),
    Referral,
}

fn event<'a>(header: &Node<'a>) -> Result<MessageEvent<'a>, Rejection> {
    let Some(coding) = header.obj("eventCoding")? else {
        if header.get("eventUri").is_some() {
            return Err(Rejection::not_supported(
                &header.at("eventUri"),
                "eventUri events are not supported; use eventCoding",
            ));
        }
        return Err(Rejection::required(
            &header.at("eventCoding"),
            "is required",
        ));
    };
    let system = coding.req_str("system")?;
    let code = coding.req_str("code")?;
    let unsupported = || {
        Rejection::not_supported(
            &coding.path,
            "this message event is not supported (see the adapter's documentation)",
        )
    };
    match system {
        LHCIE_EVENT_SYSTEM => match code {
            "referral" => Ok(MessageEvent::Referral),
            c if c.starts_with("care-event-") => Ok(MessageEvent::CareEvent(c)),
            c => Category::ALL
                .into_iter()
                .find(|cat| cat.as_str() == c && cat.body_kind() == lhcie_model::BodyKind::Document)
                .map(|cat| MessageEvent::Document(Some(cat)))
                .ok_or_else(unsupported),
        },
        V2_EVENT_SYSTEM => match code {
            "I12" => Ok(MessageEvent::Referral),
            "T02" => Ok(MessageEvent::Document(None)),
            "A01" | "A02" | "A03" | "A04" | "A05" | "A08" | "A28" | "A31" => {
                Ok(MessageEvent::CareEvent(code))
            }
            _ => Err(unsupported()),
        },
        BARS_EVENT_SYSTEM if code == "servicerequest-request" => Ok(MessageEvent::Referral),
        _ => Err(unsupported()),
    }
}

/// A safe name for a resource type in diagnostics (letters only).
fn type_name(t: Option<&str>) -> Option<&str> {
    t.filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Reads a FHIR R4 message Bundle (`$process-message`).
pub fn read_message_bundle(
    bytes: &[u8],
    limits: &ReadLimits,
    ctx: &TranslateContext,
) -> Result<Inbound, Rejection> {
    let value = parse_json(bytes, limits)?;
    let root = Node::root(&value, "Bundle");
    match root.resource_type() {
        Some("Bundle") => {}
        other => {
            let diagnostics = match type_name(other) {
                Some(t) => format!("a {t} is not a message: send a Bundle of type message"),
                None => "not a FHIR resource: send a Bundle of type message".to_owned(),
            };
            return Err(Rejection::new(
                400,
                IssueType::NotSupported,
                type_name(other).map(str::to_owned),
                diagnostics,
            ));
        }
    }
    match root.str("type")? {
        Some("message") => {}
        Some(t) => {
            const KNOWN: [&str; 9] = [
                "document",
                "transaction",
                "transaction-response",
                "batch",
                "batch-response",
                "history",
                "searchset",
                "collection",
                "message",
            ];
            let what = KNOWN.iter().find(|k| **k == t).copied().unwrap_or("other");
            return Err(Rejection::new(
                400,
                IssueType::NotSupported,
                Some("Bundle.type".into()),
                format!("a Bundle of type {what} is not a message: Bundle.type must be message"),
            ));
        }
        None => return Err(Rejection::required("Bundle.type", "is required")),
    }
    let entries = Entries::read(&root, limits.max_entries)?;
    let Some(first) = entries.entries.first() else {
        return Err(Rejection::required("Bundle.entry", "a message has entries"));
    };
    if first.resource_type != "MessageHeader" {
        return Err(Rejection::structure(
            &first.resource.at("resourceType"),
            "the first entry of a message must be its MessageHeader",
        ));
    }
    let header = first.resource.clone();
    let handling = itk::read(&header)?;
    let is_response = header.get("response").is_some();
    let event = if is_response {
        None
    } else {
        Some(event(&header)?)
    };

    let sender = sender(&entries, &header, ctx)?;
    let local_id = header
        .str("id")?
        .or(first.full_url)
        .or(root.str("id")?)
        .ok_or_else(|| Rejection::required(&header.at("id"), "the MessageHeader needs an id"))?;
    let message_id = derive_message_id(&ctx.exchange_id, &sender, local_id);
    let intent = handling.recipient_type.unwrap_or_default();
    let mut named = Vec::new();
    for destination in header.arr("destination")? {
        if let Some(receiver) = destination.obj("receiver")?
            && let Some(code) = organisation_of(&entries, &receiver)?
            && !named.contains(&code)
        {
            named.push(code);
        }
    }

    let mut not_carried = Vec::new();
    let (category, body, patient, class, response_to) = if is_response {
        let (ack, to) = response::acknowledgement(&entries, &header)?;
        (
            Category::Acknowledgement,
            Body::Acknowledgement(ack),
            None,
            None,
            Some(to),
        )
    } else {
        let focus = focus(&entries, &header)?;
        let (category, body, subject, class) = match event {
            Some(MessageEvent::CareEvent(code)) => {
                let (event, subject) = care_event::care_event(&entries, focus, code)?;
                let class = event.patient_class;
                (Category::CareEvent, Body::CareEvent(event), subject, class)
            }
            Some(MessageEvent::Referral) => {
                let (referral, subject) = referral::referral(&entries, focus)?;
                (Category::Referral, Body::Referral(referral), subject, None)
            }
            Some(MessageEvent::Document(category)) => {
                let (category, doc, subject) = document::in_message(
                    &entries,
                    &header,
                    focus,
                    category,
                    ctx,
                    &mut not_carried,
                )?;
                (category, Body::Document(doc), subject, None)
            }
            None => {
                return Err(Rejection::required(
                    &header.at("eventCoding"),
                    "is required",
                ));
            }
        };
        let patient = subject_patient(&entries, &subject)?;
        (category, body, Some(patient), class, None)
    };
    for e in &entries.entries {
        if !USED.contains(&e.resource_type) {
            not_carried.push(NotCarried {
                expression: e.resource.path.clone(),
                reason: "resource type not carried in canonical form",
            });
        }
    }

    let addressing = route(
        ctx,
        named,
        intent,
        category,
        &body,
        class,
        patient.as_ref(),
        &header.at("destination"),
    )?;
    let created_at = crate::datetime::date_time(&root, "timestamp")?.unwrap_or(ctx.now);
    let envelope = Envelope {
        message_id,
        correlation_id: match &body {
            Body::Acknowledgement(a) => Some(a.refers_to.as_str().to_owned()),
            _ => None,
        },
        created_at,
        sender: Party {
            ods_code: sender,
            exchange_id: ctx.exchange_id.clone(),
            sending_system: header
                .obj("source")?
                .map(|s| s.str("software"))
                .transpose()?
                .flatten()
                .map(str::to_owned),
        },
        addressing,
        purpose: purpose(&root)?,
        category,
        patient,
        body,
        // A response travels as a bare acknowledgement: the Bundle may
        // name the patient, and acknowledgements are routed without a
        // consent decision.
        original: (!is_response).then(|| OriginalPayload {
            media_type: MEDIA_TYPE_FHIR_JSON.into(),
            content: Bytes::copy_from_slice(bytes),
        }),
        acknowledgements_requested: AcknowledgementRequest {
            infrastructure: handling.infrastructure_ack,
            business: handling.business_ack,
        },
        sender_reference: handling.sender_reference.clone(),
    };
    validate(&envelope)?;
    Ok(Inbound {
        envelope,
        handling,
        message_header_id: local_id.to_owned(),
        response_to,
        not_carried,
    })
}

/// Resource types this crate turns into canonical content.
const USED: [&str; 11] = [
    "MessageHeader",
    "Patient",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Encounter",
    "Composition",
    "DocumentReference",
    "ServiceRequest",
    "Location",
    "OperationOutcome",
];

pub(crate) fn validate(envelope: &Envelope) -> Result<(), Rejection> {
    envelope.validate().map_err(|e| {
        Rejection::new(
            422,
            IssueType::Invalid,
            None,
            format!(
                "the canonical envelope is invalid at {} ({:?})",
                e.field, e.kind
            ),
        )
    })
}

/// Purpose of use from `Bundle.meta.security` (v3 ActReason); direct care
/// when none is given.
fn purpose(root: &Node<'_>) -> Result<PurposeOfUse, Rejection> {
    if let Some(meta) = root.obj("meta")? {
        for s in meta.arr("security")? {
            if s.str("system")? == Some(V3_ACT_REASON) {
                return Ok(match s.str("code")? {
                    Some("ETREAT") => PurposeOfUse::EmergencyCare,
                    Some("CAREMGT") => PurposeOfUse::CareManagement,
                    Some("PATRQT") => PurposeOfUse::PatientRequest,
                    _ => PurposeOfUse::DirectCare,
                });
            }
        }
    }
    Ok(PurposeOfUse::DirectCare)
}

/// The ODS code of a Reference to an Organization (or PractitionerRole),
/// by resolution or by its identifier.
pub(crate) fn organisation_of(
    entries: &Entries<'_>,
    reference: &Node<'_>,
) -> Result<Option<OdsCode>, Rejection> {
    if let Some(entry) = resolve_lenient(entries, reference, &["Organization", "PractitionerRole"])?
    {
        if entry.resource_type == "PractitionerRole" {
            return match entry.resource.obj("organization")? {
                Some(org) => organisation_of(entries, &org),
                None => Ok(None),
            };
        }
        if let Some(code) = identity::organisation_ods(&entry.resource)? {
            return Ok(Some(code));
        }
    }
    match reference.obj("identifier")? {
        Some(identifier) => identity::ods_identifier(&identifier),
        None => Ok(None),
    }
}

/// Like [`Entries::resolve`], but with no entries (a lone resource) a
/// reference is simply not resolved.
pub(crate) fn resolve_lenient<'e, 'a>(
    entries: &'e Entries<'a>,
    reference: &Node<'_>,
    types: &[&str],
) -> Result<Option<&'e Entry<'a>>, Rejection> {
    if entries.entries.is_empty() {
        return Ok(None);
    }
    entries.resolve(reference, types)
}

/// An author: a Practitioner, an Organization or a PractitionerRole.
pub(crate) fn author(entries: &Entries<'_>, reference: &Node<'_>) -> Result<Author, Rejection> {
    let mut out = Author::default();
    match resolve_lenient(
        entries,
        reference,
        &["Practitioner", "Organization", "PractitionerRole"],
    )? {
        Some(e) if e.resource_type == "Practitioner" => {
            out.practitioner = Some(identity::practitioner(&e.resource)?);
        }
        Some(e) if e.resource_type == "Organization" => {
            out.organisation = identity::organisation_ods(&e.resource)?;
        }
        Some(e) => {
            if let Some(p) = e.resource.obj("practitioner")? {
                out = author(entries, &p)?;
            }
            if let Some(o) = e.resource.obj("organization")? {
                out.organisation = organisation_of(entries, &o)?;
            }
            if let Some(p) = out.practitioner.as_mut()
                && let Some(code) = e.resource.first("code")?
            {
                p.role = identity::concept_of(&code)?;
            }
        }
        None => {
            if let Some(identifier) = reference.obj("identifier")? {
                out.organisation = identity::ods_identifier(&identifier)?;
            }
        }
    }
    Ok(out)
}

fn sender(
    entries: &Entries<'_>,
    header: &Node<'_>,
    ctx: &TranslateContext,
) -> Result<OdsCode, Rejection> {
    let path = header.at("sender");
    let code = match header.obj("sender")? {
        Some(sender) => organisation_of(entries, &sender)?.or_else(|| ctx.sender_ods.clone()),
        None => ctx.sender_ods.clone(),
    }
    .ok_or_else(|| {
        Rejection::required(
            &path,
            "the sender must be an Organization with an ODS identifier",
        )
    })?;
    check_served(&code, ctx, &path)?;
    Ok(code)
}

pub(crate) fn check_served(
    code: &OdsCode,
    ctx: &TranslateContext,
    path: &str,
) -> Result<(), Rejection> {
    if !ctx.served_organisations.is_empty() && !ctx.served_organisations.contains(code) {
        return Err(Rejection::new(
            403,
            IssueType::Security,
            Some(path.into()),
            "the sender is not an organisation this exchange serves",
        ));
    }
    Ok(())
}

/// The focus of the message: `MessageHeader.focus[0]`.
fn focus<'e, 'a>(entries: &'e Entries<'a>, header: &Node<'_>) -> Result<&'e Entry<'a>, Rejection> {
    let first = header
        .first("focus")?
        .ok_or_else(|| Rejection::required(&header.at("focus"), "is required"))?;
    let text = first.req_str("reference")?;
    entries.resolve_str(text, &first.at("reference"))
}

/// Whom the focus resource is about.
pub(crate) enum Subject<'a> {
    /// A `Reference` (to a Patient entry, or with an NHS number identifier).
    Reference(Node<'a>),
    /// The Patient resource itself (the focus is the Patient).
    Resource(Node<'a>),
    /// Not given; the path where it was expected.
    Missing(String),
}

impl<'a> Subject<'a> {
    /// The `subject` of a resource.
    pub fn of(resource: &Node<'a>) -> Result<Self, Rejection> {
        Ok(match resource.obj("subject")? {
            Some(s) => Subject::Reference(s),
            None => Subject::Missing(resource.at("subject")),
        })
    }
}

/// The patient a message is about.
pub(crate) fn subject_patient(
    entries: &Entries<'_>,
    subject: &Subject<'_>,
) -> Result<PatientIdentity, Rejection> {
    let gp = |g: &Node<'_>| -> Result<Option<OdsCode>, Rejection> {
        match organisation_of(entries, g) {
            Ok(code) => Ok(code),
            Err(e) if e.issue().code == IssueType::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    let subject = match subject {
        Subject::Missing(path) => return Err(Rejection::required(path, "is required")),
        Subject::Resource(patient) => return identity::patient(patient, &gp),
        Subject::Reference(s) => s,
    };
    if let Some(entry) = resolve_lenient(entries, subject, &["Patient"])? {
        return identity::patient(&entry.resource, &gp);
    }
    if let Some(identifier) = subject.obj("identifier")?
        && let Some(number) = identity::nhs_identifier(&identifier)?
    {
        return Ok(PatientIdentity {
            nhs_number: Some(number),
            ..PatientIdentity::default()
        });
    }
    Err(Rejection::required(
        &subject.at("identifier"),
        "the patient must be a Patient entry or an NHS number identifier",
    ))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    ctx: &TranslateContext,
    named: Vec<OdsCode>,
    intent: RecipientIntent,
    category: Category,
    body: &Body,
    class: Option<PatientClass>,
    patient: Option<&PatientIdentity>,
    path: &str,
) -> Result<Addressing, Rejection> {
    let mut addressing = Addressing::default();
    let add = |a: &mut Addressing, ods: &OdsCode, intent: RecipientIntent| {
        if !a.recipients.iter().any(|r| &r.ods_code == ods) {
            a.recipients.push(Recipient {
                ods_code: ods.clone(),
                intent,
            });
        }
    };
    for code in &named {
        add(&mut addressing, code, intent);
    }
    let kind = match body {
        Body::CareEvent(e) => Some(e.kind),
        _ => None,
    };
    for rule in &ctx.rules {
        let applies = (rule.categories.is_empty() || rule.categories.contains(&category))
            && (rule.event_kinds.is_empty() || kind.is_some_and(|k| rule.event_kinds.contains(&k)))
            && (rule.patient_classes.is_empty()
                || class.is_some_and(|c| rule.patient_classes.contains(&c)));
        if !applies {
            continue;
        }
        match &rule.target {
            RouteTarget::Organisation(code) => add(&mut addressing, code, rule.intent),
            RouteTarget::RegisteredGpPractice => {
                match patient.and_then(|p| p.registered_gp_practice.as_ref()) {
                    Some(code) => add(&mut addressing, code, rule.intent),
                    None => addressing.rule = Some(RoutingRule::RegisteredGp),
                }
            }
            RouteTarget::HubRule(r) => addressing.rule = Some(*r),
        }
    }
    if addressing.recipients.is_empty() && addressing.rule.is_none() {
        for code in &ctx.default_recipients {
            add(&mut addressing, code, RecipientIntent::ForAction);
        }
    }
    if addressing.recipients.is_empty() && addressing.rule.is_none() {
        return Err(Rejection::required(
            path,
            "no recipient: name a destination receiver with an ODS identifier",
        ));
    }
    Ok(addressing)
}

/// Reads a single FHIR R4 `DocumentReference` (a POST): a document of the
/// category its type maps to, about the patient named by
/// `subject.identifier` (an NHS number), from its custodian (else the
/// configured sender), to the recipients of the rules or defaults.
pub fn read_document_reference(
    bytes: &[u8],
    limits: &ReadLimits,
    ctx: &TranslateContext,
) -> Result<Inbound, Rejection> {
    let value: Value = parse_json(bytes, limits)?;
    let root = Node::root(&value, "DocumentReference");
    if root.resource_type() != Some("DocumentReference") {
        let diagnostics = match type_name(root.resource_type()) {
            Some(t) => format!("a {t} was sent where a DocumentReference is expected"),
            None => "not a FHIR resource: send a DocumentReference".to_owned(),
        };
        return Err(Rejection::new(
            400,
            IssueType::NotSupported,
            type_name(root.resource_type()).map(str::to_owned),
            diagnostics,
        ));
    }
    let entries = Entries {
        entries: Vec::new(),
    };
    let patient = subject_patient(&entries, &Subject::of(&root)?)?;
    let (category, doc) = document::from_document_reference(&entries, &root, None, ctx)?;
    let sender = match root.obj("custodian")? {
        Some(c) => organisation_of(&entries, &c)?,
        None => None,
    }
    .or_else(|| ctx.sender_ods.clone())
    .ok_or_else(|| {
        Rejection::required(
            "DocumentReference.custodian",
            "the custodian must have an ODS identifier",
        )
    })?;
    check_served(&sender, ctx, "DocumentReference.custodian")?;
    let local_id = format!("DocumentReference/{}", doc.document_id);
    let body = Body::Document(doc);
    let addressing = route(
        ctx,
        Vec::new(),
        RecipientIntent::ForAction,
        category,
        &body,
        None,
        Some(&patient),
        "DocumentReference",
    )?;
    let envelope = Envelope {
        message_id: derive_message_id(&ctx.exchange_id, &sender, &local_id),
        correlation_id: None,
        created_at: ctx.now,
        sender: Party {
            ods_code: sender,
            exchange_id: ctx.exchange_id.clone(),
            sending_system: None,
        },
        addressing,
        purpose: PurposeOfUse::DirectCare,
        category,
        patient: Some(patient),
        body,
        original: Some(OriginalPayload {
            media_type: MEDIA_TYPE_FHIR_JSON.into(),
            content: Bytes::copy_from_slice(bytes),
        }),
        acknowledgements_requested: AcknowledgementRequest {
            infrastructure: true,
            business: true,
        },
        sender_reference: None,
    };
    validate(&envelope)?;
    Ok(Inbound {
        envelope,
        handling: Handling::default(),
        message_header_id: local_id,
        response_to: None,
        not_carried: Vec::new(),
    })
}

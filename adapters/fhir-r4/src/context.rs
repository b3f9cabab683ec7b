//! What the adapter's configuration and runtime supply to reading: the
//! exchange, the organisations it serves, routing rules, document types,
//! the clock. Modelled on `lhcie-hl7v2`'s `TranslateContext`.

use lhcie_model::{Category, Coding, ExchangeId, OdsCode, SNOMED_CT_SYSTEM};
use time::OffsetDateTime;

pub use lhcie_model::{RouteRule, RouteTarget};

/// How a document type (Composition.type or DocumentReference.type)
/// maps to a canonical category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTypeMapping {
    /// The coding matched (system and code compared exactly).
    pub document_type: Coding,
    /// The canonical category (a document category).
    pub category: Category,
}

/// The document types known without configuration: the SNOMED CT types of
/// `lhcie-hl7v2`'s table (`lhcie_hl7v2::document_types`), each code once
/// (where that table has a code twice, `TS`'s repatriation request wins);
/// a test in `lhcie-adapter` keeps the two in step.
pub fn default_document_types() -> Vec<DocumentTypeMapping> {
    const DEFAULTS: [(&str, &str, Category); 12] = [
        ("373942005", "Discharge summary", Category::DischargeSummary),
        ("3457005", "Patient referral", Category::RepatriationRequest),
        (
            "823691000000103",
            "Clinical letter",
            Category::DischargeSummary,
        ),
        ("371526002", "Operative report", Category::DischargeSummary),
        ("371534008", "Summary report", Category::DischargeSummary),
        (
            "371529009",
            "History and physical report",
            Category::DischargeSummary,
        ),
        ("371532007", "Progress report", Category::DischargeSummary),
        (
            "371525003",
            "Clinical procedure report",
            Category::DischargeSummary,
        ),
        (
            "721981007",
            "Diagnostic studies report",
            Category::DischargeSummary,
        ),
        (
            "371530004",
            "Clinical consultation report",
            Category::CancerDocument,
        ),
        (
            "371531000",
            "Report of clinical encounter",
            Category::CancerDocument,
        ),
        (
            "736373009",
            "End of life care plan",
            Category::EndOfLifeCarePlan,
        ),
    ];
    DEFAULTS
        .iter()
        .map(|(code, display, category)| DocumentTypeMapping {
            document_type: Coding {
                system: SNOMED_CT_SYSTEM.into(),
                code: (*code).into(),
                display: Some((*display).into()),
            },
            category: *category,
        })
        .collect()
}

/// What reading needs from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateContext {
    /// The local exchange the adapter serves.
    pub exchange_id: ExchangeId,
    /// The sender when the message names none (MessageHeader.sender absent,
    /// or a DocumentReference without custodian).
    pub sender_ods: Option<OdsCode>,
    /// The organisations allowed to send through this adapter; empty means
    /// not checked here (the hub checks the exchange in any case). A
    /// sender outside the list is refused with 403 `security`.
    pub served_organisations: Vec<OdsCode>,
    /// Recipients when the message names none and no rule matches.
    pub default_recipients: Vec<OdsCode>,
    /// Routing rules, all applied.
    pub rules: Vec<RouteRule>,
    /// Document types.
    pub document_types: Vec<DocumentTypeMapping>,
    /// Now: the envelope's creation time when the Bundle has no timestamp.
    pub now: OffsetDateTime,
}

impl TranslateContext {
    /// A context with no sender default, no check of senders, no
    /// recipients, no rules and the default document types.
    pub fn new(exchange_id: ExchangeId, now: OffsetDateTime) -> Self {
        Self {
            exchange_id,
            sender_ods: None,
            served_organisations: Vec::new(),
            default_recipients: Vec::new(),
            rules: Vec::new(),
            document_types: default_document_types(),
            now,
        }
    }

    /// The category of a document type, if mapped.
    pub fn document_category(&self, document_type: &Coding) -> Option<Category> {
        self.document_types
            .iter()
            .find(|m| {
                m.document_type.system == document_type.system
                    && m.document_type.code == document_type.code
            })
            .map(|m| m.category)
    }
}

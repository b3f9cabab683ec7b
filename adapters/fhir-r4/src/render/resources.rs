//! The resources of a rendered message: Patient, Organization,
//! Practitioner(Role), Composition, DocumentReference, Encounter,
//! Location, ServiceRequest.

use base64::Engine;
use lhcie_model::{
    Attachment, AttachmentContent, Author, Body, CareEvent, CareEventKind, Category,
    ClinicalDocument, Coding, DocumentStatus, Gender, HumanName, Identifier, Location, OdsCode,
    PatientIdentity, Practitioner, Referral, ReferralPriority,
};
use serde_json::{Map, Value, json};

use super::Builder;
use crate::datetime;
use crate::identity::VERIFICATION;
use crate::read::{care_event_class_code, care_event_kind_name};
use crate::systems::*;

fn coding(c: &Coding) -> Value {
    let mut v = json!({"system": c.system, "code": c.code});
    if let Some(d) = &c.display {
        v["display"] = json!(d);
    }
    v
}

fn concept(c: &Coding) -> Value {
    json!({"coding": [coding(c)]})
}

fn identifier(i: &Identifier) -> Value {
    let mut v = json!({"system": i.system, "value": i.value});
    if let Some(t) = &i.type_code {
        v["type"] = json!({"coding": [{"system": V2_IDENTIFIER_TYPE, "code": t}]});
    }
    v
}

fn ods_ref(code: &OdsCode) -> Value {
    json!({"type": "Organization", "identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": code.as_str()}})
}

fn name(n: &HumanName) -> Value {
    let mut v = Map::new();
    v.insert("use".into(), json!("official"));
    if let Some(f) = &n.family {
        v.insert("family".into(), json!(f));
    }
    if !n.given.is_empty() {
        v.insert("given".into(), json!(n.given));
    }
    if let Some(p) = &n.prefix {
        v.insert("prefix".into(), json!([p]));
    }
    if let Some(s) = &n.suffix {
        v.insert("suffix".into(), json!([s]));
    }
    Value::Object(v)
}

/// An Organization with its ODS identifier.
pub(crate) fn organisation(code: &OdsCode) -> Value {
    json!({
        "resourceType": "Organization",
        "identifier": [{"system": ODS_ORGANISATION_SYSTEM, "value": code.as_str()}],
    })
}

/// A Patient.
pub(crate) fn patient(p: &PatientIdentity) -> Value {
    let mut identifiers = Vec::new();
    if let Some(n) = &p.nhs_number {
        let mut id = json!({"system": NHS_NUMBER_SYSTEM, "value": n.as_str()});
        if let Some(v) = &p.nhs_number_verification {
            let code = VERIFICATION
                .iter()
                .find(|(dd, _)| dd == v)
                .map_or(v.as_str(), |(_, name)| name);
            id["extension"] = json!([{"url": NHS_VERIFICATION_EXTENSION,
                "valueCodeableConcept": {"coding": [{"system": NHS_VERIFICATION_SYSTEM, "code": code}]}}]);
        }
        identifiers.push(id);
    }
    identifiers.extend(p.local_identifiers.iter().map(identifier));
    let mut v = json!({"resourceType": "Patient", "identifier": identifiers});
    if p.restricted {
        v["meta"] = json!({"security": [{"system": V3_CONFIDENTIALITY, "code": "R"}]});
    }
    if let Some(n) = &p.name {
        v["name"] = json!([name(n)]);
    }
    if let Some(g) = p.gender {
        v["gender"] = json!(match g {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        });
    }
    if let Some(d) = p.birth_date {
        v["birthDate"] = json!(datetime::format_date(d));
    }
    if let Some(d) = p.deceased_at {
        v["deceasedDateTime"] = json!(datetime::format(d));
    }
    if let Some(pc) = &p.postcode {
        v["address"] = json!([{"postalCode": pc}]);
    }
    if let Some(gp) = &p.registered_gp_practice {
        v["generalPractitioner"] = json!([ods_ref(gp)]);
    }
    v
}

fn practitioner(p: &Practitioner) -> Value {
    let mut v = json!({"resourceType": "Practitioner"});
    if !p.identifiers.is_empty() {
        v["identifier"] = p.identifiers.iter().map(identifier).collect();
    }
    if let Some(n) = &p.name {
        v["name"] = json!([name(n)]);
    }
    v
}

/// A Reference for an author; adds Practitioner(Role) entries.
fn author(b: &mut Builder<'_>, a: &Author, label: &str) -> Value {
    match (&a.practitioner, &a.organisation) {
        (None, Some(org)) => ods_ref(org),
        (None, None) => ods_ref(&b.envelope.sender.ods_code),
        (Some(p), org) => {
            let pr = b.add(&format!("{label}/Practitioner"), practitioner(p));
            if org.is_none() && p.role.is_none() {
                return json!({"reference": pr});
            }
            let mut role =
                json!({"resourceType": "PractitionerRole", "practitioner": {"reference": pr}});
            if let Some(org) = org {
                role["organization"] = ods_ref(org);
            }
            if let Some(r) = &p.role {
                role["code"] = json!([concept(r)]);
            }
            json!({"reference": b.add(&format!("{label}/PractitionerRole"), role)})
        }
    }
}

fn subject(patient: Option<&str>) -> Value {
    match patient {
        Some(p) => json!({"reference": p}),
        None => json!({"display": "unknown"}),
    }
}

/// Renders the body; returns the event code and the focus fullUrls.
pub(crate) fn body(
    b: &mut Builder<'_>,
    body: &Body,
    category: Category,
    patient: Option<&str>,
) -> (String, Vec<String>) {
    match body {
        Body::Document(d) => (category.as_str().to_owned(), document(b, d, patient)),
        Body::CareEvent(e) => (
            format!("care-event-{}", care_event_kind_name(e.kind)),
            vec![encounter(b, e, patient)],
        ),
        Body::Referral(r) => ("referral".into(), vec![referral(b, r, patient)]),
        Body::Result(_) | Body::Acknowledgement(_) => (String::new(), Vec::new()),
    }
}

fn status_code(s: DocumentStatus) -> &'static str {
    match s {
        DocumentStatus::Preliminary => "preliminary",
        DocumentStatus::Final => "final",
        DocumentStatus::Amended => "amended",
        DocumentStatus::EnteredInError => "entered-in-error",
    }
}

fn versioned(system: &str, id: &str, version: u32) -> Value {
    json!({"extension": [{"url": LHCIE_DOCUMENT_VERSION, "valuePositiveInt": version}],
        "system": system, "value": id})
}

fn xhtml(text: &str, media_type: &str) -> String {
    if media_type.eq_ignore_ascii_case("text/html") && text.trim_start().starts_with("<div") {
        return text.to_owned();
    }
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{escaped}</p></div>")
}

fn attachment(a: &Attachment) -> Value {
    let mut v = json!({"contentType": a.media_type});
    match &a.content {
        AttachmentContent::Inline(data) => {
            v["data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
        }
        AttachmentContent::Url(url) => {
            v["url"] = json!(url);
            v["extension"] = json!([{"url": LHCIE_ATTACHMENT_SHA256,
                "valueString": crate::read::hex(&a.sha256)}]);
        }
    }
    v["size"] = json!(a.size);
    if let Some(t) = &a.title {
        v["title"] = json!(t);
    }
    if let Some(c) = a.created_at {
        v["creation"] = json!(datetime::format(c));
    }
    v
}

fn document(b: &mut Builder<'_>, d: &ClinicalDocument, patient: Option<&str>) -> Vec<String> {
    let envelope = b.envelope;
    let date = datetime::format(d.authored_at.unwrap_or(envelope.created_at));
    let author = match &d.author {
        Some(a) => author(b, a, "author"),
        None => ods_ref(&envelope.sender.ods_code),
    };
    let mut focus = Vec::new();
    let attachments_only = d.sections.is_empty();
    if !attachments_only {
        let sections: Vec<Value> = d
            .sections
            .iter()
            .map(|s| {
                let mut v = json!({"title": s.title,
                    "text": {"status": "generated", "div": xhtml(&s.text, &s.media_type)}});
                if let Some(c) = &s.code {
                    v["code"] = concept(c);
                }
                v
            })
            .collect();
        let mut c = json!({
            "resourceType": "Composition",
            "identifier": versioned(LHCIE_DOCUMENT_ID, &d.document_id, d.version),
            "status": status_code(d.status),
            "type": concept(&d.document_type),
            "subject": subject(patient),
            "date": date,
            "author": [author],
            "title": d.title,
            "section": sections,
        });
        if let Some(e) = &d.encounter {
            c["encounter"] = json!({"identifier": identifier(e)});
        }
        if let Some(r) = &d.replaces {
            c["relatesTo"] = json!([{"code": "replaces",
                "targetIdentifier": versioned(LHCIE_DOCUMENT_ID, &r.document_id, r.version)}]);
        }
        focus.push(b.add("Composition", c));
    }
    if !d.attachments.is_empty() {
        let mut r = json!({
            "resourceType": "DocumentReference",
            "status": if d.status == DocumentStatus::EnteredInError { "entered-in-error" } else { "current" },
            "docStatus": status_code(d.status),
            "type": concept(&d.document_type),
            "subject": subject(patient),
            "date": date,
            "author": [author],
            "description": d.title,
            "content": d.attachments.iter().map(|a| json!({"attachment": attachment(a)})).collect::<Vec<_>>(),
        });
        if attachments_only {
            r["masterIdentifier"] = versioned(LHCIE_DOCUMENT_ID, &d.document_id, d.version);
            if let Some(e) = &d.encounter {
                r["context"] = json!({"encounter": [{"identifier": identifier(e)}]});
            }
            if let Some(rep) = &d.replaces {
                r["relatesTo"] = json!([{"code": "replaces", "target": {"identifier":
                    versioned(LHCIE_DOCUMENT_ID, &rep.document_id, rep.version)}}]);
            }
        }
        focus.push(b.add("DocumentReference", r));
    }
    focus
}

fn location(b: &mut Builder<'_>, l: &Location, label: &str) -> String {
    let mut ids = Vec::new();
    for (system, value) in [
        (LHCIE_LOCATION_SITE, &l.site),
        (LHCIE_LOCATION_ROOM, &l.room),
        (LHCIE_LOCATION_BED, &l.bed),
    ] {
        if let Some(v) = value {
            ids.push(json!({"system": system, "value": v}));
        }
    }
    let mut v = json!({"resourceType": "Location"});
    if !ids.is_empty() {
        v["identifier"] = json!(ids);
    }
    if let Some(n) = &l.point_of_care {
        v["name"] = json!(n);
    }
    if let Some(d) = &l.description {
        v["description"] = json!(d);
    }
    if let Some(o) = &l.organisation {
        v["managingOrganization"] = ods_ref(o);
    }
    b.add(label, v)
}

fn encounter(b: &mut Builder<'_>, e: &CareEvent, patient: Option<&str>) -> String {
    let status = match e.kind {
        CareEventKind::Discharge | CareEventKind::Death => "finished",
        CareEventKind::PreAdmission => "planned",
        _ => "in-progress",
    };
    let class = match e.patient_class {
        Some(c) => {
            let (code, display) = care_event_class_code(c);
            json!({"system": V3_ACT_CODE, "code": code, "display": display})
        }
        None => {
            json!({"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"})
        }
    };
    let mut v = json!({"resourceType": "Encounter", "status": status, "class": class,
        "subject": subject(patient)});
    if let Some(at) = e.occurred_at {
        let field = match e.kind {
            CareEventKind::Discharge | CareEventKind::Death => "end",
            _ => "start",
        };
        v["period"] = json!({ field: datetime::format(at) });
    }
    if let Some(at) = e.recorded_at {
        v["meta"] = json!({"lastUpdated": datetime::format(at)});
    }
    if let Some(i) = &e.encounter {
        v["identifier"] = json!([identifier(i)]);
    }
    let mut locations = Vec::new();
    if let Some(l) = &e.location {
        let url = location(b, l, "Location/current");
        locations.push(json!({"location": {"reference": url}, "status": "active"}));
        if let Some(o) = &l.organisation {
            v["serviceProvider"] = ods_ref(o);
        }
    }
    if let Some(l) = &e.prior_location {
        let url = location(b, l, "Location/prior");
        locations.push(json!({"location": {"reference": url}, "status": "completed"}));
    }
    if !locations.is_empty() {
        v["location"] = json!(locations);
    }
    if let Some(p) = &e.attending {
        let url = b.add("attending/Practitioner", practitioner(p));
        v["participant"] = json!([{"individual": {"reference": url}}]);
    }
    if let Some(r) = &e.reason {
        v["reasonCode"] = json!([concept(r)]);
    }
    if let Some(d) = &e.discharge_destination {
        v["hospitalization"] = json!({"dischargeDisposition": concept(d)});
    }
    b.add("Encounter", v)
}

fn referral(b: &mut Builder<'_>, r: &Referral, patient: Option<&str>) -> String {
    let mut v = json!({
        "resourceType": "ServiceRequest",
        "identifier": [{"system": LHCIE_REFERRAL_ID, "value": r.referral_id}],
        "status": "active",
        "intent": "order",
        "priority": match r.priority {
            ReferralPriority::Routine => "routine",
            ReferralPriority::Urgent => "urgent",
            ReferralPriority::Asap => "asap",
            ReferralPriority::Stat => "stat",
        },
        "subject": subject(patient),
    });
    if let Some(c) = &r.service_requested {
        v["code"] = concept(c);
    }
    if let Some(c) = &r.reason {
        v["reasonCode"] = json!([concept(c)]);
    }
    if let Some(a) = &r.requester {
        v["requester"] = author(b, a, "requester");
    }
    if let Some(s) = &r.recipient_service {
        v["performer"] = json!([{"display": s}]);
    }
    if let Some(at) = r.requested_at {
        v["authoredOn"] = json!(datetime::format(at));
    }
    if let Some(s) = &r.summary {
        v["note"] = json!([{"text": s}]);
    }
    if !r.attachments.is_empty() {
        let d = json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": subject(patient),
            "content": r.attachments.iter().map(|a| json!({"attachment": attachment(a)})).collect::<Vec<_>>(),
        });
        let url = b.add("supportingInfo/DocumentReference", d);
        v["supportingInfo"] = json!([{"reference": url}]);
    }
    b.add("ServiceRequest", v)
}

//! Directives kept compactly, so that a hub can hold every patient's
//! choices in memory (12 million patients in about 1 GB): 32 bytes per
//! directive (the one most patients have is kept inline), ids in a shared
//! arena, ODS codes interned, patients keyed by their NHS number as an
//! integer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use lhcie_consent::{Choice, ChoiceRule, Directive, DirectiveRule};
use lhcie_model::{Category, NhsNumber};
use time::OffsetDateTime;

/// A hasher for NHS numbers as integers (splitmix64's finaliser): fast and
/// well mixed for hashbrown's use of both the high and the low bits.
#[derive(Default, Clone, Copy)]
pub struct PatientHasher(u64);

impl Hasher for PatientHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An NHS number as an integer key.
pub fn patient_key(nhs_number: &NhsNumber) -> u64 {
    nhs_number
        .as_str()
        .bytes()
        .fold(0u64, |key, digit| key * 10 + u64::from(digit - b'0'))
}

/// Nanoseconds since the Unix epoch, saturated to `i64`.
fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// What a compact directive says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    DissentAll,
    DenyOrganisation(u32),
    DenyCategory(Category),
    AllowOrganisation(u32),
}

/// One directive: its id (in the arena), its rule, and when it is in force
/// (`from` inclusive to `end` exclusive, the end being the earlier of its
/// validity end and its withdrawal).
#[derive(Debug, Clone, Copy)]
struct Compact {
    id: IdRef,
    rule: Rule,
    from: i64,
    end: i64,
}

/// A directive id in the arena: chunk, offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdRef(u64);

const CHUNK: usize = 1 << 20;

/// Directive ids, appended into 1 MiB chunks (no reallocation of what is
/// stored; ids of directives replaced under the same id are reused).
#[derive(Default)]
struct IdArena {
    chunks: Vec<String>,
}

impl IdArena {
    fn push(&mut self, id: &str) -> IdRef {
        // Ids longer than 64 KiB are cut at a character boundary (they
        // never are in practice; the full id is in the registry).
        let mut end = id.len().min(u16::MAX as usize);
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        let id = &id[..end];
        let fits = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.len() + id.len() <= CHUNK);
        if !fits {
            self.chunks.push(String::with_capacity(CHUNK));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        let offset = chunk.len();
        chunk.push_str(id);
        IdRef(((chunk_index as u64) << 36) | ((offset as u64) << 16) | id.len() as u64)
    }

    fn get(&self, id: IdRef) -> &str {
        let chunk = (id.0 >> 36) as usize;
        let offset = ((id.0 >> 16) & 0xF_FFFF) as usize;
        let len = (id.0 & 0xFFFF) as usize;
        // Whole ids were pushed, so both ends are character boundaries.
        self.chunks[chunk].get(offset..offset + len).unwrap_or("?")
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(String::capacity).sum()
    }
}

/// One patient's directives: almost always one, kept inline.
#[derive(Debug, Clone)]
enum Patient {
    One(Compact),
    Many(Vec<Compact>),
}

impl Patient {
    fn as_slice(&self) -> &[Compact] {
        match self {
            Patient::One(one) => std::slice::from_ref(one),
            Patient::Many(many) => many,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Compact] {
        match self {
            Patient::One(one) => std::slice::from_mut(one),
            Patient::Many(many) => many,
        }
    }

    fn push(&mut self, compact: Compact) {
        match self {
            Patient::One(one) => *self = Patient::Many(vec![*one, compact]),
            Patient::Many(many) => many.push(compact),
        }
    }
}

/// Every patient's directives.
#[derive(Default)]
pub struct CompactDirectives {
    patients: HashMap<u64, Patient, BuildHasherDefault<PatientHasher>>,
    ids: IdArena,
    organisations: Vec<Box<str>>,
    organisation_index: HashMap<Box<str>, u32>,
    count: usize,
}

impl CompactDirectives {
    fn organisation(&mut self, code: &str) -> u32 {
        if let Some(index) = self.organisation_index.get(code) {
            return *index;
        }
        let index = u32::try_from(self.organisations.len()).unwrap_or(u32::MAX);
        self.organisations.push(code.into());
        self.organisation_index.insert(code.into(), index);
        index
    }

    /// Records a directive as it now is (replacing the one with its id).
    pub fn upsert(&mut self, directive: &Directive) {
        let rule = match &directive.rule {
            DirectiveRule::DissentAll => Rule::DissentAll,
            DirectiveRule::DenyOrganisation(code) => {
                Rule::DenyOrganisation(self.organisation(code.as_str()))
            }
            DirectiveRule::DenyCategory(category) => Rule::DenyCategory(*category),
            DirectiveRule::AllowOrganisation(code) => {
                Rule::AllowOrganisation(self.organisation(code.as_str()))
            }
        };
        let end = directive.effective_until().map_or(i64::MAX, nanos);
        let from = nanos(directive.effective_from());
        let key = patient_key(&directive.nhs_number);
        if let Some(patient) = self.patients.get_mut(&key) {
            if let Some(existing) = patient
                .as_mut_slice()
                .iter_mut()
                .find(|c| self.ids.get(c.id) == directive.id)
            {
                existing.rule = rule;
                existing.from = from;
                existing.end = end;
                return;
            }
            let id = self.ids.push(&directive.id);
            patient.push(Compact {
                id,
                rule,
                from,
                end,
            });
        } else {
            let id = self.ids.push(&directive.id);
            self.patients.insert(
                key,
                Patient::One(Compact {
                    id,
                    rule,
                    from,
                    end,
                }),
            );
        }
        self.count += 1;
    }

    /// The patient's choices in force at `at`.
    pub fn choices_at(&self, nhs_number: &NhsNumber, at: OffsetDateTime) -> Vec<Choice<'_>> {
        let Some(patient) = self.patients.get(&patient_key(nhs_number)) else {
            return Vec::new();
        };
        let at = nanos(at);
        patient
            .as_slice()
            .iter()
            .filter(|c| c.from <= at && at < c.end)
            .map(|c| Choice {
                id: self.ids.get(c.id),
                rule: match c.rule {
                    Rule::DissentAll => ChoiceRule::DissentAll,
                    Rule::DenyOrganisation(o) => {
                        ChoiceRule::DenyOrganisation(&self.organisations[o as usize])
                    }
                    Rule::DenyCategory(category) => ChoiceRule::DenyCategory(category),
                    Rule::AllowOrganisation(o) => {
                        ChoiceRule::AllowOrganisation(&self.organisations[o as usize])
                    }
                },
            })
            .collect()
    }

    /// How many directives are held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// About how many bytes the directives take (tables and arena).
    pub fn approximate_bytes(&self) -> usize {
        let table = self.patients.capacity() * (std::mem::size_of::<(u64, Patient)>() + 1);
        let lists: usize = self
            .patients
            .values()
            .map(|p| match p {
                Patient::One(_) => 0,
                Patient::Many(many) => many.capacity() * std::mem::size_of::<Compact>(),
            })
            .sum();
        table + lists + self.ids.bytes()
    }
}

#[cfg(test)]
mod tests {
    use lhcie_consent::DirectiveSource;
    use lhcie_model::OdsCode;
    use time::macros::datetime;

    use super::*;

    fn directive(id: &str, n: u64, rule: DirectiveRule) -> Directive {
        Directive {
            id: id.into(),
            nhs_number: (n..).find_map(NhsNumber::synthetic).unwrap(),
            rule,
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: Some(datetime!(2027-01-01 00:00 UTC)),
            source: DirectiveSource::PatientAccount,
            recorded_by: "x".into(),
            recorded_at: datetime!(2026-01-01 00:00 UTC),
            withdrawal: None,
        }
    }

    #[test]
    fn keeps_what_decisions_need_and_replaces_by_id() {
        let mut compact = CompactDirectives::default();
        let ryj = OdsCode::parse("RYJ").unwrap();
        let first = directive("D1", 5, DirectiveRule::DenyOrganisation(ryj.clone()));
        compact.upsert(&first);
        compact.upsert(&directive(
            "D2",
            5,
            DirectiveRule::DenyCategory(Category::CareEvent),
        ));
        compact.upsert(&directive("D3", 500, DirectiveRule::DissentAll));
        assert_eq!(compact.len(), 3);
        let at = datetime!(2026-06-01 00:00 UTC);
        let choices = compact.choices_at(&first.nhs_number, at);
        assert_eq!(
            choices,
            vec![
                Choice {
                    id: "D1",
                    rule: ChoiceRule::DenyOrganisation("RYJ")
                },
                Choice {
                    id: "D2",
                    rule: ChoiceRule::DenyCategory(Category::CareEvent)
                },
            ]
        );
        // Boundaries: from is inclusive, the end exclusive.
        assert_eq!(
            compact
                .choices_at(&first.nhs_number, datetime!(2026-01-01 00:00 UTC))
                .len(),
            2
        );
        assert!(
            compact
                .choices_at(&first.nhs_number, datetime!(2027-01-01 00:00 UTC))
                .is_empty()
        );

        let mut withdrawn = first.clone();
        withdrawn.withdrawal = Some(lhcie_consent::StatusNote {
            at: datetime!(2026-03-01 00:00 UTC),
            by: "patient".into(),
            reason: "changed mind".into(),
        });
        compact.upsert(&withdrawn);
        assert_eq!(compact.len(), 3, "replaced, not added");
        let ids: Vec<&str> = compact
            .choices_at(&first.nhs_number, at)
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, vec!["D2"]);
        let before: Vec<&str> = compact
            .choices_at(&first.nhs_number, datetime!(2026-02-01 00:00 UTC))
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(before, vec!["D1", "D2"]);
        assert!(
            compact
                .choices_at(&NhsNumber::synthetic(7).unwrap(), at)
                .is_empty()
        );
    }

    #[test]
    fn ids_survive_many_chunks() {
        let mut arena = IdArena::default();
        let refs: Vec<(String, IdRef)> = (0..200_000)
            .map(|i| {
                let id = format!("directive-{i:08}");
                let r = arena.push(&id);
                (id, r)
            })
            .collect();
        assert!(arena.chunks.len() > 1);
        for (id, r) in refs {
            assert_eq!(arena.get(r), id);
        }
    }

    proptest::proptest! {
        /// The compact copy gives the same choices as the full directives,
        /// at any moment, whatever their dates and withdrawals.
        #[test]
        fn choices_match_the_full_directives(
            directives in proptest::collection::vec(
                (0u64..3, 0u8..4, 0i64..40, proptest::option::of(1i64..40), proptest::option::of(0i64..40), 0usize..6),
                0..30,
            ),
            moments in proptest::collection::vec(-5i64..50, 1..10),
        ) {
            let day = |d: i64| datetime!(2026-01-01 00:00 UTC) + time::Duration::days(d);
            let mut compact = CompactDirectives::default();
            let mut full: Vec<Directive> = Vec::new();
            for (patient, rule, from, length, withdrawn, id) in directives {
                let rule = match rule {
                    0 => DirectiveRule::DissentAll,
                    1 => DirectiveRule::DenyOrganisation(OdsCode::parse("RAL").unwrap()),
                    2 => DirectiveRule::DenyCategory(Category::CareEvent),
                    _ => DirectiveRule::AllowOrganisation(OdsCode::parse("RKE").unwrap()),
                };
                let mut d = directive(&format!("D{id}"), patient * 100, rule);
                d.valid_from = day(from);
                d.valid_until = length.map(|l| day(from + l));
                d.withdrawal = withdrawn.map(|w| lhcie_consent::StatusNote {
                    at: day(w), by: "p".into(), reason: "r".into(),
                });
                // Same id, same patient (the registry refuses a move).
                full.retain(|f| f.id != d.id || f.nhs_number != d.nhs_number);
                if full.iter().any(|f| f.id == d.id) {
                    continue;
                }
                compact.upsert(&d);
                full.push(d);
            }
            for moment in moments {
                let at = day(moment);
                for patient in 0u64..3 {
                    let nhs = (patient * 100..).find_map(NhsNumber::synthetic).unwrap();
                    let mut expected: Vec<Choice<'_>> = full
                        .iter()
                        .filter(|d| d.nhs_number == nhs && d.in_force_at(at))
                        .map(Choice::of)
                        .collect();
                    let mut got = compact.choices_at(&nhs, at);
                    expected.sort_by_key(|c| c.id);
                    got.sort_by_key(|c| c.id);
                    proptest::prop_assert_eq!(got, expected);
                }
            }
        }
    }

    #[test]
    fn a_directive_is_32_bytes_and_a_patient_entry_40() {
        assert_eq!(std::mem::size_of::<Compact>(), 32);
        assert_eq!(std::mem::size_of::<(u64, Patient)>(), 40);
    }
}

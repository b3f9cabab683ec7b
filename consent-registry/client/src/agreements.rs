//! The agreements of the hub's copy, indexed by the organisations,
//! exchanges and regions they name, so that a decision only evaluates the
//! agreements that could cover its two organisations.
//!
//! The index is a filter, never a judge: an agreement is a candidate for
//! (sender, recipient) if some version names a party including the sender
//! and some version names a party including the recipient. Whether it
//! covers the flow, at that moment, is still decided by `lhcie-consent`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use lhcie_consent::{Agreement, IsaParty, OrgRef};

use crate::compact::PatientHasher;

type Fast<K, V> = HashMap<K, V, BuildHasherDefault<PatientHasher>>;

/// Agreements by what they name.
#[derive(Default)]
pub struct AgreementIndex {
    /// Sorted by id (the rules pick the lowest id among those covering).
    agreements: Vec<Agreement>,
    by_organisation: Fast<String, Vec<u64>>,
    by_exchange: Fast<String, Vec<u64>>,
    by_region: Fast<String, Vec<u64>>,
}

fn set(bits: &mut Vec<u64>, index: usize, words: usize) {
    bits.resize(words, 0);
    bits[index / 64] |= 1 << (index % 64);
}

/// The parties of every version that may include an organisation.
struct Named<'a> {
    organisation: Option<&'a [u64]>,
    exchange: Option<&'a [u64]>,
    region: Option<&'a [u64]>,
}

impl Named<'_> {
    fn word(&self, w: usize) -> u64 {
        let at = |bits: Option<&[u64]>| bits.and_then(|b| b.get(w)).copied().unwrap_or(0);
        at(self.organisation) | at(self.exchange) | at(self.region)
    }
}

impl AgreementIndex {
    /// Records an agreement as it now is.
    pub fn upsert(&mut self, agreement: Agreement) {
        match self
            .agreements
            .binary_search_by(|a| a.id.cmp(&agreement.id))
        {
            Ok(at) => self.agreements[at] = agreement,
            Err(at) => self.agreements.insert(at, agreement),
        }
        self.reindex();
    }

    /// Agreements change rarely: the index is rebuilt each time.
    fn reindex(&mut self) {
        let words = self.agreements.len().div_ceil(64);
        self.by_organisation.clear();
        self.by_exchange.clear();
        self.by_region.clear();
        for (index, agreement) in self.agreements.iter().enumerate() {
            for version in &agreement.versions {
                for party in &version.terms.parties {
                    let (map, key) = match party {
                        IsaParty::Organisation(code) => (&mut self.by_organisation, code.as_str()),
                        IsaParty::Exchange(id) => (&mut self.by_exchange, id.as_str()),
                        IsaParty::Region(region) => (&mut self.by_region, region.as_str()),
                    };
                    set(map.entry(key.to_owned()).or_default(), index, words);
                }
            }
        }
    }

    fn named(&self, org: &OrgRef<'_>) -> Named<'_> {
        Named {
            organisation: self
                .by_organisation
                .get(org.ods_code.as_str())
                .map(Vec::as_slice),
            exchange: self
                .by_exchange
                .get(org.exchange.as_str())
                .map(Vec::as_slice),
            region: self.by_region.get(org.region).map(Vec::as_slice),
        }
    }

    /// The agreements that could cover a flow between the two, in id order.
    pub fn candidates<'a>(
        &'a self,
        sender: &OrgRef<'_>,
        recipient: &OrgRef<'_>,
    ) -> impl Iterator<Item = &'a Agreement> + 'a {
        let (sender, recipient) = (self.named(sender), self.named(recipient));
        let words = self.agreements.len().div_ceil(64);
        (0..words).flat_map(move |w| {
            let mut both = sender.word(w) & recipient.word(w);
            std::iter::from_fn(move || {
                if both == 0 {
                    return None;
                }
                let bit = both.trailing_zeros() as usize;
                both &= both - 1;
                Some(&self.agreements[w * 64 + bit])
            })
        })
    }

    /// Every agreement.
    pub fn all(&self) -> &[Agreement] {
        &self.agreements
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.agreements.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.agreements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lhcie_model::{Category, ExchangeId, OdsCode, PurposeOfUse};
    use time::macros::datetime;

    use super::*;

    fn agreement(id: &str, parties: Vec<IsaParty>) -> Agreement {
        let terms = lhcie_consent::IsaTerms {
            title: id.into(),
            parties,
            purposes: BTreeSet::from([PurposeOfUse::DirectCare]),
            categories: BTreeSet::from([Category::Result]),
            legal_basis: "l".into(),
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: None,
            document_reference: None,
            emergency_override: false,
        };
        Agreement::draft(id, terms, "t", datetime!(2026-01-01 00:00 UTC)).unwrap()
    }

    #[test]
    fn candidates_are_those_naming_both_organisations_in_id_order() {
        let mut index = AgreementIndex::default();
        let ryj = OdsCode::parse("RYJ").unwrap();
        let ral = OdsCode::parse("RAL").unwrap();
        let rjz = OdsCode::parse("RJZ").unwrap();
        // More than 64, so several words are used.
        for i in 0..70 {
            index.upsert(agreement(
                &format!("A{i:02}"),
                vec![IsaParty::Region("SWL".into())],
            ));
        }
        index.upsert(agreement(
            "B-regions",
            vec![
                IsaParty::Region("NWL".into()),
                IsaParty::Region("NCL".into()),
            ],
        ));
        index.upsert(agreement(
            "C-orgs",
            vec![
                IsaParty::Organisation(ryj.clone()),
                IsaParty::Organisation(ral.clone()),
            ],
        ));
        index.upsert(agreement(
            "D-exchange",
            vec![IsaParty::Exchange("nwl-imperial".parse().unwrap())],
        ));
        index.upsert(agreement(
            "A99-sel",
            vec![
                IsaParty::Organisation(rjz.clone()),
                IsaParty::Region("NWL".into()),
            ],
        ));
        let (nwl, ncl, sel) = (
            ExchangeId::parse("nwl-imperial").unwrap(),
            ExchangeId::parse("ncl-royal-free").unwrap(),
            ExchangeId::parse("sel-kings").unwrap(),
        );
        let imperial = OrgRef {
            ods_code: &ryj,
            exchange: &nwl,
            region: "NWL",
        };
        let royal_free = OrgRef {
            ods_code: &ral,
            exchange: &ncl,
            region: "NCL",
        };
        let kings = OrgRef {
            ods_code: &rjz,
            exchange: &sel,
            region: "SEL",
        };
        let ids = |index: &AgreementIndex, a: &OrgRef<'_>, b: &OrgRef<'_>| {
            index
                .candidates(a, b)
                .map(|x| x.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&index, &imperial, &royal_free),
            vec!["B-regions", "C-orgs"]
        );
        assert_eq!(
            ids(&index, &royal_free, &imperial),
            vec!["B-regions", "C-orgs"]
        );
        assert_eq!(ids(&index, &imperial, &kings), vec!["A99-sel"]);
        assert_eq!(
            ids(&index, &imperial, &imperial),
            vec!["A99-sel", "B-regions", "C-orgs", "D-exchange"]
        );
        assert!(ids(&index, &royal_free, &kings).is_empty());
        // Replacing keeps one copy.
        index.upsert(agreement(
            "C-orgs",
            vec![IsaParty::Organisation(ryj.clone())],
        ));
        assert_eq!(ids(&index, &imperial, &royal_free), vec!["B-regions"]);
        assert_eq!(index.len(), 74);
    }
}

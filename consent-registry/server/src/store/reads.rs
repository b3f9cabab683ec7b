//! Reading the registry: what the API and the watch feed need.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use lhcie_consent::{Agreement, CarerGrant, Directive};
use lhcie_model::NhsNumber;

use super::codec::{self, decode, index_key, index_of, patient_prefix};
use super::meta_keys::APPLIED;
use super::{Registry, StoreFailure};
use crate::types::{AppliedRecord, AppliedState, Change, HistoryEvent};

/// What the change log holds after a revision.
#[derive(Debug)]
pub enum ChangesSince {
    /// The changes, oldest first: (revision, changes of that revision).
    Changes(Vec<(u64, Vec<Change>)>),
    /// Some are gone (the log is bounded, or this node was given a
    /// snapshot): the caller needs the full state.
    Gone,
}

impl Registry {
    /// The last applied entry and the membership in force.
    pub fn applied(&self) -> Result<AppliedState, StoreFailure> {
        let record = self.applied_record()?;
        Ok((record.log_id, record.membership))
    }

    /// The last applied entry, the membership and the log's clock, read
    /// together.
    pub fn applied_record(&self) -> Result<AppliedRecord, StoreFailure> {
        match self.trees.meta.get(APPLIED)? {
            Some(value) => decode(&value),
            None => Ok(AppliedRecord::default()),
        }
    }

    /// One agreement.
    pub fn agreement(&self, id: &str) -> Option<Agreement> {
        self.agreements
            .read()
            .expect("agreements lock")
            .get(id)
            .cloned()
    }

    /// Every agreement, by id.
    pub fn agreements(&self) -> Vec<Agreement> {
        self.agreements
            .read()
            .expect("agreements lock")
            .values()
            .cloned()
            .collect()
    }

    /// One directive as it now is.
    pub fn directive(&self, id: &str) -> Result<Option<Directive>, StoreFailure> {
        self.trees
            .directives
            .get(id.as_bytes())?
            .map(|value| decode(&value))
            .transpose()
    }

    /// Every change to a patient's directives, oldest first.
    pub fn history(&self, nhs_number: &NhsNumber) -> Result<Vec<HistoryEvent>, StoreFailure> {
        self.trees
            .history
            .scan_prefix(patient_prefix(nhs_number))
            .values()
            .map(|value| decode(&value?))
            .collect()
    }

    /// A patient's directives as they now are (withdrawn ones included:
    /// they are part of the record), by id.
    pub fn directives_of(&self, nhs_number: &NhsNumber) -> Result<Vec<Directive>, StoreFailure> {
        let mut latest = BTreeMap::new();
        for event in self.history(nhs_number)? {
            latest.insert(event.directive.id.clone(), event.directive);
        }
        Ok(latest.into_values().collect())
    }

    /// The time of the last proposal at or before `revision`: what was
    /// recorded by then is what the registry held at that revision. `None`
    /// before the first proposal.
    pub fn clock_at(&self, revision: u64) -> Result<Option<time::OffsetDateTime>, StoreFailure> {
        match self.trees.clocks.range(..=index_key(revision)).next_back() {
            Some(item) => Ok(Some(decode(&item?.1)?)),
            None => Ok(None),
        }
    }

    /// The revision up to which revisions have no recorded time (a store
    /// upgraded from format 1 at that revision), if any.
    pub fn clocks_from(&self) -> Result<Option<u64>, StoreFailure> {
        match self.trees.meta.get(super::meta_keys::CLOCKS_FROM)? {
            Some(value) => Ok(Some(index_of(&value)?)),
            None => Ok(None),
        }
    }

    /// A patient's carer grants, by id.
    pub fn grants_of(&self, nhs_number: &NhsNumber) -> Result<Vec<CarerGrant>, StoreFailure> {
        let prefix = patient_prefix(nhs_number);
        let mut grants = Vec::new();
        for key in self.trees.grants_by_patient.scan_prefix(prefix).keys() {
            let key = key?;
            if let Some(value) = self.trees.grants.get(&key[prefix.len()..])? {
                grants.push(decode(&value)?);
            }
        }
        Ok(grants)
    }

    /// The changes after `revision`, up to about `max_changes` of them (at
    /// least one revision's worth).
    pub fn changes_since(
        &self,
        revision: u64,
        max_changes: usize,
    ) -> Result<ChangesSince, StoreFailure> {
        let mut found = Vec::new();
        let mut count = 0usize;
        for item in self
            .trees
            .changes
            .range(index_key(revision.saturating_add(1))..)
        {
            let (key, value) = item?;
            let changes: Vec<Change> = codec::decode_changes(&value)?;
            count += changes.len();
            found.push((index_of(&key)?, changes));
            if count >= max_changes {
                break;
            }
        }
        // Read after the log: the floor rises before records are removed.
        if self.changes_floor.load(Ordering::SeqCst) > revision {
            return Ok(ChangesSince::Gone);
        }
        Ok(ChangesSince::Changes(found))
    }

    /// Every directive, in id order, from `after` (exclusive), up to
    /// `limit`: for a watcher that needs the full state.
    pub fn directives_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Directive>, StoreFailure> {
        page(&self.trees.directives, after, limit)
    }

    /// Every carer grant, in id order, from `after` (exclusive).
    pub fn grants_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CarerGrant>, StoreFailure> {
        page(&self.trees.grants, after, limit)
    }

    /// How many directives are recorded.
    pub fn directive_count(&self) -> usize {
        self.trees.directives.len()
    }
}

fn page<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<T>, StoreFailure> {
    let range = match after {
        Some(after) => tree.range::<&[u8], _>((
            std::ops::Bound::Excluded(after.as_bytes()),
            std::ops::Bound::Unbounded,
        )),
        None => tree.iter(),
    };
    range
        .values()
        .take(limit)
        .map(|value| decode(&value?))
        .collect()
}

//! How records are laid out in sled: keys and values.
//!
//! Values are postcard. Keys sort the way the registry reads them: log
//! entries and change records by big-endian index, a patient's history by
//! NHS number then revision then position.

use lhcie_model::NhsNumber;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreFailure;

/// Encodes a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreFailure> {
    postcard::to_stdvec(value).map_err(|e| StoreFailure::Codec(e.to_string()))
}

/// Decodes a value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreFailure> {
    postcard::from_bytes(bytes).map_err(|e| StoreFailure::Codec(e.to_string()))
}

/// The key of a log entry or a change record.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index in a log or change key.
pub(crate) fn index_of(key: &[u8]) -> Result<u64, StoreFailure> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreFailure::Codec(format!("an index key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The key of one history event: NHS number, revision, position.
pub(crate) fn history_key(nhs_number: &NhsNumber, revision: u64, seq: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(22);
    key.extend_from_slice(nhs_number.as_str().as_bytes());
    key.extend_from_slice(&revision.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of a patient's keys in the per-patient trees.
pub(crate) fn patient_prefix(nhs_number: &NhsNumber) -> &[u8] {
    nhs_number.as_str().as_bytes()
}

/// The key of a carer grant in the per-patient index: NHS number then id.
pub(crate) fn grant_index_key(nhs_number: &NhsNumber, id: &str) -> Vec<u8> {
    let mut key = nhs_number.as_str().as_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// A change record's value: the number of changes (so the change log can be
/// bounded without decoding it), then the changes.
pub(crate) fn encode_changes<T: Serialize>(
    count: u32,
    changes: &T,
) -> Result<Vec<u8>, StoreFailure> {
    let mut value = count.to_be_bytes().to_vec();
    value = postcard::to_extend(changes, value).map_err(|e| StoreFailure::Codec(e.to_string()))?;
    Ok(value)
}

/// How many changes a change record holds.
pub(crate) fn change_count(value: &[u8]) -> Result<u32, StoreFailure> {
    let count: [u8; 4] = value
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreFailure::Codec("a change record without its count".into()))?;
    Ok(u32::from_be_bytes(count))
}

/// The changes of a change record.
pub(crate) fn decode_changes<T: DeserializeOwned>(value: &[u8]) -> Result<T, StoreFailure> {
    decode(&value[4..])
}

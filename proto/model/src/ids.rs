//! Identifiers the hub itself relies on: message ids and exchange ids.

use std::fmt;

/// A sender-assigned, globally unique message id. The hub and the receiving
/// adapters de-duplicate on it, so it must be stable across retries of the
/// same message. A UUID is recommended; any 1 to 128 printable ASCII
/// characters without spaces are accepted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

/// Why a string is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdError {
    /// Empty.
    #[error("message id is empty")]
    Empty,
    /// Longer than 128 bytes.
    #[error("message id is {0} bytes long; at most 128 are allowed")]
    TooLong(usize),
    /// Contains spaces, control characters or non-ASCII characters.
    #[error("message id may contain only printable ASCII characters without spaces")]
    Characters,
}

impl MessageId {
    /// The longest message id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks the shape of a message id.
    pub fn parse(input: &str) -> Result<Self, MessageIdError> {
        if input.is_empty() {
            return Err(MessageIdError::Empty);
        }
        if input.len() > Self::MAX_LEN {
            return Err(MessageIdError::TooLong(input.len()));
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MessageIdError::Characters);
        }
        Ok(Self(input.to_owned()))
    }

    /// A new random (version 4) UUID message id.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

impl TryFrom<String> for MessageId {
    type Error = MessageIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

/// The id of a local exchange, e.g. `nwl-imperial`. It names the exchange's
/// queues on the broker, its RabbitMQ user and its certificate, so it is kept
/// to lower-case letters, digits and single hyphens, 2 to 40 characters,
/// starting with a letter.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExchangeId(String);

/// Why a string is not an exchange id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "exchange id `{0}` is not valid: use 2 to 40 lower-case letters, digits and single hyphens, starting with a letter and not ending with a hyphen"
)]
pub struct ExchangeIdError(pub String);

impl ExchangeId {
    /// Checks the shape of an exchange id.
    pub fn parse(input: &str) -> Result<Self, ExchangeIdError> {
        let bytes = input.as_bytes();
        let ok = (2..=40).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes[bytes.len() - 1] != b'-'
            && !input.contains("--")
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(ExchangeIdError(input.escape_default().to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExchangeId({})", self.0)
    }
}

impl TryFrom<String> for ExchangeId {
    type Error = ExchangeIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ExchangeId> for String {
    fn from(id: ExchangeId) -> Self {
        id.0
    }
}

impl std::str::FromStr for ExchangeId {
    type Err = ExchangeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert!(MessageId::parse("2f1c3c1e-8a5e-4b59-9d0c-7d1a1c2b3e4f").is_ok());
        assert!(MessageId::parse("MSG00001").is_ok());
        assert_eq!(MessageId::parse(""), Err(MessageIdError::Empty));
        assert_eq!(MessageId::parse("a b"), Err(MessageIdError::Characters));
        assert_eq!(MessageId::parse("é"), Err(MessageIdError::Characters));
        assert_eq!(
            MessageId::parse(&"x".repeat(129)),
            Err(MessageIdError::TooLong(129))
        );
    }

    #[test]
    fn random_message_ids_are_uuids_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| MessageId::new_random().0).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4", "{id}");
        }
    }

    #[test]
    fn exchange_ids() {
        for good in ["nwl-imperial", "ncl-uclh", "sel-connect-care-gp", "a1"] {
            assert!(ExchangeId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "NWL",
            "nwl_imperial",
            "-nwl",
            "nwl-",
            "nwl--x",
            "1nwl",
            &"a".repeat(41),
        ] {
            assert!(ExchangeId::parse(bad).is_err(), "{bad}");
        }
    }
}

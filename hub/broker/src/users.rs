//! One broker user per exchange's adapter, with permissions that cover only
//! its own queue and the ingress exchange:
//!
//! | permission | pattern | why |
//! |---|---|---|
//! | configure | `^$` | adapters declare nothing; the hub bootstraps the topology |
//! | write | `^<prefix>\.ingress$` | publish envelopes to the hub |
//! | read | `^<prefix>\.egress\.<exchange-id>$` | consume its own deliveries, no one else's |
//!
//! So no adapter may read (or publish to) the patient notifications'
//! queue (`<prefix>.patient-notifications`): only the hub publishes there,
//! as its own broker user, and only the patient-notification service reads.
//!
//! The broker validates the `user-id` property of every message against the
//! user that published it, so the hub can trust it to say which exchange
//! submitted an envelope.
//!
//! Users are applied with one `rabbitmqctl import_definitions` call (password
//! hashes computed here, in RabbitMQ's salted SHA-256 format, passed on
//! standard input), which needs to run where `rabbitmqctl` can reach the
//! broker node. Deployments
//! that manage users otherwise only need the names and permissions above.

use std::process::Command;

use base64::Engine;
use lhcie_model::ExchangeId;
use sha2::{Digest, Sha256};

use crate::Names;

/// A broker user for one exchange's adapter.
#[derive(Clone)]
pub struct AdapterUser {
    /// The exchange.
    pub exchange: ExchangeId,
    /// The user name (`<prefix>-<exchange-id>`).
    pub name: String,
    /// The password.
    pub password: String,
    /// Configure permission pattern.
    pub configure: String,
    /// Write permission pattern.
    pub write: String,
    /// Read permission pattern.
    pub read: String,
}

impl std::fmt::Debug for AdapterUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterUser")
            .field("name", &self.name)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

/// Why users could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// No randomness for passwords.
    #[error("cannot generate a password: {0}")]
    Random(String),
    /// `rabbitmqctl` failed or is not available.
    #[error("rabbitmqctl {action} failed: {detail}")]
    Rabbitmqctl {
        /// What it was asked to do.
        action: String,
        /// Its output.
        detail: String,
    },
}

fn escape(text: &str) -> String {
    text.replace('.', "\\.")
}

/// A user with a fresh random password for an exchange's adapter.
pub fn adapter_user(names: &Names, exchange: &ExchangeId) -> Result<AdapterUser, UsersError> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| UsersError::Random(e.to_string()))?;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let password: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(AdapterUser {
        exchange: exchange.clone(),
        name: names.adapter_user(exchange),
        password,
        configure: "^$".into(),
        write: format!("^{}$", escape(&names.ingress_exchange())),
        read: format!("^{}$", escape(&names.egress_queue(exchange))),
    })
}

/// RabbitMQ's `rabbit_password_hashing_sha256` format: base64 of a 4-byte
/// salt followed by SHA-256(salt ++ password).
pub fn password_hash(password: &str, salt: [u8; 4]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&hasher.finalize());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The RabbitMQ definitions document that creates (or updates) these users
/// and their permissions on `vhost`.
pub fn definitions(users: &[AdapterUser], vhost: &str) -> Result<String, UsersError> {
    let mut user_entries = Vec::new();
    let mut permission_entries = Vec::new();
    for user in users {
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).map_err(|e| UsersError::Random(e.to_string()))?;
        user_entries.push(serde_json::json!({
            "name": user.name,
            "password_hash": password_hash(&user.password, salt),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
        }));
        permission_entries.push(serde_json::json!({
            "user": user.name,
            "vhost": vhost,
            "configure": user.configure,
            "write": user.write,
            "read": user.read,
        }));
    }
    let document = serde_json::json!({ "users": user_entries, "permissions": permission_entries });
    Ok(document.to_string())
}

/// Creates or updates the users with one `rabbitmqctl import_definitions`,
/// the definitions passed on standard input (so no file holds the hashes,
/// and the broker node needs no access to a file of ours). The import is
/// asynchronous on the broker: see [`wait_until_usable`].
pub fn apply(users: &[AdapterUser], vhost: &str) -> Result<(), UsersError> {
    use std::io::Write;
    let document = definitions(users, vhost)?;
    let failed = |detail: String| UsersError::Rabbitmqctl {
        action: "import_definitions".into(),
        detail,
    };
    let mut child = Command::new("rabbitmqctl")
        .args(["import_definitions", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    child
        .stdin
        .take()
        .ok_or_else(|| failed("no standard input".into()))?
        .write_all(document.as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

/// Waits until every user can log in to the broker at `url_of(user)`:
/// `rabbitmqctl import_definitions` applies definitions asynchronously.
pub async fn wait_until_usable(
    users: &[AdapterUser],
    url_of: impl Fn(&AdapterUser) -> String,
    timeout: std::time::Duration,
) -> Result<(), UsersError> {
    let deadline = tokio::time::Instant::now() + timeout;
    for user in users {
        let config = lhcie_config::BrokerConfig::new(url_of(user));
        loop {
            match crate::connect(&config, "user check").await {
                Ok(connection) => {
                    let _ = connection.close(200, "checked".into()).await;
                    break;
                }
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(UsersError::Rabbitmqctl {
                        action: format!("logging in as {}", user.name),
                        detail: error.to_string(),
                    });
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// Deletes users, concurrently (tests clean up with this).
pub fn delete(names: &[String]) -> Result<(), UsersError> {
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            Command::new("rabbitmqctl")
                .args(["delete_user", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map(|child| (name, child))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| UsersError::Rabbitmqctl {
            action: "delete_user".into(),
            detail: e.to_string(),
        })?;
    for (name, child) in children {
        let output = child
            .wait_with_output()
            .map_err(|e| UsersError::Rabbitmqctl {
                action: format!("delete_user {name}"),
                detail: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(UsersError::Rabbitmqctl {
                action: format!("delete_user {name}"),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_cover_only_the_own_queue_and_the_ingress() {
        let names = Names::new("lhcie");
        let user = adapter_user(&names, &ExchangeId::parse("nwl-imperial").unwrap()).unwrap();
        assert_eq!(user.name, "lhcie-nwl-imperial");
        assert_eq!(user.configure, "^$");
        assert_eq!(user.write, "^lhcie\\.ingress$");
        assert_eq!(user.read, "^lhcie\\.egress\\.nwl-imperial$");
        assert_eq!(user.password.len(), 18);
        assert!(!format!("{user:?}").contains(&user.password));
    }

    /// The name an anchored literal pattern (`^a\.b$`) stands for.
    fn literal(pattern: &str) -> String {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap_or_else(|| panic!("{pattern} is not anchored"));
        assert!(
            !inner
                .replace("\\.", "")
                .contains(['.', '*', '+', '?', '|', '(', '[', '{']),
            "{pattern} is not a literal"
        );
        inner.replace("\\.", ".")
    }

    #[test]
    fn no_adapter_may_read_or_write_the_patient_notifications() {
        let names = Names::new("lhcie");
        let user = adapter_user(&names, &ExchangeId::parse("nwl-imperial").unwrap()).unwrap();
        assert_eq!(literal(&user.read), "lhcie.egress.nwl-imperial");
        assert_eq!(literal(&user.write), "lhcie.ingress");
        for name in [
            names.patient_notifications_queue(),
            names.patient_notifications_exchange(),
        ] {
            assert_ne!(literal(&user.read), name);
            assert_ne!(literal(&user.write), name);
        }
    }

    #[test]
    fn password_hash_matches_rabbitmq_format() {
        // RabbitMQ's documented example: salt 908D C60A, password "test12".
        assert_eq!(
            password_hash("test12", [0x90, 0x8d, 0xc6, 0x0a]),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
    }

    #[test]
    fn definitions_are_json_with_escaped_patterns() {
        let names = Names::new("lhcie");
        let user = adapter_user(&names, &ExchangeId::parse("sel-kings").unwrap()).unwrap();
        let document = definitions(&[user], "/").unwrap();
        assert!(
            document.contains("\"write\":\"^lhcie\\\\.ingress$\""),
            "{document}"
        );
        assert!(document.contains("rabbit_password_hashing_sha256"));
    }
}

//! One broker user per exchange's adapter, with permissions that cover only
//! its own queue and the ingress exchange:
//!
//! | permission | pattern | why |
//! |---|---|---|
//! | configure | `^$` | adapters declare nothing; the hub bootstraps the topology |
//! | write | `^<prefix>\.ingress$` | publish envelopes to the hub |
//! | read | `^<prefix>\.egress\.<exchange-id>$` | consume its own deliveries, no one else's |
//!
//! The broker validates the `user-id` property of every message against the
//! user that published it, so the hub can trust it to say which exchange
//! submitted an envelope.
//!
//! Users are applied with one `rabbitmqctl import_definitions` call (password
//! hashes computed here, in RabbitMQ's salted SHA-256 format), which needs
//! to run on the broker's host with rights to `rabbitmqctl`. Deployments
//! that manage users otherwise only need the names and permissions above.

use std::path::Path;
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
    /// Writing the definitions file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
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

fn rabbitmqctl(args: &[&str]) -> Result<(), UsersError> {
    let action = args.join(" ");
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| UsersError::Rabbitmqctl {
            action: action.clone(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(UsersError::Rabbitmqctl {
            action,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Creates or updates the users with one `rabbitmqctl import_definitions`,
/// through a definitions file written (owner-readable only) at `scratch`
/// and removed afterwards.
pub fn apply(users: &[AdapterUser], vhost: &str, scratch: &Path) -> Result<(), UsersError> {
    use std::os::unix::fs::OpenOptionsExt;
    let document = definitions(users, vhost)?;
    let fail = |source| UsersError::Write {
        path: scratch.display().to_string(),
        source,
    };
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(scratch)
            .map_err(fail)?;
        file.write_all(document.as_bytes()).map_err(fail)?;
    }
    let result = rabbitmqctl(&["import_definitions", &scratch.display().to_string()]);
    let _ = std::fs::remove_file(scratch);
    result
}

/// Deletes users (tests clean up with this).
pub fn delete(names: &[String]) -> Result<(), UsersError> {
    for name in names {
        rabbitmqctl(&["delete_user", name])?;
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

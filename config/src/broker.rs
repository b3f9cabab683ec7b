//! Settings for the connection to RabbitMQ and the names of what is declared
//! on it.

use serde::Deserialize;

/// How to reach the broker and how the hub's exchanges and queues are named
/// and bounded there.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Prefix of every exchange and queue name, so that several
    /// deployments (or test runs) can share a broker.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How many times a message may be delivered from a queue before it is
    /// dead-lettered as poison.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
}

fn default_prefix() -> String {
    "lhcie".into()
}

fn default_delivery_limit() -> u32 {
    5
}

impl BrokerConfig {
    /// Settings for a broker at `url` with the default prefix and limits.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            delivery_limit: default_delivery_limit(),
        }
    }

    /// Checks the values, returning (key, problem) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            problems.push(("url", "must start with amqp:// or amqps://".to_owned()));
        } else if self.url.starts_with("amqp://") && !is_loopback_host(&url_host(&self.url)) {
            problems.push((
                "url",
                format!(
                    "amqp:// sends the broker password and messages in clear: use amqps:// for the non-loopback host {}",
                    url_host(&self.url)
                ),
            ));
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 64
            && self.prefix.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
            });
        if !prefix_ok {
            problems.push((
                "prefix",
                "use 1 to 64 lower-case letters, digits, '-', '.' or '_'".to_owned(),
            ));
        }
        if !(1..=100).contains(&self.delivery_limit) {
            problems.push(("delivery_limit", "must be 1 to 100".to_owned()));
        }
        problems
    }

    /// The same settings, logging in as `user` with `password` (both
    /// percent-encoded into the URL).
    pub fn with_credentials(&self, user: &str, password: &str) -> Self {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .unwrap_or(("amqp", self.url.as_str()));
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        Self {
            url: format!(
                "{scheme}://{}:{}@{host}",
                percent_encode(user),
                percent_encode(password)
            ),
            ..self.clone()
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// The host of `scheme://[user[:password]@]host[:port][/path]`, without
/// brackets around an IPv6 address.
pub(crate) fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or("").to_owned();
    }
    host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
        .to_owned()
}

/// Whether `host` (a name or an address, IPv6 without brackets) is this
/// machine: `localhost` or a loopback address. Plain text is accepted only
/// to such hosts.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Replaces the password in `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_amqp_is_refused_to_a_non_loopback_host() {
        for ok in [
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "amqp://localhost",
            "amqp://[::1]:5672/%2f",
            "amqps://broker.example.nhs.uk:5671/%2f",
        ] {
            assert!(BrokerConfig::new(ok).problems().is_empty(), "{ok}");
        }
        for bad in [
            "amqp://broker.example.nhs.uk:5672/%2f",
            "amqp://u:p@10.0.0.5/%2f",
            "amqp://0.0.0.0",
        ] {
            let problems = BrokerConfig::new(bad).problems();
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert_eq!(problems[0].0, "url");
            assert!(problems[0].1.contains("amqps://"), "{}", problems[0].1);
            assert!(!problems[0].1.contains(":p@"), "{}", problems[0].1);
        }
    }

    #[test]
    fn passwords_never_show() {
        let config = BrokerConfig::new("amqp://hub:s3cret@127.0.0.1:5672/%2f");
        assert_eq!(config.redacted_url(), "amqp://hub:***@127.0.0.1:5672/%2f");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(redact_url("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn credentials_are_replaced_and_encoded() {
        let config = BrokerConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f");
        let adapter = config.with_credentials("lhcie-nwl-imperial", "p@ss:w/rd");
        assert_eq!(
            adapter.url,
            "amqp://lhcie-nwl-imperial:p%40ss%3Aw%2Frd@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            BrokerConfig::new("amqp://127.0.0.1")
                .with_credentials("u", "p")
                .url,
            "amqp://u:p@127.0.0.1"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut config = BrokerConfig::new("http://x");
        config.prefix = "LHCIE".into();
        config.delivery_limit = 0;
        let keys: Vec<&str> = config.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["url", "prefix", "delivery_limit"]);
    }
}

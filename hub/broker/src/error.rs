//! Broker errors.

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker could not be reached or refused the login.
    #[error("cannot connect to the broker at {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        source: lapin::Error,
    },
    /// Something already on the broker has the same name but different
    /// settings, so declaring it again was refused.
    #[error(
        "{kind} `{name}` already exists on the broker with different settings ({detail}); it was not changed. Drain and delete it, or use a different prefix"
    )]
    Conflict {
        /// "queue" or "exchange".
        kind: &'static str,
        /// Its name.
        name: String,
        /// The broker's explanation.
        detail: String,
    },
    /// Any other failure of a broker operation.
    #[error("{operation} failed: {source}")]
    Operation {
        /// What was being done, e.g. "declaring queue lhcie.ingress".
        operation: String,
        /// Why.
        source: lapin::Error,
    },
}

/// The broker's 406 PRECONDITION_FAILED text, if that is what `error` is.
pub(crate) fn precondition_failed(error: &lapin::Error) -> Option<String> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(
                amqp.kind(),
                lapin::protocol::AMQPErrorKind::Soft(
                    lapin::protocol::AMQPSoftError::PRECONDITIONFAILED
                )
            ) =>
        {
            Some(amqp.get_message().to_string())
        }
        _ => None,
    }
}

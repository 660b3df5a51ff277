//! What librdkafka says about the brokers while a client cannot use them. A wrong password
//! or an untrusted certificate arrives as an error event, while the request that needed the
//! broker only times out; the start-up keeps these events so that it can stop at once,
//! naming the broker and the cause, instead of retrying what cannot succeed.

use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tracing::{debug, warn};

/// A client context that keeps the latest broker error, and the first refusal.
#[derive(Clone, Default)]
pub struct BrokerErrors {
    recorded: Arc<Mutex<Recorded>>,
}

#[derive(Default)]
struct Recorded {
    last: Option<String>,
    refusal: Option<String>,
}

impl BrokerErrors {
    fn recorded(&self) -> MutexGuard<'_, Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// librdkafka's description of a refusal that retrying cannot cure (authentication
    /// failed, the broker's certificate was not trusted), naming the broker.
    pub fn refusal(&self) -> Option<String> {
        self.recorded().refusal.clone()
    }

    /// The latest broker error, for a report that only says "timed out" otherwise.
    pub fn last(&self) -> Option<String> {
        self.recorded().last.clone()
    }

    fn record(&self, reason: &str, is_refusal: bool) {
        let mut recorded = self.recorded();
        if recorded.refusal.is_none() && is_refusal {
            recorded.refusal = Some(reason.to_string());
        }
        recorded.last = Some(reason.to_string());
    }
}

/// Whether an error event is a refusal: failed authentication, or TLS that failed for a
/// reason in the certificates rather than the connection.
fn is_refusal(error: &KafkaError, reason: &str) -> bool {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Authentication) => true,
        Some(RDKafkaErrorCode::SSL) => reason.contains("certificate"),
        _ => false,
    }
}

/// Whether a log line of librdkafka's tells of a refusal. The clients that start-up uses
/// are not polled for events while they wait, but librdkafka logs a broker's failure from
/// its own threads at once: `<listener>://<host:port>/<id>: SASL authentication error: ...`
/// or `...: SSL handshake failed: ... certificate verify failed ...`.
fn logs_refusal(message: &str) -> bool {
    [
        "SASL authentication error",
        "Authentication failed",
        "certificate verify failed",
    ]
    .iter()
    .any(|words| message.contains(words))
}

impl ClientContext for BrokerErrors {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                warn!(%facility, %message, "Kafka client error");
                self.record(message, logs_refusal(message));
            }
            _ => debug!(%facility, %message, "Kafka client"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(%error, %reason, "Kafka client error");
        self.record(reason, is_refusal(&error, reason));
    }
}

/// The metadata client at start is a consumer that never joins a group.
impl ConsumerContext for BrokerErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_certificate_failures_are_refusals_and_timeouts_are_not() {
        let errors = BrokerErrors::default();
        errors.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(errors.refusal(), None);
        errors.error(
            KafkaError::Global(RDKafkaErrorCode::SSL),
            "ssl://127.0.0.1:9093/bootstrap: SSL transport error: Connection reset by peer",
        );
        assert_eq!(errors.refusal(), None, "a reset is no refusal");
        let untrusted =
            "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate verify failed";
        errors.error(KafkaError::Global(RDKafkaErrorCode::SSL), untrusted);
        assert_eq!(errors.refusal().as_deref(), Some(untrusted));
        errors.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error",
        );
        assert_eq!(
            errors.refusal().as_deref(),
            Some(untrusted),
            "the first is kept"
        );
        assert_eq!(
            errors.last().as_deref(),
            Some("sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error")
        );
    }

    #[test]
    fn a_logged_authentication_failure_is_a_refusal_and_a_warning_is_nothing() {
        let errors = BrokerErrors::default();
        errors.log(
            RDKafkaLogLevel::Warning,
            "FAIL",
            "sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: later",
        );
        assert_eq!(errors.last(), None);
        let failed = "sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        errors.log(RDKafkaLogLevel::Error, "FAIL", failed);
        assert_eq!(errors.refusal().as_deref(), Some(failed));
    }
}

//! Client errors logged once per kind and half minute. While a broker is away, every
//! client reports every failed reconnect ("all brokers are down", "connection refused")
//! several times a second; the first report of each kind says what happened, and the
//! next one, half a minute later, how many more came meanwhile.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use tracing::warn;

/// How long the repeats of an error stay unlogged.
const QUIET_FOR: Duration = Duration::from_secs(30);

/// A consumer whose client errors are logged through [`QuietErrors`].
pub type QuietConsumer = BaseConsumer<QuietErrors>;

/// Per kind of error: when it was last logged, and how many came since.
#[derive(Debug, Default)]
pub struct QuietErrors {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl QuietErrors {
    /// Logs `message` as a warning unless an error of `kind` was logged less than
    /// [`QUIET_FOR`] ago, in which case it is only counted.
    pub fn warn(&self, kind: &str, message: impl Display) {
        let repeats = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            match seen.get_mut(kind) {
                Some((logged_at, repeats)) if now.duration_since(*logged_at) < QUIET_FOR => {
                    *repeats += 1;
                    return;
                }
                Some((logged_at, repeats)) => {
                    *logged_at = now;
                    std::mem::take(repeats)
                }
                None => {
                    seen.insert(kind.to_string(), (now, 0));
                    0
                }
            }
        };
        if repeats == 0 {
            warn!("{message}");
        } else {
            warn!(
                "{message} ({repeats} more like it in the last {} s)",
                QUIET_FOR.as_secs()
            );
        }
    }

    /// Logs a consumer's error, quietly: librdkafka retries it by itself.
    pub fn consumer_error(&self, error: &KafkaError) {
        self.warn(
            &kind_of(error),
            format_args!("consumer error; librdkafka retries: {error}"),
        );
    }
}

/// The kind of an error, for counting repeats: its code when it has one.
fn kind_of(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => error.to_string(),
    }
}

impl ClientContext for QuietErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.warn(
            &kind_of(&error),
            format_args!("librdkafka: {error}: {reason}"),
        );
    }
}

impl ConsumerContext for QuietErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_a_kind_are_counted_not_logged() {
        let quiet = QuietErrors::default();
        quiet.warn("AllBrokersDown", "down");
        quiet.warn("AllBrokersDown", "down");
        quiet.warn("AllBrokersDown", "down");
        quiet.warn("Resolve", "cannot resolve");
        let seen = quiet.seen.lock().expect("seen");
        assert_eq!(seen["AllBrokersDown"].1, 2);
        assert_eq!(seen["Resolve"].1, 0);
    }
}

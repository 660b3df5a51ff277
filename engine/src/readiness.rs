//! Why a running engine is not ready to be relied on: what `/readyz` answers 503 with
//! while the engine waits out a fault it expects to pass (a broker away, output not yet
//! acknowledged), as opposed to a fatal error, which `/healthz` reports.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// What holds the engine back. Each is set and cleared by the part that knows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// The brokers do not answer the watermark monitor: lag and progress are unknown.
    Brokers,
    /// A checkpoint waits for the broker to acknowledge its output, so views stop moving.
    Output,
}

/// The holds in force, each with a reason for people.
#[derive(Debug, Default)]
pub struct Readiness {
    holds: Mutex<BTreeMap<Hold, String>>,
}

impl Readiness {
    /// Sets `hold` with `reason`, replacing the reason it had.
    pub fn hold(&self, hold: Hold, reason: impl Into<String>) {
        self.lock().insert(hold, reason.into());
    }

    /// Clears `hold`, if it was set.
    pub fn release(&self, hold: Hold) {
        self.lock().remove(&hold);
    }

    /// Every hold in force, with its reason.
    pub fn holds(&self) -> Vec<(Hold, String)> {
        self.lock()
            .iter()
            .map(|(hold, reason)| (*hold, reason.clone()))
            .collect()
    }

    /// Whether nothing holds the engine back.
    pub fn is_ready(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Hold, String>> {
        // A holder that panicked leaves a map that is still a fair account of the holds.
        self.holds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_kept_apart_and_released_one_by_one() {
        let readiness = Readiness::default();
        assert!(readiness.is_ready());
        readiness.hold(Hold::Output, "waiting 3 s");
        readiness.hold(Hold::Brokers, "no answer");
        readiness.hold(Hold::Output, "waiting 4 s");
        assert_eq!(
            readiness.holds(),
            vec![
                (Hold::Brokers, "no answer".to_string()),
                (Hold::Output, "waiting 4 s".to_string())
            ]
        );
        readiness.release(Hold::Brokers);
        assert!(!readiness.is_ready());
        readiness.release(Hold::Output);
        readiness.release(Hold::Output);
        assert!(readiness.is_ready());
    }
}

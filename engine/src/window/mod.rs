//! Windows: their bounds, their kinds ([`kinds`]) and what happens to late records.
//!
//! Windows are aligned to the epoch, as in Kafka Streams: a tumbling window of size `s`
//! holding event time `t` starts at the largest multiple of `s` that is `<= t`.

mod kinds;

use std::time::Duration;

pub use kinds::{
    FixedWindows, HoppingWindows, SessionWindows, SlidingWindows, TumblingWindows, WindowSpec,
};

use serde::{Deserialize, Serialize};

/// The bounds of one window, `[start, end)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowBounds {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// What happens to a record that arrives after its window closed, per windowed
/// aggregation. Every late record is counted, per view and per partition, in `/status`.
/// A record read from a topic is judged by its source and written once per destination,
/// as it was read, naming every view it missed (see the crate's `late` module).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LatePolicy {
    /// It is written to `<source topic>.late`, with the reason in a header (the default).
    #[default]
    Drop,
    /// It is written to the given topic instead, for the application to handle.
    SideOutput(String),
    /// Closed windows are kept for `allowed_lateness` more of event time (Flink's allowed
    /// lateness). A record for one of them goes into it, and the window's final value is
    /// sent again, corrected; a record later than that is dropped as with `Drop`.
    Update {
        /// How long after its end a window still takes records.
        allowed_lateness: Duration,
    },
}

impl LatePolicy {
    /// How long closed windows are kept for corrections, in milliseconds.
    pub fn allowed_lateness_ms(&self) -> i64 {
        match self {
            LatePolicy::Update { allowed_lateness } => {
                i64::try_from(allowed_lateness.as_millis()).unwrap_or(i64::MAX)
            }
            _ => 0,
        }
    }

    /// Where late records go instead of `<source topic>.late`, if anywhere.
    pub fn side_output(&self) -> Option<&str> {
        match self {
            LatePolicy::SideOutput(topic) => Some(topic),
            _ => None,
        }
    }

    /// The policy as the plan shows it (and the state fingerprint includes it).
    pub fn label(&self) -> String {
        match self {
            LatePolicy::Drop => String::new(),
            LatePolicy::SideOutput(topic) => format!(", late records to {topic}"),
            LatePolicy::Update { .. } => {
                format!(", late updates within {} ms", self.allowed_lateness_ms())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_are_epoch_aligned() {
        let minute = TumblingWindows::of(Duration::from_secs(60));
        assert_eq!(
            minute.assign(0),
            WindowBounds {
                start: 0,
                end: 60_000
            }
        );
        assert_eq!(
            minute.assign(59_999),
            WindowBounds {
                start: 0,
                end: 60_000
            }
        );
        assert_eq!(
            minute.assign(60_000),
            WindowBounds {
                start: 60_000,
                end: 120_000
            }
        );
        assert_eq!(
            minute.assign(-1),
            WindowBounds {
                start: -60_000,
                end: 0
            }
        );
    }
}

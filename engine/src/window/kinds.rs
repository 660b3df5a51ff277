//! The window kinds a stream can be grouped into, as Kafka Streams names them: tumbling,
//! hopping, sliding and session windows, each with its own grace period.
//!
//! Every bound is half-open, `[start, end)`. Kafka Streams writes sliding and session
//! windows with an inclusive end; its inclusive end `e` is Sluice's `end` `e + 1`.

use std::time::Duration;

use super::WindowBounds;

/// Milliseconds of a duration, saturating at `i64::MAX`.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Epoch-aligned, non-overlapping windows of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TumblingWindows {
    size_ms: i64,
    grace_ms: i64,
}

impl TumblingWindows {
    /// Windows of the given size (at least one millisecond), with no grace of their own.
    pub fn of(size: Duration) -> Self {
        TumblingWindows {
            size_ms: millis(size).max(1),
            grace_ms: 0,
        }
    }

    /// Keeps each window open for `grace` of event time after its end, on top of the
    /// source's grace, so that records that much later still count.
    pub fn grace(self, grace: Duration) -> Self {
        TumblingWindows {
            grace_ms: millis(grace),
            ..self
        }
    }

    /// The window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The one window that holds `event_time`.
    pub fn assign(&self, event_time: i64) -> WindowBounds {
        let start = event_time - event_time.rem_euclid(self.size_ms);
        super::WindowBounds {
            start,
            end: start.saturating_add(self.size_ms),
        }
    }
}

/// Epoch-aligned windows of one size that start every `advance`, so that each record is in
/// `size / advance` of them (Kafka Streams' `TimeWindows.advanceBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoppingWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl HoppingWindows {
    /// Windows of the given size (at least one millisecond) that advance by their size
    /// until [`Self::advance_by`] says otherwise.
    pub fn of(size: Duration) -> Self {
        let size_ms = millis(size).max(1);
        HoppingWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: 0,
        }
    }

    /// A new window starts every `advance`. An advance is at least a millisecond and at
    /// most the size: Kafka Streams refuses a larger one, which would leave gaps.
    pub fn advance_by(self, advance: Duration) -> Self {
        HoppingWindows {
            advance_ms: millis(advance).clamp(1, self.size_ms),
            ..self
        }
    }

    /// Keeps each window open for `grace` of event time after its end.
    pub fn grace(self, grace: Duration) -> Self {
        HoppingWindows {
            grace_ms: millis(grace),
            ..self
        }
    }
}

/// Windows of a fixed size that slide over the records of a key: Kafka Streams'
/// `SlidingWindows.ofTimeDifference`. Two records are in a window together when their
/// times differ by at most the time difference; the windows emitted are those that
/// start or end at a record, so each distinct set of records close in time is one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of records at most `difference` apart.
    pub fn with_time_difference(difference: Duration) -> Self {
        SlidingWindows {
            difference_ms: millis(difference),
            grace_ms: 0,
        }
    }

    /// Keeps each window open for `grace` of event time after its end.
    pub fn grace(self, grace: Duration) -> Self {
        SlidingWindows {
            grace_ms: millis(grace),
            ..self
        }
    }
}

/// Sessions of activity per key: a session grows while records keep coming within the
/// inactivity gap of it, and two sessions merge when a record falls within the gap of
/// both (Kafka Streams' `SessionWindows.ofInactivityGap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` without a record.
    pub fn with_inactivity_gap(gap: Duration) -> Self {
        SessionWindows {
            gap_ms: millis(gap),
            grace_ms: 0,
        }
    }

    /// Keeps each session open for `grace` of event time after it would have ended.
    pub fn grace(self, grace: Duration) -> Self {
        SessionWindows {
            grace_ms: millis(grace),
            ..self
        }
    }
}

/// Any of the window kinds, as the window operator and the plan see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Tumbling or hopping windows: their bounds depend on time alone.
    Fixed(FixedWindows),
    /// Sliding windows: their bounds depend on the times of the records.
    Sliding {
        /// The greatest time difference within a window, in milliseconds.
        difference_ms: i64,
        /// The window's own grace, in milliseconds.
        grace_ms: i64,
    },
    /// Session windows.
    Session {
        /// The inactivity gap, in milliseconds.
        gap_ms: i64,
        /// The window's own grace, in milliseconds.
        grace_ms: i64,
    },
}

/// Epoch-aligned windows of `size_ms` starting every `advance_ms` (tumbling when the two
/// are equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindows {
    /// The window size.
    pub size_ms: i64,
    /// The distance between window starts, at most the size.
    pub advance_ms: i64,
    /// How long after its end a window stays open.
    pub grace_ms: i64,
}

impl FixedWindows {
    /// Whether the windows do not overlap.
    pub fn is_tumbling(&self) -> bool {
        self.advance_ms == self.size_ms
    }

    /// The start of the last window that holds `time`.
    pub fn last_start_holding(&self, time: i64) -> i64 {
        time - time.rem_euclid(self.advance_ms)
    }

    /// The start of the first window that holds `time`.
    pub fn first_start_holding(&self, time: i64) -> i64 {
        // The first multiple of the advance above `time - size`.
        let bound = time.saturating_sub(self.size_ms);
        bound - bound.rem_euclid(self.advance_ms) + self.advance_ms
    }

    /// When the window starting at `start` closes: its end plus its grace.
    pub fn closes_at(&self, start: i64) -> i64 {
        start
            .saturating_add(self.size_ms)
            .saturating_add(self.grace_ms)
    }

    /// The start of the first window that has not closed once the watermark is `watermark`.
    pub fn first_open_start(&self, watermark: i64) -> i64 {
        // closes_at(start) > watermark  <=>  start > watermark - size - grace.
        let bound = watermark
            .saturating_sub(self.size_ms)
            .saturating_sub(self.grace_ms);
        if bound == i64::MIN {
            return i64::MIN;
        }
        bound - bound.rem_euclid(self.advance_ms) + self.advance_ms
    }

    /// The label `describe` shows.
    pub fn label(&self) -> String {
        let grace = grace_label(self.grace_ms);
        if self.is_tumbling() {
            format!("tumbling {} ms{grace}", self.size_ms)
        } else {
            format!(
                "hopping {} ms every {} ms{grace}",
                self.size_ms, self.advance_ms
            )
        }
    }
}

impl WindowSpec {
    /// The one lateness rule: a record at `event_time`, read when its partition's
    /// watermark was `watermark`, is late when every window of this kind that could take it
    /// had closed by then (its end plus the window's grace), with `allowed_lateness_ms`
    /// more for windows that take corrections. Returns the window to name in its late
    /// record (the last that held it), or `None` when some window still takes it.
    ///
    /// Sliding and session windows are built from the records themselves, so their
    /// records are judged by their own instant: the sliding window that ends with the
    /// record (`[t - d, t + 1)`) or the session of the record alone (`[t, t + 1)`).
    ///
    /// It depends on nothing but its arguments, so the source that reads the record and
    /// every window operator it reaches decide alike.
    pub fn late_window(
        &self,
        event_time: i64,
        watermark: i64,
        allowed_lateness_ms: i64,
    ) -> Option<WindowBounds> {
        let reached = watermark.saturating_sub(allowed_lateness_ms);
        let (window, closes_at) = match *self {
            WindowSpec::Fixed(fixed) => {
                let last = fixed.last_start_holding(event_time);
                let window = WindowBounds {
                    start: last,
                    end: last.saturating_add(fixed.size_ms),
                };
                return (fixed.first_open_start(reached) > last).then_some(window);
            }
            WindowSpec::Sliding {
                difference_ms,
                grace_ms,
            } => {
                let window = WindowBounds {
                    start: event_time.saturating_sub(difference_ms.max(0)),
                    end: event_time.saturating_add(1),
                };
                (window, window.end.saturating_add(grace_ms))
            }
            WindowSpec::Session { grace_ms, .. } => {
                let window = WindowBounds {
                    start: event_time,
                    end: event_time.saturating_add(1),
                };
                (window, window.end.saturating_add(grace_ms))
            }
        };
        (closes_at <= reached).then_some(window)
    }

    /// The label `describe` shows, which the state fingerprint includes.
    pub fn label(&self) -> String {
        match self {
            WindowSpec::Fixed(fixed) => fixed.label(),
            WindowSpec::Sliding {
                difference_ms,
                grace_ms,
            } => format!("sliding {difference_ms} ms{}", grace_label(*grace_ms)),
            WindowSpec::Session { gap_ms, grace_ms } => {
                format!("session gap {gap_ms} ms{}", grace_label(*grace_ms))
            }
        }
    }
}

fn grace_label(grace_ms: i64) -> String {
    if grace_ms == 0 {
        String::new()
    } else {
        format!(" grace {grace_ms} ms")
    }
}

impl From<TumblingWindows> for WindowSpec {
    fn from(windows: TumblingWindows) -> Self {
        WindowSpec::Fixed(FixedWindows {
            size_ms: windows.size_ms,
            advance_ms: windows.size_ms,
            grace_ms: windows.grace_ms,
        })
    }
}

impl From<HoppingWindows> for WindowSpec {
    fn from(windows: HoppingWindows) -> Self {
        WindowSpec::Fixed(FixedWindows {
            size_ms: windows.size_ms,
            advance_ms: windows.advance_ms,
            grace_ms: windows.grace_ms,
        })
    }
}

impl From<SlidingWindows> for WindowSpec {
    fn from(windows: SlidingWindows) -> Self {
        WindowSpec::Sliding {
            difference_ms: windows.difference_ms,
            grace_ms: windows.grace_ms,
        }
    }
}

impl From<SessionWindows> for WindowSpec {
    fn from(windows: SessionWindows) -> Self {
        WindowSpec::Session {
            gap_ms: windows.gap_ms,
            grace_ms: windows.grace_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hopping(size: i64, advance: i64) -> FixedWindows {
        FixedWindows {
            size_ms: size,
            advance_ms: advance,
            grace_ms: 0,
        }
    }

    #[test]
    fn a_time_is_in_size_over_advance_hopping_windows() {
        let windows = hopping(60, 10);
        assert_eq!(windows.first_start_holding(65), 10);
        assert_eq!(windows.last_start_holding(65), 60);
        assert_eq!(windows.first_start_holding(60), 10);
        assert_eq!(windows.first_start_holding(-5), -60);
        assert_eq!(windows.last_start_holding(-5), -10);
        // Against the definition: every multiple of 10 whose window holds the time.
        for time in -130..130 {
            let holding: Vec<i64> = (-300..300)
                .filter(|start| start % 10 == 0 && *start <= time && time < start + 60)
                .collect();
            assert_eq!(holding.first(), Some(&windows.first_start_holding(time)));
            assert_eq!(holding.last(), Some(&windows.last_start_holding(time)));
        }
    }

    #[test]
    fn the_first_open_window_follows_the_watermark_and_the_grace() {
        let windows = FixedWindows {
            grace_ms: 5,
            ..hopping(60, 10)
        };
        // The window [0, 60) closes at 65.
        assert_eq!(windows.first_open_start(64), 0);
        assert_eq!(windows.first_open_start(65), 10);
        assert_eq!(windows.first_open_start(i64::MIN), i64::MIN);
    }

    #[test]
    fn an_advance_is_between_a_millisecond_and_the_size() {
        let spec: WindowSpec = HoppingWindows::of(Duration::from_secs(60))
            .advance_by(Duration::from_secs(90))
            .into();
        assert_eq!(
            spec,
            WindowSpec::Fixed(FixedWindows {
                size_ms: 60_000,
                advance_ms: 60_000,
                grace_ms: 0
            })
        );
        let spec: WindowSpec = HoppingWindows::of(Duration::from_secs(60))
            .advance_by(Duration::ZERO)
            .into();
        assert!(matches!(spec, WindowSpec::Fixed(fixed) if fixed.advance_ms == 1));
    }

    proptest::proptest! {
        /// The lateness rule against the windows counted one by one: a record is late when
        /// every window of its time had closed (end plus grace, plus the allowed lateness)
        /// at its watermark, and then the window named is the last that held it.
        #[test]
        fn a_record_is_late_exactly_when_every_window_holding_it_has_closed(
            size in 1i64..500,
            advance_from_size in 0i64..500,
            grace in 0i64..300,
            allowed in 0i64..300,
            at in -2_000i64..2_000,
            behind in -500i64..3_000,
        ) {
            let advance = 1 + advance_from_size % size;
            let windows = FixedWindows { size_ms: size, advance_ms: advance, grace_ms: grace };
            let watermark = at + behind;
            let holding: Vec<i64> = (at - size..=at)
                .filter(|start| start.rem_euclid(advance) == 0 && at < start + size)
                .collect();
            let open = holding
                .iter()
                .any(|start| start + size + grace + allowed > watermark);
            let judged = WindowSpec::Fixed(windows).late_window(at, watermark, allowed);
            proptest::prop_assert_eq!(judged.is_none(), open);
            if let Some(window) = judged {
                let last = holding.iter().max().copied().unwrap_or(i64::MIN);
                proptest::prop_assert_eq!(window, WindowBounds { start: last, end: last + size });
            }
            // Sliding and session records are judged by their own instant.
            let instant_open = at + 1 + grace + allowed > watermark;
            for spec in [
                WindowSpec::Sliding { difference_ms: size, grace_ms: grace },
                WindowSpec::Session { gap_ms: size, grace_ms: grace },
            ] {
                proptest::prop_assert_eq!(
                    spec.late_window(at, watermark, allowed).is_none(),
                    instant_open
                );
            }
            // Nothing at or past its watermark is late anywhere (the sources' shortcut).
            if at >= watermark {
                proptest::prop_assert!(open && instant_open);
            }
        }
    }
}

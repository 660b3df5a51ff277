//! When the sources finish catching up with their partitions, so that a checkpoint opens at
//! once instead of at the next interval.
//!
//! Views are written only at checkpoints. After a replay, a restart's backlog or a burst,
//! the answer to everything read is complete the moment the sources reach the ends of their
//! partitions, and waiting up to an interval to write it only delays it: a replay's result,
//! a benchmark's end. So a checkpoint opens as soon as every source has caught up after a
//! stretch of reading behind that lasted at least `min_stretch`. Sources in a live stream
//! fall behind for a few milliseconds at a time (between a record's arrival and its read),
//! which the minimum keeps from opening a checkpoint each time; a stretch of sustained
//! load opens at most one early checkpoint when it ends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::coordinator::ParticipantId;

/// The shortest stretch of reading behind whose end opens a checkpoint early by default:
/// longer than the brief lags of a live stream, which last about a fetch's round trip.
pub const DEFAULT_MIN_STRETCH: Duration = Duration::from_millis(500);

/// Which sources are behind, since when, and whether a catch-up ended since the last
/// checkpoint opened.
#[derive(Debug)]
pub(crate) struct CatchUp {
    min_stretch: Duration,
    behind: BTreeSet<ParticipantId>,
    behind_since: Option<Instant>,
    ended: bool,
}

impl CatchUp {
    pub(crate) fn new(min_stretch: Duration) -> Self {
        CatchUp {
            min_stretch,
            behind: BTreeSet::new(),
            behind_since: None,
            ended: false,
        }
    }

    /// A source starts behind: until it first finds itself at the ends of its partitions,
    /// it is catching up with what they held before it started.
    pub(crate) fn source_registered(&mut self, source: ParticipantId, now: Instant) {
        self.report(source, false, now);
    }

    /// Records whether `source` has read everything its partitions are known to hold.
    pub(crate) fn report(&mut self, source: ParticipantId, caught_up: bool, now: Instant) {
        if !caught_up {
            self.behind.insert(source);
            self.behind_since.get_or_insert(now);
            return;
        }
        self.behind.remove(&source);
        if !self.behind.is_empty() {
            return;
        }
        if let Some(since) = self.behind_since.take()
            && now.saturating_duration_since(since) >= self.min_stretch
        {
            self.ended = true;
        }
    }

    /// Whether every source that registered is at the ends of its partitions.
    pub(crate) fn all_caught_up(&self) -> bool {
        self.behind.is_empty()
    }

    /// Whether a catch-up has ended since the last checkpoint opened: the next one should
    /// open now.
    pub(crate) fn has_ended(&self) -> bool {
        self.ended
    }

    /// A checkpoint opened: it takes everything read so far, the end of any catch-up too.
    pub(crate) fn checkpoint_opened(&mut self) {
        self.ended = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRETCH: Duration = Duration::from_millis(500);

    #[test]
    fn sources_that_start_behind_and_catch_up_after_the_stretch_end_a_catch_up() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(STRETCH);
        catch_up.source_registered(0, start);
        catch_up.source_registered(1, start);
        catch_up.report(0, true, start + STRETCH * 2);
        assert!(!catch_up.has_ended(), "source 1 is still behind");
        catch_up.report(1, true, start + STRETCH * 3);
        assert!(catch_up.has_ended());
        catch_up.checkpoint_opened();
        assert!(!catch_up.has_ended());
    }

    #[test]
    fn a_lag_shorter_than_the_stretch_opens_nothing() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(STRETCH);
        catch_up.source_registered(0, start);
        catch_up.report(0, true, start + Duration::from_millis(1));
        for blip in 1..100u32 {
            let at = start + Duration::from_millis(10) * blip;
            catch_up.report(0, false, at);
            catch_up.report(0, true, at + Duration::from_millis(5));
        }
        assert!(!catch_up.has_ended());
    }

    #[test]
    fn the_stretch_lasts_while_any_source_is_behind() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(STRETCH);
        catch_up.source_registered(0, start);
        catch_up.source_registered(1, start);
        // The sources take turns being behind; together they never catch up until the end.
        catch_up.report(0, true, start + Duration::from_millis(100));
        catch_up.report(0, false, start + Duration::from_millis(200));
        catch_up.report(1, true, start + Duration::from_millis(300));
        catch_up.report(1, false, start + Duration::from_millis(400));
        catch_up.report(0, true, start + Duration::from_millis(450));
        assert!(!catch_up.has_ended());
        catch_up.report(1, true, start + Duration::from_millis(600));
        assert!(catch_up.has_ended());
    }

    #[test]
    fn a_new_stretch_starts_after_a_catch_up_ended() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(STRETCH);
        catch_up.source_registered(0, start);
        catch_up.report(0, true, start + STRETCH);
        catch_up.checkpoint_opened();
        let again = start + STRETCH * 4;
        catch_up.report(0, false, again);
        catch_up.report(0, true, again + STRETCH / 2);
        assert!(!catch_up.has_ended(), "the second stretch was short");
    }
}

//! When the watermark reached each point, so that a window's close latency can start at
//! the instant the watermark reached its close point rather than when the operator got to it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::status::EngineStatus;

/// Windows that closed together: their key's close point, their epoch, how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed {
    /// The watermark at which they could close.
    pub close_point: i64,
    /// The epoch their final values travel in.
    pub epoch: u64,
    /// How many windows.
    pub windows: u64,
}

impl Closed {
    /// Adds `windows` closed at `close_point` in `epoch` to `closes`, merging with the last
    /// report when it is the same point and epoch.
    pub(super) fn add(closes: &mut Vec<Closed>, close_point: i64, epoch: u64, windows: u64) {
        match closes.last_mut() {
            Some(last) if last.close_point == close_point && last.epoch == epoch => {
                last.windows += windows;
            }
            _ => closes.push(Closed {
                close_point,
                epoch,
                windows,
            }),
        }
    }
}

/// The instants at which the operator's input watermark rose, oldest first.
#[derive(Debug, Default)]
pub(super) struct WatermarkClock {
    rises: VecDeque<(i64, Instant)>,
}

impl WatermarkClock {
    /// Notes the watermark seen now.
    pub(super) fn saw(&mut self, watermark: i64, now: Instant) {
        if self.rises.back().is_none_or(|(last, _)| *last < watermark) {
            self.rises.push_back((watermark, now));
        }
    }

    /// The first instant the watermark was at `point` or beyond, if it has been.
    pub(super) fn reached(&self, point: i64) -> Option<Instant> {
        let index = self
            .rises
            .partition_point(|(watermark, _)| *watermark < point);
        self.rises.get(index).map(|(_, at)| *at)
    }

    /// Forgets the rises up to `closed_up_to`: every later close point is above it.
    pub(super) fn forget_up_to(&mut self, closed_up_to: i64) {
        while self
            .rises
            .front()
            .is_some_and(|(watermark, _)| *watermark <= closed_up_to)
        {
            self.rises.pop_front();
        }
    }

    /// Reports `closes` to the engine's window-close latency, then forgets what no later
    /// close needs.
    pub(super) fn report(&mut self, closes: &[Closed], closed_up_to: i64, status: &EngineStatus) {
        let now = Instant::now();
        for closed in closes {
            let reached = self.reached(closed.close_point).unwrap_or(now);
            status
                .window_close
                .closed(closed.epoch, reached, closed.windows);
        }
        self.forget_up_to(closed_up_to);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_close_point_maps_to_the_first_rise_that_reached_it() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut clock = WatermarkClock::default();
        clock.saw(100, at(0));
        clock.saw(100, at(5));
        clock.saw(250, at(10));
        clock.saw(200, at(15));
        clock.saw(400, at(20));
        assert_eq!(clock.reached(50), Some(at(0)));
        assert_eq!(clock.reached(100), Some(at(0)));
        assert_eq!(clock.reached(101), Some(at(10)));
        assert_eq!(clock.reached(300), Some(at(20)));
        assert_eq!(clock.reached(401), None);
        clock.forget_up_to(250);
        assert_eq!(clock.reached(251), Some(at(20)));
    }

    #[test]
    fn closes_of_one_point_and_epoch_merge() {
        let mut closes = Vec::new();
        Closed::add(&mut closes, 10, 1, 2);
        Closed::add(&mut closes, 10, 1, 1);
        Closed::add(&mut closes, 10, 2, 1);
        assert_eq!(
            closes,
            vec![
                Closed {
                    close_point: 10,
                    epoch: 1,
                    windows: 3
                },
                Closed {
                    close_point: 10,
                    epoch: 2,
                    windows: 1
                }
            ]
        );
    }
}

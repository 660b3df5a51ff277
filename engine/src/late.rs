//! Late records: one rule, judged once per input record, by the source that reads it.
//!
//! A record is late for a windowed view when every window of that view that could take it
//! had closed by its partition's watermark right after it was read
//! ([`WindowSpec::late_window`]). That watermark depends only on the partition's own data,
//! so the verdict is the same on every run; and the window operators apply the same rule
//! to the same event time and watermark, which every record carries, so a view drops
//! exactly the records its source found late for it.
//!
//! The source judges each record against the windowed aggregations that its records reach
//! as they were read: through stateless steps, event-time sequencing (a saga) and the
//! stream side of a stream-table join, all of which keep a record's event time and
//! watermark. A record late for one or more of them is written once, as it was read (key,
//! payload and headers), to `<topic>.late`, with the views it misses in
//! `sluice-late-views` and the reason in `sluice-error` (a view with its own side output
//! gets its own copy there). It counts once in `/status`'s `late` and once per view in
//! `late_by`. The record still flows on: a longer window that is still open counts it, a
//! table or a saga applies it, and the windows it is late for drop it, silently.
//!
//! What a record misses is decided from the windows of its topic's views alone, not from
//! what the topology's filters would do with it: a late cancellation is late for the order
//! counts too, though they would not have counted it. That keeps the verdict a function of
//! the record and the plan, known the moment the record is read, and written once.
//!
//! Records that the topology derives (window results, rows of table joins and
//! aggregates) were never read from a topic, and carry envelopes of their own: a window
//! operator that finds one late writes it, as it saw it, itself (see
//! [`crate::render::sink::late_to_topics`]).

use crate::plan::NodeId;
use crate::window::{WindowBounds, WindowSpec};

/// What one windowed aggregation asks of the sources it reads as they were read.
#[derive(Debug, Clone)]
pub(crate) struct LateRule {
    /// The aggregation's plan node.
    pub node: NodeId,
    /// The sources (by index) whose records reach it as they were read.
    pub sources: Vec<u32>,
    /// Its windows.
    pub windows: WindowSpec,
    /// How long closed windows still take corrections.
    pub allowed_lateness_ms: i64,
    /// Its side output, when it has one instead of `<topic>.late`.
    pub destination: Option<String>,
    /// The views it is materialized as.
    pub views: Vec<String>,
}

/// Every aggregation's rule, gathered while a topology is built; the sources read them
/// once the topology is complete.
#[derive(Debug, Default)]
pub(crate) struct LateRules {
    rules: Vec<LateRule>,
}

impl LateRules {
    /// Adds an aggregation's rule (one that reads no source as read judges every record
    /// itself; its rule only names it).
    pub(crate) fn add(&mut self, rule: LateRule) {
        self.rules.push(rule);
    }

    /// The views the aggregation of `node` is materialized as; one that is not is named by
    /// its plan node, as `describe` shows it.
    pub(crate) fn views_of(&self, node: NodeId) -> Vec<String> {
        self.rules
            .iter()
            .find(|rule| rule.node == node && !rule.views.is_empty())
            .map_or_else(
                || vec![format!("window #{node}")],
                |rule| rule.views.clone(),
            )
    }

    /// Notes that the aggregation of `node` is materialized as `view`.
    pub(crate) fn materialized_as(&mut self, node: NodeId, view: &str) {
        for rule in self.rules.iter_mut().filter(|rule| rule.node == node) {
            if !rule.views.iter().any(|known| known == view) {
                rule.views.push(view.to_string());
            }
        }
    }

    /// The rules source `source` judges its records by.
    pub(crate) fn of_source(&self, source: u32) -> SourceLateness {
        let views = self
            .rules
            .iter()
            .filter(|rule| rule.sources.contains(&source))
            .map(|rule| JudgedView {
                names: self.views_of(rule.node),
                windows: rule.windows,
                allowed_lateness_ms: rule.allowed_lateness_ms,
                destination: rule.destination.clone(),
            })
            .collect();
        SourceLateness { views }
    }
}

#[derive(Debug, Clone)]
struct JudgedView {
    names: Vec<String>,
    windows: WindowSpec,
    allowed_lateness_ms: i64,
    destination: Option<String>,
}

/// The windowed views one source judges its records for.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceLateness {
    views: Vec<JudgedView>,
}

/// Where a late record goes and what it missed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missed {
    /// A side output, or `None` for the source's `<topic>.late`.
    pub destination: Option<String>,
    /// The views it misses, in the order they were declared.
    pub views: Vec<String>,
    /// The window it would have gone into in the first of them.
    pub window: WindowBounds,
}

impl SourceLateness {
    /// What a record at `event_time`, read at its partition's `watermark`, misses: nothing
    /// for nearly every record, else one entry per destination.
    pub(crate) fn judge(&self, event_time: i64, watermark: u64) -> Vec<Missed> {
        let watermark = i64::try_from(watermark).unwrap_or(i64::MAX);
        // Every window holding `t` ends after it, so no record at or past its watermark is
        // late anywhere: the common case costs one comparison.
        if event_time >= watermark {
            return Vec::new();
        }
        let mut missed: Vec<Missed> = Vec::new();
        for view in &self.views {
            let Some(window) =
                view.windows
                    .late_window(event_time, watermark, view.allowed_lateness_ms)
            else {
                continue;
            };
            match missed
                .iter_mut()
                .find(|entry| entry.destination == view.destination)
            {
                Some(entry) => entry.views.extend(view.names.iter().cloned()),
                None => missed.push(Missed {
                    destination: view.destination.clone(),
                    views: view.names.clone(),
                    window,
                }),
            }
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::FixedWindows;

    fn tumbling(size_ms: i64, grace_ms: i64) -> WindowSpec {
        WindowSpec::Fixed(FixedWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms,
        })
    }

    fn rule(node: NodeId, sources: Vec<u32>, windows: WindowSpec) -> LateRule {
        LateRule {
            node,
            sources,
            windows,
            allowed_lateness_ms: 0,
            destination: None,
            views: Vec::new(),
        }
    }

    #[test]
    fn a_record_misses_the_views_whose_windows_had_closed_and_no_others() {
        let mut rules = LateRules::default();
        rules.add(rule(3, vec![0], tumbling(60_000, 0)));
        rules.add(rule(5, vec![0], tumbling(60_000, 0)));
        // An hour's window is still open for a record a minute and a half behind.
        rules.add(rule(7, vec![0, 1], tumbling(3_600_000, 0)));
        rules.add(rule(9, vec![1], tumbling(60_000, 0)));
        // Fed by derived records only: nothing to judge at a source.
        rules.add(rule(11, vec![], tumbling(1, 0)));
        rules.materialized_as(3, "per_minute");
        rules.materialized_as(3, "per_minute");
        rules.materialized_as(7, "per_hour");
        let source = rules.of_source(0);
        // At 50 s, read at watermark 145 s: [0, 60 s) had closed.
        assert_eq!(
            source.judge(50_000, 145_000),
            vec![Missed {
                destination: None,
                views: vec!["per_minute".to_string(), "window #5".to_string()],
                window: WindowBounds {
                    start: 0,
                    end: 60_000
                },
            }]
        );
        // At the window's end exactly it has closed; a millisecond before, not yet.
        assert_eq!(source.judge(50_000, 60_000).len(), 1);
        assert!(source.judge(50_000, 59_999).is_empty());
        // Within grace of the maximum, nothing is late.
        assert!(source.judge(150_000, 145_000).is_empty());
        assert!(rules.of_source(2).judge(0, u64::MAX).is_empty());
    }

    #[test]
    fn a_side_output_gets_its_own_entry_and_allowed_lateness_keeps_a_window_taking() {
        let mut rules = LateRules::default();
        rules.add(rule(1, vec![0], tumbling(1_000, 0)));
        rules.add(LateRule {
            destination: Some("mine".to_string()),
            ..rule(2, vec![0], tumbling(1_000, 0))
        });
        rules.add(LateRule {
            allowed_lateness_ms: 10_000,
            ..rule(3, vec![0], tumbling(1_000, 0))
        });
        let missed = rules.of_source(0).judge(500, 5_000);
        let destinations: Vec<Option<&str>> = missed
            .iter()
            .map(|entry| entry.destination.as_deref())
            .collect();
        assert_eq!(destinations, vec![None, Some("mine")]);
        assert!(missed.iter().all(|entry| entry.views.len() == 1));
    }
}

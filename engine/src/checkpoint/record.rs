//! What a checkpoint stores, and the fingerprint of the topology that wrote the state.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::record::stable_hash;

/// Where one source partition stood at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read: every record before it is in the checkpoint.
    pub offset: i64,
    /// The largest event time read before `offset`, which restores the partition's clock.
    pub max_event_time: Option<i64>,
    /// The partition's watermark at `offset`, in epoch milliseconds.
    pub watermark: u64,
    /// The partition had read no record yet while records were waiting on it (not caught
    /// up with the broker's end, or its end not known yet): its watermark of 0 holds back
    /// what it feeds, as the partition does in the running dataflow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unread: bool,
}

/// A committed checkpoint, stored under [`Checkpoint::KEY`] in the metadata store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Counts the checkpoints of this state directory, from 1.
    pub id: u64,
    /// The epoch that began when the checkpoint was taken; a restored engine continues in it.
    pub epoch: u64,
    /// Whether the sources had stopped: a clean shutdown, or input that ran out.
    pub is_final: bool,
    /// Every source partition, in `(topic, partition)` order.
    pub positions: Vec<SourcePosition>,
    /// The least watermark among the partitions that have read a record (see
    /// [`least_watermark`]); each view's answers report the same over its own sources
    /// ([`Checkpoint::watermark_of`]).
    pub watermark: u64,
    /// Wall-clock time of the commit, epoch milliseconds.
    pub committed_at: i64,
    /// How long the checkpoint took from its start to its commit, in milliseconds.
    pub duration_ms: u64,
    /// The fingerprint of the topology that wrote it.
    pub fingerprint: String,
}

impl Checkpoint {
    /// The metadata key of the last checkpoint.
    pub const KEY: &'static [u8] = b"checkpoint";

    /// The stored position of a partition, if it was read before.
    pub fn position(&self, topic: &str, partition: i32) -> Option<&SourcePosition> {
        self.positions
            .iter()
            .find(|position| position.topic == topic && position.partition == partition)
    }

    /// The watermark of what the checkpoint holds from `topics`: the least among their
    /// partitions that have read a record, or 0 when none has.
    pub fn watermark_of(&self, topics: &[String]) -> u64 {
        least_watermark(
            self.positions
                .iter()
                .filter(|position| topics.contains(&position.topic)),
        )
        .unwrap_or(0)
    }
}

impl SourcePosition {
    /// Whether the partition's watermark holds back what it feeds: once it has read a
    /// record, or while records wait on it. One that is empty and caught up holds nothing
    /// back: it is like an idle partition, which follows the others, and a topic with no
    /// records (a source fed by a system that has not started yet) must not keep every
    /// window of the topology open.
    pub fn has_data(&self) -> bool {
        self.max_event_time.is_some() || self.unread
    }
}

/// The least watermark among the `positions` that have read a record, if any has.
pub fn least_watermark<'a>(positions: impl IntoIterator<Item = &'a SourcePosition>) -> Option<u64> {
    positions
        .into_iter()
        .filter(|position| position.has_data())
        .map(|position| position.watermark)
        .min()
}

/// The fingerprint of a topology: every operator, window, grace and view of the plan,
/// which is everything that decides its results. (The tick is not in it: it changes when
/// windows close, never what they hold.) State written under one fingerprint is refused
/// under another.
pub fn fingerprint(plan: &Plan) -> String {
    let described = serde_json::to_string(plan).unwrap_or_default();
    let hash = stable_hash(described.bytes());
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(topic: &str, partition: i32, max_event_time: Option<i64>) -> SourcePosition {
        SourcePosition {
            topic: topic.into(),
            partition,
            offset: 0,
            max_event_time,
            watermark: max_event_time.map_or(0, |time| time as u64 - 1_000),
            unread: false,
        }
    }

    #[test]
    fn a_views_watermark_is_the_least_over_its_own_sources_partitions_with_data() {
        let checkpoint = Checkpoint {
            id: 1,
            epoch: 1,
            is_final: false,
            positions: vec![
                at("monitoring", 0, None),
                at("orders", 0, Some(9_000)),
                at("orders", 1, Some(5_000)),
                at("orders", 2, None),
                at("products", 0, Some(3_000)),
            ],
            watermark: 0,
            committed_at: 0,
            duration_ms: 0,
            fingerprint: String::new(),
        };
        let orders = ["orders".to_string()];
        assert_eq!(checkpoint.watermark_of(&orders), 4_000);
        let both = ["orders".to_string(), "products".to_string()];
        assert_eq!(checkpoint.watermark_of(&both), 2_000);
        assert_eq!(checkpoint.watermark_of(&["monitoring".to_string()]), 0);
        assert_eq!(least_watermark(&checkpoint.positions), Some(2_000));
        assert_eq!(least_watermark(&checkpoint.positions[..1]), None);
        // A partition with records still to read, none read yet, holds at 0.
        let mut waiting = at("orders", 3, None);
        waiting.unread = true;
        let mut held = checkpoint.positions.clone();
        held.push(waiting);
        assert_eq!(least_watermark(&held), Some(0));
    }

    #[test]
    fn the_fingerprint_follows_the_plan() {
        let mut plan = Plan::default();
        plan.add_node("source a", vec![]);
        let first = fingerprint(&plan);
        assert_eq!(first, fingerprint(&plan.clone()));
        plan.add_node("window tumbling 60000 ms, count", vec![0]);
        assert_ne!(first, fingerprint(&plan));
    }
}

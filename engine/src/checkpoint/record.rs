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
    /// The least partition watermark: what the checkpointed views reflect.
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

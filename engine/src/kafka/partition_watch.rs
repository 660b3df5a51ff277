//! Partitions added to a source topic while the engine runs. The sources were given their
//! partitions at start, so a new one would go unread, and its records silently missing
//! from every view. The engine cannot hand a new partition to a running dataflow's
//! sources, so it stops, writing its final checkpoint, and says so: the next start reads
//! every partition, the new ones from their beginning. (Kafka Streams rebalances onto new
//! partitions; Flink's Kafka source finds them when partition discovery is on.)

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::quiet_errors::QuietConsumer;

/// How often the partition counts are asked for.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A source topic that has more partitions than the engine reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    pub topic: String,
    pub read: i32,
    pub now: i32,
}

impl Grown {
    /// Why the engine stops, and what to do.
    pub fn explain(grown: &[Grown], program: &str) -> String {
        let topics: Vec<String> = grown
            .iter()
            .map(|grown| {
                format!(
                    "{} has {} partitions, {} more than the {} this run reads",
                    grown.topic,
                    grown.now,
                    grown.now - grown.read,
                    grown.read
                )
            })
            .collect();
        format!(
            "partitions were added while running: {}; the final checkpoint is written, and `{program} run` on the same state reads the new partitions from their beginning",
            topics.join("; ")
        )
    }
}

/// The topics of `read` (topic → partitions read) that have grown, as the brokers answer
/// now. A topic the brokers do not answer for is left for the next check.
pub fn grown_topics(client: &QuietConsumer, read: &BTreeMap<String, i32>) -> Vec<Grown> {
    read.iter()
        .filter_map(|(topic, &read)| {
            let metadata = client
                .fetch_metadata(Some(topic), Duration::from_secs(1))
                .ok()?;
            let now = metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic)
                .map(|found| found.partitions().len() as i32)?;
            (now > read).then(|| Grown {
                topic: topic.clone(),
                read,
                now,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explanation_names_each_topic_and_the_way_on() {
        let text = Grown::explain(
            &[Grown {
                topic: "order-events".into(),
                read: 4,
                now: 6,
            }],
            "shop",
        );
        assert!(
            text.contains("order-events has 6 partitions, 2 more than the 4 this run reads"),
            "{text}"
        );
        assert!(text.contains("`shop run` on the same state"), "{text}");
    }
}

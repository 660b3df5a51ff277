//! [`TopologyTestDriver`]: runs a topology in process, without a broker, step by step, the
//! way Kafka Streams' driver of the same name does. Users test their own topologies with
//! it.
//!
//! Records piped in are processed when output or a view is read: the driver continues
//! the topology from its last checkpoint over the new records, to the end of the input,
//! and keeps what it wrote. So each step is what a running engine would do with those
//! records, checkpoint included, and no step sleeps or reads the wall clock: the same
//! calls give the same results every time. Windows close when the watermark passes them:
//! when records of later event time arrive on every partition, or when
//! [`TopologyTestDriver::advance_watermark`] says so.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::{Value, json};

use crate::dsl::TopologyFn;
use crate::error::EngineError;
use crate::output::OwnedRecord;
use crate::plan::{Plan, ViewKind};
use crate::runtime::plan_of;
use crate::testkit::{CompletedRun, MemoryInput, MemoryRecord, resume_to_completion};

/// A topology under test.
pub struct TopologyTestDriver {
    topology: TopologyFn,
    plan: Plan,
    input: MemoryInput,
    state_dir: tempfile::TempDir,
    /// Records piped since the last step.
    pending: bool,
    /// Output not read yet, per topic.
    output: BTreeMap<String, VecDeque<OwnedRecord>>,
    /// The last step, which holds the state open for view lookups.
    last: Option<CompletedRun>,
}

impl TopologyTestDriver {
    /// A driver for `topology`, with its state in a fresh temporary directory.
    pub fn new(topology: TopologyFn) -> Result<Self, EngineError> {
        let state_dir = tempfile::tempdir()
            .map_err(|error| EngineError::io("creating the driver's state directory", error))?;
        Ok(TopologyTestDriver {
            plan: plan_of(&topology),
            topology,
            input: MemoryInput::default(),
            state_dir,
            pending: false,
            output: BTreeMap::new(),
            last: None,
        })
    }

    /// Gives `topic` `partitions` partitions (default one). Call it before piping records
    /// to the topic.
    pub fn with_partitions(mut self, topic: &str, partitions: usize) -> Self {
        let existing = self.input.topics.entry(topic.to_string()).or_default();
        if existing.len() < partitions {
            existing.resize_with(partitions, Default::default);
        }
        self
    }

    /// Appends a record to partition 0 of `topic`: `value` as JSON, keyed by `key`, with
    /// `event_time` (epoch ms) as its Kafka timestamp.
    pub fn pipe_input<V: Serialize>(
        &mut self,
        topic: &str,
        key: &str,
        value: &V,
        event_time: i64,
    ) -> Result<(), EngineError> {
        self.pipe_input_to(topic, 0, key, value, event_time)
    }

    /// Like [`Self::pipe_input`], to the given partition.
    pub fn pipe_input_to<V: Serialize>(
        &mut self,
        topic: &str,
        partition: usize,
        key: &str,
        value: &V,
        event_time: i64,
    ) -> Result<(), EngineError> {
        self.pipe_input_with_headers(topic, partition, key, value, event_time, &[])
    }

    /// Like [`Self::pipe_input_to`], with Kafka headers (a `traceparent`, say), which the
    /// outputs derived from the record carry.
    pub fn pipe_input_with_headers<V: Serialize>(
        &mut self,
        topic: &str,
        partition: usize,
        key: &str,
        value: &V,
        event_time: i64,
        headers: &[(&str, &str)],
    ) -> Result<(), EngineError> {
        let payload = serde_json::to_vec(value)
            .map_err(|error| EngineError::Dataflow(format!("cannot encode the input: {error}")))?;
        let headers = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let record = MemoryRecord {
            key: key.as_bytes().to_vec(),
            payload,
            timestamp: event_time,
            watermark_only: false,
            headers,
        };
        self.push_record(topic, partition, record);
        Ok(())
    }

    /// Appends a tombstone (a record of `key` without a value) to a partition of `topic`,
    /// with `event_time` as its Kafka timestamp: it deletes the key from a table.
    pub fn pipe_tombstone(&mut self, topic: &str, partition: usize, key: &str, event_time: i64) {
        self.push(
            topic,
            partition,
            key.as_bytes().to_vec(),
            Vec::new(),
            event_time,
            false,
        );
    }

    /// Appends raw bytes to a partition of `topic`: for records the topology cannot read,
    /// which go to the dead-letter topic.
    pub fn pipe_raw(&mut self, topic: &str, partition: usize, payload: &[u8], event_time: i64) {
        self.push(
            topic,
            partition,
            Vec::new(),
            payload.to_vec(),
            event_time,
            false,
        );
    }

    /// Moves the watermark of every partition of every source to at least `watermark`, as
    /// if a record of event time `watermark + grace` had arrived on each. Windows that end
    /// at or before it close at the next step.
    pub fn advance_watermark(&mut self, watermark: i64) {
        let sources: Vec<(String, i64)> = self
            .plan
            .sources
            .iter()
            .map(|source| (source.topic.clone(), source.grace_ms))
            .collect();
        for (topic, grace_ms) in sources {
            let partitions = self
                .input
                .topics
                .get(&topic)
                .map_or(1, |partitions| partitions.len().max(1));
            for partition in 0..partitions {
                let at = watermark.saturating_add(grace_ms);
                self.push(&topic, partition, Vec::new(), Vec::new(), at, true);
            }
        }
    }

    /// Every record written to `topic` since the last call for it, in order, as
    /// `(key, value as JSON, headers)`.
    pub fn read_output(&mut self, topic: &str) -> Result<Vec<OutputEvent>, EngineError> {
        self.step()?;
        let records = self.output.remove(topic).unwrap_or_default();
        records
            .into_iter()
            .map(|record| {
                let value = serde_json::from_slice(&record.payload).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&record.payload).into_owned())
                });
                Ok(OutputEvent {
                    key: String::from_utf8_lossy(&record.key).into_owned(),
                    value,
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                        .collect(),
                })
            })
            .collect()
    }

    /// The view `name` as of now: for a windowed view, every window of every key
    /// (`key`, `start`, `end`, `final`, `value`) in key and start order; for a table, an
    /// object of key to value.
    pub fn view(&mut self, name: &str) -> Result<Value, EngineError> {
        self.step()?;
        let kind = self
            .plan
            .view(name)
            .map(|view| view.kind.clone())
            .ok_or_else(|| EngineError::Topology(format!("there is no view `{name}`")))?;
        let Some(run) = &self.last else {
            return Ok(match kind {
                ViewKind::Table => json!({}),
                _ => json!([]),
            });
        };
        match kind {
            ViewKind::Tumbling { .. }
            | ViewKind::Hopping { .. }
            | ViewKind::Sliding { .. }
            | ViewKind::Session { .. } => {
                let mut windows = Vec::new();
                run.state.window_store(name)?.for_each(|key, entry| {
                    windows.push(json!({
                        "key": String::from_utf8_lossy(key),
                        "start": entry.start,
                        "end": entry.end,
                        "final": entry.is_final,
                        "value": serde_json::from_slice::<Value>(&entry.value_json).unwrap_or(Value::Null),
                    }));
                })?;
                Ok(Value::Array(windows))
            }
            ViewKind::Table => {
                let mut table = serde_json::Map::new();
                run.state.table_store(name)?.for_each(|key, json| {
                    table.insert(
                        String::from_utf8_lossy(key).into_owned(),
                        serde_json::from_slice(&json).unwrap_or(Value::Null),
                    );
                })?;
                Ok(Value::Object(table))
            }
        }
    }

    /// The entries of the operator state stores whose names start with `prefix`
    /// (`state.sequence` for those of `process_together`), each stored key to its JSON
    /// value, as of now: how a test sees what an operator keeps, as Kafka Streams' driver
    /// opens any store.
    pub fn state_entries(&mut self, prefix: &str) -> Result<BTreeMap<String, Value>, EngineError> {
        self.step()?;
        let mut entries = BTreeMap::new();
        let Some(run) = &self.last else {
            return Ok(entries);
        };
        for store in &self.plan.state_stores {
            if store.starts_with(prefix) {
                run.state.table_store(store)?.for_each(|key, json| {
                    entries.insert(
                        String::from_utf8_lossy(key).into_owned(),
                        serde_json::from_slice(&json).unwrap_or(Value::Null),
                    );
                })?;
            }
        }
        Ok(entries)
    }

    fn push(
        &mut self,
        topic: &str,
        partition: usize,
        key: Vec<u8>,
        payload: Vec<u8>,
        timestamp: i64,
        watermark_only: bool,
    ) {
        let record = MemoryRecord {
            key,
            payload,
            timestamp,
            watermark_only,
            headers: Vec::new(),
        };
        self.push_record(topic, partition, record);
    }

    fn push_record(&mut self, topic: &str, partition: usize, record: MemoryRecord) {
        self.input.push(topic, partition, record);
        self.pending = true;
    }

    /// Processes what was piped since the last step: continues from the last checkpoint
    /// over the new records, with one worker, and keeps the output.
    fn step(&mut self) -> Result<(), EngineError> {
        if !self.pending {
            return Ok(());
        }
        // The state directory is locked while a step's state is open.
        self.last = None;
        let run = resume_to_completion(
            std::sync::Arc::clone(&self.topology),
            self.input.clone(),
            self.state_dir.path(),
            1,
            1,
        )?;
        for topic in self.plan.topics() {
            let records = run.output.records(&topic);
            if !records.is_empty() {
                self.output.entry(topic).or_default().extend(records);
            }
        }
        self.pending = false;
        self.last = Some(run);
        Ok(())
    }
}

/// A record the topology wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputEvent {
    /// Its key.
    pub key: String,
    /// Its value, as JSON (or as a JSON string when it is not JSON).
    pub value: Value,
    /// Its headers, such as `sluice-id`.
    pub headers: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::dsl::{Source, TumblingWindows};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Click {
        page: String,
        at: i64,
    }

    fn clicks() -> TopologyFn {
        Arc::new(|topology| {
            let clicks = topology.source(
                Source::<Click>::topic("clicks")
                    .event_time(|click| click.at)
                    .grace(Duration::ZERO),
            );
            let per_page = clicks
                .key_by("page", |click| click.page.clone())
                .window(TumblingWindows::of(Duration::from_secs(10)))
                .count();
            per_page.materialize("clicks");
            per_page.emit_final().changes().to("click-counts");
            clicks.map(|click| click.page).to("pages");
        })
    }

    fn click(driver: &mut TopologyTestDriver, page: &str, at_s: i64) {
        let click = Click {
            page: page.into(),
            at: at_s * 1_000,
        };
        driver
            .pipe_input("clicks", page, &click, click.at)
            .expect("piped");
    }

    fn windows(view: &Value) -> Vec<(String, i64, bool, u64)> {
        view.as_array()
            .expect("windows")
            .iter()
            .map(|window| {
                (
                    window["key"].as_str().unwrap_or("").to_string(),
                    window["start"].as_i64().unwrap_or(-1),
                    window["final"].as_bool().unwrap_or(false),
                    window["value"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    #[test]
    fn input_headers_go_with_derived_records_and_not_with_window_results() {
        let mut driver = TopologyTestDriver::new(clicks()).expect("driver");
        let click = Click {
            page: "a".into(),
            at: 1_000,
        };
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        driver
            .pipe_input_with_headers(
                "clicks",
                0,
                "a",
                &click,
                click.at,
                &[("traceparent", trace), ("sluice-id", "forged")],
            )
            .expect("piped");
        driver.advance_watermark(20_000);
        let pages = driver.read_output("pages").expect("output");
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].headers["traceparent"], trace);
        // Its own id, not the one that came in.
        assert_eq!(pages[0].headers["sluice-id"], "clicks/0/0/0");
        let counts = driver.read_output("click-counts").expect("output");
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert!(
            !counts[0].headers.contains_key("traceparent"),
            "a window is many records' result: {counts:?}"
        );
    }

    /// A scripted session, returning everything the driver showed along the way.
    fn session() -> Vec<Value> {
        let mut driver = TopologyTestDriver::new(clicks()).expect("driver");
        let mut seen = Vec::new();
        click(&mut driver, "a", 1);
        click(&mut driver, "a", 2);
        click(&mut driver, "b", 3);
        let pages = driver.read_output("pages").expect("output");
        assert_eq!(
            pages
                .iter()
                .map(|event| event.value.clone())
                .collect::<Vec<_>>(),
            vec![json!("a"), json!("a"), json!("b")]
        );
        assert_eq!(pages[0].headers["sluice-id"], "clicks/0/0/0");
        // Read output is consumed.
        assert!(driver.read_output("pages").expect("output").is_empty());
        let open = driver.view("clicks").expect("view");
        assert_eq!(
            windows(&open),
            vec![("a".into(), 0, false, 2), ("b".into(), 0, false, 1)]
        );
        assert!(
            driver
                .read_output("click-counts")
                .expect("output")
                .is_empty()
        );
        seen.push(open);

        driver.advance_watermark(10_000);
        let closed = driver.view("clicks").expect("view");
        assert_eq!(
            windows(&closed),
            vec![("a".into(), 0, true, 2), ("b".into(), 0, true, 1)]
        );
        let finals = driver.read_output("click-counts").expect("output");
        assert_eq!(
            finals
                .iter()
                .map(|event| (event.key.clone(), event.value["new"].clone()))
                .collect::<Vec<_>>(),
            vec![("a".to_string(), json!(2)), ("b".to_string(), json!(1))]
        );
        seen.push(closed);

        // A click for the closed window is late; a record that is not a click is a dead
        // letter; the stream goes on.
        click(&mut driver, "a", 5);
        driver.pipe_raw("clicks", 0, b"not a click", 12_000);
        click(&mut driver, "b", 12);
        let late = driver.read_output("clicks.late").expect("output");
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].value["at"], json!(5_000));
        let dead = driver.read_output("clicks.dlq").expect("output");
        assert_eq!(dead.len(), 1);
        assert!(dead[0].headers["sluice-error"].contains("cannot decode"));
        let later = driver.view("clicks").expect("view");
        assert_eq!(
            windows(&later),
            vec![
                ("a".into(), 0, true, 2),
                ("b".into(), 0, true, 1),
                ("b".into(), 10_000, false, 1)
            ]
        );
        seen.push(later);
        seen.extend(finals.into_iter().map(|event| event.value));
        seen
    }

    #[test]
    fn a_driver_session_steps_through_windows_late_records_and_dead_letters() {
        session();
    }

    #[test]
    fn the_same_session_gives_the_same_results() {
        assert_eq!(session(), session());
    }

    #[test]
    fn a_record_without_a_valid_event_time_is_a_dead_letter() {
        let topology: TopologyFn = Arc::new(|topology| {
            topology
                .source(
                    Source::<Click>::topic("clicks")
                        .try_event_time(|click| (click.at > 0).then_some(click.at)),
                )
                .map(|click| click.page)
                .to("pages");
        });
        let mut driver = TopologyTestDriver::new(topology).expect("driver");
        click(&mut driver, "a", 1);
        click(&mut driver, "b", 0);
        let pages = driver.read_output("pages").expect("output");
        assert_eq!(pages.len(), 1);
        let dead = driver.read_output("clicks.dlq").expect("output");
        assert_eq!(dead.len(), 1);
        assert_eq!(
            dead[0].headers["sluice-error"],
            "record has no valid event time"
        );
        assert_eq!(dead[0].headers["sluice-source"], "clicks/0/1");
    }

    #[test]
    fn an_unknown_view_is_an_error() {
        let mut driver = TopologyTestDriver::new(clicks()).expect("driver");
        let error = driver.view("nope").expect_err("no such view");
        assert!(
            error.to_string().contains("there is no view `nope`"),
            "{error}"
        );
    }
}

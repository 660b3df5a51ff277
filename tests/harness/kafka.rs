//! Apache Kafka for the end-to-end tests: a KRaft single node (broker and controller in one
//! JVM) started by `scripts/local-kafka.sh` in a temporary directory of its own, on free
//! loopback ports, and stopped when the test is done; and Kafka's own command-line tools,
//! run from the same jars.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `scripts/local-kafka.sh`, beside the tests.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-kafka.sh")
}

fn run_script(args: &[&str]) -> Output {
    run_script_with(args, &[])
}

fn run_script_with(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("bash runs scripts/local-kafka.sh")
}

/// A running Apache Kafka broker, stopped (cleanly) on drop.
pub struct Kafka {
    dir: tempfile::TempDir,
    brokers: String,
    /// The script's environment at start (extra listeners and properties), kept for
    /// restarts.
    env: Vec<(String, String)>,
}

impl Kafka {
    /// Starts a broker and returns once it answers. The first start on a machine fetches
    /// Kafka's jars from Maven Central into `~/.cache/sluice-tools` (scripts/setup.sh
    /// --test does that ahead of the tests).
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts a broker with `env` for `scripts/local-kafka.sh` (`KAFKA_EXTRA_LISTENERS`,
    /// `KAFKA_EXTRA_PROPERTIES`, `KAFKA_SCRAM_CREDENTIALS`, ...).
    pub fn start_with(env: Vec<(String, String)>) -> Self {
        let dir = tempfile::tempdir().expect("broker dir");
        let brokers = Self::start_in(dir.path(), &env);
        Kafka { dir, brokers, env }
    }

    /// The address of the extra listener `name` (one of `KAFKA_EXTRA_LISTENERS`).
    pub fn listener(&self, name: &str) -> String {
        let listeners = std::fs::read_to_string(self.dir.path().join("listeners"))
            .expect("local-kafka.sh wrote the listeners");
        listeners
            .lines()
            .find_map(|line| {
                let (listener, address) = line.split_once(' ')?;
                (listener == name).then(|| address.to_string())
            })
            .unwrap_or_else(|| panic!("no listener {name} in: {listeners}"))
    }

    fn start_in(dir: &Path, env: &[(String, String)]) -> String {
        let path = dir.display().to_string();
        let output = run_script_with(&["start", &path], env);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "scripts/local-kafka.sh start failed ({}):\n{}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        // Its last line is the bootstrap address.
        stdout
            .lines()
            .last()
            .map(str::trim)
            .filter(|line| line.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no bootstrap address from local-kafka.sh: {stdout}"))
            .to_string()
    }

    /// Bootstrap servers for clients.
    pub fn brokers(&self) -> String {
        self.brokers.clone()
    }

    /// Stops the broker cleanly and starts it again on the same data and port, as a
    /// broker restart in a cluster would.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts the stopped broker again on the same data and port.
    pub fn start_again(&mut self) {
        let brokers = Self::start_in(self.dir.path(), &self.env);
        assert_eq!(brokers, self.brokers, "a restarted broker keeps its port");
    }

    /// Kills the broker with SIGKILL, as a crash would (its data stays, for
    /// [`Kafka::start_again`], which recovers its log).
    pub fn kill(&self) {
        let path = self.dir.path().display().to_string();
        let output = run_script(&["kill", &path]);
        assert!(
            output.status.success(),
            "scripts/local-kafka.sh kill: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the broker cleanly (its data stays, for [`Kafka::start_again`]).
    pub fn stop(&self) {
        let path = self.dir.path().display().to_string();
        let output = run_script(&["stop", &path]);
        if !output.status.success() {
            eprintln!(
                "scripts/local-kafka.sh stop: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Runs one of Kafka's command-line tools (its main `class`) from the broker's own
    /// jars, against this broker.
    pub fn tool(&self, class: &str, args: &[&str]) -> Output {
        let classpath = run_script(&["classpath"]);
        assert!(classpath.status.success(), "local-kafka.sh classpath");
        let classpath = String::from_utf8_lossy(&classpath.stdout)
            .trim()
            .to_string();
        Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                &classpath,
                class,
            ])
            .args(args)
            .output()
            .expect("java runs")
    }

    /// The consumer group `group` as Kafka's own `kafka-consumer-groups --describe` prints
    /// it: per topic and partition, the committed offset, the log end and the lag.
    pub fn group_lag(&self, group: &str) -> Vec<GroupLag> {
        let output = self.tool(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &[
                "--bootstrap-server",
                &self.brokers,
                "--describe",
                "--group",
                group,
                "--offsets",
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        parse_group_lag(&stdout)
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One row of `kafka-consumer-groups --describe --offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub topic: String,
    pub partition: i32,
    /// `None` where the group has committed nothing (`-`).
    pub committed: Option<i64>,
    pub log_end: i64,
    pub lag: Option<i64>,
}

/// Reads the table the consumer-group tool prints: a header line naming the columns, then
/// one line per partition.
fn parse_group_lag(text: &str) -> Vec<GroupLag> {
    let mut columns: Vec<&str> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.contains(&"CURRENT-OFFSET") {
            columns = fields;
            continue;
        }
        let field = |name: &str| {
            columns
                .iter()
                .position(|column| *column == name)
                .and_then(|index| fields.get(index).copied())
        };
        let number = |name: &str| field(name).and_then(|value| value.parse::<i64>().ok());
        let (Some(topic), Some(partition), Some(log_end)) = (
            field("TOPIC"),
            number("PARTITION"),
            number("LOG-END-OFFSET"),
        ) else {
            continue;
        };
        rows.push(GroupLag {
            topic: topic.to_string(),
            partition: partition as i32,
            committed: number("CURRENT-OFFSET"),
            log_end,
            lag: number("LAG"),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_tool_table_is_read_by_its_header() {
        let text = "\nGROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
                    sluice-shop     order-events    0          12              12              0               -               -               -\n\
                    sluice-shop     order-events    1          -               7               -               -               -               -\n";
        assert_eq!(
            parse_group_lag(text),
            vec![
                GroupLag {
                    topic: "order-events".into(),
                    partition: 0,
                    committed: Some(12),
                    log_end: 12,
                    lag: Some(0)
                },
                GroupLag {
                    topic: "order-events".into(),
                    partition: 1,
                    committed: None,
                    log_end: 7,
                    lag: None
                },
            ]
        );
    }
}

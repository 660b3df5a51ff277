//! Shared by the end-to-end tests: Apache Kafka ([`kafka`]) and Tansu brokers on free
//! ports, the `shop` binary as a child process, HTTP polling with a deadline, and a topic
//! reader.

#![allow(dead_code)]

pub mod crashes;
pub mod kafka;
pub mod orders;
pub mod shop_run;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

/// How long any one wait in these tests may take.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A free loopback port (bound and released; the broker takes it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The `shop` binary of this build (`cargo build -p sluice-topologies --bin shop`).
pub fn shop_binary() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let shop = dir.join("shop");
    assert!(
        shop.exists(),
        "{} is missing: build it with `cargo build -p sluice-topologies --bin shop` (scripts/test.sh does)",
        shop.display()
    );
    shop
}

/// A Tansu broker with SQLite storage in its own temporary directory, stopped on drop.
pub struct Tansu {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("broker dir");
        let port = free_port();
        let child = Self::spawn(dir.path(), port);
        Tansu {
            child,
            port,
            _dir: dir,
        }
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .expect("log file");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // The sqlite path is resolved against the working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu is installed (scripts/setup.sh --tansu)");
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        index_headers(&dir.join("tansu.db"));
        child
    }

    /// Bootstrap servers for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tansu 0.6's SQLite schema has no index on `header`, and its fetch looks up the headers
/// of every record it returns by `(topition, offset_id)`: each record read scans every
/// header stored. Sluice gives every output record a `sluice-id` header, so at 200,000
/// events a fetch slows to a crawl and the run stalls on the broker. The index Tansu's own
/// query wants makes that lookup a seek; it changes no answer. It is created once the
/// broker has created its schema. (The stalls after a killed client that the tests used to
/// clear by restarting Tansu were this scan too.)
fn index_headers(database: &Path) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let indexed = rusqlite::Connection::open(database).and_then(|connection| {
            connection.busy_timeout(Duration::from_secs(10))?;
            let has_schema: bool = connection.query_row(
                "select count(*) > 0 from sqlite_master where type = 'table' and name = 'header'",
                [],
                |row| row.get(0),
            )?;
            if has_schema {
                connection.execute_batch(
                    "create index if not exists header_by_record on header (topition, offset_id)",
                )?;
            }
            Ok(has_schema)
        });
        match indexed {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => eprintln!("indexing tansu's headers: {error}; trying again"),
        }
        assert!(
            Instant::now() < deadline,
            "tansu never created its schema in {}",
            database.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a `shop` under test runs: its broker, state directory and HTTP address.
pub struct ShopPlace<'a> {
    pub brokers: &'a str,
    pub state_dir: &'a str,
    pub http: &'a str,
}

impl ShopPlace<'_> {
    /// The arguments of `shop <command>` here with `workers` workers, checkpointing every
    /// 200 ms.
    pub fn args(&self, command: &str, workers: u16) -> Vec<String> {
        [
            command,
            "--brokers",
            self.brokers,
            "--state-dir",
            self.state_dir,
            "--http",
            self.http,
            "--workers",
            &workers.to_string(),
            "--checkpoint-interval-ms",
            "200",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect()
    }
}

/// `shop run` over orders preloaded on a broker: the binary, a fresh state directory, the
/// HTTP base and the arguments (two workers, checkpoints every 200 ms).
pub struct PreloadedRun {
    pub shop: PathBuf,
    pub state: tempfile::TempDir,
    pub base: String,
    pub args: Vec<String>,
}

impl PreloadedRun {
    /// Publishes `events` generated orders with `seed` to `brokers` and places a run there.
    pub fn prepare(brokers: &str, events: u64, seed: u64) -> Self {
        let shop = shop_binary();
        orders::produce_orders(&shop, brokers, events, seed);
        let state = tempfile::tempdir().expect("state dir");
        let http = format!("127.0.0.1:{}", free_port());
        let args = ShopPlace {
            brokers,
            state_dir: &state.path().display().to_string(),
            http: &http,
        }
        .args("run", 2);
        PreloadedRun {
            shop,
            state,
            base: format!("http://{http}"),
            args,
        }
    }
}

/// A `shop` child process, killed on drop unless it already exited.
pub struct ShopProcess {
    child: Child,
}

impl ShopProcess {
    /// Starts `shop` with the given arguments.
    pub fn spawn(shop: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Self {
        let child = Command::new(shop)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shop starts");
        ShopProcess { child }
    }

    /// Starts `shop` with its standard error going to `log` (for a test to read what it
    /// said when it stopped).
    pub fn spawn_logging(shop: &Path, args: &[impl AsRef<std::ffi::OsStr>], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(shop)
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("shop starts");
        ShopProcess { child }
    }

    /// Waits for the process to exit by itself (failing at `within`) and returns how.
    pub fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "shop did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `shop demo` (rdkafka's in-process MOCK cluster, fed by the generator at `rate`
    /// events per second) with its HTTP API on `port` and its state in `state_dir`.
    pub fn demo(port: u16, rate: u32, state_dir: &Path) -> Self {
        ShopProcess::demo_with(port, rate, state_dir, &[], &[])
    }

    /// [`ShopProcess::demo`] with more flags and environment variables.
    pub fn demo_with(
        port: u16,
        rate: u32,
        state_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut args = vec![
            "demo".to_string(),
            "--http".into(),
            format!("127.0.0.1:{port}"),
            "--rate".into(),
            rate.to_string(),
            "--state-dir".into(),
            state_dir.display().to_string(),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let child = Command::new(shop_binary())
            .args(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shop starts");
        ShopProcess { child }
    }

    /// Fails the test if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("shop exited early with {status}");
        }
    }

    /// Kills the process with SIGKILL, as a crash or `kill -9` would, and reaps it.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends Ctrl-C (SIGINT) and waits for a clean, successful exit.
    pub fn interrupt_and_wait(mut self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "shop exited with {status} after Ctrl-C");
                return;
            }
            assert!(Instant::now() < deadline, "shop did not stop after Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ShopProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GETs a path and returns the status code and JSON body (null when it is not JSON or the
/// server is not up yet).
pub fn get_json(base: &str, path: &str) -> (u16, Value) {
    let (status, text) = get_text(base, path);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The status code and body of a GET that answers text, such as `/metrics`.
pub fn get_text(base: &str, path: &str) -> (u16, String) {
    let (status, _, text) = get_with_headers(base, path);
    (status, text)
}

/// The status code, headers and body of a GET (0 and nothing when nothing answers).
pub fn get_with_headers(base: &str, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match reqwest::get(format!("{base}{path}")).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                (status, headers, response.text().await.unwrap_or_default())
            }
            Err(_) => (0, Default::default(), String::new()),
        }
    })
}

/// The sum of the samples of metric `name` in Prometheus text: of every label set, or of
/// those that begin with the labels `name` gives (`sluice_consumer_lag{topic="t"`).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ', ',']) || rest.starts_with("} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `order-events` partitions of a `/status` answer.
pub fn order_partitions(status: &Value) -> Vec<Value> {
    status["partitions"]
        .as_array()
        .map(|partitions| {
            partitions
                .iter()
                .filter(|partition| partition["topic"] == "order-events")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The orders this run has read, by a `/status` answer (its `processed` also counts the
/// processing reports the shop reads).
pub fn orders_processed(status: &Value) -> u64 {
    order_partitions(status)
        .iter()
        .map(|partition| partition["processed"].as_u64().unwrap_or(0))
        .sum()
}

/// The sum of the offsets of `order-events` in the last checkpoint of a `/status` answer:
/// how many orders it holds. (The catalog records on `product-updates` come in their own
/// number, and `monitoring-events` grows by itself, with every processing report.)
pub fn checkpointed(status: &Value) -> i64 {
    status["checkpoint"]["offsets"]
        .as_array()
        .map(|offsets| {
            offsets
                .iter()
                .filter(|offset| offset["topic"] == "order-events")
                .map(|offset| offset["offset"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Polls a path until its JSON satisfies `done`, failing with the last answer at the deadline.
pub fn wait_for(
    process: &mut ShopProcess,
    base: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_for_within(process, base, path, DEADLINE, done)
}

/// Waits on `/status` while the engine works through a backlog: it fails only when
/// nothing moved (records read or checkpointed) for [`DEADLINE`], so a run that a loaded
/// machine slows passes and one that stalls fails. Seen: a debug build at a load of 10
/// on 2 cores read 180 orders/s, and a fixed deadline for a 33,000-order slice expired
/// on an engine that was still reading.
pub fn wait_while_progressing(
    process: &mut ShopProcess,
    base: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last_progress = (Instant::now(), -1);
    loop {
        process.assert_running();
        let (status, body) = get_json(base, "/status");
        if status == 200 && done(&body) {
            return body;
        }
        let progress = checkpointed(&body) + body["processed"].as_i64().unwrap_or(0);
        if progress != last_progress.1 {
            last_progress = (Instant::now(), progress);
        }
        assert!(
            last_progress.0.elapsed() < DEADLINE,
            "/status showed no progress for {} s; last answer {status}: {body}",
            DEADLINE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// As [`wait_for`], with a deadline of its own: for waits on a whole backlog.
pub fn wait_for_within(
    process: &mut ShopProcess,
    base: &str,
    path: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        process.assert_running();
        let (status, body) = get_json(base, path);
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never reached the expected state; last answer {status}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads `topic` from the beginning until `want` records arrived (or the deadline), and
/// returns each record's headers.
pub fn read_topic(brokers: &str, topic: &str, want: usize) -> Vec<BTreeMap<String, String>> {
    read_topic_until(brokers, topic, |found| found.len() >= want)
}

/// Reads `topic` from the beginning until the headers read so far satisfy `done` (failing
/// at the deadline), and returns them.
pub fn read_topic_until(
    brokers: &str,
    topic: &str,
    done: impl Fn(&[BTreeMap<String, String>]) -> bool,
) -> Vec<BTreeMap<String, String>> {
    // Partitions are assigned, not subscribed: no consumer group, so nothing here depends
    // on the broker's group coordinator.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "e2e-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    assign_from_beginning(&consumer, topic);
    let deadline = Instant::now() + DEADLINE;
    let mut found = Vec::new();
    while !done(&found) {
        assert!(
            Instant::now() < deadline,
            "read {} records from {topic} without reaching the expected state",
            found.len()
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let mut headers = BTreeMap::new();
            if let Some(all) = message.headers() {
                for header in all.iter() {
                    headers.insert(
                        header.key.to_string(),
                        String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            found.push(headers);
        }
    }
    found
}

/// Assigns `consumer` every partition of `topic` from its beginning; returns them.
pub fn assign_from_beginning(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), DEADLINE)
        .expect("metadata");
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic)
        .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    partitions
}

/// The number of records in `topic`: the sum of its partitions' high watermarks.
pub fn topic_size(brokers: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, DEADLINE)
                .expect("watermarks")
                .1
        })
        .sum()
}

/// Publishes one record to each of `partitions` partitions of `topic`, keyed by the
/// partition number, and waits for the acknowledgements.
pub fn produce_to_partitions(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payload: impl Fn(i32) -> String,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for partition in 0..partitions {
        let body = payload(partition);
        let key = partition.to_string();
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&body),
            )
            .expect("queued");
    }
    producer.flush(DEADLINE).expect("acknowledged");
}

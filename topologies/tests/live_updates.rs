//! Live updates end to end, on rdkafka's in-process mock cluster (a development broker, used
//! here for speed): subscribe to a key's stream and a view's stream, produce orders one at
//! a time, and receive each update, in order, with the value a read returns afterwards.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use sluice::app::Application;
use sluice::runtime::start;
use sluice_topologies::Shop;

mod common;

const BASE: i64 = 1_705_314_600_000; // 2024-01-15T10:30:00Z, a minute boundary
const ORDERS: u64 = 5;

/// Server-Sent Events read off a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Opens the stream once the engine serves views: while it restores, the API answers
    /// 503 with `Retry-After`, as a client is told to wait.
    async fn open(base: &str, path: &str) -> Events {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let response = reqwest::get(format!("{base}{path}"))
                .await
                .expect("the stream opens");
            let status = response.status().as_u16();
            if status == 200 {
                return Events {
                    response,
                    buffer: String::new(),
                };
            }
            assert_eq!(status, 503, "{path}");
            assert!(
                response.headers().contains_key("retry-after"),
                "{path}: a 503 says when to try again"
            );
            assert!(Instant::now() < deadline, "{path} never served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next event's name and data, failing after the deadline.
    async fn next(&mut self) -> (String, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let name = block.lines().find_map(|line| line.strip_prefix("event: "));
                let data = block.lines().find_map(|line| line.strip_prefix("data: "));
                if let (Some(name), Some(data)) = (name, data) {
                    return (name.to_string(), serde_json::from_str(data).expect("JSON"));
                }
                continue; // a keep-alive comment
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event before the deadline")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `change` event, skipping nothing else: a change is all that may come.
    async fn next_change(&mut self) -> Value {
        let (name, data) = self.next().await;
        assert_eq!(name, "change", "{data}");
        data
    }
}

fn order(index: u64) -> String {
    json!({
        "event_type": "OrderPlaced",
        "order_id": format!("o{index}"),
        "user_id": "user_1",
        "items": [{"item_id": "burger", "quantity": index, "price": 2.0}],
        "total_amount": 2.0 * index as f64,
        "status": "placed",
        "timestamp": BASE + index as i64 * 1000,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_receive_each_update_in_order() {
    let cluster = common::mock_cluster_with_shop_topics(2);
    let brokers = cluster.bootstrap_servers();
    let state = tempfile::tempdir().expect("state dir");
    let mut config = common::shop_config(&brokers, 2, state.path());
    config.workers = 2;
    config.tick_ms = 100;
    config.checkpoint_interval = Duration::from_millis(100);
    let engine = start(config, Shop.topology()).await.expect("engine starts");
    let base = format!("http://{}", engine.http_addr().expect("http"));

    let mut counts = Events::open(&base, "/views/orders_per_minute/all/stream").await;
    let (name, snapshot) = counts.next().await;
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot["windows"], json!([]));
    let mut demand = Events::open(&base, "/views/item_demand/stream").await;
    assert_eq!(demand.next().await.0, "ready");

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let window_start = sluice::time::format_millis(BASE);
    let mut last_checkpoint = 0;
    for index in 1..=ORDERS {
        producer
            .send(
                BaseRecord::to("order-events")
                    .partition(0)
                    .key(&format!("o{index}"))
                    .payload(&order(index)),
            )
            .expect("queue");
        producer.flush(Duration::from_secs(10)).expect("flush");
        // Each order is one update of the minute's window, and of burger's demand, in the
        // order they were produced, each from a later checkpoint than the one before.
        let change = counts.next_change().await;
        assert_eq!(change["key"], "all");
        assert_eq!(change["window"]["start"], window_start);
        assert_eq!(change["window"]["value"]["count"], index, "{change}");
        assert_eq!(change["window"]["final"], false);
        let checkpoint = change["checkpoint"].as_u64().expect("a checkpoint id");
        assert!(checkpoint > last_checkpoint, "{change}");
        last_checkpoint = checkpoint;
        let reserved = demand.next_change().await;
        assert_eq!(reserved["key"], "burger");
        assert_eq!(reserved["window"]["value"], index * (index + 1) / 2);
        assert_eq!(reserved["checkpoint"], checkpoint);
    }
    // What the streams said last is what a read says.
    let read: Value = reqwest::get(format!("{base}/views/orders_per_minute/all"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(read["windows"][0]["value"]["count"], ORDERS);
    assert!(read["checkpoint"]["id"].as_u64().expect("id") >= last_checkpoint);

    drop(counts);
    drop(demand);
    engine.shutdown();
    engine.join().await.expect("clean shutdown");
}

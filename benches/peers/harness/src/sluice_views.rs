//! Reading Sluice's windows: its views serve them over HTTP, current as of its last
//! checkpoint, so the harness waits until a checkpoint holds the whole input and then
//! reads `orders_per_minute` and `item_demand`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::job::{OrderCounts, Windows};

#[derive(Deserialize)]
struct Status {
    partitions: Vec<PartitionStatus>,
}

#[derive(Deserialize)]
struct PartitionStatus {
    topic: String,
    partition: i32,
    checkpointed_offset: i64,
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<Entry>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    key: String,
    windows: Vec<Window>,
}

#[derive(Deserialize)]
struct Window {
    start: String,
    value: serde_json::Value,
}

/// A Sluice engine's HTTP API.
pub struct SluiceApi {
    base: String,
    client: reqwest::blocking::Client,
}

impl SluiceApi {
    /// The API at `address` (`127.0.0.1:PORT`).
    pub fn new(address: &str) -> anyhow::Result<SluiceApi> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("creating an HTTP client")?;
        Ok(SluiceApi {
            base: format!("http://{address}"),
            client,
        })
    }

    /// Whether the last checkpoint holds every record up to `ends` (per partition of
    /// `topic`); false while the API is not up yet.
    pub fn checkpointed(&self, topic: &str, ends: &BTreeMap<i32, i64>) -> bool {
        let Ok(response) = self.client.get(format!("{}/status", self.base)).send() else {
            return false;
        };
        let Ok(status) = response.json::<Status>() else {
            return false;
        };
        ends.iter().all(|(partition, end)| {
            status.partitions.iter().any(|progress| {
                progress.topic == topic
                    && progress.partition == *partition
                    && progress.checkpointed_offset >= *end
            })
        })
    }

    /// The windows its views hold.
    pub fn windows(&self) -> anyhow::Result<Windows> {
        let mut windows = Windows::default();
        for entry in self.entries("orders_per_minute")? {
            for window in entry.windows {
                let counts: ViewCounts = serde_json::from_value(window.value)
                    .context("an orders_per_minute window of another shape")?;
                windows.order_counts.insert(
                    start_millis(&window.start)?,
                    OrderCounts {
                        orders: counts.count,
                        failed: counts.failed,
                    },
                );
            }
        }
        for entry in self.entries("item_demand")? {
            for window in entry.windows {
                let Some(quantity) = window.value.as_u64() else {
                    bail!(
                        "an item_demand window that is not a quantity: {}",
                        window.value
                    );
                };
                windows
                    .item_demand
                    .insert((start_millis(&window.start)?, entry.key.clone()), quantity);
            }
        }
        Ok(windows)
    }

    fn entries(&self, view: &str) -> anyhow::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}/views/{view}?limit=1000", self.base);
            if let Some(after) = &after {
                url.push_str("&after=");
                url.push_str(&percent_encoded(after));
            }
            let page: Page = self
                .client
                .get(url)
                .send()
                .and_then(reqwest::blocking::Response::error_for_status)
                .and_then(reqwest::blocking::Response::json)
                .with_context(|| format!("reading view {view}"))?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(entries),
            }
        }
    }
}

#[derive(Deserialize)]
struct ViewCounts {
    count: u64,
    failed: u64,
}

/// A query value with every byte but letters, digits, `-`, `_` and `.` escaped.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn start_millis(start: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(start)
        .with_context(|| format!("a window start that is not RFC 3339: {start}"))?
        .timestamp_millis())
}

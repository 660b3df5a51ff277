//! Shared by the in-process engine tests: HTTP polling with a deadline against a running
//! engine, and reading checkpoint progress from `/status`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice::runtime::RunningEngine;

/// The JSON answer of `path` on the engine's HTTP API (`Null` if there is none yet).
pub async fn get(engine: &RunningEngine, path: &str) -> Value {
    let url = format!("http://{}{path}", engine.http_addr().expect("http"));
    match reqwest::get(url).await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Polls `path` until `done`, failing with the last answer after a minute.
pub async fn wait_for(engine: &RunningEngine, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(engine, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never reached the expected state; last answer: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of the offsets of the last checkpoint in a `/status` answer.
pub fn checkpointed(status: &Value) -> i64 {
    status["checkpoint"]["offsets"]
        .as_array()
        .map(|offsets| offsets.iter().filter_map(|o| o["offset"].as_i64()).sum())
        .unwrap_or(0)
}

/// Waits until checkpoints hold `records` records, then for `more` checkpoints after that
/// one: what "nothing is left to happen" looks like from outside.
pub async fn wait_until_settled(engine: &RunningEngine, records: i64, more: u64) -> Value {
    let read = wait_for(engine, "/status", |status| checkpointed(status) == records).await;
    let id = read["checkpoint"]["id"].as_u64().unwrap_or(0);
    wait_for(engine, "/status", |status| {
        status["checkpoint"]["id"].as_u64().unwrap_or(0) >= id + more
    })
    .await
}

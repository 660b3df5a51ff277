//! A background thread that fetches the high watermark of every source partition, so that
//! `/status` can show lag without the workers making blocking calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::debug;

use super::settings::KafkaSettings;
use crate::error::EngineError;
use crate::status::EngineStatus;

/// How often high watermarks are refreshed.
const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// Starts the monitor for the given `(topic, partition)` pairs; it stops when `shutdown` is set.
pub fn spawn_watermark_monitor(
    settings: &KafkaSettings,
    partitions: Vec<(String, i32)>,
    status: Arc<EngineStatus>,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, EngineError> {
    let client: BaseConsumer = settings
        .base_config()
        .create()
        .map_err(|error| EngineError::kafka("creating the watermark monitor", error))?;
    std::thread::Builder::new()
        .name("sluice-watermarks".into())
        .spawn(move || {
            while !shutdown.load(Ordering::Relaxed) {
                for (topic, partition) in &partitions {
                    match client.fetch_watermarks(topic, *partition, Duration::from_secs(1)) {
                        Ok((_, high)) => status.set_high_watermark(topic, *partition, high),
                        Err(error) => debug!(%error, %topic, partition, "cannot fetch watermarks"),
                    }
                }
                std::thread::park_timeout(REFRESH_INTERVAL);
            }
        })
        .map_err(|error| EngineError::io("starting the watermark monitor", error))
}

//! A background thread that fetches the high watermark of every source partition, so that
//! `/status` can show lag without the workers making blocking calls. When no broker
//! answers it, the engine reports itself unready ([`Hold::Brokers`]). It also watches the
//! source topics' partition counts ([`partition_watch`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tracing::{debug, error};

use super::partition_watch::{self, Grown};
use super::quiet_errors::{QuietConsumer, QuietErrors};
use super::settings::KafkaSettings;
use crate::checkpoint::restore::program_name;
use crate::error::EngineError;
use crate::readiness::{HOLD_AFTER, Hold};
use crate::status::EngineStatus;

/// How often high watermarks are refreshed.
const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// Starts the monitor for every partition of `read` (topic → partitions the engine reads);
/// it stops when `shutdown` is set.
pub fn spawn_watermark_monitor(
    settings: &KafkaSettings,
    read: BTreeMap<String, i32>,
    status: Arc<EngineStatus>,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, EngineError> {
    let client: QuietConsumer = settings
        .base_config()
        .create_with_context(QuietErrors::default())
        .map_err(|error| EngineError::kafka("creating the watermark monitor", error))?;
    std::thread::Builder::new()
        .name("sluice-watermarks".into())
        .spawn(move || {
            // Since when no fetch has been answered: the brokers are away.
            let mut unanswered_since: Option<Instant> = None;
            let partitions: Vec<(&str, i32)> = read
                .iter()
                .flat_map(|(topic, count)| (0..*count).map(move |partition| (topic.as_str(), partition)))
                .collect();
            let mut partitions_checked = Instant::now();
            while !shutdown.load(Ordering::Relaxed) {
                if partitions_checked.elapsed() >= partition_watch::CHECK_EVERY {
                    partitions_checked = Instant::now();
                    let grown = partition_watch::grown_topics(&client, &read);
                    if !grown.is_empty() {
                        let reason = Grown::explain(&grown, &program_name());
                        error!(%reason, "stopping");
                        status.set_fatal(reason);
                        shutdown.store(true, Ordering::Relaxed);
                        break;
                    }
                }
                let (mut answered, mut last_error) = (false, None);
                for (topic, partition) in &partitions {
                    match client.fetch_watermarks(topic, *partition, Duration::from_secs(1)) {
                        Ok((_, high)) => {
                            answered = true;
                            status.set_high_watermark(topic, *partition, high);
                        }
                        Err(error) => {
                            debug!(%error, %topic, partition, "cannot fetch watermarks");
                            last_error = Some(error);
                        }
                    }
                }
                match last_error {
                    Some(error) if !answered => {
                        let since = *unanswered_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= HOLD_AFTER {
                            status.readiness.hold(
                                Hold::Brokers,
                                format!(
                                    "the brokers have not answered for {} s ({error}); reading resumes when they do",
                                    since.elapsed().as_secs()
                                ),
                            );
                        }
                    }
                    _ => {
                        unanswered_since = None;
                        status.readiness.release(Hold::Brokers);
                    }
                }
                std::thread::park_timeout(REFRESH_INTERVAL);
            }
        })
        .map_err(|error| EngineError::io("starting the watermark monitor", error))
}

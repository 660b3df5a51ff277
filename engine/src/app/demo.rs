//! `demo`: the whole system in one process, on rdkafka's in-process mock cluster.
//!
//! The mock cluster speaks the Kafka protocol on a loopback port but keeps everything in
//! memory and implements only part of Kafka. It is for development and trying Sluice out,
//! never for data that matters; the demo says so when it starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use rdkafka::mocking::MockCluster;

use super::Application;
use super::cli::{DemoArgs, run_until_stopped};
use super::generator::GeneratorOptions;
use super::produce::{ProduceOptions, produce};
use crate::kafka::KafkaSettings;
use crate::runtime::{EngineConfig, plan_of, start};

/// Runs the demo until Ctrl-C.
pub(crate) async fn demo(application: Arc<dyn Application>, args: DemoArgs) -> anyhow::Result<()> {
    let chosen = args.topology.choose(application.as_ref())?;
    let cluster = MockCluster::new(1).context("cannot start rdkafka's mock cluster")?;
    let brokers = cluster.bootstrap_servers();
    println!("NOTE: this demo runs on rdkafka's in-process MOCK Kafka cluster ({brokers}).");
    println!(
        "      It is an in-memory development broker: nothing is persisted, and it is not Kafka."
    );
    println!(
        "      To run against a real cluster: {} run --brokers HOST:PORT",
        application.name()
    );

    let mut settings = KafkaSettings::new(&brokers);
    settings.group_id = format!("{}-demo", chosen.component);
    let input = application.input_topic().to_string();
    // The mock cluster does not answer CreateTopics, so its topics are made directly.
    // The generator's topics too: a part of the application may not read all it writes.
    let mut topics = plan_of(&chosen.topology).topics();
    let generator_topics = application.generator(&GeneratorOptions {
        seed: 0,
        failure_rate: 0.0,
        start_ms: 0,
        interval_ms: 1,
    });
    topics.extend(generator_topics.topics().iter().map(|t| t.to_string()));
    topics.sort();
    topics.dedup();
    for topic in topics {
        cluster
            .create_topic(&topic, settings.partitions, 1)
            .with_context(|| format!("cannot create topic {topic} on the mock cluster"))?;
    }

    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id())),
    };
    let mut config = EngineConfig::new(settings.clone(), &state_dir);
    config.create_topics = false;
    args.http.apply(&mut config)?;
    args.engine.apply(&mut config);
    config.component = chosen.component.clone();
    let engine = start(config, chosen.topology).await?;

    // Generated events carry the current time, so windows open and close as a user watches.
    let options = GeneratorOptions {
        seed: chrono::Utc::now().timestamp_millis() as u64,
        failure_rate: args.failure_rate,
        start_ms: chrono::Utc::now().timestamp_millis(),
        interval_ms: (1000.0 / args.rate).round().max(1.0) as i64,
    };
    let mut generator = application.generator(&options);
    let stop = Arc::new(AtomicBool::new(false));
    let producing = {
        let stop = Arc::clone(&stop);
        let produce_options = ProduceOptions {
            topic: input,
            count: None,
            rate: args.rate,
            progress: false,
        };
        std::thread::spawn(move || produce(&settings, generator.as_mut(), &produce_options, &stop))
    };

    if let Some(addr) = engine.http_addr() {
        println!(
            "Open http://{addr}/ for the live dashboard (the API: http://{addr}/openapi.json). Ctrl-C stops."
        );
    }
    let outcome = run_until_stopped(engine).await;
    stop.store(true, Ordering::Relaxed);
    match producing.join() {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => eprintln!("the demo producer stopped: {error}"),
        Err(_) => eprintln!("the demo producer panicked"),
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    drop(cluster);
    outcome
}

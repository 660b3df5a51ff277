//! `replay`: wipe the state, reprocess the input from the beginning (or a timestamp) and
//! show progress until the replay has caught up with where the previous run was.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Application;
use super::cli::ReplayArgs;
use crate::checkpoint::Checkpoint;
use crate::replay::{ReplayFrom, ReplayOptions, ReplayOutput, previous_checkpoint};
use crate::runtime::{EngineConfig, start};
use crate::status::EngineStatus;
use crate::time::format_millis;

/// Runs the `replay` command.
pub(crate) async fn replay(
    application: Arc<dyn Application>,
    args: ReplayArgs,
) -> anyhow::Result<()> {
    let from = match args.from_timestamp {
        Some(timestamp) => ReplayFrom::Timestamp(timestamp),
        None => ReplayFrom::Beginning,
    };
    let output = match &args.versioned_output {
        Some(version) => ReplayOutput::Versioned(version.clone()),
        None => ReplayOutput::SkipUntilCaughtUp,
    };
    let chosen = args.topology.choose(application.as_ref())?;
    let previous = previous_checkpoint(&args.state_dir)
        .with_context(|| format!("reading the state in {}", args.state_dir.display()))?;
    if !args.yes {
        confirm(&args, &previous, from)?;
    }
    let mut config = EngineConfig::new(
        args.kafka.settings(&chosen.component)?,
        args.state_dir.clone(),
    );
    args.http.apply(&mut config)?;
    config.broker_timeout = args.kafka.broker_timeout();
    config.replay = Some(ReplayOptions { from, output });
    args.engine.apply(&mut config);
    config.component = chosen.component.clone();
    let engine = start(config, chosen.topology).await?;
    if let Some(addr) = engine.http_addr() {
        println!(
            "{} is replaying; views at http://{addr}/views, status at http://{addr}/status",
            chosen.component
        );
    }
    let watcher = tokio::spawn(show_progress(
        Arc::clone(engine.status()),
        engine.replay_target().cloned(),
    ));
    let outcome = super::cli::run_until_stopped(engine).await;
    watcher.abort();
    outcome
}

/// Asks on the terminal before wiping anything; anything but `yes` cancels.
fn confirm(
    args: &ReplayArgs,
    previous: &Option<Checkpoint>,
    from: ReplayFrom,
) -> anyhow::Result<()> {
    let reached = match previous {
        Some(checkpoint) => format!(
            "its last checkpoint (#{}) had read {} records, up to watermark {}",
            checkpoint.id,
            read_total(checkpoint),
            format_millis(checkpoint.watermark as i64)
        ),
        None => "it holds no checkpoint".to_string(),
    };
    let start = match from {
        ReplayFrom::Beginning => "offset zero".to_string(),
        ReplayFrom::Timestamp(timestamp) => {
            format!("the first record at {}", format_millis(timestamp))
        }
    };
    print!(
        "This deletes the state in {} ({reached}) and reprocesses every source from {start}.\n\
         Type `yes` to continue: ",
        args.state_dir.display()
    );
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    anyhow::ensure!(
        answer.trim() == "yes",
        "replay cancelled; nothing was changed (pass --yes to skip this question)"
    );
    Ok(())
}

fn read_total(checkpoint: &Checkpoint) -> u64 {
    checkpoint
        .positions
        .iter()
        .map(|position| position.offset.max(0) as u64)
        .sum()
}

/// Shows events, rate and ETA until every partition is read past the previous run's
/// checkpoint, then says so.
async fn show_progress(status: Arc<EngineStatus>, target: Option<Checkpoint>) {
    let Some(target) = target else {
        return;
    };
    let total = read_total(&target);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("replay {bar:40} {pos}/{len} events, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    loop {
        let read: u64 = status
            .partitions()
            .into_iter()
            .filter_map(|(topic, partition, progress)| {
                target
                    .position(&topic, partition)
                    .map(|position| progress.offset.min(position.offset).max(0) as u64)
            })
            .sum();
        bar.set_position(read);
        if read >= total {
            bar.finish_and_clear();
            println!(
                "replay caught up with the previous run: {total} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

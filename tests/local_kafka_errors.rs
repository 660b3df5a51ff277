//! `scripts/local-kafka.sh` when it cannot run Kafka: a Java too old, and a Kafka that
//! cannot be fetched. Each must end at once with an error that names what is missing, and
//! leave nothing running: a test that needs a broker must fail, not hang.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn local_kafka(args: &[&str], env: &[(&str, String)]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-kafka.sh"))
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .expect("bash runs");
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_java_too_old_is_named() {
    // A `java` ahead of the real one on the PATH that reports itself as Java 11.
    let bin = tempfile::tempdir().expect("bin dir");
    let java = bin.path().join("java");
    std::fs::write(
        &java,
        "#!/bin/sh\necho '    java.specification.version = 11' >&2\necho 'openjdk version \"11.0.2\"' >&2\n",
    )
    .expect("fake java");
    std::process::Command::new("chmod")
        .args(["+x", &java.display().to_string()])
        .status()
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let broker_dir = tempfile::tempdir().expect("broker dir");
    let (output, took) = local_kafka(
        &["start", &broker_dir.path().display().to_string()],
        &[("PATH", path)],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("Java 11") && said.contains("needs Java 17"),
        "{said}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Nothing was started.
    assert!(!broker_dir.path().join("kafka.pid").exists());
}

#[test]
fn a_kafka_that_cannot_be_fetched_is_named() {
    // An empty cache and a version Maven Central does not have.
    let cache = tempfile::tempdir().expect("cache dir");
    let (output, took) = local_kafka(
        &["fetch"],
        &[
            ("SLUICE_TOOLS", cache.path().display().to_string()),
            ("KAFKA_VERSION", "4.0.99".to_string()),
        ],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("Maven could not download Kafka 4.0.99"),
        "{said}"
    );
    assert!(took < Duration::from_secs(120), "took {took:?}");
    // No half-finished download is left to pass for the cache.
    assert!(!cache.path().join("kafka-4.0.99").exists());
}

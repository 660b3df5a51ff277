//! The `shop` binary's answers to bad input it cannot run with: bad flags, bad Kafka
//! client properties (without showing their secrets), a broker that is not there, and
//! state directories it cannot use (a file, a damaged one, one another process holds).
//! Each must give a clear message and a non-zero exit, never a panic. While it waits for
//! brokers that are not there, its HTTP API already answers, with the start-up's phase.

mod harness;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::{DEADLINE, ShopProcess, free_port, get_json, get_with_headers, shop_binary};

fn shop(args: &[&str]) -> Output {
    Command::new(shop_binary())
        .args(args)
        .output()
        .expect("shop runs")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_flag_value_names_the_flag_and_exits_with_usage_error() {
    let output = shop(&["produce", "--brokers", "127.0.0.1:9", "--failure-rate", "2"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--failure-rate"), "stderr: {stderr}");
    assert!(
        stderr.contains("not a fraction from 0 to 1"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn an_unknown_flag_exits_with_usage_error() {
    let output = shop(&["run", "--brokers", "127.0.0.1:9", "--wokers", "2"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--wokers"), "stderr: {stderr}");
}

#[test]
fn a_weak_api_token_is_refused_without_repeating_it() {
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let brokers = format!("127.0.0.1:{}", free_port());
    let base = ["run", "--brokers", &brokers, "--state-dir", &state_dir];
    let short = Command::new(shop_binary())
        .args(base)
        .env("SLUICE_API_TOKEN", "hunter2")
        .output()
        .expect("shop runs");
    let stderr = stderr_of(&short);
    assert_eq!(short.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("use at least 16"), "stderr: {stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the token was repeated: {stderr}"
    );
    // Reads cannot be protected without a token to protect them with.
    let output = shop(&[&base[..], &["--api-token-reads"]].concat());
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--api-token"), "stderr: {stderr}");
}

#[test]
fn dead_letters_for_refused_output_are_refused_with_exactly_once_output() {
    let state = tempfile::tempdir().expect("state dir");
    let started = Instant::now();
    let output = shop(&[
        "run",
        "--brokers",
        &format!("127.0.0.1:{}", free_port()),
        "--state-dir",
        &state.path().display().to_string(),
        "--exactly-once",
        "--on-output-error",
        "dead-letter",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("--on-output-error dead-letter cannot go with --exactly-once"),
        "stderr: {stderr}"
    );
    // Refused before any broker is tried.
    assert!(started.elapsed().as_secs() < 10, "stderr: {stderr}");
    let output = shop(&["run", "--on-output-error", "skip"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("dead-letter"),
        "the choices are listed: {stderr}"
    );
}

#[test]
fn bad_kafka_client_properties_are_refused_before_anything_starts_and_secrets_stay_hidden() {
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let bad_file = state.path().join("kafka.properties");
    std::fs::write(&bad_file, "security.protocol=SSL\nsasl.password hunter2\n").expect("file");
    let bad_file = bad_file.display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (
            &["-X", "sasl.password"],
            "-X sasl.password: expected KEY=VALUE",
        ),
        (
            &["-X", "enable.idempotence=false"],
            "enable.idempotence is set by Sluice itself",
        ),
        (&["-X", "no.such.property=1"], "no.such.property"),
        (
            &["--kafka-config", &bad_file],
            ", line 2: expected KEY=VALUE",
        ),
        (
            &[
                "-X",
                "sasl.password=hunter2",
                "-X",
                "security.protocol=carrier-pigeon",
            ],
            "security.protocol",
        ),
    ];
    for (properties, expected) in cases {
        let output = shop(
            &[
                &["run", "--brokers", "127.0.0.1:9", "--state-dir", &state_dir][..],
                properties,
            ]
            .concat(),
        );
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{properties:?}: {stderr}");
        assert!(stderr.contains(expected), "{properties:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{properties:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{properties:?}: {stderr}");
    }
    let missing = shop(&[
        "run",
        "--brokers",
        "127.0.0.1:9",
        "--kafka-config",
        "/nonexistent/k.properties",
    ]);
    let stderr = stderr_of(&missing);
    assert_eq!(missing.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("/nonexistent/k.properties"),
        "stderr: {stderr}"
    );
}

#[test]
fn while_the_brokers_are_out_of_reach_the_api_answers_with_the_phase() {
    let brokers = format!("127.0.0.1:{}", free_port());
    let state = tempfile::tempdir().expect("state dir");
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let mut run = ShopProcess::spawn(
        &shop_binary(),
        &[
            "run",
            "--brokers",
            &brokers,
            "--broker-timeout-secs",
            "120",
            "--state-dir",
            &state.path().display().to_string(),
            "--http",
            &http,
            "--log",
            "error",
        ],
    );
    let deadline = Instant::now() + DEADLINE;
    let ready = loop {
        run.assert_running();
        let (code, ready) = get_json(&base, "/readyz");
        if code == 503 && ready["phase"] == "connecting" {
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz answered {code}: {ready}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready["status"], "starting", "{ready}");
    assert_eq!(get_json(&base, "/healthz").0, 200);
    // The state is open, so the engine's own figures answer; the views wait for the
    // operators' state, and say for how long to wait.
    let (code, status) = get_json(&base, "/status");
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["phase"], "connecting", "{status}");
    assert_eq!(status["phases"][0]["phase"], "opening_state", "{status}");
    let (code, headers, body) = get_with_headers(&base, "/views/orders_per_minute/all");
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        headers
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["phase"], "connecting", "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.contains("reaching the brokers")),
        "{body}"
    );
    run.kill_hard();
}

#[test]
fn an_unreachable_broker_is_retried_then_reported_without_a_panic() {
    // Nothing listens on a port that was just freed.
    let brokers = format!("127.0.0.1:{}", free_port());
    let state = tempfile::tempdir().expect("state dir");
    let http = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = shop(&[
        "run",
        "--brokers",
        &brokers,
        "--broker-timeout-secs",
        "3",
        "--state-dir",
        &state.path().display().to_string(),
        "--http",
        &http,
        "--log",
        "warn",
    ]);
    let elapsed = started.elapsed();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("cannot reach Kafka at {brokers}")),
        "stderr: {stderr}"
    );
    // It retried (with a logged warning) for the whole budget instead of failing at once.
    assert!(stderr.contains("retrying"), "stderr: {stderr}");
    assert!(elapsed.as_secs_f64() >= 3.0, "gave up after {elapsed:?}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// `shop run` on `state_dir` against a broker that is not there: the state is opened
/// first, so a bad state directory is reported before any broker is tried.
fn run_on_state(state_dir: &std::path::Path) -> (Option<i32>, String) {
    let brokers = format!("127.0.0.1:{}", free_port());
    let output = shop(&[
        "run",
        "--brokers",
        &brokers,
        "--broker-timeout-secs",
        "1",
        "--state-dir",
        &state_dir.display().to_string(),
        "--log",
        "warn",
    ]);
    let stderr = stderr_of(&output);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    (output.status.code(), stderr)
}

#[test]
fn a_state_directory_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("state");
    std::fs::write(&file, "not a directory").expect("file");
    let (code, stderr) = run_on_state(&file);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "creating the state directory {}, which is a file",
            file.display()
        )),
        "stderr: {stderr}"
    );
    // Each cause once, not repeated down the chain.
    assert_eq!(stderr.matches("File exists").count(), 1, "stderr: {stderr}");
}

#[test]
fn a_damaged_state_directory_is_reported_with_what_to_do() {
    let state = tempfile::tempdir().expect("state dir");
    std::fs::write(state.path().join("CURRENT"), "garbage\n").expect("damage");
    let (code, stderr) = run_on_state(state.path());
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot open the state in {}",
            state.path().display()
        )),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("Corruption"), "stderr: {stderr}");
    assert!(
        stderr.contains("replay --from-beginning"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_state_directory_in_use_by_another_process_is_refused() {
    let state = tempfile::tempdir().expect("state dir");
    // This test process holds the directory's RocksDB lock, as a running `shop` would.
    let _held = sluice_state::StateDb::open(state.path(), []).expect("state opens");
    let (code, stderr) = run_on_state(state.path());
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("is another process using this state directory?"),
        "stderr: {stderr}"
    );
}

#[test]
fn an_unknown_topology_is_refused_with_the_names_there_are() {
    let output = shop(&["describe", "--topology", "payments"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "unknown topology `payments`; shop has: shop (the whole, by default), orders ("
        ),
        "stderr: {stderr}"
    );
    for name in ["catalog (", "inventory (", "monitoring ("] {
        assert!(stderr.contains(name), "stderr: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn a_named_topology_holds_only_its_own_part() {
    let describe = |args: &[&str]| {
        let output = shop(&[&["describe", "--format", "json"], args].concat());
        assert!(output.status.success(), "stderr: {}", stderr_of(&output));
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
        let names = |field: &str, inner: &str| -> Vec<String> {
            plan[field]
                .as_array()
                .expect("a list")
                .iter()
                .map(|entry| entry[inner].as_str().expect("a name").to_string())
                .collect()
        };
        (names("sources", "topic"), names("views", "name"))
    };
    let (sources, views) = describe(&["--topology", "orders"]);
    assert_eq!(sources, ["order-events"]);
    assert_eq!(
        views,
        [
            "orders_per_minute",
            "order_totals",
            "failure_rate",
            "item_demand"
        ]
    );
    let (sources, views) = describe(&["--topology", "catalog"]);
    assert_eq!(sources, ["product-updates"]);
    assert_eq!(views, ["catalog"]);
    // The whole is the default, and also answers to the application's own name.
    let whole = describe(&[]);
    assert_eq!(describe(&["--topology", "shop"]), whole);
    assert!(whole.0.len() == 3 && whole.1.len() > 5, "{whole:?}");
}

//! The API contract: schemathesis (from PyPI, installed by `scripts/setup.sh`) generates
//! requests from `/openapi.json` against a running `shop demo` (rdkafka's in-process MOCK
//! cluster, fed by the generator), and must find no server error, no undocumented status or
//! content type, and no answer that breaks its schema.

mod harness;

use std::path::PathBuf;
use std::process::{Command, Output};

use harness::{ShopProcess, free_port, get_json, wait_for};

/// The checks: everything about what the server answers. (Schemathesis's checks that
/// expect every generated input to be accepted or refused are not here: a random key of a
/// real view is a documented 404, not a contract break.)
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// The schemathesis CLI: `SLUICE_SCHEMATHESIS`, or where `scripts/setup.sh` installs it.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SLUICE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/sluice-tools/schemathesis/bin/st")
        });
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup.sh --test` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn run_schemathesis(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(schemathesis())
        .arg("--no-color")
        .arg("run")
        .args(args)
        .args(["--checks", CHECKS, "--max-examples", "40", "--seed", "7"])
        // Event streams never end, so a request to one would only time out; the stream
        // tests (engine/src/query/stream_tests.rs, topologies/tests/live_updates.rs)
        // check them.
        .args(["--exclude-path-regex", "/stream$"])
        .current_dir(dir)
        .output()
        .expect("schemathesis runs")
}

#[test]
fn schemathesis_finds_no_contract_break_in_the_running_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut shop = ShopProcess::demo(port, 300, &dir.path().join("state"));
    // Data in the views first, so that lookups reach the stores rather than only 404s.
    wait_for(&mut shop, &base, "/views/orders_per_minute/all", |body| {
        body["windows"].as_array().is_some_and(|w| !w.is_empty())
    });
    wait_for(&mut shop, &base, "/views/item_demand", |body| {
        body["entries"].as_array().is_some_and(|e| !e.is_empty())
    });
    // Keys are free text; `all` is a key of the shop-wide views.
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        "[parameters]\nkey = \"all\"\n",
    )
    .expect("config");

    let output = run_schemathesis(dir.path(), &[&format!("{base}/openapi.json")]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Success with every phase passed. (It may warn that most generated events are
    // refused: the document describes an event body as any JSON object, while each topic
    // takes only its own event type, and says so with a 400.)
    assert!(
        report.contains("passed") && !report.contains('❌'),
        "{report}"
    );
    shop.assert_running();

    // The same run against a document that promises a field no window has must fail:
    // the checks above are live, and would catch an answer that drifts from the document.
    let (status, mut document) = get_json(&base, "/openapi.json");
    assert_eq!(status, 200);
    let window = &mut document["components"]["schemas"]["Window"];
    window["required"]
        .as_array_mut()
        .expect("Window lists required fields")
        .push("colour".into());
    window["properties"]["colour"] = serde_json::json!({"type": "string"});
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, document.to_string()).expect("write");
    let output = run_schemathesis(
        dir.path(),
        &[tampered.to_str().expect("utf-8 path"), "--url", &base],
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{report}");
    assert!(report.contains("Response violates schema"), "{report}");
    shop.interrupt_and_wait();
}

//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/dashboard.cjs`), loads `GET /` of a running `shop demo` (rdkafka's
//! in-process MOCK cluster, fed by the generator) and waits until its charts and tables
//! show what the API answers. The screenshot is kept as a test artifact.
//!
//! The engine runs with its API token required on reads (`--api-token-reads`, the token in
//! `SLUICE_API_TOKEN`), so the page is seen to ask for the token without it, and to work
//! with it: its reads send it as a header, its live stream as `access_token`.

mod harness;

use std::path::PathBuf;
use std::process::Command;

use harness::{ShopProcess, free_port, wait_for};

/// Where `scripts/setup.sh --test` installs playwright-core.
fn node_modules() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let modules = PathBuf::from(home).join(".cache/sluice-tools/browser/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core is missing from {}: run `bash scripts/setup.sh --test` (scripts/test.sh does)",
        modules.display()
    );
    modules
}

#[test]
fn the_dashboard_shows_what_the_api_answers() {
    let modules = node_modules();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = format!("dashboard-test-{}-{port}", std::process::id());
    let mut shop = ShopProcess::demo_with(
        port,
        50,
        &dir.path().join("state"),
        &["--api-token-reads"],
        &[("SLUICE_API_TOKEN", &token)],
    );
    let with_token = format!("/views/item_demand?access_token={token}");
    wait_for(&mut shop, &base, &with_token, |body| {
        body["entries"].as_array().is_some_and(|e| e.len() > 1)
    });

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.cjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(&base)
        .arg(&screenshot)
        .arg(&token)
        .env("NODE_PATH", &modules)
        .output()
        .expect("node runs (scripts/setup.sh installs it)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the dashboard did not show what the API answers:\n{report}\n{}\nscreenshot: {}",
        String::from_utf8_lossy(&output.stderr),
        screenshot.display()
    );
    let compared: serde_json::Value = serde_json::from_str(report.trim()).expect("a JSON report");
    assert!(
        compared["total_orders"].as_u64().unwrap_or(0) > 0,
        "{compared}"
    );
    assert_eq!(compared["chart"], "line");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!(
        "dashboard screenshot: {} ({compared})",
        screenshot.display()
    );
    shop.interrupt_and_wait();
}

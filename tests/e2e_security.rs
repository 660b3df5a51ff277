//! Sluice on a secured Apache Kafka: beside PLAINTEXT, the broker has an SSL listener and
//! a SASL_SSL listener with SCRAM-SHA-512, its certificate signed by a certificate
//! authority the test makes with openssl. Through each secured listener, with its client
//! properties in a `--kafka-config` file, `shop produce` publishes orders and `shop run`
//! consumes them, writes its inventory events and commits its group's offsets; every view
//! and the output are checked against an independent computation, and Kafka's own group
//! tool sees the commits. A wrong password and an untrusted certificate stop `shop run` at
//! once with the listener and the cause.

mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use harness::kafka::Kafka;
use harness::orders::all_entries;
use harness::shop_run::{ShopAccess, shop_matches_through};
use harness::{
    DEADLINE, ShopProcess, checkpointed, free_port, get_text, metric_sum, shop_binary, wait_for,
};

const EVENTS: u64 = 2_000;
const SEED: u64 = 31;
const USER: &str = "shop";
const PASSWORD: &str = "shop-scram-secret";

/// A certificate authority and a broker certificate for 127.0.0.1 that it signed, made
/// with the openssl command.
struct Certificates {
    ca: PathBuf,
    /// The broker's private key and certificate, in the PEM keystore form Kafka reads.
    keystore: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn make_certificates(dir: &Path) -> Certificates {
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes"][..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=sluice test CA",
            ],
            &days,
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "broker.key",
            "-out",
            "broker.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("broker.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("extensions");
    openssl(
        dir,
        &[
            &[
                "x509",
                "-req",
                "-in",
                "broker.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ][..],
            &[
                "-CAcreateserial",
                "-out",
                "broker.crt",
                "-extfile",
                "broker.ext",
            ],
            &days,
        ]
        .concat(),
    );
    let key = std::fs::read_to_string(dir.join("broker.key")).expect("key");
    let certificate = std::fs::read_to_string(dir.join("broker.crt")).expect("certificate");
    let keystore = dir.join("broker-keystore.pem");
    std::fs::write(&keystore, format!("{key}{certificate}")).expect("keystore");
    Certificates {
        ca: dir.join("ca.pem"),
        keystore,
    }
}

/// A broker with SSL and SASL_SSL listeners beside PLAINTEXT, and the SCRAM user.
fn secured_kafka(certificates: &Certificates) -> Kafka {
    let properties = [
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", certificates.keystore.display()),
        "sasl.enabled.mechanisms=SCRAM-SHA-512".to_string(),
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;".to_string(),
    ];
    Kafka::start_with(vec![
        ("KAFKA_EXTRA_LISTENERS".into(), "SSL SASL_SSL".into()),
        ("KAFKA_EXTRA_PROPERTIES".into(), properties.join("\n")),
        (
            "KAFKA_SCRAM_CREDENTIALS".into(),
            format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]"),
        ),
    ])
}

/// Writes a client properties file for `shop`'s `--kafka-config`.
fn client_config(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("# {name}\n{}\n", lines.join("\n"))).expect("config");
    path.display().to_string()
}

/// Waits until Kafka's group tool shows `group` committed at the end of every partition
/// of `order-events`.
fn wait_for_commits(kafka: &Kafka, group: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let rows: Vec<_> = kafka
            .group_lag(group)
            .into_iter()
            .filter(|row| row.topic == "order-events")
            .collect();
        if rows.len() == 4 && rows.iter().all(|row| row.committed == Some(row.log_end)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} never committed the end of order-events: {rows:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn shop_produces_consumes_and_commits_through_sasl_ssl_and_ssl_listeners() {
    let dir = tempfile::tempdir().expect("dir");
    let certificates = make_certificates(dir.path());
    let kafka = secured_kafka(&certificates);
    let ca = format!("ssl.ca.location={}", certificates.ca.display());

    let sasl_config = client_config(
        dir.path(),
        "sasl-ssl.properties",
        &[
            "security.protocol=SASL_SSL".into(),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            format!("sasl.username={USER}"),
            format!("sasl.password={PASSWORD}"),
            ca.clone(),
        ],
    );
    let sasl = kafka.listener("SASL_SSL");
    let flags = ["--kafka-config", sasl_config.as_str()];
    let access = ShopAccess {
        brokers: &sasl,
        flags: &flags,
        group: "shop-sasl",
    };
    let checked = shop_matches_through(&access, &kafka.brokers(), EVENTS, SEED);
    wait_for_commits(&kafka, "shop-sasl");
    let orders_per_minute = all_entries(&checked.base, "orders_per_minute");
    checked.run.interrupt_and_wait();

    // The orders topology of another group reads the same orders through the SSL listener
    // (its flags mix -X and a file), writes one inventory event per order line, commits,
    // and counts what the checked run counted.
    let ssl_config = client_config(dir.path(), "ssl.properties", &[ca]);
    let ssl = kafka.listener("SSL");
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let base_port = free_port();
    let http = format!("127.0.0.1:{base_port}");
    let mut run = ShopProcess::spawn(
        &shop_binary(),
        &[
            "run",
            "--topology",
            "orders",
            "--brokers",
            &ssl,
            "--group",
            "shop-ssl",
            "-X",
            "security.protocol=SSL",
            "--kafka-config",
            &ssl_config,
            "--state-dir",
            &state_dir,
            "--http",
            &http,
            "--workers",
            "2",
        ],
    );
    let base = format!("http://{http}");
    let orders = EVENTS as i64 + 4;
    wait_for(&mut run, &base, "/status", |status| {
        checkpointed(status) == orders
    });
    assert_eq!(all_entries(&base, "orders_per_minute"), orders_per_minute);
    let lines = checked.want.lines as f64;
    wait_for(&mut run, &base, "/status", |_| {
        let metrics = get_text(&base, "/metrics").1;
        metric_sum(
            &metrics,
            "sluice_records_delivered_total{topic=\"inventory-events\"",
        ) >= lines
    });
    let metrics = get_text(&base, "/metrics").1;
    assert_eq!(
        metric_sum(
            &metrics,
            "sluice_records_delivered_total{topic=\"inventory-events\""
        ),
        lines,
        "{metrics}"
    );
    wait_for_commits(&kafka, "shop-ssl");
    run.interrupt_and_wait();

    // A wrong password, and a certificate the client has no reason to trust: `shop run`
    // stops at once, naming the listener and the cause, and shows no password.
    let wrong_password = client_config(
        dir.path(),
        "wrong-password.properties",
        &[
            "security.protocol=SASL_SSL".into(),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            format!("sasl.username={USER}"),
            "sasl.password=not-the-password".into(),
            format!("ssl.ca.location={}", certificates.ca.display()),
        ],
    );
    let untrusted = client_config(
        dir.path(),
        "untrusted.properties",
        &["security.protocol=SSL".into()],
    );
    for (brokers, config, cause) in [
        (&sasl, &wrong_password, "Authentication failed"),
        (&ssl, &untrusted, "certificate verify failed"),
    ] {
        let state = tempfile::tempdir().expect("state dir");
        let started = Instant::now();
        let output = Command::new(shop_binary())
            .args([
                "run",
                "--brokers",
                brokers,
                "--kafka-config",
                config.as_str(),
            ])
            .args(["--state-dir", &state.path().display().to_string()])
            .args(["--http", &format!("127.0.0.1:{}", free_port())])
            .output()
            .expect("shop runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("Kafka at {brokers} refused the connection")),
            "{stderr}"
        );
        assert!(
            stderr.contains(brokers.as_str()) && stderr.contains(cause),
            "{stderr}"
        );
        assert!(!stderr.contains("not-the-password"), "{stderr}");
        // Well before the 60 s a broker that does not answer is retried for.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{stderr}"
        );
    }
}

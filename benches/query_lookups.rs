//! The query API's own cost per lookup, in process: the shop's views after 20,000
//! generated orders, and requests handed with `tower::ServiceExt::oneshot` (no sockets,
//! one thread) to the front door the server serves (`query::gate`), so that the time is
//! the door, routing, the snapshot, the RocksDB reads, the checkpoint record and the JSON
//! of the answer. `/healthz` is the floor: the door, routing and the request-metrics layer
//! alone; `table_key_router_only` is the table key without the door.
//!
//! `cargo bench --bench query_lookups`

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice::app::{Application, GeneratorOptions};
use sluice::query::admission::Admission;
use sluice::query::gate::Gate;
use sluice::query::{QueryState, router};
use sluice::testkit::run_to_completion;
use sluice_topologies::Shop;
use sluice_topologies::generator::generated_input;
use tower::{Service, ServiceExt};

const ORDERS: usize = 20_000;
const PARTITIONS: u64 = 4;

/// The routes `scripts/query-load.sh` loads, and the floor.
const ROUTES: [(&str, &str); 3] = [
    ("table_key", "/views/order_totals/all"),
    ("window_key", "/views/item_demand/burger"),
    ("healthz", "/healthz"),
];

/// Answers `uri`, returning the status and the body's length.
async fn answer<S>(app: &S, uri: &str) -> (StatusCode, usize)
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 24).await.expect("body");
    (status, body.len())
}

fn query_lookups(c: &mut Criterion) {
    let options = GeneratorOptions {
        seed: 1,
        failure_rate: 0.05,
        start_ms: 1_705_314_600_000,
        interval_ms: 10,
    };
    let dir = tempfile::tempdir().expect("temporary state directory");
    let run = run_to_completion(
        Shop.topology(),
        generated_input(options, ORDERS, PARTITIONS),
        dir.path(),
        2,
        100,
    )
    .expect("run");
    let api = router(QueryState::new(
        Arc::new(run.plan),
        Arc::clone(&run.state),
        Arc::clone(&run.status),
    ));
    let gate = Gate::new(Arc::clone(&run.status), Admission::open());
    gate.open(api.clone());
    let app = gate.service();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    // The answers are real: the table key's totals count every order, and the window key
    // has its windows, each read through the API as a client would.
    let totals: serde_json::Value = runtime.block_on(async {
        let request = Request::get("/views/order_totals/all")
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let body = to_bytes(response.into_body(), 1 << 24).await.expect("body");
        serde_json::from_slice(&body).expect("json")
    });
    // The generator made exactly ORDERS orders, and every one is in a per-minute window.
    assert_eq!(
        totals["value"]["total_orders"],
        serde_json::json!(ORDERS),
        "{totals}"
    );
    assert!(
        totals["checkpoint"]["offsets"]
            .as_array()
            .is_some_and(|offsets| !offsets.is_empty()),
        "{totals}"
    );
    let (status, window_bytes) = runtime.block_on(answer(&app, "/views/item_demand/burger"));
    assert_eq!(status, StatusCode::OK);
    assert!(window_bytes > 100);

    let mut group = c.benchmark_group("query_lookups");
    for (name, uri) in ROUTES {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let (status, _) = runtime.block_on(answer(&app, uri));
                assert_eq!(status, StatusCode::OK);
            })
        });
    }
    group.bench_function("table_key_router_only", |bench| {
        bench.iter(|| {
            let (status, _) = runtime.block_on(answer(&api, "/views/order_totals/all"));
            assert_eq!(status, StatusCode::OK);
        })
    });
    group.finish();
}

criterion_group!(benches, query_lookups);
criterion_main!(benches);

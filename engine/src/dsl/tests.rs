//! The DSL records the graph it builds: the plan lists every operator, view and topic.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Source, TopologyFn, TumblingWindows};
use crate::plan::{EventTimeKind, ViewKind};
use crate::runtime::plan_of;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    page: String,
    at: i64,
    ms: u32,
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        let clicks = topology.source(
            Source::<Click>::topic("clicks")
                .event_time(|click| click.at)
                .grace(Duration::from_secs(2)),
        );
        let by_page = clicks
            .filter(|click| click.ms > 0)
            .key_by("page", |click| click.page.clone());
        let windows = by_page.window(TumblingWindows::of(Duration::from_secs(10)));
        windows.count().materialize("clicks");
        windows
            .sum(|click| f64::from(click.ms))
            .materialize("time_on_page");
        clicks.map(|click| click.page).to("pages");
    })
}

#[test]
fn the_plan_lists_operators_views_and_topics() {
    let plan = plan_of(&topology());
    let labels: Vec<&str> = plan.nodes.iter().map(|node| node.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "source clicks",
            "filter",
            "key_by page",
            "window tumbling 10000 ms, count",
            "materialize clicks",
            "window tumbling 10000 ms, sum",
            "materialize time_on_page",
            "map",
            "to pages",
        ]
    );
    assert_eq!(plan.nodes[2].inputs, vec![1]);
    assert_eq!(plan.nodes[7].inputs, vec![0]);
    assert_eq!(plan.sources[0].event_time, EventTimeKind::Payload);
    assert_eq!(plan.sources[0].grace_ms, 2_000);
    assert_eq!(plan.views[0].kind, ViewKind::Tumbling { size_ms: 10_000 });
    assert_eq!(plan.views[0].key, "page");
    assert_eq!(plan.views[1].value, serde_json::json!("number"));
    assert_eq!(
        plan.topics(),
        vec!["clicks", "clicks.dlq", "clicks.late", "pages"]
    );
}

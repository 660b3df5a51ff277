//! Text and Graphviz renderings of a plan.

use std::fmt::Write;

use super::Plan;

/// A human-readable listing of the plan: sources, operators with their inputs, and views.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Sources:");
    for (index, source) in plan.sources.iter().enumerate() {
        let _ = writeln!(
            out,
            "  [{index}] {} (event time from {:?}, grace {} ms, idle timeout {} ms{}; bad records to {}, late records to {})",
            source.topic,
            source.event_time,
            source.grace_ms,
            source.idle_timeout_ms,
            if source.wall_clock_advance {
                ", then the wall clock"
            } else {
                ""
            },
            source.dead_letter_topic(),
            source.late_topic()
        );
    }
    let _ = writeln!(out, "Operators:");
    for node in &plan.nodes {
        let inputs: Vec<String> = node
            .inputs
            .iter()
            .map(|input| format!("#{input}"))
            .collect();
        if inputs.is_empty() {
            let _ = writeln!(out, "  #{} {}", node.id, node.label);
        } else {
            let _ = writeln!(
                out,
                "  #{} {} <- {}",
                node.id,
                node.label,
                inputs.join(", ")
            );
        }
    }
    let _ = writeln!(out, "Views:");
    for view in &plan.views {
        let kind = view.kind.label();
        let _ = writeln!(
            out,
            "  {} ({kind}, key {}, from {}): {}",
            view.name,
            view.key,
            view.sources.join(", "),
            view.value
        );
    }
    let mut outputs: Vec<&str> = Vec::new();
    for topic in &plan.sink_topics {
        if !outputs.contains(&topic.as_str()) {
            outputs.push(topic);
        }
    }
    let _ = writeln!(out, "Output topics: {}", outputs.join(", "));
    out
}

/// The plan as a Graphviz DOT digraph: operators as boxes, views as cylinders.
pub fn to_dot(plan: &Plan) -> String {
    let mut out = String::from("digraph topology {\n  rankdir=LR;\n  node [shape=box];\n");
    for node in &plan.nodes {
        let label = node.label.replace('"', "\\\"");
        let shape = if node.label.starts_with("materialize") {
            ", shape=cylinder"
        } else {
            ""
        };
        let _ = writeln!(out, "  n{} [label=\"{label}\"{shape}];", node.id);
        for input in &node.inputs {
            let _ = writeln!(out, "  n{input} -> n{};", node.id);
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{EventTimeKind, SourcePlan, ViewKind, ViewSpec};

    #[test]
    fn lists_sources_operators_and_views() {
        let mut plan = Plan::default();
        plan.sources.push(SourcePlan {
            topic: "in".into(),
            event_time: EventTimeKind::Payload,
            grace_ms: 5_000,
            idle_timeout_ms: 10_000,
            wall_clock_advance: false,
        });
        let source = plan.add_source_node("source in", 0);
        plan.add_node("count", vec![source]);
        plan.views.push(ViewSpec {
            name: "counts".into(),
            kind: ViewKind::Tumbling { size_ms: 60_000 },
            key: "all".into(),
            value: serde_json::json!("number"),
            sources: vec!["in".into()],
        });
        let text = describe(&plan);
        assert!(text.contains("[0] in (event time from Payload, grace 5000 ms"));
        assert!(text.contains("#1 count <- #0"));
        assert!(text.contains("counts (tumbling 60000 ms, key all, from in)"));
        assert_eq!(
            plan.topics(),
            vec!["in", "in.dlq", "in.late", "monitoring-events"]
        );
        let dot = to_dot(&plan);
        assert!(dot.contains("n0 -> n1;"));
        assert!(dot.contains("n1 [label=\"count\"];"));
    }
}

//! The results of a comparison: a Markdown table for BENCHMARKS.md and an SVG bar chart of
//! events per second, with CPU seconds and peak memory beside each bar.

use std::fmt::Write;

use crate::measure::Outcome;

/// The Markdown table, one row per peer, in the order they ran.
pub fn table(outcomes: &[Outcome], orders: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| peer | result | seconds | events/s | CPU s | CPU µs per event | peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for outcome in outcomes {
        if outcome.seconds > 0.0 {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} |",
                outcome.name,
                outcome.verdict,
                outcome.seconds,
                outcome.events_per_second,
                outcome.cpu_seconds,
                1e6 * outcome.cpu_seconds / orders.max(1) as f64,
                outcome.peak_rss_mib
            );
        } else {
            let _ = writeln!(out, "| {} | {} | | | | | |", outcome.name, outcome.verdict);
        }
    }
    out
}

/// A horizontal bar per peer that finished, its length its events per second.
pub fn chart(outcomes: &[Outcome], orders: u64) -> String {
    let measured: Vec<&Outcome> = outcomes.iter().filter(|o| o.seconds > 0.0).collect();
    let width = 900.0;
    let label_width = 190.0;
    let bar_space = width - label_width - 260.0;
    let row = 34.0;
    let top = 50.0;
    let height = top + row * measured.len().max(1) as f64 + 20.0;
    let fastest = measured
        .iter()
        .map(|o| o.events_per_second)
        .fold(1.0_f64, f64::max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="24" font-size="15" font-weight="bold">Orders analytics over {orders} preloaded orders: events/s from process start to last window written</text>"#
    );
    for (index, outcome) in measured.iter().enumerate() {
        let y = top + row * index as f64;
        let length = bar_space * outcome.events_per_second / fastest;
        let colour = match (outcome.verdict, outcome.name.starts_with("sluice")) {
            ("agrees", true) => "#1f77b4",
            ("agrees", false) => "#7f9fbf",
            _ => "#d62728",
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
            label_width - 8.0,
            y + 17.0,
            escape(&outcome.name)
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{label_width}" y="{y:.0}" width="{length:.1}" height="24" fill="{colour}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.0}">{:.0}/s · {:.1} CPU s · {:.0} MiB{}</text>"#,
            label_width + length + 6.0,
            y + 17.0,
            outcome.events_per_second,
            outcome.cpu_seconds,
            outcome.peak_rss_mib,
            if outcome.verdict == "agrees" {
                String::new()
            } else {
                format!(" · {}", outcome.verdict)
            }
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, verdict: &'static str, seconds: f64) -> Outcome {
        Outcome {
            name: name.into(),
            verdict,
            detail: Vec::new(),
            seconds,
            events_per_second: if seconds > 0.0 { 1000.0 / seconds } else { 0.0 },
            cpu_seconds: seconds * 1.5,
            peak_rss_mib: 100.0,
        }
    }

    #[test]
    fn the_table_and_chart_show_every_peer_that_ran() {
        let outcomes = vec![
            outcome("sluice", "agrees", 1.0),
            outcome("kafka-streams", "agrees", 4.0),
            outcome("broken<peer>", "differs", 2.0),
            Outcome::unavailable("flink", "the Maven build failed"),
        ];
        let table = table(&outcomes, 1000);
        assert!(
            table.contains("| sluice | agrees | 1.0 | 1000 | 1.5 | 1500.0 | 100 |"),
            "{table}"
        );
        assert!(
            table.contains("| flink | unavailable | | | | | |"),
            "{table}"
        );
        let svg = chart(&outcomes, 1000);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("broken&lt;peer&gt;"));
        assert!(svg.contains("250/s"));
        assert!(!svg.contains("flink"));
    }
}

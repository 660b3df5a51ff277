//! The `KIND:NAME=COMMAND` arguments that plan a comparison's runs, for either benchmark,
//! and the running of them one after another.

use crate::measure::Outcome;

/// One run to make: a command line of some kind, still with placeholders to fill in.
#[derive(Debug, Clone)]
pub struct Run<K> {
    /// Its name in the results.
    pub name: String,
    /// How it delivers its results.
    pub kind: K,
    /// Its command line; each benchmark names the placeholders it fills in.
    pub command: String,
}

/// A planned run, or one that could not be built, reported with the reason.
#[derive(Debug, Clone)]
pub enum Planned<K> {
    /// To run.
    Run(Run<K>),
    /// Reported as unavailable.
    Unavailable {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Parses `KIND:NAME=COMMAND`, KIND one of `kinds` or `unavailable` (then COMMAND is the
/// reason), NAME made of letters, digits and `-`.
pub fn parse<K: Copy>(text: &str, kinds: &[(&str, K)]) -> Result<Planned<K>, String> {
    let (head, command) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KIND:NAME=COMMAND"))?;
    let (kind, name) = head
        .split_once(':')
        .ok_or_else(|| format!("`{head}` is not KIND:NAME"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "`{name}` is not a run's name (letters, digits and `-`)"
        ));
    }
    if kind == "unavailable" {
        return Ok(Planned::Unavailable {
            name: name.to_string(),
            reason: command.to_string(),
        });
    }
    let Some(&(_, kind)) = kinds.iter().find(|(known, _)| *known == kind) else {
        let known: Vec<&str> = kinds.iter().map(|(known, _)| *known).collect();
        return Err(format!(
            "unknown kind `{kind}`: {} or unavailable",
            known.join(", ")
        ));
    };
    Ok(Planned::Run(Run {
        name: name.to_string(),
        kind,
        command: command.to_string(),
    }))
}

/// Runs each planned run with `run`, one after another, reporting each outcome on stderr
/// under `label`; an unavailable one is reported as such, with its reason.
pub fn run_each<K>(
    label: &str,
    planned: &[Planned<K>],
    mut run: impl FnMut(&Run<K>) -> Outcome,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for planned in planned {
        let outcome = match planned {
            Planned::Unavailable { name, reason } => Outcome::unavailable(name, reason),
            Planned::Run(each) => {
                eprintln!("{label}: running {}", each.name);
                run(each)
            }
        };
        eprintln!(
            "{label}: {}: {} in {:.1} s ({:.0} events/s, {:.1} CPU s, {:.0} MiB)",
            outcome.name,
            outcome.verdict,
            outcome.seconds,
            outcome.events_per_second,
            outcome.cpu_seconds,
            outcome.peak_rss_mib
        );
        for line in &outcome.detail {
            eprintln!("{label}:   {line}");
        }
        outcomes.push(outcome);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_its_kind_or_says_why_it_is_missing() {
        let kinds = [("peer", 1), ("sluice", 2)];
        match parse("sluice:shop-run=shop run --brokers {brokers}", &kinds) {
            Ok(Planned::Run(run)) => {
                assert_eq!((run.name.as_str(), run.kind), ("shop-run", 2));
                assert_eq!(run.command, "shop run --brokers {brokers}");
            }
            other => panic!("{other:?}"),
        }
        match parse("unavailable:flink=the build failed: no java", &kinds) {
            Ok(Planned::Unavailable { name, reason }) => {
                assert_eq!(
                    (name.as_str(), reason.as_str()),
                    ("flink", "the build failed: no java")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse("bench:x=y", &kinds).err().as_deref(),
            Some("unknown kind `bench`: peer, sluice or unavailable")
        );
        assert!(parse("peer:a b=c", &kinds).is_err());
        assert!(parse("peer=c", &kinds).is_err());
        assert!(parse("peer:c", &kinds).is_err());
    }
}

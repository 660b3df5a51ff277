//! `--topology NAME`: which of an application's topologies a command runs.
//!
//! An application runs its whole topology by default. It may also offer parts of it by
//! name (the shop offers `orders`, `catalog`, `inventory` and `monitoring`), each run as a
//! topology of its own, with its own consumer group, as a Kafka Streams application per
//! part would be.

use clap::Args;

use super::Application;
use crate::dsl::TopologyFn;

/// A part of an application that `--topology NAME` runs on its own.
#[derive(Clone)]
pub struct NamedTopology {
    /// The name `--topology` takes.
    pub name: &'static str,
    /// One line on what it holds, for `--help` errors and `describe`.
    pub about: &'static str,
    /// The topology.
    pub topology: TopologyFn,
}

/// The `--topology` flag.
#[derive(Args, Clone, Default)]
pub(crate) struct TopologyArg {
    /// Run one named part of the application instead of the whole (see the error for a
    /// name this binary does not have); its consumer group defaults to `<app>-<name>`.
    #[arg(long, value_name = "NAME")]
    pub topology: Option<String>,
}

/// The topology a command runs, and the name that stands for it in consumer groups.
#[derive(Clone)]
pub(crate) struct ChosenTopology {
    /// The application's name, or `<app>-<name>` for a named part.
    pub component: String,
    /// The topology.
    pub topology: TopologyFn,
}

/// A `--topology` name the application does not have.
#[derive(Debug, thiserror::Error)]
#[error("unknown topology `{asked}`; {application} has: {choices}")]
pub struct UnknownTopology {
    asked: String,
    application: &'static str,
    choices: String,
}

impl TopologyArg {
    /// The whole application when no name (or the application's own name) is given;
    /// otherwise the named part.
    pub(crate) fn choose(
        &self,
        application: &dyn Application,
    ) -> Result<ChosenTopology, UnknownTopology> {
        let whole = ChosenTopology {
            component: application.name().to_string(),
            topology: application.topology(),
        };
        let Some(asked) = self.topology.as_deref() else {
            return Ok(whole);
        };
        if asked == application.name() {
            return Ok(whole);
        }
        let parts = application.topologies();
        match parts.iter().find(|part| part.name == asked) {
            Some(part) => Ok(ChosenTopology {
                component: format!("{}-{}", application.name(), part.name),
                topology: part.topology.clone(),
            }),
            None => {
                let mut choices = vec![format!("{} (the whole, by default)", application.name())];
                choices.extend(
                    parts
                        .iter()
                        .map(|part| format!("{} ({})", part.name, part.about)),
                );
                Err(UnknownTopology {
                    asked: asked.to_string(),
                    application: application.name(),
                    choices: choices.join(", "),
                })
            }
        }
    }
}

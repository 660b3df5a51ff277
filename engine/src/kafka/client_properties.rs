//! librdkafka properties the user passes to every Kafka client Sluice makes
//! (`--kafka-config FILE` and repeated `-X key=value`, as kcat takes them): security
//! settings above all, with secret values kept out of logs, errors and answers.

use std::fmt;
use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

/// Properties the engine sets itself because its guarantees rest on them; each with the
/// flag or reason that governs it instead.
const RESERVED: [(&str, &str); 9] = [
    ("bootstrap.servers", "use --brokers"),
    ("group.id", "use --group"),
    (
        "transactional.id",
        "it is <group>-output under --exactly-once",
    ),
    (
        "enable.idempotence",
        "output relies on it for no duplicates within a partition",
    ),
    (
        "isolation.level",
        "exactly-once restarts read their own markers with it",
    ),
    (
        "enable.auto.commit",
        "offsets are committed only with checkpoints",
    ),
    (
        "enable.auto.offset.store",
        "offsets are committed only with checkpoints",
    ),
    (
        "auto.offset.reset",
        "the engine chooses where each partition is read from (see --on-missing-offsets)",
    ),
    (
        "enable.partition.eof",
        "the sources do not expect end-of-partition events",
    ),
];

/// What a value shown in place of a secret reads.
const HIDDEN: &str = "[hidden]";

/// Whether the value of `key` is a secret: passwords, keys, SASL and OAuth configuration.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", "credential"]
        .iter()
        .any(|word| key.contains(word))
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key == "sasl.oauthbearer.config"
}

/// Why client properties were refused. No variant holds a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum PropertyError {
    #[error("-X {given}: expected KEY=VALUE")]
    NotKeyValue { given: String },
    #[error("{}, line {line}: expected KEY=VALUE (or KEY: VALUE)", path.display())]
    BadLine { path: PathBuf, line: usize },
    #[error("cannot read the Kafka client properties file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Kafka client property {key} is set by Sluice itself and cannot be overridden: {reason}"
    )]
    Reserved { key: String, reason: &'static str },
    #[error("Kafka client property {key}: {message}")]
    Refused { key: String, message: String },
}

/// librdkafka properties for every client, in the order given: a later one replaces an
/// earlier one with the same key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties {
    entries: Vec<(String, String)>,
}

impl ClientProperties {
    /// Reads a properties file: `KEY=VALUE` (or `KEY: VALUE`) lines, with blank lines and
    /// lines starting with `#` or `!` skipped, as in Java's `.properties` files that Kafka's
    /// own tools take.
    pub fn add_file(&mut self, path: &Path) -> Result<(), PropertyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PropertyError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = split_property(line, &['=', ':']) else {
                return Err(PropertyError::BadLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                });
            };
            self.set(key, value)?;
        }
        Ok(())
    }

    /// Adds one `KEY=VALUE`, as given to `-X`.
    pub fn add_flag(&mut self, flag: &str) -> Result<(), PropertyError> {
        let Some((key, value)) = split_property(flag, &['=']) else {
            // Without `=` there is no value to leak: the flag is a key at most.
            return Err(PropertyError::NotKeyValue {
                given: flag.to_string(),
            });
        };
        self.set(key, value)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), PropertyError> {
        if let Some((_, reason)) = RESERVED.iter().find(|(reserved, _)| *reserved == key) {
            return Err(PropertyError::Reserved {
                key: key.to_string(),
                reason,
            });
        }
        self.entries.retain(|(known, _)| known != key);
        self.entries.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// Whether no property was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks every property against librdkafka (unknown names, values out of range, or
    /// features this build lacks) without making a client, so that a mistake stops the
    /// command at once rather than at the first client.
    pub fn validate(&self) -> Result<(), PropertyError> {
        for (key, value) in &self.entries {
            let mut config = ClientConfig::new();
            config.set(key, value);
            if let Err(error) = config.create_native_config() {
                // librdkafka's description may quote the value: not a secret's.
                let message = match error {
                    _ if is_secret(key) => {
                        format!("refused by librdkafka (the value is {HIDDEN})")
                    }
                    KafkaError::ClientConfig(_, description, _, _) => description,
                    other => other.to_string(),
                };
                return Err(PropertyError::Refused {
                    key: key.clone(),
                    message,
                });
            }
        }
        Ok(())
    }

    /// Sets every property on `config`, over what was set before.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (key, value) in &self.entries {
            config.set(key, value);
        }
    }

    /// The properties as they may be shown: secrets' values hidden.
    pub fn shown(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) { HIDDEN } else { value };
                (key.clone(), shown.to_string())
            })
            .collect()
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_map().entries(self.shown()).finish()
    }
}

/// `key` and `value` of `text` split at the first of `separators`, both trimmed; `None`
/// without a separator or with an empty key.
fn split_property<'a>(text: &'a str, separators: &[char]) -> Option<(&'a str, &'a str)> {
    let (key, value) = text.split_once(separators)?;
    let key = key.trim();
    (!key.is_empty()).then_some((key, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("written");
        file
    }

    #[test]
    fn a_file_then_flags_make_the_properties_and_later_ones_win() {
        let file = file_with(
            "# the cluster\n\
             security.protocol=SASL_SSL\n\
             \n\
             sasl.mechanism: SCRAM-SHA-512\n\
             ! a Java-style comment\n\
             sasl.username = shop\n\
             linger.ms=5\n",
        );
        let mut properties = ClientProperties::default();
        properties.add_file(file.path()).expect("file read");
        properties.add_flag("linger.ms=20").expect("flag");
        properties.add_flag("sasl.password=a=b").expect("flag");
        let mut config = ClientConfig::new();
        properties.apply(&mut config);
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("shop"));
        assert_eq!(config.get("linger.ms"), Some("20"));
        // Only the first `=` separates: values may hold more.
        assert_eq!(config.get("sasl.password"), Some("a=b"));
    }

    #[test]
    fn secrets_are_hidden_wherever_the_properties_are_shown() {
        let mut properties = ClientProperties::default();
        for flag in [
            "sasl.password=hunter2",
            "ssl.key.password=hunter3",
            "sasl.jaas.config=org.Module required password=hunter4;",
            "sasl.oauthbearer.client.secret=hunter5",
            "ssl.key.pem=-----BEGIN PRIVATE KEY----- hunter6",
            "sasl.username=shop",
        ] {
            properties.add_flag(flag).expect("flag");
        }
        let debug = format!("{properties:?}");
        let shown = format!("{:?}", properties.shown());
        for text in [&debug, &shown] {
            assert!(!text.contains("hunter"), "a secret shows in {text}");
            assert!(text.contains("shop"), "a plain value is hidden in {text}");
        }
    }

    #[test]
    fn malformed_and_reserved_properties_are_refused_with_their_place() {
        let mut properties = ClientProperties::default();
        let error = properties.add_flag("sasl.password").expect_err("no value");
        assert_eq!(error.to_string(), "-X sasl.password: expected KEY=VALUE");
        let error = properties.add_flag("=value").expect_err("no key");
        assert!(matches!(error, PropertyError::NotKeyValue { .. }));
        let error = properties
            .add_flag("enable.idempotence=false")
            .expect_err("reserved");
        assert!(error.to_string().contains("enable.idempotence"), "{error}");

        let file = file_with("security.protocol=SSL\nsasl.password hunter2\n");
        let error = properties.add_file(file.path()).expect_err("bad line");
        assert!(
            error
                .to_string()
                .ends_with(", line 2: expected KEY=VALUE (or KEY: VALUE)")
        );
        assert!(!error.to_string().contains("hunter2"));
        let missing = Path::new("/nonexistent/kafka.properties");
        let error = properties.add_file(missing).expect_err("no file");
        assert!(error.to_string().contains("/nonexistent/kafka.properties"));
    }

    #[test]
    fn librdkafka_refuses_unknown_names_and_bad_values_without_showing_secrets() {
        let mut unknown = ClientProperties::default();
        unknown.add_flag("no.such.property=1").expect("flag");
        let error = unknown.validate().expect_err("unknown");
        assert!(error.to_string().contains("no.such.property"), "{error}");

        let mut bad_value = ClientProperties::default();
        bad_value.add_flag("linger.ms=forever").expect("flag");
        assert!(bad_value.validate().is_err());

        let mut fine = ClientProperties::default();
        fine.add_flag("linger.ms=20").expect("flag");
        fine.add_flag("sasl.username=shop").expect("flag");
        fine.validate().expect("valid");
        assert!(!fine.is_empty());
    }
}

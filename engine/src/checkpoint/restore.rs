//! Reading the last checkpoint at start, after checking that the state was written by the
//! same topology.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_state::{StateDb, TableStore};

use super::record::Checkpoint;
use crate::error::EngineError;

/// The metadata key of the topology that owns the state.
const TOPOLOGY_KEY: &[u8] = b"topology";

/// The topology that owns a state directory.
#[derive(Debug, Serialize, Deserialize)]
struct StoredTopology {
    fingerprint: String,
    /// `describe()` of the plan, so that a refusal can say what the state belongs to.
    description: String,
}

/// Checks that the state in `db` belongs to the topology with `fingerprint` (claiming a
/// fresh state for it), and returns the last committed checkpoint, if there is one.
pub fn restore(
    db: &StateDb,
    state_dir: &Path,
    fingerprint: &str,
    description: &str,
) -> Result<Option<Checkpoint>, EngineError> {
    let meta = db.meta()?;
    match meta.get(TOPOLOGY_KEY)? {
        Some(json) => {
            let stored: StoredTopology = serde_json::from_slice(&json).map_err(|error| {
                EngineError::CorruptCheckpoint(format!("unreadable topology record: {error}"))
            })?;
            if stored.fingerprint != fingerprint {
                return Err(EngineError::TopologyChanged {
                    state_dir: state_dir.display().to_string(),
                    stored: stored.fingerprint,
                    current: fingerprint.to_string(),
                    program: program_name(),
                });
            }
        }
        None => {
            let claim = StoredTopology {
                fingerprint: fingerprint.to_string(),
                description: description.to_string(),
            };
            let json = serde_json::to_vec(&claim)
                .map_err(|error| EngineError::CorruptCheckpoint(error.to_string()))?;
            meta.put(TOPOLOGY_KEY, &json)?;
        }
    }
    last_checkpoint(db)
}

/// The last committed checkpoint of `db`, whatever topology wrote it.
pub fn last_checkpoint(db: &StateDb) -> Result<Option<Checkpoint>, EngineError> {
    read_checkpoint(&db.meta()?)
}

/// The checkpoint record of a metadata store, which may be seen through a snapshot.
pub fn read_checkpoint(meta: &TableStore<'_>) -> Result<Option<Checkpoint>, EngineError> {
    match meta.get(Checkpoint::KEY)? {
        None => Ok(None),
        Some(json) => serde_json::from_slice(&json).map(Some).map_err(|error| {
            EngineError::CorruptCheckpoint(format!("unreadable checkpoint: {error}"))
        }),
    }
}

/// The running binary's name, for messages that name its commands.
pub fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "sluice".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_of_another_topology_is_refused_with_the_replay_command() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["v"]).unwrap();
        assert_eq!(restore(&db, dir.path(), "aaaa", "plan a").unwrap(), None);
        assert_eq!(restore(&db, dir.path(), "aaaa", "plan a").unwrap(), None);
        let refused = restore(&db, dir.path(), "bbbb", "plan b").unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("replay --from-beginning"), "{message}");
        assert!(
            message.contains("aaaa") && message.contains("bbbb"),
            "{message}"
        );
    }

    #[test]
    fn the_last_checkpoint_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["v"]).unwrap();
        restore(&db, dir.path(), "f", "plan").unwrap();
        let checkpoint = Checkpoint {
            id: 3,
            epoch: 7,
            is_final: false,
            positions: vec![],
            watermark: 42,
            committed_at: 1,
            duration_ms: 2,
            fingerprint: "f".into(),
        };
        db.meta()
            .unwrap()
            .put(Checkpoint::KEY, &serde_json::to_vec(&checkpoint).unwrap())
            .unwrap();
        assert_eq!(
            restore(&db, dir.path(), "f", "plan").unwrap(),
            Some(checkpoint)
        );
    }
}

//! Consistent answers: each reads one RocksDB snapshot, and says which checkpoint that
//! snapshot holds, so the freshness it reports is exactly that of the values it returns.

use axum::Json;
use serde_json::Value;
use sluice_state::{ReadView, StateDb};

use super::error::ApiError;
use super::status::{checkpoint_json, view_watermark_json};
use crate::checkpoint::Checkpoint;
use crate::checkpoint::restore::read_checkpoint;

/// The state as of one checkpoint.
pub(crate) struct Reading<'db> {
    /// Every store, as of the snapshot.
    pub(crate) state: ReadView<'db>,
    /// The checkpoint record in the snapshot: the views are exactly its results.
    checkpoint: Option<Checkpoint>,
}

impl<'db> Reading<'db> {
    /// Takes a snapshot. A checkpoint writes its views and its record in one batch, so the
    /// record read here describes every value read through the same snapshot.
    pub(crate) fn take(db: &'db StateDb) -> Result<Self, ApiError> {
        let state = db.read_view();
        let checkpoint = read_checkpoint(&state.meta()?)
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        Ok(Reading { state, checkpoint })
    }

    /// `body` (a JSON object) with the watermark and checkpoint the snapshot reflects.
    pub(crate) fn answer(&self, mut body: Value) -> Json<Value> {
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "watermark".into(),
                view_watermark_json(self.checkpoint.as_ref()),
            );
            fields.insert(
                "checkpoint".into(),
                checkpoint_json(self.checkpoint.as_ref()),
            );
        }
        Json(body)
    }
}

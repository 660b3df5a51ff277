//! Consistent answers: each reads one RocksDB snapshot, and says which checkpoint that
//! snapshot holds, so the freshness it reports is exactly that of the values it returns.

use sluice_state::{ReadView, StateDb};

use super::answers::Freshness;
use super::error::ApiError;
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

    /// The checkpoint the snapshot reflects, and the watermark it holds for a view that
    /// reads `sources`.
    pub(crate) fn freshness(&self, sources: &[String]) -> Freshness {
        Freshness::of(self.checkpoint.as_ref(), sources)
    }
}

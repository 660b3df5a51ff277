//! View handlers: list the views, scan one, or read one key.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sluice_state::WindowEntry;

use super::QueryState;
use super::error::ApiError;
use super::params::Params;
use super::status::{checkpoint_json, view_watermark_json};
use crate::plan::ViewSpec;
use crate::time::format_millis;

/// `GET /views`: every view with its kind, key and value shape.
pub async fn list_views(State(state): State<QueryState>) -> Json<Value> {
    Json(json!({ "views": state.plan.views }))
}

/// `GET /views/{view}/{key}`: a table value, or a key's windows narrowed by `from`/`to`.
pub async fn get_key(
    State(state): State<QueryState>,
    Path((view, key)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let spec = find_view(&state, &view)?;
    if spec.is_windowed() {
        let params = Params::new(raw, &["from", "to"])?;
        let from = params.time("from", i64::MIN)?;
        let to = params.time("to", i64::MAX)?;
        if from >= to {
            return Err(ApiError::BadRequest("`from` must be before `to`".into()));
        }
        let windows = state
            .db
            .window_store(&view)?
            .windows(key.as_bytes(), from, to)?;
        if windows.is_empty() {
            return Err(ApiError::NotFound(format!(
                "view {view} has no windows for key `{key}` in that range"
            )));
        }
        let windows = windows
            .iter()
            .map(window_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(json!({
            "view": view,
            "key": key,
            "windows": windows,
            "watermark": view_watermark_json(&state.status),
            "checkpoint": checkpoint_json(&state.status),
        })))
    } else {
        Params::new(raw, &[])?;
        let value = state.db.table_store(&view)?.get(key.as_bytes())?;
        let Some(value) = value else {
            return Err(ApiError::NotFound(format!(
                "view {view} has no key `{key}`"
            )));
        };
        Ok(Json(json!({
            "view": view,
            "key": key,
            "value": parse_json(&value)?,
            "watermark": view_watermark_json(&state.status),
            "checkpoint": checkpoint_json(&state.status),
        })))
    }
}

/// `GET /views/{view}`: keys in order, `limit` at a time, continuing `after` a key.
pub async fn scan_view(
    State(state): State<QueryState>,
    Path(view): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let spec = find_view(&state, &view)?;
    let params = Params::new(raw, &["limit", "after"])?;
    let limit = params.limit()?;
    let after = params.text("after").map(str::as_bytes);
    let mut entries = Vec::new();
    let mut last_key = None;
    if spec.is_windowed() {
        for (key, windows) in state.db.window_store(&view)?.scan(after, limit)? {
            let key = String::from_utf8_lossy(&key).into_owned();
            let windows = windows
                .iter()
                .map(window_json)
                .collect::<Result<Vec<_>, _>>()?;
            last_key = Some(key.clone());
            entries.push(json!({ "key": key, "windows": windows }));
        }
    } else {
        for (key, value) in state.db.table_store(&view)?.scan(after, limit)? {
            let key = String::from_utf8_lossy(&key).into_owned();
            last_key = Some(key.clone());
            entries.push(json!({ "key": key, "value": parse_json(&value)? }));
        }
    }
    let next = if entries.len() == limit {
        last_key
    } else {
        None
    };
    Ok(Json(json!({
        "view": view,
        "entries": entries,
        "next": next,
        "watermark": view_watermark_json(&state.status),
        "checkpoint": checkpoint_json(&state.status),
    })))
}

fn find_view<'a>(state: &'a QueryState, view: &str) -> Result<&'a ViewSpec, ApiError> {
    state.plan.view(view).ok_or_else(|| {
        let known: Vec<&str> = state
            .plan
            .views
            .iter()
            .map(|spec| spec.name.as_str())
            .collect();
        ApiError::NotFound(format!(
            "no view named `{view}`; the views are {}",
            known.join(", ")
        ))
    })
}

fn window_json(entry: &WindowEntry) -> Result<Value, ApiError> {
    Ok(json!({
        "start": format_millis(entry.start),
        "end": format_millis(entry.end),
        "value": parse_json(&entry.value_json)?,
        "final": entry.is_final,
    }))
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::Internal(format!("stored value is not JSON: {error}")))
}

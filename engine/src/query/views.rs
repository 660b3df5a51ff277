//! View handlers: list the views, scan one, or read one key, each from one snapshot.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sluice_state::WindowEntry;

use super::QueryState;
use super::error::ApiError;
use super::freshness::Reading;
use super::params::Params;
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
    let reading = Reading::take(&state.db)?;
    if spec.is_windowed() {
        let params = Params::new(raw, &["from", "to"])?;
        let (from, to) = params.time_range()?;
        let windows = reading
            .state
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
        Ok(reading.answer(json!({ "view": view, "key": key, "windows": windows })))
    } else {
        Params::new(raw, &[])?;
        let value = reading.state.table_store(&view)?.get(key.as_bytes())?;
        let Some(value) = value else {
            return Err(ApiError::NotFound(format!(
                "view {view} has no key `{key}`"
            )));
        };
        Ok(reading.answer(json!({ "view": view, "key": key, "value": parse_json(&value)? })))
    }
}

/// `GET /views/{view}`: keys in order, `limit` at a time, continuing `after` a key; only
/// those in `[key_from, key_to)` and starting with `prefix`, when given. For a window view,
/// `from`/`to` keep the windows of a time range, across keys.
pub async fn scan_view(
    State(state): State<QueryState>,
    Path(view): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    const KEY_PARAMS: [&str; 5] = ["limit", "after", "prefix", "key_from", "key_to"];
    let spec = find_view(&state, &view)?;
    let params = if spec.is_windowed() {
        Params::new(raw, &[&KEY_PARAMS[..], &["from", "to"]].concat())?
    } else {
        Params::new(raw, &KEY_PARAMS)?
    };
    let limit = params.limit()?;
    let range = params.key_range()?;
    let reading = Reading::take(&state.db)?;
    let (entries, more) = if spec.is_windowed() {
        let (from, to) = params.time_range()?;
        let page = reading
            .state
            .window_store(&view)?
            .scan(&range, from, to, limit)?;
        let entries = page
            .entries
            .iter()
            .map(|(key, windows)| {
                let windows = windows
                    .iter()
                    .map(window_json)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(json!({ "key": String::from_utf8_lossy(key), "windows": windows }))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (entries, page.more)
    } else {
        let page = reading.state.table_store(&view)?.scan(&range, limit)?;
        let entries = page
            .entries
            .iter()
            .map(|(key, value)| {
                Ok(json!({ "key": String::from_utf8_lossy(key), "value": parse_json(value)? }))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (entries, page.more)
    };
    // The cursor for the next page, only when there is one.
    let next = if more {
        entries.last().map(|entry| entry["key"].clone())
    } else {
        None
    };
    Ok(reading.answer(json!({ "view": view, "entries": entries, "next": next })))
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

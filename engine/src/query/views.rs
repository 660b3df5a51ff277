//! View handlers: list the views, scan one, or read one key, each from one snapshot.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::Value;
use sluice_state::{KeyRange, WindowEntry};

use super::QueryState;
use super::answers::{
    ErrorBody, KeyAnswer, KeyValue, KeyWindows, Page, PageEntry, Timestamp, ViewList, Window,
};
use super::error::ApiError;
use super::freshness::Reading;
use super::params::Params;
use crate::plan::ViewSpec;
use crate::time::format_millis;

/// Every view with its kind, key and value shape.
#[utoipa::path(
    get,
    path = "/views",
    tag = "views",
    responses((status = 200, description = "The views", body = ViewList))
)]
pub async fn list_views(State(state): State<QueryState>) -> Json<ViewList> {
    Json(ViewList {
        views: state.plan.views.clone(),
    })
}

/// A table view's value of a key, or a window view's windows of a key narrowed by
/// `from`/`to`.
#[utoipa::path(
    get,
    path = "/views/{view}/{key}",
    tag = "views",
    params(
        ("view" = String, Path, description = "The view's name"),
        ("key" = String, Path, description = "The key"),
        ("from" = Option<Timestamp>, Query,
            description = "Window views: only windows ending after this time (RFC 3339 or epoch ms)"),
        ("to" = Option<Timestamp>, Query,
            description = "Window views: only windows starting before this time (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "The key's windows or value, and the checkpoint they reflect", body = KeyAnswer),
        (status = 400, description = "A bad or unknown parameter", body = ErrorBody),
        (status = 404, description = "No such view, or no such key", body = ErrorBody),
    )
)]
pub async fn get_key(
    State(state): State<QueryState>,
    Path((view, key)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<KeyAnswer>, ApiError> {
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
        Ok(Json(KeyAnswer::Windows(KeyWindows {
            view,
            key,
            windows: windows.iter().map(window).collect::<Result<_, _>>()?,
            freshness: reading.freshness(&spec.sources),
        })))
    } else {
        Params::new(raw, &[])?;
        let value = reading.state.table_store(&view)?.get(key.as_bytes())?;
        let Some(value) = value else {
            return Err(ApiError::NotFound(format!(
                "view {view} has no key `{key}`"
            )));
        };
        Ok(Json(KeyAnswer::Value(KeyValue {
            view,
            key,
            value: parse_json(&value)?,
            freshness: reading.freshness(&spec.sources),
        })))
    }
}

/// Keys in order, `limit` at a time, continuing `after` a key; only those in
/// `[key_from, key_to)` and starting with `prefix`, when given. For a window view,
/// `from`/`to` keep the windows of a time range, across keys.
#[utoipa::path(
    get,
    path = "/views/{view}",
    tag = "views",
    params(
        ("view" = String, Path, description = "The view's name"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000,
            description = "Keys per page, 1 to 1000 (default 100)"),
        ("after" = Option<String>, Query, description = "Continue after this key: the last page's `next`"),
        ("prefix" = Option<String>, Query, description = "Only keys that start with this"),
        ("key_from" = Option<String>, Query, description = "Only keys from this one, inclusive"),
        ("key_to" = Option<String>, Query, description = "Only keys before this one, exclusive"),
        ("from" = Option<Timestamp>, Query,
            description = "Window views only: windows ending after this time (RFC 3339 or epoch ms)"),
        ("to" = Option<Timestamp>, Query,
            description = "Window views only: windows starting before this time (RFC 3339 or epoch ms)"),
    ),
    responses(
        (status = 200, description = "One page of keys, and the checkpoint it reflects", body = Page),
        (status = 400, description = "A bad or unknown parameter", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
    )
)]
pub async fn scan_view(
    State(state): State<QueryState>,
    Path(view): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
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
    let times = if spec.is_windowed() {
        Some(params.time_range()?)
    } else {
        None
    };
    let (entries, more) = read_page(&reading, &view, &range, times, limit)?;
    // The cursor for the next page, only when there is one.
    let next = entries
        .last()
        .filter(|_| more)
        .map(|entry| entry.key().to_string());
    Ok(Json(Page {
        view,
        entries,
        next,
        freshness: reading.freshness(&spec.sources),
    }))
}

/// Up to `limit` keys of `range` in `view`, and whether more follow: with their windows
/// overlapping `times` for a window view (`Some`), with their values for a table (`None`).
pub(crate) fn read_page(
    reading: &Reading<'_>,
    view: &str,
    range: &KeyRange<'_>,
    times: Option<(i64, i64)>,
    limit: usize,
) -> Result<(Vec<PageEntry>, bool), ApiError> {
    let key_of = |key: &[u8]| String::from_utf8_lossy(key).into_owned();
    match times {
        Some((from, to)) => {
            let page = reading
                .state
                .window_store(view)?
                .scan(range, from, to, limit)?;
            let entries = page
                .entries
                .iter()
                .map(|(key, windows)| {
                    Ok(PageEntry::Windows {
                        key: key_of(key),
                        windows: windows.iter().map(window).collect::<Result<_, _>>()?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok((entries, page.more))
        }
        None => {
            let page = reading.state.table_store(view)?.scan(range, limit)?;
            let entries = page
                .entries
                .iter()
                .map(|(key, value)| {
                    Ok(PageEntry::Value {
                        key: key_of(key),
                        value: parse_json(value)?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok((entries, page.more))
        }
    }
}

pub(crate) fn find_view<'a>(state: &'a QueryState, view: &str) -> Result<&'a ViewSpec, ApiError> {
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

pub(crate) fn window(entry: &WindowEntry) -> Result<Window, ApiError> {
    Ok(Window {
        start: format_millis(entry.start),
        end: format_millis(entry.end),
        value: parse_json(&entry.value_json)?,
        is_final: entry.is_final,
    })
}

pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::Internal(format!("stored value is not JSON: {error}")))
}

//! `/api/v1/notifiers` (list, send a test message) and `/api/v1/status-pages` (list, notices).
//!
//! Notices are what an admin tells the users of a status page ("maintenance tonight 22–23 h",
//! "imports are delayed, we are on it"). They are stored durably, ended rather than deleted
//! (the history stays), bounded per page, and every change is in the audit log (the audit
//! layer records each POST and DELETE).

use crate::auth::Caller;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value as J};
use std::collections::HashMap;
use vitals_store::Notice;

/// Open notices a page may have at once.
pub const MAX_OPEN_NOTICES: usize = 20;
/// Notices kept per page (older ended ones are dropped when a new one is posted).
pub const KEEP_NOTICES: usize = 200;
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 4000;
pub const KINDS: &[&str] = &["info", "maintenance", "incident"];

fn caller_name(c: &Option<Extension<Caller>>) -> String {
    c.as_ref()
        .map_or_else(|| "local".to_string(), |Extension(c)| c.name.clone())
}

/// `GET /api/v1/notifiers`.
pub async fn notifiers(State(app): State<AppState>) -> Json<J> {
    Json(json!({ "notifiers": *app.site.notifiers() }))
}

/// `POST /api/v1/notifiers/{id}/test`: sends a test message now and answers its outcome (200
/// also when the channel failed: the test ran, and `delivered` says how it went).
pub async fn test_notifier(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<J>, AppError> {
    let by = caller_name(&who);
    match app.site.test_notifier(&id, &by, app.now()).await {
        Some(outcome) => Ok(Json(json!({ "test": outcome }))),
        None => Err(AppError::not_found(format!("no notifier {id:?}"))),
    }
}

/// `GET /api/v1/status-pages`.
pub async fn status_pages(State(app): State<AppState>) -> Json<J> {
    let pages: Vec<J> = app
        .site
        .status_pages()
        .iter()
        .map(|p| {
            json!({
                "slug": p.slug, "title": p.title, "description": p.description,
                "groups": p.groups, "assets": p.assets, "url": format!("/status/{}", p.slug),
            })
        })
        .collect();
    Json(json!({ "status_pages": pages }))
}

fn page_of(app: &AppState, slug: &str) -> Result<vitals_config::StatusPageConfig, AppError> {
    app.site
        .status_page(slug)
        .ok_or_else(|| AppError::not_found(format!("no status page {slug:?}")))
}

/// `GET /api/v1/status-pages/{slug}/notices?limit=` — newest first, open and ended.
pub async fn notices(
    State(app): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<J>, AppError> {
    page_of(&app, &slug)?;
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=KEEP_NOTICES).contains(n))
            .ok_or_else(|| {
                AppError::bad_request(
                    "limit",
                    format!("{v:?} is not a number from 1 to {KEEP_NOTICES}"),
                )
            })?,
    };
    let list = app
        .store()
        .notices(&slug, limit)
        .await
        .map_err(AppError::unavailable)?;
    Ok(Json(json!({ "notices": list })))
}

/// A notice from its fields (`title`, `body`, `kind`), checked.
pub fn draft(
    slug: &str,
    title: Option<&str>,
    body: Option<&str>,
    kind: Option<&str>,
    author: &str,
    now: vitals_core::Timestamp,
) -> Result<Notice, AppError> {
    let title = title.map(str::trim).unwrap_or("");
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(AppError::bad_request(
            "title",
            format!("must be 1–{MAX_TITLE} characters"),
        ));
    }
    // Browsers send a textarea's line breaks as CRLF; paragraphs are split on blank lines.
    let body = body.map(str::trim).unwrap_or("").replace("\r\n", "\n");
    if body.chars().count() > MAX_BODY {
        return Err(AppError::bad_request(
            "body",
            format!("must be at most {MAX_BODY} characters"),
        ));
    }
    let kind = kind
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .unwrap_or("info");
    if !KINDS.contains(&kind) {
        return Err(AppError::bad_request(
            "kind",
            format!("{kind:?} is not one of {}", KINDS.join(", ")),
        ));
    }
    Ok(Notice {
        id: 0,
        page: slug.to_string(),
        kind: kind.to_string(),
        title: title.to_string(),
        body,
        author: author.to_string(),
        created: now,
        ended: None,
    })
}

/// Stores a checked notice (refused while the page has too many open ones).
pub async fn post(app: &AppState, notice: Notice) -> Result<Notice, AppError> {
    let open = app
        .store()
        .notices(&notice.page, KEEP_NOTICES)
        .await
        .map_err(AppError::unavailable)?
        .iter()
        .filter(|n| n.ended.is_none())
        .count();
    if open >= MAX_OPEN_NOTICES {
        return Err(AppError {
            status: StatusCode::CONFLICT,
            error: format!(
                "status page {:?} already has {open} open notices; end one first",
                notice.page
            ),
            field: None,
        });
    }
    app.store()
        .notice_add(notice, KEEP_NOTICES)
        .await
        .map_err(AppError::unavailable)
}

/// `POST /api/v1/status-pages/{slug}/notices` with `{"title", "body", "kind"}` (kind `info`,
/// `maintenance` or `incident`); the author is the caller. 201 with the notice.
pub async fn create_notice(
    State(app): State<AppState>,
    who: Option<Extension<Caller>>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    page_of(&app, &slug)?;
    let m: serde_json::Map<String, J> = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<J>(&body) {
            Ok(J::Object(m)) => m,
            Ok(_) => return Err(AppError::bad_request("body", "must be a JSON object")),
            Err(e) => return Err(AppError::bad_request("body", format!("invalid JSON: {e}"))),
        }
    };
    for k in m.keys() {
        if !["title", "body", "kind"].contains(&k.as_str()) {
            return Err(AppError::bad_request(
                k,
                "unknown field (known: title, body, kind)",
            ));
        }
    }
    let text = |k: &str| -> Result<Option<&str>, AppError> {
        match m.get(k) {
            None | Some(J::Null) => Ok(None),
            Some(J::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(AppError::bad_request(k, "must be a string")),
        }
    };
    let notice = draft(
        &slug,
        text("title")?,
        text("body")?,
        text("kind")?,
        &caller_name(&who),
        app.now(),
    )?;
    let stored = post(&app, notice).await?;
    Ok((StatusCode::CREATED, Json(json!({ "notice": stored }))).into_response())
}

/// Ends an open notice (it stays in the history).
pub async fn end(app: &AppState, slug: &str, id: &str) -> Result<Notice, AppError> {
    page_of(app, slug)?;
    let id = id
        .parse::<i64>()
        .map_err(|_| AppError::bad_request("id", format!("{id:?} is not a notice id")))?;
    app.store()
        .notice_end(slug, id, app.now())
        .await
        .map_err(AppError::unavailable)?
        .ok_or_else(|| AppError::not_found(format!("no notice {id} on status page {slug:?}")))
}

/// `DELETE /api/v1/status-pages/{slug}/notices/{id}`: ends the notice (kept, marked ended).
pub async fn end_notice(
    State(app): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<J>, AppError> {
    let n = end(&app, &slug, &id).await?;
    Ok(Json(json!({ "notice": n })))
}

//! One error type for every handler, rendered as `{"error": "...", "field": "..."}`.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl AppError {
    pub fn bad_request(field: &str, error: impl Into<String>) -> Self {
        AppError {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        AppError {
            status: StatusCode::NOT_FOUND,
            error: error.into(),
            field: None,
        }
    }

    /// The store failed: the server is not at fault for the request, but cannot answer now.
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed on the store");
        AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: format!("storage unavailable: {error}"),
            field: None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.error,
            field: self.field.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::not_found(format!("no route for {method} {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error: format!("method {method} is not allowed on {}", uri.path()),
        field: None,
    }
}

/// Rejections produced by axum's own extractors (a body over the limit, a path that is not
/// UTF-8, …) come back as plain text; this turns every non-JSON 4xx into the API's JSON error
/// format, so clients see one format whatever went wrong.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // The web UI's own error pages are HTML and stay so.
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !resp.status().is_client_error() || is_json {
        return resp;
    }
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string()
    } else {
        text
    };
    let mut out = (
        status,
        Json(Body {
            error: &error,
            field: None,
        }),
    )
        .into_response();
    // Keep headers such as Retry-After and WWW-Authenticate.
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Sheds load: beyond the in-flight limit a request is answered 503 at once, so a flood
/// costs bounded memory instead of a growing queue.
pub async fn shed(
    axum::extract::State(permits): axum::extract::State<std::sync::Arc<tokio::sync::Semaphore>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        let mut r = AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "too many requests in flight; try again shortly".into(),
            field: None,
        }
        .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return r;
    };
    next.run(req).await
}

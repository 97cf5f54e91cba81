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

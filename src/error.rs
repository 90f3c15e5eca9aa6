//! `ApiError`: the one error every request path ends in. It maps to SPEC §3's JSON error
//! shape over HTTP and to the `{success: false, error: {code, message}}` ack / `exception`
//! event over Socket.IO. Internal causes are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::store::StoreError;
use crate::validate::Invalid;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What went wrong inside, for the log (never sent): logged where the error is
    /// answered ([`ApiError::log_cause`]), not where it is made.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), cause: None }
    }
    /// Printing asked of a hub: it only holds copies of its branches' printers.
    pub fn hub_does_not_print() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            "this is the HQ hub: it does not drive branch printers; print from the branch appliance",
        )
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; see the server log")
    }

    /// An internal error whose cause goes to the log when it is answered.
    pub fn internal_because(cause: impl std::fmt::Display) -> Self {
        ApiError { cause: Some(cause.to_string()), ..Self::internal() }
    }

    /// Logs the internal cause, if there is one; called where the error is answered.
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %cause, code = self.code, "internal error");
        }
    }

    /// The `error` object of both the HTTP body and the Socket.IO ack.
    pub fn body(&self) -> serde_json::Value {
        json!({"code": self.code, "message": self.message})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_cause();
        (self.status, axum::Json(json!({"error": self.body()}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            StoreError::Invalid(m) => ApiError::bad(m),
            StoreError::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down"),
            // Storage failures are logged once per change of state by `store::health`,
            // not once per refused request.
            StoreError::Full => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_FULL",
                "the appliance's disk is full: nothing was stored; free space (see `branchd doctor`) and try again",
            ),
            e if e.is_storage_failure() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_UNAVAILABLE",
                "the appliance cannot use its database right now; try again shortly",
            ),
            other => ApiError::internal_because(format!("store error: {other}")),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad(e.0)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

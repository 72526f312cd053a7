//! The one public error type: `application/problem+json` (RFC 9457) with a stable snake_case
//! `type`, a Chinese `title` for the screen and an English `detail`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppError;

/// A problem report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable code, e.g. `invalid_phone`, `too_late_to_recall`, `version_conflict`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Chinese text for the screen.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// English detail for developers and logs.
    pub detail: String,
}

/// Everything a handler can fail with. Each variant's status is in its doc.
#[derive(Debug)]
pub enum ApiError {
    /// 400: malformed input (bad JSON, missing or unknown fields, bad headers).
    BadRequest { code: &'static str, detail: String },
    /// 401: no or invalid bearer token.
    Unauthorized,
    /// 403: the caller's role or unit may not do this.
    Forbidden {
        code: &'static str,
        title: &'static str,
        detail: String,
    },
    /// 404: unknown case or resource.
    NotFound(String),
    /// 409: the case moved on (`If-Match` or a concurrent command).
    Conflict(String),
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 413: the body is larger than the limit.
    TooLarge(String),
    /// 415: not JSON.
    UnsupportedMediaType(String),
    /// 422: a rule of the flow refused the command.
    Rule {
        code: &'static str,
        title: &'static str,
        detail: String,
    },
    /// 503: a read waited for `min_position` in vain.
    Unavailable(String),
    /// 500: a store or index failure; the cause is logged, not sent.
    Internal(anyhow::Error),
}

impl ApiError {
    /// A 400 with a code and an English detail.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Domain(e) if e.is_permission() => ApiError::Forbidden {
                code: e.code(),
                title: e.title_zh(),
                detail: e.to_string(),
            },
            AppError::Domain(e) => ApiError::Rule {
                code: e.code(),
                title: e.title_zh(),
                detail: e.to_string(),
            },
            AppError::NotFound(id) => ApiError::NotFound(format!("no case `{id}`")),
            e @ AppError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            e @ AppError::KeyReused => ApiError::Rule {
                code: "idempotency_key_reused",
                title: "幂等键已用于其他请求",
                detail: e.to_string(),
            },
            AppError::Store(e) => ApiError::Internal(e.into()),
            AppError::Decode(e) => ApiError::Internal(e.into()),
        }
    }
}

/// Marks a 500 response with its cause so the logging middleware can report it.
#[derive(Clone)]
pub struct InternalCause(pub std::sync::Arc<anyhow::Error>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, detail) = match &self {
            ApiError::BadRequest { code, detail } => (
                StatusCode::BAD_REQUEST,
                *code,
                "请求格式不正确",
                detail.clone(),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "请先登录",
                "a valid bearer token is required".to_owned(),
            ),
            ApiError::Forbidden {
                code,
                title,
                detail,
            } => (StatusCode::FORBIDDEN, *code, *title, detail.clone()),
            ApiError::NotFound(detail) => (
                StatusCode::NOT_FOUND,
                "not_found",
                "工单或资源不存在",
                detail.clone(),
            ),
            ApiError::Conflict(detail) => (
                StatusCode::CONFLICT,
                "version_conflict",
                "工单已被他人更新，请刷新后重试",
                detail.clone(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "不支持该请求方法",
                "this route does not take that method".to_owned(),
            ),
            ApiError::TooLarge(detail) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "提交内容过大",
                detail.clone(),
            ),
            ApiError::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请以 JSON 格式提交",
                detail.clone(),
            ),
            ApiError::Rule {
                code,
                title,
                detail,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                *code,
                *title,
                detail.clone(),
            ),
            ApiError::Unavailable(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_caught_up",
                "数据同步中，请稍后重试",
                detail.clone(),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "系统内部错误",
                "internal error; it has been logged".to_owned(),
            ),
        };
        let body = Problem {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
        };
        let mut res = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The cases: a read model or an index behind the store, which catches up in moments.
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if let ApiError::Internal(cause) = self {
            res.extensions_mut()
                .insert(InternalCause(std::sync::Arc::new(cause)));
        }
        res
    }
}

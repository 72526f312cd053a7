//! Extractors: JSON bodies with problem+json rejections, the bearer-token caller, and the
//! command headers (`If-Match`, `Idempotency-Key`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::directory::User;

/// `Json<T>` whose rejections are problem+json: 400 for bad JSON or fields, 413, 415.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(detail),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail),
        _ => match rejection {
            JsonRejection::JsonDataError(_) => ApiError::bad_request("invalid_field", detail),
            _ => ApiError::bad_request("malformed_json", detail),
        },
    }
}

/// `Query<T>` whose rejection is a problem+json 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, not yet checked.
pub struct BearerToken(pub String);

impl FromRequestParts<AppState> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|token| BearerToken(token.trim().to_owned()))
            .ok_or(ApiError::Unauthorized)
    }
}

/// The authenticated caller (from `Authorization: Bearer <token>`).
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let user = state
            .directory
            .authenticate(&token)
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller(user.clone()))
    }
}

/// `If-Match: <stream version>` (quotes and `W/` tolerated) and `Idempotency-Key`.
pub struct CommandHeaders {
    /// The version the client expects the case to be at.
    pub if_match: Option<u64>,
    /// The client's retry key.
    pub idempotency_key: Option<String>,
}

impl FromRequestParts<AppState> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => {
                let text = v.to_str().unwrap_or_default().trim();
                let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
                Some(text.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_if_match",
                        format!("If-Match must be a stream version number, got `{text}`"),
                    )
                })?)
            }
        };
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v.to_str().unwrap_or_default().trim();
                if key.is_empty() || key.len() > 200 {
                    return Err(ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    ));
                }
                Some(key.to_owned())
            }
        };
        Ok(CommandHeaders {
            if_match,
            idempotency_key,
        })
    }
}

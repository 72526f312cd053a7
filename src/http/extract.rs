//! Extractors: JSON bodies with problem+json rejections, the bearer-token caller, and the
//! command headers (`If-Match`, `Idempotency-Key`).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::directory::User;

/// `Json<T>` whose rejections are problem+json: 400 for bad JSON or fields, 413, 415. An
/// empty body (none, or `Content-Length: 0`, with or without a JSON content type) reads as
/// `{}`, so verbs without fields (`receive`, `archive`, …) need no body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let detail = rejection.body_text();
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(detail)
            } else {
                ApiError::bad_request("malformed_body", detail)
            }
        })?;
        let json_type = content_type.as_deref().is_some_and(is_json);
        if content_type.is_some() && !json_type {
            return Err(unsupported());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return axum::Json::<T>::from_bytes(b"{}")
                .map(|axum::Json(v)| ApiJson(v))
                .map_err(json_rejection);
        }
        if !json_type {
            return Err(unsupported());
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(json_rejection)
    }
}

fn unsupported() -> ApiError {
    ApiError::UnsupportedMediaType(
        "expected a request with `Content-Type: application/json`".to_owned(),
    )
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::bad_request("invalid_field", detail),
        _ => ApiError::bad_request("malformed_json", detail),
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
            .and_then(bearer_token)
            .map(|token| BearerToken(token.to_owned()))
            .ok_or(ApiError::Unauthorized)
    }
}

pub use crate::access::ClientAddress;

/// The token of an `Authorization` value whose scheme is `Bearer`, in any case (RFC 9110
/// section 11.1: the scheme is case-insensitive), followed by one or more spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub use crate::app::params::{MAX_PAGE, YEARS, paging, query_date, query_time};

/// What a caller who must change their password may still call.
const REACHABLE_BEFORE_CHANGE: &[&str] = &["/api/v1/me", "/api/v1/auth/logout"];

/// The authenticated caller (from `Authorization: Bearer <token>`).
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let user = match state.directory.authenticate(&token) {
            Some(user) => user,
            None => {
                // Perhaps a session another instance opened a moment ago.
                state.app.caught_up_with_others().await;
                state
                    .directory
                    .authenticate(&token)
                    .ok_or(ApiError::Unauthorized)?
            }
        };
        // A handed-out password (or one the policy refuses) is changed before anything else,
        // as on the pages: until then the API answers only who the caller is and sign-out.
        if user.must_change_password && !REACHABLE_BEFORE_CHANGE.contains(&parts.uri.path()) {
            return Err(ApiError::Forbidden {
                code: "password_change_required",
                title: "请先修改初始密码",
                detail: "this account's password was handed out or breaks the password policy; \
                         change it in the workbench (/account/password) first. Until then only \
                         GET /api/v1/me and POST /api/v1/auth/logout answer"
                    .to_owned(),
            });
        }
        Ok(Caller(User::clone(&user)))
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Empty {}

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reason {
        #[allow(dead_code)]
        reason: String,
    }

    fn request(content_type: Option<&str>, body: &'static str) -> Request {
        let mut req = axum::http::Request::post("/").header(header::CONTENT_LENGTH, body.len());
        if let Some(content_type) = content_type {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        req.body(Body::from(body)).expect("request")
    }

    async fn read<T: DeserializeOwned>(req: Request) -> Result<T, ApiError> {
        ApiJson::<T>::from_request(req, &())
            .await
            .map(|ApiJson(v)| v)
    }

    #[tokio::test]
    async fn a_verb_without_fields_takes_no_body_an_empty_one_or_an_empty_object() {
        let no_body = axum::http::Request::post("/")
            .body(Body::empty())
            .expect("request");
        assert_eq!(read::<Empty>(no_body).await.ok(), Some(Empty {}));
        assert_eq!(read::<Empty>(request(None, "")).await.ok(), Some(Empty {}));
        assert_eq!(
            read::<Empty>(request(Some("application/json"), ""))
                .await
                .ok(),
            Some(Empty {})
        );
        assert_eq!(
            read::<Empty>(request(Some("application/json"), "{}"))
                .await
                .ok(),
            Some(Empty {})
        );
        assert_eq!(
            read::<Empty>(request(Some("application/json; charset=utf-8"), " {} "))
                .await
                .ok(),
            Some(Empty {})
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_still_refused() {
        assert!(matches!(
            read::<Empty>(request(None, "{}")).await,
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            read::<Empty>(request(Some("text/plain"), "")).await,
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            read::<Empty>(request(Some("application/json"), r#"{"force": true}"#)).await,
            Err(ApiError::BadRequest {
                code: "invalid_field",
                ..
            })
        ));
        assert!(matches!(
            read::<Empty>(request(Some("application/json"), "{")).await,
            Err(ApiError::BadRequest {
                code: "malformed_json",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_empty_body_for_a_verb_with_fields_names_the_missing_field() {
        match read::<Reason>(request(None, "")).await {
            Err(ApiError::BadRequest { code, detail }) => {
                assert_eq!(code, "invalid_field");
                assert!(detail.contains("reason"), "{detail}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn paging_outside_its_bounds_is_refused() {
        assert_eq!(paging(None, None, 20, 200).ok(), Some((1, 20)));
        assert!(paging(Some(u32::MAX), None, 20, 200).is_err());
        assert!(paging(Some(0), None, 20, 200).is_err());
        assert!(paging(None, Some(0), 20, 200).is_err());
        assert!(paging(None, Some(201), 20, 200).is_err());
        assert_eq!(
            paging(Some(MAX_PAGE), Some(200), 20, 200).ok(),
            Some((MAX_PAGE, 200))
        );
    }

    #[test]
    fn dates_and_times_outside_the_years_are_refused() {
        assert!(query_date("date", Some("2026-05-01")).is_ok());
        assert!(query_date("date", Some("2100-12-31")).is_ok());
        assert!(query_date("date", Some("9999-12-31")).is_err());
        assert!(query_date("date", Some("1999-12-31")).is_err());
        assert!(query_date("date", Some("2026-02-30")).is_err());
        assert!(query_time("created_from", Some("2026-01-01T00:00:00+08:00")).is_ok());
        // 2000-01-01 08:00 in Shanghai is still 1999 in UTC.
        assert!(query_time("created_from", Some("2000-01-01T07:00:00+08:00")).is_err());
        assert!(query_time("created_from", Some("9999-12-31T23:59:59Z")).is_err());
        assert!(query_time("created_to", Some("0001-01-01T00:00:00Z")).is_err());
    }
}

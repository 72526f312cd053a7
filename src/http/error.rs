//! The one public error type: `application/problem+json` (RFC 9457) with a stable snake_case
//! `type`, a Chinese `title` for the screen and an English `detail`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use domain::CaseError;

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
    /// With `role_not_allowed`: the roles that may do this (`operator`, `shift_leader`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_roles: Option<Vec<String>>,
    /// With `unit_not_allowed`, when another unit decides this step (the transferring unit
    /// recalls and decides requests, the accepting centre decides appeals): that unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<ProblemUnit>,
}

/// A unit named in a problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemUnit {
    pub unit_id: String,
    pub unit_name: String,
}

/// A problem of fixed text: its `type`, status and Chinese title.
#[derive(Debug, Clone, Copy)]
pub struct Fixed {
    pub code: &'static str,
    pub status: StatusCode,
    pub title: &'static str,
}

const fn fixed(code: &'static str, status: StatusCode, title: &'static str) -> Fixed {
    Fixed {
        code,
        status,
        title,
    }
}

/// Every 400: each has its own code (`malformed_json`, `invalid_field`, `invalid_query`, …)
/// and this title.
const BAD_REQUEST: Fixed = fixed("invalid_request", StatusCode::BAD_REQUEST, "请求格式不正确");
const UNAUTHORIZED: Fixed = fixed("unauthorized", StatusCode::UNAUTHORIZED, "请先登录");
const INVALID_CREDENTIALS: Fixed = fixed(
    "invalid_credentials",
    StatusCode::UNAUTHORIZED,
    "用户名或密码错误",
);
const NOT_FOUND: Fixed = fixed("not_found", StatusCode::NOT_FOUND, "工单或资源不存在");
const ROUTE_NOT_FOUND: Fixed = fixed("route_not_found", StatusCode::NOT_FOUND, "接口不存在");
const METHOD_NOT_ALLOWED: Fixed = fixed(
    "method_not_allowed",
    StatusCode::METHOD_NOT_ALLOWED,
    "不支持该请求方法",
);
const CASE_CONFLICT: Fixed = fixed(
    "version_conflict",
    StatusCode::CONFLICT,
    "工单已被他人更新，请刷新后重试",
);
const ARTICLE_CONFLICT: Fixed = fixed(
    "version_conflict",
    StatusCode::CONFLICT,
    "知识库文章已被他人修改，请刷新后重试",
);
const TOO_LARGE: Fixed = fixed(
    "body_too_large",
    StatusCode::PAYLOAD_TOO_LARGE,
    "提交内容过大",
);
const UNSUPPORTED_MEDIA_TYPE: Fixed = fixed(
    "unsupported_media_type",
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    "请以 JSON 格式提交",
);
const NOT_CAUGHT_UP: Fixed = fixed(
    "not_caught_up",
    StatusCode::SERVICE_UNAVAILABLE,
    "数据同步中，请稍后重试",
);
const INTERNAL: Fixed = fixed(
    "internal",
    StatusCode::INTERNAL_SERVER_ERROR,
    "系统内部错误",
);

/// The problems of fixed text, one table. The refusals of the rules (`domain::CaseError`,
/// the knowledge base's `ArticleError`, the handlers' role checks) carry their own codes and
/// titles: 422, or 403 when they are about who asks.
pub const PROBLEMS: &[Fixed] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    INVALID_CREDENTIALS,
    NOT_FOUND,
    ROUTE_NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CASE_CONFLICT,
    ARTICLE_CONFLICT,
    TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    NOT_CAUGHT_UP,
    INTERNAL,
];

/// A rule's refusal of the caller (403).
#[derive(Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub title: String,
    pub detail: String,
    /// The roles that may (in the API's words), when the role is what is missing.
    pub allowed_roles: Option<Vec<String>>,
    /// The unit that decides this step, when it is another one.
    pub decided_by: Option<ProblemUnit>,
}

/// Everything a handler can fail with. Each variant's status is in its doc.
#[derive(Debug)]
pub enum ApiError {
    /// 400: malformed input (bad JSON, missing or unknown fields, bad headers).
    BadRequest { code: &'static str, detail: String },
    /// 401: no or invalid bearer token.
    Unauthorized,
    /// 401: login with an unknown user or a wrong password.
    InvalidCredentials,
    /// 403: the caller's role or unit may not do this.
    Forbidden {
        code: &'static str,
        title: &'static str,
        detail: String,
    },
    /// 403: a rule of the flow refused the caller's role or unit; names the roles that may
    /// or the unit that decides.
    NotPermitted(Box<Refusal>),
    /// 404: unknown case or resource.
    NotFound(String),
    /// 404: no route has this path.
    RouteNotFound,
    /// 409: the case moved on (`If-Match` or a concurrent command).
    Conflict(String),
    /// 409: the knowledge-base article moved on (`If-Match`).
    ArticleConflict(String),
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
    /// 503: a read waited for `min_position` in vain, or an index is being built.
    Unavailable(String),
    /// 500: a store or index failure; the cause is logged, not sent.
    Internal(anyhow::Error),
}

impl ApiError {
    /// A 403 `role_not_allowed` of a handler's own role check, naming the roles that may.
    pub fn role_not_allowed(
        title: &'static str,
        detail: impl Into<String>,
        roles: &[domain::roles::Role],
    ) -> Self {
        ApiError::NotPermitted(Box::new(Refusal {
            code: "role_not_allowed",
            title: title.to_owned(),
            detail: detail.into(),
            allowed_roles: Some(role_codes(roles)),
            decided_by: None,
        }))
    }

    /// A 400 with a code and an English detail.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }
}

/// The roles in the API's words (`shift_leader`), for `allowed_roles`.
fn role_codes(roles: &[domain::roles::Role]) -> Vec<String> {
    roles.iter().map(|r| r.code().to_owned()).collect()
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Domain(e) if e.is_permission() => ApiError::NotPermitted(Box::new(Refusal {
                code: e.code(),
                title: e.title(),
                detail: e.to_string(),
                allowed_roles: match &e {
                    CaseError::RoleNotAllowed(roles) => Some(role_codes(roles)),
                    _ => None,
                },
                decided_by: match &e {
                    CaseError::OtherUnitDecides {
                        decider,
                        decider_name,
                        ..
                    } => Some(ProblemUnit {
                        unit_id: decider.to_string(),
                        unit_name: decider_name.clone(),
                    }),
                    _ => None,
                },
            })),
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
        let (status, kind, title, detail, allowed_roles, decided_by) = match self {
            ApiError::Forbidden {
                code,
                title,
                detail,
            } => (
                StatusCode::FORBIDDEN,
                code,
                title.to_owned(),
                detail,
                None,
                None,
            ),
            ApiError::NotPermitted(refusal) => {
                let Refusal {
                    code,
                    title,
                    detail,
                    allowed_roles,
                    decided_by,
                } = *refusal;
                (
                    StatusCode::FORBIDDEN,
                    code,
                    title,
                    detail,
                    allowed_roles,
                    decided_by,
                )
            }
            ApiError::Rule {
                code,
                title,
                detail,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                title.to_owned(),
                detail,
                None,
                None,
            ),
            ApiError::Internal(cause) => {
                let mut res = problem(Problem {
                    kind: INTERNAL.code.to_owned(),
                    title: INTERNAL.title.to_owned(),
                    status: INTERNAL.status.as_u16(),
                    detail: "internal error; it has been logged".to_owned(),
                    allowed_roles: None,
                    decided_by: None,
                });
                res.extensions_mut()
                    .insert(InternalCause(std::sync::Arc::new(cause)));
                return res;
            }
            other => {
                let (fixed, code, detail) = match other {
                    ApiError::BadRequest { code, detail } => (BAD_REQUEST, code, detail),
                    ApiError::Unauthorized => (
                        UNAUTHORIZED,
                        UNAUTHORIZED.code,
                        "a valid bearer token is required".to_owned(),
                    ),
                    ApiError::InvalidCredentials => (
                        INVALID_CREDENTIALS,
                        INVALID_CREDENTIALS.code,
                        "unknown user or wrong password".to_owned(),
                    ),
                    ApiError::NotFound(detail) => (NOT_FOUND, NOT_FOUND.code, detail),
                    ApiError::RouteNotFound => (
                        ROUTE_NOT_FOUND,
                        ROUTE_NOT_FOUND.code,
                        "no route has this path; the routes are in /api/v1/openapi.json".to_owned(),
                    ),
                    ApiError::Conflict(detail) => (CASE_CONFLICT, CASE_CONFLICT.code, detail),
                    ApiError::ArticleConflict(detail) => {
                        (ARTICLE_CONFLICT, ARTICLE_CONFLICT.code, detail)
                    }
                    ApiError::MethodNotAllowed => (
                        METHOD_NOT_ALLOWED,
                        METHOD_NOT_ALLOWED.code,
                        "this route does not take that method".to_owned(),
                    ),
                    ApiError::TooLarge(detail) => (TOO_LARGE, TOO_LARGE.code, detail),
                    ApiError::UnsupportedMediaType(detail) => {
                        (UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_MEDIA_TYPE.code, detail)
                    }
                    ApiError::Unavailable(detail) => (NOT_CAUGHT_UP, NOT_CAUGHT_UP.code, detail),
                    ApiError::Forbidden { .. }
                    | ApiError::NotPermitted(_)
                    | ApiError::Rule { .. }
                    | ApiError::Internal(_) => unreachable!("matched above"),
                };
                (
                    fixed.status,
                    code,
                    fixed.title.to_owned(),
                    detail,
                    None,
                    None,
                )
            }
        };
        let mut res = problem(Problem {
            kind: kind.to_owned(),
            title,
            status: status.as_u16(),
            detail,
            allowed_roles,
            decided_by,
        });
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The cases: a read model or an index behind the store, which catches up in moments.
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        res
    }
}

/// The response of a problem.
fn problem(body: Problem) -> Response {
    let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use domain::org::UnitId;
    use domain::roles::Role;

    use super::*;

    async fn body(err: ApiError) -> (StatusCode, serde_json::Value) {
        let res = err.into_response();
        let status = res.status();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[tokio::test]
    async fn a_wrong_password_is_not_a_missing_login() {
        let (status, problem) = body(ApiError::InvalidCredentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(problem["type"], "invalid_credentials");
        assert_eq!(problem["title"], "用户名或密码错误");
        let (_, problem) = body(ApiError::Unauthorized).await;
        assert_eq!(problem["title"], "请先登录");
    }

    #[tokio::test]
    async fn an_unknown_route_is_not_an_unknown_case() {
        let (status, problem) = body(ApiError::RouteNotFound).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(problem["type"], "route_not_found");
        assert_eq!(problem["title"], "接口不存在");
    }

    #[tokio::test]
    async fn a_knowledge_base_conflict_does_not_speak_of_cases() {
        let (status, problem) = body(ApiError::ArticleConflict("stale".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(problem["type"], "version_conflict");
        assert_eq!(problem["title"], "知识库文章已被他人修改，请刷新后重试");
    }

    #[tokio::test]
    async fn a_refused_role_lists_the_roles_that_may_in_the_api_s_words() {
        let err = AppError::Domain(CaseError::RoleNotAllowed(vec![
            Role::Dispatcher,
            Role::ShiftLeader,
        ]));
        let (status, problem) = body(err.into()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(problem["type"], "role_not_allowed");
        assert_eq!(
            problem["allowed_roles"],
            serde_json::json!(["dispatcher", "shift_leader"])
        );
        assert_eq!(
            problem["detail"],
            "role not allowed: needs one of `dispatcher`, `shift_leader`"
        );
        assert!(problem.get("decided_by").is_none(), "{problem}");
    }

    #[tokio::test]
    async fn a_step_of_another_unit_names_that_unit() {
        let err = AppError::Domain(CaseError::OtherUnitDecides {
            unit: UnitId::new("city.bureau.housing"),
            decider: UnitId::new("city"),
            decider_name: "兰州市12345政务服务便民热线中心".into(),
        });
        let (status, problem) = body(err.into()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(problem["type"], "unit_not_allowed");
        assert_eq!(
            problem["title"],
            "该操作应由兰州市12345政务服务便民热线中心办理"
        );
        assert_eq!(
            problem["decided_by"],
            serde_json::json!({ "unit_id": "city", "unit_name": "兰州市12345政务服务便民热线中心" })
        );
    }

    #[test]
    fn every_problem_of_fixed_text_has_a_snake_case_code_and_a_chinese_title() {
        for p in PROBLEMS {
            assert!(
                p.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                p.code
            );
            assert!(!p.title.is_ascii(), "{}: {}", p.code, p.title);
            assert!(p.status.is_client_error() || p.status.is_server_error());
        }
    }
}

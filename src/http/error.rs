//! The problem+json renderer (RFC 9457) of the one classification of failures,
//! [`crate::app::failure::Failure`] (`ApiError` here): a stable snake_case `type`, a Chinese
//! `title` for the screen and an English `detail`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::app::failure::Failure as ApiError;
use crate::app::failure::NamedUnit;

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

/// Marks a 500 response with its cause so the logging middleware can report it.
#[derive(Clone)]
pub struct InternalCause(pub std::sync::Arc<anyhow::Error>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let described = self.describe();
        let status =
            StatusCode::from_u16(described.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Problem {
            kind: described.code.to_owned(),
            title: described.title.into_owned(),
            status: status.as_u16(),
            detail: described.detail,
            allowed_roles: described.allowed_roles,
            decided_by: described
                .decided_by
                .map(|NamedUnit { unit_id, unit_name }| ProblemUnit { unit_id, unit_name }),
        };
        let mut res = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        if let Some(cause) = described.cause {
            res.extensions_mut()
                .insert(InternalCause(std::sync::Arc::new(cause)));
        }
        if let Some(seconds) = described.retry_after {
            // A read model or an index behind the store catches up in moments; a disk that
            // cannot take writes takes longer.
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use domain::org::UnitId;
    use domain::roles::Role;

    use super::*;
    use crate::app::AppError;
    use domain::CaseError;

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
    async fn a_write_the_storage_cannot_take_is_503_with_retry_after() {
        let res = ApiError::StorageUnavailable(anyhow::anyhow!("disk full")).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "10");
        assert!(res.extensions().get::<InternalCause>().is_some());
        let (_, problem) = body(ApiError::StorageUnavailable(anyhow::anyhow!("disk full"))).await;
        assert_eq!(problem["type"], "storage_unavailable");
        assert_eq!(problem["title"], "存储暂不可用，请稍后重试");
        assert!(
            !problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("disk full")
        );
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
    async fn a_locked_login_says_when_to_try_again() {
        let res = ApiError::LoginLocked { retry_after: 840 }.into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "840");
        let (_, problem) = body(ApiError::LoginLocked { retry_after: 840 }).await;
        assert_eq!(problem["type"], "login_locked");
        assert_eq!(problem["title"], "登录失败次数过多，已临时锁定，请稍后再试");
        let busy = ApiError::TooBusy.into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let (_, problem) = body(ApiError::TooBusy).await;
        assert_eq!(problem["type"], "too_busy");
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
}

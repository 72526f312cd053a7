//! One classification of everything a request can fail with, for every renderer: the JSON
//! API renders a [`Failure`] as problem+json (`crate::http::error`), the workbench will render
//! the same [`Description`] as a page. Each failure has a stable snake_case code, a status,
//! a Chinese title for the screen and an English detail for developers and logs.

use std::borrow::Cow;

use domain::CaseError;
use domain::roles::Role;

use super::AppError;

/// A failure of fixed text: its code, status and Chinese title.
#[derive(Debug, Clone, Copy)]
pub struct Fixed {
    /// The stable code, e.g. `not_found`.
    pub code: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The Chinese title.
    pub title: &'static str,
}

const fn fixed(code: &'static str, status: u16, title: &'static str) -> Fixed {
    Fixed {
        code,
        status,
        title,
    }
}

/// Every 400: each has its own code (`malformed_json`, `invalid_field`, `invalid_query`, …)
/// and this title.
const BAD_REQUEST: Fixed = fixed("invalid_request", 400, "请求格式不正确");
const UNAUTHORIZED: Fixed = fixed("unauthorized", 401, "请先登录");
const INVALID_CREDENTIALS: Fixed = fixed("invalid_credentials", 401, "用户名或密码错误");
const NOT_FOUND: Fixed = fixed("not_found", 404, "工单或资源不存在");
const ROUTE_NOT_FOUND: Fixed = fixed("route_not_found", 404, "接口不存在");
const METHOD_NOT_ALLOWED: Fixed = fixed("method_not_allowed", 405, "不支持该请求方法");
const CASE_CONFLICT: Fixed = fixed("version_conflict", 409, "工单已被他人更新，请刷新后重试");
const ARTICLE_CONFLICT: Fixed = fixed(
    "version_conflict",
    409,
    "知识库文章已被他人修改，请刷新后重试",
);
const TOO_LARGE: Fixed = fixed("body_too_large", 413, "提交内容过大");
const UNSUPPORTED_MEDIA_TYPE: Fixed = fixed("unsupported_media_type", 415, "请以 JSON 格式提交");
const LOGIN_LOCKED: Fixed = fixed(
    "login_locked",
    429,
    "登录失败次数过多，已临时锁定，请稍后再试",
);
const TOO_MANY_ATTEMPTS: Fixed = fixed("too_many_attempts", 429, "登录尝试过于频繁，请稍后再试");
const TOO_BUSY: Fixed = fixed("too_busy", 503, "系统繁忙，请稍后重试");
const NOT_CAUGHT_UP: Fixed = fixed("not_caught_up", 503, "数据同步中，请稍后重试");
const STORAGE_UNAVAILABLE: Fixed = fixed("storage_unavailable", 503, "存储暂不可用，请稍后重试");
const INTERNAL: Fixed = fixed("internal", 500, "系统内部错误");

/// Seconds a client waits before retrying a write the storage could not take (`Retry-After`
/// of `storage_unavailable`): long enough for an operator to free space, short enough for an
/// operator on a call to retry by hand.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 10;

/// The failures of fixed text, one table. The refusals of the rules (`domain::CaseError`,
/// the knowledge base's `ArticleError`, the role checks) carry their own codes and titles:
/// 422, or 403 when they are about who asks.
pub const FIXED: &[Fixed] = &[
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
    LOGIN_LOCKED,
    TOO_MANY_ATTEMPTS,
    TOO_BUSY,
    NOT_CAUGHT_UP,
    STORAGE_UNAVAILABLE,
    INTERNAL,
];

/// A unit named in a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedUnit {
    /// Its id.
    pub unit_id: String,
    /// Its name.
    pub unit_name: String,
}

/// A rule's refusal of the caller (403).
#[derive(Debug)]
pub struct Refusal {
    /// The stable code (`role_not_allowed`, `unit_not_allowed`, …).
    pub code: &'static str,
    /// The Chinese title.
    pub title: String,
    /// The English detail.
    pub detail: String,
    /// The roles that may (in the API's words), when the role is what is missing.
    pub allowed_roles: Option<Vec<String>>,
    /// The unit that decides this step, when it is another one.
    pub decided_by: Option<NamedUnit>,
}

/// Everything a request can fail with. Each variant's status is in its doc.
#[derive(Debug)]
pub enum Failure {
    /// 400: malformed input (bad JSON, missing or unknown fields, bad headers or queries).
    BadRequest {
        /// The code, e.g. `invalid_query`.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// 401: no or invalid session.
    Unauthorized,
    /// 401: sign-in with an unknown user or a wrong password.
    InvalidCredentials,
    /// 403: the caller's role or unit may not do this.
    Forbidden {
        /// The code.
        code: &'static str,
        /// The Chinese title.
        title: &'static str,
        /// The English detail.
        detail: String,
    },
    /// 403: a rule of the flow refused the caller's role or unit; names the roles that may
    /// or the unit that decides.
    NotPermitted(Box<Refusal>),
    /// 404: unknown case or resource, or one outside the caller's scope.
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
    /// 422: a rule refused the command.
    Rule {
        /// The code, e.g. `too_late_to_recall`.
        code: &'static str,
        /// The Chinese title.
        title: &'static str,
        /// The English detail.
        detail: String,
    },
    /// 429: too many failed logins of the account or from the address: locked for
    /// `retry_after` seconds.
    /// A refusal whose words are made for the case at hand (a directory rule naming the
    /// unit or the row it is about).
    Refused {
        /// 403, 404, 409 or 422.
        status: u16,
        /// Stable code.
        code: &'static str,
        /// The Chinese text for the screen.
        title: String,
        /// English detail.
        detail: String,
    },
    LoginLocked {
        /// Seconds until the lock ends (`Retry-After`).
        retry_after: u64,
    },
    /// 429: as many logins of the account or address are being checked as it has failures
    /// left before a lock (`Retry-After: 1`).
    TooManyAttempts,
    /// 503: every password-hashing place is taken and the queue is full (`Retry-After: 1`).
    TooBusy,
    /// 503: a read waited for a position in vain, or an index is being built.
    Unavailable(String),
    /// 503: the data directory cannot take a write now (full, read-only, failing disk);
    /// nothing was recorded and nothing numbered. The cause is logged, never shown.
    StorageUnavailable(anyhow::Error),
    /// 500: a store or index failure; the cause is logged, never shown.
    Internal(anyhow::Error),
}

/// A failure as a renderer shows it.
#[derive(Debug)]
pub struct Description {
    /// The HTTP status.
    pub status: u16,
    /// The stable code.
    pub code: &'static str,
    /// The Chinese title for the screen.
    pub title: Cow<'static, str>,
    /// The English detail (for a 500, a fixed text: the cause is in `cause`).
    pub detail: String,
    /// With `role_not_allowed`: the roles that may.
    pub allowed_roles: Option<Vec<String>>,
    /// With `unit_not_allowed`, when another unit decides: that unit.
    pub decided_by: Option<NamedUnit>,
    /// The cause of a 500 (or of `storage_unavailable`), for the log only.
    pub cause: Option<anyhow::Error>,
    /// With a 503: the seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A 403 `role_not_allowed` of a role check, naming the roles that may.
    pub fn role_not_allowed(
        title: &'static str,
        detail: impl Into<String>,
        roles: &[Role],
    ) -> Self {
        Failure::NotPermitted(Box::new(Refusal {
            code: "role_not_allowed",
            title: title.to_owned(),
            detail: detail.into(),
            allowed_roles: Some(role_codes(roles)),
            decided_by: None,
        }))
    }

    /// A case number from a path: a malformed one names no case (404), as an unknown one.
    ///
    /// # Errors
    /// [`Failure::NotFound`] when `id` is no case number.
    pub fn case_id(id: &str) -> Result<domain::CaseId, Failure> {
        domain::CaseId::parse(id).map_err(|_| Failure::NotFound(format!("no case `{id}`")))
    }

    /// A 400 with a code and an English detail.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Failure::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Failure::Forbidden { .. } | Failure::NotPermitted(_) => 403,
            Failure::Rule { .. } => 422,
            Failure::Refused { status, .. } => *status,
            other => other.fixed().map_or(INTERNAL.status, |f| f.status),
        }
    }

    /// The entry of the fixed table, for the failures of fixed text.
    fn fixed(&self) -> Option<Fixed> {
        Some(match self {
            Failure::BadRequest { .. } => BAD_REQUEST,
            Failure::Unauthorized => UNAUTHORIZED,
            Failure::InvalidCredentials => INVALID_CREDENTIALS,
            Failure::NotFound(_) => NOT_FOUND,
            Failure::RouteNotFound => ROUTE_NOT_FOUND,
            Failure::MethodNotAllowed => METHOD_NOT_ALLOWED,
            Failure::Conflict(_) => CASE_CONFLICT,
            Failure::ArticleConflict(_) => ARTICLE_CONFLICT,
            Failure::TooLarge(_) => TOO_LARGE,
            Failure::UnsupportedMediaType(_) => UNSUPPORTED_MEDIA_TYPE,
            Failure::LoginLocked { .. } => LOGIN_LOCKED,
            Failure::TooManyAttempts => TOO_MANY_ATTEMPTS,
            Failure::TooBusy => TOO_BUSY,
            Failure::Unavailable(_) => NOT_CAUGHT_UP,
            Failure::StorageUnavailable(_) => STORAGE_UNAVAILABLE,
            Failure::Internal(_) => INTERNAL,
            Failure::Forbidden { .. }
            | Failure::NotPermitted(_)
            | Failure::Rule { .. }
            | Failure::Refused { .. } => {
                return None;
            }
        })
    }

    /// What a renderer shows.
    pub fn describe(self) -> Description {
        let status = self.status();
        let plain = |code: &'static str, title: Cow<'static, str>, detail: String| Description {
            status,
            code,
            title,
            detail,
            allowed_roles: None,
            decided_by: None,
            cause: None,
            retry_after: (status == 503).then_some(1),
        };
        let fixed = self.fixed();
        let (code, title) = fixed.map_or(("", ""), |f| (f.code, f.title));
        match self {
            Failure::Forbidden {
                code,
                title,
                detail,
            }
            | Failure::Rule {
                code,
                title,
                detail,
            } => plain(code, title.into(), detail),
            Failure::Refused {
                code,
                title,
                detail,
                ..
            } => plain(code, title.into(), detail),
            Failure::NotPermitted(refusal) => {
                let Refusal {
                    code,
                    title,
                    detail,
                    allowed_roles,
                    decided_by,
                } = *refusal;
                Description {
                    allowed_roles,
                    decided_by,
                    ..plain(code, title.into(), detail)
                }
            }
            Failure::Internal(cause) => Description {
                cause: Some(cause),
                ..plain(
                    code,
                    title.into(),
                    "internal error; it has been logged".to_owned(),
                )
            },
            Failure::StorageUnavailable(cause) => Description {
                cause: Some(cause),
                retry_after: Some(STORAGE_RETRY_AFTER_SECS),
                ..plain(
                    code,
                    title.into(),
                    "the data directory cannot take writes now (full, read-only or failing); \
                     nothing was recorded, retry later"
                        .to_owned(),
                )
            },
            Failure::BadRequest { code, detail } => plain(code, title.into(), detail),
            Failure::Unauthorized => plain(
                code,
                title.into(),
                "a valid bearer token is required".to_owned(),
            ),
            Failure::InvalidCredentials => plain(
                code,
                title.into(),
                "unknown user or wrong password".to_owned(),
            ),
            Failure::RouteNotFound => plain(
                code,
                title.into(),
                "no route has this path; the routes are in /api/v1/openapi.json".to_owned(),
            ),
            Failure::LoginLocked { retry_after } => Description {
                retry_after: Some(retry_after),
                ..plain(
                    code,
                    title.into(),
                    format!(
                        "too many failed logins of this account or from this address; \
                         locked for {retry_after} more seconds"
                    ),
                )
            },
            Failure::TooManyAttempts => Description {
                retry_after: Some(1),
                ..plain(
                    code,
                    title.into(),
                    "as many logins of this account or from this address are being checked \
                     as it has failures left before a lock"
                        .to_owned(),
                )
            },
            Failure::TooBusy => Description {
                retry_after: Some(1),
                ..plain(
                    code,
                    title.into(),
                    "every password check is busy; try again in a second".to_owned(),
                )
            },
            Failure::MethodNotAllowed => plain(
                code,
                title.into(),
                "this route does not take that method".to_owned(),
            ),
            Failure::NotFound(detail)
            | Failure::Conflict(detail)
            | Failure::ArticleConflict(detail)
            | Failure::TooLarge(detail)
            | Failure::UnsupportedMediaType(detail)
            | Failure::Unavailable(detail) => plain(code, title.into(), detail),
        }
    }
}

/// The roles in the API's words (`shift_leader`), for `allowed_roles`.
fn role_codes(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.code().to_owned()).collect()
}

impl From<AppError> for Failure {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Domain(e) if e.is_permission() => Failure::NotPermitted(Box::new(Refusal {
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
                    } => Some(NamedUnit {
                        unit_id: decider.to_string(),
                        unit_name: decider_name.clone(),
                    }),
                    _ => None,
                },
            })),
            AppError::Domain(e) => Failure::Rule {
                code: e.code(),
                title: e.title_zh(),
                detail: e.to_string(),
            },
            AppError::NotFound(id) => Failure::NotFound(format!("no case `{id}`")),
            e @ AppError::Conflict { .. } => Failure::Conflict(e.to_string()),
            e @ AppError::KeyReused => Failure::Rule {
                code: "idempotency_key_reused",
                title: "幂等键已用于其他请求",
                detail: e.to_string(),
            },
            AppError::Store(e) if e.is_storage_unavailable() => {
                Failure::StorageUnavailable(e.into())
            }
            AppError::Store(e) => Failure::Internal(e.into()),
            AppError::Decode(e) => Failure::Internal(e.into()),
        }
    }
}

impl From<super::directory::DirectoryChangeError> for Failure {
    fn from(err: super::directory::DirectoryChangeError) -> Self {
        use super::directory::DirectoryChangeError as E;
        use domain::directory::DirectoryError as D;
        match err {
            E::Refused {
                index,
                error,
                title,
            } => {
                let (status, code) = match &error {
                    D::NotAdmin => (403, "role_not_allowed"),
                    D::OutsideDistrict(_) => (403, "outside_district"),
                    D::UnknownUnit(_) => (404, "unknown_unit"),
                    D::UnknownUser(_) => (404, "unknown_user"),
                    D::UnitClosed(_) => (422, "unit_closed"),
                    D::UnitExists(_) => (409, "unit_exists"),
                    D::UserExists(_) => (409, "user_exists"),
                    D::BadId { .. } => (422, "invalid_id"),
                    D::BadName { .. } => (422, "invalid_name"),
                    D::NameTaken(_) => (422, "name_taken"),
                    D::SameName | D::SameParent | D::AlreadyInState => (422, "no_change"),
                    D::KindNotAllowed(_) => (422, "kind_not_allowed"),
                    D::Root => (422, "root_unit"),
                    D::IntoOwnSubtree(_) => (422, "into_own_subtree"),
                    D::HasChildren(_) => (422, "unit_has_children"),
                    D::HasUsers(_) => (422, "unit_has_users"),
                    D::NeedsSuccessor { .. } => (422, "successor_required"),
                    D::BadSuccessor(_) => (422, "invalid_successor"),
                    D::BadRoles => (422, "invalid_roles"),
                    D::OverseesWithoutLeader => (422, "oversees_without_leader"),
                    D::LastAdmin => (422, "last_admin"),
                    D::Tree(_) => (422, "invalid_tree"),
                };
                Failure::Refused {
                    status,
                    code,
                    title,
                    detail: if index == 0 {
                        error.to_string()
                    } else {
                        format!("change {}: {error}", index + 1)
                    },
                }
            }
            E::Empty => Failure::Refused {
                status: 422,
                code: "no_change",
                title: "没有需要保存的修改".to_owned(),
                detail: "the change changes nothing".to_owned(),
            },
            E::Snapshot(crate::directory_log::SnapshotError::Store(
                crate::store::StoreError::Conflict { stream, .. },
            )) => Failure::Refused {
                status: 409,
                code: "version_conflict",
                title: "机构人员已被他人修改，请刷新后重试".to_owned(),
                detail: format!("stream `{stream}` changed meanwhile"),
            },
            E::Snapshot(crate::directory_log::SnapshotError::Store(err)) => {
                AppError::Store(err).into()
            }
            E::Snapshot(other) => Failure::Internal(other.into()),
            E::Accounts(err) => Failure::Internal(err),
        }
    }
}

impl From<super::rules::RulesChangeError> for Failure {
    fn from(err: super::rules::RulesChangeError) -> Self {
        use domain::rules::RulesError as R;
        match err {
            super::rules::RulesChangeError::Refused(error) => {
                let (status, code) = match &error {
                    R::NotAdmin => (403, "role_not_allowed"),
                    R::NotCityAdmin => (403, "city_admin_only"),
                    R::Unchanged => (422, "no_change"),
                    R::Policy(_) => (422, "invalid_policy"),
                    R::Catalogue(_) => (422, "invalid_catalogue"),
                    _ => (422, "invalid_calendar"),
                };
                Failure::Refused {
                    status,
                    code,
                    title: error.message(),
                    detail: error.to_string(),
                }
            }
            super::rules::RulesChangeError::Store(crate::store::StoreError::Conflict {
                stream,
                ..
            }) => Failure::Refused {
                status: 409,
                code: "version_conflict",
                title: "规则已被他人修改，请刷新后重试".to_owned(),
                detail: format!("stream `{stream}` changed meanwhile"),
            },
            super::rules::RulesChangeError::Store(err) => AppError::Store(err).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::org::UnitId;

    use super::*;

    #[test]
    fn every_failure_of_fixed_text_has_a_snake_case_code_and_a_chinese_title() {
        for p in FIXED {
            assert!(
                p.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                p.code
            );
            assert!(!p.title.is_ascii(), "{}: {}", p.code, p.title);
            assert!((400..600).contains(&p.status), "{}", p.code);
        }
    }

    #[test]
    fn a_wrong_password_is_not_a_missing_login() {
        let wrong = Failure::InvalidCredentials.describe();
        assert_eq!((wrong.status, wrong.code), (401, "invalid_credentials"));
        assert_eq!(wrong.title, "用户名或密码错误");
        assert_eq!(Failure::Unauthorized.describe().title, "请先登录");
    }

    #[test]
    fn an_unknown_route_is_not_an_unknown_case() {
        let route = Failure::RouteNotFound.describe();
        assert_eq!((route.status, route.code), (404, "route_not_found"));
        assert_eq!(route.title, "接口不存在");
        assert_eq!(Failure::NotFound("x".into()).describe().code, "not_found");
    }

    #[test]
    fn a_knowledge_base_conflict_does_not_speak_of_cases() {
        let conflict = Failure::ArticleConflict("stale".into()).describe();
        assert_eq!((conflict.status, conflict.code), (409, "version_conflict"));
        assert_eq!(conflict.title, "知识库文章已被他人修改，请刷新后重试");
    }

    #[test]
    fn a_refusal_of_the_rules_is_403_for_who_asks_and_422_for_the_case() {
        let role: Failure = AppError::Domain(CaseError::RoleNotAllowed(vec![
            Role::Dispatcher,
            Role::ShiftLeader,
        ]))
        .into();
        let role = role.describe();
        assert_eq!((role.status, role.code), (403, "role_not_allowed"));
        assert_eq!(
            role.allowed_roles.as_deref(),
            Some(&["dispatcher".to_owned(), "shift_leader".to_owned()][..])
        );
        let other: Failure = AppError::Domain(CaseError::OtherUnitDecides {
            unit: UnitId::new("city.bureau.housing"),
            decider: UnitId::new("city"),
            decider_name: "兰州市12345政务服务便民热线中心".into(),
        })
        .into();
        let other = other.describe();
        assert_eq!(other.status, 403);
        assert_eq!(other.decided_by.map(|u| u.unit_id).as_deref(), Some("city"));
        let rule: Failure = AppError::Domain(CaseError::NothingToRecall).into();
        assert_eq!(rule.status(), 422);
    }

    #[test]
    fn a_store_that_cannot_write_is_unavailable_not_broken() {
        let full: Failure = AppError::Store(crate::store::StoreError::Unavailable(
            "sqlite: database or disk is full".into(),
        ))
        .into();
        let described = full.describe();
        assert_eq!(
            (described.status, described.code),
            (503, "storage_unavailable")
        );
        assert_eq!(described.title, "存储暂不可用，请稍后重试");
        assert_eq!(described.retry_after, Some(STORAGE_RETRY_AFTER_SECS));
        assert!(!described.detail.contains("sqlite"), "{}", described.detail);
        assert!(described.cause.is_some());
        let bug: Failure = AppError::Store(crate::store::StoreError::Backend("x".into())).into();
        assert_eq!(bug.status(), 500);
    }

    #[test]
    fn the_cause_of_an_internal_failure_is_kept_for_the_log_not_the_detail() {
        let failure = Failure::Internal(anyhow::anyhow!("disk full at /data/events.db"));
        let described = failure.describe();
        assert_eq!(described.status, 500);
        assert!(!described.detail.contains("disk"), "{}", described.detail);
        assert!(described.cause.is_some());
    }
}

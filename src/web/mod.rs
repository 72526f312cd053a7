//! The workbench: server-rendered pages outside `/api/v1`, served by the same binary.
//!
//! Pages render askama templates (`templates/`, checked at compile time) from the view layer
//! (`crate::app::views`) and run `App` commands, exactly as the JSON API does: no rule lives
//! here. htmx (vendored, `assets/`) does the partial updates; there is no inline script or
//! style, and pages carry [`PAGE_CSP`]. Failures are `Failure::describe()` shown in Chinese.
//!
//! # Layout
//! - `session`: the cookie session (the API's bearer session in an `HttpOnly`,
//!   `SameSite=Strict` cookie) and its CSRF token.
//! - `assets`: htmx and the stylesheet, embedded, under versioned names.
//! - `login`: `/login` (GET, POST) and `/logout` (POST).
//! - `worklist`: 我的待办 at `/`: tabs with counts (polled by htmx), rows, paging.
//! - `case`: 工单详情 at `/cases/{id}` and its actions (POST, with the version shown).
//! - `account`: 账户 at `/account` and 修改密码 at `/account/password`.
//! - `intake`: 座席受理 at `/intake` (`?phone=` pops it with the caller's history), its
//!   htmx panels, and the result with the suggested transfer at `/intake/cases/{id}`.
//! - `query`: 综合查询 at `/query` (the conditions of `GET /api/v1/cases`, fuzzy text, paging)
//!   and its exports `/query/export.csv` and `/query/export.xlsx`.
//! - `kb`: 知识库 at `/kb` (search, read `/kb/{id}`; editors write, publish and retire through
//!   forms; the knowledge gaps at `/kb/gaps`).
//! - `oversight`: 督办 at `/oversight` (the overdue board, supervising one or several
//!   cases) and 分管 at `/oversight/leader` (the leader's cases, 批示 inline).
//! - `reports`: 统计 at `/reports/kpi` (with `.csv`) and `/reports/daily` (with `.csv`).
//! - `admin`: 系统管理 for administrators: 机构 `/admin/units`, 人员 `/admin/users` (with the
//!   login locks), 规则 `/admin/rules`, 审计 `/admin/audit`.
//!
//! # Invariants
//! - Every state-changing request carries the session's CSRF token (form field or
//!   `X-CSRF-Token`); a page request without a live session goes to `/login`.
//! - Nothing here imports `crate::http`.

mod account;
mod admin;
mod assets;
mod case;
mod intake;
mod kb;
mod login;
mod oversight;
mod query;
mod reports;
mod session;
mod worklist;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::app::failure::Failure;
use crate::directory::User;
pub use session::Session;

/// The Content-Security-Policy of the pages: scripts, styles and requests (htmx's) from this
/// origin only, never inline or `eval`; no images, fonts, frames or plugins from anywhere
/// else; forms post back here; never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The workbench's routes, to merge into the service's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(worklist::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/cases/{id}", get(case::page).post(case::act))
        .route("/account", get(account::page))
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route("/intake", get(intake::page).post(intake::submit))
        .route("/intake/history", get(intake::history_fragment))
        .route("/intake/kb", get(intake::suggestions_fragment))
        .route("/intake/places", get(intake::places_fragment))
        .route("/intake/place", get(intake::place_fragment))
        .route("/intake/cases/{id}", get(intake::done))
        .route(
            "/intake/cases/{id}/transfer",
            axum::routing::post(intake::transfer),
        )
        .route("/cases/{id}/targets", get(case::target_list))
        .route("/cases/{id}/masters", get(case::master_list))
        .route("/query", get(query::page))
        .route("/query/export.csv", get(query::export_csv))
        .route("/query/export.xlsx", get(query::export_xlsx))
        .route("/kb", get(kb::search).post(kb::create))
        .route("/kb/new", get(kb::new_form))
        .route("/kb/gaps", get(kb::gaps))
        .route("/kb/{id}", get(kb::article).post(kb::act))
        .route("/kb/{id}/edit", get(kb::edit_form))
        .route("/oversight", get(oversight::board))
        .route(
            "/oversight/supervise",
            axum::routing::post(oversight::supervise),
        )
        .route("/oversight/leader", get(oversight::leader))
        .route(
            "/oversight/leader/annotate",
            axum::routing::post(oversight::annotate),
        )
        .route("/reports/kpi", get(reports::kpi))
        .route("/reports/kpi.csv", get(reports::kpi_csv))
        .route("/reports/daily", get(reports::daily))
        .route("/reports/daily.csv", get(reports::daily_csv))
        .route(
            "/admin",
            get(|| async { axum::response::Redirect::to("/admin/units") }),
        )
        .route("/admin/units", get(admin::units).post(admin::units_act))
        .route("/admin/users", get(admin::users).post(admin::users_act))
        .route("/admin/rules", get(admin::rules).post(admin::rules_act))
        .route("/admin/audit", get(admin::audit))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .route("/assets/{name}", get(assets::asset))
        .route("/favicon.ico", get(assets::favicon))
}

/// What every page's frame shows: the asset URLs, the CSRF token for forms and htmx, and
/// who is signed in (name, unit, roles).
pub struct Layout {
    /// The page's title (before ` - 民情`).
    pub title: String,
    /// The stylesheet's URL.
    pub css: &'static str,
    /// htmx's URL.
    pub htmx: &'static str,
    /// The icon's URL.
    pub icon: &'static str,
    /// The session's CSRF token (empty on the sign-in page).
    pub csrf: String,
    /// Who is signed in.
    pub who: Option<Who>,
    /// Whether they may take calls (受理): the console is in the navigation.
    pub intake: bool,
}

/// 当前用户: shown in every page's header.
pub struct Who {
    /// 姓名.
    pub name: String,
    /// 单位.
    pub unit: String,
    /// 角色, joined (座席接线员、值班长).
    pub roles: String,
    /// Shows 督办 (the overdue board): `views::may_read_board`.
    pub oversight: bool,
    /// Shows 分管 (the leader's list): a leader.
    pub leader: bool,
    /// Shows 统计 (KPIs and the daily report): `Actor::may_read_daily_report`.
    pub reports: bool,
    /// Shows 系统管理: an administrator.
    pub admin: bool,
}

impl Layout {
    /// The frame of a page for `session`.
    pub fn new(state: &AppState, session: &Session, title: impl Into<String>) -> Self {
        Layout {
            who: Some(who(state, &session.user)),
            csrf: session.csrf.clone(),
            intake: state.may_take_calls(&session.user.actor()).is_ok(),
            ..Layout::anonymous(title)
        }
    }

    /// The frame of a page for nobody signed in.
    pub fn anonymous(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            css: assets::CSS_URL.as_str(),
            htmx: assets::HTMX_URL.as_str(),
            icon: assets::ICON_URL,
            csrf: String::new(),
            who: None,
            intake: false,
        }
    }
}

fn who(state: &AppState, user: &User) -> Who {
    let actor = user.actor();
    Who {
        oversight: crate::app::views::may_read_board(&actor),
        leader: actor.has(domain::roles::Role::Leader),
        reports: actor.may_read_daily_report(),
        admin: actor.has(domain::roles::Role::Admin),
        name: user.display_name.clone(),
        unit: state
            .org()
            .get(&user.unit_id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| user.unit_id.to_string()),
        roles: user
            .roles
            .iter()
            .map(|r| r.label())
            .collect::<Vec<_>>()
            .join("、"),
    }
}

/// Renders a template as an HTML answer with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a page template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "系统内部错误").into_response()
        }
    }
}

/// 出错了: a failure as a page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    title: String,
    code: &'static str,
}

/// A failure shown as a page in Chinese, with its status; a 500's cause is logged, never
/// shown.
pub fn failure_page(layout: Layout, failure: Failure) -> Response {
    let described = failure.describe();
    if let Some(cause) = &described.cause {
        tracing::error!(code = described.code, error = %format!("{cause:#}"), "page request failed");
    }
    let status =
        StatusCode::from_u16(described.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    render(
        status,
        &ErrorPage {
            layout: Layout {
                title: described.title.to_string(),
                ..layout
            },
            title: described.title.to_string(),
            code: described.code,
        },
    )
}

/// 页面不存在: a path that is no page (404), for a person who followed a bad link.
pub fn not_found() -> Response {
    render(
        StatusCode::NOT_FOUND,
        &ErrorPage {
            layout: Layout::anonymous("页面不存在"),
            title: "页面不存在，请检查链接".to_owned(),
            code: "page_not_found",
        },
    )
}

/// A state-changing request without the session's CSRF token: refused (403), nothing done.
pub fn csrf_refused(state: &AppState, session: &Session) -> Response {
    failure_page(
        Layout::new(state, session, "请求已拒绝"),
        Failure::Forbidden {
            code: "csrf_token_invalid",
            title: "页面已过期或请求来源不明，请刷新页面后重试",
            detail: "the form did not carry this session's CSRF token".to_owned(),
        },
    )
}

/// A working-time span for people: `3工作小时20分钟`, `45分钟`, `不足1分钟`.
pub fn working_span(minutes: u64) -> String {
    let (hours, minutes) = (minutes / 60, minutes % 60);
    match (hours, minutes) {
        (0, 0) => "不足1分钟".to_owned(),
        (0, m) => format!("{m}工作分钟"),
        (h, 0) => format!("{h}工作小时"),
        (h, m) => format!("{h}工作小时{m}分钟"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_time_reads_as_chinese() {
        assert_eq!(working_span(200), "3工作小时20分钟");
        assert_eq!(working_span(180), "3工作小时");
        assert_eq!(working_span(45), "45工作分钟");
        assert_eq!(working_span(0), "不足1分钟");
    }

    #[test]
    fn the_page_policy_allows_no_inline_script_or_style() {
        assert!(!PAGE_CSP.contains("unsafe"));
        assert!(PAGE_CSP.contains("script-src 'self'"));
        assert!(PAGE_CSP.contains("default-src 'none'"));
    }
}

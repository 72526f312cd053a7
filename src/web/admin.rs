//! 系统管理 (administrators only): 机构 at `/admin/units`, 人员 at `/admin/users`, 规则 at
//! `/admin/rules` (the calendar, office hours, the policy and the dispatch catalogue,
//! `catalogue`) and 审计 at `/admin/audit`.
//!
//! Every change goes through what the API uses: `App::change_directory` (decided by
//! `domain::directory`), `App::change_rules` (`domain::rules`) and `Access::unlock`; what a
//! district administrator sees is what `domain::directory::Directory::may_manage` lets them
//! manage. A refusal re-renders the form with the Chinese message in place and what was typed;
//! a one-time password is shown once, on the answer to the action that made it.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::calendar::{
    ClockTime, HolidaySpan, MakeUpDay, Notice as YearNotice, OfficePeriod, YearData,
};
use domain::directory::{DirectoryCommand, DirectoryEvent, UserEntry};
use domain::org::{Unit, UnitId, UnitKind};
use domain::roles::{Actor, Role};
use domain::rules::RulesCommand;
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, failure_page, render};
use crate::access::{LockKind, SecurityEvent};
use crate::app::failure::Failure;
use crate::app::{AppState, zh_time};
use crate::directory::User;
use crate::directory_log::OrgSnapshot;

mod catalogue;

/// The longest value of any field (characters); the rules allow less.
const MAX_FIELD: usize = 200;
/// The most fields one form may send (the year form's rows included).
const MAX_PAIRS: usize = 200;
/// The most rows of the unit tree or of search results shown at once.
const MAX_TREE_ROWS: usize = 300;
/// How many levels below the unit shown first the tree opens.
const TREE_DEPTH: usize = 2;
/// Rows per page of the users and of the records.
const PER_PAGE: usize = 50;
/// Holiday rows and make-up rows of the year form.
const HOLIDAY_ROWS: usize = 10;
const MAKE_UP_ROWS: usize = 8;
/// Office periods of the office-hours form.
const PERIOD_ROWS: usize = 4;
/// How deep the pages of the records go.
const MAX_PAGE: usize = 200;

/// Every kind a new unit may be given (the root is the hotline centre, made once).
const CHILD_KINDS: [UnitKind; 8] = [
    UnitKind::EfficiencyOffice,
    UnitKind::Bureau,
    UnitKind::DistrictCentre,
    UnitKind::DistrictDepartment,
    UnitKind::StreetOffice,
    UnitKind::CommunityCommittee,
    UnitKind::GridStation,
    UnitKind::Building,
];

/// Every role, in the order the forms list them.
const ROLES: [Role; 7] = [
    Role::Operator,
    Role::ShiftLeader,
    Role::Dispatcher,
    Role::Handler,
    Role::Leader,
    Role::Supervisor,
    Role::Admin,
];

/// A form's fields as sent, in order, bounded in number and length.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The fields of a posted form.
    ///
    /// # Errors
    /// The Chinese refusal when there are too many fields or one is too long.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Fields, String> {
        Fields::parse_within(pairs, MAX_FIELD)
    }

    /// The fields of a posted form whose values may be up to `max_field` characters.
    ///
    /// # Errors
    /// As [`Fields::parse`].
    pub fn parse_within(pairs: Vec<(String, String)>, max_field: usize) -> Result<Fields, String> {
        if pairs.len() > MAX_PAIRS {
            return Err(format!("提交的内容过多（最多 {MAX_PAIRS} 项）"));
        }
        if pairs.iter().any(|(_, v)| v.chars().count() > max_field) {
            return Err(format!("每项内容最多 {max_field} 个字符"));
        }
        Ok(Fields(pairs))
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name`, trimmed, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The `i`-th value of `name` (a row of a table of fields); empty when absent.
    pub fn nth(&self, name: &str, i: impl std::borrow::Borrow<usize>) -> &str {
        self.all(name).get(*i.borrow()).copied().unwrap_or("")
    }

    /// Whether `name` has the value `value` (a ticked checkbox).
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.all(name).contains(&value)
    }

    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }
}

/// A line above a page or in a form: `ok`, `notice` or `error`.
pub struct Notice {
    class: &'static str,
    text: String,
}

impl Notice {
    fn ok(text: impl Into<String>) -> Notice {
        Notice {
            class: "ok",
            text: text.into(),
        }
    }

    fn error(text: impl Into<String>) -> Notice {
        Notice {
            class: "error",
            text: text.into(),
        }
    }
}

/// A refusal where the form was: its status and Chinese title; a server failure's cause is
/// logged, never shown.
fn refused(failure: Failure) -> (StatusCode, Notice) {
    let described = failure.describe();
    if let Some(cause) = &described.cause {
        tracing::error!(code = described.code, error = %format!("{cause:#}"), "administration request failed");
    }
    (
        StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
        Notice::error(described.title.into_owned()),
    )
}

/// The 403 page of everyone but administrators.
fn admins_only(state: &AppState, session: &Session) -> Option<Response> {
    if session.user.roles.contains(&Role::Admin) {
        return None;
    }
    Some(failure_page(
        Layout::new(state, session, "系统管理"),
        Failure::role_not_allowed(
            "只有系统管理员可以使用系统管理",
            "the administration pages are for `admin` only",
            &[Role::Admin],
        ),
    ))
}

/// A page number from text: a mistyped one reads as the first.
fn page_of(text: Option<&str>) -> usize {
    text.and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE)
}

/// Whether the directory lets `actor` manage `unit` (the domain's rule, asked).
fn manages(snapshot: &OrgSnapshot, actor: &Actor, unit: &UnitId) -> bool {
    snapshot.directory.may_manage(actor, unit).is_ok()
}

/// A unit's name and place for people: its path when open, else its name (已撤销).
fn unit_label(snapshot: &OrgSnapshot, id: &UnitId) -> String {
    if snapshot.tree.get(id).is_some() {
        return snapshot.tree.path_label(id);
    }
    match snapshot.directory.unit(id) {
        Some(unit) => format!("{}（已撤销）", unit.name),
        None => id.to_string(),
    }
}

fn unit_name(snapshot: &OrgSnapshot, id: &UnitId) -> String {
    snapshot
        .directory
        .unit(id)
        .map_or_else(|| id.to_string(), |u| u.name.clone())
}

/// The unit typed: its id, or the name of exactly one open unit. An unknown text is passed on
/// as an id, for the rules to refuse in their words.
fn resolve_unit(snapshot: &OrgSnapshot, text: &str) -> Result<UnitId, String> {
    let id = UnitId::new(text);
    if text.is_empty() || snapshot.directory.unit(&id).is_some() {
        return Ok(id);
    }
    let named: Vec<&Unit> = snapshot
        .tree
        .units()
        .iter()
        .filter(|u| u.name == text)
        .collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Ok(id),
        _ => Err(format!("有多个名为「{text}」的单位，请填写单位编码")),
    }
}

/// Runs one directory change for `user` through `AppState::change_directory_now`, as the API
/// does: a closing unit's open cases are counted on caught-up read models and handed over to
/// its successor, and a move re-scopes the read models before the page is shown again.
async fn change(
    state: &AppState,
    user: &User,
    command: DirectoryCommand,
    initial_password: Option<&str>,
) -> Result<(), Failure> {
    // A change that creates no account still names a password for one found without any:
    // random, so unknown, until reset.
    let password = match initial_password {
        Some(password) => password.to_owned(),
        None => crate::directory::temporary_password().map_err(Failure::Internal)?,
    };
    state
        .change_directory_now(&user.actor(), &[command], &password)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 机构

/// One row of the unit tree or of the search results.
pub struct UnitRow {
    id: String,
    name: String,
    /// 0 for the first row of the tree; capped for the stylesheet's indent classes.
    depth: usize,
    kind: &'static str,
    level: &'static str,
    /// `Some` when closed: where its cases went.
    closed: Option<String>,
    /// Search results: the whole path.
    path: String,
    /// The tree stops here although there is more below.
    more_below: bool,
}

/// The unit chosen, with its forms.
pub struct UnitDetail {
    id: String,
    name: String,
    path: String,
    kind: &'static str,
    level: &'static str,
    closed: Option<String>,
    children: usize,
}

/// 机构管理.
#[derive(Template)]
#[template(path = "admin_units.html")]
struct UnitsPage {
    layout: Layout,
    section: &'static str,
    q: String,
    rows: Vec<UnitRow>,
    /// Rows left out of the list (the cap).
    left_out: usize,
    /// The tree begins at this unit (`?under=`), not at the top.
    under: Option<String>,
    detail: Option<UnitDetail>,
    kinds: Vec<(&'static str, &'static str)>,
    typed: Fields,
    notice: Option<Notice>,
    /// The form the notice belongs to (`rename`, `move`, `create`, `close`), or none for the page.
    notice_for: String,
}

impl UnitsPage {
    fn notice_in(&self, form: &str) -> Option<&Notice> {
        self.notice.as_ref().filter(|_| self.notice_for == form)
    }
}

/// `?q=&unit=&under=&done=`.
#[derive(Deserialize)]
pub struct UnitsQuery {
    q: Option<String>,
    unit: Option<String>,
    under: Option<String>,
    done: Option<String>,
}

fn closed_text(snapshot: &OrgSnapshot, id: &UnitId) -> Option<String> {
    snapshot
        .directory
        .closed(id)
        .map(|successor| match successor {
            Some(s) => format!("已撤销，工单由「{}」承接", unit_name(snapshot, s)),
            None => "已撤销".to_owned(),
        })
}

fn unit_row(snapshot: &OrgSnapshot, unit: &Unit, depth: usize, path: String) -> UnitRow {
    UnitRow {
        id: unit.id.to_string(),
        name: unit.name.clone(),
        depth: depth.min(6),
        kind: unit.kind.label(),
        level: unit.level.label(),
        closed: closed_text(snapshot, &unit.id),
        path,
        more_below: false,
    }
}

struct UnitsView<'a> {
    q: &'a str,
    unit: Option<&'a str>,
    under: Option<&'a str>,
}

fn units_page(
    state: &AppState,
    session: &Session,
    view: &UnitsView<'_>,
    typed: Fields,
    notice: Option<Notice>,
    notice_for: &str,
) -> UnitsPage {
    let snapshot = state.orgs.current();
    let actor = session.user.actor();
    let units = snapshot.directory.units();
    let managed: Vec<&Unit> = units
        .iter()
        .filter(|u| manages(&snapshot, &actor, &u.id))
        .collect();
    let mut children: HashMap<&UnitId, Vec<&Unit>> = HashMap::new();
    for unit in &managed {
        if let Some(parent) = &unit.parent_id {
            children.entry(parent).or_default().push(unit);
        }
    }
    let mut rows = Vec::new();
    let mut left_out = 0;
    let mut under = None;
    if view.q.is_empty() {
        // The tree: from `under` if managed, else from the top of what is managed.
        let start: Vec<&Unit> = match view
            .under
            .and_then(|id| managed.iter().find(|u| u.id.as_str() == id))
        {
            Some(unit) => {
                under = Some(unit_label(&snapshot, &unit.id));
                vec![*unit]
            }
            None => managed
                .iter()
                .filter(|u| {
                    u.parent_id
                        .as_ref()
                        .is_none_or(|p| !manages(&snapshot, &actor, p))
                })
                .copied()
                .collect(),
        };
        let mut stack: Vec<(&Unit, usize)> = start.into_iter().rev().map(|u| (u, 0)).collect();
        while let Some((unit, depth)) = stack.pop() {
            if rows.len() >= MAX_TREE_ROWS {
                left_out += 1;
                continue;
            }
            let below = children.get(&unit.id).map_or(&[][..], Vec::as_slice);
            let mut row = unit_row(&snapshot, unit, depth, String::new());
            if depth >= TREE_DEPTH {
                row.more_below = !below.is_empty();
            } else {
                stack.extend(below.iter().rev().map(|u| (*u, depth + 1)));
            }
            rows.push(row);
        }
    } else {
        for unit in &managed {
            let path = unit_label(&snapshot, &unit.id);
            if unit.name.contains(view.q) || path.contains(view.q) || unit.id.as_str() == view.q {
                if rows.len() >= MAX_TREE_ROWS {
                    left_out += 1;
                } else {
                    rows.push(unit_row(&snapshot, unit, 0, path));
                }
            }
        }
    }
    let detail = view
        .unit
        .and_then(|id| managed.iter().find(|u| u.id.as_str() == id))
        .map(|unit| UnitDetail {
            id: unit.id.to_string(),
            name: unit.name.clone(),
            path: unit_label(&snapshot, &unit.id),
            kind: unit.kind.label(),
            level: unit.level.label(),
            closed: closed_text(&snapshot, &unit.id),
            children: children.get(&unit.id).map_or(0, Vec::len),
        });
    let mut typed = typed;
    if let Some(detail) = &detail
        && typed.get("name").is_empty()
    {
        typed.set("name", detail.name.clone());
    }
    UnitsPage {
        layout: Layout::new(state, session, "机构管理"),
        section: "units",
        q: view.q.to_owned(),
        rows,
        left_out,
        under,
        detail,
        kinds: CHILD_KINDS.iter().map(|k| (k.code(), k.label())).collect(),
        typed,
        notice,
        notice_for: notice_for.to_owned(),
    }
}

/// `GET /admin/units`.
pub async fn units(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<UnitsQuery>,
) -> Response {
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_FIELD)
        .collect();
    let notice = query.done.as_deref().and_then(|done| {
        let text = match done {
            "rename" => "单位已更名",
            "move" => "单位已调整上级",
            "create" => "下级单位已新增",
            "close" => "单位已撤销",
            _ => return None,
        };
        Some(Notice::ok(text))
    });
    let view = UnitsView {
        q: &q,
        unit: query.unit.as_deref(),
        under: query.under.as_deref(),
    };
    render(
        StatusCode::OK,
        &units_page(&state, &session, &view, Fields::default(), notice, ""),
    )
}

/// The directory command a unit form asks for.
fn unit_command(snapshot: &OrgSnapshot, fields: &Fields) -> Result<DirectoryCommand, String> {
    let id = UnitId::new(fields.get("unit"));
    Ok(match fields.get("action") {
        "rename" => DirectoryCommand::RenameUnit {
            id,
            name: fields.get("name").to_owned(),
        },
        "move" => {
            let parent = fields.get("parent");
            if parent.is_empty() {
                return Err("请填写新的上级单位（编码或名称）".to_owned());
            }
            DirectoryCommand::MoveUnit {
                id,
                parent_id: resolve_unit(snapshot, parent)?,
            }
        }
        "create" => {
            let kind = CHILD_KINDS
                .iter()
                .find(|k| k.code() == fields.get("kind"))
                .copied()
                .ok_or_else(|| "请选择单位类型".to_owned())?;
            DirectoryCommand::CreateUnit {
                id: UnitId::new(fields.get("child_id")),
                name: fields.get("child_name").to_owned(),
                kind,
                parent_id: id,
            }
        }
        "close" => {
            let successor = fields.get("successor");
            DirectoryCommand::CloseUnit {
                id,
                successor: if successor.is_empty() {
                    None
                } else {
                    Some(resolve_unit(snapshot, successor)?)
                },
            }
        }
        _ => return Err("未知的操作".to_owned()),
    })
}

/// `POST /admin/units`: `action` (rename, move, create, close) on `unit`; back to the unit,
/// or the form again with the refusal and what was typed.
pub async fn units_act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields::parse(pairs);
    let csrf = fields.as_ref().ok().map(|f| f.get("csrf").to_owned());
    if !session.csrf_ok(&headers, csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let fields = match fields {
        Ok(fields) => fields,
        Err(text) => {
            let view = UnitsView {
                q: "",
                unit: None,
                under: None,
            };
            let page = units_page(
                &state,
                &session,
                &view,
                Fields::default(),
                Some(Notice::error(text)),
                "",
            );
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let snapshot = state.orgs.current();
    let action = fields.get("action").to_owned();
    let outcome = match unit_command(&snapshot, &fields) {
        Ok(command) => {
            let shown = match &command {
                DirectoryCommand::CreateUnit { id, .. } => id.to_string(),
                _ => fields.get("unit").to_owned(),
            };
            change(&state, &session.user, command, None)
                .await
                .map(|()| shown)
                .map_err(refused)
        }
        Err(text) => Err((StatusCode::UNPROCESSABLE_ENTITY, Notice::error(text))),
    };
    match outcome {
        Ok(shown) => {
            let query =
                serde_urlencoded::to_string([("unit", shown.as_str()), ("done", action.as_str())])
                    .unwrap_or_default();
            Redirect::to(&format!("/admin/units?{query}")).into_response()
        }
        Err((status, notice)) => {
            let unit = fields.get("unit").to_owned();
            let view = UnitsView {
                q: "",
                unit: Some(&unit),
                under: None,
            };
            render(
                status,
                &units_page(&state, &session, &view, fields, Some(notice), &action),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// 人员

/// One row of the user list.
pub struct UserRow {
    username: String,
    name: String,
    unit: String,
    roles: String,
    /// 启用, 停用, 须改密.
    status: &'static str,
    status_class: &'static str,
}

/// The user chosen, with its forms.
pub struct UserDetail {
    username: String,
    name: String,
    unit: String,
    roles: String,
    oversees: String,
    status: &'static str,
    disabled: bool,
}

/// A login lock in force.
pub struct LockRow {
    kind: &'static str,
    kind_code: &'static str,
    key: String,
    failures: u32,
    until: String,
}

/// 人员管理.
#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    section: &'static str,
    /// The filters as given.
    filter_unit: String,
    filter_role: String,
    filter_q: String,
    filter_status: String,
    rows: Vec<UserRow>,
    total: usize,
    page: usize,
    prev: Option<String>,
    next: Option<String>,
    detail: Option<UserDetail>,
    /// (code, label).
    roles: Vec<(&'static str, &'static str)>,
    locks: Vec<LockRow>,
    typed: Fields,
    notice: Option<Notice>,
    notice_for: String,
    /// The one-time password just made, and for whom: shown once.
    handed_out: Option<(String, String)>,
}

impl UsersPage {
    fn notice_in(&self, form: &str) -> Option<&Notice> {
        self.notice.as_ref().filter(|_| self.notice_for == form)
    }
}

/// `?unit=&role=&q=&status=&page=&user=&done=`.
#[derive(Deserialize, Default)]
pub struct UsersQuery {
    unit: Option<String>,
    role: Option<String>,
    q: Option<String>,
    status: Option<String>,
    page: Option<String>,
    user: Option<String>,
    done: Option<String>,
}

fn bounded(text: Option<&String>) -> String {
    text.map(|t| t.trim().chars().take(MAX_FIELD).collect())
        .unwrap_or_default()
}

fn status_of(entry: &UserEntry, account: Option<&User>) -> (&'static str, &'static str) {
    if entry.disabled {
        ("停用", "disabled")
    } else if account.is_some_and(|a| a.must_change_password) {
        ("须改密", "must_change")
    } else {
        ("启用", "active")
    }
}

fn role_labels(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.label())
        .collect::<Vec<_>>()
        .join("、")
}

fn users_page(
    state: &AppState,
    session: &Session,
    query: &UsersQuery,
    typed: Fields,
    notice: Option<Notice>,
    notice_for: &str,
) -> UsersPage {
    let snapshot = state.orgs.current();
    let actor = session.user.actor();
    let filter_unit = bounded(query.unit.as_ref());
    let filter_role = bounded(query.role.as_ref());
    let filter_q = bounded(query.q.as_ref());
    let filter_status = bounded(query.status.as_ref());
    let accounts: HashMap<String, std::sync::Arc<User>> = state
        .directory
        .users()
        .into_iter()
        .map(|u| (u.username.clone(), u))
        .collect();
    let mut matching = Vec::new();
    for entry in snapshot.directory.users() {
        if !manages(&snapshot, &actor, &entry.unit_id) {
            continue;
        }
        let unit = unit_label(&snapshot, &entry.unit_id);
        let (status, status_class) = status_of(entry, accounts.get(&entry.username).map(|a| &**a));
        let keep = (filter_unit.is_empty()
            || entry.unit_id.as_str() == filter_unit
            || unit.contains(&filter_unit))
            && (filter_role.is_empty() || entry.roles.iter().any(|r| r.code() == filter_role))
            && (filter_q.is_empty()
                || entry.username.contains(&filter_q)
                || entry.display_name.contains(&filter_q))
            && (filter_status.is_empty() || filter_status == status_class);
        if keep {
            matching.push(UserRow {
                username: entry.username.clone(),
                name: entry.display_name.clone(),
                unit,
                roles: role_labels(&entry.roles),
                status,
                status_class,
            });
        }
    }
    let total = matching.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = page_of(query.page.as_deref()).min(pages);
    let rows: Vec<UserRow> = matching
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let link = |page: usize| {
        let pairs = [
            ("unit", filter_unit.as_str()),
            ("role", filter_role.as_str()),
            ("q", filter_q.as_str()),
            ("status", filter_status.as_str()),
        ];
        let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
        let mut query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if !query.is_empty() {
            query.push('&');
        }
        format!("/admin/users?{query}page={page}")
    };
    let detail = query
        .user
        .as_deref()
        .and_then(|name| snapshot.directory.user(name))
        .filter(|entry| manages(&snapshot, &actor, &entry.unit_id))
        .map(|entry| UserDetail {
            username: entry.username.clone(),
            name: entry.display_name.clone(),
            unit: unit_label(&snapshot, &entry.unit_id),
            roles: role_labels(&entry.roles),
            oversees: entry
                .oversees
                .iter()
                .map(|id| unit_label(&snapshot, id))
                .collect::<Vec<_>>()
                .join("；"),
            status: status_of(entry, accounts.get(&entry.username).map(|a| &**a)).0,
            disabled: entry.disabled,
        });
    let mut typed = typed;
    if notice_for != "change"
        && let Some(entry) = query
            .user
            .as_deref()
            .and_then(|n| snapshot.directory.user(n))
    {
        typed.set("change_unit", entry.unit_id.to_string());
        for role in &entry.roles {
            typed.set("change_roles", role.code());
        }
        let oversees: Vec<&str> = entry.oversees.iter().map(UnitId::as_str).collect();
        typed.set("change_oversees", oversees.join(" "));
    }
    let locks = state
        .access
        .locks()
        .into_iter()
        .map(|lock| LockRow {
            kind: match lock.kind {
                LockKind::Account => "账号",
                LockKind::Address => "地址",
            },
            kind_code: match lock.kind {
                LockKind::Account => "account",
                LockKind::Address => "address",
            },
            key: lock.key,
            failures: lock.failures,
            until: zh_time(lock.until),
        })
        .collect();
    UsersPage {
        layout: Layout::new(state, session, "人员管理"),
        section: "users",
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        filter_unit,
        filter_role,
        filter_q,
        filter_status,
        rows,
        total,
        page,
        detail,
        roles: ROLES.iter().map(|r| (r.code(), r.label())).collect(),
        locks,
        typed,
        notice,
        notice_for: notice_for.to_owned(),
        handed_out: None,
    }
}

/// `GET /admin/users`.
pub async fn users(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<UsersQuery>,
) -> Response {
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let notice = query.done.as_deref().and_then(|done| {
        let text = match done {
            "change" => "用户的单位和角色已调整",
            "disable" => "用户已停用，其登录已全部退出",
            "enable" => "用户已启用",
            "unlock" => "锁定已解除",
            _ => return None,
        };
        Some(Notice::ok(text))
    });
    render(
        StatusCode::OK,
        &users_page(&state, &session, &query, Fields::default(), notice, ""),
    )
}

/// Roles ticked in a form.
fn roles_of(values: &[&str]) -> Vec<Role> {
    ROLES
        .iter()
        .filter(|r| values.contains(&r.code()))
        .copied()
        .collect()
}

/// Units typed one after the other (spaces, commas or 、 between), each an id or a name.
fn units_of(snapshot: &OrgSnapshot, text: &str) -> Result<Vec<UnitId>, String> {
    let list: Vec<&str> = text
        .split([' ', ',', '，', '、', ';', '；'])
        .filter(|s| !s.is_empty())
        .collect();
    if list.len() > 50 {
        return Err("分管单位最多 50 个".to_owned());
    }
    list.into_iter()
        .map(|t| resolve_unit(snapshot, t))
        .collect()
}

/// The directory command a user form asks for, and whether it hands out a password.
fn user_command(
    snapshot: &OrgSnapshot,
    fields: &Fields,
) -> Result<(DirectoryCommand, bool), String> {
    let username = fields.get("username").to_owned();
    Ok(match fields.get("action") {
        "create" => (
            DirectoryCommand::CreateUser {
                user: UserEntry {
                    username,
                    display_name: fields.get("display_name").to_owned(),
                    unit_id: resolve_unit(snapshot, fields.get("unit"))?,
                    roles: roles_of(&fields.all("roles")),
                    oversees: units_of(snapshot, fields.get("oversees"))?,
                    disabled: false,
                },
            },
            true,
        ),
        "change" => (
            DirectoryCommand::ChangeUser {
                username,
                unit_id: resolve_unit(snapshot, fields.get("change_unit"))?,
                roles: roles_of(&fields.all("change_roles")),
                oversees: units_of(snapshot, fields.get("change_oversees"))?,
            },
            false,
        ),
        "disable" => (DirectoryCommand::DisableUser { username }, false),
        "enable" => (DirectoryCommand::EnableUser { username }, false),
        "reset" => (DirectoryCommand::ResetPassword { username }, true),
        _ => return Err("未知的操作".to_owned()),
    })
}

/// `POST /admin/users`: `action` (create, change, disable, enable, reset, unlock) for
/// `username`. A new or reset password is shown once on the answer; other changes go back to
/// the user; a refusal is shown in its form with what was typed.
pub async fn users_act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields::parse(pairs);
    let csrf = fields.as_ref().ok().map(|f| f.get("csrf").to_owned());
    if !session.csrf_ok(&headers, csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let fields = match fields {
        Ok(fields) => fields,
        Err(text) => {
            let page = users_page(
                &state,
                &session,
                &UsersQuery::default(),
                Fields::default(),
                Some(Notice::error(text)),
                "",
            );
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let action = fields.get("action").to_owned();
    let username = fields.get("username").to_owned();
    let shown = |fields: Fields, status: StatusCode, notice: Notice| {
        let query = UsersQuery {
            user: (!username.is_empty() && action != "create").then(|| username.clone()),
            ..UsersQuery::default()
        };
        render(
            status,
            &users_page(&state, &session, &query, fields, Some(notice), &action),
        )
    };
    if action == "unlock" {
        let kind = match fields.get("kind") {
            "address" => LockKind::Address,
            _ => LockKind::Account,
        };
        let key = fields.get("key");
        if state.access.unlock(kind, key, &session.user.username) {
            return Redirect::to("/admin/users?done=unlock").into_response();
        }
        return shown(
            Fields::default(),
            StatusCode::NOT_FOUND,
            Notice::error("该锁定已不存在（可能已到期）"),
        );
    }
    let snapshot = state.orgs.current();
    let (command, hands_out) = match user_command(&snapshot, &fields) {
        Ok(command) => command,
        Err(text) => {
            return shown(
                fields,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::error(text),
            );
        }
    };
    let password = if hands_out {
        match crate::directory::temporary_password() {
            Ok(password) => Some(password),
            Err(err) => {
                let (status, notice) = refused(Failure::Internal(err));
                return shown(fields, status, notice);
            }
        }
    } else {
        None
    };
    match change(&state, &session.user, command, password.as_deref()).await {
        Ok(()) => match password {
            Some(password) => {
                let query = UsersQuery {
                    user: Some(username.clone()),
                    ..UsersQuery::default()
                };
                let mut page = users_page(&state, &session, &query, Fields::default(), None, "");
                page.notice = Some(Notice::ok(if action == "create" {
                    "用户已新增"
                } else {
                    "密码已重置，该用户的登录已全部退出"
                }));
                page.handed_out = Some((username, password));
                render(StatusCode::OK, &page)
            }
            None => {
                let query = serde_urlencoded::to_string([
                    ("user", username.as_str()),
                    ("done", action.as_str()),
                ])
                .unwrap_or_default();
                Redirect::to(&format!("/admin/users?{query}")).into_response()
            }
        },
        Err(failure) => {
            let (status, notice) = refused(failure);
            shown(fields, status, notice)
        }
    }
}

// ---------------------------------------------------------------------------------------
// 规则

/// One year of the calendar, as shown.
pub struct YearView {
    year: i32,
    title: String,
    number: String,
    published: String,
    /// (name, from, to).
    holidays: Vec<(String, String, String)>,
    /// (date, name).
    make_ups: Vec<(String, String)>,
}

/// 规则管理.
#[derive(Template)]
#[template(path = "admin_rules.html")]
struct RulesPage {
    layout: Layout,
    section: &'static str,
    /// (version, in force from).
    versions: Vec<(u32, String)>,
    current: u32,
    years: Vec<YearView>,
    office_hours: String,
    policy: String,
    holiday_rows: Vec<usize>,
    make_up_rows: Vec<usize>,
    period_rows: Vec<usize>,
    typed: Fields,
    notice: Option<Notice>,
    notice_for: String,
    /// 派单目录.
    catalogue: catalogue::CatalogueView,
}

impl RulesPage {
    fn notice_in(&self, form: &str) -> Option<&Notice> {
        self.notice.as_ref().filter(|_| self.notice_for == form)
    }
}

/// `?done=`, and for the catalogue `?cq=` (matters found by name, code or word) and
/// `?matter=` (the matter whose form is open).
#[derive(Deserialize)]
pub struct RulesQuery {
    done: Option<String>,
    cq: Option<String>,
    matter: Option<String>,
}

fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The rules page; `find` and `editing` are the catalogue's search and the matter whose form
/// is open.
fn rules_page(
    state: &AppState,
    session: &Session,
    typed: Fields,
    notice: Option<Notice>,
    notice_for: &str,
    (find, editing): (&str, &str),
) -> RulesPage {
    let refused_edit = (notice_for == "catalogue_matter").then_some(&typed);
    let catalogue = catalogue::view(state, find, editing, refused_edit);
    let snapshot = state.rules.current();
    let current = snapshot.rules.current();
    let data = current.calendar_data();
    let mut years: Vec<YearView> = data
        .years
        .iter()
        .map(|y| YearView {
            year: y.year,
            title: y.notice.title.clone(),
            number: y.notice.number.clone(),
            published: day(y.notice.published),
            holidays: y
                .holidays
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        day(h.from),
                        h.to.map(day).unwrap_or_default(),
                    )
                })
                .collect(),
            make_ups: y
                .make_up_working_days
                .iter()
                .map(|m| (day(m.date), m.name.clone()))
                .collect(),
        })
        .collect();
    years.sort_by_key(|y| std::cmp::Reverse(y.year));
    let office_hours = data
        .office_hours
        .iter()
        .map(|p| format!("{}–{}", String::from(p.start), String::from(p.end)))
        .collect::<Vec<_>>()
        .join("，");
    let mut typed = typed;
    if notice_for != "year" {
        for name in domain::rules::FESTIVALS {
            typed.set("holiday_name", name);
        }
    }
    if notice_for != "hours" {
        for period in &data.office_hours {
            typed.set("start", String::from(period.start));
            typed.set("end", String::from(period.end));
        }
    }
    RulesPage {
        layout: Layout::new(state, session, "规则管理"),
        section: "rules",
        versions: snapshot
            .rules
            .versions()
            .map(|v| {
                let from = if v.effective_from() == DateTime::<Utc>::MIN_UTC {
                    "内置基础版本（始终）".to_owned()
                } else {
                    zh_time(v.effective_from())
                };
                (v.version(), from)
            })
            .collect(),
        current: current.version(),
        years,
        office_hours,
        policy: serde_json::to_string_pretty(&**current.policy()).unwrap_or_default(),
        holiday_rows: (0..HOLIDAY_ROWS).collect(),
        make_up_rows: (0..MAKE_UP_ROWS).collect(),
        period_rows: (0..PERIOD_ROWS).collect(),
        typed,
        notice,
        notice_for: notice_for.to_owned(),
        catalogue,
    }
}

/// `GET /admin/rules`.
pub async fn rules(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<RulesQuery>,
) -> Response {
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let notice = match query.done.as_deref() {
        Some("year") => Some(Notice::ok("节假日安排已保存，自现在起生效")),
        Some("hours") => Some(Notice::ok("办公时间已保存，自现在起生效")),
        Some("catalogue") => Some(Notice::ok("派单目录已保存，自现在起的转办建议按新目录")),
        Some("catalogue_removed") => Some(Notice::ok("事项已删除，自现在起的转办建议按新目录")),
        _ => None,
    };
    let find = query.cq.as_deref().unwrap_or_default();
    let editing = query.matter.as_deref().unwrap_or_default();
    render(
        StatusCode::OK,
        &rules_page(
            &state,
            &session,
            Fields::default(),
            notice,
            "",
            (find, editing),
        ),
    )
}

fn date_field(text: &str, what: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{what}须为有效日期（年-月-日）"))
}

/// The year the year form describes.
pub fn year_of(fields: &Fields) -> Result<YearData, String> {
    let year: i32 = fields
        .get("year")
        .parse()
        .map_err(|_| "年份须为数字，如 2027".to_owned())?;
    let mut holidays = Vec::new();
    for i in 0..HOLIDAY_ROWS {
        let (name, from, to) = (
            fields.nth("holiday_name", i),
            fields.nth("holiday_from", i),
            fields.nth("holiday_to", i),
        );
        if from.is_empty() && to.is_empty() {
            // A festival's name alone is the form's prompt, not a row.
            continue;
        }
        let row = i + 1;
        holidays.push(HolidaySpan {
            name: name.to_owned(),
            from: date_field(from, &format!("放假第 {row} 行的开始日期"))?,
            to: if to.is_empty() {
                None
            } else {
                Some(date_field(to, &format!("放假第 {row} 行的结束日期"))?)
            },
        });
    }
    let mut make_up_working_days = Vec::new();
    for i in 0..MAKE_UP_ROWS {
        let (date, name) = (fields.nth("make_up_date", i), fields.nth("make_up_name", i));
        if date.is_empty() && name.is_empty() {
            continue;
        }
        make_up_working_days.push(MakeUpDay {
            date: date_field(date, &format!("调休上班第 {} 行的日期", i + 1))?,
            name: name.to_owned(),
        });
    }
    Ok(YearData {
        year,
        notice: YearNotice {
            title: fields.get("title").to_owned(),
            number: fields.get("number").to_owned(),
            published: date_field(fields.get("published"), "通知发布日期")?,
            url: fields.get("url").to_owned(),
        },
        holidays,
        make_up_working_days,
    })
}

/// The office periods the office-hours form lists.
pub fn periods_of(fields: &Fields) -> Result<Vec<OfficePeriod>, String> {
    let mut periods = Vec::new();
    for i in 0..PERIOD_ROWS {
        let (start, end) = (fields.nth("start", i), fields.nth("end", i));
        if start.is_empty() && end.is_empty() {
            continue;
        }
        let time = |text: &str| {
            ClockTime::parse(text)
                .map_err(|_| format!("第 {} 个时段的时间须为 时:分，如 08:30", i + 1))
        };
        periods.push(OfficePeriod {
            start: time(start)?,
            end: time(end)?,
        });
    }
    Ok(periods)
}

/// `POST /admin/rules`: `action` `year` (add or replace a year), `hours` (office hours), or
/// `catalogue_matter`, `catalogue_add`, `catalogue_remove` (the dispatch catalogue: a
/// matter's name and words, a new matter, a matter removed), through
/// `AppState::change_rules_now`.
pub async fn rules_act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    // A matter's words may be longer than the other forms' fields.
    let fields = Fields::parse_within(pairs, catalogue::MAX_FIELD);
    let csrf = fields.as_ref().ok().map(|f| f.get("csrf").to_owned());
    if !session.csrf_ok(&headers, csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let fields = match fields {
        Ok(fields) => fields,
        Err(text) => {
            let page = rules_page(
                &state,
                &session,
                Fields::default(),
                Some(Notice::error(text)),
                "",
                ("", ""),
            );
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let action = fields.get("action").to_owned();
    // The matter shown after the change (a catalogue form's).
    let mut shown = String::new();
    let command = match action.as_str() {
        "year" => year_of(&fields).map(|data| RulesCommand::SetYear {
            year: data.year,
            data,
        }),
        "hours" => {
            periods_of(&fields).map(|office_hours| RulesCommand::SetOfficeHours { office_hours })
        }
        "catalogue_matter" | "catalogue_add" | "catalogue_remove" => {
            catalogue::command(&state, &action, &fields).map(|(command, matter)| {
                shown = matter;
                command
            })
        }
        _ => Err("未知的操作".to_owned()),
    };
    let outcome = match command {
        Ok(command) => state
            .change_rules_now(&session.user.actor(), &command)
            .await
            .map_err(refused),
        Err(text) => Err((StatusCode::UNPROCESSABLE_ENTITY, Notice::error(text))),
    };
    match outcome {
        Ok(_) => {
            let to = match action.as_str() {
                "catalogue_remove" => "/admin/rules?done=catalogue_removed#catalogue".to_owned(),
                // Codes are digits (the rules checked them).
                "catalogue_matter" | "catalogue_add" => {
                    format!("/admin/rules?done=catalogue&matter={shown}#catalogue-edit")
                }
                _ => format!("/admin/rules?done={action}"),
            };
            Redirect::to(&to).into_response()
        }
        Err((status, notice)) => {
            let editing = match action.as_str() {
                "catalogue_matter" | "catalogue_remove" => fields.get("code").to_owned(),
                _ => String::new(),
            };
            let page = rules_page(
                &state,
                &session,
                fields,
                Some(notice),
                &action,
                ("", &editing),
            );
            render(status, &page)
        }
    }
}

// ---------------------------------------------------------------------------------------
// 审计

/// One recorded change or security event.
pub struct AuditRow {
    at: String,
    who: String,
    what: String,
}

/// 审计记录.
#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    section: &'static str,
    changes: Vec<AuditRow>,
    changes_total: u64,
    page: usize,
    prev: Option<String>,
    next: Option<String>,
    security: Vec<AuditRow>,
    security_total: u64,
    spage: usize,
    sprev: Option<String>,
    snext: Option<String>,
}

/// `?page=&spage=`.
#[derive(Deserialize)]
pub struct AuditQuery {
    page: Option<String>,
    spage: Option<String>,
}

fn person(snapshot: &OrgSnapshot, username: &str) -> String {
    match snapshot.directory.user(username) {
        Some(user) => format!("{}（{username}）", user.display_name),
        None if username == "system" => "系统（首次启动）".to_owned(),
        None => username.to_owned(),
    }
}

/// A directory change in Chinese words.
fn change_text(snapshot: &OrgSnapshot, event: &DirectoryEvent, position: u64) -> String {
    let name = |id: &UnitId| unit_name(snapshot, id);
    match event {
        DirectoryEvent::UnitCreated { unit } => {
            let parent = unit.parent_id.as_ref().map(name).unwrap_or_default();
            format!(
                "新增单位「{}」（{}，编码 {}），上级单位「{parent}」",
                unit.name,
                unit.kind.label(),
                unit.id
            )
        }
        DirectoryEvent::UnitRenamed { id, name: new } => {
            let old = snapshot
                .name_at(id, position.saturating_sub(1))
                .map_or_else(|| id.to_string(), str::to_owned);
            format!("单位「{old}」更名为「{new}」（编码 {id}）")
        }
        DirectoryEvent::UnitMoved { id, parent_id } => {
            format!("单位「{}」调整上级为「{}」", name(id), name(parent_id))
        }
        DirectoryEvent::UnitClosed { id, successor } => match successor {
            Some(s) => format!("撤销单位「{}」，未办结工单由「{}」承接", name(id), name(s)),
            None => format!("撤销单位「{}」", name(id)),
        },
        DirectoryEvent::UserCreated { user } => format!(
            "新增用户 {}（{}），单位「{}」，角色：{}",
            user.username,
            user.display_name,
            name(&user.unit_id),
            role_labels(&user.roles)
        ),
        DirectoryEvent::UserChanged {
            username,
            unit_id,
            roles,
            ..
        } => format!(
            "调整用户 {username}：单位「{}」，角色：{}",
            name(unit_id),
            role_labels(roles)
        ),
        DirectoryEvent::UserDisabled { username } => format!("停用用户 {username}"),
        DirectoryEvent::UserEnabled { username } => format!("启用用户 {username}"),
        DirectoryEvent::PasswordReset { username } => format!("重置用户 {username} 的密码"),
    }
}

/// A security event in Chinese words: (who, what).
fn security_text(event: &SecurityEvent) -> (String, String) {
    let lock = |kind: &LockKind| match kind {
        LockKind::Account => "账号",
        LockKind::Address => "地址",
    };
    match event {
        SecurityEvent::LoginSucceeded { username, address } => {
            (username.clone(), format!("登录成功（{address}）"))
        }
        SecurityEvent::PasswordChanged { username, address } => {
            (username.clone(), format!("修改密码（{address}）"))
        }
        SecurityEvent::LoginFailed {
            username,
            address,
            failures,
        } => (
            username.clone(),
            format!("登录失败：密码错误（{address}，连续第 {failures} 次）"),
        ),
        SecurityEvent::UnknownUserLoginsFailed { address, count, .. } => (
            String::new(),
            format!("不存在的用户名登录失败 {count} 次（{address}）"),
        ),
        SecurityEvent::LoginLocked {
            kind,
            key,
            failures,
            until,
        } => (
            String::new(),
            format!(
                "{}「{key}」因失败 {failures} 次被锁定至 {}",
                lock(kind),
                zh_time(*until)
            ),
        ),
        SecurityEvent::LoginUnlocked { kind, key, by } => {
            (by.clone(), format!("解除{}「{key}」的锁定", lock(kind)))
        }
        SecurityEvent::LoggedOut { username } => (username.clone(), "退出登录".to_owned()),
    }
}

/// `GET /admin/audit`: the directory's record and the security events, newest first.
pub async fn audit(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Response {
    if let Some(refused) = admins_only(&state, &session) {
        return refused;
    }
    let layout = || Layout::new(&state, &session, "审计记录");
    let snapshot = state.orgs.current();
    let per = PER_PAGE as u64;
    let total = snapshot.version;
    let pages = usize::try_from(total.div_ceil(per))
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE);
    let page = page_of(query.page.as_deref()).min(pages);
    let last = total.saturating_sub((page as u64 - 1) * per);
    let first = last.saturating_sub(per) + 1;
    let mut changes = Vec::new();
    if last > 0 {
        let records = match state
            .store
            .read_stream(crate::store::stream::DIRECTORY, first)
            .await
        {
            Ok(records) => records,
            Err(err) => return failure_page(layout(), crate::app::AppError::from(err).into()),
        };
        for rec in records.iter().filter(|r| r.version <= last) {
            match crate::directory_log::decode(rec) {
                Ok(decoded) => changes.push(AuditRow {
                    at: zh_time(decoded.at),
                    who: person(&snapshot, &decoded.actor),
                    what: change_text(&snapshot, &decoded.event, decoded.position),
                }),
                Err(err) => return failure_page(layout(), Failure::Internal(err.into())),
            }
        }
        changes.reverse();
    }
    let spage = page_of(query.spage.as_deref());
    let (security_total, events) = match state.access.log().page(spage as u64, per).await {
        Ok(found) => found,
        Err(err) => return failure_page(layout(), Failure::Internal(err)),
    };
    let security = events
        .into_iter()
        .map(|rec| {
            let (who, what) = security_text(&rec.event);
            AuditRow {
                at: zh_time(rec.at),
                who: if who.is_empty() {
                    String::new()
                } else {
                    person(&snapshot, &who)
                },
                what,
            }
        })
        .collect();
    let spages = usize::try_from(security_total.div_ceil(per))
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE);
    render(
        StatusCode::OK,
        &AuditPage {
            layout: layout(),
            section: "audit",
            changes,
            changes_total: total,
            prev: (page > 1).then(|| format!("/admin/audit?page={}&spage={spage}", page - 1)),
            next: (page < pages).then(|| format!("/admin/audit?page={}&spage={spage}", page + 1)),
            page,
            security,
            security_total,
            sprev: (spage > 1).then(|| format!("/admin/audit?page={page}&spage={}", spage - 1)),
            snext: (spage < spages)
                .then(|| format!("/admin/audit?page={page}&spage={}", spage + 1)),
            spage,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .expect("fields within bounds")
    }

    #[test]
    fn a_form_with_too_many_or_too_long_fields_is_refused_in_chinese() {
        let many = vec![("a".to_owned(), "b".to_owned()); MAX_PAIRS + 1];
        assert!(Fields::parse(many).unwrap_err().contains("过多"));
        let long = vec![("name".to_owned(), "长".repeat(MAX_FIELD + 1))];
        assert!(Fields::parse(long).unwrap_err().contains("最多"));
    }

    #[test]
    fn repeated_fields_read_as_rows_and_ticked_boxes() {
        let f = fields(&[("roles", "admin"), ("roles", "handler"), ("name", " 甲 ")]);
        assert_eq!(f.get("name"), "甲");
        assert!(f.has("roles", "handler"));
        assert_eq!(roles_of(&f.all("roles")), vec![Role::Handler, Role::Admin]);
        assert_eq!(f.nth("roles", 5), "");
    }

    #[test]
    fn the_year_form_reads_its_filled_rows_and_skips_the_prompts() {
        let f = fields(&[
            ("year", "2027"),
            ("title", "国务院办公厅关于2027年部分节假日安排的通知"),
            ("number", "国办发明电〔2026〕9号"),
            ("published", "2026-11-10"),
            ("holiday_name", "元旦"),
            ("holiday_from", "2027-01-01"),
            ("holiday_to", "2027-01-03"),
            ("holiday_name", "春节"),
            ("holiday_from", ""),
            ("holiday_to", ""),
            ("make_up_date", "2027-02-14"),
            ("make_up_name", "春节"),
        ]);
        let year = year_of(&f).expect("a year");
        assert_eq!(year.year, 2027);
        assert_eq!(year.holidays.len(), 1);
        assert_eq!(year.holidays[0].to, NaiveDate::from_ymd_opt(2027, 1, 3));
        assert_eq!(year.make_up_working_days[0].name, "春节");
    }

    #[test]
    fn a_bad_date_in_the_year_form_names_its_row() {
        let f = fields(&[
            ("year", "2027"),
            ("published", "2026-11-10"),
            ("holiday_name", "元旦"),
            ("holiday_from", "2027-13-01"),
        ]);
        assert!(year_of(&f).unwrap_err().contains("第 1 行"));
        assert!(
            year_of(&fields(&[("year", "二〇二七")]))
                .unwrap_err()
                .contains("年份")
        );
    }

    #[test]
    fn office_periods_read_as_clock_times() {
        let f = fields(&[
            ("start", "08:30"),
            ("end", "12:00"),
            ("start", ""),
            ("end", ""),
        ]);
        assert_eq!(periods_of(&f).expect("periods").len(), 1);
        let bad = fields(&[("start", "8点"), ("end", "12:00")]);
        assert!(periods_of(&bad).unwrap_err().contains("时:分"));
    }
}

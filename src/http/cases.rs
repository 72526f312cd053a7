//! `/api/v1/cases`: create, drafts, the command verbs, and the case view.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::case::{Assignment, HandlingRole};
use domain::kinds::{Category, Channel, Kind, Urgency};
use domain::org::UnitId;
use domain::{CaseId, Command, Intake, Satisfaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiQuery, Caller, CommandHeaders};
use super::{AppState, ts};
use crate::app::Outcome;
use crate::app::views::{CaseDetail, MAX_IDENTITY_VIEWS_PER_PAGE};
use crate::store::Position;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_case))
        .routes(routes!(get_case))
        .routes(routes!(update_draft))
        .routes(routes!(submit))
        .routes(routes!(answer))
        .routes(routes!(transfer))
        .routes(routes!(recall))
        .routes(routes!(return_request))
        .routes(routes!(return_decision))
        .routes(routes!(receive))
        .routes(routes!(progress))
        .routes(routes!(complete))
        .routes(routes!(extension))
        .routes(routes!(extension_decide))
        .routes(routes!(callback))
        .routes(routes!(reopen))
        .routes(routes!(supervise))
        .routes(routes!(annotate))
        .routes(routes!(archive))
        .routes(routes!(merge))
        .routes(routes!(appeal))
        .routes(routes!(appeal_decision))
        .routes(routes!(identity_views))
}

/// The intake fields of a new case or a draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    /// 来电人姓名 (empty for anonymous).
    #[serde(default)]
    pub caller_name: String,
    /// 来电号码: mobile or landline with area code.
    #[serde(default)]
    pub caller_phone: String,
    /// phone, web, wechat, sms, email, letter (default phone).
    #[schema(value_type = Option<String>, example = "phone")]
    pub channel: Option<Channel>,
    /// inquiry, help_request, complaint, report, proposal, praise.
    #[schema(value_type = Option<String>, example = "complaint")]
    pub category: Option<Category>,
    /// immediate, escalated, promised, suggestion, supplementary.
    #[schema(value_type = Option<String>, example = "escalated")]
    pub kind: Option<Kind>,
    /// normal, urgent, critical (default normal).
    #[schema(value_type = Option<String>, example = "normal")]
    pub urgency: Option<Urgency>,
    /// 标题.
    #[serde(default)]
    pub title: String,
    /// 诉求内容.
    #[serde(default)]
    pub content: String,
    /// 地址.
    #[serde(default)]
    pub address: String,
    /// The citizen's place in the six-level tree (a unit id).
    pub location_unit_id: Option<String>,
    /// false saves a draft; true (the default) submits (受理).
    #[serde(default = "yes")]
    pub submit: bool,
    /// The caller asked that their identity stay hidden from handling units.
    #[serde(default)]
    pub confidential: bool,
}

fn yes() -> bool {
    true
}

/// A draft's intake (same fields, without `submit`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    #[serde(default)]
    caller_name: String,
    #[serde(default)]
    caller_phone: String,
    #[schema(value_type = Option<String>)]
    channel: Option<Channel>,
    #[schema(value_type = Option<String>)]
    category: Option<Category>,
    #[schema(value_type = Option<String>)]
    kind: Option<Kind>,
    #[schema(value_type = Option<String>)]
    urgency: Option<Urgency>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    address: String,
    location_unit_id: Option<String>,
    #[serde(default)]
    confidential: bool,
}

impl From<DraftBody> for Intake {
    fn from(b: DraftBody) -> Self {
        Intake {
            caller_name: b.caller_name,
            caller_phone: b.caller_phone,
            channel: b.channel,
            category: b.category,
            kind: b.kind,
            urgency: b.urgency,
            title: b.title,
            content: b.content,
            address: b.address,
            location_unit_id: b.location_unit_id.map(UnitId::new),
            confidential: b.confidential,
        }
    }
}

/// What a command returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResponse {
    /// The case number.
    #[schema(value_type = String)]
    pub id: CaseId,
    /// The stream version after the command (send it as `If-Match` next time).
    pub version: u64,
    /// The global position of the last event (pass as `min_position` to read your writes).
    pub position: u64,
}

impl From<Outcome> for CommandResponse {
    fn from(o: Outcome) -> Self {
        Self {
            id: o.id,
            version: o.version,
            position: o.position.0,
        }
    }
}

fn parse_id(id: &str) -> Result<CaseId, ApiError> {
    ApiError::case_id(id)
}

/// 受理: create a case (or save a draft with `submit: false`).
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = CreateCase,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 201, body = CommandResponse), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_case(
    State(app): State<AppState>,
    Caller(user): Caller,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<CreateCase>,
) -> Result<(StatusCode, Json<CommandResponse>), ApiError> {
    let submit = body.submit;
    let intake = Intake {
        caller_name: body.caller_name,
        caller_phone: body.caller_phone,
        channel: body.channel,
        category: body.category,
        kind: body.kind,
        urgency: body.urgency,
        title: body.title,
        content: body.content,
        address: body.address,
        location_unit_id: body.location_unit_id.map(UnitId::new),
        confidential: body.confidential,
    };
    let outcome = app
        .create(
            &user.actor(),
            intake,
            submit,
            headers.idempotency_key.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(outcome.into())))
}

async fn run(
    app: &AppState,
    user: &crate::directory::User,
    id: &str,
    headers: CommandHeaders,
    cmd: Command,
) -> Result<Json<CommandResponse>, ApiError> {
    let case_id = parse_id(id)?;
    let outcome = app
        .execute(
            &user.actor(),
            &case_id,
            cmd,
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await?;
    Ok(Json(outcome.into()))
}

/// Bodies of the command verbs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// The answer given on the call.
    reply: String,
    /// Knowledge-base articles cited: at least one, each published and valid now (unless
    /// `knowledge_gap` is given instead).
    #[serde(default)]
    kb_article_ids: Vec<String>,
    /// 知识库缺口: when the knowledge base has no answer, what the caller asked (instead of
    /// citing articles).
    #[serde(default)]
    knowledge_gap: Option<KnowledgeGapBody>,
}

/// 知识库缺口.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeGapBody {
    /// What the caller asked that the knowledge base could not answer (at most 500 characters).
    question: String,
}

/// 转办.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// 主办单位.
    lead_unit_id: String,
    /// 协办单位 (a joint case when not empty).
    #[serde(default)]
    co_unit_ids: Vec<String>,
    /// 转办意见.
    #[serde(default)]
    note: String,
}

/// A reason (recall, return request, reopen, appeal).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why.
    reason: String,
}

/// A note (progress).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note.
    note: String,
}

/// A reply (complete).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    /// The reply.
    reply: String,
}

/// 延期申请.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    /// Working days asked for.
    working_days: u32,
    /// Why.
    reason: String,
}

/// 延期审批.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionDecideBody {
    /// Approve.
    approve: bool,
    /// Opinion.
    #[serde(default)]
    note: String,
}

/// 回访.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    /// satisfied, basically_satisfied, unsatisfied.
    #[schema(value_type = String, example = "satisfied")]
    satisfaction: Satisfaction,
    /// Whether the problem was solved.
    resolved: bool,
    /// Notes.
    #[serde(default)]
    note: String,
}

/// 督办.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuperviseBody {
    /// Opinion.
    opinion: String,
}

/// 批示.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnotateBody {
    /// The instruction.
    text: String,
}

/// 并单.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The master case.
    master_id: String,
}

/// Review of a return request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnDecisionBody {
    /// Accept (recall) or overrule.
    accept: bool,
    /// Opinion (required when overruling).
    #[serde(default)]
    note: String,
}

/// Decision on an appeal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecisionBody {
    /// Uphold the appeal (exclude the rating from KPIs).
    upheld: bool,
    /// Opinion.
    #[serde(default)]
    note: String,
}

/// An empty body (`{}`) for verbs without fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Declares a command verb: a handler with its OpenAPI description, mapping its body to a
/// domain command.
macro_rules! verb {
    ($name:ident, $path:literal, $summary:literal, $body:ty, |$app:ident, $user:ident, $b:ident| $cmd:expr) => {
        verb!(post, $name, $path, $summary, $body, |$app, $user, $b| $cmd);
    };
    ($method:ident, $name:ident, $path:literal, $summary:literal, $body:ty, |$app:ident, $user:ident, $b:ident| $cmd:expr) => {
        #[doc = $summary]
        #[utoipa::path($method, path = $path, tag = "cases", request_body = $body,
            params(
                ("id" = String, Path, description = "工单编号"),
                ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"),
                ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$"),
            ),
            responses((status = 200, body = CommandResponse), (status = 400, body = Problem), (status = 403, body = Problem),
                (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
        async fn $name(
            State($app): State<AppState>,
            Caller($user): Caller,
            Path(id): Path<String>,
            headers: CommandHeaders,
            ApiJson($b): ApiJson<$body>,
        ) -> Result<Json<CommandResponse>, ApiError> {
            let cmd: Command = $cmd;
            run(&$app, &$user, &id, headers, cmd).await
        }
    };
}

verb!(
    put,
    update_draft,
    "/api/v1/cases/{id}/draft",
    "Replace a draft's intake.",
    DraftBody,
    |_app, _user, b| Command::UpdateDraft { intake: b.into() }
);
verb!(
    submit,
    "/api/v1/cases/{id}/submit",
    "受理: submit a draft.",
    EmptyBody,
    |_app, _user, _b| Command::Submit
);
/// 即办: answer an immediate case on the call, citing articles published and valid now, or
/// recording a knowledge gap (知识库缺口) when the base has no answer.
#[utoipa::path(post, path = "/api/v1/cases/{id}/answer", tag = "cases", request_body = AnswerBody,
    params(
        ("id" = String, Path, description = "工单编号"),
        ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"),
        ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe"),
    ),
    responses((status = 200, body = CommandResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn answer(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<AnswerBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    let case_id = parse_id(&id)?;
    let gap = body.knowledge_gap.map(|g| g.question);
    if gap.is_some() && !body.kb_article_ids.is_empty() {
        return Err(ApiError::bad_request(
            "gap_with_citations",
            "an answer cites `kb_article_ids` or records a `knowledge_gap`, not both",
        ));
    }
    let outcome = app
        .answer(
            &user.actor(),
            &case_id,
            body.reply,
            body.kb_article_ids,
            gap,
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await?;
    Ok(Json(outcome.into()))
}
verb!(
    transfer,
    "/api/v1/cases/{id}/transfer",
    "转办 to a lead unit and optional co-handlers.",
    TransferBody,
    |_app, _user, b| Command::Transfer {
        lead_unit_id: UnitId::new(b.lead_unit_id),
        co_unit_ids: b.co_unit_ids.into_iter().map(UnitId::new).collect(),
        note: b.note,
    }
);
verb!(
    recall,
    "/api/v1/cases/{id}/recall",
    "追回 this unit's transfer.",
    ReasonBody,
    |_app, _user, b| Command::Recall { reason: b.reason }
);
verb!(
    return_request,
    "/api/v1/cases/{id}/return-request",
    "退回申请: ask the transferrer to recall.",
    ReasonBody,
    |_app, _user, b| Command::RequestReturn { reason: b.reason }
);
verb!(
    return_decision,
    "/api/v1/cases/{id}/return-decision",
    "Review a return request: accept (recall) or overrule.",
    ReturnDecisionBody,
    |_app, _user, b| Command::DecideReturn {
        accept: b.accept,
        note: b.note
    }
);
verb!(
    receive,
    "/api/v1/cases/{id}/receive",
    "接收/签收.",
    EmptyBody,
    |_app, _user, _b| Command::Receive
);
verb!(
    progress,
    "/api/v1/cases/{id}/progress",
    "办理: record a handling note.",
    NoteBody,
    |_app, _user, b| Command::RecordProgress { note: b.note }
);
verb!(
    complete,
    "/api/v1/cases/{id}/complete",
    "办结: reply with the result.",
    ReplyBody,
    |_app, _user, b| Command::Complete { reply: b.reply }
);
verb!(
    extension,
    "/api/v1/cases/{id}/extension",
    "延期申请.",
    ExtensionBody,
    |_app, _user, b| Command::RequestExtension {
        working_days: b.working_days,
        reason: b.reason
    }
);
verb!(
    extension_decide,
    "/api/v1/cases/{id}/extension/decide",
    "延期审批.",
    ExtensionDecideBody,
    |_app, _user, b| Command::DecideExtension {
        approve: b.approve,
        note: b.note
    }
);
verb!(
    callback,
    "/api/v1/cases/{id}/callback",
    "回访.",
    CallbackBody,
    |_app, _user, b| Command::CallBack {
        satisfaction: b.satisfaction,
        resolved: b.resolved,
        note: b.note
    }
);
verb!(
    reopen,
    "/api/v1/cases/{id}/reopen",
    "重办 after an unsatisfied call-back.",
    ReasonBody,
    |_app, _user, b| Command::Reopen { reason: b.reason }
);
verb!(
    supervise,
    "/api/v1/cases/{id}/supervise",
    "督办.",
    SuperviseBody,
    |_app, _user, b| Command::Supervise { opinion: b.opinion }
);
verb!(
    annotate,
    "/api/v1/cases/{id}/annotate",
    "批示.",
    AnnotateBody,
    |_app, _user, b| Command::Annotate { text: b.text }
);
verb!(
    archive,
    "/api/v1/cases/{id}/archive",
    "归档.",
    EmptyBody,
    |_app, _user, _b| Command::Archive
);
verb!(
    appeal,
    "/api/v1/cases/{id}/appeal",
    "申诉 an unsatisfied rating.",
    ReasonBody,
    |_app, _user, b| Command::Appeal { reason: b.reason }
);
verb!(
    appeal_decision,
    "/api/v1/cases/{id}/appeal-decision",
    "Decide an appeal.",
    AppealDecisionBody,
    |_app, _user, b| Command::DecideAppeal {
        upheld: b.upheld,
        note: b.note
    }
);

/// 并单: merge this duplicate into a master case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/merge", tag = "cases", request_body = MergeBody,
    params(("id" = String, Path, description = "工单编号"), ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"),
        ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 200, body = CommandResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn merge(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    let case_id = parse_id(&id)?;
    let master_id = CaseId::parse(&body.master_id)
        .map_err(|e| ApiError::bad_request("invalid_field", e.to_string()))?;
    let outcome = app
        .merge(
            &user.actor(),
            &case_id,
            &master_id,
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await?;
    Ok(Json(outcome.into()))
}

/// Read-your-writes: wait until the store has reached this position.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// Wait (up to 5 s) until this global position is visible.
    min_position: Option<u64>,
}

/// One holder or past assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    id: u32,
    unit_id: String,
    unit_name: String,
    /// lead or co.
    role: String,
    /// pending, received, completed, recalled, cancelled.
    state: String,
    from_unit_id: String,
    transferred_at: String,
    receive_by: String,
    complete_by: String,
    /// Whether a deadline falls in a year whose holiday notice is not in the calendar yet.
    deadline_provisional: bool,
    received_at: Option<String>,
    completed_at: Option<String>,
    overdue: bool,
    /// 已预警: the overdue sweep warned that a deadline still running falls due soon.
    warned: bool,
    reply: Option<String>,
    return_request: Option<String>,
    extension_request_days: Option<u32>,
}

/// One event of the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Global position.
    position: u64,
    /// Stream version.
    version: u64,
    /// Event type, e.g. `transferred`.
    #[serde(rename = "type")]
    kind: String,
    /// When (RFC 3339, Asia/Shanghai).
    time: String,
    /// The step in Chinese: 受理, 转办, 签收, 办理, 办结, 回访 …
    label: String,
    /// Username.
    actor: String,
    /// The person's display name (the username when unknown, e.g. `system`).
    actor_name: String,
    /// The unit acted for.
    unit_id: String,
    /// Its name.
    unit_name: String,
    /// The event's data (caller identity masked where the viewer may not see it; times in
    /// it RFC 3339 in Asia/Shanghai, to the second).
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// Rewrites every RFC 3339 time in `value` as the wire writes times: Asia/Shanghai, whole
/// seconds (stored events keep UTC with fractions).
fn times_on_the_wire(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                *text = ts(t.with_timezone(&Utc));
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(times_on_the_wire),
        serde_json::Value::Object(map) => map.values_mut().for_each(times_on_the_wire),
        _ => {}
    }
}

/// The case now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    id: String,
    version: u64,
    /// draft, accepted, transferred, in_progress, completed, called_back, archived.
    status: String,
    /// The Chinese label with the overdue variants (逾期未接收, 逾期正在办理, 逾期办结).
    status_label: String,
    overdue: bool,
    caller_name: String,
    caller_phone: String,
    /// True when the caller's identity is masked for this viewer.
    identity_masked: bool,
    /// For a unit whose part of the case is over (recalled, completed, passed on): the end of
    /// its part. The case is shown as it was then, timeline included; `null` for the whole
    /// case.
    history_until: Option<String>,
    confidential: bool,
    channel: Option<String>,
    category: Option<String>,
    kind: Option<String>,
    urgency: Option<String>,
    title: String,
    content: String,
    address: String,
    location_unit_id: Option<String>,
    accepting_unit_id: Option<String>,
    created_by: String,
    created_at: Option<String>,
    accepted_at: Option<String>,
    completed_at: Option<String>,
    archived_at: Option<String>,
    answered_on_call: bool,
    kb_article_ids: Vec<String>,
    /// 知识库缺口 the on-call answer recorded: what the caller asked.
    knowledge_gap: Option<String>,
    merged_into: Option<String>,
    duplicates: Vec<String>,
    n_reopened: u32,
    /// Who holds the case now, with their deadlines.
    holders: Vec<AssignmentView>,
    /// Every assignment ever made, recalled ones included (流转轨迹).
    assignments: Vec<AssignmentView>,
    timeline: Vec<TimelineEntry>,
    /// What the caller may do on this case now, asked of the rules themselves
    /// (`domain::actions`): show only these.
    actions: Vec<ActionView>,
}

/// A verb the caller may perform now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    /// `POST /api/v1/cases/{id}/{verb}` (`draft` is `PUT`): `receive`, `transfer`,
    /// `extension/decide` …
    verb: String,
    /// The button's label: 签收, 转办, 审批延期 …
    label: String,
    /// For `transfer`: the units it may go to now (as lead or co-handler).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    transfer_targets: Vec<TargetView>,
}

/// A unit a transfer may go to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    unit_id: String,
    name: String,
    /// With its places below the city: `城关区 / 酒泉路街道`.
    path: String,
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

fn assignment_view(app: &AppState, a: &Assignment, now: DateTime<Utc>) -> AssignmentView {
    // Rule 8, asked of the domain.
    let overdue = a.overdue_kind(now).is_some();
    AssignmentView {
        id: a.id,
        unit_id: a.unit_id.to_string(),
        unit_name: app
            .org()
            .get(&a.unit_id)
            .map(|u| u.name.clone())
            .unwrap_or_default(),
        role: match a.role {
            HandlingRole::Lead => "lead".into(),
            HandlingRole::Co => "co".into(),
        },
        state: snake(&a.state),
        from_unit_id: a.from_unit_id.to_string(),
        transferred_at: ts(a.transferred_at),
        receive_by: ts(a.receive_by.at),
        complete_by: ts(a.complete_by.at),
        deadline_provisional: a.receive_by.provisional || a.complete_by.provisional,
        received_at: opt_ts(a.received_at),
        completed_at: opt_ts(a.completed_at),
        overdue,
        warned: a.warned(),
        reply: a.reply.clone(),
        return_request: a.return_request.as_ref().map(|r| r.reason.clone()),
        extension_request_days: a.extension_request.as_ref().map(|r| r.working_days),
    }
}

/// The case now: status, holders with deadlines, and the full timeline.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "工单编号"), ReadQuery),
    responses((status = 200, body = CaseView), (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn get_case(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<CaseView>, ApiError> {
    if let Some(pos) = q.min_position
        && !app
            .store
            .wait_for(Position(pos), std::time::Duration::from_secs(5))
            .await
    {
        return Err(ApiError::Unavailable(format!("position {pos} not reached")));
    }
    let case_id = parse_id(&id)?;
    // Scoped, masked, audited, labelled, with its actions: the view layer's, not this handler's.
    let detail = app.case_detail(&user.actor(), &case_id).await?;
    let timeline = detail
        .timeline
        .iter()
        .map(|item| {
            // `{"transferred": {…}}`: the type is already in `type`; show what is inside.
            let mut data = match serde_json::to_value(&item.event.body) {
                Ok(serde_json::Value::Object(map)) => {
                    map.into_iter().next().map(|(_, v)| v).unwrap_or_default()
                }
                _ => serde_json::Value::Null,
            };
            times_on_the_wire(&mut data);
            TimelineEntry {
                position: item.position.0,
                version: item.version,
                kind: item.event_type.clone(),
                time: ts(item.event.at),
                label: item.label.to_owned(),
                actor_name: item.actor_name.clone(),
                actor: item.event.actor.clone(),
                unit_name: item.unit_name.clone(),
                unit_id: item.event.unit_id.to_string(),
                data,
            }
        })
        .collect();
    let mut view = case_view(&app, &detail, timeline);
    view.actions = detail
        .actions
        .iter()
        .map(|a| ActionView {
            verb: a.verb.to_owned(),
            label: a.label.to_owned(),
            transfer_targets: a
                .transfer_targets
                .iter()
                .map(|u| TargetView {
                    unit_id: u.to_string(),
                    name: app.org().get(u).map(|x| x.name.clone()).unwrap_or_default(),
                    path: app.org().path_label(u),
                })
                .collect(),
        })
        .collect();
    Ok(Json(view))
}

fn case_view(app: &AppState, detail: &CaseDetail, timeline: Vec<TimelineEntry>) -> CaseView {
    let (case, now, full_identity) = (&detail.case, detail.now, detail.full_identity);
    let intake = case.intake();
    let (caller_name, caller_phone) = (detail.caller_name(), detail.caller_phone());
    CaseView {
        id: detail.id.to_string(),
        version: case.version(),
        status: snake(&case.status()),
        status_label: case.status_label(now).to_owned(),
        overdue: case.overdue(now),
        caller_name,
        caller_phone,
        identity_masked: !full_identity,
        history_until: opt_ts(detail.until),
        confidential: intake.confidential,
        channel: intake.channel.map(|c| snake(&c)),
        category: intake.category.map(|c| snake(&c)),
        kind: intake.kind.map(|c| snake(&c)),
        urgency: intake.urgency.map(|c| snake(&c)),
        title: intake.title.clone(),
        content: intake.content.clone(),
        address: intake.address.clone(),
        location_unit_id: intake.location_unit_id.as_ref().map(|u| u.to_string()),
        accepting_unit_id: case.accepting_unit_id().map(|u| u.to_string()),
        created_by: case.created_by().to_owned(),
        created_at: opt_ts(case.created_at()),
        accepted_at: opt_ts(case.accepted_at()),
        completed_at: opt_ts(case.completed_at()),
        archived_at: opt_ts(case.archived_at()),
        answered_on_call: case.answered_on_call(),
        kb_article_ids: case.kb_article_ids().to_vec(),
        knowledge_gap: case.knowledge_gap().map(str::to_owned),
        merged_into: case.merged_into().map(|m| m.to_string()),
        duplicates: app
            .duplicates_of(&detail.id)
            .iter()
            .map(|d| d.to_string())
            .collect(),
        n_reopened: case.n_reopened(),
        holders: case
            .holders()
            .map(|a| assignment_view(app, a, now))
            .collect(),
        assignments: case
            .assignments()
            .iter()
            .map(|a| assignment_view(app, a, now))
            .collect(),
        timeline,
        actions: Vec::new(),
    }
}

/// A recorded view of a caller's full identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityViewEntry {
    username: String,
    unit_id: String,
    time: Option<String>,
}

/// A page of identity views, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityViewList {
    items: Vec<IdentityViewEntry>,
    /// Views recorded over all pages.
    total: u64,
    page: u32,
    per_page: u32,
}

/// Which page of identity views.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdentityViewQuery {
    /// 1-based page, 1 to 10,000 (default 1).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Views per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<u32>,
}

/// Who saw the caller's full identity, and when (centre shift leaders, the efficiency office,
/// admins), oldest first. A user's views of one case within 15 minutes are recorded once.
#[utoipa::path(get, path = "/api/v1/cases/{id}/identity-views", tag = "cases",
    params(("id" = String, Path, description = "工单编号"), IdentityViewQuery),
    responses((status = 200, body = IdentityViewList), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn identity_views(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<IdentityViewQuery>,
) -> Result<Json<IdentityViewList>, ApiError> {
    let case_id = parse_id(&id)?;
    let paging = super::extract::paging(q.page, q.per_page, 50, MAX_IDENTITY_VIEWS_PER_PAGE)?;
    let views = app
        .identity_view_page(&user.actor(), &case_id, paging)
        .await?;
    Ok(Json(IdentityViewList {
        items: views
            .items
            .into_iter()
            .map(|v| IdentityViewEntry {
                username: v.username,
                unit_id: v.unit_id.to_string(),
                time: opt_ts(v.at),
            })
            .collect(),
        total: views.total,
        page: views.page,
        per_page: views.per_page,
    }))
}

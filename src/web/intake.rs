//! 座席受理 at `/intake`: the operator's console, laid out for a caller on the line.
//!
//! The form posts back to `/intake` (a plain form: a refusal shows the form again with what
//! was typed and the message in place); htmx fills three panels as the operator types, each
//! from the view layer: the caller's earlier cases (来电弹屏, `AppState::case_list` by number,
//! callers masked), the places found by name (`App::find_units`, picked down the six levels),
//! and the knowledge base's suggestions (`AppState::kb_suggestions`), whose buttons answer the
//! call citing an article (即办) or record a knowledge gap. `/intake?phone=…` opens with the
//! number and its history (a telephone system pops it); `/intake?draft=…` continues a draft.
//! After a submit, `/intake/cases/{id}` shows the routing suggestion with its reason
//! (`AppState::route`) and, for those the rules let transfer, the transfer pre-filled with it,
//! offering only the units `detail.actions` names.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::error::CaseError;
use domain::kinds::{Category, Kind, Urgency};
use domain::org::UnitId;
use domain::{CaseId, Command, Intake};
use knowledge_base::index::SearchPage;
use projections::CaseFilter;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Layout, Session, csrf_refused, failure_page, render};
use crate::app::failure::Failure;
use crate::app::views::{CaseDetail, CaseQuery, UnitSearch};
use crate::app::{AppError, AppState, zh_time};

/// Earlier cases shown for a number.
const HISTORY_ROWS: u32 = 8;
/// Places offered for a name.
const PLACES: usize = 10;
/// Articles suggested.
const SUGGESTIONS: usize = 5;
/// The longest text sent to the knowledge base (its own limit is 500 characters).
const KB_QUERY_CHARS: usize = 500;
/// The longest place name searched.
const PLACE_QUERY_CHARS: usize = 100;

const CATEGORIES: [Category; 6] = [
    Category::Inquiry,
    Category::HelpRequest,
    Category::Complaint,
    Category::Report,
    Category::Proposal,
    Category::Praise,
];
const KINDS: [Kind; 5] = [
    Kind::Immediate,
    Kind::Escalated,
    Kind::Promised,
    Kind::Suggestion,
    Kind::Supplementary,
];
const URGENCIES: [Urgency; 3] = [Urgency::Normal, Urgency::Urgent, Urgency::Critical];

/// The wire code of an enum value (`help_request`).
fn code<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The enum value of a wire code; `None` for an empty or unknown one.
fn parse_code<T: DeserializeOwned>(text: &str) -> Option<T> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

/// One option of a select.
pub struct Choice {
    code: String,
    label: String,
    selected: bool,
}

fn choices<T: serde::Serialize + Copy>(
    all: &[T],
    label: impl Fn(T) -> &'static str,
    selected: &str,
) -> Vec<Choice> {
    all.iter()
        .map(|v| {
            let code = code(v);
            Choice {
                selected: code == selected,
                label: label(*v).to_owned(),
                code,
            }
        })
        .collect()
}

/// What the operator typed (kept whole across a refusal).
#[derive(Debug, Default, Deserialize)]
pub struct IntakeForm {
    csrf: Option<String>,
    #[serde(default)]
    caller_name: String,
    #[serde(default)]
    caller_phone: String,
    /// The checkbox: present when ticked.
    confidential: Option<String>,
    #[serde(default)]
    category: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    urgency: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    location_unit_id: String,
    /// What was typed in the place search.
    #[serde(default)]
    place_q: String,
    /// 答复内容 of an on-call answer.
    #[serde(default)]
    reply: String,
    /// The button: `submit` (受理) or `draft` (保存草稿).
    #[serde(default)]
    intent: String,
    /// 即办: the article the answer cites (the button's value).
    answer_article: Option<String>,
    /// 即办 with a knowledge gap (the button).
    answer_gap: Option<String>,
    /// The draft being continued, and the version shown.
    draft_id: Option<String>,
    version: Option<u64>,
    /// Makes a second click of the same form (or a resent one) create no second case.
    #[serde(default)]
    form_key: String,
}

impl IntakeForm {
    fn intake(&self) -> Intake {
        let location = self.location_unit_id.trim();
        Intake {
            caller_name: self.caller_name.clone(),
            caller_phone: self.caller_phone.clone(),
            channel: None,
            category: parse_code(&self.category),
            kind: parse_code(&self.kind),
            urgency: parse_code(&self.urgency),
            title: self.title.clone(),
            content: self.content.clone(),
            address: self.address.clone(),
            location_unit_id: (!location.is_empty()).then(|| UnitId::new(location)),
            confidential: self.confidential.is_some(),
        }
    }

    fn of_draft(detail: &CaseDetail) -> Self {
        let intake = detail.case.intake();
        IntakeForm {
            caller_name: intake.caller_name.clone(),
            caller_phone: intake.caller_phone.clone(),
            confidential: intake.confidential.then(|| "on".to_owned()),
            category: intake.category.map(|c| code(&c)).unwrap_or_default(),
            kind: intake.kind.map(|k| code(&k)).unwrap_or_default(),
            urgency: intake.urgency.map(|u| code(&u)).unwrap_or_default(),
            title: intake.title.clone(),
            content: intake.content.clone(),
            address: intake.address.clone(),
            location_unit_id: intake
                .location_unit_id
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            draft_id: Some(detail.id.to_string()),
            version: Some(detail.case.version()),
            ..IntakeForm::default()
        }
    }
}

/// The picked place: its path and the places one level down, to go further.
pub struct Place {
    id: String,
    path: String,
    children: Vec<(String, String)>,
}

/// 来电弹屏: the caller's earlier cases.
pub struct History {
    /// Why there are no rows (no number yet, not a whole number, none found).
    note: Option<String>,
    rows: Vec<HistoryRow>,
    total: u64,
}

/// One earlier case.
pub struct HistoryRow {
    id: String,
    title: String,
    category: String,
    status_label: &'static str,
    at: String,
}

/// 知识库推荐.
pub struct Suggestions {
    note: Option<String>,
    hits: Vec<Hit>,
    /// The index could not answer yet (still catching up after a start, or the store away):
    /// the panel asks again on its own, so the suggestions appear without retyping.
    retry: bool,
}

/// One article suggested.
pub struct Hit {
    id: String,
    title: String,
    /// The index's passage: HTML-escaped, matches in `<em>`.
    snippet: String,
    category: String,
}

/// A refusal shown above the form, naming the field.
pub struct FormError {
    text: String,
    /// The field's name in the form, to mark.
    field: &'static str,
}

/// 座席受理.
#[derive(Template)]
#[template(path = "intake.html")]
struct IntakePage {
    layout: Layout,
    form: IntakeForm,
    categories: Vec<Choice>,
    kinds: Vec<Choice>,
    urgencies: Vec<Choice>,
    place: Option<Place>,
    history: History,
    suggestions: Suggestions,
    error: Option<FormError>,
    /// A new form key when none came with the form.
    form_key: String,
}

#[derive(Template)]
#[template(path = "_intake_history.html")]
struct HistoryFragment {
    history: History,
}

#[derive(Template)]
#[template(path = "_intake_suggestions.html")]
struct SuggestionsFragment {
    suggestions: Suggestions,
}

#[derive(Template)]
#[template(path = "_intake_places.html")]
struct PlacesFragment {
    found: Vec<(String, String)>,
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "_intake_place.html")]
struct PlaceFragment {
    place: Option<Place>,
    /// Answered to a pick: also clear the list of places found.
    clear_list: bool,
}

fn place(state: &AppState, id: &str) -> Option<Place> {
    let id = UnitId::new(id.trim());
    state.org().get(&id)?;
    let children = state
        .find_units(&UnitSearch {
            parent_id: Some(id.clone()),
            places_only: true,
            ..UnitSearch::default()
        })
        .into_iter()
        .map(|(unit, _)| (unit.id.to_string(), unit.name))
        .collect();
    Some(Place {
        path: state.org().path_label(&id),
        id: id.to_string(),
        children,
    })
}

async fn history(state: &AppState, session: &Session, phone: &str) -> History {
    let phone = phone.trim();
    let empty = |note: &str| History {
        note: Some(note.to_owned()),
        rows: Vec::new(),
        total: 0,
    };
    if phone.is_empty() {
        return empty("输入来电号码后显示该号码的历史工单");
    }
    let Some(number) = domain::identity::normalize_phone(phone) else {
        return empty("号码不完整，输入完整号码后显示历史工单");
    };
    let query = CaseQuery {
        filter: CaseFilter {
            caller_phone: Some(number),
            page: 1,
            per_page: HISTORY_ROWS,
            ..CaseFilter::default()
        },
        text: None,
        min_position: None,
    };
    match state.case_list(&session.user.actor(), query).await {
        Ok(found) if found.page.items.is_empty() => empty("该号码没有历史工单"),
        Ok(found) => History {
            note: None,
            total: found.page.total,
            rows: found
                .page
                .items
                .into_iter()
                .map(|row| HistoryRow {
                    category: row
                        .category
                        .as_deref()
                        .and_then(parse_code::<Category>)
                        .map(|c| c.label().to_owned())
                        .unwrap_or_default(),
                    at: row
                        .accepted_at
                        .or(row.created_at)
                        .map(zh_time)
                        .unwrap_or_default(),
                    status_label: row.status_label,
                    title: row.title,
                    id: row.case_id,
                })
                .collect(),
        },
        Err(failure) => empty(&failure.describe().title),
    }
}

async fn suggestions(state: &AppState, title: &str, content: &str) -> Suggestions {
    let text: String = format!("{} {}", title.trim(), content.trim())
        .chars()
        .take(KB_QUERY_CHARS)
        .collect();
    if text.trim().is_empty() {
        return Suggestions {
            note: Some("输入诉求内容后显示相关知识".to_owned()),
            hits: Vec::new(),
            retry: false,
        };
    }
    suggested(state.kb_suggestions(text.trim(), SUGGESTIONS).await)
}

/// The panel for what the knowledge base answered.
fn suggested(answer: Result<SearchPage, Failure>) -> Suggestions {
    match answer {
        Ok(page) if page.hits.is_empty() => Suggestions {
            note: Some("知识库中没有相关文章".to_owned()),
            hits: Vec::new(),
            retry: false,
        },
        Ok(page) => Suggestions {
            note: None,
            hits: page
                .hits
                .into_iter()
                .map(|h| Hit {
                    id: h.id,
                    title: h.title,
                    snippet: h.snippet,
                    category: h.category,
                })
                .collect(),
            retry: false,
        },
        Err(failure) => {
            let described = failure.describe();
            Suggestions {
                retry: described.status == 503,
                note: Some(described.title.into_owned()),
                hits: Vec::new(),
            }
        }
    }
}

async fn form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: IntakeForm,
    error: Option<FormError>,
) -> Response {
    let page = IntakePage {
        layout: Layout::new(state, session, "座席受理"),
        categories: choices(&CATEGORIES, Category::label, &form.category),
        kinds: choices(&KINDS, Kind::label, &form.kind),
        urgencies: choices(&URGENCIES, Urgency::label, &form.urgency),
        place: place(state, &form.location_unit_id),
        history: history(state, session, &form.caller_phone).await,
        suggestions: suggestions(state, &form.title, &form.content).await,
        error,
        form_key: if form.form_key.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            form.form_key.clone()
        },
        form,
    };
    render(status, &page)
}

/// `?phone=&draft=`.
#[derive(Deserialize)]
pub struct PageQuery {
    phone: Option<String>,
    draft: Option<String>,
}

/// `GET /intake`: the console, for those who may take calls (else a Chinese 403 page).
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<PageQuery>,
) -> Response {
    if let Err(failure) = state.may_take_calls(&session.user.actor()) {
        return failure_page(Layout::new(&state, &session, "座席受理"), failure);
    }
    let mut form = IntakeForm {
        caller_phone: query.phone.unwrap_or_default(),
        ..IntakeForm::default()
    };
    if let Some(draft) = query.draft.filter(|d| !d.trim().is_empty()) {
        let layout = || Layout::new(&state, &session, "座席受理");
        let case_id = match Failure::case_id(draft.trim()) {
            Ok(case_id) => case_id,
            Err(failure) => return failure_page(layout(), failure),
        };
        let detail = match state.case_detail(&session.user.actor(), &case_id).await {
            Ok(detail) => detail,
            Err(err) => return failure_page(layout(), err.into()),
        };
        if !detail.actions.iter().any(|a| a.verb == "draft") {
            return failure_page(layout(), AppError::Domain(CaseError::NotADraft).into());
        }
        form = IntakeForm::of_draft(&detail);
    }
    form_page(&state, &session, StatusCode::OK, form, None).await
}

/// The form's field a refusal is about, if it names one.
fn field_of(err: &AppError) -> &'static str {
    let field = match err {
        AppError::Domain(
            CaseError::Missing(field)
            | CaseError::TooLong { field, .. }
            | CaseError::ForbiddenCharacter { field, .. },
        ) => *field,
        AppError::Domain(CaseError::InvalidPhone(_)) => "caller_phone",
        AppError::Domain(CaseError::UnknownUnit(_)) => "location_unit_id",
        _ => "",
    };
    match field {
        "caller_name" | "caller_phone" | "category" | "kind" | "urgency" | "title" | "content"
        | "address" | "location_unit_id" | "reply" => field,
        "knowledge_gap.question" => "title",
        _ => "",
    }
}

/// The label of a form field, as on screen.
fn field_label(field: &str) -> &'static str {
    match field {
        "caller_name" => "来电人",
        "caller_phone" => "来电号码",
        "category" => "诉求类别",
        "kind" => "件别",
        "urgency" => "紧急程度",
        "title" => "标题",
        "content" => "诉求内容",
        "address" => "地址",
        "location_unit_id" => "所在地",
        "reply" => "答复内容",
        _ => "",
    }
}

/// A refusal as the form shows it: the rule's Chinese title and the field it is about.
fn form_error(err: AppError) -> (StatusCode, FormError) {
    let field = field_of(&err);
    let conflict = matches!(err, AppError::Conflict { .. });
    let described = Failure::from(err).describe();
    let status = StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let text = if conflict {
        "草稿已被他人更新，请重新打开草稿后再保存。".to_owned()
    } else if field.is_empty() {
        described.title.into_owned()
    } else {
        format!("{}：{}", described.title, field_label(field))
    };
    (status, FormError { text, field })
}

/// The reply recorded for a one-click answer when the operator wrote none.
fn default_reply(article_title: Option<&str>) -> String {
    match article_title {
        Some(title) => format!("已按知识库文章《{title}》答复来电人。"),
        None => "知识库暂无答案，已答复来电人并记录知识库缺口。".to_owned(),
    }
}

/// What a gap records: what the caller asked (the title, else the content's first line).
fn gap_question(form: &IntakeForm) -> String {
    let title = form.title.trim();
    let asked = if title.is_empty() {
        form.content.trim().lines().next().unwrap_or_default()
    } else {
        title
    };
    asked.chars().take(500).collect()
}

/// `POST /intake`: saves a draft, submits (受理), or submits and answers on the call (即办,
/// citing the article clicked, or recording a knowledge gap); then to `/intake/cases/{id}`.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<IntakeForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let actor = session.user.actor();
    if let Err(failure) = state.may_take_calls(&actor) {
        return failure_page(Layout::new(&state, &session, "座席受理"), failure);
    }
    let article = form
        .answer_article
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let answering = article.is_some() || form.answer_gap.is_some();
    let submit = answering || form.intent != "draft";
    let mut intake = form.intake();
    if answering {
        // The button says 即办: the case is an immediate one, answered now.
        intake.kind = Some(Kind::Immediate);
    }
    let key = (!form.form_key.trim().is_empty()).then(|| format!("intake-{}", form.form_key));
    let draft = form
        .draft_id
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .and_then(|d| CaseId::parse(d).ok());
    let saved = match &draft {
        None => state.create(&actor, intake, submit, key.as_deref()).await,
        Some(case_id) => {
            let updated = state
                .execute(
                    &actor,
                    case_id,
                    Command::UpdateDraft { intake },
                    form.version,
                    None,
                )
                .await;
            match updated {
                Ok(done) if submit => {
                    state
                        .execute(&actor, case_id, Command::Submit, Some(done.version), None)
                        .await
                }
                other => other,
            }
        }
    };
    let outcome = match saved {
        Ok(outcome) => outcome,
        Err(err @ (AppError::Domain(_) | AppError::Conflict { .. } | AppError::KeyReused)) => {
            let (status, error) = form_error(err);
            return form_page(&state, &session, status, form, Some(error)).await;
        }
        Err(err) => {
            return failure_page(Layout::new(&state, &session, "座席受理"), err.into());
        }
    };
    if !answering {
        let done = if submit { "accepted" } else { "draft" };
        return Redirect::to(&format!(
            "/intake/cases/{}?done={done}&pos={}",
            outcome.id, outcome.position.0
        ))
        .into_response();
    }
    let title = match &article {
        Some(id) => state
            .kb
            .article(id)
            .await
            .ok()
            .map(|a| a.article.content.title),
        None => None,
    };
    let reply = if form.reply.trim().is_empty() {
        default_reply(title.as_deref())
    } else {
        form.reply.clone()
    };
    let (ids, gap) = match article {
        Some(id) => (vec![id], None),
        None => (Vec::new(), Some(gap_question(&form))),
    };
    match state
        .answer(
            &actor,
            &outcome.id,
            reply,
            ids,
            gap,
            Some(outcome.version),
            None,
        )
        .await
    {
        Ok(answered) => Redirect::to(&format!(
            "/intake/cases/{}?done=answered&pos={}",
            answered.id, answered.position.0
        ))
        .into_response(),
        Err(err) => {
            // The case is registered; the answer was refused: say so on its page.
            let (status, error) = form_error(err);
            let notice = Notice {
                class: "error",
                text: format!("工单已受理，但答复未成功：{}", error.text),
                reload: false,
            };
            done_page(&state, &session, &outcome.id, status, Some(notice), None).await
        }
    }
}

/// `?caller_phone=`: the history panel alone.
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    caller_phone: String,
}

/// `GET /intake/history`: 来电弹屏, as the number is typed.
pub async fn history_fragment(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let history = history(&state, &session, &query.caller_phone).await;
    render(StatusCode::OK, &HistoryFragment { history })
}

/// `?title=&content=`: the knowledge-base panel alone.
#[derive(Deserialize)]
pub struct SuggestQuery {
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
}

/// `GET /intake/kb`: 知识库推荐, as the request is typed.
pub async fn suggestions_fragment(
    State(state): State<AppState>,
    _session: Session,
    Query(query): Query<SuggestQuery>,
) -> Response {
    let suggestions = suggestions(&state, &query.title, &query.content).await;
    render(StatusCode::OK, &SuggestionsFragment { suggestions })
}

/// `?place_q=`: places by name.
#[derive(Deserialize)]
pub struct PlacesQuery {
    #[serde(default)]
    place_q: String,
}

/// `GET /intake/places`: the places whose name (or path) holds what was typed.
pub async fn places_fragment(
    State(state): State<AppState>,
    _session: Session,
    Query(query): Query<PlacesQuery>,
) -> Response {
    let text: String = query
        .place_q
        .trim()
        .chars()
        .take(PLACE_QUERY_CHARS)
        .collect();
    let (found, note) = if text.is_empty() {
        (Vec::new(), None)
    } else {
        let found: Vec<(String, String)> = state
            .find_units(&UnitSearch {
                text: Some(text),
                places_only: true,
                limit: PLACES,
                ..UnitSearch::default()
            })
            .into_iter()
            .map(|(unit, path)| (unit.id.to_string(), path))
            .collect();
        let note = found.is_empty().then(|| "没有找到该地点".to_owned());
        (found, note)
    };
    render(StatusCode::OK, &PlacesFragment { found, note })
}

/// `?unit_id=`: the place picked.
#[derive(Deserialize)]
pub struct PlaceQuery {
    #[serde(default)]
    unit_id: String,
}

/// `GET /intake/place`: the place picked, with the places below it.
pub async fn place_fragment(
    State(state): State<AppState>,
    _session: Session,
    Query(query): Query<PlaceQuery>,
) -> Response {
    let place = place(&state, &query.unit_id);
    render(
        StatusCode::OK,
        &PlaceFragment {
            place,
            clear_list: true,
        },
    )
}

/// A notice above the result.
pub struct Notice {
    /// `ok`, `notice` or `error`.
    class: &'static str,
    text: String,
    reload: bool,
}

/// A transfer the viewer may make now, pre-filled with the suggestion.
pub struct TransferForm {
    version: u64,
    /// (unit id, path, selected).
    targets: Vec<(String, String, bool)>,
    note: String,
}

/// 转办建议 as shown.
pub struct SuggestionShown {
    matter: String,
    reason: String,
    units: Vec<String>,
}

/// After the form: what happened, the suggestion and the transfer.
#[derive(Template)]
#[template(path = "intake_done.html")]
struct DonePage {
    layout: Layout,
    id: String,
    title: String,
    status_label: &'static str,
    notice: Option<Notice>,
    /// The draft may be continued here.
    draft: bool,
    suggestion: Option<SuggestionShown>,
    transfer: Option<TransferForm>,
    /// Said when the case waits for a transfer the viewer may not make.
    waits: bool,
    /// The work lists, reading at least this position.
    back: String,
}

/// A unit a transfer may go to, by its name, with its places when it lies below a district
/// (`张掖路街道（城关区 / 张掖路街道）`).
fn target_label(state: &AppState, id: &UnitId) -> String {
    let name = state
        .org()
        .get(id)
        .map_or_else(|| id.to_string(), |u| u.name.clone());
    let path = state.org().path_label(id);
    if path.contains(" / ") {
        format!("{name}（{path}）")
    } else {
        name
    }
}

/// `?done=&pos=`.
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
    pos: Option<u64>,
}

async fn done_page(
    state: &AppState,
    session: &Session,
    case_id: &CaseId,
    status: StatusCode,
    notice: Option<Notice>,
    position: Option<u64>,
) -> Response {
    let actor = session.user.actor();
    let layout = || Layout::new(state, session, "受理结果");
    let detail = match state.case_detail(&actor, case_id).await {
        Ok(detail) => detail,
        Err(err) => return failure_page(layout(), err.into()),
    };
    let route = state.route(&actor, case_id).await.ok();
    let suggestion = route.and_then(|r| r.suggestion);
    let suggested = suggestion
        .as_ref()
        .and_then(|s| s.units.first())
        .and_then(|u| u.transfer_to.as_ref())
        .map(|u| u.id.clone());
    let transfer = detail
        .actions
        .iter()
        .find(|a| a.verb == "transfer")
        .map(|a| TransferForm {
            version: detail.case.version(),
            targets: a
                .transfer_targets
                .iter()
                .map(|u| {
                    (
                        u.to_string(),
                        target_label(state, u),
                        suggested.as_ref() == Some(u),
                    )
                })
                .collect(),
            note: String::new(),
        });
    let waits = transfer.is_none() && !detail.case.waiting_for_transfer(&state.org()).is_empty();
    let case = &detail.case;
    let page = DonePage {
        layout: layout(),
        id: detail.id.to_string(),
        title: case.intake().title.clone(),
        status_label: case.status_label(detail.now),
        notice,
        draft: detail.actions.iter().any(|a| a.verb == "draft"),
        suggestion: suggestion.map(|s| SuggestionShown {
            matter: s
                .found
                .matter
                .as_ref()
                .map(|m| m.path.join(" / "))
                .unwrap_or_default(),
            reason: s.found.reason.clone(),
            units: s
                .units
                .iter()
                .map(|u| {
                    u.path
                        .iter()
                        .map(|p| p.name.clone())
                        .collect::<Vec<_>>()
                        .join(" → ")
                })
                .collect(),
        }),
        transfer,
        waits,
        back: position.map_or_else(|| "/".to_owned(), |p| format!("/?min_position={p}")),
    };
    render(status, &page)
}

/// `GET /intake/cases/{id}`: the result of the form.
pub async fn done(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let case_id = match Failure::case_id(&id) {
        Ok(case_id) => case_id,
        Err(failure) => {
            return failure_page(Layout::new(&state, &session, "受理结果"), failure);
        }
    };
    let text = match query.done.as_deref() {
        Some("accepted") => Some(format!("已受理，工单编号 {id}")),
        Some("draft") => Some(format!("草稿已保存，工单编号 {id}")),
        Some("answered") => Some(format!("已即办答复，工单已办结，工单编号 {id}")),
        Some("transferred") => Some(format!("已转办，工单编号 {id}")),
        _ => None,
    };
    let notice = text.map(|text| Notice {
        class: "ok",
        text,
        reload: false,
    });
    done_page(
        &state,
        &session,
        &case_id,
        StatusCode::OK,
        notice,
        query.pos,
    )
    .await
}

/// The transfer's form.
#[derive(Deserialize)]
pub struct TransferFormBody {
    csrf: Option<String>,
    version: u64,
    #[serde(default)]
    lead_unit_id: String,
    #[serde(default)]
    note: String,
}

/// `POST /intake/cases/{id}/transfer`: 转办 with the version shown.
pub async fn transfer(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TransferFormBody>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let case_id = match Failure::case_id(&id) {
        Ok(case_id) => case_id,
        Err(failure) => {
            return failure_page(Layout::new(&state, &session, "受理结果"), failure);
        }
    };
    let lead = form.lead_unit_id.trim();
    if lead.is_empty() {
        let notice = Notice {
            class: "error",
            text: "请选择主办单位".to_owned(),
            reload: false,
        };
        return done_page(
            &state,
            &session,
            &case_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(notice),
            None,
        )
        .await;
    }
    let command = Command::Transfer {
        lead_unit_id: UnitId::new(lead),
        co_unit_ids: Vec::new(),
        note: form.note,
    };
    match state
        .execute(
            &session.user.actor(),
            &case_id,
            command,
            Some(form.version),
            None,
        )
        .await
    {
        Ok(outcome) => Redirect::to(&format!(
            "/intake/cases/{}?done=transferred&pos={}",
            outcome.id, outcome.position.0
        ))
        .into_response(),
        Err(AppError::Conflict { .. }) => {
            let notice = Notice {
                class: "notice",
                text: "工单已被他人更新，以下是最新内容，请确认后再操作。".to_owned(),
                reload: true,
            };
            done_page(
                &state,
                &session,
                &case_id,
                StatusCode::CONFLICT,
                Some(notice),
                None,
            )
            .await
        }
        Err(err @ (AppError::Domain(_) | AppError::KeyReused)) => {
            let described = Failure::from(err).describe();
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let notice = Notice {
                class: "error",
                text: described.title.into_owned(),
                reload: false,
            };
            done_page(&state, &session, &case_id, status, Some(notice), None).await
        }
        Err(err) => failure_page(Layout::new(&state, &session, "受理结果"), err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_and_empty_or_unknown_ones_are_none() {
        assert_eq!(code(&Category::HelpRequest), "help_request");
        assert_eq!(
            parse_code::<Category>("help_request"),
            Some(Category::HelpRequest)
        );
        assert_eq!(parse_code::<Category>(""), None);
        assert_eq!(parse_code::<Category>("nonsense"), None);
    }

    #[test]
    fn a_knowledge_base_still_catching_up_is_asked_again_by_the_panel_itself() {
        let waiting = suggested(Err(Failure::Unavailable("catching up".into())));
        assert!(waiting.retry);
        let html = SuggestionsFragment {
            suggestions: waiting,
        }
        .render()
        .expect("render");
        assert!(html.contains("数据同步中"), "{html}");
        assert!(html.contains(r#"hx-trigger="load delay:1s""#), "{html}");
        let answered = suggested(Ok(SearchPage::default()));
        assert!(!answered.retry);
        let html = SuggestionsFragment {
            suggestions: answered,
        }
        .render()
        .expect("render");
        assert!(!html.contains("hx-trigger"), "{html}");
        let broken = suggested(Err(Failure::Internal(anyhow::anyhow!("index broken"))));
        assert!(!broken.retry, "a 500 is not asked again every second");
    }

    #[test]
    fn a_refusal_names_the_field_it_is_about() {
        let (status, error) = form_error(AppError::Domain(CaseError::Missing("content")));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.field, "content");
        assert!(error.text.ends_with("：诉求内容"), "{}", error.text);
        let (_, error) = form_error(AppError::Domain(CaseError::InvalidPhone("12".into())));
        assert_eq!(error.field, "caller_phone");
        let (_, error) = form_error(AppError::Domain(CaseError::NotACentre));
        assert_eq!(error.field, "");
    }

    #[test]
    fn a_gap_records_the_title_else_the_first_line_of_the_content() {
        let mut form = IntakeForm {
            content: "第一行\n第二行".into(),
            ..IntakeForm::default()
        };
        assert_eq!(gap_question(&form), "第一行");
        form.title = "标题".into();
        assert_eq!(gap_question(&form), "标题");
    }

    #[test]
    fn the_form_becomes_the_intake_with_an_empty_place_as_none() {
        let form = IntakeForm {
            category: "inquiry".into(),
            kind: "".into(),
            confidential: Some("on".into()),
            location_unit_id: " ".into(),
            ..IntakeForm::default()
        };
        let intake = form.intake();
        assert_eq!(intake.category, Some(Category::Inquiry));
        assert_eq!(intake.kind, None);
        assert!(intake.confidential);
        assert_eq!(intake.location_unit_id, None);
    }
}

//! 知识库 at `/kb`: search and read for everyone (`AppState::kb_search`, `kb_article`), the
//! editors' list, and for editors (`Kb::may_edit`: shift leaders, admins, handlers of the
//! owning unit) forms to write, edit, publish and retire, each posted with the CSRF token and
//! the version the page showed; a refusal is shown in place in Chinese, a stale version as a
//! notice with a reload link. The knowledge gaps (`AppState::kb_gaps`) at `/kb/gaps`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use knowledge_base::article::{ArticleCommand, ArticleContent};
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, failure_page, render};
use crate::app::failure::Failure;
use crate::app::views::{KbSearch, is_kb_editor, kb_failure};
use crate::app::{AppState, zh_time};
use crate::kb::{ArticleView, Kb, KbError};

/// Results per search page.
const PER_PAGE: u32 = 10;
/// Rows per page of the editors' list and of the gaps.
const LIST_PER_PAGE: usize = 50;

/// A notice above a page: a stale page, a refusal, a success.
pub struct Notice {
    /// `notice`, `error` or `ok`.
    class: &'static str,
    text: String,
    /// Offer a reload link.
    reload: bool,
}

/// One search result.
pub struct Hit {
    id: String,
    title: String,
    /// HTML-escaped by the index, matches in `<em>`.
    snippet: String,
    category: String,
}

/// One row of the editors' list.
pub struct ListRow {
    id: String,
    title: String,
    status: &'static str,
    status_code: &'static str,
    category: String,
    unit: String,
    updated_at: String,
}

/// `?q=&category=&page=`.
#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    category: Option<String>,
    /// Text, so that a mistyped page reads as the first rather than failing.
    page: Option<String>,
    /// Read your own writes.
    pos: Option<u64>,
    /// Editors' list: only this state.
    status: Option<String>,
}

/// 知识库: search, and for editors the articles in every state.
#[derive(Template)]
#[template(path = "kb.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    category: String,
    error: Option<String>,
    searched: bool,
    hits: Vec<Hit>,
    total: usize,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
    editor: bool,
    status: String,
    articles: Vec<ListRow>,
    articles_total: usize,
}

fn unit_name(state: &AppState, id: &str) -> String {
    state
        .org()
        .get(&domain::org::UnitId::new(id))
        .map_or_else(|| id.to_owned(), |u| u.name.clone())
}

fn link(q: &str, category: &str, page: u32) -> String {
    let pairs = [("q", q), ("category", category)];
    let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    let mut query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if !query.is_empty() {
        query.push('&');
    }
    format!("/kb?{query}page={page}")
}

/// `GET /kb`.
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<SearchQuery>,
) -> Response {
    let q = query.q.unwrap_or_default().trim().to_owned();
    let category = query.category.unwrap_or_default().trim().to_owned();
    let page = query
        .page
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 100);
    let mut error = None;
    let (mut hits, mut total) = (Vec::new(), 0);
    if !q.is_empty() {
        let search = KbSearch {
            text: q.clone(),
            category: (!category.is_empty()).then(|| category.clone()),
            unit_id: None,
            page,
            per_page: PER_PAGE,
            min_position: query.pos,
        };
        match state.kb_search(search).await {
            Ok(found) => {
                total = found.total;
                hits = found
                    .hits
                    .into_iter()
                    .map(|h| Hit {
                        id: h.id,
                        title: h.title,
                        snippet: h.snippet,
                        category: h.category,
                    })
                    .collect();
            }
            Err(failure @ Failure::BadRequest { .. }) => {
                error = Some(match failure.describe().code {
                    "query_too_long" => "查询内容过长，请精简后再查".to_owned(),
                    _ => "页码超出范围".to_owned(),
                });
            }
            Err(failure) => return failure_page(Layout::new(&state, &session, "知识库"), failure),
        }
    }
    let editor = is_kb_editor(&session.user);
    let status = query.status.unwrap_or_default();
    let (mut articles, mut articles_total) = (Vec::new(), 0);
    if editor {
        let only = (!status.is_empty()).then_some(status.as_str());
        match state.kb_articles(&session.user, only, None).await {
            Ok(list) => {
                articles_total = list.len();
                articles = list
                    .into_iter()
                    .take(LIST_PER_PAGE)
                    .map(|v| ListRow {
                        status: v.article.status.label(),
                        status_code: v.article.status.code(),
                        unit: unit_name(&state, &v.article.content.unit_id),
                        updated_at: zh_time(v.article.updated_at),
                        id: v.article.id,
                        title: v.article.content.title,
                        category: v.article.content.category,
                    })
                    .collect();
            }
            Err(Failure::BadRequest { .. }) => error = Some("文章状态不正确".to_owned()),
            Err(failure) => return failure_page(Layout::new(&state, &session, "知识库"), failure),
        }
    }
    let pages = u32::try_from(total.div_ceil(PER_PAGE as usize)).unwrap_or(u32::MAX);
    render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &SearchPage {
            layout: Layout::new(&state, &session, "知识库"),
            prev: (page > 1).then(|| link(&q, &category, page - 1)),
            next: (page < pages).then(|| link(&q, &category, page + 1)),
            searched: !q.is_empty() && error.is_none(),
            q,
            category,
            error,
            hits,
            total,
            page,
            editor,
            status,
            articles,
            articles_total,
        },
    )
}

/// 文章.
#[derive(Template)]
#[template(path = "kb_article.html")]
struct ArticlePage {
    layout: Layout,
    id: String,
    title: String,
    body: String,
    status: &'static str,
    status_code: &'static str,
    fields: Vec<(&'static str, String)>,
    similar_questions: Vec<String>,
    stream_version: u64,
    may_edit: bool,
    can_edit: bool,
    can_publish: bool,
    can_retire: bool,
    notice: Option<Notice>,
}

fn validity(from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> String {
    match (from, until) {
        (None, None) => "长期有效".to_owned(),
        (Some(f), None) => format!("{} 起", zh_time(f)),
        (None, Some(u)) => format!("至 {}（不含）", zh_time(u)),
        (Some(f), Some(u)) => format!("{} 至 {}（不含）", zh_time(f), zh_time(u)),
    }
}

async fn show_article(
    state: &AppState,
    session: &Session,
    id: &str,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let detail = match state.kb_article(&session.user, id).await {
        Ok(detail) => detail,
        Err(failure) => {
            return failure_page(Layout::new(state, session, "知识库文章"), failure);
        }
    };
    let ArticleView {
        article,
        stream_version,
        answer_count,
    } = detail.view;
    let c = article.content;
    let fields = vec![
        ("文章编号", article.id.clone()),
        ("分类", c.category.clone()),
        ("标签", c.tags.join("、")),
        ("责任单位", unit_name(state, &c.unit_id)),
        ("政策依据", c.source.clone().unwrap_or_default()),
        ("有效期", validity(c.valid_from, c.valid_until)),
        ("版本", format!("第 {} 版", article.version)),
        ("更新时间", zh_time(article.updated_at)),
        ("引用次数", format!("{answer_count} 次即办答复")),
    ];
    render(
        status,
        &ArticlePage {
            layout: Layout::new(state, session, c.title.clone()),
            id: article.id,
            title: c.title,
            body: c.body,
            status: article.status.label(),
            status_code: article.status.code(),
            fields,
            similar_questions: c.similar_questions,
            stream_version,
            may_edit: detail.may_edit,
            can_edit: detail.actions.contains(&"edit"),
            can_publish: detail.actions.contains(&"publish"),
            can_retire: detail.actions.contains(&"retire"),
            notice,
        },
    )
}

/// `?done=`: the action just done.
#[derive(Deserialize)]
pub struct ArticleQuery {
    done: Option<String>,
}

/// `GET /kb/{id}`.
pub async fn article(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<ArticleQuery>,
) -> Response {
    let notice = query.done.as_deref().and_then(|done| {
        let text = match done {
            "created" => "文章已保存为草稿",
            "edit" => "文章已修改",
            "publish" => "文章已发布",
            "retire" => "文章已下线",
            _ => return None,
        };
        Some(Notice {
            class: "ok",
            text: text.to_owned(),
            reload: false,
        })
    });
    show_article(&state, &session, &id, StatusCode::OK, notice).await
}

/// 新建 / 修改文章.
#[derive(Template)]
#[template(path = "kb_form.html")]
struct FormPage {
    layout: Layout,
    /// `None` for a new article.
    id: Option<String>,
    version: u64,
    form: ArticleFields,
    notice: Option<Notice>,
}

/// The article form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ArticleFields {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    /// One per line.
    #[serde(default)]
    similar_questions: String,
    #[serde(default)]
    category: String,
    /// Separated by commas, 、 or spaces.
    #[serde(default)]
    tags: String,
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    source: String,
    /// YYYY-MM-DD (Asia/Shanghai), from the start of that day.
    #[serde(default)]
    valid_from: String,
    /// YYYY-MM-DD (Asia/Shanghai), no longer valid from the start of that day.
    #[serde(default)]
    valid_until: String,
}

fn day_start(text: &str, label: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    crate::app::params::query_date("date", Some(text))
        .ok()
        .flatten()
        .and_then(|d: NaiveDate| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(crate::app::shanghai()).single())
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| format!("{label}须为有效日期（年-月-日）"))
}

fn day_of(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        t.with_timezone(&crate::app::shanghai())
            .format("%Y-%m-%d")
            .to_string()
    })
    .unwrap_or_default()
}

impl ArticleFields {
    fn of(c: &ArticleContent) -> ArticleFields {
        ArticleFields {
            title: c.title.clone(),
            body: c.body.clone(),
            similar_questions: c.similar_questions.join("\n"),
            category: c.category.clone(),
            tags: c.tags.join("、"),
            unit_id: c.unit_id.clone(),
            source: c.source.clone().unwrap_or_default(),
            valid_from: day_of(c.valid_from),
            valid_until: day_of(c.valid_until),
        }
    }

    /// The content the fields say; a bad date in Chinese.
    fn content(&self) -> Result<ArticleContent, String> {
        let list = |text: &str, split: &[char]| -> Vec<String> {
            text.split(split)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Ok(ArticleContent {
            title: self.title.trim().to_owned(),
            body: self.body.replace("\r\n", "\n").trim().to_owned(),
            similar_questions: list(&self.similar_questions, &['\n', '\r']),
            category: self.category.trim().to_owned(),
            tags: list(&self.tags, &[',', '，', '、', ' ']),
            unit_id: self.unit_id.trim().to_owned(),
            source: Some(self.source.trim().to_owned()).filter(|s| !s.is_empty()),
            valid_from: day_start(&self.valid_from, "生效日期")?,
            valid_until: day_start(&self.valid_until, "失效日期")?,
        })
    }
}

fn editors_only() -> Failure {
    Failure::role_not_allowed(
        "只有值班长、管理员和责任单位的办理人员可以编辑知识库",
        "articles are written by `shift_leader`, `admin` and `handler`",
        crate::app::views::KB_EDITORS,
    )
}

/// `GET /kb/new`.
pub async fn new_form(State(state): State<AppState>, session: Session) -> Response {
    if !is_kb_editor(&session.user) {
        return failure_page(Layout::new(&state, &session, "新建文章"), editors_only());
    }
    let form = ArticleFields {
        unit_id: session.user.unit_id.to_string(),
        ..ArticleFields::default()
    };
    render(
        StatusCode::OK,
        &FormPage {
            layout: Layout::new(&state, &session, "新建文章"),
            id: None,
            version: 0,
            form,
            notice: None,
        },
    )
}

/// `GET /kb/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let layout = || Layout::new(&state, &session, "修改文章");
    let detail = match state.kb_article(&session.user, &id).await {
        Ok(detail) => detail,
        Err(failure) => return failure_page(layout(), failure),
    };
    if !detail.actions.contains(&"edit") {
        let failure = if detail.may_edit {
            kb_failure(KbError::Article(
                knowledge_base::article::ArticleError::Retired,
            ))
        } else {
            kb_failure(KbError::Forbidden)
        };
        return failure_page(layout(), failure);
    }
    render(
        StatusCode::OK,
        &FormPage {
            layout: layout(),
            form: ArticleFields::of(&detail.view.article.content),
            id: Some(detail.view.article.id),
            version: detail.view.stream_version,
            notice: None,
        },
    )
}

/// The form of a new article.
#[derive(Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(flatten)]
    fields: ArticleFields,
}

fn refusal(failure: Failure) -> (StatusCode, Notice) {
    let described = failure.describe();
    (
        StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
        Notice {
            class: "error",
            text: described.title.into_owned(),
            reload: false,
        },
    )
}

/// `POST /kb`: drafts a new article; back to its page, or the form with the refusal.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let refused = |status: StatusCode, notice: Notice, fields: ArticleFields| {
        render(
            status,
            &FormPage {
                layout: Layout::new(&state, &session, "新建文章"),
                id: None,
                version: 0,
                form: fields,
                notice: Some(notice),
            },
        )
    };
    let content = match form.fields.content() {
        Ok(content) => content,
        Err(text) => {
            let notice = Notice {
                class: "error",
                text,
                reload: false,
            };
            return refused(StatusCode::BAD_REQUEST, notice, form.fields);
        }
    };
    match state
        .kb
        .create(&session.user, Kb::new_id(), content, None)
        .await
    {
        Ok(written) => {
            Redirect::to(&format!("/kb/{}?done=created", written.article.id)).into_response()
        }
        Err(
            err @ (KbError::Store(_)
            | KbError::Index(_)
            | KbError::Projection(_)
            | KbError::Decode(_)
            | KbError::Fixtures(_)),
        ) => failure_page(Layout::new(&state, &session, "新建文章"), kb_failure(err)),
        Err(err) => {
            let (status, notice) = refusal(kb_failure(err));
            refused(status, notice, form.fields)
        }
    }
}

/// An action's form on an article: `edit` (with the fields), `publish`, `retire` (with the
/// reason), and the version the page showed.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    action: String,
    /// A number; text because a flattened form reads every value as text.
    version: String,
    #[serde(default)]
    reason: String,
    #[serde(flatten)]
    fields: ArticleFields,
}

/// `POST /kb/{id}`: runs the action with the version shown; on success back to the article
/// (a redirect, so a reload does not resend it); a stale version or a refusal is shown in
/// place (the edit form keeps what was typed).
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let editing = form.action == "edit";
    let Ok(version) = form.version.trim().parse::<u64>() else {
        return failure_page(
            Layout::new(&state, &session, "知识库文章"),
            Failure::bad_request("invalid_field", "`version` must be a number"),
        );
    };
    let again = |status: StatusCode, notice: Notice, fields: ArticleFields| {
        render(
            status,
            &FormPage {
                layout: Layout::new(&state, &session, "修改文章"),
                id: Some(id.clone()),
                version,
                form: fields,
                notice: Some(notice),
            },
        )
    };
    let command = match form.action.as_str() {
        "edit" => match form.fields.content() {
            Ok(content) => ArticleCommand::Edit { content },
            Err(text) => {
                let notice = Notice {
                    class: "error",
                    text,
                    reload: false,
                };
                return again(StatusCode::BAD_REQUEST, notice, form.fields);
            }
        },
        "publish" => ArticleCommand::Publish,
        "retire" => ArticleCommand::Retire {
            reason: form.reason.trim().to_owned(),
        },
        other => {
            return failure_page(
                Layout::new(&state, &session, "知识库文章"),
                Failure::bad_request("invalid_field", format!("unknown action `{other}`")),
            );
        }
    };
    match state
        .kb
        .execute(&session.user, &id, command, Some(version), None)
        .await
    {
        Ok(_) => Redirect::to(&format!("/kb/{id}?done={}", form.action)).into_response(),
        Err(KbError::Conflict { .. }) => {
            let notice = Notice {
                class: "notice",
                text: "文章已被他人修改，以下是最新内容，请确认后再操作。".to_owned(),
                reload: true,
            };
            if editing {
                let notice = Notice {
                    text: "文章已被他人修改，您的修改尚未保存。请重新加载最新内容后再修改。"
                        .to_owned(),
                    ..notice
                };
                return again(StatusCode::CONFLICT, notice, form.fields);
            }
            show_article(&state, &session, &id, StatusCode::CONFLICT, Some(notice)).await
        }
        Err(
            err @ (KbError::Store(_)
            | KbError::Index(_)
            | KbError::Projection(_)
            | KbError::Decode(_)
            | KbError::Fixtures(_)
            | KbError::Article(knowledge_base::article::ArticleError::NotFound)),
        ) => failure_page(Layout::new(&state, &session, "知识库文章"), kb_failure(err)),
        Err(err) => {
            let (status, notice) = refusal(kb_failure(err));
            if editing {
                return again(status, notice, form.fields);
            }
            show_article(&state, &session, &id, status, Some(notice)).await
        }
    }
}

/// One gap.
pub struct GapRow {
    question: String,
    count: u64,
    first_at: String,
    last_at: String,
    last_reply: String,
    last_case_id: String,
}

/// 知识库缺口.
#[derive(Template)]
#[template(path = "kb_gaps.html")]
struct GapsPage {
    layout: Layout,
    gaps: Vec<GapRow>,
    total: usize,
    page: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// `?page=`.
#[derive(Deserialize)]
pub struct GapsQuery {
    /// Text, so that a mistyped page reads as the first rather than failing.
    page: Option<String>,
}

/// `GET /kb/gaps`: for editors.
pub async fn gaps(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<GapsQuery>,
) -> Response {
    let gaps = match state.kb_gaps(&session.user) {
        Ok(gaps) => gaps,
        Err(failure) => {
            return failure_page(Layout::new(&state, &session, "知识库缺口"), failure);
        }
    };
    let total = gaps.len();
    let pages = total.div_ceil(LIST_PER_PAGE).max(1);
    let page = query
        .page
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let rows = gaps
        .into_iter()
        .skip((page - 1) * LIST_PER_PAGE)
        .take(LIST_PER_PAGE)
        .map(|g| GapRow {
            question: g.question,
            count: g.count,
            first_at: zh_time(g.first_at),
            last_at: zh_time(g.last_at),
            last_reply: g.last_reply,
            last_case_id: g.last_case_id,
        })
        .collect();
    render(
        StatusCode::OK,
        &GapsPage {
            layout: Layout::new(&state, &session, "知识库缺口"),
            gaps: rows,
            total,
            page,
            prev: (page > 1).then(|| format!("/kb/gaps?page={}", page - 1)),
            next: (page < pages).then(|| format!("/kb/gaps?page={}", page + 1)),
        },
    )
}

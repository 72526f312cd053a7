//! 知识库: search and as-you-type suggestions for operators, article editing for shift
//! leaders, admins and the handlers of the owning unit.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use knowledge_base::article::{ArticleCommand, ArticleContent};
use knowledge_base::index::SearchPage;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiQuery, Caller, CommandHeaders, paging};
use super::{AppState, ts};
use crate::app::views::{KbSearch, check_kb_query, kb_failure, kb_index_ready};
use crate::kb::{ArticleView, Kb, KbError, Written};

/// Results per search page unless asked.
const PER_PAGE: u32 = 10;
/// Most results per search page.
const MAX_PER_PAGE: u32 = 50;
/// Suggestions unless asked.
const SUGGESTIONS: usize = 5;
/// Most suggestions.
const MAX_SUGGESTIONS: usize = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(suggest))
        .routes(routes!(create_article, list_articles))
        .routes(routes!(get_article, update_article))
        .routes(routes!(publish_article))
        .routes(routes!(retire_article))
        .routes(routes!(list_gaps))
}

fn kb_error(err: KbError) -> ApiError {
    kb_failure(err)
}

/// Search conditions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// What the citizen asks, as typed or said (e.g. 社保卡丢了怎么办).
    q: String,
    /// Only this category (e.g. 社会保障).
    category: Option<String>,
    /// Only articles owned by this unit (e.g. `city.bureau.hrss`).
    unit_id: Option<String>,
    /// Page number, 1 to 10000 (default 1), its first result within the first 1,000.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Results per page, 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    per_page: Option<u32>,
    /// Wait (up to 5 s) until the index has applied this global position.
    min_position: Option<u64>,
}

/// Suggestion conditions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SuggestQuery {
    /// The text typed so far.
    q: String,
    /// How many, 1 to 10 (default 5).
    #[param(minimum = 1, maximum = 10)]
    limit: Option<usize>,
}

/// One article found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    id: String,
    title: String,
    /// The best matching passage, HTML-escaped, matches in `<em>`.
    snippet: String,
    /// Relevance within this query.
    score: f32,
    category: String,
    unit_id: String,
}

/// A page of results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// How many articles match in all.
    total: usize,
    results: Vec<SearchResult>,
}

impl From<SearchPage> for SearchResponse {
    fn from(page: SearchPage) -> Self {
        SearchResponse {
            total: page.total,
            results: page
                .hits
                .into_iter()
                .map(|hit| SearchResult {
                    id: hit.id,
                    title: hit.title,
                    snippet: hit.snippet,
                    score: hit.score,
                    category: hit.category,
                    unit_id: hit.unit_id,
                })
                .collect(),
        }
    }
}

async fn index_ready(kb: &Kb) -> Result<(), ApiError> {
    kb_index_ready(kb).await
}

fn check_query(q: &str) -> Result<(), ApiError> {
    check_kb_query(q)
}

/// Published, currently valid articles answering a question.
#[utoipa::path(get, path = "/api/v1/kb/search", tag = "kb", params(SearchQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn search(
    State(app): State<AppState>,
    Caller(_user): Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResponse>, ApiError> {
    check_query(&q.q)?;
    let (page, per_page) = paging(q.page, q.per_page, PER_PAGE, MAX_PER_PAGE)?;
    let search = KbSearch {
        text: q.q,
        category: q.category,
        unit_id: q.unit_id,
        page,
        per_page,
        min_position: q.min_position,
    };
    let found = app.kb_search(search).await?;
    Ok(Json(found.into()))
}

/// Suggestions while the operator types (same shape as search, top few).
#[utoipa::path(get, path = "/api/v1/kb/suggest", tag = "kb", params(SuggestQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn suggest(
    State(kb): State<Arc<Kb>>,
    Caller(_user): Caller,
    ApiQuery(q): ApiQuery<SuggestQuery>,
) -> Result<Json<SearchResponse>, ApiError> {
    check_query(&q.q)?;
    let limit = q.limit.unwrap_or(SUGGESTIONS);
    if !(1..=MAX_SUGGESTIONS).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_paging",
            format!("`limit` must be 1 to {MAX_SUGGESTIONS}"),
        ));
    }
    index_ready(&kb).await?;
    let found = kb.suggest(&q.q, limit).map_err(kb_error)?;
    Ok(Json(found.into()))
}

/// Paging of the knowledge-gap list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GapQuery {
    /// Page number, 1 to 10000 (default 1).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Gaps per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<u32>,
}

/// One knowledge gap (知识库缺口).
#[derive(Debug, Serialize, ToSchema)]
pub struct GapView {
    /// What callers asked that the base could not answer (as first recorded).
    question: String,
    /// How many on-call answers recorded it.
    count: u64,
    /// First and last time it was met (RFC 3339, Asia/Shanghai).
    first_at: String,
    last_at: String,
    /// The reply the operator gave the last time.
    last_reply: String,
    /// The case of the last time.
    last_case_id: String,
}

/// The knowledge gaps, the most often met first.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapList {
    /// How many distinct gaps there are.
    total: usize,
    gaps: Vec<GapView>,
}

/// The page of an editors' list: `page` 1 to 10000 (default 1), `per_page` 1 to 200
/// (default 50).
fn editors_page(page: Option<u32>, per_page: Option<u32>) -> Result<(usize, usize), ApiError> {
    let (page, per_page) = paging(page, per_page, 50, 200)?;
    Ok((page as usize, per_page as usize))
}

/// 知识库缺口: the questions on-call answers found no article for, with how often each was met,
/// for knowledge-base editors (shift leaders, admins, handlers).
#[utoipa::path(get, path = "/api/v1/kb/gaps", tag = "kb", params(GapQuery),
    responses((status = 200, body = GapList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_gaps(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<GapQuery>,
) -> Result<Json<GapList>, ApiError> {
    let gaps = app.kb_gaps(&user)?;
    let (page, per_page) = editors_page(q.page, q.per_page)?;
    let total = gaps.len();
    let gaps = gaps
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|g| GapView {
            question: g.question,
            count: g.count,
            first_at: ts(g.first_at),
            last_at: ts(g.last_at),
            last_reply: g.last_reply,
            last_case_id: g.last_case_id,
        })
        .collect();
    Ok(Json(GapList { total, gaps }))
}

/// An article as written by an editor. Times are RFC 3339 with offset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleBody {
    /// For a new article: its id (ASCII letters, digits, `-`, `_`, `.`); generated if absent.
    #[serde(default)]
    id: Option<String>,
    title: String,
    body: String,
    /// 相似问法.
    #[serde(default)]
    similar_questions: Vec<String>,
    category: String,
    #[serde(default)]
    tags: Vec<String>,
    /// The owning unit.
    unit_id: String,
    /// 政策依据.
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
}

fn parse_time(name: &str, text: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_field",
                    format!("`{name}` must be an RFC 3339 time such as 2026-01-01T00:00:00+08:00"),
                )
            })
    })
    .transpose()
}

impl ArticleBody {
    fn into_content(self) -> Result<(Option<String>, ArticleContent), ApiError> {
        let content = ArticleContent {
            valid_from: parse_time("valid_from", self.valid_from)?,
            valid_until: parse_time("valid_until", self.valid_until)?,
            title: self.title,
            body: self.body,
            similar_questions: self.similar_questions,
            category: self.category,
            tags: self.tags,
            unit_id: self.unit_id,
            source: self.source,
        };
        Ok((self.id, content))
    }
}

/// Why an article is retired.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireBody {
    /// 下线原因.
    reason: String,
}

/// An article and its life cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleResponse {
    id: String,
    title: String,
    body: String,
    similar_questions: Vec<String>,
    category: String,
    tags: Vec<String>,
    unit_id: String,
    source: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    /// draft, published, retired.
    status: String,
    /// 草稿, 已发布, 已下线.
    status_label: String,
    /// Content version (1 when drafted, one more per edit).
    version: u32,
    updated_at: String,
    /// Stream version: send it as `If-Match`.
    stream_version: u64,
    /// How many calls it answered (即办件 citing it).
    answer_count: u64,
    /// For commands: the global position of the last event written.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
}

fn response(view: ArticleView, position: Option<u64>) -> ArticleResponse {
    let a = view.article;
    let status = a.status.code().to_owned();
    ArticleResponse {
        status_label: a.status.label().to_owned(),
        status,
        version: a.version,
        updated_at: ts(a.updated_at),
        valid_from: a.content.valid_from.map(ts),
        valid_until: a.content.valid_until.map(ts),
        id: a.id,
        title: a.content.title,
        body: a.content.body,
        similar_questions: a.content.similar_questions,
        category: a.content.category,
        tags: a.content.tags,
        unit_id: a.content.unit_id,
        source: a.content.source,
        stream_version: view.stream_version,
        answer_count: view.answer_count,
        position,
    }
}

fn written(kb: &Kb, w: Written) -> ArticleResponse {
    let answer_count = kb.answer_count(&w.article.id);
    response(
        ArticleView {
            article: w.article,
            stream_version: w.stream_version,
            answer_count,
        },
        Some(w.position),
    )
}

/// Conditions of the editors' article list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ArticleListQuery {
    /// Only articles in this state: draft, published or retired.
    status: Option<String>,
    /// Only articles owned by this unit.
    unit_id: Option<String>,
    /// Page number, 1 to 10000 (default 1).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Articles per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<u32>,
}

/// One article in the editors' list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleSummary {
    id: String,
    title: String,
    /// draft, published, retired.
    status: String,
    /// 草稿, 已发布, 已下线.
    status_label: String,
    category: String,
    unit_id: String,
    valid_from: Option<String>,
    valid_until: Option<String>,
    /// Content version.
    version: u32,
    updated_at: String,
    /// Send it as `If-Match` when editing.
    stream_version: u64,
    /// How many calls it answered.
    answer_count: u64,
}

/// A page of the editors' article list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleList {
    /// How many articles match in all.
    total: usize,
    articles: Vec<ArticleSummary>,
}

/// Articles in every state, for editors (shift leaders and admins see all; handlers their
/// own unit's), the most recently changed first.
#[utoipa::path(get, path = "/api/v1/kb/articles", tag = "kb", params(ArticleListQuery),
    responses((status = 200, body = ArticleList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_articles(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<ArticleListQuery>,
) -> Result<Json<ArticleList>, ApiError> {
    let matching = app
        .kb_articles(&user, q.status.as_deref(), q.unit_id.as_deref())
        .await?;
    let (page, per_page) = editors_page(q.page, q.per_page)?;
    let total = matching.len();
    let articles = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|view| {
            let a = view.article;
            ArticleSummary {
                status_label: a.status.label().to_owned(),
                status: a.status.code().to_owned(),
                valid_from: a.content.valid_from.map(ts),
                valid_until: a.content.valid_until.map(ts),
                version: a.version,
                updated_at: ts(a.updated_at),
                id: a.id,
                title: a.content.title,
                category: a.content.category,
                unit_id: a.content.unit_id,
                stream_version: view.stream_version,
                answer_count: view.answer_count,
            }
        })
        .collect();
    Ok(Json(ArticleList { total, articles }))
}

/// Writes a new article (a draft).
#[utoipa::path(post, path = "/api/v1/kb/articles", tag = "kb", request_body = ArticleBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create safe; without an `id`, the article's id derives from the key", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 201, body = ArticleResponse), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_article(
    State(kb): State<Arc<Kb>>,
    Caller(user): Caller,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<ArticleBody>,
) -> Result<(StatusCode, Json<ArticleResponse>), ApiError> {
    let (id, content) = body.into_content()?;
    let key = headers.idempotency_key.as_deref();
    // A retried create without an id must name the same article: derive it from the key.
    let id = id.unwrap_or_else(|| match key {
        Some(key) => Kb::id_for_key(key, &user.username),
        None => Kb::new_id(),
    });
    let w = kb.create(&user, id, content, key).await.map_err(kb_error)?;
    Ok((StatusCode::CREATED, Json(written(&kb, w))))
}

/// An article, whatever its status, with its answer count.
#[utoipa::path(get, path = "/api/v1/kb/articles/{id}", tag = "kb",
    params(("id" = String, Path, description = "文章编号")),
    responses((status = 200, body = ArticleResponse), (status = 404, body = Problem)))]
async fn get_article(
    State(kb): State<Arc<Kb>>,
    Caller(_user): Caller,
    Path(id): Path<String>,
) -> Result<Json<ArticleResponse>, ApiError> {
    let view = kb.article(&id).await.map_err(kb_error)?;
    Ok(Json(response(view, None)))
}

/// Replaces an article's content (a new version).
#[utoipa::path(put, path = "/api/v1/kb/articles/{id}", tag = "kb", request_body = ArticleBody,
    params(("id" = String, Path, description = "文章编号"), ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"), ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 200, body = ArticleResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_article(
    State(kb): State<Arc<Kb>>,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<ArticleBody>,
) -> Result<Json<ArticleResponse>, ApiError> {
    let (_, content) = body.into_content()?;
    let w = kb
        .execute(
            &user,
            &id,
            ArticleCommand::Edit { content },
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await
        .map_err(kb_error)?;
    Ok(Json(written(&kb, w)))
}

/// Publishes an article: it becomes an answer while valid.
#[utoipa::path(post, path = "/api/v1/kb/articles/{id}/publish", tag = "kb",
    params(("id" = String, Path, description = "文章编号"), ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"), ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 200, body = ArticleResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn publish_article(
    State(kb): State<Arc<Kb>>,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Result<Json<ArticleResponse>, ApiError> {
    let w = kb
        .execute(
            &user,
            &id,
            ArticleCommand::Publish,
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await
        .map_err(kb_error)?;
    Ok(Json(written(&kb, w)))
}

/// Retires an article for good: it is never an answer again.
#[utoipa::path(post, path = "/api/v1/kb/articles/{id}/retire", tag = "kb", request_body = RetireBody,
    params(("id" = String, Path, description = "文章编号"), ("If-Match" = Option<u64>, Header, description = "expected stream version; 409 when stale"), ("Idempotency-Key" = Option<String>, Header, description = "makes a retried command safe", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    responses((status = 200, body = ArticleResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn retire_article(
    State(kb): State<Arc<Kb>>,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    ApiJson(body): ApiJson<RetireBody>,
) -> Result<Json<ArticleResponse>, ApiError> {
    let command = ArticleCommand::Retire {
        reason: body.reason,
    };
    let w = kb
        .execute(
            &user,
            &id,
            command,
            headers.if_match,
            headers.idempotency_key.as_deref(),
        )
        .await
        .map_err(kb_error)?;
    Ok(Json(written(&kb, w)))
}

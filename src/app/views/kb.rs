//! 知识库 views the API (`/api/v1/kb/…`) and the workbench's pages share: search bounded and
//! answered only from an index that has caught up, the knowledge gaps and the editors' list for
//! those who write articles, an article with what its reader may do with it now, and the one
//! mapping of the knowledge base's errors to [`Failure`].

use std::time::Duration;

use domain::roles::Role;
use knowledge_base::article::{self, ArticleCommand, ArticleError};
use knowledge_base::index::{SearchPage, SearchRequest};
use knowledge_base::projection::Gap;

use super::INDEX_READY_WAIT;
use crate::app::AppState;
use crate::app::failure::Failure;
use crate::directory::User;
use crate::kb::{ArticleView, Kb, KbError};

/// Results a search pages through at most.
pub const KB_MAX_RESULTS: usize = 1_000;
/// Longest query text, in characters.
pub const KB_MAX_QUERY_CHARS: usize = 500;

/// Who sees the knowledge gaps and the editors' article list: those who write articles
/// ([`Kb::may_edit`] lets shift leaders and admins edit every article, handlers their unit's).
pub const KB_EDITORS: &[Role] = &[Role::ShiftLeader, Role::Admin, Role::Handler];

/// A knowledge-base failure as every edge shows it.
pub fn kb_failure(err: KbError) -> Failure {
    match err {
        KbError::Forbidden => Failure::Forbidden {
            code: "kb_forbidden",
            title: "只有值班长、管理员和责任单位的办理人员可以编辑该文章",
            detail: err.to_string(),
        },
        KbError::UnknownUnit(_) => Failure::Rule {
            code: "kb_unknown_unit",
            title: "责任单位不存在",
            detail: err.to_string(),
        },
        KbError::Article(ArticleError::NotFound) => {
            Failure::NotFound("no such knowledge-base article".into())
        }
        KbError::Article(e) => Failure::Rule {
            code: e.code(),
            title: e.title(),
            detail: e.to_string(),
        },
        KbError::ForbiddenCharacter { .. } => Failure::Rule {
            code: "forbidden_character",
            title: "内容含有不允许的控制字符",
            detail: err.to_string(),
        },
        e @ KbError::Conflict { .. } => Failure::ArticleConflict(e.to_string()),
        e @ KbError::KeyReused => Failure::Rule {
            code: "idempotency_key_reused",
            title: "幂等键已用于其他请求",
            detail: e.to_string(),
        },
        KbError::Store(e) if e.is_storage_unavailable() => Failure::StorageUnavailable(e.into()),
        e @ (KbError::Store(_)
        | KbError::Index(_)
        | KbError::Projection(_)
        | KbError::Decode(_)
        | KbError::Fixtures(_)) => Failure::Internal(e.into()),
    }
}

/// `400 query_too_long` for a query text longer than [`KB_MAX_QUERY_CHARS`].
///
/// # Errors
/// As said.
pub fn check_kb_query(text: &str) -> Result<(), Failure> {
    if text.chars().count() > KB_MAX_QUERY_CHARS {
        return Err(Failure::bad_request(
            "query_too_long",
            format!("`q` must be at most {KB_MAX_QUERY_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A 503 while the index catches up after a start: until then it may lack articles or still
/// hold retired ones, and an operator must not read such an answer to a citizen.
///
/// # Errors
/// [`Failure::Unavailable`].
pub async fn kb_index_ready(kb: &Kb) -> Result<(), Failure> {
    if kb.ready_within(INDEX_READY_WAIT).await {
        return Ok(());
    }
    let status = kb.status();
    Err(Failure::Unavailable(format!(
        "the knowledge-base index is catching up with the event store (position {} of {})",
        status.applied, status.start_head
    )))
}

/// What a search asks: the text, its filters and its page (already within `paging`'s bounds).
#[derive(Debug, Clone, Default)]
pub struct KbSearch {
    /// The words.
    pub text: String,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles of this unit.
    pub unit_id: Option<String>,
    /// 1-based page.
    pub page: u32,
    /// Results per page.
    pub per_page: u32,
    /// Wait until the index has applied this position.
    pub min_position: Option<u64>,
}

/// An article for its reader, with what they may do with it now.
#[derive(Debug, Clone)]
pub struct ArticleDetail {
    /// The article.
    pub view: ArticleView,
    /// The reader may change it (its unit's editor, a shift leader, an admin).
    pub may_edit: bool,
    /// Of `edit`, `publish`, `retire`: what the reader may do now (rights and life cycle).
    pub actions: Vec<&'static str>,
}

impl AppState {
    /// Published, currently valid articles answering `search`, best first.
    ///
    /// # Errors
    /// 400 for a long text or a page beyond [`KB_MAX_RESULTS`]; 503 while the index catches
    /// up or behind `min_position`; index failures.
    pub async fn kb_search(&self, search: KbSearch) -> Result<SearchPage, Failure> {
        check_kb_query(&search.text)?;
        kb_index_ready(&self.kb).await?;
        if let Some(position) = search.min_position
            && !self.kb.wait_for(position, Duration::from_secs(5)).await
        {
            return Err(Failure::Unavailable(format!(
                "search index has not reached position {position}"
            )));
        }
        let (page, per_page) = (search.page.max(1) as usize, search.per_page as usize);
        if (page - 1).saturating_mul(per_page) >= KB_MAX_RESULTS {
            // The index reserves room for every result before the page: a page far out would
            // ask it for more memory than the machine has.
            return Err(Failure::bad_request(
                "invalid_paging",
                format!("`page` must stay within the first {KB_MAX_RESULTS} results"),
            ));
        }
        let request = SearchRequest {
            text: search.text,
            category: search.category,
            unit_id: search.unit_id,
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        };
        self.kb.search(&request).map_err(kb_failure)
    }

    /// 知识库缺口: every gap on-call answers recorded, the most often met first, for the
    /// editors ([`KB_EDITORS`]).
    ///
    /// # Errors
    /// 403 `role_not_allowed` for anyone else.
    pub fn kb_gaps(&self, user: &User) -> Result<Vec<Gap>, Failure> {
        if !is_kb_editor(user) {
            return Err(Failure::role_not_allowed(
                "当前角色无权查看知识库缺口",
                "knowledge gaps are for `shift_leader`, `admin` and `handler`",
                KB_EDITORS,
            ));
        }
        Ok(self.kb.gaps())
    }

    /// The editors' list: articles in every state (`status` draft, published or retired, if
    /// given; of `unit_id`, if given), the most recently changed first; shift leaders and
    /// admins see all, handlers their own unit's.
    ///
    /// # Errors
    /// 403 for anyone but an editor; 400 for an unknown status; store failures.
    pub async fn kb_articles(
        &self,
        user: &User,
        status: Option<&str>,
        unit_id: Option<&str>,
    ) -> Result<Vec<ArticleView>, Failure> {
        if !is_kb_editor(user) {
            return Err(Failure::role_not_allowed(
                "只有知识库编辑人员可以查看文章列表",
                "the article list is for `shift_leader`, `admin` and `handler`",
                KB_EDITORS,
            ));
        }
        if let Some(other) = status.filter(|s| !matches!(*s, "draft" | "published" | "retired")) {
            return Err(Failure::bad_request(
                "invalid_query",
                format!("`status` must be draft, published or retired, got `{other}`"),
            ));
        }
        let all_units = user
            .roles
            .iter()
            .any(|r| matches!(r, Role::ShiftLeader | Role::Admin));
        let own_unit = user.unit_id.as_str();
        Ok(self
            .kb
            .articles()
            .await
            .map_err(kb_failure)?
            .into_iter()
            .filter(|view| {
                let a = &view.article;
                (all_units || a.content.unit_id == own_unit)
                    && status.is_none_or(|s| s == a.status.code())
                    && unit_id.is_none_or(|u| u == a.content.unit_id)
            })
            .collect())
    }

    /// An article for `user`, whatever its state, with what they may do with it now: the
    /// knowledge base's rights and its life cycle (both `article::decide`, asked
    /// with the article's own content and a placeholder reason).
    ///
    /// # Errors
    /// 404 for no such article; store failures.
    pub async fn kb_article(&self, user: &User, id: &str) -> Result<ArticleDetail, Failure> {
        let view = self.kb.article(id).await.map_err(kb_failure)?;
        let a = &view.article;
        let may_edit = Kb::may_edit(user, &a.content.unit_id);
        let now = self.now();
        let editor = Kb::editor(user);
        // The unit an edit would give is the article's own, which exists.
        let allowed = |command: ArticleCommand| {
            article::decide(Some(a), &command, now, &editor, &|_| true).is_ok()
        };
        let mut actions = Vec::new();
        if may_edit {
            let edit = ArticleCommand::Edit {
                content: a.content.clone(),
            };
            let retire = ArticleCommand::Retire {
                reason: "下线".to_owned(),
            };
            for (verb, command) in [
                ("edit", edit),
                ("publish", ArticleCommand::Publish),
                ("retire", retire),
            ] {
                if allowed(command) {
                    actions.push(verb);
                }
            }
        }
        Ok(ArticleDetail {
            view,
            may_edit,
            actions,
        })
    }
}

/// Whether `user` writes articles (and so reads the gaps and the editors' list).
pub fn is_kb_editor(user: &User) -> bool {
    user.roles.iter().any(|r| KB_EDITORS.contains(r))
}

//! 知识库文章 — articles, their commands and events, and the pure `decide`/`evolve` pair.
//!
//! An article's history is the stream `kb-{id}`. Rights (who may edit which article) are the
//! service's business; the rules here are about the article itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stream name of an article's events.
pub fn stream_name(article_id: &str) -> String {
    format!("kb-{article_id}")
}

/// The prefix of every article stream.
pub const STREAM_PREFIX: &str = "kb-";

/// Longest accepted title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest accepted body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

/// Where an article is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 草稿 — not shown to operators.
    Draft,
    /// 已发布 — an answer while it is valid.
    Published,
    /// 已下线 — never an answer again.
    Retired,
}

impl Status {
    /// Its wire code, as serde writes it: `draft`, `published`, `retired`.
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Retired => "retired",
        }
    }

    /// The label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Status::Draft => "草稿",
            Status::Published => "已发布",
            Status::Retired => "已下线",
        }
    }
}

/// What an editor writes: everything of an article but its id, status and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleContent {
    /// 标题.
    pub title: String,
    /// 正文: the answer an operator reads out.
    pub body: String,
    /// 相似问法: how citizens ask for this article.
    #[serde(default)]
    pub similar_questions: Vec<String>,
    /// 分类, e.g. `社会保障`.
    pub category: String,
    /// 标签.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The unit that owns the policy (an id of the org tree, e.g. `city.bureau.hrss`).
    pub unit_id: String,
    /// 政策依据: the document the answer rests on.
    #[serde(default)]
    pub source: Option<String>,
    /// From when the answer holds (none: since ever).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Until when the answer holds, exclusive (none: until retired).
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
}

impl ArticleContent {
    /// Whether the answer holds at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|from| from <= now)
            && self.valid_until.is_none_or(|until| now < until)
    }

    fn check(&self) -> Result<(), ArticleError> {
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            return Err(ArticleError::InvalidTitle);
        }
        let body = self.body.trim();
        if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return Err(ArticleError::InvalidBody);
        }
        if self.category.trim().is_empty() {
            return Err(ArticleError::MissingCategory);
        }
        if self.unit_id.trim().is_empty() {
            return Err(ArticleError::MissingUnit);
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until <= from
        {
            return Err(ArticleError::InvalidValidity);
        }
        Ok(())
    }
}

/// An article as its events left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Its id (the stream is `kb-{id}`).
    pub id: String,
    /// The current content.
    pub content: ArticleContent,
    /// Where it is in its life cycle.
    pub status: Status,
    /// Content version: 1 when drafted, one more per edit.
    pub version: u32,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Article {
    /// Whether operators may be given it as an answer at `now`: published and valid.
    pub fn is_answer_at(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Published && self.content.is_valid_at(now)
    }
}

/// A change an editor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArticleCommand {
    /// Write a new article (a draft).
    Draft {
        /// The new article's id.
        id: String,
        /// Its content.
        content: ArticleContent,
    },
    /// Replace the content (a new version).
    Edit {
        /// The new content.
        content: ArticleContent,
    },
    /// Make it an answer.
    Publish,
    /// Take it out of service for good.
    Retire {
        /// Why (shown in the history).
        reason: String,
    },
}

/// What happened to an article: the stored contract (externally tagged, snake_case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleEvent {
    /// 起草 — an article was written.
    Drafted {
        /// Its id.
        id: String,
        /// Its content (version 1).
        content: ArticleContent,
        /// When.
        at: DateTime<Utc>,
        /// Who (login name).
        by: String,
    },
    /// 修订 — the content was replaced by a new version.
    Edited {
        /// The new content.
        content: ArticleContent,
        /// The version it became.
        version: u32,
        /// When.
        at: DateTime<Utc>,
        /// Who.
        by: String,
    },
    /// 发布 — the article became an answer.
    Published {
        /// When.
        at: DateTime<Utc>,
        /// Who.
        by: String,
    },
    /// 下线 — the article was retired.
    Retired {
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
        /// Who.
        by: String,
    },
}

impl ArticleEvent {
    /// The type name stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            ArticleEvent::Drafted { .. } => "kb_article_drafted",
            ArticleEvent::Edited { .. } => "kb_article_edited",
            ArticleEvent::Published { .. } => "kb_article_published",
            ArticleEvent::Retired { .. } => "kb_article_retired",
        }
    }

    /// Current version of the payload schema.
    pub const SCHEMA_VERSION: u32 = 1;
}

/// A broken rule of the article life cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleError {
    /// The article already exists.
    #[error("article already exists")]
    AlreadyExists,
    /// There is no such article.
    #[error("no such article")]
    NotFound,
    /// Title empty or too long.
    #[error("title must be 1 to {MAX_TITLE_CHARS} characters")]
    InvalidTitle,
    /// Body empty or too long.
    #[error("body must be 1 to {MAX_BODY_CHARS} characters")]
    InvalidBody,
    /// No category.
    #[error("category is missing")]
    MissingCategory,
    /// No owning unit.
    #[error("owning unit is missing")]
    MissingUnit,
    /// `valid_until` is not after `valid_from`.
    #[error("`valid_until` must be after `valid_from`")]
    InvalidValidity,
    /// A retired article is never changed again.
    #[error("article is retired")]
    Retired,
    /// Publishing what is already published.
    #[error("article is already published")]
    AlreadyPublished,
    /// Publishing an article whose validity has ended.
    #[error("article's validity has ended")]
    Expired,
    /// An article id must be short ASCII (letters, digits, `-`, `_`, `.`).
    #[error("article id must be 1 to 64 ASCII letters, digits, `-`, `_` or `.`")]
    InvalidId,
    /// A retirement needs a reason.
    #[error("a retirement needs a reason")]
    MissingReason,
    /// The editor may not change an article of this unit.
    #[error("only shift leaders, admins and handlers of the owning unit may edit articles")]
    NotEditor,
    /// The owning unit is not in the org tree.
    #[error("unit `{0}` does not exist")]
    UnknownUnit(String),
}

impl ArticleError {
    /// Stable snake_case code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ArticleError::AlreadyExists => "kb_article_exists",
            ArticleError::NotFound => "kb_article_not_found",
            ArticleError::InvalidTitle => "kb_invalid_title",
            ArticleError::InvalidBody => "kb_invalid_body",
            ArticleError::MissingCategory => "kb_missing_category",
            ArticleError::MissingUnit => "kb_missing_unit",
            ArticleError::InvalidValidity => "kb_invalid_validity",
            ArticleError::Retired => "kb_article_retired",
            ArticleError::AlreadyPublished => "kb_article_already_published",
            ArticleError::Expired => "kb_article_expired",
            ArticleError::InvalidId => "kb_invalid_id",
            ArticleError::MissingReason => "kb_missing_reason",
            ArticleError::NotEditor => "kb_not_editor",
            ArticleError::UnknownUnit(_) => "kb_unknown_unit",
        }
    }

    /// Chinese title for the screen.
    pub fn title(&self) -> &'static str {
        match self {
            ArticleError::AlreadyExists => "知识库文章已存在",
            ArticleError::NotFound => "知识库文章不存在",
            ArticleError::InvalidTitle => "标题不能为空且不超过200字",
            ArticleError::InvalidBody => "正文不能为空且不超过20000字",
            ArticleError::MissingCategory => "请选择分类",
            ArticleError::MissingUnit => "请填写责任单位",
            ArticleError::InvalidValidity => "失效时间必须晚于生效时间",
            ArticleError::Retired => "文章已下线，不能再修改或发布",
            ArticleError::AlreadyPublished => "文章已发布",
            ArticleError::Expired => "文章已过有效期，不能发布",
            ArticleError::InvalidId => "文章编号格式不正确",
            ArticleError::MissingReason => "下线须填写原因",
            ArticleError::NotEditor => "只有值班长、管理员和责任单位的办理人员可以编辑文章",
            ArticleError::UnknownUnit(_) => "责任单位不存在",
        }
    }

    /// Whether the error means "unknown" (404) rather than a broken rule (422) or bad input.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArticleError::NotFound)
    }
}

/// Whether `id` is an acceptable article id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Who asks for a change, with what the rights depend on (the service reads it from the
/// user's roles): shift leaders and admins edit every article, a handler those of their own
/// unit, nobody else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Editor<'a> {
    /// Who is recorded as having done it.
    pub username: &'a str,
    /// A shift leader or an administrator.
    pub any_unit: bool,
    /// A handler's unit.
    pub own_unit: Option<&'a str>,
}

impl Editor<'_> {
    /// Whether this editor may change an article of `unit_id`.
    pub fn may_edit(&self, unit_id: &str) -> bool {
        self.any_unit || self.own_unit == Some(unit_id)
    }
}

/// Checks `command` by `editor` against the article's current state; the events to record.
/// Rights come first: over the article as it is, and over the unit an edit gives it (which
/// `unit_exists` must know).
///
/// # Errors
/// The [`ArticleError`] naming the broken rule; nothing is to be recorded then.
pub fn decide(
    article: Option<&Article>,
    command: &ArticleCommand,
    now: DateTime<Utc>,
    editor: &Editor<'_>,
    unit_exists: &dyn Fn(&str) -> bool,
) -> Result<Vec<ArticleEvent>, ArticleError> {
    if let Some(current) = article
        && !editor.may_edit(&current.content.unit_id)
    {
        return Err(ArticleError::NotEditor);
    }
    if let ArticleCommand::Draft { content, .. } | ArticleCommand::Edit { content } = command {
        if !editor.may_edit(&content.unit_id) {
            return Err(ArticleError::NotEditor);
        }
        if !unit_exists(&content.unit_id) {
            return Err(ArticleError::UnknownUnit(content.unit_id.clone()));
        }
    }
    let by = editor.username.to_owned();
    match (article, command) {
        (Some(_), ArticleCommand::Draft { .. }) => Err(ArticleError::AlreadyExists),
        (None, ArticleCommand::Draft { id, content }) => {
            if !is_valid_id(id) {
                return Err(ArticleError::InvalidId);
            }
            content.check()?;
            Ok(vec![ArticleEvent::Drafted {
                id: id.clone(),
                content: content.clone(),
                at: now,
                by,
            }])
        }
        (None, _) => Err(ArticleError::NotFound),
        (Some(article), _) if article.status == Status::Retired => Err(ArticleError::Retired),
        (Some(article), ArticleCommand::Edit { content }) => {
            content.check()?;
            Ok(vec![ArticleEvent::Edited {
                content: content.clone(),
                version: article.version + 1,
                at: now,
                by,
            }])
        }
        (Some(article), ArticleCommand::Publish) => {
            if article.status == Status::Published {
                return Err(ArticleError::AlreadyPublished);
            }
            if article
                .content
                .valid_until
                .is_some_and(|until| until <= now)
            {
                return Err(ArticleError::Expired);
            }
            Ok(vec![ArticleEvent::Published { at: now, by }])
        }
        (Some(_), ArticleCommand::Retire { reason }) => {
            if reason.trim().is_empty() {
                return Err(ArticleError::MissingReason);
            }
            Ok(vec![ArticleEvent::Retired {
                reason: reason.clone(),
                at: now,
                by,
            }])
        }
    }
}

/// Applies one event; never fails (events are facts). An event out of place leaves the state
/// as it was.
pub fn evolve(article: Option<Article>, event: &ArticleEvent) -> Option<Article> {
    match (article, event) {
        (
            None,
            ArticleEvent::Drafted {
                id, content, at, ..
            },
        ) => Some(Article {
            id: id.clone(),
            content: content.clone(),
            status: Status::Draft,
            version: 1,
            updated_at: *at,
        }),
        (
            Some(mut article),
            ArticleEvent::Edited {
                content,
                version,
                at,
                ..
            },
        ) => {
            article.content = content.clone();
            article.version = *version;
            article.updated_at = *at;
            Some(article)
        }
        (Some(mut article), ArticleEvent::Published { at, .. }) => {
            article.status = Status::Published;
            article.updated_at = *at;
            Some(article)
        }
        (Some(mut article), ArticleEvent::Retired { at, .. }) => {
            article.status = Status::Retired;
            article.updated_at = *at;
            Some(article)
        }
        (article, _) => article,
    }
}

/// Folds a history into the article.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a ArticleEvent>) -> Option<Article> {
    events.into_iter().fold(None, evolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An administrator: every unit.
    const EDITOR: Editor<'static> = Editor {
        username: "x",
        any_unit: true,
        own_unit: None,
    };

    /// `command` decided for an administrator, every unit known.
    fn by_admin(
        article: Option<&Article>,
        command: &ArticleCommand,
    ) -> Result<Vec<ArticleEvent>, ArticleError> {
        decide(article, command, now(), &EDITOR, &|_| true)
    }

    fn now() -> DateTime<Utc> {
        "2026-03-02T02:00:00Z".parse().unwrap()
    }

    fn content() -> ArticleContent {
        ArticleContent {
            title: "社保卡遗失如何补办".into(),
            body: "携带身份证到任一社保卡服务网点办理挂失补办。".into(),
            similar_questions: vec!["社保卡丢了怎么办".into()],
            category: "社会保障".into(),
            tags: vec!["社保卡".into()],
            unit_id: "city.bureau.hrss".into(),
            source: None,
            valid_from: None,
            valid_until: None,
        }
    }

    fn given(commands: &[ArticleCommand]) -> Option<Article> {
        let mut article = None;
        for command in commands {
            let events = by_admin(article.as_ref(), command).unwrap();
            article = events.iter().fold(article, evolve);
        }
        article
    }

    fn drafted() -> ArticleCommand {
        ArticleCommand::Draft {
            id: "hrss-001".into(),
            content: content(),
        }
    }

    fn retire() -> ArticleCommand {
        ArticleCommand::Retire {
            reason: "政策调整".into(),
        }
    }

    #[test]
    fn only_shift_leaders_admins_and_the_owning_units_handlers_edit_and_units_must_exist() {
        let handler = |unit: &'static str| Editor {
            username: "h",
            any_unit: false,
            own_unit: Some(unit),
        };
        let article = given(&[drafted()]).unwrap();
        let edit = ArticleCommand::Edit { content: content() };
        let yes = |_: &str| true;
        assert!(
            decide(
                Some(&article),
                &edit,
                now(),
                &handler("city.bureau.hrss"),
                &yes
            )
            .is_ok()
        );
        for command in [edit.clone(), ArticleCommand::Publish, retire()] {
            assert_eq!(
                decide(
                    Some(&article),
                    &command,
                    now(),
                    &handler("city.bureau.housing"),
                    &yes
                ),
                Err(ArticleError::NotEditor)
            );
        }
        // A draft for another unit, and nobody without a role that edits.
        assert_eq!(
            decide(
                None,
                &drafted(),
                now(),
                &handler("city.bureau.housing"),
                &yes
            ),
            Err(ArticleError::NotEditor)
        );
        let nobody = Editor {
            username: "o",
            any_unit: false,
            own_unit: None,
        };
        assert_eq!(
            decide(None, &drafted(), now(), &nobody, &yes),
            Err(ArticleError::NotEditor)
        );
        // An edit may not give the article to a unit that does not exist.
        assert_eq!(
            decide(Some(&article), &edit, now(), &EDITOR, &|_| false),
            Err(ArticleError::UnknownUnit("city.bureau.hrss".into()))
        );
    }

    #[test]
    fn a_drafted_article_is_a_draft_at_version_one() {
        let article = given(&[drafted()]).unwrap();
        assert_eq!(article.status, Status::Draft);
        assert_eq!(article.version, 1);
    }

    #[test]
    fn publishing_then_editing_keeps_it_published_at_a_new_version() {
        let article = given(&[
            drafted(),
            ArticleCommand::Publish,
            ArticleCommand::Edit { content: content() },
        ])
        .unwrap();
        assert_eq!(article.status, Status::Published);
        assert_eq!(article.version, 2);
        assert!(article.is_answer_at(now()));
    }

    #[test]
    fn drafting_an_existing_article_is_refused() {
        let article = given(&[drafted()]);
        assert_eq!(
            by_admin(article.as_ref(), &drafted()),
            Err(ArticleError::AlreadyExists)
        );
    }

    #[test]
    fn changing_an_unknown_article_is_refused() {
        assert_eq!(
            by_admin(None, &ArticleCommand::Publish),
            Err(ArticleError::NotFound)
        );
    }

    #[test]
    fn publishing_a_retired_article_is_refused() {
        let article = given(&[drafted(), ArticleCommand::Publish, retire()]);
        assert_eq!(
            by_admin(article.as_ref(), &ArticleCommand::Publish),
            Err(ArticleError::Retired)
        );
    }

    #[test]
    fn editing_a_retired_article_is_refused() {
        let article = given(&[drafted(), retire()]);
        let edit = ArticleCommand::Edit { content: content() };
        assert_eq!(
            by_admin(article.as_ref(), &edit),
            Err(ArticleError::Retired)
        );
    }

    #[test]
    fn retiring_twice_is_refused() {
        let article = given(&[drafted(), retire()]);
        assert_eq!(
            by_admin(article.as_ref(), &retire()),
            Err(ArticleError::Retired)
        );
    }

    #[test]
    fn publishing_twice_is_refused() {
        let article = given(&[drafted(), ArticleCommand::Publish]);
        assert_eq!(
            by_admin(article.as_ref(), &ArticleCommand::Publish),
            Err(ArticleError::AlreadyPublished)
        );
    }

    #[test]
    fn publishing_an_expired_article_is_refused() {
        let mut expired = content();
        expired.valid_until = Some("2026-01-01T00:00:00Z".parse().unwrap());
        let article = given(&[ArticleCommand::Draft {
            id: "old".into(),
            content: expired,
        }]);
        assert_eq!(
            by_admin(article.as_ref(), &ArticleCommand::Publish),
            Err(ArticleError::Expired)
        );
    }

    #[test]
    fn a_retirement_without_reason_is_refused() {
        let article = given(&[drafted()]);
        let retire = ArticleCommand::Retire { reason: " ".into() };
        assert_eq!(
            by_admin(article.as_ref(), &retire),
            Err(ArticleError::MissingReason)
        );
    }

    #[test]
    fn invalid_content_is_refused() {
        let mut no_title = content();
        no_title.title = "  ".into();
        let mut no_body = content();
        no_body.body = String::new();
        let mut no_category = content();
        no_category.category = String::new();
        let mut no_unit = content();
        no_unit.unit_id = String::new();
        let mut backwards = content();
        backwards.valid_from = Some(now());
        backwards.valid_until = Some(now());
        for (content, err) in [
            (no_title, ArticleError::InvalidTitle),
            (no_body, ArticleError::InvalidBody),
            (no_category, ArticleError::MissingCategory),
            (no_unit, ArticleError::MissingUnit),
            (backwards, ArticleError::InvalidValidity),
        ] {
            let draft = ArticleCommand::Draft {
                id: "a".into(),
                content,
            };
            assert_eq!(by_admin(None, &draft), Err(err));
        }
    }

    #[test]
    fn an_id_with_spaces_or_slashes_is_refused() {
        for id in ["", "a b", "a/b", &"x".repeat(65)] {
            let draft = ArticleCommand::Draft {
                id: id.into(),
                content: content(),
            };
            assert_eq!(by_admin(None, &draft), Err(ArticleError::InvalidId));
        }
    }

    #[test]
    fn events_are_stored_externally_tagged_in_snake_case() {
        let event = ArticleEvent::Published {
            at: now(),
            by: "tester".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"published": {"at": "2026-03-02T02:00:00Z", "by": "tester"}})
        );
    }

    #[test]
    fn an_article_outside_its_validity_is_not_an_answer() {
        let mut later = content();
        later.valid_from = Some("2027-01-01T00:00:00Z".parse().unwrap());
        let article = given(&[
            ArticleCommand::Draft {
                id: "later".into(),
                content: later,
            },
            ArticleCommand::Publish,
        ])
        .unwrap();
        assert!(!article.is_answer_at(now()));
    }
}

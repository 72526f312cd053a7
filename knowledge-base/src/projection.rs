//! The index as a projection of the event log: article events put articles in or out of the
//! index, case answers count citations, and the checkpoint (the last global position applied)
//! and the counts are committed in the index's own commit payload, so after a crash the index
//! and its checkpoint always agree.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::article::{Article, ArticleEvent};
use crate::index::{IndexError, KbIndex, SCHEMA_VERSION};

/// The type name of the case event that cites articles.
pub const ANSWERED_ON_CALL: &str = "answered_on_call";

/// What is committed with the index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    /// The last global position applied.
    checkpoint: u64,
    /// Article id → number of calls it answered.
    answers: BTreeMap<String, u64>,
    /// [`SCHEMA_VERSION`] when committed.
    #[serde(default)]
    schema_version: u32,
    /// 知识库缺口 by [`gap_key`] of their question.
    #[serde(default)]
    gaps: BTreeMap<String, Gap>,
}

/// A knowledge gap (知识库缺口): a question the base could not answer on the call, and how often
/// callers met it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The question as first recorded.
    pub question: String,
    /// How many on-call answers recorded it.
    pub count: u64,
    /// When it was first met.
    pub first_at: DateTime<Utc>,
    /// When it was last met.
    pub last_at: DateTime<Utc>,
    /// The reply given the last time.
    pub last_reply: String,
    /// The case of the last time (its number).
    pub last_case_id: String,
}

/// What a gap is counted under: its question without white space, case or final
/// punctuation, so `医保 怎么办？` and `医保怎么办` are one gap.
pub fn gap_key(question: &str) -> String {
    question
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .trim_end_matches(['?', '？', '。', '.', '!', '！', '，', ','])
        .to_owned()
}

/// An on-call answer as the projection reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRead {
    /// The articles cited.
    pub article_ids: Vec<String>,
    /// The gap recorded instead, if any.
    pub knowledge_gap: Option<String>,
    /// The reply given.
    pub reply: String,
}

#[derive(Debug, Default)]
struct State {
    payload: Payload,
    /// The checkpoint of the last commit.
    committed: u64,
    /// Whether something other than the checkpoint changed since the last commit.
    dirty: bool,
    /// Articles put in or taken out of the index since the last commit.
    unpublished: usize,
}

/// Why the projection failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The commit payload is not ours.
    #[error("search index commit payload does not parse: {0}")]
    Payload(#[from] serde_json::Error),
    /// The state lock was poisoned by a panic.
    #[error("knowledge-base projection is poisoned")]
    Poisoned,
}

/// The knowledge-base projection: the index, the answer counts, the checkpoint.
#[derive(Debug)]
pub struct Projection {
    index: KbIndex,
    state: Mutex<State>,
}

impl Projection {
    /// Resumes from the index's last commit.
    ///
    /// # Errors
    /// [`ProjectionError::Index`], or [`ProjectionError::Payload`] for a foreign payload.
    pub fn open(index: KbIndex) -> Result<Self, ProjectionError> {
        let payload = read_payload(&index)?;
        let committed = payload.checkpoint;
        Ok(Projection {
            index,
            state: Mutex::new(State {
                payload,
                committed,
                dirty: false,
                unpublished: 0,
            }),
        })
    }

    /// The index, for queries.
    pub fn index(&self) -> &KbIndex {
        &self.index
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, ProjectionError> {
        self.state.lock().map_err(|_| ProjectionError::Poisoned)
    }

    /// The last position applied (committed or not); resume a subscription after it.
    pub fn checkpoint(&self) -> u64 {
        self.state().map_or(0, |s| s.payload.checkpoint)
    }

    /// The last position committed.
    pub fn committed(&self) -> u64 {
        self.state().map_or(0, |s| s.committed)
    }

    /// Articles put in or taken out since the last commit: searches see them after the next.
    /// (Answer counts are read from memory and need no commit to be seen.)
    pub fn unpublished(&self) -> usize {
        self.state().map_or(0, |s| s.unpublished)
    }

    /// How many calls the article answered.
    pub fn answers(&self, article_id: &str) -> u64 {
        self.state()
            .ok()
            .and_then(|s| s.payload.answers.get(article_id).copied())
            .unwrap_or(0)
    }

    /// Applies the article's state after the event at `position`. Positions at or before the
    /// checkpoint are ignored (already applied).
    ///
    /// # Errors
    /// [`ProjectionError`] when the index fails.
    pub fn article_changed(&self, position: u64, article: &Article) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position <= state.payload.checkpoint {
            return Ok(());
        }
        self.index.upsert(article)?;
        state.payload.checkpoint = position;
        state.dirty = true;
        state.unpublished += 1;
        Ok(())
    }

    /// Counts a call answered with `article_ids` at `position`.
    ///
    /// # Errors
    /// [`ProjectionError::Poisoned`].
    pub fn answered(&self, position: u64, article_ids: &[String]) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position <= state.payload.checkpoint {
            return Ok(());
        }
        for id in article_ids {
            *state.payload.answers.entry(id.clone()).or_default() += 1;
        }
        state.payload.checkpoint = position;
        state.dirty = true;
        Ok(())
    }

    /// Counts a knowledge gap met at `position` (case `case_id`, at `at`).
    ///
    /// # Errors
    /// [`ProjectionError::Poisoned`].
    pub fn gap_met(
        &self,
        position: u64,
        question: &str,
        reply: &str,
        case_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position <= state.payload.checkpoint {
            return Ok(());
        }
        let gap = state
            .payload
            .gaps
            .entry(gap_key(question))
            .or_insert_with(|| Gap {
                question: question.to_owned(),
                count: 0,
                first_at: at,
                last_at: at,
                last_reply: String::new(),
                last_case_id: String::new(),
            });
        gap.count += 1;
        gap.last_at = gap.last_at.max(at);
        gap.last_reply = reply.to_owned();
        gap.last_case_id = case_id.to_owned();
        state.payload.checkpoint = position;
        state.dirty = true;
        Ok(())
    }

    /// Every knowledge gap, the most often met first (then the most recent).
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = self
            .state()
            .map(|s| s.payload.gaps.values().cloned().collect())
            .unwrap_or_default();
        gaps.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.last_at.cmp(&a.last_at))
                .then(a.question.cmp(&b.question))
        });
        gaps
    }

    /// Moves the checkpoint past an event of no interest.
    ///
    /// # Errors
    /// [`ProjectionError::Poisoned`].
    pub fn passed(&self, position: u64) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position > state.payload.checkpoint {
            state.payload.checkpoint = position;
        }
        Ok(())
    }

    /// Commits what was applied since the last commit, with the checkpoint, if anything was
    /// applied or the checkpoint moved by at least `min_skip` positions; returns whether it
    /// committed.
    ///
    /// # Errors
    /// [`ProjectionError`] when the commit fails.
    pub fn commit(&self, min_skip: u64) -> Result<bool, ProjectionError> {
        let mut state = self.state()?;
        let moved = state.payload.checkpoint.saturating_sub(state.committed);
        if !state.dirty && (moved == 0 || moved < min_skip) {
            return Ok(false);
        }
        state.payload.schema_version = SCHEMA_VERSION;
        let payload = serde_json::to_string(&state.payload)?;
        self.index.commit(&payload)?;
        state.committed = state.payload.checkpoint;
        state.dirty = false;
        state.unpublished = 0;
        Ok(true)
    }

    /// Drops what was applied since the last commit: the index, the counts and the checkpoint
    /// go back to what that commit holds.
    ///
    /// # Errors
    /// [`ProjectionError`] when the index fails or its payload does not parse.
    pub fn rollback(&self) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        self.index.rollback()?;
        let payload = read_payload(&self.index)?;
        state.committed = payload.checkpoint;
        state.payload = payload;
        state.dirty = false;
        state.unpublished = 0;
        Ok(())
    }

    /// Empties the index, the counts and the checkpoint (then replay everything to rebuild).
    ///
    /// # Errors
    /// [`ProjectionError`] when the index fails.
    pub fn reset(&self) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        self.index.clear()?;
        state.payload = Payload::default();
        state.dirty = true;
        drop(state);
        self.commit(0)?;
        Ok(())
    }
}

/// The payload of the index's last commit.
fn read_payload(index: &KbIndex) -> Result<Payload, ProjectionError> {
    Ok(match index.payload()? {
        Some(text) if !text.is_empty() => serde_json::from_str(&text)?,
        _ => Payload::default(),
    })
}

/// Decodes a stored article event.
///
/// # Errors
/// When `data` is not an [`ArticleEvent`].
pub fn decode_article_event(data: &str) -> Result<ArticleEvent, serde_json::Error> {
    serde_json::from_str(data)
}

/// An answer on the call: the articles it cites, or the knowledge gap it records.
pub fn read_answer(event_type: &str, data: &str) -> Option<AnswerRead> {
    if event_type != ANSWERED_ON_CALL {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let body = value.get(ANSWERED_ON_CALL).unwrap_or(&value);
    let article_ids = body
        .get("kb_article_ids")
        .and_then(|ids| ids.as_array())
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some(AnswerRead {
        article_ids,
        knowledge_gap: body
            .get("knowledge_gap")
            .and_then(|q| q.as_str())
            .map(str::to_owned),
        reply: body
            .get("reply")
            .and_then(|r| r.as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

//! The case index (工单检索): one document per case with its texts (title, content, address,
//! replies), analysed like the articles (jieba search mode, the hotline dictionary, synonyms at
//! query time), and with copies of the read model's columns the case list filters, scopes and
//! sorts by; its checkpoint and schema version are in the commit payload.
//!
//! A text query is answered here in full: the caller's scope and the structured conditions
//! restrict the matches before they are ranked, every match is counted, and only the requested
//! page of case ids comes back. So no visible match is lost behind better ones the caller may
//! not see, and no long list of ids travels to SQL; the read model loads the page's rows and
//! checks the scope again.

use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    TantivyError, Term,
};

use crate::analysis::{self, JiebaTokenizer, Segmenter, Synonyms};
use crate::index::IndexError;
use crate::projection::ProjectionError;
use crate::stored::{self, Opened};

/// Version of the schema and of what a document holds. An index committed with another is
/// replaced at open (its projection then rebuilds it from position 0). 1: the texts only;
/// 2: the texts and the case list's columns.
pub const SCHEMA_VERSION: u32 = 3;

/// Memory budget of the index writer, in bytes.
const WRITER_MEMORY: usize = 50_000_000;
/// Weights of a query word per field: the title and the content say what the case is about,
/// the address where, a reply only what was answered.
const TITLE_BOOST: f32 = 3.0;
const CONTENT_BOOST: f32 = 1.5;
const ADDRESS_BOOST: f32 = 2.0;
const REPLY_BOOST: f32 = 0.8;
/// Weight of a synonym relative to the word typed.
const SYNONYM_WEIGHT: f32 = 0.7;

/// The read model's stage codes the overdue condition needs.
const STAGE_OPEN: &str = "open";
const STAGES_COMPLETED: [&str; 3] = ["completed", "called_back", "archived"];

/// The texts of a case that are searched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CaseText {
    /// 标题.
    pub title: String,
    /// 诉求内容.
    pub content: String,
    /// 地址.
    pub address: String,
    /// Replies given (answer on the call, completion replies), oldest first.
    pub replies: Vec<String>,
}

/// What the case list filters, scopes and sorts by, as the read model holds it (the same codes
/// and units as its `case_list`, `case_scope` and `case_touch` tables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CaseFacets {
    /// Status code (`transferred`…).
    pub status: String,
    /// Stage code (`open`…).
    pub stage: String,
    /// Category code.
    pub category: Option<String>,
    /// Kind code.
    pub kind: Option<String>,
    /// Urgency code.
    pub urgency: Option<String>,
    /// District of the citizen's place.
    pub district_id: Option<String>,
    /// Who created the case.
    pub created_by: String,
    /// 受理单位.
    pub accepting_unit_id: Option<String>,
    /// Units that see the case through the tree (given it or transferring it, and all above).
    pub scope_units: Vec<String>,
    /// Units the case was given.
    pub touched_units: Vec<String>,
    /// Microseconds since the epoch; `i64::MIN` for none (sorted like SQL's NULL).
    pub created_at: i64,
    /// Earliest receive-by of a holder not yet received, microseconds; `i64::MAX` for none.
    pub receive_due: i64,
    /// Earliest complete-by of a holder, microseconds; `i64::MAX` for none.
    pub complete_due: i64,
    /// Completed after a complete-by.
    pub completed_late: bool,
}

/// One case as the index holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CaseDoc {
    /// The words searched.
    pub text: CaseText,
    /// The columns filtered, scoped and sorted by.
    pub facets: CaseFacets,
}

/// Who may see which cases, as the read model's `Scope::Limited`: what the user created, what
/// their unit accepted, and what one of `units` (or a unit below it) was given or transferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// The user's login name (`None` for a leader only).
    pub username: Option<String>,
    /// The units whose accepted cases the user sees: their own, and for leaders the units they
    /// oversee.
    pub accepting_units: Vec<String>,
    /// The user's unit (unless a leader only) and, for leaders, the units they oversee.
    pub units: Vec<String>,
}

/// Conditions of the case list, all combined with AND, each meaning what the read model's SQL
/// means by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseConditions {
    /// Status code.
    pub status: Option<String>,
    /// Overdue (`true`) or not (`false`) at the instant given (microseconds since the epoch).
    pub overdue: Option<(bool, i64)>,
    /// Category code.
    pub category: Option<String>,
    /// Kind code.
    pub kind: Option<String>,
    /// Urgency code.
    pub urgency: Option<String>,
    /// Cases given to this unit; with `true`, touched by it or a unit below it.
    pub unit: Option<(String, bool)>,
    /// District of the citizen's place.
    pub district_id: Option<String>,
    /// Created at or after (microseconds).
    pub created_from: Option<i64>,
    /// Created before (microseconds).
    pub created_to: Option<i64>,
    /// Only these cases (chosen by the read model, e.g. one caller's history).
    pub case_ids: Option<Vec<String>>,
    /// Only what this user may see; `None` for every case.
    pub visible_to: Option<Visibility>,
}

/// The order of a page of matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseOrder {
    /// Best match first.
    #[default]
    Relevance,
    /// Newest first (then by case id, descending).
    CreatedDesc,
    /// Oldest first (then by case id).
    CreatedAsc,
    /// Earliest handling deadline first, cases without one last (then by case id).
    CompleteDueAsc,
    /// Latest handling deadline first, cases without one first (then by case id, descending).
    CompleteDueDesc,
    /// By case id.
    CaseIdAsc,
}

/// A text query on the cases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// The words, as typed.
    pub text: String,
    /// What else the cases must satisfy.
    pub conditions: CaseConditions,
    /// The order.
    pub order: CaseOrder,
    /// Matches to skip.
    pub offset: usize,
    /// Matches to return.
    pub limit: usize,
}

/// A page of matching cases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseHits {
    /// Every case matching, over all pages.
    pub total: u64,
    /// The page's case ids, in order.
    pub case_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    case_id: Field,
    title: Field,
    content: Field,
    address: Field,
    reply: Field,
    status: Field,
    stage: Field,
    category: Field,
    kind: Field,
    urgency: Field,
    district: Field,
    created_by: Field,
    accepting_unit: Field,
    scope_unit: Field,
    touched_unit: Field,
    created_at: Field,
    receive_due: Field,
    complete_due: Field,
    completed_late: Field,
    /// Overdue at `now` exactly when before it (see [`overdue_at`]).
    overdue_at: Field,
}

/// Field names read as columns.
const CASE_ID: &str = "case_id";
const CREATED_AT: &str = "created_at";
const COMPLETE_DUE: &str = "complete_due";

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::JIEBA)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let instant = NumericOptions::default() | INDEXED | FAST;
    let fields = Fields {
        // A column too: ids of a page are read from it, and `case_id` sorts by it.
        case_id: builder.add_text_field(CASE_ID, STRING | FAST),
        title: builder.add_text_field("title", words.clone()),
        content: builder.add_text_field("content", words.clone()),
        address: builder.add_text_field("address", words.clone()),
        reply: builder.add_text_field("reply", words),
        status: builder.add_text_field("status", STRING),
        stage: builder.add_text_field("stage", STRING),
        category: builder.add_text_field("category", STRING),
        kind: builder.add_text_field("kind", STRING),
        urgency: builder.add_text_field("urgency", STRING),
        district: builder.add_text_field("district_id", STRING),
        created_by: builder.add_text_field("created_by", STRING),
        accepting_unit: builder.add_text_field("accepting_unit_id", STRING),
        scope_unit: builder.add_text_field("scope_unit_id", STRING),
        touched_unit: builder.add_text_field("touched_unit_id", STRING),
        created_at: builder.add_i64_field(CREATED_AT, instant.clone()),
        receive_due: builder.add_i64_field("receive_due", instant.clone()),
        complete_due: builder.add_i64_field(COMPLETE_DUE, instant),
        completed_late: builder
            .add_u64_field("completed_late", NumericOptions::default() | INDEXED),
        overdue_at: builder.add_i64_field("overdue_at", NumericOptions::default() | INDEXED),
    };
    (builder.build(), fields)
}

/// What is committed with the index.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Payload {
    /// The last global position applied.
    checkpoint: u64,
    /// [`SCHEMA_VERSION`] when committed.
    #[serde(default)]
    schema_version: u32,
}

#[derive(Debug, Default)]
struct State {
    /// The last position applied.
    checkpoint: u64,
    /// The checkpoint of the last commit.
    committed: u64,
    /// Documents replaced since the last commit.
    unpublished: usize,
}

/// The case index as a projection of the event log: documents replaced as their case changes,
/// the checkpoint committed atomically with them.
pub struct CaseIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    segmenter: Segmenter,
    synonyms: Synonyms,
    state: Mutex<State>,
    opened: Opened,
}

impl std::fmt::Debug for CaseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseIndex").finish_non_exhaustive()
    }
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// When a case becomes overdue, as the read model's `overdue_at`: the earlier deadline of an
/// open case, `i64::MIN` for one completed late (overdue for good), `i64::MAX` otherwise. One
/// range query then says "overdue at `now`", instead of a union over three fields.
fn overdue_at(facets: &CaseFacets) -> i64 {
    if facets.stage == STAGE_OPEN {
        facets.receive_due.min(facets.complete_due)
    } else if facets.completed_late && STAGES_COMPLETED.contains(&facets.stage.as_str()) {
        i64::MIN
    } else {
        i64::MAX
    }
}

fn i64_range(field: Field, lower: Bound<i64>, upper: Bound<i64>) -> Box<dyn Query> {
    let term = |v: i64| Term::from_field_i64(field, v);
    Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
}

impl CaseIndex {
    /// A new index in memory (tests).
    ///
    /// # Errors
    /// [`ProjectionError::Index`].
    pub fn create_in_ram(
        segmenter: Segmenter,
        synonyms: Synonyms,
    ) -> Result<Self, ProjectionError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        Self::wrap(index, Opened::Created, fields, segmenter, synonyms)
    }

    /// The index in `dir`, created if absent, resumed from its last commit; an index of another
    /// [`SCHEMA_VERSION`] is deleted and replaced by an empty one (see [`CaseIndex::opened`]).
    ///
    /// # Errors
    /// [`ProjectionError::Index`] when `dir` cannot be opened or the index is corrupt or
    /// locked; [`ProjectionError::Payload`] for a foreign payload.
    pub fn open_or_create(
        dir: &Path,
        segmenter: Segmenter,
        synonyms: Synonyms,
    ) -> Result<Self, ProjectionError> {
        let (schema, fields) = schema();
        let (index, opened) = stored::open_versioned(dir, schema, SCHEMA_VERSION)?;
        Self::wrap(index, opened, fields, segmenter, synonyms)
    }

    fn wrap(
        index: Index,
        opened: Opened,
        fields: Fields,
        segmenter: Segmenter,
        synonyms: Synonyms,
    ) -> Result<Self, ProjectionError> {
        index
            .tokenizers()
            .register(analysis::JIEBA, JiebaTokenizer(segmenter.clone()));
        let writer = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(IndexError::from)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::from)?;
        let payload: Payload = match index.load_metas().map_err(IndexError::from)?.payload {
            Some(text) if !text.is_empty() => serde_json::from_str(&text)?,
            _ => Payload::default(),
        };
        Ok(CaseIndex {
            reader,
            writer: Mutex::new(writer),
            fields,
            segmenter,
            synonyms,
            state: Mutex::new(State {
                checkpoint: payload.checkpoint,
                committed: payload.checkpoint,
                unpublished: 0,
            }),
            opened,
        })
    }

    /// What [`CaseIndex::open_or_create`] found.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, ProjectionError> {
        self.state.lock().map_err(|_| ProjectionError::Poisoned)
    }

    /// The last position applied (committed or not).
    pub fn checkpoint(&self) -> u64 {
        self.state().map_or(0, |s| s.checkpoint)
    }

    /// The last position committed.
    pub fn committed(&self) -> u64 {
        self.state().map_or(0, |s| s.committed)
    }

    /// Documents replaced since the last commit (searches see them after the next).
    pub fn unpublished(&self) -> usize {
        self.state().map_or(0, |s| s.unpublished)
    }

    /// Replaces the case's document with `doc` after the event at `position`. Positions at or
    /// before the checkpoint are ignored (already applied).
    ///
    /// # Errors
    /// [`ProjectionError`] when the writer fails.
    pub fn case_changed(
        &self,
        position: u64,
        case_id: &str,
        doc: &CaseDoc,
    ) -> Result<(), ProjectionError> {
        self.cases_changed(position, [(case_id, doc)])
    }

    /// Replaces the documents of `docs` (case id, document) as of the event at `position`,
    /// which becomes the checkpoint. Ignored when `position` is at or before the checkpoint
    /// (already applied).
    ///
    /// # Errors
    /// [`ProjectionError`] when the writer fails.
    pub fn cases_changed<'a>(
        &self,
        position: u64,
        docs: impl IntoIterator<Item = (&'a str, &'a CaseDoc)>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position <= state.checkpoint {
            return Ok(());
        }
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        for (case_id, doc) in docs {
            writer.delete_term(Term::from_field_text(self.fields.case_id, case_id));
            writer
                .add_document(self.document(case_id, doc))
                .map_err(IndexError::from)?;
            state.unpublished += 1;
        }
        state.checkpoint = position;
        Ok(())
    }

    fn document(&self, case_id: &str, doc: &CaseDoc) -> TantivyDocument {
        let f = self.fields;
        let (text, facets) = (&doc.text, &doc.facets);
        let mut document = TantivyDocument::default();
        document.add_text(f.case_id, case_id);
        document.add_text(f.title, &text.title);
        document.add_text(f.content, &text.content);
        document.add_text(f.address, &text.address);
        for reply in &text.replies {
            document.add_text(f.reply, reply);
        }
        document.add_text(f.status, &facets.status);
        document.add_text(f.stage, &facets.stage);
        document.add_text(f.created_by, &facets.created_by);
        for (field, value) in [
            (f.category, &facets.category),
            (f.kind, &facets.kind),
            (f.urgency, &facets.urgency),
            (f.district, &facets.district_id),
            (f.accepting_unit, &facets.accepting_unit_id),
        ] {
            if let Some(value) = value {
                document.add_text(field, value);
            }
        }
        for unit in &facets.scope_units {
            document.add_text(f.scope_unit, unit);
        }
        for unit in &facets.touched_units {
            document.add_text(f.touched_unit, unit);
        }
        document.add_i64(f.created_at, facets.created_at);
        document.add_i64(f.receive_due, facets.receive_due);
        document.add_i64(f.complete_due, facets.complete_due);
        document.add_u64(f.completed_late, u64::from(facets.completed_late));
        document.add_i64(f.overdue_at, overdue_at(facets));
        document
    }

    /// Adds the documents of `docs` (case id, document) to an index that holds none of these
    /// cases (filling an empty index); the checkpoint does not move.
    ///
    /// # Errors
    /// [`ProjectionError`] when the writer fails.
    pub fn add_cases<'a>(
        &self,
        docs: impl IntoIterator<Item = (&'a str, &'a CaseDoc)>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        for (case_id, doc) in docs {
            writer
                .add_document(self.document(case_id, doc))
                .map_err(IndexError::from)?;
            state.unpublished += 1;
        }
        Ok(())
    }

    /// Moves the checkpoint past an event that changes no document.
    ///
    /// # Errors
    /// [`ProjectionError::Poisoned`].
    pub fn passed(&self, position: u64) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        state.checkpoint = state.checkpoint.max(position);
        Ok(())
    }

    /// Commits what was applied, with the checkpoint, if a document changed or the checkpoint
    /// moved by at least `min_skip` positions; returns whether it committed.
    ///
    /// # Errors
    /// [`ProjectionError`] when the commit fails; then nothing of it is visible after a restart.
    pub fn commit(&self, min_skip: u64) -> Result<bool, ProjectionError> {
        let mut state = self.state()?;
        let moved = state.checkpoint.saturating_sub(state.committed);
        if state.unpublished == 0 && (moved == 0 || moved < min_skip) {
            return Ok(false);
        }
        let payload = serde_json::to_string(&Payload {
            checkpoint: state.checkpoint,
            schema_version: SCHEMA_VERSION,
        })?;
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        let mut prepared = writer.prepare_commit().map_err(IndexError::from)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(IndexError::from)?;
        drop(writer);
        self.reader.reload().map_err(IndexError::from)?;
        state.committed = state.checkpoint;
        state.unpublished = 0;
        Ok(true)
    }

    /// Drops what was applied since the last commit: the checkpoint goes back to that commit's.
    ///
    /// # Errors
    /// [`ProjectionError`] when the writer fails.
    pub fn rollback(&self) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.rollback().map_err(IndexError::from)?;
        state.checkpoint = state.committed;
        state.unpublished = 0;
        Ok(())
    }

    /// Empties the index and its checkpoint (then replay everything to rebuild).
    ///
    /// # Errors
    /// [`ProjectionError`] when the index fails.
    pub fn reset(&self) -> Result<(), ProjectionError> {
        {
            let mut state = self.state()?;
            let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
            writer.delete_all_documents().map_err(IndexError::from)?;
            state.checkpoint = 0;
            // Forces the commit below.
            state.unpublished = state.unpublished.max(1);
        }
        self.commit(0)?;
        Ok(())
    }

    /// Number of cases in the committed index.
    pub fn num_cases(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The words of `text`: a case matches when it holds at least half of them (each, or one
    /// of its synonyms) in its texts. `None` when `text` has no word.
    ///
    /// The query is segmented here, never handed to tantivy's query parser.
    fn text_query(&self, text: &str) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let mut words: Vec<Box<dyn Query>> = Vec::new();
        for word in self.segmenter.query_words(text) {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let synonyms = self
                .synonyms
                .of(&word)
                .iter()
                .map(|s| (s.as_str(), SYNONYM_WEIGHT));
            for (term, weight) in std::iter::once((word.as_str(), 1.0)).chain(synonyms) {
                for (field, boost) in [
                    (f.title, TITLE_BOOST),
                    (f.content, CONTENT_BOOST),
                    (f.address, ADDRESS_BOOST),
                    (f.reply, REPLY_BOOST),
                ] {
                    let query = TermQuery::new(
                        Term::from_field_text(field, term),
                        IndexRecordOption::WithFreqs,
                    );
                    clauses.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(query), boost * weight)),
                    ));
                }
            }
            words.push(Box::new(BooleanQuery::new(clauses)));
        }
        if words.is_empty() {
            return None;
        }
        // At least half of the words (or a synonym of each) must match: one common word such
        // as 小区 alone would otherwise bring back every case of every community.
        let required = words.len().div_ceil(2);
        Some(Box::new(BooleanQuery::with_minimum_required_clauses(
            words.into_iter().map(|q| (Occur::Should, q)).collect(),
            required,
        )))
    }

    /// The conditions as queries every match must satisfy (they add nothing to the score).
    fn condition_queries(&self, c: &CaseConditions) -> Vec<Box<dyn Query>> {
        let f = self.fields;
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        for (field, value) in [
            (f.status, &c.status),
            (f.category, &c.category),
            (f.kind, &c.kind),
            (f.urgency, &c.urgency),
            (f.district, &c.district_id),
        ] {
            if let Some(value) = value {
                out.push(term_query(field, value));
            }
        }
        if let Some((overdue, now)) = c.overdue {
            // As the read model: open and past a receive-by or a complete-by, or completed
            // late, folded into `overdue_at`.
            out.push(if overdue {
                i64_range(f.overdue_at, Bound::Unbounded, Bound::Excluded(now))
            } else {
                i64_range(f.overdue_at, Bound::Included(now), Bound::Unbounded)
            });
        }
        if let Some((unit, subtree)) = &c.unit {
            let field = if *subtree {
                f.scope_unit
            } else {
                f.touched_unit
            };
            out.push(term_query(field, unit));
        }
        if c.created_from.is_some() || c.created_to.is_some() {
            out.push(i64_range(
                f.created_at,
                c.created_from.map_or(Bound::Unbounded, Bound::Included),
                c.created_to.map_or(Bound::Unbounded, Bound::Excluded),
            ));
        }
        if let Some(ids) = &c.case_ids {
            out.push(if ids.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(TermSetQuery::new(
                    ids.iter().map(|id| Term::from_field_text(f.case_id, id)),
                ))
            });
        }
        if let Some(v) = &c.visible_to {
            // As the read model's scope: created by the user, accepted by their unit, or
            // given to or transferred by one of their units or a unit below.
            let mut any: Vec<Box<dyn Query>> = vec![Box::new(TermSetQuery::new(
                v.units
                    .iter()
                    .map(|u| Term::from_field_text(f.scope_unit, u)),
            ))];
            if let Some(username) = &v.username {
                any.push(term_query(f.created_by, username));
            }
            if !v.accepting_units.is_empty() {
                any.push(Box::new(TermSetQuery::new(
                    v.accepting_units
                        .iter()
                        .map(|u| Term::from_field_text(f.accepting_unit, u)),
                )));
            }
            out.push(Box::new(BooleanQuery::union(any)));
        }
        out
    }

    /// The cases whose texts match `query.text` and that satisfy its conditions: how many, and
    /// the requested page of their ids in the requested order. Nothing matches a text without
    /// words.
    ///
    /// # Errors
    /// [`IndexError::Tantivy`] when reading the index fails.
    pub fn search(&self, query: &CaseQuery) -> Result<CaseHits, IndexError> {
        let Some(text) = self.text_query(&query.text) else {
            return Ok(CaseHits::default());
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text)];
        clauses.extend(
            self.condition_queries(&query.conditions)
                .into_iter()
                .map(|q| {
                    (
                        Occur::Must,
                        Box::new(ConstScoreQuery::new(q, 0.0)) as Box<dyn Query>,
                    )
                }),
        );
        let matching = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        if query.limit == 0 {
            let total = searcher.search(&matching, &Count)?;
            return Ok(CaseHits {
                total: total as u64,
                case_ids: Vec::new(),
            });
        }
        let top = TopDocs::with_limit(query.limit).and_offset(query.offset);
        let (total, addresses) = match query.order {
            CaseOrder::Relevance => {
                let (total, hits) = searcher.search(&matching, &(Count, top.order_by_score()))?;
                (total, hits.into_iter().map(|(_, a)| a).collect())
            }
            CaseOrder::CreatedDesc => {
                by_fast_field(&searcher, &matching, top, CREATED_AT, Order::Desc)?
            }
            CaseOrder::CreatedAsc => {
                by_fast_field(&searcher, &matching, top, CREATED_AT, Order::Asc)?
            }
            CaseOrder::CompleteDueAsc => {
                by_fast_field(&searcher, &matching, top, COMPLETE_DUE, Order::Asc)?
            }
            CaseOrder::CompleteDueDesc => {
                by_fast_field(&searcher, &matching, top, COMPLETE_DUE, Order::Desc)?
            }
            CaseOrder::CaseIdAsc => {
                let sort = (
                    tantivy::collector::sort_key::SortByString::for_field(CASE_ID),
                    Order::Asc,
                );
                let (total, hits) = searcher.search(&matching, &(Count, top.order_by(sort)))?;
                (total, hits.into_iter().map(|(_, a)| a).collect())
            }
        };
        Ok(CaseHits {
            total: total as u64,
            case_ids: case_ids(&searcher, &addresses)?,
        })
    }
}

/// Matches ordered by an i64 column, ties by case id in the same direction (as the read
/// model's `ORDER BY column, case_id`).
fn by_fast_field(
    searcher: &Searcher,
    query: &dyn Query,
    top: TopDocs,
    column: &str,
    order: Order,
) -> Result<(usize, Vec<DocAddress>), TantivyError> {
    use tantivy::collector::sort_key::{SortByStaticFastValue, SortByString};
    let sort = (
        (SortByStaticFastValue::<i64>::for_field(column), order),
        (SortByString::for_field(CASE_ID), order),
    );
    let (total, hits) = searcher.search(query, &(Count, top.order_by(sort)))?;
    Ok((total, hits.into_iter().map(|(_, a)| a).collect()))
}

/// The case ids of `addresses`, in their order.
fn case_ids(searcher: &Searcher, addresses: &[DocAddress]) -> Result<Vec<String>, TantivyError> {
    let columns = searcher
        .segment_readers()
        .iter()
        .map(|segment| segment.fast_fields().str(CASE_ID))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(addresses.len());
    let mut case_id = String::new();
    for address in addresses {
        let Some(Some(column)) = columns.get(address.segment_ord as usize) else {
            continue;
        };
        let Some(ord) = column.term_ords(address.doc_id).next() else {
            continue;
        };
        if column.ord_to_str(ord, &mut case_id)? {
            out.push(case_id.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> CaseIndex {
        let segmenter = crate::fixtures::segmenter().unwrap();
        CaseIndex::create_in_ram(segmenter, crate::fixtures::synonyms()).unwrap()
    }

    fn text(title: &str, content: &str, address: &str) -> CaseDoc {
        CaseDoc {
            text: CaseText {
                title: title.into(),
                content: content.into(),
                address: address.into(),
                replies: Vec::new(),
            },
            facets: CaseFacets::default(),
        }
    }

    fn ids(index: &CaseIndex, q: &str) -> Vec<String> {
        let query = CaseQuery {
            text: q.into(),
            limit: 10,
            ..CaseQuery::default()
        };
        index.search(&query).unwrap().case_ids
    }

    #[test]
    fn a_colloquial_query_finds_the_case_by_synonym_and_community() {
        let index = index();
        let vending = text(
            "阳光花园小区门口占道经营",
            "每天晚上有商贩在阳光花园北门占道经营，影响通行。",
            "东城区阳光花园小区北门",
        );
        let noise = text("楼上装修噪音", "楼上装修太吵了", "西城区幸福里小区");
        let elsewhere = text("路灯不亮", "路口路灯坏了", "南城区人民路");
        index.case_changed(1, "A", &vending).unwrap();
        index.case_changed(2, "B", &noise).unwrap();
        index.case_changed(3, "C", &elsewhere).unwrap();
        index.commit(0).unwrap();
        let found = ids(&index, "阳光花园小区门口有人摆摊");
        assert_eq!(found.first().map(String::as_str), Some("A"), "{found:?}");
        let found = ids(&index, "小区门口有人摆摊");
        assert_eq!(found.first().map(String::as_str), Some("A"), "{found:?}");
        assert!(!found.contains(&"C".to_owned()), "{found:?}");
    }

    #[test]
    fn a_case_whose_texts_change_is_replaced_not_duplicated() {
        let index = index();
        index
            .case_changed(1, "A", &text("草稿", "路灯不亮", "人民路"))
            .unwrap();
        let mut answered = text("路灯维修", "路灯不亮", "人民路");
        answered.text.replies.push("已安排维修班组更换灯泡".into());
        index.case_changed(2, "A", &answered).unwrap();
        index.commit(0).unwrap();
        assert_eq!(index.num_cases(), 1);
        assert_eq!(ids(&index, "灯泡"), ["A"]);
        assert!(ids(&index, "草稿").is_empty());
    }

    #[test]
    fn the_checkpoint_is_committed_with_the_documents_and_events_are_not_applied_twice() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            CaseIndex::open_or_create(
                dir.path(),
                crate::fixtures::segmenter().unwrap(),
                crate::fixtures::synonyms(),
            )
            .unwrap()
        };
        let index = open();
        index
            .case_changed(5, "A", &text("占道经营", "", ""))
            .unwrap();
        index.passed(9).unwrap();
        index.commit(0).unwrap();
        index.case_changed(12, "B", &text("噪音", "", "")).unwrap();
        // Not committed: lost with the writer, as after a crash.
        drop(index);
        let index = open();
        assert_eq!(index.checkpoint(), 9);
        assert_eq!(ids(&index, "摆摊"), ["A"]);
        assert!(ids(&index, "噪音").is_empty());
        index.case_changed(9, "A", &text("别的", "", "")).unwrap();
        index.commit(0).unwrap();
        assert_eq!(ids(&index, "摆摊"), ["A"], "position 9 was already applied");
    }

    fn in_district(title: &str, district: &str, created_at: i64) -> CaseDoc {
        let mut doc = text(title, "", "");
        doc.facets = CaseFacets {
            status: "transferred".into(),
            stage: "open".into(),
            district_id: Some(district.into()),
            created_by: "operator".into(),
            accepting_unit_id: Some("city".into()),
            scope_units: vec!["city".into(), district.into()],
            touched_units: vec![district.into()],
            created_at,
            receive_due: i64::MAX,
            complete_due: i64::MAX,
            ..CaseFacets::default()
        };
        doc
    }

    fn district_user(district: &str) -> Visibility {
        Visibility {
            username: Some(format!("{district}_dispatcher")),
            accepting_units: vec![district.into()],
            units: vec![district.into()],
        }
    }

    #[test]
    fn a_district_users_match_ranked_behind_ten_thousand_better_ones_is_found_and_counted() {
        let index = index();
        let docs: Vec<(String, CaseDoc)> = (0..10_000)
            .map(|n| {
                let doc = in_district("占道经营", "d.qilihe", n);
                (format!("Q{n:05}"), doc)
            })
            .collect();
        index
            .cases_changed(1, docs.iter().map(|(id, doc)| (id.as_str(), doc)))
            .unwrap();
        // The same word in a longer title: a weaker match than every other.
        let weak = in_district(
            "路口路灯不亮晚上很黑还有人占道经营影响通行",
            "d.chengguan",
            0,
        );
        index.case_changed(2, "C1", &weak).unwrap();
        index.commit(0).unwrap();
        let query = |visible_to: Option<Visibility>, offset: usize, limit: usize| CaseQuery {
            text: "占道经营".into(),
            conditions: CaseConditions {
                visible_to,
                ..CaseConditions::default()
            },
            offset,
            limit,
            ..CaseQuery::default()
        };
        // For the city, the 城关 case ranks last of 10,001: beyond the 10,000 best.
        let all = index.search(&query(None, 10_000, 10)).unwrap();
        assert_eq!((all.total, all.case_ids), (10_001, vec!["C1".to_owned()]));
        // For 城关, it is the only match, first, and counted.
        let chengguan = index
            .search(&query(Some(district_user("d.chengguan")), 0, 20))
            .unwrap();
        assert_eq!(
            (chengguan.total, chengguan.case_ids),
            (1, vec!["C1".to_owned()])
        );
        let qilihe = index
            .search(&query(Some(district_user("d.qilihe")), 9_990, 20))
            .unwrap();
        assert_eq!(qilihe.total, 10_000);
        assert_eq!(qilihe.case_ids.len(), 10);
        assert!(!qilihe.case_ids.contains(&"C1".to_owned()));
    }

    #[test]
    fn matches_sort_like_the_case_list_with_ties_broken_by_case_id() {
        let index = index();
        let mut docs = [
            ("A2", in_district("占道经营", "d.chengguan", 20)),
            ("A1", in_district("占道经营", "d.chengguan", 20)),
            ("B", in_district("占道经营", "d.chengguan", 10)),
            ("C", in_district("占道经营", "d.chengguan", 30)),
        ];
        docs[0].1.facets.complete_due = 500;
        docs[2].1.facets.complete_due = 400;
        index
            .cases_changed(1, docs.iter().map(|(id, doc)| (*id, doc)))
            .unwrap();
        index.commit(0).unwrap();
        let sorted = |order: CaseOrder, offset: usize| {
            let query = CaseQuery {
                text: "摆摊".into(),
                order,
                offset,
                limit: 10,
                ..CaseQuery::default()
            };
            let hits = index.search(&query).unwrap();
            assert_eq!(hits.total, 4);
            hits.case_ids
        };
        assert_eq!(sorted(CaseOrder::CreatedDesc, 0), ["C", "A2", "A1", "B"]);
        assert_eq!(sorted(CaseOrder::CreatedAsc, 0), ["B", "A1", "A2", "C"]);
        assert_eq!(sorted(CaseOrder::CreatedAsc, 2), ["A2", "C"]);
        // No deadline sorts last.
        assert_eq!(sorted(CaseOrder::CompleteDueAsc, 0), ["B", "A2", "A1", "C"]);
        assert_eq!(
            sorted(CaseOrder::CompleteDueDesc, 0),
            ["C", "A1", "A2", "B"]
        );
        assert_eq!(sorted(CaseOrder::CaseIdAsc, 0), ["A1", "A2", "B", "C"]);
        assert_eq!(sorted(CaseOrder::Relevance, 0).len(), 4);
    }

    #[test]
    fn conditions_restrict_the_matches_before_they_are_counted() {
        let index = index();
        let mut late = in_district("占道经营", "d.chengguan", 10);
        late.facets.complete_due = 100;
        let mut done_late = in_district("占道经营", "d.chengguan", 20);
        done_late.facets.stage = "completed".into();
        done_late.facets.status = "completed".into();
        done_late.facets.completed_late = true;
        let mut street = in_district("占道经营", "d.chengguan", 30);
        street.facets.scope_units.push("d.chengguan.s01".into());
        street.facets.touched_units = vec!["d.chengguan.s01".into()];
        let on_time = in_district("占道经营", "d.qilihe", 40);
        let docs = [
            ("LATE", &late),
            ("DONE", &done_late),
            ("STREET", &street),
            ("ONTIME", &on_time),
        ];
        index.cases_changed(1, docs).unwrap();
        index.commit(0).unwrap();
        let ids = |conditions: CaseConditions| {
            let query = CaseQuery {
                text: "占道经营".into(),
                conditions,
                order: CaseOrder::CaseIdAsc,
                limit: 10,
                ..CaseQuery::default()
            };
            let hits = index.search(&query).unwrap();
            assert_eq!(hits.total as usize, hits.case_ids.len());
            hits.case_ids
        };
        let all = CaseConditions::default;
        let overdue = |now| CaseConditions {
            overdue: Some((true, now)),
            ..all()
        };
        assert_eq!(ids(overdue(150)), ["DONE", "LATE"]);
        assert_eq!(ids(overdue(50)), ["DONE"]);
        let not_overdue = CaseConditions {
            overdue: Some((false, 150)),
            ..all()
        };
        assert_eq!(ids(not_overdue), ["ONTIME", "STREET"]);
        let status = CaseConditions {
            status: Some("completed".into()),
            ..all()
        };
        assert_eq!(ids(status), ["DONE"]);
        let given = |unit: &str, subtree| CaseConditions {
            unit: Some((unit.into(), subtree)),
            ..all()
        };
        assert_eq!(ids(given("d.chengguan.s01", false)), ["STREET"]);
        assert_eq!(ids(given("d.chengguan", false)), ["DONE", "LATE"]);
        assert_eq!(ids(given("d.chengguan", true)), ["DONE", "LATE", "STREET"]);
        let created = CaseConditions {
            created_from: Some(20),
            created_to: Some(40),
            ..all()
        };
        assert_eq!(ids(created), ["DONE", "STREET"]);
        let chosen = CaseConditions {
            case_ids: Some(vec!["ONTIME".into(), "NOPE".into()]),
            ..all()
        };
        assert_eq!(ids(chosen), ["ONTIME"]);
        let none_chosen = CaseConditions {
            case_ids: Some(Vec::new()),
            ..all()
        };
        assert!(ids(none_chosen).is_empty());
        // A street handler sees what reached the street; the operator sees what they created.
        let street_handler = CaseConditions {
            visible_to: Some(Visibility {
                username: Some("chengguan_s01_handler".into()),
                accepting_units: vec!["d.chengguan.s01".into()],
                units: vec!["d.chengguan.s01".into()],
            }),
            ..all()
        };
        assert_eq!(ids(street_handler), ["STREET"]);
        let operator = CaseConditions {
            visible_to: Some(Visibility {
                username: Some("operator".into()),
                accepting_units: vec!["elsewhere".into()],
                units: vec!["elsewhere".into()],
            }),
            ..all()
        };
        assert_eq!(ids(operator).len(), 4);
    }
}

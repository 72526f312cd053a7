//! The case-text index (工单全文检索): one document per case with its title, content, address
//! and replies, analysed like the articles (jieba search mode, the hotline dictionary, synonyms
//! at query time), and its checkpoint in the commit payload.
//!
//! The index answers only "which cases match these words, best first"; the structured filters
//! and the caller's scope are applied by the read model to the ids it returns.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError, Term};

use crate::analysis::{self, JiebaTokenizer, Segmenter, Synonyms};
use crate::index::IndexError;
use crate::projection::ProjectionError;
use crate::stored::{self, Opened};

/// Version of the schema and of what a document holds. An index committed with another is
/// replaced at open (its projection then rebuilds it from position 0).
pub const SCHEMA_VERSION: u32 = 1;

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

/// The texts of a case that are searched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy)]
struct Fields {
    case_id: Field,
    title: Field,
    content: Field,
    address: Field,
    reply: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::JIEBA)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        // A fast field: thousands of hits per query read their id from a column, not from
        // the document store.
        case_id: builder.add_text_field("case_id", STRING | FAST),
        title: builder.add_text_field("title", words.clone()),
        content: builder.add_text_field("content", words.clone()),
        address: builder.add_text_field("address", words.clone()),
        reply: builder.add_text_field("reply", words),
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

/// The case-text index as a projection of the event log: documents replaced as the texts of
/// their case change, the checkpoint committed atomically with them.
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

    /// The index in `dir`, created if absent, resumed from its last commit; an index of
    /// another [`SCHEMA_VERSION`] is deleted and replaced by an empty one (see
    /// [`CaseIndex::opened`]).
    ///
    /// # Errors
    /// [`ProjectionError::Index`] when `dir` cannot be opened, the index is corrupt or locked,
    /// or an outdated one cannot be deleted; [`ProjectionError::Payload`] for a foreign
    /// payload.
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

    /// Documents replaced since the last commit: searches see them after the next.
    pub fn unpublished(&self) -> usize {
        self.state().map_or(0, |s| s.unpublished)
    }

    /// Replaces the case's document with `text` after the event at `position`. Positions at or
    /// before the checkpoint are ignored (already applied).
    ///
    /// # Errors
    /// [`ProjectionError`] when the writer fails.
    pub fn case_changed(
        &self,
        position: u64,
        case_id: &str,
        text: &CaseText,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state()?;
        if position <= state.checkpoint {
            return Ok(());
        }
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.case_id, case_id);
        doc.add_text(f.title, &text.title);
        doc.add_text(f.content, &text.content);
        doc.add_text(f.address, &text.address);
        for reply in &text.replies {
            doc.add_text(f.reply, reply);
        }
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.delete_term(Term::from_field_text(f.case_id, case_id));
        writer.add_document(doc).map_err(IndexError::from)?;
        state.checkpoint = position;
        state.unpublished += 1;
        Ok(())
    }

    /// Moves the checkpoint past an event that changes no text.
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

    /// The ids of the cases whose texts match `text`, best first, at most `limit`: a case
    /// matches when at least half of the query's words (each, or one of its synonyms) are in
    /// its texts. Empty when `text` has no word.
    ///
    /// The query is segmented here, never handed to tantivy's query parser.
    ///
    /// # Errors
    /// [`IndexError::Tantivy`] when reading the index fails.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<(String, f32)>, IndexError> {
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
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // At least half of the words (or a synonym of each) must match: one common word such
        // as 小区 alone would otherwise bring back every case of every community.
        let required = words.len().div_ceil(2);
        let query = BooleanQuery::with_minimum_required_clauses(
            words.into_iter().map(|q| (Occur::Should, q)).collect(),
            required,
        );
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().str("case_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut hits = Vec::with_capacity(top.len());
        let mut case_id = String::new();
        for (score, address) in top {
            let Some(Some(column)) = columns.get(address.segment_ord as usize) else {
                continue;
            };
            let Some(ord) = column.term_ords(address.doc_id).next() else {
                continue;
            };
            if column
                .ord_to_str(ord, &mut case_id)
                .map_err(TantivyError::from)?
            {
                hits.push((case_id.clone(), score));
            }
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> CaseIndex {
        let segmenter = crate::fixtures::segmenter().unwrap();
        CaseIndex::create_in_ram(segmenter, crate::fixtures::synonyms()).unwrap()
    }

    fn text(title: &str, content: &str, address: &str) -> CaseText {
        CaseText {
            title: title.into(),
            content: content.into(),
            address: address.into(),
            replies: Vec::new(),
        }
    }

    fn ids(index: &CaseIndex, q: &str) -> Vec<String> {
        index
            .search(q, 10)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
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
        answered.replies.push("已安排维修班组更换灯泡".into());
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
}

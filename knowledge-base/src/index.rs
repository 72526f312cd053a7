//! The tantivy index of published articles: schema, writes with a commit payload, search and
//! suggestions.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::analysis::{
    self, BigramTokenizer, JiebaTokenizer, Segmenter, SnippetTokenizer, Synonyms,
};
use crate::article::Article;
use crate::stored::{self, Opened};

/// Version of the schema and of what a document holds. An index committed with another is
/// replaced at open (its projection then rebuilds it from position 0).
pub const SCHEMA_VERSION: u32 = 1;

/// Memory budget of the index writer, in bytes.
const WRITER_MEMORY: usize = 50_000_000;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 120;

/// Weights of a query word in each field: a match in the title or in a similar question says
/// far more than one in the body.
const TITLE_BOOST: f32 = 3.0;
const SIMILAR_BOOST: f32 = 2.5;
const TAGS_BOOST: f32 = 2.0;
const BODY_BOOST: f32 = 1.0;
/// Weight of a synonym relative to the word typed.
const SYNONYM_WEIGHT: f32 = 0.7;
/// Weight of one matching character bigram in suggestions.
const BIGRAM_BOOST: f32 = 0.6;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed (IO, corruption, a lock held by another process).
    #[error("search index failed: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The index directory cannot be opened.
    #[error("search index directory cannot be opened: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// The lock on the writer was poisoned by a panic.
    #[error("search index writer is poisoned")]
    Poisoned,
    /// The files of an outdated index cannot be deleted.
    #[error("outdated search index cannot be deleted: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    body: Field,
    similar: Field,
    tags: Field,
    suggest: Field,
    category: Field,
    unit_id: Field,
    valid_from: Field,
    valid_until: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::JIEBA)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let stored_words = words.clone().set_stored();
    let grams = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::BIGRAM)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let instant = NumericOptions::default() | INDEXED | FAST;
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        title: builder.add_text_field("title", stored_words.clone()),
        body: builder.add_text_field("body", stored_words),
        similar: builder.add_text_field("similar_questions", words.clone()),
        tags: builder.add_text_field("tags", words),
        suggest: builder.add_text_field("suggest", grams),
        category: builder.add_text_field("category", STRING | STORED),
        unit_id: builder.add_text_field("unit_id", STRING | STORED),
        valid_from: builder.add_i64_field("valid_from", instant.clone()),
        valid_until: builder.add_i64_field("valid_until", instant),
    };
    (builder.build(), fields)
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The words typed or said.
    pub text: String,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles owned by this unit.
    pub unit_id: Option<String>,
    /// Hits to skip (paging).
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
}

/// One article found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The article's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The best matching passage of the body, HTML-escaped, matches in `<em>`.
    pub snippet: String,
    /// Relevance (higher is better; comparable within one query only).
    pub score: f32,
    /// Its category.
    pub category: String,
    /// The unit that owns it.
    pub unit_id: String,
}

/// A page of results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// How many articles match in all.
    pub total: usize,
    /// The requested page, best first.
    pub hits: Vec<Hit>,
}

/// The index of articles that are published: a retired article is deleted from it, and one
/// outside its validity is filtered out at query time.
pub struct KbIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    segmenter: Segmenter,
    synonyms: Synonyms,
    opened: Opened,
}

impl std::fmt::Debug for KbIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KbIndex").finish_non_exhaustive()
    }
}

impl KbIndex {
    /// A new index in memory (tests, benchmarks).
    ///
    /// # Errors
    /// [`IndexError::Tantivy`].
    pub fn create_in_ram(segmenter: Segmenter, synonyms: Synonyms) -> Result<Self, IndexError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        Self::wrap(index, Opened::Created, fields, segmenter, synonyms)
    }

    /// The index in `dir`, created if absent; an index of another [`SCHEMA_VERSION`] is
    /// deleted and replaced by an empty one (see [`KbIndex::opened`]).
    ///
    /// # Errors
    /// [`IndexError::Directory`] when `dir` cannot be opened, [`IndexError::Tantivy`] when the
    /// index is corrupt or locked by another process, [`IndexError::Io`] when an outdated
    /// index cannot be deleted.
    pub fn open_or_create(
        dir: &Path,
        segmenter: Segmenter,
        synonyms: Synonyms,
    ) -> Result<Self, IndexError> {
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
    ) -> Result<Self, IndexError> {
        index
            .tokenizers()
            .register(analysis::JIEBA, JiebaTokenizer(segmenter.clone()));
        index
            .tokenizers()
            .register(analysis::BIGRAM, BigramTokenizer);
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KbIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            segmenter,
            synonyms,
            opened,
        })
    }

    /// What [`KbIndex::open_or_create`] found.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The segmenter queries are cut with.
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// The payload of the last commit (the projection's checkpoint), if any.
    ///
    /// # Errors
    /// [`IndexError::Tantivy`] when the metadata cannot be read.
    pub fn payload(&self) -> Result<Option<String>, IndexError> {
        Ok(self.index.load_metas()?.payload)
    }

    /// Puts the article's current version in the index if it is published (whatever its
    /// validity), and takes it out otherwise. Visible after the next [`KbIndex::commit`].
    ///
    /// # Errors
    /// [`IndexError`] when the writer fails.
    pub fn upsert(&self, article: &Article) -> Result<(), IndexError> {
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        let f = self.fields;
        writer.delete_term(Term::from_field_text(f.id, &article.id));
        if article.status != crate::article::Status::Published {
            return Ok(());
        }
        let c = &article.content;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &article.id);
        doc.add_text(f.title, &c.title);
        doc.add_text(f.body, &c.body);
        for question in &c.similar_questions {
            doc.add_text(f.similar, question);
            doc.add_text(f.suggest, question);
        }
        for tag in &c.tags {
            doc.add_text(f.tags, tag);
        }
        doc.add_text(f.suggest, &c.title);
        doc.add_text(f.category, &c.category);
        doc.add_text(f.unit_id, &c.unit_id);
        doc.add_i64(
            f.valid_from,
            c.valid_from.map_or(i64::MIN, |t| t.timestamp()),
        );
        doc.add_i64(
            f.valid_until,
            c.valid_until.map_or(i64::MAX, |t| t.timestamp()),
        );
        writer.add_document(doc)?;
        Ok(())
    }

    /// Removes every article (before a rebuild). Visible after the next commit.
    ///
    /// # Errors
    /// [`IndexError`] when the writer fails.
    pub fn clear(&self) -> Result<(), IndexError> {
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.delete_all_documents()?;
        Ok(())
    }

    /// Makes every change so far durable and visible, atomically with `payload`.
    ///
    /// # Errors
    /// [`IndexError`] when the commit fails; then nothing of it is visible after a restart.
    pub fn commit(&self, payload: &str) -> Result<(), IndexError> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(payload);
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Drops every change since the last commit.
    ///
    /// # Errors
    /// [`IndexError`] when the writer fails.
    pub fn rollback(&self) -> Result<(), IndexError> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.rollback()?;
        Ok(())
    }

    /// Number of articles in the committed index.
    pub fn num_articles(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The word part of a query: every word of `text` (and its synonyms) in the title, the
    /// similar questions, the tags and the body, weighted. `None` when `text` has no word.
    fn word_clauses(&self, text: &str) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in self.segmenter.query_words(text) {
            let synonyms = self
                .synonyms
                .of(&word)
                .iter()
                .map(|s| (s.as_str(), SYNONYM_WEIGHT));
            for (term, weight) in std::iter::once((word.as_str(), 1.0)).chain(synonyms) {
                for (field, boost) in [
                    (f.title, TITLE_BOOST),
                    (f.similar, SIMILAR_BOOST),
                    (f.tags, TAGS_BOOST),
                    (f.body, BODY_BOOST),
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
        }
        clauses
    }

    fn bigram_clauses(&self, text: &str) -> Vec<(Occur, Box<dyn Query>)> {
        let mut seen = std::collections::HashSet::new();
        analysis::bigrams(text)
            .into_iter()
            .filter(|token| seen.insert(token.text.clone()))
            .map(|token| {
                let query = TermQuery::new(
                    Term::from_field_text(self.fields.suggest, &token.text),
                    IndexRecordOption::WithFreqs,
                );
                let query: Box<dyn Query> =
                    Box::new(BoostQuery::new(Box::new(query), BIGRAM_BOOST));
                (Occur::Should, query)
            })
            .collect()
    }

    /// The filters every answer must pass: valid at `now`, and the requested category and unit.
    fn filters(
        &self,
        now: DateTime<Utc>,
        category: Option<&str>,
        unit_id: Option<&str>,
    ) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let now = now.timestamp();
        let mut filters: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_i64(f.valid_from, now)),
                )),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Excluded(Term::from_field_i64(f.valid_until, now)),
                    Bound::Unbounded,
                )),
            ),
        ];
        for (field, value) in [(f.category, category), (f.unit_id, unit_id)] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                filters.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        filters
    }

    /// Articles answering `request.text` at `now`, best first, with highlighted passages.
    ///
    /// The query is segmented here (never handed to tantivy's query parser, which would turn
    /// unsegmented Chinese into a phrase that finds nothing).
    ///
    /// # Errors
    /// [`IndexError::Tantivy`] when reading the index fails.
    pub fn search(
        &self,
        request: &SearchRequest,
        now: DateTime<Utc>,
    ) -> Result<SearchPage, IndexError> {
        let words = self.word_clauses(&request.text);
        self.run(words, request, now, true)
    }

    /// Suggestions for text being typed: whole words as in [`KbIndex::search`], plus character
    /// bigrams of the title and similar questions so a half-typed word still matches. The
    /// page's `total` is the number of hits returned (suggestions are not counted).
    ///
    /// # Errors
    /// [`IndexError::Tantivy`] when reading the index fails.
    pub fn suggest(
        &self,
        text: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<SearchPage, IndexError> {
        let mut clauses = self.word_clauses(text);
        clauses.extend(self.bigram_clauses(text));
        let request = SearchRequest {
            text: text.to_owned(),
            limit,
            ..SearchRequest::default()
        };
        // No total count: counting visits every match, the top few alone can skip most.
        self.run(clauses, &request, now, false)
    }

    /// Like `SnippetGenerator::create`, but with [`SnippetTokenizer`]: the index's tokenizer
    /// emits overlapping words out of order, which the generator cannot take.
    fn snippet_generator(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<SnippetGenerator, IndexError> {
        let body = self.fields.body;
        let mut terms: BTreeSet<Term> = BTreeSet::new();
        query.query_terms(&mut |term, _| {
            if term.field() == body {
                terms.insert(term.clone());
            }
        });
        let mut terms_text = BTreeMap::new();
        for term in terms {
            let Some(text) = term.value().as_str().map(str::to_owned) else {
                continue;
            };
            let doc_freq = searcher.doc_freq(&term)?;
            if doc_freq > 0 {
                terms_text.insert(text, 1.0 / (1.0 + doc_freq as f32));
            }
        }
        let tokenizer = TextAnalyzer::from(SnippetTokenizer(self.segmenter.clone()));
        Ok(SnippetGenerator::new(
            terms_text,
            tokenizer,
            body,
            SNIPPET_CHARS,
        ))
    }

    fn run(
        &self,
        matching: Vec<(Occur, Box<dyn Query>)>,
        request: &SearchRequest,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<SearchPage, IndexError> {
        if matching.is_empty() || request.limit == 0 {
            return Ok(SearchPage::default());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(matching)))];
        clauses.extend(self.filters(now, request.category.as_deref(), request.unit_id.as_deref()));
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(request.limit)
            .and_offset(request.offset)
            .order_by_score();
        let (total, top) = if count {
            searcher.search(&query, &(Count, top))?
        } else {
            let top = searcher.search(&query, &top)?;
            (request.offset + top.len(), top)
        };
        let snippets = self.snippet_generator(&searcher, &query)?;
        let f = self.fields;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let body = text(f.body);
            let mut snippet = snippets.snippet(&body);
            snippet.set_snippet_prefix_postfix("<em>", "</em>");
            let mut html = snippet.to_html();
            if html.is_empty() {
                html = escape(&body.chars().take(SNIPPET_CHARS).collect::<String>());
            }
            hits.push(Hit {
                id: text(f.id),
                title: text(f.title),
                snippet: html,
                score,
                category: text(f.category),
                unit_id: text(f.unit_id),
            });
        }
        Ok(SearchPage { total, hits })
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

//! The knowledge base (知识库): articles operators answer calls from, their life cycle as
//! events, and Chinese full-text search over them with tantivy.
//!
//! # Layout
//! - [`article`]: `Article`, `ArticleCommand`, `ArticleEvent` (stream `kb-{id}`), and the pure
//!   [`article::decide`]/[`article::evolve`].
//! - [`analysis`]: jieba search-mode segmentation with the hotline dictionary, stop words,
//!   synonyms (query time), character bigrams (as-you-type).
//! - [`index`]: `KbIndex`, the tantivy index of published articles: search with filters and
//!   highlighted passages, suggestions.
//! - [`projection`]: `Projection`, the index kept as a projection of the event log, its
//!   checkpoint and answer counts in the commit payload.
//! - [`cases`]: `CaseIndex`, the texts of cases (title, content, address, replies) for the
//!   case query's text condition, with its checkpoint in the commit payload.
//! - [`stored`]: index directories that record their schema version in every commit payload,
//!   and are replaced by an empty index when opened by a build of another version.
//! - [`fixtures`]: the demo city's articles, dictionary, synonyms and relevance questions.
//!
//! # Invariants
//! - Only published articles are in the index; validity is checked at query time against the
//!   `now` given, so an expired article is never an answer even before anything re-indexes it.
//! - Queries are segmented here and built as boolean queries of terms: unsegmented Chinese is
//!   never handed to tantivy's query parser.
//! - The checkpoint and the answer counts are committed with the index, atomically, and so is
//!   the schema version: an index is never read by a build of another version.
//! - This crate depends on no crate of the workspace.

#![warn(missing_docs)]

pub mod analysis;
pub mod article;
pub mod cases;
pub mod fixtures;
pub mod index;
pub mod projection;
pub mod stored;

#[cfg(test)]
mod tests;

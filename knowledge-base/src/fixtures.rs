//! The demo city's articles, hotline dictionary, synonyms and relevance questions, compiled in
//! from `fixtures/kb/`.

use serde::Deserialize;

use crate::analysis::{AnalysisError, Segmenter, Synonyms};
use crate::article::ArticleContent;

/// Articles, one JSON object per line.
pub const ARTICLES_JSONL: &str = include_str!("../../fixtures/kb/articles.jsonl");
/// Hotline terms in jieba's dictionary format.
pub const USER_DICTIONARY: &str = include_str!("../../fixtures/kb/user-dict.txt");
/// Synonym groups, one per line.
pub const SYNONYMS: &str = include_str!("../../fixtures/kb/synonyms.txt");
/// Colloquial questions and the article each should find, one JSON object per line.
pub const QUESTIONS_JSONL: &str = include_str!("../../fixtures/kb/questions.jsonl");

/// An article of the fixtures.
#[derive(Debug, Clone, Deserialize)]
pub struct SeedArticle {
    /// Its id.
    pub id: String,
    /// Its content.
    #[serde(flatten)]
    pub content: ArticleContent,
}

/// A question of the relevance set.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    /// As a citizen says it.
    pub q: String,
    /// The id of the article that answers it.
    pub article: String,
}

fn parse_lines<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_json::Error> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(serde_json::from_str)
        .collect()
}

/// The fixture articles.
///
/// # Errors
/// When a line does not parse.
pub fn articles() -> Result<Vec<SeedArticle>, serde_json::Error> {
    parse_lines(ARTICLES_JSONL)
}

/// The relevance questions.
///
/// # Errors
/// When a line does not parse.
pub fn questions() -> Result<Vec<Question>, serde_json::Error> {
    parse_lines(QUESTIONS_JSONL)
}

/// The segmenter with the hotline dictionary.
///
/// # Errors
/// [`AnalysisError`] when the dictionary is malformed.
pub fn segmenter() -> Result<Segmenter, AnalysisError> {
    Segmenter::new(USER_DICTIONARY)
}

/// The synonym groups.
pub fn synonyms() -> Synonyms {
    Synonyms::parse(SYNONYMS)
}

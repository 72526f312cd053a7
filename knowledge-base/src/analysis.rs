//! Chinese text analysis: jieba search-mode segmentation with the hotline dictionary, stop
//! words, synonyms applied at query time, and character bigrams for as-you-type suggestions.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::sync::Arc;

use jieba_rs::Jieba;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which [`JiebaTokenizer`] is registered on an index.
pub const JIEBA: &str = "zh_jieba";
/// Name under which [`BigramTokenizer`] is registered on an index.
pub const BIGRAM: &str = "zh_bigram";

/// Words that carry no meaning for retrieval: particles, pronouns, question words.
const STOP_WORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "哦",
    "嘛",
    "么",
    "我",
    "你",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "我家",
    "咱",
    "这",
    "那",
    "这个",
    "那个",
    "怎么",
    "怎么办",
    "怎样",
    "怎么样",
    "如何",
    "什么",
    "哪里",
    "哪儿",
    "哪个",
    "为什么",
    "是",
    "在",
    "有",
    "没有",
    "没",
    "要",
    "想",
    "能",
    "能不能",
    "可以",
    "可不可以",
    "请问",
    "一下",
    "问",
    "问问",
    "咨询",
    "就",
    "都",
    "也",
    "还",
    "又",
    "和",
    "与",
    "或",
    "及",
    "被",
    "把",
    "给",
    "让",
    "到",
    "从",
    "对",
    "很",
    "太",
    "好",
    "老是",
    "总是",
    "一直",
    "现在",
    "已经",
    "应该",
    "需要",
    "办",
    "去",
    "找",
    "谁",
    "个",
    "些",
    "里",
    "上",
    "下",
    "不",
    "会",
    "说",
    "知道",
    "一",
    "多少",
    "啥",
    "咋",
    "咋办",
    "得",
    "地",
    "着",
    "过",
    "等",
    "以及",
    "如果",
    "但是",
    "因为",
    "所以",
    "该",
];

/// The segmenter shared by every tokenizer and query: jieba with the default dictionary plus
/// the hotline terms, and the stop words.
#[derive(Clone)]
pub struct Segmenter {
    jieba: Arc<Jieba>,
    stop_words: Arc<HashSet<&'static str>>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter").finish_non_exhaustive()
    }
}

/// Why a dictionary or synonym file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The user dictionary is not in jieba's `word [freq] [tag]` format.
    #[error("user dictionary is malformed: {0}")]
    Dictionary(String),
}

impl Segmenter {
    /// jieba's default dictionary plus `user_dictionary` (jieba format: `word [freq] [tag]` per
    /// line; `#` starts a comment).
    ///
    /// # Errors
    /// [`AnalysisError::Dictionary`] when a line does not parse.
    pub fn new(user_dictionary: &str) -> Result<Self, AnalysisError> {
        let mut jieba = Jieba::new();
        let cleaned: String = user_dictionary
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        jieba
            .load_dict(&mut BufReader::new(cleaned.as_bytes()))
            .map_err(|err| AnalysisError::Dictionary(err.to_string()))?;
        Ok(Segmenter {
            jieba: Arc::new(jieba),
            stop_words: Arc::new(STOP_WORDS.iter().copied().collect()),
        })
    }

    /// Search-mode words of `text` (long words also give their dictionary sub-words), lower
    /// case, without punctuation and stop words, each with its byte range and ordinal.
    pub fn words(&self, text: &str) -> Vec<Token> {
        let mut tokens = Vec::new();
        for (ordinal, word) in self
            .jieba
            .cut_for_search(text, true)
            .into_iter()
            .enumerate()
        {
            if !word.word.chars().any(char::is_alphanumeric) {
                continue;
            }
            if self.stop_words.contains(word.word) {
                continue;
            }
            tokens.push(Token {
                offset_from: word.byte_start,
                offset_to: word.byte_end,
                position: ordinal,
                text: word.word.to_lowercase(),
                position_length: 1,
            });
        }
        tokens
    }

    /// The words of [`Segmenter::words`] whose byte ranges never go backwards (both ends
    /// non-decreasing), as tantivy's snippet generator requires: search mode emits a long word
    /// after its parts, which would make it slice before the start of its fragment.
    pub fn snippet_words(&self, text: &str) -> Vec<Token> {
        let mut tokens = self.words(text);
        tokens.sort_by_key(|t| (t.offset_from, t.offset_to));
        let mut last_end = 0;
        tokens.retain(|t| {
            let keep = t.offset_to >= last_end;
            if keep {
                last_end = t.offset_to;
            }
            keep
        });
        for (ordinal, token) in tokens.iter_mut().enumerate() {
            token.position = ordinal;
        }
        tokens
    }

    /// The distinct words of a query, in order of first appearance.
    pub fn query_words(&self, text: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        self.words(text)
            .into_iter()
            .map(|token| token.text)
            .filter(|word| seen.insert(word.clone()))
            .collect()
    }
}

/// Character bigrams of the letters and digits of `text` (a run of one character gives
/// itself), lower case, with byte ranges.
pub fn bigrams(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut run: Vec<(usize, char)> = Vec::new();
    let flush = |run: &mut Vec<(usize, char)>, tokens: &mut Vec<Token>| {
        if run.len() == 1 {
            let (start, c) = run[0];
            tokens.push(token(
                start,
                start + c.len_utf8(),
                tokens.len(),
                c.to_lowercase().collect(),
            ));
        }
        for pair in run.windows(2) {
            let (start, a) = pair[0];
            let (b_start, b) = pair[1];
            let text: String = a.to_lowercase().chain(b.to_lowercase()).collect();
            tokens.push(token(start, b_start + b.len_utf8(), tokens.len(), text));
        }
        run.clear();
    };
    for (offset, c) in text.char_indices() {
        if c.is_alphanumeric() {
            run.push((offset, c));
        } else {
            flush(&mut run, &mut tokens);
        }
    }
    flush(&mut run, &mut tokens);
    tokens
}

fn token(offset_from: usize, offset_to: usize, position: usize, text: String) -> Token {
    Token {
        offset_from,
        offset_to,
        position,
        text,
        position_length: 1,
    }
}

/// A token stream over tokens computed up front.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    /// Index of the current token plus one (0 before the first `advance`).
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next.saturating_sub(1)]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self.next.saturating_sub(1);
        &mut self.tokens[i]
    }
}

/// tantivy tokenizer: jieba search-mode words (see [`Segmenter::words`]).
#[derive(Clone, Debug)]
pub struct JiebaTokenizer(pub Segmenter);

impl Tokenizer for JiebaTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: self.0.words(text),
            next: 0,
        }
    }
}

/// tantivy tokenizer for highlighting: see [`Segmenter::snippet_words`].
#[derive(Clone, Debug)]
pub struct SnippetTokenizer(pub Segmenter);

impl Tokenizer for SnippetTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: self.0.snippet_words(text),
            next: 0,
        }
    }
}

/// tantivy tokenizer: character bigrams (see [`bigrams`]), for matching text as it is typed.
#[derive(Clone, Debug, Default)]
pub struct BigramTokenizer;

impl Tokenizer for BigramTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: bigrams(text),
            next: 0,
        }
    }
}

/// Synonym groups applied at query time: a query word also finds the other words of its
/// groups, at a lower weight.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    by_word: HashMap<String, Vec<String>>,
}

impl Synonyms {
    /// One group per line, words separated by commas (`,` or `，`) or spaces; `#` starts a
    /// comment.
    pub fn parse(text: &str) -> Self {
        let mut by_word: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let words: Vec<String> = line
                .split([',', '，', ' ', '\t'])
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            for word in &words {
                let entry = by_word.entry(word.clone()).or_default();
                for other in &words {
                    if other != word && !entry.contains(other) {
                        entry.push(other.clone());
                    }
                }
            }
        }
        Synonyms { by_word }
    }

    /// The other words of `word`'s groups.
    pub fn of(&self, word: &str) -> &[String] {
        self.by_word
            .get(word)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segmenter() -> Segmenter {
        Segmenter::new("社保卡 20000 n\n占道经营 20000 n\n# comment\n").unwrap()
    }

    #[test]
    fn hotline_terms_from_the_user_dictionary_stay_whole() {
        let words = segmenter().query_words("社保卡丢了怎么办");
        assert!(words.contains(&"社保卡".to_owned()), "{words:?}");
        assert!(words.contains(&"丢".to_owned()), "{words:?}");
        assert!(!words.contains(&"了".to_owned()), "{words:?}");
        assert!(!words.contains(&"怎么办".to_owned()), "{words:?}");
    }

    #[test]
    fn search_mode_also_gives_the_parts_of_long_words() {
        let words = segmenter().query_words("中华人民共和国");
        assert!(words.contains(&"中华".to_owned()), "{words:?}");
        assert!(words.contains(&"中华人民共和国".to_owned()), "{words:?}");
    }

    #[test]
    fn snippet_words_never_go_backwards() {
        let text = "中华人民共和国公民社保卡遗失补办，中华人民共和国居民身份证";
        let tokens = segmenter().snippet_words(text);
        assert!(tokens.iter().any(|t| t.text == "中华人民共和国"));
        for pair in tokens.windows(2) {
            assert!(pair[0].offset_from <= pair[1].offset_from, "{tokens:?}");
            assert!(pair[0].offset_to <= pair[1].offset_to, "{tokens:?}");
        }
    }

    #[test]
    fn bigrams_break_at_punctuation_and_keep_single_characters() {
        let grams: Vec<String> = bigrams("社保卡，丢").into_iter().map(|t| t.text).collect();
        assert_eq!(grams, ["社保", "保卡", "丢"]);
    }

    #[test]
    fn synonyms_are_symmetric_within_a_group() {
        let synonyms = Synonyms::parse("丢,遗失，丢失 补办\n");
        assert_eq!(synonyms.of("遗失"), ["丢", "丢失", "补办"]);
        assert!(synonyms.of("社保").is_empty());
    }
}

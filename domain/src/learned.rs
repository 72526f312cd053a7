//! 相似工单 — what labelled requests say about a new one: a multinomial naive Bayes over the
//! features of requests whose responsible unit is known (their segmented words, character
//! bigrams, whatever the caller extracts), learned once and asked per request.
//!
//! Our own ~150 lines rather than a crate: the model is a table of counts, the crates that
//! have one bring linear algebra and randomness we do not need, and this one must stay pure
//! and deterministic like the rest of `domain`.
//!
//! # Model
//! Each example counts each of its distinct features once (a word said twice says no more
//! about the unit). For a label `c` and a feature `f`, `P(f | c)` is the share of `c`'s
//! feature occurrences that are `f`, smoothed by `alpha` (add-alpha over the vocabulary);
//! `P(c)` is the share of examples labelled `c`. A request scores `ln P(c) + Σ ln P(f | c)`
//! over its features that the training saw (unknown features say nothing), and the scores
//! are normalised into probabilities.
//!
//! # Invariants
//! - Deterministic: labels and features are numbered in the order of first appearance, ties
//!   keep that order; the same examples give the same model and the same answers.
//! - Pure: no IO, no randomness, no clock.

use std::collections::HashMap;

/// One labelled request: its features and the label it should get.
#[derive(Debug, Clone, PartialEq)]
pub struct Example<L> {
    /// The request's features (repeats are counted once).
    pub features: Vec<String>,
    /// The right answer.
    pub label: L,
}

/// How the model is learned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Add-alpha smoothing of the feature counts (1 is Laplace's).
    pub alpha: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { alpha: 0.3 }
    }
}

/// A learned naive Bayes model over labels `L`.
#[derive(Debug, Clone)]
pub struct Model<L> {
    labels: Vec<L>,
    vocabulary: HashMap<String, usize>,
    /// `ln P(f | c)`, one row of the vocabulary per label.
    log_likelihood: Vec<f64>,
    log_prior: Vec<f64>,
}

/// One label with its probability for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess<'a, L> {
    /// The label.
    pub label: &'a L,
    /// Its probability given the request's features (they sum to one over the labels).
    pub probability: f64,
}

impl<L: PartialEq + Clone> Model<L> {
    /// Learns from `examples`; an empty set gives a model without labels (it guesses
    /// nothing).
    pub fn train(examples: &[Example<L>], settings: Settings) -> Model<L> {
        let mut labels: Vec<L> = Vec::new();
        let mut vocabulary: HashMap<String, usize> = HashMap::new();
        let mut rows: Vec<(usize, Vec<usize>)> = Vec::with_capacity(examples.len());
        for example in examples {
            let label = match labels.iter().position(|l| *l == example.label) {
                Some(i) => i,
                None => {
                    labels.push(example.label.clone());
                    labels.len() - 1
                }
            };
            let mut features = Vec::new();
            for feature in &example.features {
                let next = vocabulary.len();
                let i = *vocabulary.entry(feature.clone()).or_insert(next);
                if !features.contains(&i) {
                    features.push(i);
                }
            }
            rows.push((label, features));
        }
        let n_words = vocabulary.len();
        let mut counts = vec![0.0_f64; labels.len() * n_words];
        let mut totals = vec![0.0_f64; labels.len()];
        let mut n_examples = vec![0.0_f64; labels.len()];
        for (label, features) in &rows {
            n_examples[*label] += 1.0;
            for &f in features {
                counts[label * n_words + f] += 1.0;
                totals[*label] += 1.0;
            }
        }
        let alpha = settings.alpha.max(f64::MIN_POSITIVE);
        let mut log_likelihood = counts;
        for (label, total) in totals.iter().enumerate() {
            let denominator = (total + alpha * n_words as f64).ln();
            for value in &mut log_likelihood[label * n_words..(label + 1) * n_words] {
                *value = (*value + alpha).ln() - denominator;
            }
        }
        let n_total = rows.len().max(1) as f64;
        let log_prior = n_examples.iter().map(|n| (n / n_total).ln()).collect();
        Model {
            labels,
            vocabulary,
            log_likelihood,
            log_prior,
        }
    }

    /// The labels learned, in order of first appearance.
    pub fn labels(&self) -> &[L] {
        &self.labels
    }

    fn known<'f, S: AsRef<str>>(&self, features: &'f [S]) -> Vec<(&'f str, usize)> {
        let mut known: Vec<(&str, usize)> = Vec::new();
        for feature in features {
            let feature = feature.as_ref();
            if let Some(&i) = self.vocabulary.get(feature)
                && !known.iter().any(|(_, j)| *j == i)
            {
                known.push((feature, i));
            }
        }
        known
    }

    /// How many of the distinct `features` the training saw.
    pub fn knows<S: AsRef<str>>(&self, features: &[S]) -> usize {
        self.known(features).len()
    }

    /// Every label with its probability for a request with `features`, most probable first
    /// (ties in the order of the labels).
    pub fn guesses<S: AsRef<str>>(&self, features: &[S]) -> Vec<Guess<'_, L>> {
        let known = self.known(features);
        let n_words = self.vocabulary.len();
        let scores: Vec<f64> = (0..self.labels.len())
            .map(|label| {
                let row = &self.log_likelihood[label * n_words..(label + 1) * n_words];
                self.log_prior[label] + known.iter().map(|(_, f)| row[*f]).sum::<f64>()
            })
            .collect();
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - best).exp()).collect();
        let sum: f64 = weights.iter().sum();
        let mut guesses: Vec<Guess<'_, L>> = self
            .labels
            .iter()
            .zip(weights)
            .map(|(label, w)| Guess {
                label,
                probability: w / sum,
            })
            .collect();
        guesses.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        guesses
    }

    /// The features of `features` that most favour `label` over `against`, strongest first,
    /// at most `n` (only those that favour it): what to show as the reason.
    pub fn evidence<'f, S: AsRef<str>>(
        &self,
        features: &'f [S],
        label: &L,
        against: Option<&L>,
        n: usize,
    ) -> Vec<&'f str> {
        let Some(c) = self.labels.iter().position(|l| l == label) else {
            return Vec::new();
        };
        let other = against.and_then(|a| self.labels.iter().position(|l| l == a));
        let n_words = self.vocabulary.len();
        let at = |label: usize, f: usize| self.log_likelihood[label * n_words + f];
        let mut scored: Vec<(&str, f64)> = self
            .known(features)
            .into_iter()
            .map(|(word, f)| {
                let baseline = match other {
                    Some(o) if o != c => at(o, f),
                    // Against every other label: their mean.
                    _ => {
                        let others = (0..self.labels.len()).filter(|&o| o != c);
                        let n_others = self.labels.len().saturating_sub(1).max(1) as f64;
                        others.map(|o| at(o, f)).sum::<f64>() / n_others
                    }
                };
                (word, at(c, f) - baseline)
            })
            .filter(|(_, lift)| *lift > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(n).map(|(word, _)| word).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(features: &str, label: &'static str) -> Example<&'static str> {
        Example {
            features: features.split(' ').map(str::to_owned).collect(),
            label,
        }
    }

    fn examples() -> Vec<Example<&'static str>> {
        vec![
            example("停水 没水 小区", "water"),
            example("水压 没水 高层", "water"),
            example("水费 水表", "water"),
            example("停电 没电 小区", "power"),
            example("电费 电表", "power"),
            example("物业 电梯 小区", "housing"),
        ]
    }

    #[test]
    fn a_request_goes_to_the_label_whose_requests_share_its_words() {
        let model = Model::train(&examples(), Settings::default());
        let guesses = model.guesses(&["小区", "没水"]);
        assert_eq!(*guesses[0].label, "water");
        let guesses = model.guesses(&["电梯", "坏了"]);
        assert_eq!(*guesses[0].label, "housing");
    }

    #[test]
    fn the_probabilities_sum_to_one_and_come_best_first() {
        let model = Model::train(&examples(), Settings::default());
        let guesses = model.guesses(&["停电", "小区"]);
        let sum: f64 = guesses.iter().map(|g| g.probability).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        assert!(
            guesses
                .windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
        assert_eq!(guesses.len(), 3);
    }

    #[test]
    fn unknown_words_leave_the_prior() {
        let model = Model::train(&examples(), Settings::default());
        let guesses = model.guesses(&["火星"]);
        // Water has three of the six examples.
        assert_eq!(*guesses[0].label, "water");
        assert!((guesses[0].probability - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_model_counts_the_features_it_saw() {
        let model = Model::train(&examples(), Settings::default());
        assert_eq!(model.knows(&["没水", "火星", "没水", "小区"]), 2);
    }

    #[test]
    fn a_word_said_twice_counts_once() {
        let model = Model::train(&examples(), Settings::default());
        assert_eq!(
            model.guesses(&["没电", "没电", "没电"]),
            model.guesses(&["没电"])
        );
    }

    #[test]
    fn the_evidence_is_the_words_that_favour_the_label() {
        let model = Model::train(&examples(), Settings::default());
        let words = ["小区", "没水", "火星"];
        assert_eq!(
            model.evidence(&words, &"water", Some(&"power"), 3),
            ["没水"]
        );
        // 小区 is one of housing's three words, one of water's eight.
        assert_eq!(
            model.evidence(&words, &"housing", Some(&"water"), 3),
            ["小区"]
        );
        assert!(
            model
                .evidence(&["没水", "火星"], &"power", Some(&"water"), 3)
                .is_empty()
        );
    }

    #[test]
    fn the_same_examples_give_the_same_model() {
        let a = Model::train(&examples(), Settings::default());
        let b = Model::train(&examples(), Settings::default());
        let words = ["小区", "电梯", "没水"];
        assert_eq!(a.guesses(&words), b.guesses(&words));
        assert_eq!(a.labels(), b.labels());
    }

    #[test]
    fn an_empty_training_set_guesses_nothing() {
        let model: Model<&str> = Model::train(&[], Settings::default());
        assert!(model.guesses(&["没水"]).is_empty());
    }
}

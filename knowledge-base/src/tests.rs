//! Index, ranking and projection tests on the fixtures, in RAM.

use chrono::{DateTime, Utc};

use crate::article::{self, Article, ArticleCommand, Status};
use crate::fixtures;
use crate::index::{KbIndex, SearchRequest};
use crate::projection::{Projection, gap_key, read_answer};

fn now() -> DateTime<Utc> {
    "2026-03-02T02:00:00Z".parse().unwrap()
}

fn published(seed: &fixtures::SeedArticle) -> Article {
    Article {
        id: seed.id.clone(),
        content: seed.content.clone(),
        status: Status::Published,
        version: 1,
        updated_at: now(),
    }
}

fn fixture_index() -> KbIndex {
    let index =
        KbIndex::create_in_ram(fixtures::segmenter().unwrap(), fixtures::synonyms()).unwrap();
    for seed in fixtures::articles().unwrap() {
        index.upsert(&published(&seed)).unwrap();
    }
    index.commit("").unwrap();
    index
}

fn search(index: &KbIndex, text: &str) -> Vec<String> {
    let request = SearchRequest {
        text: text.into(),
        limit: 10,
        ..SearchRequest::default()
    };
    index
        .search(&request, now())
        .unwrap()
        .hits
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

#[test]
fn the_fixtures_have_at_least_150_articles_with_owning_units_and_60_questions() {
    let articles = fixtures::articles().unwrap();
    assert!(articles.len() >= 150, "{}", articles.len());
    assert!(
        articles
            .iter()
            .all(|a| a.content.unit_id.starts_with("city.bureau."))
    );
    let ids: std::collections::HashSet<_> = articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), articles.len(), "article ids are unique");
    let questions = fixtures::questions().unwrap();
    assert!(questions.len() >= 60);
    assert!(questions.iter().all(|q| ids.contains(q.article.as_str())));
}

#[test]
fn colloquial_questions_find_their_article_within_the_top_three() {
    let index = fixture_index();
    let questions = fixtures::questions().unwrap();
    let (mut hit1, mut hit3) = (0, 0);
    let mut misses = Vec::new();
    for question in &questions {
        let ids = search(&index, &question.q);
        if ids.first() == Some(&question.article) {
            hit1 += 1;
        }
        if ids.iter().take(3).any(|id| id == &question.article) {
            hit3 += 1;
        } else {
            misses.push(format!(
                "{} → {:?} (want {})",
                question.q,
                &ids[..ids.len().min(3)],
                question.article
            ));
        }
    }
    let n = questions.len() as f64;
    let (at1, at3) = (f64::from(hit1) / n, f64::from(hit3) / n);
    println!(
        "relevance: {} questions, hit@1 = {at1:.3}, hit@3 = {at3:.3}",
        questions.len()
    );
    for miss in &misses {
        println!("  miss: {miss}");
    }
    assert!(
        at3 >= 0.95,
        "hit@3 {at3:.3} below 0.95; misses: {misses:#?}"
    );
    assert!(at1 >= 0.85, "hit@1 {at1:.3} below 0.85");
}

#[test]
fn a_lost_social_security_card_finds_the_replacement_article_first() {
    let index = fixture_index();
    assert_eq!(search(&index, "社保卡丢了怎么办")[0], "hrss-001");
    assert_eq!(search(&index, "楼上装修太吵了")[0], "hou-001");
}

#[test]
fn a_query_without_any_word_finds_nothing() {
    let index = fixture_index();
    assert!(search(&index, "的了吗？").is_empty());
    assert!(search(&index, "").is_empty());
}

#[test]
fn snippets_highlight_the_matching_words() {
    let index = fixture_index();
    let request = SearchRequest {
        text: "公积金贷款".into(),
        limit: 3,
        ..SearchRequest::default()
    };
    let page = index.search(&request, now()).unwrap();
    assert!(page.total >= 1);
    assert!(
        page.hits[0].snippet.contains("<em>"),
        "{}",
        page.hits[0].snippet
    );
}

#[test]
fn filters_keep_only_the_requested_category_and_unit() {
    let index = fixture_index();
    let request = SearchRequest {
        text: "投诉".into(),
        category: Some("消费维权".into()),
        limit: 50,
        ..SearchRequest::default()
    };
    let page = index.search(&request, now()).unwrap();
    assert!(!page.hits.is_empty());
    assert!(page.hits.iter().all(|h| h.category == "消费维权"));
    let request = SearchRequest {
        text: "投诉".into(),
        unit_id: Some("city.bureau.housing".into()),
        limit: 50,
        ..SearchRequest::default()
    };
    let page = index.search(&request, now()).unwrap();
    assert!(!page.hits.is_empty());
    assert!(page.hits.iter().all(|h| h.unit_id == "city.bureau.housing"));
}

#[test]
fn paging_skips_the_first_hits_and_keeps_the_total() {
    let index = fixture_index();
    let first = SearchRequest {
        text: "投诉".into(),
        limit: 5,
        ..SearchRequest::default()
    };
    let second = SearchRequest {
        offset: 5,
        ..first.clone()
    };
    let a = index.search(&first, now()).unwrap();
    let b = index.search(&second, now()).unwrap();
    assert_eq!(a.total, b.total);
    assert!(a.total > 5);
    assert!(
        b.hits
            .iter()
            .all(|hit| a.hits.iter().all(|other| other.id != hit.id))
    );
}

#[test]
fn suggest_matches_half_typed_words() {
    let index = fixture_index();
    let ids: Vec<String> = index
        .suggest("居住", 5, now())
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert!(
        ids.iter().take(3).any(|id| id.starts_with("pol-00")),
        "{ids:?}"
    );
    let ids: Vec<String> = index
        .suggest("社保卡丢", 5, now())
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids[0], "hrss-001");
}

#[test]
fn a_retired_article_is_never_suggested() {
    let index = fixture_index();
    let seed = fixtures::articles()
        .unwrap()
        .into_iter()
        .find(|a| a.id == "hrss-001")
        .unwrap();
    let mut retired = published(&seed);
    retired.status = Status::Retired;
    index.upsert(&retired).unwrap();
    index.commit("").unwrap();
    for text in ["社保卡丢了", "社保卡", "社会保障卡遗失如何挂失和补办"] {
        let suggested = index.suggest(text, 10, now()).unwrap();
        assert!(suggested.hits.iter().all(|h| h.id != "hrss-001"), "{text}");
        assert!(search(&index, text).iter().all(|id| id != "hrss-001"));
    }
}

#[test]
fn an_expired_or_not_yet_valid_article_is_never_an_answer() {
    let index = fixture_index();
    let seeds = fixtures::articles().unwrap();
    let mut expired = published(seeds.iter().find(|a| a.id == "heat-001").unwrap());
    expired.content.valid_until = Some("2026-01-01T00:00:00Z".parse().unwrap());
    let mut future = published(seeds.iter().find(|a| a.id == "heat-002").unwrap());
    future.content.valid_from = Some("2026-06-01T00:00:00Z".parse().unwrap());
    index.upsert(&expired).unwrap();
    index.upsert(&future).unwrap();
    index.commit("").unwrap();
    let ids: Vec<String> = index
        .suggest("暖气", 20, now())
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert!(!ids.contains(&"heat-001".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"heat-002".to_owned()), "{ids:?}");
    let later: DateTime<Utc> = "2026-07-01T00:00:00Z".parse().unwrap();
    let request = SearchRequest {
        text: "暖气不热".into(),
        limit: 20,
        ..SearchRequest::default()
    };
    let ids: Vec<String> = index
        .search(&request, later)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert!(
        ids.contains(&"heat-002".to_owned()),
        "valid from June: {ids:?}"
    );
}

fn lifecycle_events() -> Vec<(u64, Article)> {
    // Positions with gaps: case events in between.
    let seeds = fixtures::articles().unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    for seed in seeds.iter().take(20) {
        let mut state = None;
        for command in [
            ArticleCommand::Draft {
                id: seed.id.clone(),
                content: seed.content.clone(),
            },
            ArticleCommand::Publish,
        ] {
            for event in article::decide(
                state.as_ref(),
                &command,
                now(),
                &article::Editor {
                    username: "admin",
                    any_unit: true,
                    own_unit: None,
                },
                &|_| true,
            )
            .unwrap()
            {
                state = article::evolve(state, &event);
                position += 3;
                out.push((position, state.clone().unwrap()));
            }
        }
    }
    let mut retired = out[1].1.clone();
    retired.status = Status::Retired;
    position += 1;
    out.push((position, retired));
    out
}

#[test]
fn the_checkpoint_and_answer_counts_are_committed_with_the_index() {
    let index =
        KbIndex::create_in_ram(fixtures::segmenter().unwrap(), fixtures::synonyms()).unwrap();
    let projection = Projection::open(index).unwrap();
    for (position, article) in lifecycle_events() {
        projection.article_changed(position, &article).unwrap();
    }
    let last = projection.checkpoint();
    projection
        .answered(last + 1, &["hrss-002".into(), "hrss-003".into()])
        .unwrap();
    projection.answered(last + 2, &["hrss-002".into()]).unwrap();
    // Replaying what was applied is a no-op.
    projection.answered(last + 2, &["hrss-002".into()]).unwrap();
    projection.passed(last + 9).unwrap();
    assert!(projection.commit(0).unwrap());
    assert_eq!(projection.answers("hrss-002"), 2);
    assert_eq!(projection.index().num_articles(), 19);
    let payload = projection.index().payload().unwrap().unwrap();
    assert!(
        payload.contains(&format!("\"checkpoint\":{}", last + 9)),
        "{payload}"
    );
    assert!(payload.contains("\"hrss-002\":2"), "{payload}");
}

#[test]
fn rebuilding_from_zero_gives_the_same_results() {
    let index =
        KbIndex::create_in_ram(fixtures::segmenter().unwrap(), fixtures::synonyms()).unwrap();
    let projection = Projection::open(index).unwrap();
    let events = lifecycle_events();
    let apply = |projection: &Projection| {
        for (position, article) in &events {
            projection.article_changed(*position, article).unwrap();
        }
        projection.commit(0).unwrap();
    };
    apply(&projection);
    let before: Vec<Vec<String>> = ["社保", "养老保险", "工资"]
        .iter()
        .map(|q| search(projection.index(), q))
        .collect();
    projection.reset().unwrap();
    assert_eq!(projection.index().num_articles(), 0);
    apply(&projection);
    let after: Vec<Vec<String>> = ["社保", "养老保险", "工资"]
        .iter()
        .map(|q| search(projection.index(), q))
        .collect();
    assert_eq!(before, after);
    assert!(!before[0].is_empty());
}

#[test]
fn an_answer_on_the_call_cites_its_articles() {
    let data =
        r#"{"answered_on_call":{"reply":"已答复","kb_article_ids":["hrss-001","fund-001"]}}"#;
    assert_eq!(
        read_answer("answered_on_call", data).map(|a| a.article_ids),
        Some(vec!["hrss-001".to_owned(), "fund-001".to_owned()])
    );
    assert_eq!(read_answer("accepted", data), None);
}

#[test]
fn knowledge_gaps_are_counted_by_question_and_committed_with_the_index() {
    let index =
        KbIndex::create_in_ram(fixtures::segmenter().unwrap(), fixtures::synonyms()).unwrap();
    let projection = Projection::open(index).unwrap();
    let t = |h: u32| {
        chrono::DateTime::parse_from_rfc3339(&format!("2026-03-02T{h:02}:00:00+08:00"))
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    projection
        .gap_met(1, "新生儿医保 怎么办？", "已登记", "2026030200001", t(9))
        .unwrap();
    projection
        .gap_met(2, "井盖谁修", "已登记", "2026030200002", t(10))
        .unwrap();
    projection
        .gap_met(3, "新生儿医保怎么办", "稍后回电", "2026030200003", t(11))
        .unwrap();
    // Replaying what was applied is a no-op.
    projection
        .gap_met(3, "新生儿医保怎么办", "稍后回电", "2026030200003", t(11))
        .unwrap();
    assert!(projection.commit(0).unwrap());
    let gaps = projection.gaps();
    assert_eq!(gaps.len(), 2);
    assert_eq!(gaps[0].question, "新生儿医保 怎么办？");
    assert_eq!(gaps[0].count, 2);
    assert_eq!((gaps[0].first_at, gaps[0].last_at), (t(9), t(11)));
    assert_eq!(gaps[0].last_reply, "稍后回电");
    assert_eq!(gaps[0].last_case_id, "2026030200003");
    assert_eq!(gaps[1].count, 1);
    // What a restart reads back from the commit.
    projection.rollback().unwrap();
    assert_eq!(projection.gaps(), gaps);
}

#[test]
fn an_answer_recording_a_gap_is_read_with_its_question_and_reply() {
    let data =
        r#"{"answered_on_call":{"reply":"已登记","kb_article_ids":[],"knowledge_gap":"井盖谁修"}}"#;
    let answer = read_answer("answered_on_call", data).unwrap();
    assert_eq!(answer.knowledge_gap.as_deref(), Some("井盖谁修"));
    assert_eq!(answer.reply, "已登记");
    assert!(answer.article_ids.is_empty());
    assert_eq!(gap_key(" 井盖 谁修？ "), gap_key("井盖谁修"));
}

#[test]
fn highlighting_long_bodies_with_nested_words_never_fails() {
    // Search mode emits a long word after its parts; the snippet generator needs offsets that
    // never go backwards (a 100,000-article benchmark once panicked here).
    let index =
        KbIndex::create_in_ram(fixtures::segmenter().unwrap(), fixtures::synonyms()).unwrap();
    let seeds = fixtures::articles().unwrap();
    for (i, seed) in seeds.iter().enumerate() {
        let mut article = published(seed);
        let other = &seeds[(i * 7 + 3) % seeds.len()];
        article.content.body = format!(
            "中华人民共和国兰州市城关区：{}{}",
            seed.content.body, other.content.body
        );
        index.upsert(&article).unwrap();
    }
    index.commit("").unwrap();
    for question in fixtures::questions().unwrap() {
        let request = SearchRequest {
            text: format!("{} 中华人民共和国", question.q),
            limit: 10,
            ..SearchRequest::default()
        };
        let page = index.search(&request, now()).unwrap();
        assert!(page.hits.iter().all(|hit| !hit.snippet.is_empty()));
    }
}

//! 知识库: operators find the right article for a colloquial question, retired articles are
//! never suggested, editing rights, answer counts, and the index surviving a restart.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, immediate_intake, urlencode};

async fn json_ok(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.expect("JSON body");
    assert!(status.is_success(), "status {status}: {body}");
    body
}

fn ids(found: &Value) -> Vec<String> {
    found["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn search(app: &TestApp, token: &str, query: &str) -> Value {
    let url = format!("/api/v1/kb/search?q={}", urlencode(query));
    json_ok(app.get(Some(token), &url).await).await
}

async fn suggest(app: &TestApp, token: &str, query: &str) -> Value {
    let url = format!("/api/v1/kb/suggest?q={}", urlencode(query));
    json_ok(app.get(Some(token), &url).await).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    app.http
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("send POST")
}

async fn put(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    app.http
        .put(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("send PUT")
}

fn article(id: &str, unit_id: &str) -> Value {
    json!({
        "id": id,
        "title": "兰州市冬季清雪期间公交线路临时调整",
        "body": "降雪期间部分山区公交线路临时停运或绕行，以兰州公交公众号通知为准。",
        "similar_questions": ["下雪了公交还开吗"],
        "category": "交通出行",
        "tags": ["公交", "清雪"],
        "unit_id": unit_id,
    })
}

#[tokio::test]
async fn an_operator_finds_the_right_article_first_for_a_colloquial_question() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    for (question, want) in [
        ("社保卡丢了怎么办", "hrss-001"),
        ("楼上装修太吵了", "hou-001"),
        ("小区门口有人摆摊卖菜", "urb-001"),
        ("老板拖了三个月工资不给", "hrss-020"),
    ] {
        let found = search(&app, &op, question).await;
        assert_eq!(
            ids(&found).first().map(String::as_str),
            Some(want),
            "{question}: {found}"
        );
        assert!(found["total"].as_u64().unwrap() >= 1);
        let first = &found["results"][0];
        assert!(
            first["snippet"].as_str().unwrap().contains("<em>"),
            "{first}"
        );
        assert!(first["score"].as_f64().unwrap() > 0.0);
        assert!(
            first["unit_id"]
                .as_str()
                .unwrap()
                .starts_with("city.bureau.")
        );
    }
    // Filters and suggestions.
    let found = json_ok(
        app.get(
            Some(&op),
            &format!(
                "/api/v1/kb/search?q={}&unit_id=city.bureau.fund",
                urlencode("提取")
            ),
        )
        .await,
    )
    .await;
    assert!(!ids(&found).is_empty());
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["unit_id"] == "city.bureau.fund")
    );
    let suggested = suggest(&app, &op, "公积金提").await;
    assert!(ids(&suggested).len() <= 5);
    assert!(
        ids(&suggested).iter().any(|id| id == "fund-001"),
        "{suggested}"
    );
    // Unauthenticated callers get nothing.
    assert_eq!(app.get(None, "/api/v1/kb/search?q=x").await.status(), 401);
}

#[tokio::test]
async fn a_retired_article_is_never_suggested() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let leader = app.login("shift_leader").await;
    assert!(ids(&suggest(&app, &op, "社保卡丢了").await).contains(&"hrss-001".to_owned()));

    let retired = json_ok(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles/hrss-001/retire",
            &json!({"reason": "政策调整"}),
        )
        .await,
    )
    .await;
    assert_eq!(retired["status"], "retired");
    assert_eq!(retired["status_label"], "已下线");
    assert!(!ids(&suggest(&app, &op, "社保卡丢了").await).contains(&"hrss-001".to_owned()));
    assert!(
        !ids(&search(&app, &op, "社会保障卡遗失如何挂失和补办").await)
            .contains(&"hrss-001".to_owned())
    );
    // Retired for good.
    let res = post(
        &app,
        &leader,
        "/api/v1/kb/articles/hrss-001/publish",
        &json!({}),
    )
    .await;
    assert_problem(res, 422, "kb_article_retired").await;
    // Still readable, with its history.
    let read = json_ok(app.get(Some(&op), "/api/v1/kb/articles/hrss-001").await).await;
    assert_eq!(read["status"], "retired");
}

#[tokio::test]
async fn handlers_edit_only_their_own_units_articles() {
    let app = TestApp::spawn().await;
    let transport = app.login("transport_handler").await;
    let housing = app.login("housing_handler").await;
    let op = app.login("operator").await;
    let admin = app.login("admin").await;

    // An operator edits nothing.
    let res = post(
        &app,
        &op,
        "/api/v1/kb/articles",
        &article("snow-bus", "city.bureau.transport"),
    )
    .await;
    assert_problem(res, 403, "kb_forbidden").await;
    // A handler writes for their own unit only.
    let res = post(
        &app,
        &housing,
        "/api/v1/kb/articles",
        &article("snow-bus", "city.bureau.transport"),
    )
    .await;
    assert_problem(res, 403, "kb_forbidden").await;
    let res = post(
        &app,
        &transport,
        "/api/v1/kb/articles",
        &article("snow-bus", "city.bureau.transport"),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["status"], "draft");
    assert_eq!(created["version"], 1);
    // A draft is no answer.
    assert!(!ids(&search(&app, &op, "下雪公交").await).contains(&"snow-bus".to_owned()));
    // Another unit's handler may not publish, edit or retire it.
    let res = post(
        &app,
        &housing,
        "/api/v1/kb/articles/snow-bus/publish",
        &json!({}),
    )
    .await;
    assert_problem(res, 403, "kb_forbidden").await;
    let res = put(
        &app,
        &housing,
        "/api/v1/kb/articles/snow-bus",
        &article("snow-bus", "city.bureau.housing"),
    )
    .await;
    assert_problem(res, 403, "kb_forbidden").await;
    // Nor move their own article to another unit.
    let res = put(
        &app,
        &transport,
        "/api/v1/kb/articles/snow-bus",
        &article("snow-bus", "city.bureau.housing"),
    )
    .await;
    assert_problem(res, 403, "kb_forbidden").await;
    // The owner publishes; operators now find it.
    let published = json_ok(
        post(
            &app,
            &transport,
            "/api/v1/kb/articles/snow-bus/publish",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(published["status"], "published");
    assert_eq!(published["stream_version"], 2);
    assert!(published["position"].is_u64(), "{published}");
    assert_eq!(
        ids(&search(&app, &op, "下雪了公交还开吗").await)[0],
        "snow-bus"
    );
    // An edit with a stale version is a conflict; the admin edits any article.
    let res = app
        .http
        .put(app.url("/api/v1/kb/articles/snow-bus"))
        .bearer_auth(&admin)
        .header("If-Match", "1")
        .json(&article("snow-bus", "city.bureau.transport"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "version_conflict").await;
    let mut edited = article("snow-bus", "city.bureau.transport");
    edited["title"] = json!("兰州市冬季降雪期间公交线路临时调整");
    let res = app
        .http
        .put(app.url("/api/v1/kb/articles/snow-bus"))
        .bearer_auth(&admin)
        .header("If-Match", published["stream_version"].to_string())
        .json(&edited)
        .send()
        .await
        .unwrap();
    let edited = json_ok(res).await;
    assert_eq!(edited["version"], 2);
    // Rules are 422, unknown articles 404.
    let mut bad = article("bad", "city.bureau.transport");
    bad["title"] = json!("");
    assert_problem(
        post(&app, &admin, "/api/v1/kb/articles", &bad).await,
        422,
        "kb_invalid_title",
    )
    .await;
    let res = post(
        &app,
        &admin,
        "/api/v1/kb/articles",
        &article("ghost-unit", "city.bureau.nowhere"),
    )
    .await;
    assert_problem(res, 422, "kb_unknown_unit").await;
    let res = post(&app, &admin, "/api/v1/kb/articles/nope/publish", &json!({})).await;
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn answers_on_the_call_are_counted_and_the_index_survives_a_restart() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let created = app.create(&op, &immediate_intake("咨询公积金提取")).await;
    app.ok(
        &op,
        &created.id,
        "answer",
        &json!({ "reply": "已告知提取条件和办理渠道", "kb_article_ids": ["fund-001", "fund-002"] }),
    )
    .await;
    // The count comes from the event stream; wait for the index to apply it.
    let mut count = 0;
    for _ in 0..50 {
        let read = json_ok(app.get(Some(&op), "/api/v1/kb/articles/fund-001").await).await;
        count = read["answer_count"].as_u64().unwrap();
        if count == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, 1);

    // kill -9: only what the index committed survives, and it must agree with the store.
    app.kill_hard();
    app.restart().await;
    let op = app.login("operator").await;
    let read = json_ok(app.get(Some(&op), "/api/v1/kb/articles/fund-001").await).await;
    assert_eq!(
        read["answer_count"], 1,
        "the count is committed with the index"
    );
    assert_eq!(
        ids(&search(&app, &op, "社保卡丢了怎么办").await)[0],
        "hrss-001"
    );
    // Not seeded twice.
    assert_eq!(read["stream_version"], 2);
}

#[tokio::test]
async fn an_article_outside_its_validity_is_never_an_answer() {
    let app = TestApp::spawn().await;
    let leader = app.login("shift_leader").await;
    let op = app.login("operator").await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut later = article("snow-bus-later", "city.bureau.transport");
    later["valid_from"] = json!(tomorrow);
    let res = post(&app, &leader, "/api/v1/kb/articles", &later).await;
    assert_eq!(res.status(), 201);
    json_ok(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles/snow-bus-later/publish",
            &json!({}),
        )
        .await,
    )
    .await;
    assert!(
        !ids(&search(&app, &op, "下雪了公交还开吗").await).contains(&"snow-bus-later".to_owned())
    );
    assert!(!ids(&suggest(&app, &op, "下雪了公交").await).contains(&"snow-bus-later".to_owned()));
    // An article whose validity has already ended cannot be published.
    let mut ended = article("snow-bus-ended", "city.bureau.transport");
    ended["valid_until"] = json!("2020-01-01T00:00:00+08:00");
    assert_eq!(
        post(&app, &leader, "/api/v1/kb/articles", &ended)
            .await
            .status(),
        201
    );
    let res = post(
        &app,
        &leader,
        "/api/v1/kb/articles/snow-bus-ended/publish",
        &json!({}),
    )
    .await;
    assert_problem(res, 422, "kb_article_expired").await;
}

#[tokio::test]
async fn an_on_call_answer_citing_an_unknown_draft_or_retired_article_is_refused_and_closes_nothing()
 {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let leader = app.login("shift_leader").await;
    let id = app.create(&op, &immediate_intake("咨询下雪公交")).await.id;
    // A draft article, and one published then retired.
    assert_eq!(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles",
            &article("snow-draft", "city.bureau.transport")
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles",
            &article("snow-old", "city.bureau.transport")
        )
        .await
        .status(),
        201
    );
    json_ok(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles/snow-old/publish",
            &json!({}),
        )
        .await,
    )
    .await;
    json_ok(
        post(
            &app,
            &leader,
            "/api/v1/kb/articles/snow-old/retire",
            &json!({ "reason": "政策已调整" }),
        )
        .await,
    )
    .await;
    let version = app.version(&id).await;
    for (cited, code, named) in [
        (
            json!(["fund-001", "no-such-article"]),
            "unknown_article",
            "no-such-article",
        ),
        (json!(["snow-draft"]), "article_not_in_force", "snow-draft"),
        (json!(["snow-old"]), "article_not_in_force", "snow-old"),
    ] {
        let res = app
            .post_verb(
                &op,
                &id,
                "answer",
                &json!({ "reply": "已答复", "kb_article_ids": cited }),
            )
            .await;
        let problem = assert_problem(res, 422, code).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(named),
            "the refusal names the article: {problem}"
        );
    }
    assert_eq!(app.version(&id).await, version, "nothing was appended");
    assert_eq!(app.case(&op, &id).await["status"], "accepted");
}

#[tokio::test]
async fn with_no_answer_in_the_base_the_operator_records_a_knowledge_gap_and_editors_see_how_often()
{
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let mut last = 0;
    for question in [
        "新生儿医保 网上怎么办理？",
        "新生儿医保网上怎么办理",
        "路边井盖谁来修",
    ] {
        let id = app.create(&op, &immediate_intake(question)).await.id;
        let done = app
            .ok(
                &op,
                &id,
                "answer",
                &json!({
                    "reply": "已登记，相关部门将在一个工作日内回复。",
                    "knowledge_gap": { "question": question },
                }),
            )
            .await;
        last = done.position;
        let case = app.case(&op, &id).await;
        assert_eq!(case["status"], "completed");
        assert_eq!(case["knowledge_gap"], question.trim());
        assert_eq!(case["kb_article_ids"], json!([]));
    }
    // Citing and recording a gap at once is bad input.
    let id = app.create(&op, &immediate_intake("又一问")).await.id;
    let res = app
        .post_verb(
            &op,
            &id,
            "answer",
            &json!({ "reply": "答", "kb_article_ids": ["fund-001"], "knowledge_gap": { "question": "又一问" } }),
        )
        .await;
    assert_problem(res, 400, "gap_with_citations").await;

    // Operators record gaps; editors read them.
    assert_problem(
        app.get(Some(&op), "/api/v1/kb/gaps").await,
        403,
        "role_not_allowed",
    )
    .await;
    let leader = app.login("shift_leader").await;
    let mut gaps = Value::Null;
    for _ in 0..50 {
        // The list follows the store through the index; wait for the last answer.
        let res = app
            .get(
                Some(&leader),
                &format!("/api/v1/kb/search?q=医保&min_position={last}"),
            )
            .await;
        assert_eq!(res.status(), 200);
        gaps = json_ok(app.get(Some(&leader), "/api/v1/kb/gaps").await).await;
        if gaps["total"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(gaps["total"], 2, "{gaps}");
    assert_eq!(gaps["gaps"][0]["question"], "新生儿医保 网上怎么办理？");
    assert_eq!(
        gaps["gaps"][0]["count"], 2,
        "the same question counts once per call"
    );
    assert_eq!(gaps["gaps"][1]["question"], "路边井盖谁来修");
    assert_eq!(gaps["gaps"][1]["count"], 1);
    assert_eq!(
        gaps["gaps"][0]["last_reply"],
        "已登记，相关部门将在一个工作日内回复。"
    );
    let res = app.get(Some(&leader), "/api/v1/kb/gaps?page=0").await;
    assert_problem(res, 400, "invalid_paging").await;
    let res = app
        .get(Some(&leader), "/api/v1/kb/gaps?per_page=100000")
        .await;
    assert_problem(res, 400, "invalid_paging").await;
}

#[tokio::test]
async fn editors_list_articles_in_every_state_and_handlers_their_own_units() {
    let app = TestApp::spawn().await;
    let leader = app.login("shift_leader").await;
    let transport = app.login("transport_handler").await;
    let op = app.login("operator").await;
    assert_eq!(
        post(
            &app,
            &transport,
            "/api/v1/kb/articles",
            &article("snow-list", "city.bureau.transport")
        )
        .await
        .status(),
        201
    );
    let drafts = json_ok(
        app.get(Some(&leader), "/api/v1/kb/articles?status=draft")
            .await,
    )
    .await;
    assert_eq!(drafts["total"], 1, "{drafts}");
    assert_eq!(drafts["articles"][0]["id"], "snow-list");
    assert_eq!(drafts["articles"][0]["status_label"], "草稿");
    let all = json_ok(
        app.get(Some(&leader), "/api/v1/kb/articles?per_page=200")
            .await,
    )
    .await;
    assert_eq!(all["total"], 155, "the 154 seeded articles and the draft");
    assert_eq!(
        all["articles"][0]["id"], "snow-list",
        "the newest change first"
    );
    // A handler lists their own unit's articles only.
    let own = json_ok(app.get(Some(&transport), "/api/v1/kb/articles").await).await;
    assert!(
        own["articles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["unit_id"] == "city.bureau.transport"),
        "{own}"
    );
    assert_problem(
        app.get(Some(&op), "/api/v1/kb/articles").await,
        403,
        "role_not_allowed",
    )
    .await;
    assert_problem(
        app.get(Some(&leader), "/api/v1/kb/articles?status=lost")
            .await,
        400,
        "invalid_query",
    )
    .await;
}

async fn post_keyed(app: &TestApp, token: &str, path: &str, key: &str, body: &Value) -> Response {
    app.http
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("send POST")
}

#[tokio::test]
async fn a_retried_article_command_with_its_key_runs_once_and_a_reused_key_is_refused() {
    let app = TestApp::spawn().await;
    let leader = app.login("shift_leader").await;
    // A create without an id: the retry names the same article, drafted once.
    let mut body = article("ignored", "city.bureau.transport");
    body.as_object_mut().expect("object").remove("id");
    let first =
        json_ok(post_keyed(&app, &leader, "/api/v1/kb/articles", "create-1", &body).await).await;
    let again =
        json_ok(post_keyed(&app, &leader, "/api/v1/kb/articles", "create-1", &body).await).await;
    let id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        (&first["stream_version"], &again["stream_version"]),
        (&json!(1), &json!(1))
    );
    // Publishing twice with one key publishes once (a second publish would be refused).
    let path = format!("/api/v1/kb/articles/{id}/publish");
    let published = json_ok(post_keyed(&app, &leader, &path, "publish-1", &json!({})).await).await;
    let retried = json_ok(post_keyed(&app, &leader, &path, "publish-1", &json!({})).await).await;
    assert_eq!(published["status"], "published");
    assert_eq!(published["stream_version"], 2);
    assert!(published["position"].is_u64(), "{published}");
    assert_eq!(retried["stream_version"], published["stream_version"]);
    assert_eq!(retried["position"], published["position"]);
    let fresh = post_keyed(&app, &leader, &path, "publish-2", &json!({})).await;
    assert_problem(fresh, 422, "kb_article_already_published").await;
    // The key of the create sent with another request is refused, and nothing is written.
    let mut other = body.clone();
    other["title"] = json!("另一篇文章");
    let reused = post_keyed(&app, &leader, "/api/v1/kb/articles", "create-1", &other).await;
    assert_problem(reused, 422, "idempotency_key_reused").await;
    let read = json_ok(
        app.get(Some(&leader), &format!("/api/v1/kb/articles/{id}"))
            .await,
    )
    .await;
    assert_eq!(read["stream_version"], published["stream_version"]);
}

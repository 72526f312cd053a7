//! The HTTP API (axum): JSON under `/api/v1`, problem+json errors, bearer tokens, and an
//! OpenAPI document generated from the handlers themselves.

pub mod admin;
pub mod cases;
pub mod directory;
pub mod error;
pub mod extract;
pub mod kb;
pub mod queries;
pub mod reports;
pub mod routing;
pub mod rules;
pub mod security;
pub mod status;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use error::{ApiError, InternalCause};

pub use crate::app::AppState;

/// Every part of the [`AppState`] a handler may ask for by type (`State<Arc<ReadSide>>`,
/// `State<KpiWeights>` …): one state built once by `server`, so a handler can never meet a
/// missing piece at run time.
macro_rules! state_part {
    ($ty:ty, $field:ident) => {
        impl axum::extract::FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    };
}
state_part!(Arc<App>, app);
state_part!(Arc<crate::projection_runner::ReadSide>, read);
state_part!(Arc<crate::kb::Kb>, kb);
state_part!(Arc<crate::case_search::CaseSearch>, case_search);
state_part!(projections::kpi::KpiWeights, kpi_weights);

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Minqing 12345 API", description = "民情 — case management for a 12345 government service hotline"),
    tags((name = "cases", description = "工单: intake, flow commands, view"), (name = "auth"), (name = "directory"), (name = "reports", description = "日报: the efficiency office's daily report"), (name = "security", description = "the audit of access and the login locks"))
)]
struct ApiDoc;

/// Times on the wire: RFC 3339 in Asia/Shanghai (+08:00), to the second.
pub use crate::app::rfc3339 as ts;

/// The whole router: the API, its OpenAPI document, `/healthz`.
pub fn router(app: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(admin::router())
        .merge(cases::router())
        .merge(directory::router())
        .merge(kb::router())
        .merge(queries::router())
        .merge(reports::router())
        .merge(routing::router())
        .merge(rules::router())
        .merge(security::router())
        .merge(status::router())
        .split_for_parts();
    let mut openapi = openapi;
    conventions(&mut openapi);
    let openapi = Arc::new(openapi);
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        // The workbench's pages and assets (`crate::web`), outside `/api/v1`.
        .merge(crate::web::router())
        // Under `/api/` a machine asked: problem+json; elsewhere a person: a page.
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/api/") {
                ApiError::RouteNotFound.into_response()
            } else {
                crate::web::not_found()
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            written_positions_only,
        ))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(app);
    with_security_headers(api)
}

/// The policy of every answer: scripts, styles and images only from this origin, never inline,
/// no plugins, no `<base>`, forms posted back here only, never framed. Strict enough for the
/// workbench pages to come; harmless on JSON.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The headers every answer carries: no MIME sniffing, no referrer sent on, never framed, the
/// [`CONTENT_SECURITY_POLICY`], and `Cache-Control: no-store` (answers carry callers' personal
/// data; a route may say otherwise, e.g. for static assets).
fn with_security_headers(router: Router) -> Router {
    use axum::http::{HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // The workbench's pages set a stricter one of their own (`web::PAGE_CSP`).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Operations anyone may call, without a bearer token.
const PUBLIC_OPERATIONS: &[&str] = &["/api/v1/auth/login"];

/// What every operation of the API shares, written into the generated document in one place
/// so no handler can forget it: the bearer scheme on all but [`PUBLIC_OPERATIONS`], and the
/// problem responses that follow from an operation's shape (401 with a token; 400, 413 and
/// 415 with a body; 400 with query parameters or command headers; 404 with an id in the path;
/// 409 with `If-Match`; 503 with `min_position` or a body), and on every operation the answers
/// of the connection layer (408 for a request head too slow, 503 at the connection cap). Every
/// error response is problem+json.
fn conventions(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };

    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the token of `POST /api/v1/auth/login`, valid 12 hours",
                    ))
                    .build(),
            ),
        );
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let params = op.parameters.as_deref().unwrap_or_default();
            let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
            let named = |name: &str| params.iter().any(|p| p.name.eq_ignore_ascii_case(name));
            let mut needed: Vec<(&str, &str)> = Vec::new();
            if !PUBLIC_OPERATIONS.contains(&path.as_str()) {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                needed.push(("401", "no or invalid bearer token (`unauthorized`)"));
            }
            if op.request_body.is_some() {
                needed.push(("400", "malformed JSON, a missing or unknown field"));
                needed.push(("413", "the body is over 64 KiB (`body_too_large`)"));
                needed.push(("415", "a body that is not JSON (`unsupported_media_type`)"));
            }
            if has(ParameterIn::Query) || has(ParameterIn::Header) {
                needed.push(("400", "a query parameter or header out of its range"));
            }
            if has(ParameterIn::Path) {
                needed.push((
                    "404",
                    "unknown, or outside the caller's scope (`not_found`)",
                ));
            }
            if named("If-Match") {
                needed.push((
                    "409",
                    "`If-Match` is stale, or a concurrent command won (`version_conflict`)",
                ));
            }
            // A body means a write, which a full, read-only or failing disk refuses.
            match (named("min_position"), op.request_body.is_some()) {
                (true, true) => needed.push((
                    "503",
                    "not caught up with `min_position` (`not_caught_up`), or the storage \
                     cannot take the write (`storage_unavailable`); `Retry-After`",
                )),
                (true, false) => needed.push((
                    "503",
                    "not caught up with `min_position` (`not_caught_up`, `Retry-After`)",
                )),
                (false, true) => needed.push((
                    "503",
                    "the storage cannot take the write now; nothing was recorded \
                     (`storage_unavailable`, `Retry-After`)",
                )),
                (false, false) => {}
            }
            // Any request, before it reaches a handler (`connections`).
            needed.push((
                "408",
                "the request head did not arrive within `--header-read-timeout` (`request_timeout`; the connection is closed)",
            ));
            needed.push((
                "503",
                "the server has `--max-connections` open (`too_many_connections`, `Retry-After`; the connection is closed)",
            ));
            for (status, description) in needed {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(description).into());
            }
            for (status, response) in op.responses.responses.iter_mut() {
                let utoipa::openapi::RefOr::T(response) = response else {
                    continue;
                };
                if response.description.is_empty() {
                    response.description = describe(status).to_owned();
                }
                if status == "503" && !response.description.contains("too_many_connections") {
                    response.description.push_str(
                        "; or the server has `--max-connections` open (`too_many_connections`)",
                    );
                }
                if status.as_str() >= "400" {
                    // Errors are problem+json (RFC 9457), whatever the annotation said.
                    if let Some(content) = response.content.shift_remove("application/json") {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), content);
                    }
                }
            }
            // A verb without fields takes no body, `{}` or an empty one.
            if let Some(body) = op.request_body.as_mut() {
                let empty = body.content.values().any(|c| {
                    matches!(&c.schema, Some(utoipa::openapi::RefOr::Ref(r)) if r.ref_location.ends_with("/EmptyBody"))
                });
                if empty {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
    }
}

/// What a status means in this API, for responses declared without a description.
fn describe(status: &str) -> &'static str {
    match status {
        "200" => "done",
        "201" => "created",
        "204" => "done, no content",
        "400" => "bad input: malformed JSON, a missing or unknown field, a bad query or header",
        "401" => "no or invalid bearer token (`unauthorized`)",
        "403" => {
            "the caller's role or unit may not do this (`role_not_allowed`, `unit_not_allowed`, …), \
             or the caller must change a handed-out password first (`password_change_required`)"
        }
        "404" => "unknown, or outside the caller's scope (`not_found`)",
        "408" => "the request head did not arrive in time (`request_timeout`)",
        "409" => "the resource moved on (`version_conflict`)",
        "413" => "the body is over 64 KiB (`body_too_large`)",
        "415" => "a body that is not JSON (`unsupported_media_type`)",
        "422" => "a rule of the flow refused the command",
        "429" => "too many failed logins (`login_locked`, `too_many_attempts`, `Retry-After`)",
        "503" => "a read model or index not caught up (`not_caught_up`, `Retry-After`)",
        _ => "see the problem's `type`",
    }
}

/// A problem+json response.
fn problem_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// `min_position` beyond the last position any writer committed names a position nobody has
/// written: waiting for it could only end in a 503 after the whole wait, so it is refused at
/// once as bad input. (Beyond this instance's head but written by another instance, it is
/// waited for.)
async fn written_positions_only(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let asked = req.uri().query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("min_position="))
            .find_map(|v| v.parse::<u64>().ok())
    });
    if let Some(asked) = asked
        && asked > app.store.head().0
    {
        // Beyond what this instance has seen: another instance may have written it.
        match app.store.last_written().await {
            Ok(written) if asked > written.0 => {
                return ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "`min_position` {asked} is beyond the last position written, {}",
                        written.0
                    ),
                )
                .into_response();
            }
            Ok(_) => {}
            Err(err) => return ApiError::from(crate::app::AppError::Store(err)).into_response(),
        }
    }
    next.run(req).await
}

/// Logs the cause of every 500 (kept out of the response body).
async fn log_internal_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    if let Some(cause) = res.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, error = %format!("{:#}", cause.0), "request failed");
    }
    res.into_response()
}

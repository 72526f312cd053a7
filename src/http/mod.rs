//! The HTTP API (axum): JSON under `/api/v1`, problem+json errors, bearer tokens, and an
//! OpenAPI document generated from the handlers themselves.

pub mod cases;
pub mod directory;
pub mod error;
pub mod extract;
pub mod kb;
pub mod queries;
pub mod reports;
pub mod routing;
pub mod status;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use error::{ApiError, InternalCause};

/// Handlers share the application.
pub type AppState = Arc<App>;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Minqing 12345 API", description = "民情 — case management for a 12345 government service hotline"),
    tags((name = "cases", description = "工单: intake, flow commands, view"), (name = "auth"), (name = "directory"), (name = "reports", description = "日报: the efficiency office's daily report"))
)]
struct ApiDoc;

/// Times on the wire: RFC 3339 in Asia/Shanghai (+08:00).
pub fn ts(t: DateTime<Utc>) -> String {
    t.with_timezone(&crate::app::shanghai())
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The whole router: the API, its OpenAPI document, `/healthz`.
pub fn router(app: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(cases::router())
        .merge(directory::router())
        .merge(kb::router())
        .merge(queries::router())
        .merge(reports::router())
        .merge(routing::router())
        .merge(status::router())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    api.route(
        "/api/v1/openapi.json",
        get(move || async move { Json(openapi.as_ref().clone()) }),
    )
    .route("/healthz", get(|| async { "ok" }))
    .fallback(|| async { ApiError::NotFound("no such route".into()) })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .layer(middleware::from_fn(log_internal_errors))
    .layer(TraceLayer::new_for_http())
    .with_state(app)
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

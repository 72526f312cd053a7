//! `GET /api/v1/reports/daily` (日报): the daily report of the efficiency office for any day,
//! as JSON or CSV: the view `crate::app::views::DailyReportView` rendered.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller};
use crate::app::views::DailyReportView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(daily_report))
}

/// Which daily report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DailyReportQuery {
    /// The day, YYYY-MM-DD in Asia/Shanghai, in the years 2000 to 2100 (default: the last
    /// working day before today, the day the morning job reports).
    date: Option<String>,
    /// json (default) or csv.
    format: Option<String>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    min_position: Option<u64>,
}

/// 日报: per district (区/县) and city bureau (局委办), for one day: cases given, completed,
/// completed late, overdue at the day's end (逾期未接收, 逾期正在办理) and call-back
/// satisfaction; computed from the read database, so any day can be asked for. JSON, or CSV
/// with Chinese headers (`format=csv`). For the efficiency office, leaders, shift leaders and
/// admins; rows outside the caller's scope are left out.
#[utoipa::path(get, path = "/api/v1/reports/daily", tag = "reports", params(DailyReportQuery),
    responses((status = 200, description = "the report: JSON, or CSV with `format=csv` (an attachment `daily-YYYY-MM-DD.csv`)",
            content((DailyReportView = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)))]
async fn daily_report(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<DailyReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`format` must be json or csv, got `{f}`"),
            ));
        }
    };
    let date = super::extract::query_date("date", q.date.as_deref())?;
    let view = app
        .daily_report(&user.actor(), date, q.min_position)
        .await?;
    if csv {
        let disposition = format!("attachment; filename=\"daily-{}.csv\"", view.date());
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            view.to_csv(),
        )
            .into_response());
    }
    Ok(Json(view).into_response())
}

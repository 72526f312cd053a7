//! The bounds of query input every list reads the same way, for the API and the pages
//! alike: paging, dates and times in the hotline's years.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};

use super::failure::Failure;

/// Pages a list route asks for at most (`page` 1 to this).
pub const MAX_PAGE: u32 = 10_000;

/// Reads a list route's `page` (1 to [`MAX_PAGE`], default 1) and `per_page` (1 to
/// `max_per_page`, default `default_per_page`), so no number from a client sizes anything.
///
/// # Errors
/// `400 invalid_paging` naming the bounds.
pub fn paging(
    page: Option<u32>,
    per_page: Option<u32>,
    default_per_page: u32,
    max_per_page: u32,
) -> Result<(u32, u32), Failure> {
    let (page, per_page) = (page.unwrap_or(1), per_page.unwrap_or(default_per_page));
    if !(1..=MAX_PAGE).contains(&page) || !(1..=max_per_page).contains(&per_page) {
        return Err(Failure::bad_request(
            "invalid_paging",
            format!("`page` must be 1 to {MAX_PAGE} and `per_page` 1 to {max_per_page}"),
        ));
    }
    Ok((page, per_page))
}

/// Years a date or time parameter may name (`date`, `created_from`, `created_to`): the
/// hotline's records start after 2000, and a far year would only overflow date arithmetic.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Reads a `YYYY-MM-DD` query parameter within [`YEARS`].
///
/// # Errors
/// `400 invalid_query` naming the parameter.
pub fn query_date(field: &str, text: Option<&str>) -> Result<Option<NaiveDate>, Failure> {
    text.map(|t| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .filter(|d| YEARS.contains(&d.year()))
            .ok_or_else(|| {
                Failure::bad_request(
                    "invalid_query",
                    format!(
                        "`{field}` must be a date YYYY-MM-DD in the years {} to {}, got `{t}`",
                        YEARS.start(),
                        YEARS.end()
                    ),
                )
            })
    })
    .transpose()
}

/// Reads an RFC 3339 query parameter within [`YEARS`] (in UTC).
///
/// # Errors
/// `400 invalid_query` naming the parameter.
pub fn query_time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Failure> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| YEARS.contains(&t.year()))
            .ok_or_else(|| {
                Failure::bad_request(
                    "invalid_query",
                    format!(
                        "`{field}` must be an RFC 3339 time such as 2026-01-01T00:00:00+08:00 in \
                         the years {} to {}, got `{t}`",
                        YEARS.start(),
                        YEARS.end()
                    ),
                )
            })
    })
    .transpose()
}

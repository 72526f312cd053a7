//! 导出: the whole result of a case query (as far as a list pages, [`super::MAX_OFFSET`]
//! rows) as a table with Chinese headers, written as CSV for Excel (UTF-8 with a BOM, RFC 4180
//! quoting, formulas neutralised) or as an `.xlsx` workbook. The rows are the case list's, so
//! they are scoped and masked exactly as the list is (DESIGN.md rule 12): no full identity
//! leaves in an export, and, as list reads, exports record no identity view.

use chrono::{DateTime, Utc};
use domain::org::{OrgTree, UnitId};
use domain::roles::Actor;
use projections::CaseSummary;
use projections::query::MAX_PER_PAGE;
use serde::de::DeserializeOwned;

use super::{CaseQuery, MAX_OFFSET, csv_field};
use crate::app::AppState;
use crate::app::failure::Failure;

/// The columns of an export.
pub const HEADERS: [&str; 18] = [
    "工单编号",
    "标题",
    "状态",
    "诉求类别",
    "件别",
    "紧急程度",
    "所在区县",
    "地址",
    "来电人",
    "来电号码",
    "受理单位",
    "承办单位",
    "受理时间",
    "办结时间",
    "签收时限",
    "办结时限",
    "督办",
    "批示",
];

/// The rows of a case query, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseExport {
    /// One row of [`HEADERS`]' cells per case, in the list's order.
    pub rows: Vec<Vec<String>>,
    /// How many cases match in all (at most 10,000 without text).
    pub total: u64,
    /// More cases match than an export holds ([`MAX_OFFSET`]).
    pub truncated: bool,
}

/// The label of a code the domain's enums read (`help_request` → 求助), else the code.
fn label_of<T: DeserializeOwned>(code: Option<&str>, label: fn(T) -> &'static str) -> String {
    code.map(|c| {
        serde_json::from_value::<T>(serde_json::Value::String(c.to_owned()))
            .map_or_else(|_| c.to_owned(), |v| label(v).to_owned())
    })
    .unwrap_or_default()
}

/// A time as a spreadsheet sorts it, in Asia/Shanghai (`2026-12-08 18:00`).
fn sheet_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        t.with_timezone(&crate::app::shanghai())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    })
    .unwrap_or_default()
}

fn unit_name(org: &OrgTree, id: &str) -> String {
    org.get(&UnitId::new(id))
        .map_or_else(|| id.to_owned(), |u| u.name.clone())
}

fn yes(on: bool) -> String {
    if on { "是" } else { "" }.to_owned()
}

/// One case as the cells of [`HEADERS`].
fn cells(row: &CaseSummary, org: &OrgTree) -> Vec<String> {
    use domain::kinds::{Category, Kind, Urgency};
    vec![
        row.case_id.clone(),
        row.title.clone(),
        row.status_label.to_owned(),
        label_of::<Category>(row.category.as_deref(), Category::label),
        label_of::<Kind>(row.kind.as_deref(), Kind::label),
        label_of::<Urgency>(row.urgency.as_deref(), Urgency::label),
        row.district_id
            .as_deref()
            .map(|d| {
                org.get(&UnitId::new(d))
                    .map_or_else(|| d.to_owned(), |u| OrgTree::place_name(u).to_owned())
            })
            .unwrap_or_default(),
        row.address.clone(),
        row.caller_name.clone(),
        row.caller_phone.clone(),
        row.accepting_unit_id
            .as_deref()
            .map(|u| unit_name(org, u))
            .unwrap_or_default(),
        row.holder_unit_ids
            .iter()
            .map(|u| unit_name(org, u))
            .collect::<Vec<_>>()
            .join("、"),
        sheet_time(row.accepted_at),
        sheet_time(row.completed_at),
        sheet_time(row.receive_due),
        sheet_time(row.complete_due),
        yes(row.supervised),
        yes(row.annotated),
    ]
}

/// A cell a spreadsheet program will not run: text starting with `=`, `+`, `-` or `@` (or a
/// tab or carriage return, which some programs skip before reading a formula) gets a leading
/// apostrophe (OWASP's CSV injection advice), so a title such as `=HYPERLINK(…)` typed by a
/// citizen stays text.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

impl CaseExport {
    /// As CSV for Excel: a UTF-8 BOM (without it Excel reads UTF-8 as the local code page),
    /// the Chinese headers, CRLF line ends, fields quoted when they hold a comma, a quote or a
    /// line break, formulas neutralised.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("\u{feff}");
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let fields: Vec<String> = cells.map(|c| csv_field(&neutralised(c))).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &mut HEADERS.iter().copied());
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }

    /// As an `.xlsx` workbook of one sheet, 工单查询, with the headers in bold. Every cell is
    /// written as text, which a spreadsheet never evaluates, so no cell needs neutralising.
    ///
    /// # Errors
    /// [`Failure::Internal`] if the workbook cannot be written.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, Failure> {
        use rust_xlsxwriter::{Format, Workbook, XlsxError};
        let write = || -> Result<Vec<u8>, XlsxError> {
            let mut workbook = Workbook::new();
            let bold = Format::new().set_bold();
            let sheet = workbook.add_worksheet();
            sheet.set_name("工单查询")?;
            for (col, header) in (0u16..).zip(HEADERS) {
                sheet.write_string_with_format(0, col, header, &bold)?;
                let width = match header {
                    "标题" | "地址" | "承办单位" => 30.0,
                    "工单编号" | "受理时间" | "办结时间" | "签收时限" | "办结时限" => {
                        18.0
                    }
                    _ => 12.0,
                };
                sheet.set_column_width(col, width)?;
            }
            sheet.set_freeze_panes(1, 0)?;
            for (r, row) in (1u32..).zip(&self.rows) {
                for (col, cell) in (0u16..).zip(row) {
                    if !cell.is_empty() {
                        sheet.write_string(r, col, cell)?;
                    }
                }
            }
            workbook.save_to_buffer()
        };
        write().map_err(|e| Failure::Internal(anyhow::anyhow!("failed to write the workbook: {e}")))
    }
}

impl AppState {
    /// 导出: every case of `query` that `viewer` may see, in its order, as far as a list
    /// pages ([`MAX_OFFSET`] rows), read page by page through [`AppState::case_list`] (so
    /// scoped and masked as the list is); the query's own paging is ignored.
    ///
    /// # Errors
    /// As [`AppState::case_list`].
    pub async fn case_export(
        &self,
        viewer: &Actor,
        query: CaseQuery,
    ) -> Result<CaseExport, Failure> {
        let mut rows = Vec::new();
        let mut page = 1;
        let total = loop {
            let mut this = query.clone();
            this.filter.page = page;
            this.filter.per_page = MAX_PER_PAGE;
            // Only the first page waits for `min_position`.
            if page > 1 {
                this.min_position = None;
            }
            let found = self.case_list(viewer, this).await?;
            let total = found.page.total;
            let n = found.page.items.len();
            rows.extend(found.page.items.iter().map(|row| cells(row, &self.org())));
            let end = u64::from(page) * u64::from(MAX_PER_PAGE);
            if n < MAX_PER_PAGE as usize || rows.len() as u64 >= total || end >= MAX_OFFSET {
                break total;
            }
            page += 1;
        };
        Ok(CaseExport {
            truncated: (rows.len() as u64) < total,
            rows,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(rows: &[&[&str]]) -> CaseExport {
        CaseExport {
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
                .collect(),
            total: rows.len() as u64,
            truncated: false,
        }
    }

    #[test]
    fn the_csv_opens_in_excel_and_runs_no_formula() {
        let csv = export(&[&[
            "2026120200001",
            "噪音,扰民",
            "说\"吵\"",
            "第一行\n第二行",
            "=cmd|' /C calc'!A0",
            "-1",
            "@SUM(A1)",
            "+1",
        ]])
        .to_csv();
        assert!(csv.starts_with("\u{feff}工单编号,标题,状态,"));
        let row = csv.lines().nth(1).unwrap();
        assert!(row.starts_with("2026120200001,\"噪音,扰民\",\"说\"\"吵\"\"\",\"第一行"));
        assert!(csv.contains("第二行\",'=cmd|' /C calc'!A0,'-1,'@SUM(A1),'+1\r\n"));
    }

    #[test]
    fn the_workbook_is_a_zip_with_the_rows() {
        let bytes = export(&[&["2026120200001", "噪音扰民"]]).to_xlsx().unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }

    #[test]
    fn codes_read_as_their_labels() {
        use domain::kinds::Category;
        assert_eq!(
            label_of::<Category>(Some("help_request"), Category::label),
            "求助"
        );
        assert_eq!(label_of::<Category>(Some("odd"), Category::label), "odd");
        assert_eq!(label_of::<Category>(None, Category::label), "");
    }
}

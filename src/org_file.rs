//! 机构与人员表格: the centre's units list and staff list as spreadsheets (`.csv`, `.xlsx`),
//! turned into directory commands for `minqing import-org`, and the directory written back in
//! the same shape.
//!
//! # Layout
//! - [`read_table`]: one file to a [`Table`] of text cells, bounded in size and rows.
//! - [`plan`]: the tables to a [`Plan`] of [`DirectoryCommand`]s, each one decided by the
//!   domain against the directory as the commands before it left it.
//! - [`units_table`], [`users_table`], [`write_csv`], [`write_xlsx`]: the export.
//!
//! # Invariants
//! - A plan is all or nothing: every row is checked and every error returned, or every
//!   command of the plan was accepted by `domain::directory::decide`.
//! - Every error names the file, the row as the spreadsheet numbers it (the header is row 1)
//!   and, where one is to blame, the column, in Chinese ([`ImportError`]).
//! - An export planned against the directory it came from is an empty plan.
//! - Import only adds and changes: a unit or user missing from a file is left as it is.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use domain::directory::{
    self, Directory, DirectoryCommand, DirectoryError, MAX_ID, MAX_NAME, UserEntry, decide, evolve,
};
use domain::org::{Level, Unit, UnitId, UnitKind};
use domain::roles::{Actor, Role};

/// The largest file read (bytes).
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
/// The most data rows read from one file.
pub const MAX_ROWS: usize = 100_000;
/// The most columns read from one file.
pub const MAX_COLUMNS: usize = 200;

/// The units list's columns: 名称, 上级单位, 层级, 类型 (required), 编码 (optional).
const UNIT_COLUMNS: [(&str, bool); 5] = [
    (NAME, true),
    (PARENT, true),
    (LEVEL, true),
    (KIND, true),
    (CODE, false),
];
/// The staff list's columns: 用户名, 姓名, 单位, 角色 (required), 分管单位 (optional).
const USER_COLUMNS: [(&str, bool); 5] = [
    (USERNAME, true),
    (DISPLAY_NAME, true),
    (UNIT, true),
    (ROLES, true),
    (OVERSEES, false),
];

const NAME: &str = "名称";
const PARENT: &str = "上级单位";
const LEVEL: &str = "层级";
const KIND: &str = "类型";
const CODE: &str = "编码";
const USERNAME: &str = "用户名";
const DISPLAY_NAME: &str = "姓名";
const UNIT: &str = "单位";
const ROLES: &str = "角色";
const OVERSEES: &str = "分管单位";

const LEVELS: [Level; 6] = [
    Level::City,
    Level::District,
    Level::Street,
    Level::Community,
    Level::Grid,
    Level::Building,
];
const KINDS: [UnitKind; 9] = [
    UnitKind::HotlineCentre,
    UnitKind::EfficiencyOffice,
    UnitKind::Bureau,
    UnitKind::DistrictCentre,
    UnitKind::DistrictDepartment,
    UnitKind::StreetOffice,
    UnitKind::CommunityCommittee,
    UnitKind::GridStation,
    UnitKind::Building,
];
const ROLE_LIST: [Role; 7] = [
    Role::Operator,
    Role::ShiftLeader,
    Role::Dispatcher,
    Role::Handler,
    Role::Leader,
    Role::Supervisor,
    Role::Admin,
];

/// A sheet of text cells: the header row and the rows below it, as read from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The file's name as messages show it (`units.csv`).
    pub file: String,
    /// The column names of the header row, as written (trimmed when matched).
    pub header: Vec<String>,
    /// The rows below the header, blank ones kept so positions stay the spreadsheet's.
    pub rows: Vec<Vec<String>>,
    /// The spreadsheet's number of the header row: 1, unless a sheet starts lower down.
    pub header_row: usize,
}

impl Table {
    /// A table whose header is row 1.
    pub fn new(file: impl Into<String>, header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        Self {
            file: file.into(),
            header,
            rows,
            header_row: 1,
        }
    }

    /// The spreadsheet's number of data row `i` (from 0).
    fn row_number(&self, i: usize) -> usize {
        self.header_row + 1 + i
    }
}

/// A file could not be read as a table; the text is the Chinese one shown to the administrator.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("{file}: 无法读取文件")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Neither `.csv` nor `.xlsx`.
    #[error("{file}: 只能导入 .csv 或 .xlsx 文件")]
    UnknownType {
        /// The file.
        file: String,
    },
    /// Over [`MAX_FILE_BYTES`].
    #[error("{file}: 文件超过 20 MiB，请拆分后再导入")]
    TooLarge {
        /// The file.
        file: String,
    },
    /// Over [`MAX_ROWS`] data rows.
    #[error("{file}: 超过 100000 行，请拆分后再导入")]
    TooManyRows {
        /// The file.
        file: String,
    },
    /// Over [`MAX_COLUMNS`] columns.
    #[error("{file}: 超过 200 列")]
    TooManyColumns {
        /// The file.
        file: String,
    },
    /// A CSV that is neither UTF-8 nor GB18030 (GBK).
    #[error("{file}: 文件编码既不是 UTF-8 也不是 GBK（GB18030）")]
    Encoding {
        /// The file.
        file: String,
    },
    /// The CSV is malformed (an unclosed quote, say).
    #[error("{file}: 不是有效的 CSV 文件（第 {row} 行附近）")]
    Csv {
        /// The file.
        file: String,
        /// The record where reading stopped, as the spreadsheet numbers it.
        row: u64,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// The workbook is malformed.
    #[error("{file}: 不是有效的 .xlsx 文件")]
    Xlsx {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: calamine::XlsxError,
    },
    /// A cell holds an error value (`#N/A`, `#REF!`), not text.
    #[error("{file} 第 {row} 行第 {column} 列: 单元格是错误值 {value}，请改正后再导入")]
    CellError {
        /// The file.
        file: String,
        /// The row, as the spreadsheet numbers it.
        row: usize,
        /// The column letter (`A`, `B`, …, `AA`).
        column: String,
        /// The error value as Excel shows it.
        value: String,
    },
    /// The workbook has no sheet.
    #[error("{file}: 工作簿中没有工作表")]
    NoSheet {
        /// The file.
        file: String,
    },
    /// Not even a header row.
    #[error("{file}: 文件是空的，第一行应为列名")]
    Empty {
        /// The file.
        file: String,
    },
}

/// Reads `path` as a table: `.csv` (UTF-8 with or without BOM, else GB18030 as Excel writes it
/// on Chinese Windows) or `.xlsx` (its first sheet, every cell as text, whole numbers without
/// a trailing `.0`). The first non-blank row is the header.
///
/// # Errors
/// [`FileError::UnknownType`], [`FileError::Read`], [`FileError::TooLarge`],
/// [`FileError::TooManyRows`], [`FileError::TooManyColumns`], [`FileError::Encoding`],
/// [`FileError::Csv`], [`FileError::Xlsx`], [`FileError::CellError`], [`FileError::NoSheet`],
/// [`FileError::Empty`].
pub fn read_table(path: &Path) -> Result<Table, FileError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let is_xlsx = match extension.as_deref() {
        Some("csv") => false,
        Some("xlsx") => true,
        _ => return Err(FileError::UnknownType { file }),
    };
    let read_err = |source| FileError::Read {
        file: file.clone(),
        source,
    };
    let handle = std::fs::File::open(path).map_err(read_err)?;
    let len = handle.metadata().map_err(read_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { file });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` keeps the bound even if the file grows while it is read.
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { file });
    }
    if is_xlsx {
        table_from_xlsx(file, bytes)
    } else {
        table_from_csv(file, &bytes)
    }
}

/// Splits a grid of cells into header and rows: leading blank rows are skipped (the header is
/// the first row with text), trailing cells left blank.
fn table_from_grid(file: String, grid: Vec<Vec<String>>) -> Result<Table, FileError> {
    let Some(first) = grid
        .iter()
        .position(|r| r.iter().any(|c| !c.trim().is_empty()))
    else {
        return Err(FileError::Empty { file });
    };
    let mut rows = grid.into_iter().skip(first);
    let mut header = rows.next().unwrap_or_default();
    while header.last().is_some_and(|c| c.trim().is_empty()) {
        header.pop();
    }
    // Every row as wide as the header and no wider than its last text, whichever is more,
    // so a sheet (which stores no empty cells) and a CSV read alike.
    let width = header.len();
    let mut rows: Vec<Vec<String>> = rows
        .map(|mut row| {
            while row.len() > width && row.last().is_some_and(String::is_empty) {
                row.pop();
            }
            if row.len() < width {
                row.resize(width, String::new());
            }
            row
        })
        .collect();
    // Trailing blank rows carry nothing (Excel keeps formatted but empty rows).
    while rows
        .last()
        .is_some_and(|r| r.iter().all(|c| c.trim().is_empty()))
    {
        rows.pop();
    }
    if rows.len() > MAX_ROWS {
        return Err(FileError::TooManyRows { file });
    }
    Ok(Table {
        file,
        header,
        rows,
        header_row: first + 1,
    })
}

fn table_from_csv(file: String, bytes: &[u8]) -> Result<Table, FileError> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                return Err(FileError::Encoding { file });
            }
            text
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut grid: Vec<Vec<String>> = Vec::new();
    // The csv crate skips empty lines, which Excel counts as rows: they are put back, so row
    // numbers stay the spreadsheet's. A record's position is where the reader stood after the
    // record before, so the empty lines it skipped are the line ends right there.
    let input = text.as_bytes();
    for record in reader.records() {
        let record = record.map_err(|source| FileError::Csv {
            file: file.clone(),
            row: grid.len() as u64 + 1,
            source,
        })?;
        if record.len() > MAX_COLUMNS {
            return Err(FileError::TooManyColumns { file });
        }
        let start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(input.len());
        let mut rest = input.get(start..).unwrap_or_default();
        // The reader stops a CRLF record after its `\r`; the `\n` is no empty line.
        if start > 0 && input.get(start - 1) == Some(&b'\r') {
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(after) = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .or_else(|| rest.strip_prefix(b"\r"))
        {
            rest = after;
            grid.push(Vec::new());
            if grid.len() > MAX_ROWS + 1_000 {
                return Err(FileError::TooManyRows { file });
            }
        }
        grid.push(record.iter().map(str::to_owned).collect());
        // The header and possibly leading blank rows come on top of the data rows.
        if grid.len() > MAX_ROWS + 1_000 {
            return Err(FileError::TooManyRows { file });
        }
    }
    table_from_grid(file, grid)
}

fn table_from_xlsx(file: String, bytes: Vec<u8>) -> Result<Table, FileError> {
    use calamine::{DataRef, Reader as _, Xlsx};
    let xlsx_err = |source| FileError::Xlsx {
        file: file.clone(),
        source,
    };
    let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).map_err(xlsx_err)?;
    let Some(sheet) = workbook.sheet_names().into_iter().next() else {
        return Err(FileError::NoSheet { file });
    };
    // Cells are streamed, so a sheet claiming a million rows stops at the bound instead of
    // being loaded whole.
    let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(xlsx_err)?;
    let mut grid: Vec<Vec<String>> = Vec::new();
    while let Some(cell) = cells.next_cell().map_err(xlsx_err)? {
        let (row, col) = cell.get_position();
        let (row, col) = (row as usize, col as usize);
        let text = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_owned(),
            DataRef::Int(n) => n.to_string(),
            DataRef::Float(x) => number_text(*x),
            DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
            DataRef::DateTime(d) => d.to_string(),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::Error(e) => {
                return Err(FileError::CellError {
                    file,
                    row: row + 1,
                    column: column_letters(col),
                    value: e.to_string(),
                });
            }
        };
        if row > MAX_ROWS + 1_000 {
            return Err(FileError::TooManyRows { file });
        }
        if col >= MAX_COLUMNS {
            return Err(FileError::TooManyColumns { file });
        }
        if grid.len() <= row {
            grid.resize(row + 1, Vec::new());
        }
        let cells_of_row = &mut grid[row];
        if cells_of_row.len() <= col {
            cells_of_row.resize(col + 1, String::new());
        }
        cells_of_row[col] = text;
    }
    drop(cells);
    table_from_grid(file, grid)
}

/// A column's letters as Excel shows them: 0 → `A`, 25 → `Z`, 26 → `AA`.
fn column_letters(mut col: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(b'A' + (col % 26) as u8));
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.iter().rev().collect()
}

/// A number as a person typed it: `12`, not `12.0`; fractions as Rust writes them.
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Exact: a whole number below 2^53 converts without loss.
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// One refusal, placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file's name as shown (`units.csv`).
    pub file: String,
    /// The row as the spreadsheet numbers it (the header is row 1); `None` for the whole file.
    pub row: Option<usize>,
    /// The column to blame, by its header, if one is.
    pub column: Option<String>,
    /// What is wrong, in Chinese.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, &self.column) {
            (Some(row), Some(column)) => {
                write!(
                    f,
                    "{} 第 {row} 行「{column}」列: {}",
                    self.file, self.message
                )
            }
            (Some(row), None) => write!(f, "{} 第 {row} 行: {}", self.file, self.message),
            (None, _) => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<FileError> for ImportError {
    fn from(err: FileError) -> Self {
        let file = match &err {
            FileError::Read { file, .. }
            | FileError::UnknownType { file }
            | FileError::TooLarge { file }
            | FileError::TooManyRows { file }
            | FileError::TooManyColumns { file }
            | FileError::Encoding { file }
            | FileError::Csv { file, .. }
            | FileError::Xlsx { file, .. }
            | FileError::CellError { file, .. }
            | FileError::NoSheet { file }
            | FileError::Empty { file } => file.clone(),
        };
        let row = match &err {
            FileError::CellError { row, .. } => Some(*row),
            _ => None,
        };
        let text = err.to_string();
        let message = match &err {
            FileError::CellError { column, value, .. } => {
                format!("第 {column} 列的单元格是错误值 {value}，请改正后再导入")
            }
            _ => text
                .strip_prefix(&format!("{file}: "))
                .unwrap_or(&text)
                .to_owned(),
        };
        ImportError {
            file,
            row,
            column: None,
            message,
        }
    }
}

/// What an import would do, every command already accepted by the domain in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The root unit to seed an empty directory with. `decide` never creates a root (the
    /// hotline centre is the tree's one root), so the caller records it as a `UnitCreated`
    /// event before the commands.
    pub root: Option<Unit>,
    /// The commands, in the order they were decided.
    pub commands: Vec<DirectoryCommand>,
    /// How many of each, for `--dry-run`.
    pub counts: PlanCounts,
    /// The directory as it will be after the commands.
    pub directory: Directory,
}

/// The counts of a [`Plan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanCounts {
    /// Units to create (the seeded root included).
    pub units_created: usize,
    /// Units to rename.
    pub units_renamed: usize,
    /// Units to move under another parent.
    pub units_moved: usize,
    /// Unit rows that match the directory already.
    pub units_unchanged: usize,
    /// Users to create.
    pub users_created: usize,
    /// Users whose unit, roles or overseen units change.
    pub users_changed: usize,
    /// User rows that match the directory already.
    pub users_unchanged: usize,
}

impl Plan {
    /// Whether the import changes nothing.
    pub fn is_empty(&self) -> bool {
        self.root.is_none() && self.commands.is_empty()
    }

    /// The summary `--dry-run` prints, in Chinese.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut out = format!(
            "单位：新增 {} 个，更名 {} 个，调整上级 {} 个，不变 {} 个；用户：新增 {} 个，调整 {} 个，不变 {} 个",
            c.units_created,
            c.units_renamed,
            c.units_moved,
            c.units_unchanged,
            c.users_created,
            c.users_changed,
            c.users_unchanged
        );
        if let Some(root) = &self.root {
            out.push_str(&format!("（含根单位「{}」）", root.name));
        }
        if self.is_empty() {
            out.push_str("。没有需要导入的变更");
        }
        out
    }
}

/// Plans the import of a units list and/or a staff list into `current`, by `actor` (an
/// administrator). Units come first, parents before their children whatever the order of the
/// rows; then users, who may name the units just planned. Each change is decided by
/// `domain::directory::decide` and folded in by `evolve`, so every rule is the domain's and a
/// later row sees the earlier ones.
///
/// A unit row matches an existing unit by 编码, or else by 名称 under the same 上级单位 (or,
/// when that name is the only one of its kind in the directory and in the file, anywhere:
/// the unit is moved). A user row matches by 用户名.
///
/// # Errors
/// Every [`ImportError`] of every row, in file and row order; nothing is planned then.
pub fn plan(
    units: Option<&Table>,
    users: Option<&Table>,
    current: &Directory,
    actor: &Actor,
) -> Result<Plan, Vec<ImportError>> {
    if !actor.has(Role::Admin) {
        let file = units.or(users).map(|t| t.file.clone()).unwrap_or_default();
        return Err(vec![ImportError {
            file,
            row: None,
            column: None,
            message: DirectoryError::NotAdmin.message(),
        }]);
    }
    let mut planner = Planner {
        directory: current.clone(),
        actor,
        root: None,
        commands: Vec::new(),
        counts: PlanCounts::default(),
        errors: Vec::new(),
        failed_units: HashMap::new(),
        units_file: None,
    };
    if let Some(table) = units {
        planner.units(table);
    }
    if let Some(table) = users {
        planner.users(table);
    }
    if !planner.errors.is_empty() {
        let order = |file: &str| usize::from(Some(file) != units.map(|t| t.file.as_str()));
        let mut errors = planner.errors;
        errors.sort_by_key(|e| (order(&e.file), e.row.unwrap_or(0)));
        return Err(errors);
    }
    Ok(Plan {
        root: planner.root,
        commands: planner.commands,
        counts: planner.counts,
        directory: planner.directory,
    })
}

struct Planner<'a> {
    directory: Directory,
    actor: &'a Actor,
    root: Option<Unit>,
    commands: Vec<DirectoryCommand>,
    counts: PlanCounts,
    errors: Vec<ImportError>,
    /// Names (and codes) of unit rows that could not be planned, with their row, so a user
    /// naming one is told where the fault lies.
    failed_units: HashMap<String, usize>,
    units_file: Option<String>,
}

/// The cells of one data row, by column.
struct Row<'t> {
    number: usize,
    cells: &'t [String],
    /// For each of the spec's columns, its position in the file, if present.
    positions: &'t [Option<usize>],
}

impl Row<'_> {
    /// The cell of spec column `i`: trimmed, and without the apostrophe an export puts before
    /// a text that would read as a formula.
    fn get(&self, i: usize) -> &str {
        let Some(Some(pos)) = self.positions.get(i) else {
            return "";
        };
        let cell = self
            .cells
            .get(*pos)
            .map_or("", |c| c.trim_matches(is_blank));
        match cell.strip_prefix('\'') {
            Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
            _ => cell,
        }
    }
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Which file columns hold the spec's columns; errors for unknown, repeated and missing ones.
fn map_columns(table: &Table, spec: &[(&str, bool)]) -> Result<Vec<Option<usize>>, ImportError> {
    let file_error = |message: String| ImportError {
        file: table.file.clone(),
        row: None,
        column: None,
        message,
    };
    let mut positions = vec![None; spec.len()];
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    for (pos, header) in table.header.iter().enumerate() {
        let header = header.trim_matches(is_blank);
        if header.is_empty() {
            continue;
        }
        match spec.iter().position(|(name, _)| *name == header) {
            Some(i) if positions[i].is_some() => repeated.push(format!("「{header}」")),
            Some(i) => positions[i] = Some(pos),
            None => unknown.push(format!("「{header}」")),
        }
    }
    let allowed: Vec<&str> = spec.iter().map(|(name, _)| *name).collect();
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "未知的列{}（可用的列：{}）",
            unknown.concat(),
            allowed.join("、")
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!("列{}出现了不止一次", repeated.concat()));
    }
    let missing: Vec<String> = spec
        .iter()
        .zip(&positions)
        .filter(|((_, required), pos)| *required && pos.is_none())
        .map(|((name, _), _)| format!("「{name}」"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("缺少必填的列{}", missing.concat()));
    }
    if problems.is_empty() {
        Ok(positions)
    } else {
        Err(file_error(problems.join("；")))
    }
}

/// The non-blank rows of `table` with their numbers; a row with text outside the named
/// columns is an error.
fn data_rows<'t>(
    table: &'t Table,
    positions: &'t [Option<usize>],
    errors: &mut Vec<ImportError>,
) -> Vec<Row<'t>> {
    let named: HashSet<usize> = positions.iter().flatten().copied().collect();
    let mut out = Vec::new();
    for (i, cells) in table.rows.iter().enumerate() {
        if cells.iter().all(|c| c.trim_matches(is_blank).is_empty()) {
            continue;
        }
        let number = table.row_number(i);
        if let Some(stray) = cells
            .iter()
            .enumerate()
            .position(|(pos, c)| !named.contains(&pos) && !c.trim_matches(is_blank).is_empty())
        {
            errors.push(ImportError {
                file: table.file.clone(),
                row: Some(number),
                column: None,
                message: format!("第 {} 列没有列名，却有内容", stray + 1),
            });
            continue;
        }
        out.push(Row {
            number,
            cells,
            positions,
        });
    }
    out
}

/// One unit row, parsed.
struct UnitRow {
    number: usize,
    name: String,
    parent: String,
    kind: Option<UnitKind>,
    code: Option<UnitId>,
    /// Whether its cells are valid on their own.
    ok: bool,
}

/// Where a unit row's parent is.
#[derive(Clone)]
enum ParentRef {
    /// None: the row is the root.
    Root,
    /// Another row of the file.
    Row(usize),
    /// A unit of the directory that no row lists.
    Existing(UnitId),
    /// Not found or ambiguous (the error is recorded).
    Broken,
}

impl Planner<'_> {
    fn error(&mut self, file: &str, row: usize, column: Option<&str>, message: String) {
        self.errors.push(ImportError {
            file: file.to_owned(),
            row: Some(row),
            column: column.map(str::to_owned),
            message,
        });
    }

    fn apply(&mut self, command: DirectoryCommand) -> Result<(), DirectoryError> {
        let events = decide(&self.directory, self.actor, &|_| 0, &command)?;
        self.directory = events
            .iter()
            .fold(std::mem::take(&mut self.directory), evolve);
        self.commands.push(command);
        Ok(())
    }

    fn open_units(&self) -> impl Iterator<Item = &Unit> {
        self.directory
            .units()
            .iter()
            .filter(|u| self.directory.closed(&u.id).is_none())
    }

    fn units(&mut self, table: &Table) {
        let file = table.file.as_str();
        self.units_file = Some(file.to_owned());
        let positions = match map_columns(table, &UNIT_COLUMNS) {
            Ok(p) => p,
            Err(err) => return self.errors.push(err),
        };
        let mut errors = Vec::new();
        let rows = data_rows(table, &positions, &mut errors);
        self.errors.append(&mut errors);
        let mut parsed: Vec<UnitRow> = rows.iter().map(|r| self.parse_unit(file, r)).collect();
        self.check_duplicate_codes(file, &mut parsed);
        let parents: Vec<ParentRef> = (0..parsed.len())
            .map(|i| self.resolve_parent(file, &parsed, i))
            .collect();
        let order = self.parents_first(file, &parsed, &parents);
        // The codes the file claims, so a unit matched by name is not one another row names.
        let codes: HashSet<UnitId> = parsed.iter().filter_map(|r| r.code.clone()).collect();
        let mut name_count: HashMap<&str, usize> = HashMap::new();
        for row in &parsed {
            *name_count.entry(row.name.as_str()).or_default() += 1;
        }
        let mut ids: Vec<Option<UnitId>> = vec![None; parsed.len()];
        let mut claimed: HashMap<UnitId, usize> = HashMap::new();
        for i in order {
            let row = &parsed[i];
            let id = if row.ok {
                let parent = match &parents[i] {
                    ParentRef::Root => Some(None),
                    ParentRef::Existing(id) => Some(Some(id.clone())),
                    ParentRef::Row(p) => match &ids[*p] {
                        Some(id) => Some(Some(id.clone())),
                        None => {
                            let (parent_name, parent_row) = (&parsed[*p].name, parsed[*p].number);
                            self.error(
                                file,
                                row.number,
                                Some(PARENT),
                                format!(
                                    "上级单位「{parent_name}」未能导入（见第 {parent_row} 行）"
                                ),
                            );
                            None
                        }
                    },
                    ParentRef::Broken => None,
                };
                let unique_name = name_count.get(row.name.as_str()) == Some(&1);
                match parent {
                    Some(parent) => {
                        self.plan_unit(file, row, parent, &codes, unique_name, &mut claimed)
                    }
                    None => None,
                }
            } else {
                None
            };
            ids[i] = id;
        }
        for (row, id) in parsed.iter().zip(&ids) {
            if id.is_none() {
                self.failed_units.insert(row.name.clone(), row.number);
                if let Some(code) = &row.code {
                    self.failed_units.insert(code.to_string(), row.number);
                }
            }
        }
    }

    fn parse_unit(&mut self, file: &str, row: &Row<'_>) -> UnitRow {
        let mut ok = true;
        let name = row.get(0).to_owned();
        if name.is_empty() {
            self.error(file, row.number, Some(NAME), "单位名称不能为空".into());
            ok = false;
        }
        let parent = row.get(1).to_owned();
        let level_text = row.get(2);
        let level = parse_level(level_text);
        if level.is_none() {
            let message = if level_text.is_empty() {
                "层级不能为空".to_owned()
            } else {
                format!("不认识的层级「{level_text}」（可填：{}）", level_labels())
            };
            self.error(file, row.number, Some(LEVEL), message);
            ok = false;
        }
        let kind_text = row.get(3);
        let kind = parse_kind(kind_text);
        if kind.is_none() {
            let message = if kind_text.is_empty() {
                "类型不能为空".to_owned()
            } else {
                format!("不认识的单位类型「{kind_text}」（可填：{}）", kind_labels())
            };
            self.error(file, row.number, Some(KIND), message);
            ok = false;
        }
        if let (Some(level), Some(kind)) = (level, kind)
            && kind.level() != level
        {
            self.error(
                file,
                row.number,
                Some(LEVEL),
                format!(
                    "层级「{}」与类型「{}」不符：这类单位的层级是「{}」",
                    level.label(),
                    kind.label(),
                    kind.level().label()
                ),
            );
            ok = false;
        }
        let code = row.get(4);
        let code = if code.is_empty() {
            None
        } else {
            Some(UnitId::new(code))
        };
        if let Some(code) = &code
            && let Err(err) = directory::check_id(code.as_str(), "id")
        {
            self.error(file, row.number, Some(CODE), err.message());
            ok = false;
        }
        UnitRow {
            number: row.number,
            name,
            parent,
            kind,
            code,
            ok,
        }
    }

    fn check_duplicate_codes(&mut self, file: &str, rows: &mut [UnitRow]) {
        let mut seen: HashMap<UnitId, usize> = HashMap::new();
        for row in rows.iter_mut() {
            let Some(code) = &row.code else { continue };
            match seen.get(code) {
                Some(first) => {
                    let message = format!("编码「{code}」与第 {first} 行重复");
                    self.errors.push(ImportError {
                        file: file.to_owned(),
                        row: Some(row.number),
                        column: Some(CODE.to_owned()),
                        message,
                    });
                    row.ok = false;
                }
                None => {
                    seen.insert(code.clone(), row.number);
                }
            }
        }
    }

    /// The parent a row names: a row of the file by 编码, an open unit by id, a row by name,
    /// an open unit by name, in that order.
    fn resolve_parent(&mut self, file: &str, rows: &[UnitRow], i: usize) -> ParentRef {
        let row = &rows[i];
        let wanted = row.parent.as_str();
        if wanted.is_empty() {
            return ParentRef::Root;
        }
        if let Some(p) = rows
            .iter()
            .position(|r| r.code.as_ref().is_some_and(|c| c.as_str() == wanted))
        {
            return ParentRef::Row(p);
        }
        if self.open_units().any(|u| u.id.as_str() == wanted) {
            return ParentRef::Existing(UnitId::new(wanted));
        }
        let by_name: Vec<usize> = (0..rows.len())
            .filter(|&r| rows[r].name == wanted)
            .collect();
        let number = row.number;
        match by_name.as_slice() {
            [p] => return ParentRef::Row(*p),
            [] => {}
            several => {
                let numbers: Vec<String> = several
                    .iter()
                    .map(|&r| rows[r].number.to_string())
                    .collect();
                self.error(
                    file,
                    number,
                    Some(PARENT),
                    format!(
                        "名为「{wanted}」的单位不止一个（第 {} 行），请改填上级单位的编码",
                        numbers.join("、")
                    ),
                );
                return ParentRef::Broken;
            }
        }
        let existing: Vec<UnitId> = self
            .open_units()
            .filter(|u| u.name == wanted)
            .map(|u| u.id.clone())
            .collect();
        match existing.as_slice() {
            [id] => ParentRef::Existing(id.clone()),
            [] => {
                self.error(
                    file,
                    number,
                    Some(PARENT),
                    format!("找不到单位「{wanted}」"),
                );
                ParentRef::Broken
            }
            several => {
                let ids: Vec<&str> = several.iter().map(UnitId::as_str).collect();
                self.error(
                    file,
                    number,
                    Some(PARENT),
                    format!(
                        "系统中名为「{wanted}」的单位不止一个（编码 {}），请改填编码",
                        ids.join("、")
                    ),
                );
                ParentRef::Broken
            }
        }
    }

    /// The rows ordered so each comes after the row it names as its parent, in file order
    /// otherwise. A row whose parents lead round in a circle is an error and left out, as
    /// are the rows below it.
    fn parents_first(&mut self, file: &str, rows: &[UnitRow], parents: &[ParentRef]) -> Vec<usize> {
        let mut depth: Vec<Option<usize>> = vec![None; rows.len()];
        for start in 0..rows.len() {
            // Walk up until a row of known depth or the top; more steps than rows is a cycle.
            let mut chain = Vec::new();
            let mut at = start;
            let base = loop {
                if let Some(d) = depth[at] {
                    break Some(d);
                }
                if chain.len() > rows.len() {
                    break None;
                }
                chain.push(at);
                match &parents[at] {
                    ParentRef::Row(p) => at = *p,
                    _ => break Some(0),
                }
            };
            match base {
                Some(base) => {
                    // `chain` ends with the topmost row without a depth.
                    let top_known = depth[at].is_some();
                    for (k, &r) in chain.iter().rev().enumerate() {
                        depth[r] = Some(base.saturating_add(k + usize::from(top_known)));
                    }
                }
                None => depth[start] = Some(usize::MAX),
            }
        }
        // A cycle's depth is `usize::MAX`, and what hangs below it saturates there too.
        let in_cycle = |i: usize| depth[i].is_none_or(|d| d >= usize::MAX - rows.len());
        for (i, row) in rows.iter().enumerate() {
            if in_cycle(i) {
                let message = format!("上级单位「{}」的上级关系绕成了圈，找不到根单位", row.parent);
                self.error(file, row.number, Some(PARENT), message);
            }
        }
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| !in_cycle(i)).collect();
        order.sort_by_key(|&i| depth[i]);
        order
    }

    /// Plans one valid unit row under `parent` (`None`: the root); its id, or `None` on error.
    fn plan_unit(
        &mut self,
        file: &str,
        row: &UnitRow,
        parent: Option<UnitId>,
        codes: &HashSet<UnitId>,
        unique_name: bool,
        claimed: &mut HashMap<UnitId, usize>,
    ) -> Option<UnitId> {
        let kind = row.kind?;
        let Some(parent) = parent else {
            return self.plan_root(file, row, kind, claimed);
        };
        let existing: Option<Unit> = match &row.code {
            Some(code) => {
                if self.directory.closed(code).is_some() {
                    self.error(
                        file,
                        row.number,
                        Some(CODE),
                        format!("编码「{code}」属于已撤销的单位，不能再用"),
                    );
                    return None;
                }
                self.directory.unit(code).cloned()
            }
            None => {
                let here = self
                    .open_units()
                    .find(|u| u.parent_id.as_ref() == Some(&parent) && u.name == row.name)
                    .cloned();
                here.or_else(|| {
                    // A unit moved in the file without its code: only when its name can mean
                    // nothing else.
                    let elsewhere: Vec<&Unit> = self
                        .open_units()
                        .filter(|u| u.name == row.name && u.parent_id.is_some())
                        .collect();
                    match elsewhere.as_slice() {
                        [unit] if unique_name && unit.kind == kind && !codes.contains(&unit.id) => {
                            Some((*unit).clone())
                        }
                        _ => None,
                    }
                })
            }
        };
        let id = match &existing {
            Some(unit) => unit.id.clone(),
            None => match &row.code {
                Some(code) => code.clone(),
                None => self.derive_id(&parent, &row.name, codes),
            },
        };
        let blame = if row.code.is_some() { CODE } else { NAME };
        if let Some(first) = claimed.get(&id) {
            let message = format!("与第 {first} 行是同一个单位");
            self.error(file, row.number, Some(blame), message);
            return None;
        }
        claimed.insert(id.clone(), row.number);
        let Some(unit) = existing else {
            let command = DirectoryCommand::CreateUnit {
                id: id.clone(),
                name: row.name.clone(),
                kind,
                parent_id: parent,
            };
            return match self.apply(command) {
                Ok(()) => {
                    self.counts.units_created += 1;
                    Some(id)
                }
                Err(err) => {
                    self.unit_refused(file, row.number, &err);
                    None
                }
            };
        };
        if unit.kind != kind {
            let message = format!(
                "单位「{}」的类型是「{}」，导入不能修改单位类型",
                unit.name,
                unit.kind.label()
            );
            self.error(file, row.number, Some(KIND), message);
            return None;
        }
        let mut changed = false;
        if unit.name != row.name {
            let command = DirectoryCommand::RenameUnit {
                id: id.clone(),
                name: row.name.clone(),
            };
            if let Err(err) = self.apply(command) {
                self.unit_refused(file, row.number, &err);
                return None;
            }
            self.counts.units_renamed += 1;
            changed = true;
        }
        if unit.parent_id.as_ref() != Some(&parent) {
            let command = DirectoryCommand::MoveUnit {
                id: id.clone(),
                parent_id: parent,
            };
            if let Err(err) = self.apply(command) {
                self.unit_refused(file, row.number, &err);
                return None;
            }
            self.counts.units_moved += 1;
            changed = true;
        }
        if !changed {
            self.counts.units_unchanged += 1;
        }
        Some(id)
    }

    /// The row whose 上级单位 is empty: the directory's root (renamed if its code says so), or
    /// the root that seeds an empty directory.
    fn plan_root(
        &mut self,
        file: &str,
        row: &UnitRow,
        kind: UnitKind,
        claimed: &mut HashMap<UnitId, usize>,
    ) -> Option<UnitId> {
        if kind != UnitKind::HotlineCentre {
            let message = format!(
                "「上级单位」为空的是根单位，类型须为「{}」",
                UnitKind::HotlineCentre.label()
            );
            self.error(file, row.number, Some(PARENT), message);
            return None;
        }
        let root = self
            .directory
            .units()
            .iter()
            .find(|u| u.parent_id.is_none())
            .cloned();
        let Some(root) = root else {
            let id = row.code.clone().unwrap_or_else(|| UnitId::new("city"));
            if let Err(err) = directory::check_name(&row.name, "name", MAX_NAME) {
                self.error(file, row.number, Some(NAME), err.message());
                return None;
            }
            let unit = Unit {
                id: id.clone(),
                name: row.name.clone(),
                level: Level::City,
                kind,
                parent_id: None,
            };
            let users = self.directory.users().cloned().collect();
            match Directory::new(vec![unit.clone()], users) {
                Ok(directory) => self.directory = directory,
                Err(err) => {
                    self.error(file, row.number, None, err.message());
                    return None;
                }
            }
            claimed.insert(id.clone(), row.number);
            self.root = Some(unit);
            self.counts.units_created += 1;
            return Some(id);
        };
        let is_root = match &row.code {
            Some(code) => *code == root.id,
            None => row.name == root.name,
        };
        if !is_root || claimed.contains_key(&root.id) {
            let message = format!(
                "「上级单位」为空的只能是根单位「{}」（编码 {}）；其他单位须填写上级单位",
                root.name, root.id
            );
            self.error(file, row.number, Some(PARENT), message);
            return None;
        }
        claimed.insert(root.id.clone(), row.number);
        if root.name == row.name {
            self.counts.units_unchanged += 1;
        } else {
            let command = DirectoryCommand::RenameUnit {
                id: root.id.clone(),
                name: row.name.clone(),
            };
            if let Err(err) = self.apply(command) {
                self.unit_refused(file, row.number, &err);
                return None;
            }
            self.counts.units_renamed += 1;
        }
        Some(root.id)
    }

    fn unit_refused(&mut self, file: &str, row: usize, err: &DirectoryError) {
        let column = match err {
            DirectoryError::UnitExists(_) | DirectoryError::BadId { .. } => Some(CODE),
            DirectoryError::BadName { .. }
            | DirectoryError::NameTaken(_)
            | DirectoryError::SameName => Some(NAME),
            DirectoryError::KindNotAllowed(_) => Some(KIND),
            DirectoryError::UnknownUnit(_)
            | DirectoryError::UnitClosed(_)
            | DirectoryError::OutsideDistrict(_)
            | DirectoryError::Root
            | DirectoryError::IntoOwnSubtree(_)
            | DirectoryError::SameParent => Some(PARENT),
            _ => None,
        };
        self.error(file, row, column, err.message());
    }

    /// A stable ASCII id for a unit the file gives no 编码: its parent's id and a short hash of
    /// its name (`d.chengguan.3fa2c1`), or a hash of both when that would be too long; a
    /// suffix if the id is taken.
    fn derive_id(&self, parent: &UnitId, name: &str, codes: &HashSet<UnitId>) -> UnitId {
        let hash = fnv1a(format!("{parent}\u{0}{name}").as_bytes());
        let short = format!("{parent}.{:06x}", hash & 0xff_ffff);
        let base = if short.len() + 4 <= MAX_ID {
            short
        } else {
            format!("u.{:016x}", hash)
        };
        let free = |id: &UnitId| self.directory.unit(id).is_none() && !codes.contains(id);
        let mut id = UnitId::new(base.clone());
        let mut n = 2;
        while !free(&id) && n < 1000 {
            id = UnitId::new(format!("{base}-{n}"));
            n += 1;
        }
        id
    }

    fn users(&mut self, table: &Table) {
        let file = table.file.as_str();
        let positions = match map_columns(table, &USER_COLUMNS) {
            Ok(p) => p,
            Err(err) => return self.errors.push(err),
        };
        let mut errors = Vec::new();
        let rows = data_rows(table, &positions, &mut errors);
        self.errors.append(&mut errors);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for row in &rows {
            let Some(entry) = self.parse_user(file, row) else {
                continue;
            };
            if let Some(first) = seen.get(&entry.username) {
                let message = format!("用户名「{}」与第 {first} 行重复", entry.username);
                self.error(file, row.number, Some(USERNAME), message);
                continue;
            }
            seen.insert(entry.username.clone(), row.number);
            self.plan_user(file, row.number, entry);
        }
    }

    fn parse_user(&mut self, file: &str, row: &Row<'_>) -> Option<UserEntry> {
        let mut ok = true;
        let username = row.get(0).to_owned();
        if username.is_empty() {
            self.error(file, row.number, Some(USERNAME), "用户名不能为空".into());
            ok = false;
        }
        let display_name = row.get(1).to_owned();
        if display_name.is_empty() {
            self.error(file, row.number, Some(DISPLAY_NAME), "姓名不能为空".into());
            ok = false;
        }
        let unit_text = row.get(2);
        let unit_id = if unit_text.is_empty() {
            self.error(file, row.number, Some(UNIT), "单位不能为空".into());
            None
        } else {
            self.resolve_unit(file, row.number, UNIT, unit_text)
        };
        let mut roles = Vec::new();
        for word in split_list(row.get(3)) {
            match parse_role(word) {
                Some(role) => roles.push(role),
                None => {
                    let message = format!("不认识的角色「{word}」（可填：{}）", role_labels());
                    self.error(file, row.number, Some(ROLES), message);
                    ok = false;
                }
            }
        }
        if ok && roles.is_empty() {
            self.error(file, row.number, Some(ROLES), "角色不能为空".into());
            ok = false;
        }
        let mut oversees = Vec::new();
        for word in split_list(row.get(4)) {
            match self.resolve_unit(file, row.number, OVERSEES, word) {
                Some(id) => oversees.push(id),
                None => ok = false,
            }
        }
        let unit_id = unit_id?;
        ok.then_some(UserEntry {
            username,
            display_name,
            unit_id,
            roles,
            oversees,
            disabled: false,
        })
    }

    /// An open unit of the directory as planned so far, by id or by name.
    fn resolve_unit(&mut self, file: &str, row: usize, column: &str, text: &str) -> Option<UnitId> {
        if self.open_units().any(|u| u.id.as_str() == text) {
            return Some(UnitId::new(text));
        }
        let found: Vec<UnitId> = self
            .open_units()
            .filter(|u| u.name == text)
            .map(|u| u.id.clone())
            .collect();
        let message = match found.as_slice() {
            [id] => return Some(id.clone()),
            [] => match (self.failed_units.get(text), &self.units_file) {
                (Some(unit_row), Some(units_file)) => {
                    format!("单位「{text}」未能导入（见 {units_file} 第 {unit_row} 行）")
                }
                _ => format!("找不到单位「{text}」"),
            },
            several => {
                let ids: Vec<&str> = several.iter().map(UnitId::as_str).collect();
                format!(
                    "名为「{text}」的单位不止一个（编码 {}），请改填编码",
                    ids.join("、")
                )
            }
        };
        self.error(file, row, Some(column), message);
        None
    }

    fn plan_user(&mut self, file: &str, row: usize, entry: UserEntry) {
        let Some(existing) = self.directory.user(&entry.username).cloned() else {
            let column_of = user_column(&entry);
            match self.apply(DirectoryCommand::CreateUser {
                user: entry.clone(),
            }) {
                Ok(()) => self.counts.users_created += 1,
                Err(err) => self.error(file, row, column_of(&err), err.message()),
            }
            return;
        };
        if existing.display_name != entry.display_name {
            let message = format!(
                "用户「{}」已存在，姓名与系统中的不同；导入不能修改已有用户的姓名",
                entry.username
            );
            self.error(file, row, Some(DISPLAY_NAME), message);
            return;
        }
        // Roles and overseen units are sets: another order in the file is no change.
        let same = existing.unit_id == entry.unit_id
            && same_items(&existing.roles, &entry.roles)
            && same_items(&existing.oversees, &entry.oversees);
        if same {
            self.counts.users_unchanged += 1;
            return;
        }
        let column_of = user_column(&entry);
        let command = DirectoryCommand::ChangeUser {
            username: entry.username.clone(),
            unit_id: entry.unit_id.clone(),
            roles: entry.roles.clone(),
            oversees: entry.oversees.clone(),
        };
        match self.apply(command) {
            Ok(()) => self.counts.users_changed += 1,
            Err(err) => self.error(file, row, column_of(&err), err.message()),
        }
    }
}

/// Whether `a` and `b` hold the same items, in any order (the lists are short).
fn same_items<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// The column a refusal of `entry`'s command concerns.
fn user_column(entry: &UserEntry) -> impl Fn(&DirectoryError) -> Option<&'static str> + '_ {
    move |err| match err {
        DirectoryError::BadId { .. }
        | DirectoryError::UserExists(_)
        | DirectoryError::UnknownUser(_) => Some(USERNAME),
        DirectoryError::BadName { .. } => Some(DISPLAY_NAME),
        DirectoryError::BadRoles | DirectoryError::LastAdmin => Some(ROLES),
        DirectoryError::OverseesWithoutLeader => Some(OVERSEES),
        DirectoryError::UnknownUnit(id) | DirectoryError::UnitClosed(id) => {
            Some(if *id == entry.unit_id { UNIT } else { OVERSEES })
        }
        DirectoryError::OutsideDistrict(what) => Some(if what == entry.unit_id.as_str() {
            UNIT
        } else if entry.oversees.iter().any(|u| u.as_str() == what) {
            OVERSEES
        } else {
            USERNAME
        }),
        _ => None,
    }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases (`DefaultHasher` may not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The words of a list cell, split at 、，,;； and blanks.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| matches!(c, '、' | '，' | ',' | ';' | '；') || c.is_whitespace())
        .filter(|w| !w.is_empty())
}

/// A level by its label (`区/县`, or either half: `区`, `县`), or its code (`district`).
fn parse_level(text: &str) -> Option<Level> {
    LEVELS.into_iter().find(|level| {
        level.code() == text
            || level.label() == text
            || level.label().split('/').any(|part| part == text)
    })
}

/// A unit kind by its label, a short name of the glossary, or its code.
fn parse_kind(text: &str) -> Option<UnitKind> {
    let normalised = text.replace('(', "（").replace(')', "）");
    KINDS.into_iter().find(|kind| {
        kind.code() == text
            || kind.label() == normalised
            || kind_aliases(*kind).contains(&normalised.as_str())
    })
}

/// The names DESIGN.md and the centres use besides the label.
fn kind_aliases(kind: UnitKind) -> &'static [&'static str] {
    match kind {
        UnitKind::HotlineCentre => &["热线中心"],
        UnitKind::EfficiencyOffice => &[],
        UnitKind::Bureau => &["局委办", "市直部门"],
        UnitKind::DistrictCentre => &["区中心", "区热线分中心", "县热线分中心"],
        UnitKind::DistrictDepartment => &["区属部门", "县属部门"],
        UnitKind::StreetOffice => &["街道办", "街道", "乡镇"],
        UnitKind::CommunityCommittee => &["社区", "村委会"],
        UnitKind::GridStation => &["网格"],
        UnitKind::Building => &[],
    }
}

/// A role by its label (座席接线员) or its code (`operator`).
fn parse_role(text: &str) -> Option<Role> {
    ROLE_LIST
        .into_iter()
        .find(|role| role.code() == text || role.label() == text)
}

fn level_labels() -> String {
    LEVELS.map(Level::label).join("、")
}

fn kind_labels() -> String {
    KINDS.map(UnitKind::label).join("、")
}

fn role_labels() -> String {
    ROLE_LIST.map(Role::label).join("、")
}

/// A unit as an export names it: by name where no other open unit has that name (or that
/// id), else by id, so the file reads back to the same unit.
fn unit_ref(directory: &Directory, id: &UnitId) -> String {
    let Some(unit) = directory.unit(id) else {
        return id.to_string();
    };
    let open = directory
        .units()
        .iter()
        .filter(|u| directory.closed(&u.id).is_none());
    let clashes = open
        .filter(|u| u.name == unit.name || u.id.as_str() == unit.name)
        .count();
    if clashes == 1 {
        unit.name.clone()
    } else {
        id.to_string()
    }
}

/// The open units as a units list: 名称, 上级单位, 层级, 类型, 编码, parents first. Its
/// `file` is `units`, to be replaced by the name it is written under.
pub fn units_table(directory: &Directory) -> Table {
    let header = UNIT_COLUMNS.map(|(name, _)| name.to_owned()).to_vec();
    let rows = directory
        .units()
        .iter()
        .filter(|u| directory.closed(&u.id).is_none())
        .map(|u| {
            vec![
                u.name.clone(),
                u.parent_id
                    .as_ref()
                    .map(|p| unit_ref(directory, p))
                    .unwrap_or_default(),
                u.level.label().to_owned(),
                u.kind.label().to_owned(),
                u.id.to_string(),
            ]
        })
        .collect();
    Table::new("units", header, rows)
}

/// The active users as a staff list: 用户名, 姓名, 单位, 角色, 分管单位, by username.
/// Disabled accounts are left out: import neither disables nor enables. Its `file` is
/// `users`.
pub fn users_table(directory: &Directory) -> Table {
    let header = USER_COLUMNS.map(|(name, _)| name.to_owned()).to_vec();
    let rows = directory
        .users()
        .filter(|u| !u.disabled)
        .map(|u| {
            vec![
                u.username.clone(),
                u.display_name.clone(),
                unit_ref(directory, &u.unit_id),
                u.roles
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join("、"),
                u.oversees
                    .iter()
                    .map(|o| unit_ref(directory, o))
                    .collect::<Vec<_>>()
                    .join("、"),
            ]
        })
        .collect();
    Table::new("users", header, rows)
}

/// A cell a spreadsheet program will not run as a formula: text starting with `=`, `+`, `-`
/// or `@` gets a leading apostrophe (the case export's rule, OWASP's CSV injection advice);
/// [`plan`] takes it off again.
fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// Writes `table` as CSV for Excel: a UTF-8 BOM (without it Excel reads UTF-8 as the local
/// code page), CRLF line ends, formulas neutralised.
///
/// # Errors
/// The writer's IO error.
pub fn write_csv(table: &Table, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all("\u{feff}".as_bytes())?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    let to_io = |err: csv::Error| std::io::Error::other(err.to_string());
    writer.write_record(&table.header).map_err(to_io)?;
    for row in &table.rows {
        writer
            .write_record(row.iter().map(|c| neutralised(c).into_owned()))
            .map_err(to_io)?;
    }
    writer.flush()
}

/// Writes `table` as an `.xlsx` workbook of one sheet, headers in bold, every cell as text
/// (so `001` stays `001` and nothing is evaluated).
///
/// # Errors
/// The [`rust_xlsxwriter::XlsxError`] of a workbook that cannot be written.
pub fn write_xlsx(table: &Table) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    for (col, header) in (0u16..).zip(&table.header) {
        sheet.write_string_with_format(0, col, header, &bold)?;
        sheet.set_column_width(col, 24.0)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (r, row) in (1u32..).zip(&table.rows) {
        for (col, cell) in (0u16..).zip(row) {
            if !cell.is_empty() {
                sheet.write_string(r, col, cell)?;
            }
        }
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/city")
            .join(name)
    }

    /// A table read from CSV text, as `read_table` would read the file.
    fn csv(file: &str, text: &str) -> Table {
        table_from_csv(file.to_owned(), text.as_bytes()).expect("csv")
    }

    fn unit(id: &str, name: &str, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit {
            id: UnitId::new(id),
            name: name.to_owned(),
            level: kind.level(),
            kind,
            parent_id: parent.map(UnitId::new),
        }
    }

    fn user(username: &str, name: &str, unit: &str, roles: &[Role]) -> UserEntry {
        UserEntry {
            username: username.to_owned(),
            display_name: name.to_owned(),
            unit_id: UnitId::new(unit),
            roles: roles.to_vec(),
            oversees: Vec::new(),
            disabled: false,
        }
    }

    /// A centre, a bureau, one district with a street and a community, and an administrator.
    fn small_city() -> Directory {
        Directory::new(
            vec![
                unit("city", "市热线中心", UnitKind::HotlineCentre, None),
                unit(
                    "city.bureau.housing",
                    "市住建局",
                    UnitKind::Bureau,
                    Some("city"),
                ),
                unit(
                    "d.a",
                    "甲区热线分中心",
                    UnitKind::DistrictCentre,
                    Some("city"),
                ),
                unit("d.a.s1", "一街道", UnitKind::StreetOffice, Some("d.a")),
                unit(
                    "d.a.s1.c1",
                    "一社区",
                    UnitKind::CommunityCommittee,
                    Some("d.a.s1"),
                ),
                unit(
                    "d.b",
                    "乙区热线分中心",
                    UnitKind::DistrictCentre,
                    Some("city"),
                ),
            ],
            vec![
                user("admin", "管理员甲", "city", &[Role::Admin]),
                user("s1_handler", "办理员乙", "d.a.s1", &[Role::Handler]),
            ],
        )
        .expect("directory")
    }

    fn admin() -> Actor {
        Actor {
            username: "admin".into(),
            unit_id: UnitId::new("city"),
            roles: vec![Role::Admin],
            oversees: Vec::new(),
        }
    }

    const UNITS_HEADER: &str = "名称,上级单位,层级,类型,编码\n";
    const USERS_HEADER: &str = "用户名,姓名,单位,角色,分管单位\n";

    fn plan_units(text: &str) -> Result<Plan, Vec<ImportError>> {
        let units = csv("units.csv", &format!("{UNITS_HEADER}{text}"));
        plan(Some(&units), None, &small_city(), &admin())
    }

    fn plan_users(text: &str) -> Result<Plan, Vec<ImportError>> {
        let users = csv("users.csv", &format!("{USERS_HEADER}{text}"));
        plan(None, Some(&users), &small_city(), &admin())
    }

    fn messages(res: Result<Plan, Vec<ImportError>>) -> Vec<String> {
        res.expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_error_names_file_row_and_column_as_excel_shows_them() {
        assert_eq!(
            messages(plan_units(
                "三街道,甲区热线分中心,街道,街道办,\n城关区住建局下属站,城关区住建局,区/县,区属部门,\n"
            )),
            ["units.csv 第 3 行「上级单位」列: 找不到单位「城关区住建局」"]
        );
        let no_column = ImportError {
            file: "users.xlsx".into(),
            row: Some(3),
            column: None,
            message: "第 7 列没有列名，却有内容".into(),
        };
        assert_eq!(
            no_column.to_string(),
            "users.xlsx 第 3 行: 第 7 列没有列名，却有内容"
        );
        let whole_file = ImportError::from(FileError::TooLarge {
            file: "units.csv".into(),
        });
        assert_eq!(
            whole_file.to_string(),
            "units.csv: 文件超过 20 MiB，请拆分后再导入"
        );
    }

    #[test]
    fn a_level_that_is_not_the_kind_s_level_is_refused() {
        assert_eq!(
            messages(plan_units("三街道,甲区热线分中心,区/县,街道办/乡镇,\n")),
            [
                "units.csv 第 2 行「层级」列: 层级「区/县」与类型「街道办/乡镇」不符：这类单位的层级是「街道/乡镇」"
            ]
        );
    }

    #[test]
    fn labels_short_names_and_codes_are_read_for_levels_and_kinds() {
        let plan = plan_units(
            "三街道,d.a,street,street_office,\n二社区,一街道,社区,社区/村委会,\n市医保局,市热线中心,市,市直部门(局委办),\n",
        )
        .expect("planned");
        assert_eq!(plan.counts.units_created, 3);
        let created: Vec<(&str, UnitKind)> = plan
            .commands
            .iter()
            .filter_map(|c| match c {
                DirectoryCommand::CreateUnit { name, kind, .. } => Some((name.as_str(), *kind)),
                _ => None,
            })
            .collect();
        assert_eq!(
            created,
            [
                ("三街道", UnitKind::StreetOffice),
                ("二社区", UnitKind::CommunityCommittee),
                ("市医保局", UnitKind::Bureau)
            ]
        );
    }

    #[test]
    fn unknown_repeated_and_missing_columns_are_refused_by_name() {
        let units = csv(
            "units.csv",
            "名称,上级,层级,电话,名称\n三街道,甲区,街道,123,x\n",
        );
        let errors = messages(plan(Some(&units), None, &small_city(), &admin()));
        assert_eq!(
            errors,
            [
                "units.csv: 未知的列「上级」「电话」（可用的列：名称、上级单位、层级、类型、编码）；列「名称」出现了不止一次；缺少必填的列「上级单位」「类型」"
            ]
        );
    }

    #[test]
    fn a_second_unit_of_the_same_name_under_one_parent_is_refused() {
        let errors = messages(plan_units(
            "三街道,甲区热线分中心,街道,街道办,\n三街道,甲区热线分中心,街道,街道办,d.a.s3\n一街道,甲区热线分中心,街道,街道办,d.a.s9\n",
        ));
        assert_eq!(
            errors,
            [
                "units.csv 第 3 行「名称」列: 同一上级单位下已有名为「三街道」的单位",
                "units.csv 第 4 行「名称」列: 同一上级单位下已有名为「一街道」的单位",
            ]
        );
    }

    #[test]
    fn an_unknown_role_is_refused_and_roles_split_at_every_separator() {
        let errors = messages(plan_users("new,新人,一街道,办理人员、保安,\n"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "users.csv 第 2 行「角色」列: 不认识的角色「保安」（可填：座席接线员、"
            ),
            "{errors:?}"
        );
        let plan = plan_users(
            "a,甲,市热线中心,operator；值班长\nb,乙,city,\"转办人员 , 领导\",甲区热线分中心、d.b\n",
        )
        .expect("planned");
        let roles: Vec<(Vec<Role>, Vec<UnitId>)> = plan
            .commands
            .iter()
            .filter_map(|c| match c {
                DirectoryCommand::CreateUser { user } => {
                    Some((user.roles.clone(), user.oversees.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            roles,
            [
                (vec![Role::Operator, Role::ShiftLeader], vec![]),
                (
                    vec![Role::Dispatcher, Role::Leader],
                    vec![UnitId::new("d.a"), UnitId::new("d.b")]
                ),
            ]
        );
    }

    #[test]
    fn only_csv_and_xlsx_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("units.xls");
        std::fs::write(&path, b"x").expect("write");
        let err = read_table(&path).expect_err("refused");
        assert_eq!(err.to_string(), "units.xls: 只能导入 .csv 或 .xlsx 文件");
        let path = dir.path().join("units.xlsx");
        std::fs::write(&path, "名称,上级单位\n").expect("write");
        assert!(matches!(read_table(&path), Err(FileError::Xlsx { .. })));
    }

    #[test]
    fn a_csv_excel_saved_as_gbk_is_decoded() {
        let text = "名称,上级单位,层级,类型\r\n三街道,甲区热线分中心,街道/乡镇,街道办/乡镇\r\n";
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("units.csv");
        std::fs::write(&path, &gbk).expect("write");
        let table = read_table(&path).expect("read");
        assert_eq!(table.header, ["名称", "上级单位", "层级", "类型"]);
        assert_eq!(table.rows[0][0], "三街道");
        // Not UTF-8 and not GB18030 either.
        std::fs::write(&path, [0x81, 0x20, 0xff]).expect("write");
        assert!(matches!(read_table(&path), Err(FileError::Encoding { .. })));
    }

    #[test]
    fn a_utf8_bom_is_stripped_from_the_first_header() {
        let table = csv(
            "units.csv",
            "\u{feff}名称,上级单位,层级,类型\n三街道,d.a,街道,街道办\n",
        );
        assert_eq!(table.header[0], "名称");
        assert!(plan(Some(&table), None, &small_city(), &admin()).is_ok());
    }

    #[test]
    fn a_unit_whose_parent_comes_later_in_the_file_is_created_after_it() {
        let plan = plan_units(
            "三社区,三街道,社区,社区,\n三街道,甲区热线分中心,街道,街道办,d.a.s3\n三社区一网格,三社区,网格,网格站,\n",
        )
        .expect("planned");
        let order: Vec<&str> = plan
            .commands
            .iter()
            .filter_map(|c| match c {
                DirectoryCommand::CreateUnit { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(order, ["三街道", "三社区", "三社区一网格"]);
        let tree = plan.directory.tree().expect("tree");
        let community = tree
            .units()
            .iter()
            .find(|u| u.name == "三社区")
            .expect("community");
        assert_eq!(community.parent_id, Some(UnitId::new("d.a.s3")));
    }

    #[test]
    fn units_naming_each_other_as_parents_are_refused() {
        let errors = messages(plan_units(
            "甲街道,乙街道,街道,街道办,\n乙街道,甲街道,街道,街道办,\n四街道,甲区热线分中心,街道,街道办,\n",
        ));
        assert_eq!(
            errors,
            [
                "units.csv 第 2 行「上级单位」列: 上级单位「乙街道」的上级关系绕成了圈，找不到根单位",
                "units.csv 第 3 行「上级单位」列: 上级单位「甲街道」的上级关系绕成了圈，找不到根单位",
            ]
        );
    }

    #[test]
    fn every_error_of_every_row_and_file_is_reported_at_once() {
        let units = csv(
            "units.csv",
            &format!(
                "{UNITS_HEADER}三街道,无名区,街道,街道办,\n,甲区热线分中心,街道,街道办,\n四街道,甲区热线分中心,镇,街道办,BAD ID\n五社区,四街道,社区,社区,\n"
            ),
        );
        let users = csv(
            "users.xlsx",
            &format!(
                "{USERS_HEADER}Bad Name,某人,一街道,办理人员,\nx,某人,五社区,办理人员,\ny,某人,一街道,座席接线员,一社区\n"
            ),
        );
        let errors: Vec<String> = plan(Some(&units), Some(&users), &small_city(), &admin())
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "units.csv 第 2 行「上级单位」列: 找不到单位「无名区」",
                "units.csv 第 3 行「名称」列: 单位名称不能为空",
                "units.csv 第 4 行「层级」列: 不认识的层级「镇」（可填：市、区/县、街道/乡镇、社区/村、网格、楼院）",
                "units.csv 第 4 行「编码」列: 「单位编码」须为 1 至 64 个小写字母、数字或 . _ -",
                "units.csv 第 5 行「上级单位」列: 上级单位「四街道」未能导入（见第 4 行）",
                "users.xlsx 第 2 行「用户名」列: 「用户名」须为 1 至 64 个小写字母、数字或 . _ -",
                "users.xlsx 第 3 行「单位」列: 单位「五社区」未能导入（见 units.csv 第 5 行）",
                "users.xlsx 第 4 行「分管单位」列: 只有领导角色可以设置分管单位",
            ]
        );
    }

    #[test]
    fn a_plan_against_a_directory_renames_and_moves_by_code_and_keeps_what_matches() {
        let units = csv(
            "units.csv",
            &format!(
                "{UNITS_HEADER}市热线中心,,市,市热线中心,city\n一街道,乙区热线分中心,街道,街道办,d.a.s1\n一社区（新）,一街道,社区,社区,d.a.s1.c1\n市住建局,市热线中心,市,局委办,\n二街道,甲区热线分中心,街道,街道办,\n"
            ),
        );
        let users = csv(
            "users.csv",
            &format!(
                "{USERS_HEADER}admin,管理员甲,市热线中心,系统管理员,\ns1_handler,办理员乙,一社区（新）,办理人员,\nb_leader,领导丙,乙区热线分中心,领导,乙区热线分中心\n"
            ),
        );
        let plan = plan(Some(&units), Some(&users), &small_city(), &admin()).expect("planned");
        assert_eq!(
            plan.counts,
            PlanCounts {
                units_created: 1,
                units_renamed: 1,
                units_moved: 1,
                units_unchanged: 2,
                users_created: 1,
                users_changed: 1,
                users_unchanged: 1,
            }
        );
        assert_eq!(
            plan.summary(),
            "单位：新增 1 个，更名 1 个，调整上级 1 个，不变 2 个；用户：新增 1 个，调整 1 个，不变 1 个"
        );
        assert!(matches!(
            &plan.commands[0],
            DirectoryCommand::MoveUnit { id, parent_id } if id.as_str() == "d.a.s1" && parent_id.as_str() == "d.b"
        ));
        let d = &plan.directory;
        assert_eq!(
            d.unit(&UnitId::new("d.a.s1.c1")).map(|u| u.name.as_str()),
            Some("一社区（新）")
        );
        assert_eq!(
            d.user("s1_handler").map(|u| u.unit_id.as_str()),
            Some("d.a.s1.c1")
        );
        assert_eq!(
            d.user("b_leader").map(|u| u.oversees.clone()),
            Some(vec![UnitId::new("d.b")])
        );
        // The new street got a derived id that the domain accepts, the same each time.
        let street = d
            .units()
            .iter()
            .find(|u| u.name == "二街道")
            .expect("street");
        assert!(street.id.as_str().starts_with("d.a."), "{}", street.id);
        let again =
            super::plan(Some(&units), Some(&users), &small_city(), &admin()).expect("again");
        assert_eq!(again.commands, plan.commands);
    }

    #[test]
    fn a_unit_moved_without_its_code_is_found_by_its_unique_name() {
        let plan = plan_units("一社区,乙区热线分中心,社区,社区,\n").expect("planned");
        assert_eq!(plan.counts.units_moved, 1);
        assert_eq!(plan.counts.units_created, 0);
    }

    #[test]
    fn a_parent_name_two_rows_share_is_refused_as_ambiguous() {
        let errors = messages(plan_units(
            "第一网格,一社区,网格,网格站,\n二社区,一街道,社区,社区,\n第一网格,二社区,网格,网格站,\n一号楼,第一网格,楼院,楼院,\n",
        ));
        assert_eq!(
            errors,
            [
                "units.csv 第 5 行「上级单位」列: 名为「第一网格」的单位不止一个（第 2、4 行），请改填上级单位的编码"
            ]
        );
    }

    #[test]
    fn an_existing_user_s_name_is_not_changed_by_import() {
        assert_eq!(
            messages(plan_users("admin,别人,市热线中心,系统管理员,\n")),
            [
                "users.csv 第 2 行「姓名」列: 用户「admin」已存在，姓名与系统中的不同；导入不能修改已有用户的姓名"
            ]
        );
    }

    #[test]
    fn the_domain_s_rules_apply_to_imported_users() {
        assert_eq!(
            messages(plan_users("admin,管理员甲,市热线中心,座席接线员,\n")),
            [
                "users.csv 第 2 行「角色」列: 这是最后一个在用的系统管理员，不能停用或取消其管理员角色"
            ]
        );
        let handler = Actor {
            roles: vec![Role::Handler],
            ..admin()
        };
        let users = csv("users.csv", USERS_HEADER);
        assert_eq!(
            messages(plan(None, Some(&users), &small_city(), &handler)),
            ["users.csv: 只有系统管理员可以管理机构与人员"]
        );
    }

    #[test]
    fn a_district_administrator_imports_within_their_district_only() {
        let district_admin = Actor {
            username: "a_admin".into(),
            unit_id: UnitId::new("d.a"),
            roles: vec![Role::Admin],
            oversees: Vec::new(),
        };
        let units = csv(
            "units.csv",
            &format!(
                "{UNITS_HEADER}三街道,甲区热线分中心,街道,街道办,\n乙三街道,乙区热线分中心,街道,街道办,\n"
            ),
        );
        let errors: Vec<String> = plan(Some(&units), None, &small_city(), &district_admin)
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["units.csv 第 3 行「上级单位」列: 「d.b」不在您管理的区县内"]
        );
    }

    #[test]
    fn oversized_files_and_too_many_rows_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("units.csv");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        assert!(matches!(read_table(&big), Err(FileError::TooLarge { .. })));
        let mut many = String::from("名称\n");
        for _ in 0..=MAX_ROWS {
            many.push_str("a\n");
        }
        let err = table_from_csv("units.csv".into(), many.as_bytes()).expect_err("refused");
        assert_eq!(err.to_string(), "units.csv: 超过 100000 行，请拆分后再导入");
    }

    #[test]
    fn blank_rows_are_skipped_but_keep_the_row_numbers() {
        let errors = messages(plan_units(",,,,\n\n三街道,无名区,街道,街道办,\n"));
        assert_eq!(
            errors,
            ["units.csv 第 4 行「上级单位」列: 找不到单位「无名区」"]
        );
    }

    #[test]
    fn a_repeated_code_and_the_code_of_a_closed_unit_are_refused() {
        let base = small_city();
        let closing = DirectoryCommand::CloseUnit {
            id: UnitId::new("d.a.s1.c1"),
            successor: None,
        };
        let events = decide(&base, &admin(), &|_| 0, &closing).expect("closed");
        let closed = events.iter().fold(base, evolve);
        let units = csv(
            "units.csv",
            &format!(
                "{UNITS_HEADER}三街道,甲区热线分中心,街道,街道办,d.a.s3\n四街道,甲区热线分中心,街道,街道办,d.a.s3\n旧社区,一街道,社区,社区,d.a.s1.c1\n"
            ),
        );
        let errors: Vec<String> = plan(Some(&units), None, &closed, &admin())
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "units.csv 第 3 行「编码」列: 编码「d.a.s3」与第 2 行重复",
                "units.csv 第 4 行「编码」列: 编码「d.a.s1.c1」属于已撤销的单位，不能再用",
            ]
        );
    }

    #[test]
    fn the_root_is_renamed_by_its_code_and_no_second_root_is_taken() {
        let plan = plan_units("市12345热线中心,,市,市热线中心,city\n").expect("renamed");
        assert_eq!(plan.counts.units_renamed, 1);
        assert_eq!(
            plan.directory
                .unit(&UnitId::new("city"))
                .map(|u| u.name.as_str()),
            Some("市12345热线中心")
        );
        assert_eq!(
            messages(plan_units("另一个中心,,市,市热线中心,\n")),
            [
                "units.csv 第 2 行「上级单位」列: 「上级单位」为空的只能是根单位「市热线中心」（编码 city）；其他单位须填写上级单位"
            ]
        );
        assert_eq!(
            messages(plan_units("某局,,市,局委办,\n")),
            ["units.csv 第 2 行「上级单位」列: 「上级单位」为空的是根单位，类型须为「市热线中心」"]
        );
        let seeded = csv(
            "units.csv",
            &format!("{UNITS_HEADER}中心,,市,市热线中心,\n又一中心,,市,市热线中心,\n"),
        );
        let errors: Vec<String> = super::plan(Some(&seeded), None, &Directory::default(), &admin())
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "units.csv 第 3 行「上级单位」列: 「上级单位」为空的只能是根单位「中心」（编码 city）；其他单位须填写上级单位"
            ]
        );
    }

    #[test]
    fn a_derived_id_passes_the_domain_s_rules_under_a_long_parent_id() {
        let long = "d.".to_owned() + &"x".repeat(MAX_ID - 2);
        let d = Directory::new(
            vec![
                unit("city", "中心", UnitKind::HotlineCentre, None),
                unit(&long, "长区", UnitKind::DistrictCentre, Some("city")),
            ],
            vec![],
        )
        .expect("directory");
        let units = csv(
            "units.csv",
            &format!("{UNITS_HEADER}三街道,长区,街道,街道办,\n"),
        );
        let plan = plan(Some(&units), None, &d, &admin()).expect("planned");
        let DirectoryCommand::CreateUnit { id, .. } = &plan.commands[0] else {
            panic!("{:?}", plan.commands);
        };
        assert!(
            id.as_str().starts_with("u.") && id.as_str().len() <= MAX_ID,
            "{id}"
        );
    }

    #[test]
    fn row_numbers_count_empty_lines_and_not_line_breaks_inside_a_cell() {
        let text = "名称,上级单位,层级,类型\r\n\r\n\"多行\r\n名称\",甲区热线分中心,街道,街道办\r\n三街道,无名区,街道,街道办\r\n";
        let errors = messages(plan(
            Some(&csv("units.csv", text)),
            None,
            &small_city(),
            &admin(),
        ));
        assert_eq!(
            errors,
            [
                "units.csv 第 3 行「名称」列: 「单位名称」须为 1 至 60 个字符，且不能换行",
                "units.csv 第 4 行「上级单位」列: 找不到单位「无名区」",
            ]
        );
    }

    #[test]
    fn an_xlsx_cell_holding_an_error_value_is_refused_with_its_place() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "名称").expect("cell");
        sheet.write_string(0, 27, "x").expect("cell");
        let formula = rust_xlsxwriter::Formula::new("=NA()").set_result("#N/A");
        sheet.write_formula(1, 27, formula).expect("cell");
        let bytes = workbook.save_to_buffer().expect("workbook");
        let err = table_from_xlsx("units.xlsx".into(), bytes).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "units.xlsx 第 2 行第 AB 列: 单元格是错误值 #N/A，请改正后再导入"
        );
        assert_eq!(
            ImportError::from(err).to_string(),
            "units.xlsx 第 2 行: 第 AB 列的单元格是错误值 #N/A，请改正后再导入"
        );
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
    }

    #[test]
    fn xlsx_numbers_read_without_a_trailing_zero_and_the_sheet_may_start_lower() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(2, 0, "用户名").expect("cell");
        sheet.write_string(2, 1, "姓名").expect("cell");
        sheet.write_number(3, 0, 12345.0).expect("cell");
        sheet.write_number(3, 1, 1.5).expect("cell");
        let bytes = workbook.save_to_buffer().expect("workbook");
        let table = table_from_xlsx("users.xlsx".into(), bytes).expect("read");
        assert_eq!(table.header, ["用户名", "姓名"]);
        assert_eq!(table.rows, [["12345", "1.5"]]);
        assert_eq!(table.header_row, 3);
        assert_eq!(table.row_number(0), 4);
    }

    /// `MINQING_WRITE_CITY_FIXTURES=1 cargo test --lib org_file` writes the `.xlsx` fixtures
    /// from the `.csv` ones; every run checks both read to the same tables.
    #[test]
    fn the_city_fixtures_read_to_the_same_tables_in_both_formats() {
        for (from, to) in [("units.csv", "units.xlsx"), ("users.csv", "users.xlsx")] {
            let csv_table = read_table(&fixture(from)).expect("csv fixture");
            if std::env::var_os("MINQING_WRITE_CITY_FIXTURES").is_some() {
                let bytes = write_xlsx(&csv_table).expect("workbook");
                std::fs::write(fixture(to), bytes).expect("write fixture");
            }
            let xlsx_table = read_table(&fixture(to)).expect("xlsx fixture");
            assert_eq!(xlsx_table.header, csv_table.header, "{to}");
            assert_eq!(xlsx_table.rows, csv_table.rows, "{to}");
            assert_eq!(xlsx_table.file, to);
        }
    }

    #[test]
    fn the_city_fixtures_seed_an_empty_directory() {
        let units = read_table(&fixture("units.csv")).expect("units");
        let users = read_table(&fixture("users.xlsx")).expect("users");
        let plan =
            plan(Some(&units), Some(&users), &Directory::default(), &admin()).expect("planned");
        let root = plan.root.as_ref().expect("a root to seed");
        assert_eq!(root.id.as_str(), "city");
        assert_eq!(plan.counts.units_created, 18);
        assert_eq!(plan.counts.users_created, 10);
        assert!(
            plan.summary()
                .contains("含根单位「河西市12345政务服务便民热线中心」")
        );
        let tree = plan.directory.tree().expect("a tree");
        assert_eq!(tree.units().len(), 18);
        let grid = tree
            .units()
            .iter()
            .find(|u| u.name == "新华社区第一网格")
            .expect("grid");
        assert!(tree.is_below(&grid.id, &UnitId::new("d.xicheng")));
        let leader = plan.directory.user("city_leader").expect("leader");
        assert_eq!(
            leader.oversees,
            [UnitId::new("d.dongcheng"), UnitId::new("d.xicheng")]
        );
    }

    #[test]
    fn an_export_planned_against_its_own_directory_is_an_empty_plan() {
        let units = read_table(&fixture("units.xlsx")).expect("units");
        let users = read_table(&fixture("users.csv")).expect("users");
        let seeded = plan(Some(&units), Some(&users), &Directory::default(), &admin())
            .expect("planned")
            .directory;
        let dir = tempfile::tempdir().expect("tempdir");
        for table in [units_table(&seeded), users_table(&seeded)] {
            let stem = table.file.clone();
            let mut bytes = Vec::new();
            write_csv(&table, &mut bytes).expect("csv");
            assert!(bytes.starts_with("\u{feff}".as_bytes()));
            std::fs::write(dir.path().join(format!("{stem}.csv")), bytes).expect("write");
            let xlsx = write_xlsx(&table).expect("xlsx");
            std::fs::write(dir.path().join(format!("{stem}.xlsx")), xlsx).expect("write");
        }
        for ext in ["csv", "xlsx"] {
            let units = read_table(&dir.path().join(format!("units.{ext}"))).expect("units");
            let users = read_table(&dir.path().join(format!("users.{ext}"))).expect("users");
            assert_eq!(units.rows.len(), 18);
            let again = plan(Some(&units), Some(&users), &seeded, &admin()).expect("planned");
            assert!(again.is_empty(), "{ext}: {:?}", again.commands);
            assert_eq!(again.counts.units_unchanged, 18);
            assert_eq!(again.counts.users_unchanged, 10);
            assert!(again.summary().ends_with("没有需要导入的变更"));
        }
    }

    #[test]
    fn an_export_names_a_unit_by_id_where_its_name_is_not_unique_and_neutralises_formulas() {
        let d = Directory::new(
            vec![
                unit("city", "市热线中心", UnitKind::HotlineCentre, None),
                unit("d.a", "甲区", UnitKind::DistrictCentre, Some("city")),
                unit("d.a.s1", "一街道", UnitKind::StreetOffice, Some("d.a")),
                unit(
                    "d.a.s1.c1",
                    "=社区",
                    UnitKind::CommunityCommittee,
                    Some("d.a.s1"),
                ),
                unit(
                    "d.a.s1.c1.g1",
                    "第一网格",
                    UnitKind::GridStation,
                    Some("d.a.s1.c1"),
                ),
                unit(
                    "d.a.s1.c2",
                    "二社区",
                    UnitKind::CommunityCommittee,
                    Some("d.a.s1"),
                ),
                unit(
                    "d.a.s1.c2.g1",
                    "第一网格",
                    UnitKind::GridStation,
                    Some("d.a.s1.c2"),
                ),
                unit(
                    "d.a.s1.c2.g1.b1",
                    "一号楼",
                    UnitKind::Building,
                    Some("d.a.s1.c2.g1"),
                ),
            ],
            vec![user("admin", "管理员", "city", &[Role::Admin])],
        )
        .expect("directory");
        let table = units_table(&d);
        let building = table.rows.last().expect("row");
        assert_eq!(building[1], "d.a.s1.c2.g1");
        let mut bytes = Vec::new();
        write_csv(&table, &mut bytes).expect("csv");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("'=社区,一街道"), "{text}");
        let back = csv("units.csv", &text);
        let again = plan(Some(&back), None, &d, &admin()).expect("planned");
        assert!(again.is_empty(), "{:?}", again.commands);
    }
}

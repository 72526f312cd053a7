//! `minqing import-org` and `minqing export-org`: a city's units and staff lists (CSV or
//! `.xlsx`, as a centre keeps them in Excel) into the recorded directory, all or nothing, and
//! back out in the same shape. The files are read and planned by [`crate::org_file`]; every
//! change is decided by `domain::directory` and recorded in one append to the `directory`
//! stream.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use domain::directory::{Directory, DirectoryEvent, decide, evolve};
use domain::org::UnitId;
use domain::roles::{Actor, Role};

use crate::directory_log::{self, OrgSnapshot};
use crate::org_file::{self, ImportError, Plan};
use crate::store::sqlite::SqliteStore;
use crate::store::stream::DIRECTORY;
use crate::store::{EventStore, ExpectedVersion};

/// Who an import is recorded as.
pub const IMPORT_ACTOR: &str = "import-org";

/// What `import-org` was asked.
#[derive(Debug, Clone)]
pub struct ImportOrg {
    /// The data directory (created if missing).
    pub data: PathBuf,
    /// The units list.
    pub units: Option<PathBuf>,
    /// The staff list.
    pub users: Option<PathBuf>,
    /// Only show what would change.
    pub dry_run: bool,
    /// What new users sign in with once (they must change it then).
    pub initial_password: Option<String>,
}

/// How an import ended.
#[derive(Debug)]
pub enum Outcome {
    /// The files have errors; nothing was recorded. Each names its file, row and column.
    Refused(Vec<ImportError>),
    /// The plan, recorded unless it was a dry run (or empty).
    Planned {
        /// What it does.
        plan: Box<Plan>,
        /// Whether it was recorded.
        recorded: bool,
    },
}

/// Reads, plans and (unless a dry run) records an import. Holds the data directory's lock:
/// the service must be stopped (its directory would not see the change).
///
/// # Errors
/// IO and store failures, a data directory another process owns, and a plan that creates
/// users without an initial password.
pub async fn import_org(args: &ImportOrg) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.units.is_some() || args.users.is_some(),
        "请用 --units 或 --users 指定要导入的文件"
    );
    let _lock = crate::datadir::DataDirLock::create_and_acquire(&args.data, "import-org")?;
    let read = |path: &Option<PathBuf>| -> Result<Option<org_file::Table>, ImportError> {
        path.as_deref()
            .map(org_file::read_table)
            .transpose()
            .map_err(ImportError::from)
    };
    let (units, users) = match (read(&args.units), read(&args.users)) {
        (Ok(units), Ok(users)) => (units, users),
        (units, users) => {
            let errors = [units.err(), users.err()].into_iter().flatten().collect();
            return Ok(Outcome::Refused(errors));
        }
    };
    let store = SqliteStore::open(&args.data.join("events.db")).with_context(|| {
        format!(
            "failed to open the event store in `{}`",
            args.data.display()
        )
    })?;
    let recorded = directory_log::load(&store).await?;
    let current = if recorded.is_empty() {
        None
    } else {
        Some(OrgSnapshot::fold(&recorded)?)
    };
    let directory = current
        .as_ref()
        .map_or_else(Directory::default, |s| s.directory.clone());
    let actor = import_actor(current.as_ref());
    let plan = match org_file::plan(units.as_ref(), users.as_ref(), &directory, &actor) {
        Ok(plan) => plan,
        Err(errors) => return Ok(Outcome::Refused(errors)),
    };
    if args.dry_run || plan.is_empty() {
        return Ok(Outcome::Planned {
            plan: Box::new(plan),
            recorded: false,
        });
    }
    let password = match (&args.initial_password, plan.counts.users_created) {
        (_, 0) => String::new(),
        (Some(password), _) if !password.is_empty() => password.clone(),
        _ => anyhow::bail!(
            "要新增 {} 个用户：请用 --initial-password（或 MINQING_INITIAL_PASSWORD）给出他们首次登录的初始密码",
            plan.counts.users_created
        ),
    };
    let events = events_of(&plan, &directory, &actor)?;
    let version = current.as_ref().map_or(0, |s| s.version);
    let new = events
        .iter()
        .map(|event| directory_log::encode(event, IMPORT_ACTOR, chrono::Utc::now()))
        .collect();
    store
        .append(DIRECTORY, ExpectedVersion::Exact(version), new)
        .await
        .context("failed to record the import")?;
    let snapshot = OrgSnapshot::fold(&directory_log::load(&store).await?)?;
    // The accounts of the new users, with the initial password to change at the first
    // sign-in.
    crate::directory::Directory::open(&args.data, &snapshot, &password)?;
    Ok(Outcome::Planned {
        plan: Box::new(plan),
        recorded: true,
    })
}

/// The administrator an import runs as: of the root unit, so every district is in reach.
fn import_actor(current: Option<&OrgSnapshot>) -> Actor {
    Actor {
        username: IMPORT_ACTOR.to_owned(),
        unit_id: current.map_or_else(|| UnitId::new("city"), |s| s.tree.root().id.clone()),
        roles: vec![Role::Admin],
        oversees: Vec::new(),
    }
}

/// The events of `plan` on `directory`: the root first when the directory is empty, then each
/// command decided again in order (the plan decided them already; deciding again keeps the
/// events the domain's own).
fn events_of(
    plan: &Plan,
    directory: &Directory,
    actor: &Actor,
) -> anyhow::Result<Vec<DirectoryEvent>> {
    let mut events = Vec::new();
    let mut directory = directory.clone();
    if let Some(root) = &plan.root {
        let event = DirectoryEvent::UnitCreated { unit: root.clone() };
        directory = evolve(directory, &event);
        events.push(event);
    }
    for command in &plan.commands {
        // A unit imported has no cases yet; closing is not something an import does.
        let decided = decide(&directory, actor, &|_| 0, command)
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        for event in decided {
            directory = evolve(directory, &event);
            events.push(event);
        }
    }
    Ok(events)
}

/// Writes the recorded directory's units and/or staff lists, in the shape `import-org`
/// reads (`.xlsx` or `.csv` by the file's extension; neither file may exist).
///
/// # Errors
/// IO and store failures, an existing file, an unknown extension, no recorded directory.
pub async fn export_org(
    data: &Path,
    units: Option<&Path>,
    users: Option<&Path>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        units.is_some() || users.is_some(),
        "请用 --units 或 --users 指定要写出的文件"
    );
    let store = SqliteStore::open(&data.join("events.db"))
        .with_context(|| format!("failed to open the event store in `{}`", data.display()))?;
    let recorded = directory_log::load(&store).await?;
    anyhow::ensure!(
        !recorded.is_empty(),
        "`{}` 还没有机构人员记录（先启动一次服务，或用 import-org 导入）",
        data.display()
    );
    let snapshot = OrgSnapshot::fold(&recorded)?;
    for (path, table) in [
        (
            units,
            units.map(|_| org_file::units_table(&snapshot.directory)),
        ),
        (
            users,
            users.map(|_| org_file::users_table(&snapshot.directory)),
        ),
    ] {
        if let (Some(path), Some(table)) = (path, table) {
            write_table(path, &table)?;
        }
    }
    Ok(())
}

fn write_table(path: &Path, table: &org_file::Table) -> anyhow::Result<()> {
    use std::io::Write as _;
    let bytes = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("xlsx") => org_file::write_xlsx(table)
            .map_err(|e| anyhow::anyhow!("failed to write `{}`: {e}", path.display()))?,
        Some(ext) if ext.eq_ignore_ascii_case("csv") => {
            let mut out = Vec::new();
            org_file::write_csv(table, &mut out)?;
            out
        }
        _ => anyhow::bail!("`{}`：只能写出 .csv 或 .xlsx 文件", path.display()),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create `{}` (it must not exist)", path.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/city")
            .join(name)
    }

    fn args(data: &Path, dry_run: bool) -> ImportOrg {
        ImportOrg {
            data: data.to_owned(),
            units: Some(fixture("units.csv")),
            users: Some(fixture("users.xlsx")),
            dry_run,
            initial_password: Some("Hexi-12345".into()),
        }
    }

    #[tokio::test]
    async fn a_city_is_imported_into_an_empty_directory_once_and_a_second_import_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        // A dry run records nothing.
        let Outcome::Planned { plan, recorded } =
            import_org(&args(dir.path(), true)).await.expect("dry run")
        else {
            panic!("refused")
        };
        assert!(!recorded);
        assert!(plan.counts.units_created > 10, "{}", plan.summary());
        let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
        assert!(directory_log::load(&store).await.expect("load").is_empty());
        drop(store);

        let Outcome::Planned { recorded, .. } =
            import_org(&args(dir.path(), false)).await.expect("import")
        else {
            panic!("refused")
        };
        assert!(recorded);
        let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
        let events = directory_log::load(&store).await.expect("load");
        assert!(events.iter().all(|e| e.actor == IMPORT_ACTOR));
        let snapshot = OrgSnapshot::fold(&events).expect("fold");
        assert!(!snapshot.demo);
        assert_eq!(snapshot.tree.root().name, "河西市12345政务服务便民热线中心");
        drop(store);
        // The new users sign in once with the initial password, which they must change.
        let accounts =
            crate::directory::Directory::open(dir.path(), &snapshot, "unused").expect("accounts");
        let user = accounts
            .verify("dc_dispatcher", "Hexi-12345", &mut Vec::new())
            .expect("signs in");
        assert!(user.must_change_password);

        let Outcome::Planned { plan, recorded } =
            import_org(&args(dir.path(), false)).await.expect("again")
        else {
            panic!("refused")
        };
        assert!(plan.is_empty() && !recorded, "{}", plan.summary());
    }

    #[tokio::test]
    async fn a_list_with_an_error_records_nothing_and_names_the_row_and_column() {
        let dir = tempfile::tempdir().expect("dir");
        let units = dir.path().join("units.csv");
        std::fs::write(
            &units,
            "名称,上级单位,层级,类型\n某市热线中心,,市,市热线中心\n城关区住建局,城关区,区/县,区/县属部门\n",
        )
        .expect("write");
        let data = dir.path().join("data");
        let outcome = import_org(&ImportOrg {
            data: data.clone(),
            units: Some(units),
            users: None,
            dry_run: false,
            initial_password: None,
        })
        .await
        .expect("import");
        let Outcome::Refused(errors) = outcome else {
            panic!("accepted")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "units.csv 第 3 行「上级单位」列: 找不到单位「城关区」"
        );
        let store = SqliteStore::open(&data.join("events.db")).expect("store");
        assert!(directory_log::load(&store).await.expect("load").is_empty());
    }

    #[tokio::test]
    async fn new_users_without_an_initial_password_are_refused_before_anything_is_recorded() {
        let dir = tempfile::tempdir().expect("dir");
        let mut asked = args(dir.path(), false);
        asked.initial_password = None;
        let err = import_org(&asked).await.expect_err("refused");
        assert!(err.to_string().contains("--initial-password"), "{err}");
        let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
        assert!(directory_log::load(&store).await.expect("load").is_empty());
    }

    #[tokio::test]
    async fn an_export_reads_back_as_an_import_that_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        import_org(&args(dir.path(), false)).await.expect("import");
        let out = tempfile::tempdir().expect("out");
        let (units, users) = (out.path().join("u.xlsx"), out.path().join("p.csv"));
        export_org(dir.path(), Some(&units), Some(&users))
            .await
            .expect("export");
        assert!(export_org(dir.path(), Some(&units), None).await.is_err());
        let Outcome::Planned { plan, .. } = import_org(&ImportOrg {
            data: dir.path().to_owned(),
            units: Some(units),
            users: Some(users),
            dry_run: true,
            initial_password: None,
        })
        .await
        .expect("re-import") else {
            panic!("refused")
        };
        assert!(plan.is_empty(), "{}", plan.summary());
    }
}

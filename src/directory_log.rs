//! The directory (机构与人员) as the event stream `directory`: its events to and from the
//! store, the first start's seed (the demo city of `fixtures/`, with the users of an older
//! build's `users.json` when there is one), and the snapshot every part of the service reads
//! ([`SharedOrg`]), replaced when the directory changes.
//!
//! One stream for the whole city: changes are rare (a handful a day), every one is decided
//! against the whole directory (a move checks the subtree, a close the open cases), and the
//! stream's version is the snapshot's version.

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::codec::DecodeError;
use crate::app::envelope;
use crate::app::shared::{Shared, Versioned};
use crate::store::stream::DIRECTORY;
use crate::store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use chrono::{DateTime, Utc};
use domain::directory::{Directory, DirectoryError, DirectoryEvent, UserEntry};
use domain::org::{OrgTree, Unit, UnitId};

/// The schema of the directory events' JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// The name the first start records the seed under.
pub const SEED_ACTOR: &str = "system";

/// A directory event as recorded: what, who, when and where in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// What changed.
    pub event: DirectoryEvent,
    /// Who changed it (`system` for the seed).
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The event's global position.
    pub position: u64,
}

/// The store's type tag of `event`.
pub fn type_name(event: &DirectoryEvent) -> &'static str {
    match event {
        DirectoryEvent::UnitCreated { .. } => "unit_created",
        DirectoryEvent::UnitRenamed { .. } => "unit_renamed",
        DirectoryEvent::UnitMoved { .. } => "unit_moved",
        DirectoryEvent::UnitClosed { .. } => "unit_closed",
        DirectoryEvent::UserCreated { .. } => "user_created",
        DirectoryEvent::UserChanged { .. } => "user_changed",
        DirectoryEvent::UserDisabled { .. } => "user_disabled",
        DirectoryEvent::UserEnabled { .. } => "user_enabled",
        DirectoryEvent::PasswordReset { .. } => "password_reset",
    }
}

/// Encodes a directory event for the store.
pub fn encode(event: &DirectoryEvent, actor: &str, at: DateTime<Utc>) -> NewEvent {
    envelope::encode(event, type_name(event), SCHEMA_VERSION, actor, at)
}

/// Decodes a stored directory event.
///
/// # Errors
/// [`DecodeError`] when the JSON matches no known shape or is newer than this build.
pub fn decode(rec: &RecordedEvent) -> Result<Recorded, DecodeError> {
    let decoded = envelope::decode(rec, SCHEMA_VERSION)?;
    Ok(Recorded {
        event: decoded.event,
        actor: decoded.actor,
        at: decoded.at,
        position: rec.position.0,
    })
}

/// The directory at one version of its stream, with the tree of its open units.
#[derive(Debug, Clone)]
pub struct OrgSnapshot {
    /// The stream's version (the count of directory events folded in).
    pub version: u64,
    /// The global position of the last event folded in (0 before any).
    pub position: u64,
    /// Units (closed ones too) and users.
    pub directory: Directory,
    /// The open units, for routing and scope.
    pub tree: Arc<OrgTree>,
    /// The directory began as the demo city a first start seeds (recorded by [`SEED_ACTOR`]):
    /// its users sign in with the demo password as it is, not as a handed-out one.
    pub demo: bool,
    /// The earlier names of renamed units: (the rename's position, the name until then),
    /// oldest first.
    earlier_names: HashMap<UnitId, Vec<(u64, String)>>,
}

/// A snapshot being folded, before its tree is built.
#[derive(Default)]
struct Folding {
    demo: bool,
    version: u64,
    position: u64,
    directory: Directory,
    earlier_names: HashMap<UnitId, Vec<(u64, String)>>,
}

impl Folding {
    fn fold_in(&mut self, events: &[Recorded]) {
        for rec in events {
            if self.version == 0 {
                self.demo = rec.actor == SEED_ACTOR;
            }
            if let DirectoryEvent::UnitRenamed { id, .. } = &rec.event
                && let Some(unit) = self.directory.unit(id)
            {
                self.earlier_names
                    .entry(id.clone())
                    .or_default()
                    .push((rec.position, unit.name.clone()));
            }
            self.directory =
                domain::directory::evolve(std::mem::take(&mut self.directory), &rec.event);
            self.version += 1;
            self.position = rec.position;
        }
    }

    fn into_snapshot(self) -> Result<OrgSnapshot, SnapshotError> {
        let tree = self.directory.tree().map_err(SnapshotError::Tree)?;
        Ok(OrgSnapshot {
            version: self.version,
            position: self.position,
            directory: self.directory,
            tree: Arc::new(tree),
            demo: self.demo,
            earlier_names: self.earlier_names,
        })
    }
}

/// Why the recorded directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// An event does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The events make no tree (none recorded yet, or a defect: the rules keep it whole).
    #[error("the recorded directory is no tree: {0}")]
    Tree(DirectoryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OrgSnapshot {
    /// The directory of `events`, folded in order.
    ///
    /// # Errors
    /// [`SnapshotError::Tree`] when they leave no tree.
    pub fn fold(events: &[Recorded]) -> Result<Self, SnapshotError> {
        let mut state = Folding::default();
        state.fold_in(events);
        state.into_snapshot()
    }

    /// This snapshot with `events` (the next ones of the stream) folded in.
    ///
    /// # Errors
    /// As [`OrgSnapshot::fold`].
    pub fn and(&self, events: &[Recorded]) -> Result<Self, SnapshotError> {
        if events.is_empty() {
            return Ok(self.clone());
        }
        let mut state = Folding {
            demo: self.demo,
            version: self.version,
            position: self.position,
            directory: self.directory.clone(),
            earlier_names: self.earlier_names.clone(),
        };
        state.fold_in(events);
        state.into_snapshot()
    }

    /// The name `id` had when the event at `position` of the log was recorded (a case shows
    /// the name its unit had when it was sent there), or `None` for a unit never created.
    /// By position, not time: a rename in the same second as a step still comes after it.
    pub fn name_at(&self, id: &UnitId, position: u64) -> Option<&str> {
        let current = self.directory.unit(id)?;
        let earlier = self.earlier_names.get(id).and_then(|names| {
            names
                .iter()
                .find(|(renamed_at, _)| position < *renamed_at)
                .map(|(_, name)| name.as_str())
        });
        Some(earlier.unwrap_or(current.name.as_str()))
    }
}

/// The directory every part of the service reads: the newest snapshot, replaced whole after
/// each change.
pub type SharedOrg = Shared<OrgSnapshot>;

impl Versioned for OrgSnapshot {
    fn stream_version(&self) -> u64 {
        self.version
    }
}

impl Shared<OrgSnapshot> {
    /// The tree of the snapshot in force.
    pub fn tree(&self) -> Arc<OrgTree> {
        self.current().tree.clone()
    }
}

/// The demo city of the fixtures as a first start records it (positions and times made up):
/// for tests and tools that build an application without a store's directory.
///
/// # Errors
/// When the fixtures do not parse or make no tree.
pub fn demo_snapshot() -> anyhow::Result<OrgSnapshot> {
    let org = crate::directory::load_org()?;
    let users = crate::directory::fixture_users()?;
    let events: Vec<Recorded> = seed_events(org.units(), &users)
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            event,
            actor: SEED_ACTOR.into(),
            at: DateTime::UNIX_EPOCH,
            position: i as u64 + 1,
        })
        .collect();
    Ok(OrgSnapshot::fold(&events)?)
}

/// Where a reader takes its tree from: the directory in force, or (tests, tools working on
/// a copy) one fixed tree.
#[derive(Debug, Clone)]
pub enum OrgSource {
    /// The service's directory: the tree in force when asked.
    Shared(Arc<SharedOrg>),
    /// A tree that does not change.
    Fixed(Arc<OrgTree>),
}

impl OrgSource {
    /// The tree now.
    pub fn tree(&self) -> Arc<OrgTree> {
        match self {
            OrgSource::Shared(shared) => shared.tree(),
            OrgSource::Fixed(tree) => tree.clone(),
        }
    }
}

impl From<OrgTree> for OrgSource {
    fn from(tree: OrgTree) -> Self {
        OrgSource::Fixed(Arc::new(tree))
    }
}

impl From<Arc<OrgTree>> for OrgSource {
    fn from(tree: Arc<OrgTree>) -> Self {
        OrgSource::Fixed(tree)
    }
}

impl From<Arc<SharedOrg>> for OrgSource {
    fn from(shared: Arc<SharedOrg>) -> Self {
        OrgSource::Shared(shared)
    }
}

/// The tree of the directory as recorded at the end of `store`'s log (the demo city's when
/// none is recorded yet: the tree every event before the recorded directory was written
/// under): what `minqing rebuild` writes the read models and the case index with.
///
/// # Errors
/// Store and decode failures; a recorded directory that is no tree.
pub async fn recorded_tree(store: &dyn EventStore) -> anyhow::Result<OrgTree> {
    let events = load(store).await?;
    if events.is_empty() {
        return crate::directory::load_org();
    }
    Ok(OrgTree::clone(&OrgSnapshot::fold(&events)?.tree))
}

/// Every recorded directory event, in order.
///
/// # Errors
/// Store and decode failures.
pub async fn load(store: &dyn EventStore) -> Result<Vec<Recorded>, SnapshotError> {
    let records = store.read_stream(DIRECTORY, 1).await?;
    records
        .iter()
        .map(|rec| decode(rec).map_err(SnapshotError::from))
        .collect()
}

/// The events that create `units` (parents first) and `users`, as a first start records
/// the directory it seeds.
pub fn seed_events(units: &[Unit], users: &[UserEntry]) -> Vec<DirectoryEvent> {
    units
        .iter()
        .map(|unit| DirectoryEvent::UnitCreated { unit: unit.clone() })
        .chain(
            users
                .iter()
                .map(|user| DirectoryEvent::UserCreated { user: user.clone() }),
        )
        .collect()
}

/// The recorded directory, seeded first when the stream is empty: with the demo city's
/// units of `fixtures/org.json` and `users` (the demo users, or those of an older build's
/// `users.json`: the directory before it was recorded). The seed is checked to be a tree
/// and appended as one append, so a crash leaves all of it or none.
///
/// # Errors
/// Store and decode failures; a seed that is no tree.
pub async fn open(
    store: &dyn EventStore,
    seed_units: &[Unit],
    seed_users: impl FnOnce() -> anyhow::Result<Vec<UserEntry>>,
    at: DateTime<Utc>,
) -> anyhow::Result<OrgSnapshot> {
    let mut events = load(store).await?;
    if events.is_empty() {
        let users = seed_users()?;
        Directory::new(seed_units.to_vec(), users.clone())
            .map_err(|e| anyhow::anyhow!("the seed directory is invalid: {}", e.message()))?;
        let seed: Vec<NewEvent> = seed_events(seed_units, &users)
            .iter()
            .map(|event| encode(event, SEED_ACTOR, at))
            .collect();
        match store
            .append(DIRECTORY, ExpectedVersion::NoStream, seed)
            .await
        {
            // Another start seeded it first: what it recorded is the directory.
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        events = load(store).await?;
    }
    Ok(OrgSnapshot::fold(&events)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use domain::org::UnitKind;

    fn unit(id: &str, name: &str, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit {
            id: UnitId::new(id),
            name: name.into(),
            level: kind.level(),
            kind,
            parent_id: parent.map(UnitId::new),
        }
    }

    fn small_city() -> Vec<Unit> {
        vec![
            unit("c", "某市热线中心", UnitKind::HotlineCentre, None),
            unit(
                "c.d",
                "城关区热线分中心",
                UnitKind::DistrictCentre,
                Some("c"),
            ),
        ]
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[tokio::test]
    async fn a_first_start_seeds_once_and_a_second_reads_what_was_recorded() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
        let first = open(&store, &small_city(), || Ok(Vec::new()), Utc::now())
            .await
            .expect("seed");
        assert_eq!(first.version, 2);
        assert!(first.tree.get(&UnitId::new("c.d")).is_some());
        // A second start finds the stream and seeds nothing, whatever it would seed.
        let again = open(&store, &[], || anyhow::bail!("not asked"), Utc::now())
            .await
            .expect("open");
        assert_eq!(again.version, 2);
        assert_eq!(again.directory, first.directory);
    }

    #[tokio::test]
    async fn a_seed_that_is_no_tree_appends_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
        let orphan = vec![unit("x", "孤儿", UnitKind::DistrictCentre, Some("nowhere"))];
        assert!(
            open(&store, &orphan, || Ok(Vec::new()), Utc::now())
                .await
                .is_err()
        );
        assert!(load(&store).await.expect("load").is_empty());
    }

    #[test]
    fn events_read_back_as_written_with_who_and_when() {
        let event = DirectoryEvent::UnitRenamed {
            id: UnitId::new("c.d"),
            name: "城关区分中心".into(),
        };
        let new = encode(&event, "admin", at("2026-12-03T02:00:00Z"));
        assert_eq!(new.event_type, "unit_renamed");
        let rec = RecordedEvent {
            position: crate::store::Position(7),
            stream: DIRECTORY.into(),
            version: 1,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            data: new.data,
            metadata: new.metadata,
            recorded_at: Utc::now(),
        };
        let back = decode(&rec).expect("decode");
        assert_eq!(back.event, event);
        assert_eq!(back.actor, "admin");
        assert_eq!(back.at, at("2026-12-03T02:00:00Z"));
        assert_eq!(back.position, 7);
    }

    #[test]
    fn a_renamed_unit_keeps_its_earlier_name_for_earlier_times() {
        let seeded: Vec<Recorded> = seed_events(&small_city(), &[])
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                event,
                actor: SEED_ACTOR.into(),
                at: at("2026-01-01T00:00:00Z"),
                position: i as u64 + 1,
            })
            .collect();
        let before = OrgSnapshot::fold(&seeded).expect("fold");
        let renamed = before
            .and(&[Recorded {
                event: DirectoryEvent::UnitRenamed {
                    id: UnitId::new("c.d"),
                    name: "城关区分中心".into(),
                },
                actor: "admin".into(),
                at: at("2026-06-01T00:00:00Z"),
                position: 9,
            }])
            .expect("rename");
        let id = UnitId::new("c.d");
        assert_eq!(renamed.name_at(&id, 8), Some("城关区热线分中心"));
        assert_eq!(renamed.name_at(&id, 10), Some("城关区分中心"));
        assert_eq!(
            renamed.tree.get(&id).map(|u| u.name.as_str()),
            Some("城关区分中心")
        );
        assert_eq!((renamed.version, renamed.position), (3, 9));
        // The snapshot it came from is untouched (readers hold it).
        assert_eq!(
            before.tree.get(&id).map(|u| u.name.as_str()),
            Some("城关区热线分中心")
        );
        assert_eq!(renamed.name_at(&UnitId::new("nowhere"), 1), None);
    }
}

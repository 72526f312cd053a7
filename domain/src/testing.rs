//! A small given/when/then harness for the rules, plus a test world: the small city of
//! `org::tests`, the fixture calendar and deadline policy, and one actor per role.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};

use crate::calendar::{CalendarData, DeadlinePolicy, WorkingCalendar};
use crate::case::{Case, evolve};
use crate::command::Command;
use crate::decide::{Context, decide};
use crate::error::CaseError;
use crate::event::{Event, EventBody};
use crate::org::{OrgTree, UnitId};
use crate::roles::{Actor, Role};

pub(crate) struct World {
    pub org: OrgTree,
    pub calendar: WorkingCalendar,
    pub policy: DeadlinePolicy,
}

pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let data: CalendarData = serde_json::from_str(include_str!("../../fixtures/calendar.json"))
            .expect("calendar parses");
        let policy: DeadlinePolicy =
            serde_json::from_str(include_str!("../../fixtures/deadline-policy.json"))
                .expect("policy parses");
        World {
            org: crate::org::tests::small_city(),
            calendar: WorkingCalendar::new(data).expect("calendar is valid"),
            policy,
        }
    })
}

pub(crate) fn actor(username: &str, unit: &str, role: Role) -> Actor {
    Actor {
        username: username.to_owned(),
        unit_id: UnitId::new(unit),
        roles: vec![role],
        oversees: Vec::new(),
    }
}

pub(crate) fn leader(username: &str, unit: &str, oversees: &[&str]) -> Actor {
    Actor {
        oversees: oversees.iter().map(|u| UnitId::new(*u)).collect(),
        ..actor(username, unit, Role::Leader)
    }
}

/// Shanghai wall-clock time as UTC.
pub(crate) fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("valid offset")
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid time")
        .with_timezone(&Utc)
}

/// A case driven command by command, asserting each step.
pub(crate) struct Scenario {
    pub case: Case,
    pub history: Vec<Event>,
    pub now: DateTime<Utc>,
}

impl Scenario {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            case: Case::default(),
            history: Vec::new(),
            now,
        }
    }

    pub fn try_cmd(&self, actor: &Actor, cmd: &Command) -> Result<Vec<Event>, CaseError> {
        let w = world();
        let ctx = Context {
            now: self.now,
            actor,
            org: &w.org,
            calendar: &w.calendar,
            policy: &w.policy,
        };
        decide(&self.case, cmd, &ctx)
    }

    /// Runs a command that must succeed, applies its events and returns their bodies.
    #[track_caller]
    pub fn ok(&mut self, actor: &Actor, cmd: Command) -> Vec<EventBody> {
        let events = match self.try_cmd(actor, &cmd) {
            Ok(events) => events,
            Err(e) => panic!("{} by {} refused: {e:?}", cmd.name(), actor.username),
        };
        for e in &events {
            self.case = evolve(std::mem::take(&mut self.case), e);
        }
        self.history.extend(events.iter().cloned());
        events.into_iter().map(|e| e.body).collect()
    }

    /// Runs a command that must be refused with `expected`, and checks nothing changed.
    #[track_caller]
    pub fn refused(&mut self, actor: &Actor, cmd: Command, expected: CaseError) {
        let before = self.case.clone();
        match self.try_cmd(actor, &cmd) {
            Ok(events) => panic!(
                "{} by {} was accepted: {events:?}",
                cmd.name(),
                actor.username
            ),
            Err(e) => assert_eq!(e, expected, "{} by {}", cmd.name(), actor.username),
        }
        assert_eq!(self.case, before);
    }

    pub fn advance_to(&mut self, now: DateTime<Utc>) {
        self.now = now;
    }
}

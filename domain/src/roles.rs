//! Roles (used-by) and the acting user.

use serde::{Deserialize, Serialize};

use crate::org::{OrgTree, UnitId, UnitKind};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 座席接线员
    Operator,
    /// 值班长
    ShiftLeader,
    /// 转办人员 (city or district centre)
    Dispatcher,
    /// 办理人员 (bureau, department, street…)
    Handler,
    /// 领导 — oversees a set of units.
    Leader,
    /// 效能办 — the efficiency office, or a unit it authorises.
    Supervisor,
    /// 系统管理员
    Admin,
}

impl Role {
    /// The role's word on the wire (snake_case, as serialised): `operator`, `shift_leader`, ….
    pub fn code(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::ShiftLeader => "shift_leader",
            Role::Dispatcher => "dispatcher",
            Role::Handler => "handler",
            Role::Leader => "leader",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// The role's Chinese name: 座席接线员, 值班长, ….
    pub fn label(self) -> &'static str {
        match self {
            Role::Operator => "座席接线员",
            Role::ShiftLeader => "值班长",
            Role::Dispatcher => "转办人员",
            Role::Handler => "办理人员",
            Role::Leader => "领导",
            Role::Supervisor => "效能办",
            Role::Admin => "系统管理员",
        }
    }
}

/// Who reads the daily report (日报) of every district and bureau: the efficiency office
/// (效能办), leaders, shift leaders (值班长) and admins. Operators, dispatchers and handlers
/// work cases; they do not read reports.
pub const REPORT_READERS: [Role; 4] = [
    Role::Supervisor,
    Role::Leader,
    Role::ShiftLeader,
    Role::Admin,
];

/// The user a command acts for, as far as the rules need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Login name.
    pub username: String,
    /// The unit the user works in.
    pub unit_id: UnitId,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// For leaders: the units (with their subtrees) they oversee.
    pub oversees: Vec<UnitId>,
}

impl Actor {
    /// Whether the actor has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the actor has any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Whether the actor may read the daily report ([`REPORT_READERS`]); which rows they see
    /// is their scope's business.
    pub fn may_read_daily_report(&self) -> bool {
        self.has_any(&REPORT_READERS)
    }

    /// Whether the actor works at the city hotline centre (the root of the tree).
    pub fn at_city_centre(&self, org: &OrgTree) -> bool {
        org.get(&self.unit_id)
            .is_some_and(|u| u.kind == UnitKind::HotlineCentre)
    }

    /// Whether the actor is only a leader (领导): their scope is the units they oversee, not
    /// the unit they sit in.
    pub fn leads_only(&self) -> bool {
        !self.roles.is_empty() && self.roles.iter().all(|r| *r == Role::Leader)
    }

    /// Whether the actor's scope is the whole city (rule 14): admins, the city centre's staff,
    /// and the city's efficiency office. A district's efficiency office staff (a supervisor
    /// whose unit is below the city) see their district only, as its dispatchers do; a leader
    /// sees what went to the units they oversee, wherever they sit.
    pub fn sees_every_case(&self, org: &OrgTree) -> bool {
        self.has(Role::Admin)
            || (self.at_city_centre(org) && !self.leads_only())
            || (self.has(Role::Supervisor)
                && org
                    .get(&self.unit_id)
                    .is_some_and(|u| u.level == crate::org::Level::City))
    }

    /// Whether `unit` lies within a unit this actor oversees.
    pub fn oversees_unit(&self, org: &OrgTree, unit: &UnitId) -> bool {
        self.oversees.iter().any(|o| org.is_within(unit, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(roles: &[Role]) -> Actor {
        Actor {
            username: "someone".into(),
            unit_id: UnitId::new("city"),
            roles: roles.to_vec(),
            oversees: Vec::new(),
        }
    }

    #[test]
    fn the_efficiency_office_leaders_shift_leaders_and_admins_read_the_daily_report() {
        for role in [
            Role::Supervisor,
            Role::Leader,
            Role::ShiftLeader,
            Role::Admin,
        ] {
            assert!(actor(&[role]).may_read_daily_report(), "{role:?}");
        }
    }

    #[test]
    fn operators_dispatchers_and_handlers_may_not_read_the_daily_report() {
        for role in [Role::Operator, Role::Dispatcher, Role::Handler] {
            assert!(!actor(&[role]).may_read_daily_report(), "{role:?}");
        }
        assert!(!actor(&[]).may_read_daily_report());
        assert!(actor(&[Role::Operator, Role::ShiftLeader]).may_read_daily_report());
    }
}

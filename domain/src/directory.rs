//! The directory (机构与人员): the units of the six-level tree and the staff accounts, as
//! commands decided by pure rules and events folded into a [`Directory`].
//!
//! The rules of issue 12: a unit cannot be moved under its own subtree; a unit with open cases
//! cannot be closed without a successor for them; the last administrator cannot be disabled
//! (nor lose the role). Administrators manage the whole city; an administrator whose unit is a
//! district centre (区管理员) manages the units and users of that district only. Every refusal
//! carries the Chinese text shown to the person who tried ([`DirectoryError::message`]).
//!
//! Pure: the caller passes the directory as it stands, the count of open cases of a unit and
//! the actor; nothing here reads a clock or a store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::org::{OrgError, OrgTree, Unit, UnitId, UnitKind};
use crate::roles::{Actor, Role};
use crate::text::{self, Lines};

/// The longest unit name (characters).
pub const MAX_NAME: usize = 60;
/// The longest unit id or username (bytes, ASCII only).
pub const MAX_ID: usize = 64;

/// A user as the directory keeps them (the password lives with the login, not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    /// Login name.
    pub username: String,
    /// The name shown on screen.
    pub display_name: String,
    /// The unit the user works in.
    pub unit_id: UnitId,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// For leaders: the units they oversee.
    pub oversees: Vec<UnitId>,
    /// A disabled account cannot sign in.
    pub disabled: bool,
}

/// What the directory holds: every unit ever created (closed ones kept, with the successor
/// their open cases went to) and every user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// Units, parents before children.
    units: Vec<Unit>,
    /// Closed units and their successors.
    closed: BTreeMap<UnitId, Option<UnitId>>,
    /// Users by username.
    users: BTreeMap<String, UserEntry>,
}

/// A change an administrator asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DirectoryCommand {
    /// 新增单位.
    CreateUnit {
        /// Its id.
        id: UnitId,
        /// Its Chinese name.
        name: String,
        /// Its kind (which fixes its level).
        kind: UnitKind,
        /// The unit above it.
        parent_id: UnitId,
    },
    /// 更名.
    RenameUnit {
        /// The unit.
        id: UnitId,
        /// The new name.
        name: String,
    },
    /// 调整上级.
    MoveUnit {
        /// The unit.
        id: UnitId,
        /// The new parent.
        parent_id: UnitId,
    },
    /// 撤销 (its open cases go to the successor).
    CloseUnit {
        /// The unit.
        id: UnitId,
        /// Where its open cases go; required when it has any.
        successor: Option<UnitId>,
    },
    /// 新增用户.
    CreateUser {
        /// The account.
        user: UserEntry,
    },
    /// 调整单位、角色或分管单位.
    ChangeUser {
        /// The account.
        username: String,
        /// Its unit.
        unit_id: UnitId,
        /// Its roles.
        roles: Vec<Role>,
        /// The units a leader oversees.
        oversees: Vec<UnitId>,
    },
    /// 停用.
    DisableUser {
        /// The account.
        username: String,
    },
    /// 启用.
    EnableUser {
        /// The account.
        username: String,
    },
    /// 重置密码 (the user must change it at the next sign-in).
    ResetPassword {
        /// The account.
        username: String,
    },
}

/// What happened, as recorded (who and when go in the event's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DirectoryEvent {
    /// A unit was created.
    UnitCreated {
        /// The unit.
        unit: Unit,
    },
    /// A unit was renamed; cases keep the name they recorded.
    UnitRenamed {
        /// The unit.
        id: UnitId,
        /// The new name.
        name: String,
    },
    /// A unit was moved under another parent.
    UnitMoved {
        /// The unit.
        id: UnitId,
        /// The new parent.
        parent_id: UnitId,
    },
    /// A unit was closed.
    UnitClosed {
        /// The unit.
        id: UnitId,
        /// Where its open cases go.
        successor: Option<UnitId>,
    },
    /// A user was created.
    UserCreated {
        /// The account.
        user: UserEntry,
    },
    /// A user's unit, roles or overseen units changed.
    UserChanged {
        /// The account.
        username: String,
        /// Its unit.
        unit_id: UnitId,
        /// Its roles.
        roles: Vec<Role>,
        /// The units a leader oversees.
        oversees: Vec<UnitId>,
    },
    /// A user was disabled.
    UserDisabled {
        /// The account.
        username: String,
    },
    /// A user was enabled again.
    UserEnabled {
        /// The account.
        username: String,
    },
    /// A user's password was reset.
    PasswordReset {
        /// The account.
        username: String,
    },
}

/// Why a directory change was refused; nothing happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Only administrators manage the directory.
    #[error("only `admin` manages the directory")]
    NotAdmin,
    /// A district administrator reached outside their district.
    #[error("`{0}` is outside the administrator's district")]
    OutsideDistrict(String),
    /// No such unit.
    #[error("no unit `{0}`")]
    UnknownUnit(UnitId),
    /// The unit is closed.
    #[error("unit `{0}` is closed")]
    UnitClosed(UnitId),
    /// The id is taken (by an open or a closed unit).
    #[error("unit id `{0}` is taken")]
    UnitExists(UnitId),
    /// An id or username is empty, too long or not of `a-z 0-9 . _ -`.
    #[error("`{field}` must be 1 to {MAX_ID} of a-z, 0-9, `.`, `_`, `-`")]
    BadId {
        /// The field.
        field: &'static str,
    },
    /// A name is empty, too long or holds a forbidden character.
    #[error("`{field}` must be 1 to {max} characters of one line")]
    BadName {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// A sibling already has the name.
    #[error("another unit under the same parent is named `{0}`")]
    NameTaken(String),
    /// The name is the unit's name already.
    #[error("the unit is already named so")]
    SameName,
    /// The kind cannot be created (the hotline centre is the root) or sits above its parent.
    #[error("a unit of this kind cannot sit under `{0}`")]
    KindNotAllowed(UnitId),
    /// The root cannot be moved or closed.
    #[error("the root unit cannot be moved or closed")]
    Root,
    /// A unit cannot be moved under itself or its own subtree.
    #[error("unit `{0}` cannot move under its own subtree")]
    IntoOwnSubtree(UnitId),
    /// The unit is under that parent already.
    #[error("the unit is under that parent already")]
    SameParent,
    /// Units below must be moved or closed first.
    #[error("unit `{0}` still has open units below it")]
    HasChildren(UnitId),
    /// Users of the unit must be moved or disabled first.
    #[error("unit `{0}` still has active users")]
    HasUsers(UnitId),
    /// Open cases need a successor.
    #[error("unit `{unit}` has {open_cases} open cases and no successor")]
    NeedsSuccessor {
        /// The unit.
        unit: UnitId,
        /// How many.
        open_cases: u64,
    },
    /// The successor must be another open unit outside the closed one.
    #[error("`{0}` cannot take over the open cases")]
    BadSuccessor(UnitId),
    /// No such user.
    #[error("no user `{0}`")]
    UnknownUser(String),
    /// The username is taken.
    #[error("username `{0}` is taken")]
    UserExists(String),
    /// A user needs at least one role, each once.
    #[error("roles must be one or more, each once")]
    BadRoles,
    /// Only leaders oversee units.
    #[error("only a leader oversees units")]
    OverseesWithoutLeader,
    /// The last administrator stays.
    #[error("the last active administrator cannot be disabled or lose the role")]
    LastAdmin,
    /// The account is disabled already / enabled already.
    #[error("the account is already in that state")]
    AlreadyInState,
    /// The tree would not be well formed (a defect: the rules above prevent it).
    #[error("the tree is not well formed: {0}")]
    Tree(OrgError),
}

impl DirectoryError {
    /// [`DirectoryError::message`] with the unit it names by its name in `directory`
    /// (「兰州市住房和城乡建设局」 rather than 「city.bureau.housing」), as people read it.
    pub fn message_in(&self, directory: &Directory) -> String {
        let unit = match self {
            Self::UnitClosed(id)
            | Self::KindNotAllowed(id)
            | Self::IntoOwnSubtree(id)
            | Self::HasChildren(id)
            | Self::HasUsers(id)
            | Self::BadSuccessor(id)
            | Self::NeedsSuccessor { unit: id, .. } => directory.unit(id),
            _ => None,
        };
        let message = self.message();
        match unit {
            Some(unit) => message.replacen(
                &format!("「{}」", unit.id),
                &format!("「{}」", unit.name),
                1,
            ),
            None => message,
        }
    }

    /// The Chinese text shown in place.
    pub fn message(&self) -> String {
        match self {
            Self::NotAdmin => "只有系统管理员可以管理机构与人员".into(),
            Self::OutsideDistrict(what) => format!("「{what}」不在您管理的区县内"),
            Self::UnknownUnit(id) => format!("找不到单位「{id}」"),
            Self::UnitClosed(id) => format!("单位「{id}」已撤销"),
            Self::UnitExists(id) => format!("单位编码「{id}」已被使用"),
            Self::BadId { field } => format!(
                "「{}」须为 1 至 {MAX_ID} 个小写字母、数字或 . _ -",
                field_label(field)
            ),
            Self::BadName { field, max } => {
                format!(
                    "「{}」须为 1 至 {max} 个字符，且不能换行",
                    field_label(field)
                )
            }
            Self::NameTaken(name) => format!("同一上级单位下已有名为「{name}」的单位"),
            Self::SameName => "新名称与原名称相同".into(),
            Self::KindNotAllowed(parent) => format!("这类单位不能设在「{parent}」之下"),
            Self::Root => "市热线中心是根单位，不能调整或撤销".into(),
            Self::IntoOwnSubtree(id) => format!("单位「{id}」不能调整到它自己或它的下级单位之下"),
            Self::SameParent => "该单位已在这个上级单位之下".into(),
            Self::HasChildren(id) => format!("单位「{id}」下还有未撤销的下级单位，请先调整或撤销"),
            Self::HasUsers(id) => format!("单位「{id}」还有在用的账号，请先调整或停用"),
            Self::NeedsSuccessor { unit, open_cases } => {
                format!("单位「{unit}」还有 {open_cases} 件未办结工单，撤销时须指定承接单位")
            }
            Self::BadSuccessor(id) => format!("「{id}」不能承接这些工单：须为其他未撤销的单位"),
            Self::UnknownUser(name) => format!("找不到用户「{name}」"),
            Self::UserExists(name) => format!("用户名「{name}」已被使用"),
            Self::BadRoles => "至少选择一个角色，且不能重复".into(),
            Self::OverseesWithoutLeader => "只有领导角色可以设置分管单位".into(),
            Self::LastAdmin => "这是最后一个在用的系统管理员，不能停用或取消其管理员角色".into(),
            Self::AlreadyInState => "账号已是这个状态".into(),
            Self::Tree(err) => format!("机构树不完整：{err}"),
        }
    }
}

fn field_label(field: &str) -> &str {
    match field {
        "id" => "单位编码",
        "username" => "用户名",
        "name" => "单位名称",
        "display_name" => "姓名",
        other => other,
    }
}

/// The rule for a unit id or username: 1 to [`MAX_ID`] of `a-z 0-9 . _ -`. [`decide`] applies
/// it; it is public for what must check an id without a command (the root unit an import
/// seeds an empty directory with).
///
/// # Errors
/// [`DirectoryError::BadId`] naming `field`.
pub fn check_id(id: &str, field: &'static str) -> Result<(), DirectoryError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::BadId { field })
    }
}

/// The rule for a name: 1 to `max` characters of one line, no forbidden character, no
/// surrounding blanks. Public for the same reason as [`check_id`].
///
/// # Errors
/// [`DirectoryError::BadName`] naming `field`.
pub fn check_name(name: &str, field: &'static str, max: usize) -> Result<(), DirectoryError> {
    let n = name.chars().count();
    if name.trim().is_empty()
        || n > max
        || name.trim() != name
        || text::check(name, Lines::One).is_err()
    {
        return Err(DirectoryError::BadName { field, max });
    }
    Ok(())
}

impl Directory {
    /// A directory of `units` (parents first, all open) and `users`, as a first start loads
    /// them from the fixtures.
    ///
    /// # Errors
    /// [`DirectoryError::Tree`] when the units are no tree.
    pub fn new(units: Vec<Unit>, users: Vec<UserEntry>) -> Result<Self, DirectoryError> {
        OrgTree::new(units.clone()).map_err(DirectoryError::Tree)?;
        Ok(Directory {
            units,
            closed: BTreeMap::new(),
            users: users.into_iter().map(|u| (u.username.clone(), u)).collect(),
        })
    }

    /// The tree of open units (closed ones left out), for everything that routes and scopes.
    ///
    /// # Errors
    /// [`DirectoryError::Tree`] (a defect: the rules keep the tree whole).
    pub fn tree(&self) -> Result<OrgTree, DirectoryError> {
        let open: Vec<Unit> = self
            .units
            .iter()
            .filter(|u| !self.closed.contains_key(&u.id))
            .cloned()
            .collect();
        OrgTree::new(open).map_err(DirectoryError::Tree)
    }

    /// Every unit ever created, parents first.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with `id`, open or closed.
    pub fn unit(&self, id: &UnitId) -> Option<&Unit> {
        self.units.iter().find(|u| &u.id == id)
    }

    /// Whether `id` is closed, and its successor.
    pub fn closed(&self, id: &UnitId) -> Option<&Option<UnitId>> {
        self.closed.get(id)
    }

    /// The user `username`.
    pub fn user(&self, username: &str) -> Option<&UserEntry> {
        self.users.get(username)
    }

    /// Every user, by username.
    pub fn users(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values()
    }

    fn open_unit(&self, id: &UnitId) -> Result<&Unit, DirectoryError> {
        let unit = self
            .unit(id)
            .ok_or_else(|| DirectoryError::UnknownUnit(id.clone()))?;
        if self.closed.contains_key(id) {
            return Err(DirectoryError::UnitClosed(id.clone()));
        }
        Ok(unit)
    }

    fn parent_of(&self, id: &UnitId) -> Option<&UnitId> {
        self.unit(id).and_then(|u| u.parent_id.as_ref())
    }

    /// Whether `id` is `ancestor` or lies below it.
    fn is_within(&self, id: &UnitId, ancestor: &UnitId) -> bool {
        let mut at = Some(id);
        // Bounded by the tree's height; a defect could not loop for ever.
        for _ in 0..=self.units.len() {
            match at {
                Some(u) if u == ancestor => return true,
                Some(u) => at = self.parent_of(u),
                None => return false,
            }
        }
        false
    }

    /// The district centre `id` lies in, if any.
    fn district_of(&self, id: &UnitId) -> Option<&UnitId> {
        let mut at = Some(id);
        for _ in 0..=self.units.len() {
            let unit = self.unit(at?)?;
            if unit.kind == UnitKind::DistrictCentre {
                return Some(&unit.id);
            }
            at = unit.parent_id.as_ref();
        }
        None
    }

    fn active_admins(&self) -> usize {
        self.users
            .values()
            .filter(|u| !u.disabled && u.roles.contains(&Role::Admin))
            .count()
    }

    /// The rows an administrator may change: every unit for a city administrator, the units
    /// within the district for a district administrator. Public so that a page lists only
    /// what its administrator manages.
    ///
    /// # Errors
    /// [`DirectoryError::NotAdmin`], [`DirectoryError::OutsideDistrict`].
    pub fn may_manage(&self, actor: &Actor, unit: &UnitId) -> Result<(), DirectoryError> {
        if !actor.has(Role::Admin) {
            return Err(DirectoryError::NotAdmin);
        }
        match self.district_of(&actor.unit_id) {
            None => Ok(()),
            Some(district) if self.is_within(unit, district) => Ok(()),
            Some(_) => Err(DirectoryError::OutsideDistrict(unit.to_string())),
        }
    }

    fn check_user_fields(
        &self,
        actor: &Actor,
        unit_id: &UnitId,
        roles: &[Role],
        oversees: &[UnitId],
    ) -> Result<(), DirectoryError> {
        self.open_unit(unit_id)?;
        self.may_manage(actor, unit_id)?;
        let repeated = roles
            .iter()
            .enumerate()
            .any(|(i, r)| roles[..i].contains(r));
        if roles.is_empty() || repeated {
            return Err(DirectoryError::BadRoles);
        }
        if !oversees.is_empty() && !roles.contains(&Role::Leader) {
            return Err(DirectoryError::OverseesWithoutLeader);
        }
        for unit in oversees {
            self.open_unit(unit)?;
            self.may_manage(actor, unit)?;
        }
        Ok(())
    }

    fn existing_user(&self, actor: &Actor, username: &str) -> Result<&UserEntry, DirectoryError> {
        let user = self
            .users
            .get(username)
            .ok_or_else(|| DirectoryError::UnknownUser(username.to_owned()))?;
        if !actor.has(Role::Admin) {
            return Err(DirectoryError::NotAdmin);
        }
        self.may_manage(actor, &user.unit_id)
            .map_err(|err| match err {
                DirectoryError::OutsideDistrict(_) => {
                    DirectoryError::OutsideDistrict(username.to_owned())
                }
                other => other,
            })?;
        Ok(user)
    }
}

/// Decides `command` by `actor` on `directory`; `open_cases(unit)` counts the cases a unit
/// holds open (for closing it).
///
/// # Errors
/// The [`DirectoryError`] of the first rule broken; scope (who may manage what) is checked
/// before the rules of the change.
pub fn decide(
    directory: &Directory,
    actor: &Actor,
    open_cases: &dyn Fn(&UnitId) -> u64,
    command: &DirectoryCommand,
) -> Result<Vec<DirectoryEvent>, DirectoryError> {
    if !actor.has(Role::Admin) {
        return Err(DirectoryError::NotAdmin);
    }
    let event = match command {
        DirectoryCommand::CreateUnit {
            id,
            name,
            kind,
            parent_id,
        } => {
            let parent = directory.open_unit(parent_id)?;
            directory.may_manage(actor, parent_id)?;
            check_id(id.as_str(), "id")?;
            check_name(name, "name", MAX_NAME)?;
            if directory.unit(id).is_some() {
                return Err(DirectoryError::UnitExists(id.clone()));
            }
            if *kind == UnitKind::HotlineCentre || kind.level() < parent.level {
                return Err(DirectoryError::KindNotAllowed(parent_id.clone()));
            }
            name_free(directory, parent_id, name, None)?;
            DirectoryEvent::UnitCreated {
                unit: Unit {
                    id: id.clone(),
                    name: name.clone(),
                    level: kind.level(),
                    kind: *kind,
                    parent_id: Some(parent_id.clone()),
                },
            }
        }
        DirectoryCommand::RenameUnit { id, name } => {
            let unit = directory.open_unit(id)?;
            directory.may_manage(actor, id)?;
            check_name(name, "name", MAX_NAME)?;
            if &unit.name == name {
                return Err(DirectoryError::SameName);
            }
            if let Some(parent) = &unit.parent_id {
                name_free(directory, parent, name, Some(id))?;
            }
            DirectoryEvent::UnitRenamed {
                id: id.clone(),
                name: name.clone(),
            }
        }
        DirectoryCommand::MoveUnit { id, parent_id } => {
            let unit = directory.open_unit(id)?;
            directory.may_manage(actor, id)?;
            let Some(old_parent) = &unit.parent_id else {
                return Err(DirectoryError::Root);
            };
            let parent = directory.open_unit(parent_id)?;
            directory.may_manage(actor, parent_id)?;
            if directory.is_within(parent_id, id) {
                return Err(DirectoryError::IntoOwnSubtree(id.clone()));
            }
            if old_parent == parent_id {
                return Err(DirectoryError::SameParent);
            }
            if unit.level < parent.level {
                return Err(DirectoryError::KindNotAllowed(parent_id.clone()));
            }
            name_free(directory, parent_id, &unit.name, Some(id))?;
            DirectoryEvent::UnitMoved {
                id: id.clone(),
                parent_id: parent_id.clone(),
            }
        }
        DirectoryCommand::CloseUnit { id, successor } => {
            let unit = directory.open_unit(id)?;
            directory.may_manage(actor, id)?;
            if unit.parent_id.is_none() {
                return Err(DirectoryError::Root);
            }
            let open_child = directory
                .units
                .iter()
                .any(|u| u.parent_id.as_ref() == Some(id) && !directory.closed.contains_key(&u.id));
            if open_child {
                return Err(DirectoryError::HasChildren(id.clone()));
            }
            if directory
                .users
                .values()
                .any(|u| !u.disabled && (&u.unit_id == id || u.oversees.contains(id)))
            {
                return Err(DirectoryError::HasUsers(id.clone()));
            }
            match successor {
                Some(to) => {
                    if to == id || directory.open_unit(to).is_err() {
                        return Err(DirectoryError::BadSuccessor(to.clone()));
                    }
                    directory.may_manage(actor, to)?;
                }
                None => {
                    let n = open_cases(id);
                    if n > 0 {
                        return Err(DirectoryError::NeedsSuccessor {
                            unit: id.clone(),
                            open_cases: n,
                        });
                    }
                }
            }
            DirectoryEvent::UnitClosed {
                id: id.clone(),
                successor: successor.clone(),
            }
        }
        DirectoryCommand::CreateUser { user } => {
            check_id(&user.username, "username")?;
            check_name(&user.display_name, "display_name", 30)?;
            directory.check_user_fields(actor, &user.unit_id, &user.roles, &user.oversees)?;
            if directory.users.contains_key(&user.username) {
                return Err(DirectoryError::UserExists(user.username.clone()));
            }
            DirectoryEvent::UserCreated {
                user: UserEntry {
                    disabled: false,
                    ..user.clone()
                },
            }
        }
        DirectoryCommand::ChangeUser {
            username,
            unit_id,
            roles,
            oversees,
        } => {
            let user = directory.existing_user(actor, username)?;
            directory.check_user_fields(actor, unit_id, roles, oversees)?;
            let loses_admin = user.roles.contains(&Role::Admin) && !roles.contains(&Role::Admin);
            if loses_admin && !user.disabled && directory.active_admins() <= 1 {
                return Err(DirectoryError::LastAdmin);
            }
            DirectoryEvent::UserChanged {
                username: username.clone(),
                unit_id: unit_id.clone(),
                roles: roles.clone(),
                oversees: oversees.clone(),
            }
        }
        DirectoryCommand::DisableUser { username } => {
            let user = directory.existing_user(actor, username)?;
            if user.disabled {
                return Err(DirectoryError::AlreadyInState);
            }
            if user.roles.contains(&Role::Admin) && directory.active_admins() <= 1 {
                return Err(DirectoryError::LastAdmin);
            }
            DirectoryEvent::UserDisabled {
                username: username.clone(),
            }
        }
        DirectoryCommand::EnableUser { username } => {
            let user = directory.existing_user(actor, username)?;
            if !user.disabled {
                return Err(DirectoryError::AlreadyInState);
            }
            directory.open_unit(&user.unit_id)?;
            DirectoryEvent::UserEnabled {
                username: username.clone(),
            }
        }
        DirectoryCommand::ResetPassword { username } => {
            directory.existing_user(actor, username)?;
            DirectoryEvent::PasswordReset {
                username: username.clone(),
            }
        }
    };
    Ok(vec![event])
}

fn name_free(
    directory: &Directory,
    parent: &UnitId,
    name: &str,
    except: Option<&UnitId>,
) -> Result<(), DirectoryError> {
    let taken = directory.units.iter().any(|u| {
        u.parent_id.as_ref() == Some(parent)
            && u.name == name
            && Some(&u.id) != except
            && !directory.closed.contains_key(&u.id)
    });
    if taken {
        Err(DirectoryError::NameTaken(name.to_owned()))
    } else {
        Ok(())
    }
}

/// Folds `event` into `directory`. Events come from [`decide`], so they fit; one that does
/// not (an unknown unit) changes nothing.
pub fn evolve(mut directory: Directory, event: &DirectoryEvent) -> Directory {
    match event {
        DirectoryEvent::UnitCreated { unit } => directory.units.push(unit.clone()),
        DirectoryEvent::UnitRenamed { id, name } => {
            if let Some(unit) = directory.units.iter_mut().find(|u| &u.id == id) {
                unit.name = name.clone();
            }
        }
        DirectoryEvent::UnitMoved { id, parent_id } => {
            if let Some(unit) = directory.units.iter_mut().find(|u| &u.id == id) {
                unit.parent_id = Some(parent_id.clone());
            }
            // Parents first again: the moved subtree goes after its new parent.
            directory.units = parents_first(std::mem::take(&mut directory.units));
        }
        DirectoryEvent::UnitClosed { id, successor } => {
            directory.closed.insert(id.clone(), successor.clone());
        }
        DirectoryEvent::UserCreated { user } => {
            directory.users.insert(user.username.clone(), user.clone());
        }
        DirectoryEvent::UserChanged {
            username,
            unit_id,
            roles,
            oversees,
        } => {
            if let Some(user) = directory.users.get_mut(username) {
                user.unit_id = unit_id.clone();
                user.roles = roles.clone();
                user.oversees = oversees.clone();
            }
        }
        DirectoryEvent::UserDisabled { username } => {
            if let Some(user) = directory.users.get_mut(username) {
                user.disabled = true;
            }
        }
        DirectoryEvent::UserEnabled { username } => {
            if let Some(user) = directory.users.get_mut(username) {
                user.disabled = false;
            }
        }
        DirectoryEvent::PasswordReset { .. } => {}
    }
    directory
}

/// `units` reordered so every parent comes before its children, keeping the order otherwise
/// (a depth-first walk from the root in the given order of siblings).
fn parents_first(units: Vec<Unit>) -> Vec<Unit> {
    let mut children: BTreeMap<Option<UnitId>, Vec<usize>> = BTreeMap::new();
    for (i, unit) in units.iter().enumerate() {
        children.entry(unit.parent_id.clone()).or_default().push(i);
    }
    let mut order = Vec::with_capacity(units.len());
    let mut stack: Vec<usize> = children.get(&None).cloned().unwrap_or_default();
    stack.reverse();
    while let Some(i) = stack.pop() {
        order.push(i);
        if let Some(kids) = children.get(&Some(units[i].id.clone())) {
            stack.extend(kids.iter().rev());
        }
    }
    let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_the_unit_by_its_name() {
        let directory = Directory::new(
            vec![Unit {
                id: UnitId::new("city"),
                name: "市热线中心".into(),
                level: UnitKind::HotlineCentre.level(),
                kind: UnitKind::HotlineCentre,
                parent_id: None,
            }],
            Vec::new(),
        )
        .expect("directory");
        let error = DirectoryError::HasUsers(UnitId::new("city"));
        assert_eq!(
            error.message_in(&directory),
            "单位「市热线中心」还有在用的账号，请先调整或停用"
        );
        // A unit it does not know keeps its id.
        let error = DirectoryError::HasUsers(UnitId::new("x"));
        assert_eq!(error.message_in(&directory), error.message());
    }
    use crate::org::Level;

    fn unit(id: &str, name: &str, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit {
            id: UnitId::new(id),
            name: name.into(),
            level: kind.level(),
            kind,
            parent_id: parent.map(UnitId::new),
        }
    }

    fn user(name: &str, unit: &str, roles: &[Role]) -> UserEntry {
        UserEntry {
            username: name.into(),
            display_name: format!("{name}的姓名"),
            unit_id: UnitId::new(unit),
            roles: roles.to_vec(),
            oversees: Vec::new(),
            disabled: false,
        }
    }

    fn city() -> Directory {
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
                unit("d.a.s2", "二街道", UnitKind::StreetOffice, Some("d.a")),
                unit(
                    "d.b",
                    "乙区热线分中心",
                    UnitKind::DistrictCentre,
                    Some("city"),
                ),
                unit("d.b.s1", "乙一街道", UnitKind::StreetOffice, Some("d.b")),
            ],
            vec![
                user("admin", "city", &[Role::Admin]),
                user("a_admin", "d.a", &[Role::Admin]),
                user("s1_handler", "d.a.s1", &[Role::Handler]),
            ],
        )
        .expect("directory")
    }

    fn admin(d: &Directory, name: &str) -> Actor {
        let u = d.user(name).expect("user");
        Actor {
            username: u.username.clone(),
            unit_id: u.unit_id.clone(),
            roles: u.roles.clone(),
            oversees: u.oversees.clone(),
        }
    }

    fn none(_: &UnitId) -> u64 {
        0
    }

    fn apply(
        d: Directory,
        by: &str,
        command: DirectoryCommand,
    ) -> Result<Directory, DirectoryError> {
        let actor = admin(&d, by);
        let events = decide(&d, &actor, &none, &command)?;
        Ok(events.iter().fold(d, evolve))
    }

    fn id(s: &str) -> UnitId {
        UnitId::new(s)
    }

    #[test]
    fn a_created_unit_joins_the_tree_under_its_parent() {
        let d = apply(
            city(),
            "admin",
            DirectoryCommand::CreateUnit {
                id: id("d.a.s3"),
                name: "三街道".into(),
                kind: UnitKind::StreetOffice,
                parent_id: id("d.a"),
            },
        )
        .expect("created");
        let tree = d.tree().expect("tree");
        assert!(tree.is_below(&id("d.a.s3"), &id("d.a")));
        assert_eq!(tree.get(&id("d.a.s3")).expect("unit").level, Level::Street);
    }

    #[test]
    fn a_unit_is_refused_with_a_taken_id_a_bad_name_a_sibling_name_or_a_kind_above_its_parent() {
        let create = |id_: &str, name: &str, kind, parent: &str| DirectoryCommand::CreateUnit {
            id: id(id_),
            name: name.into(),
            kind,
            parent_id: id(parent),
        };
        let refused = |c| apply(city(), "admin", c).expect_err("refused");
        assert_eq!(
            refused(create("d.a.s1", "新街道", UnitKind::StreetOffice, "d.a")),
            DirectoryError::UnitExists(id("d.a.s1"))
        );
        assert_eq!(
            refused(create("D.A.S9", "新街道", UnitKind::StreetOffice, "d.a")),
            DirectoryError::BadId { field: "id" }
        );
        assert_eq!(
            refused(create("d.a.s9", " ", UnitKind::StreetOffice, "d.a")),
            DirectoryError::BadName {
                field: "name",
                max: MAX_NAME
            }
        );
        assert_eq!(
            refused(create(
                "d.a.s9",
                "一\u{202e}街道",
                UnitKind::StreetOffice,
                "d.a"
            )),
            DirectoryError::BadName {
                field: "name",
                max: MAX_NAME
            }
        );
        assert_eq!(
            refused(create("d.a.s9", "一街道", UnitKind::StreetOffice, "d.a")),
            DirectoryError::NameTaken("一街道".into())
        );
        assert_eq!(
            refused(create("d.a.s1.x", "新局", UnitKind::Bureau, "d.a.s1")),
            DirectoryError::KindNotAllowed(id("d.a.s1"))
        );
        assert_eq!(
            refused(create("x", "第二中心", UnitKind::HotlineCentre, "city")),
            DirectoryError::KindNotAllowed(id("city"))
        );
        assert_eq!(
            refused(create("d.z.s1", "新街道", UnitKind::StreetOffice, "d.z")),
            DirectoryError::UnknownUnit(id("d.z"))
        );
    }

    #[test]
    fn a_renamed_unit_keeps_its_place_and_the_same_name_is_refused() {
        let d = apply(
            city(),
            "admin",
            DirectoryCommand::RenameUnit {
                id: id("d.a.s1"),
                name: "一街道办事处".into(),
            },
        )
        .expect("renamed");
        assert_eq!(d.unit(&id("d.a.s1")).expect("unit").name, "一街道办事处");
        let same = apply(
            d,
            "admin",
            DirectoryCommand::RenameUnit {
                id: id("d.a.s1"),
                name: "一街道办事处".into(),
            },
        );
        assert_eq!(same, Err(DirectoryError::SameName));
    }

    #[test]
    fn a_unit_cannot_move_under_itself_or_its_subtree_and_moves_elsewhere_with_its_children() {
        let mv = |unit: &str, parent: &str| DirectoryCommand::MoveUnit {
            id: id(unit),
            parent_id: id(parent),
        };
        for target in ["d.a.s1", "d.a.s1.c1"] {
            assert_eq!(
                apply(city(), "admin", mv("d.a.s1", target)),
                Err(DirectoryError::IntoOwnSubtree(id("d.a.s1")))
            );
        }
        assert_eq!(
            apply(city(), "admin", mv("d.a.s1", "d.a")),
            Err(DirectoryError::SameParent)
        );
        assert_eq!(
            apply(city(), "admin", mv("city", "d.a")),
            Err(DirectoryError::Root)
        );
        let d = apply(city(), "admin", mv("d.a.s1", "d.b")).expect("moved");
        let tree = d.tree().expect("a tree, parents first");
        assert!(tree.is_below(&id("d.a.s1.c1"), &id("d.b")));
        assert!(!tree.is_below(&id("d.a.s1"), &id("d.a")));
    }

    #[test]
    fn a_unit_with_open_cases_closes_only_with_a_successor() {
        let d = city();
        let actor = admin(&d, "admin");
        let close = |successor: Option<&str>| DirectoryCommand::CloseUnit {
            id: id("d.a.s2"),
            successor: successor.map(id),
        };
        let three = |u: &UnitId| if u.as_str() == "d.a.s2" { 3 } else { 0 };
        assert_eq!(
            decide(&d, &actor, &three, &close(None)),
            Err(DirectoryError::NeedsSuccessor {
                unit: id("d.a.s2"),
                open_cases: 3
            })
        );
        assert_eq!(
            decide(&d, &actor, &three, &close(Some("d.a.s2"))),
            Err(DirectoryError::BadSuccessor(id("d.a.s2")))
        );
        let events = decide(&d, &actor, &three, &close(Some("d.a.s1"))).expect("closed");
        let d = events.iter().fold(d, evolve);
        assert_eq!(d.closed(&id("d.a.s2")), Some(&Some(id("d.a.s1"))));
        assert!(d.tree().expect("tree").get(&id("d.a.s2")).is_none());
        // Closed: it takes no new children and no second close; its id stays taken.
        assert_eq!(
            decide(&d, &actor, &none, &close(None)),
            Err(DirectoryError::UnitClosed(id("d.a.s2")))
        );
        let reuse = DirectoryCommand::CreateUnit {
            id: id("d.a.s2"),
            name: "二街道".into(),
            kind: UnitKind::StreetOffice,
            parent_id: id("d.a"),
        };
        assert_eq!(
            decide(&d, &actor, &none, &reuse),
            Err(DirectoryError::UnitExists(id("d.a.s2")))
        );
    }

    #[test]
    fn a_unit_with_open_children_or_active_users_is_not_closed() {
        let close = |u: &str| DirectoryCommand::CloseUnit {
            id: id(u),
            successor: None,
        };
        assert_eq!(
            apply(city(), "admin", close("d.a.s1")),
            Err(DirectoryError::HasChildren(id("d.a.s1")))
        );
        let d = apply(city(), "admin", close("d.a.s1.c1")).expect("closed");
        assert_eq!(
            apply(d, "admin", close("d.a.s1")),
            Err(DirectoryError::HasUsers(id("d.a.s1")))
        );
    }

    #[test]
    fn the_last_administrator_cannot_be_disabled_or_lose_the_role() {
        let d = apply(
            city(),
            "admin",
            DirectoryCommand::DisableUser {
                username: "a_admin".into(),
            },
        )
        .expect("one of two admins disabled");
        assert_eq!(
            apply(
                d.clone(),
                "admin",
                DirectoryCommand::DisableUser {
                    username: "admin".into()
                }
            ),
            Err(DirectoryError::LastAdmin)
        );
        assert_eq!(
            apply(
                d.clone(),
                "admin",
                DirectoryCommand::ChangeUser {
                    username: "admin".into(),
                    unit_id: id("city"),
                    roles: vec![Role::Operator],
                    oversees: vec![],
                }
            ),
            Err(DirectoryError::LastAdmin)
        );
        let d = apply(
            d,
            "admin",
            DirectoryCommand::EnableUser {
                username: "a_admin".into(),
            },
        )
        .expect("enabled");
        assert!(!d.user("a_admin").expect("user").disabled);
    }

    #[test]
    fn a_district_administrator_manages_only_their_district() {
        let create = |parent: &str| DirectoryCommand::CreateUnit {
            id: id(&format!("{parent}.s9")),
            name: "九街道".into(),
            kind: UnitKind::StreetOffice,
            parent_id: id(parent),
        };
        assert!(apply(city(), "a_admin", create("d.a")).is_ok());
        assert_eq!(
            apply(city(), "a_admin", create("d.b")),
            Err(DirectoryError::OutsideDistrict("d.b".into()))
        );
        let d = apply(
            city(),
            "admin",
            DirectoryCommand::CreateUser {
                user: user("b_handler", "d.b.s1", &[Role::Handler]),
            },
        )
        .expect("created by the city admin");
        assert_eq!(
            apply(
                d,
                "a_admin",
                DirectoryCommand::ResetPassword {
                    username: "b_handler".into()
                }
            ),
            Err(DirectoryError::OutsideDistrict("b_handler".into()))
        );
        // A handler manages nothing.
        let d = city();
        let handler = admin(&d, "s1_handler");
        assert_eq!(
            decide(&d, &handler, &none, &create("d.a")),
            Err(DirectoryError::NotAdmin)
        );
    }

    #[test]
    fn users_need_a_free_name_an_open_unit_roles_once_and_oversee_only_as_leaders() {
        let create = |u: UserEntry| DirectoryCommand::CreateUser { user: u };
        let refused = |c| apply(city(), "admin", c).expect_err("refused");
        assert_eq!(
            refused(create(user("admin", "city", &[Role::Operator]))),
            DirectoryError::UserExists("admin".into())
        );
        assert_eq!(
            refused(create(user("new", "d.z", &[Role::Operator]))),
            DirectoryError::UnknownUnit(id("d.z"))
        );
        assert_eq!(
            refused(create(user("new", "city", &[]))),
            DirectoryError::BadRoles
        );
        assert_eq!(
            refused(create(user(
                "new",
                "city",
                &[Role::Operator, Role::Operator]
            ))),
            DirectoryError::BadRoles
        );
        let mut overseer = user("new", "city", &[Role::Operator]);
        overseer.oversees = vec![id("d.a")];
        assert_eq!(
            refused(create(overseer.clone())),
            DirectoryError::OverseesWithoutLeader
        );
        overseer.roles = vec![Role::Leader];
        let d = apply(city(), "admin", create(overseer)).expect("a leader");
        assert_eq!(d.user("new").expect("user").oversees, vec![id("d.a")]);
    }

    #[test]
    fn the_id_and_name_rules_stand_alone_as_decide_applies_them() {
        assert_eq!(check_id("d.a-1_x", "id"), Ok(()));
        assert_eq!(
            check_id("D.A", "id"),
            Err(DirectoryError::BadId { field: "id" })
        );
        assert!(check_id(&"a".repeat(MAX_ID + 1), "id").is_err());
        assert_eq!(check_name("一街道", "name", MAX_NAME), Ok(()));
        for bad in ["", " 一街道", "一\n街道"] {
            assert_eq!(
                check_name(bad, "name", MAX_NAME),
                Err(DirectoryError::BadName {
                    field: "name",
                    max: MAX_NAME
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_refusal_has_a_chinese_message() {
        let errors = [
            DirectoryError::NotAdmin,
            DirectoryError::IntoOwnSubtree(id("x")),
            DirectoryError::NeedsSuccessor {
                unit: id("x"),
                open_cases: 2,
            },
            DirectoryError::LastAdmin,
            DirectoryError::BadId { field: "username" },
        ];
        for err in errors {
            let m = err.message();
            assert!(
                m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{m}"
            );
        }
    }
}

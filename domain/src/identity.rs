//! The caller's identity: phone number validation, masking, and who may see it in full
//! (DESIGN.md rule 12).

use chrono::{DateTime, Utc};

use crate::Event;
use crate::case::{Case, evolve};
use crate::org::{OrgTree, UnitId};
use crate::roles::{Actor, Role};

/// A phone number the centre can call back: a mainland mobile (11 digits starting 13–19) or a
/// landline with area code (0 + 2–3 digits, optional dash, 7–8 digits).
pub fn is_valid_phone(phone: &str) -> bool {
    let b = phone.as_bytes();
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && all_digits(b) {
        return true;
    }
    if b.first() != Some(&b'0') {
        return false;
    }
    let (area, local) = match phone.split_once('-') {
        Some((area, local)) => (area.as_bytes(), local.as_bytes()),
        None => {
            // Without a dash, 3-digit area codes (010, 021…) and 4-digit ones (0931…) are
            // told apart by the total length only loosely; accept 10 to 12 digits.
            return (10..=12).contains(&b.len()) && all_digits(b);
        }
    };
    (3..=4).contains(&area.len())
        && all_digits(area)
        && (7..=8).contains(&local.len())
        && all_digits(local)
}

/// A phone number as the centre files it, so one caller is one number however it was written:
/// spaces, dashes, dots and brackets dropped, the country code (`+86`, `0086`) taken off, a
/// landline given back its leading 0 (`+86 931 8123456` → `09318123456`). `None` when what is
/// left is not a number [`is_valid_phone`] accepts.
pub fn normalize_phone(text: &str) -> Option<String> {
    let mut digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '（' | '）' | '\u{3000}'))
        .collect();
    for prefix in ["+86", "0086"] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            digits = if rest.starts_with('1') || rest.starts_with('0') {
                rest.to_owned()
            } else {
                format!("0{rest}")
            };
            break;
        }
    }
    is_valid_phone(&digits).then_some(digits)
}

/// 张三 → 张*, 欧阳娜娜 → 欧***; an empty name stays empty.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            let mut out = String::with_capacity(name.len());
            out.push(first);
            out.extend(std::iter::repeat_n('*', rest));
            out
        }
    }
}

/// 13812345678 → 138****5678; short numbers keep only their last two digits.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let keep = chars.len().min(2);
        let masked = "*".repeat(chars.len() - keep);
        let tail: String = chars[chars.len() - keep..].iter().collect();
        format!("{masked}{tail}")
    }
}

/// Whether `actor` may see who called, in full.
///
/// The accepting centre's operators, shift leaders and dispatchers always may (they call back);
/// admins may. For a confidential case no one else may. Otherwise handling staff may while
/// their unit holds the case, because they need to reach the citizen; once their part is over
/// they see it masked, as leaders and supervisors always do.
pub fn may_see_identity(actor: &Actor, case: &Case, org: &OrgTree) -> bool {
    if actor.has(Role::Admin) {
        return true;
    }
    let centre_staff = actor.has_any(&[Role::Operator, Role::ShiftLeader, Role::Dispatcher]);
    let at_accepting_centre = match case.accepting_unit_id() {
        Some(unit) => unit == &actor.unit_id,
        // A draft: only the centre that keeps it sees it.
        None => org.get(&actor.unit_id).is_some_and(|u| u.kind.is_centre()),
    };
    if centre_staff && at_accepting_centre {
        return true;
    }
    if case.intake().confidential {
        return false;
    }
    // Handling staff while their unit holds the case: a unit whose part is over (recalled,
    // completed, passed on) keeps the case it touched with the caller masked.
    actor.has_any(&[Role::Handler, Role::Dispatcher, Role::ShiftLeader])
        && case.holders().any(|a| a.unit_id == actor.unit_id)
}

/// Whether `actor` may see the case at all: the city centre's staff, admins and the city's
/// efficiency office see every case ([`Actor::sees_every_case`]); a leader sees the cases that
/// went to units they oversee: accepted by one of them, or given to or transferred by one of
/// them or a unit below (and nothing more for sitting at the city centre); everyone else
/// (a district's efficiency office included) sees the cases their unit (or a unit below it)
/// was given, transferred, or accepted.
pub fn may_view_case(actor: &Actor, case: &Case, org: &OrgTree) -> bool {
    if actor.sees_every_case(org) {
        return true;
    }
    let leader = actor.has(Role::Leader);
    let only_oversight = actor.leads_only();
    if !only_oversight
        && (case.created_by() == actor.username || case.accepting_unit_id() == Some(&actor.unit_id))
    {
        return true;
    }
    // Accepted by a unit the leader oversees (that centre itself, not one below it).
    if leader
        && case
            .accepting_unit_id()
            .is_some_and(|unit| actor.oversees.contains(unit))
    {
        return true;
    }
    let touches = |unit: &UnitId| {
        (!only_oversight && org.is_within(unit, &actor.unit_id))
            || (leader && actor.oversees_unit(org, unit))
    };
    case.assignments().iter().any(|a| touches(&a.unit_id))
        || case.transfers().iter().any(|t| touches(&t.from_unit_id))
}

/// How much of a case's history a viewer may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// All of it, as it stands now.
    Whole,
    /// The case as it was when the viewer's unit's part ended (its last assignment completed,
    /// recalled or cancelled): what it needs for "cases I touched", not what later holders
    /// wrote.
    Until(DateTime<Utc>),
}

/// Whether `actor` reads every case it may see whole, as one who oversees: the city's scope,
/// leaders, the efficiency office and admins (the rest of [`view_extent`] is about the case).
pub fn reads_whole_cases(actor: &Actor, org: &OrgTree) -> bool {
    actor.sees_every_case(org) || actor.has_any(&[Role::Leader, Role::Supervisor, Role::Admin])
}

/// How much of `case` `actor` may read, once [`may_view_case`] allows it at all. Those who
/// oversee (the city's scope, leaders, the efficiency office), the accepting centre and the
/// creator read the whole case; a handling unit reads the whole case while it or a unit below
/// it still has an open part of it, and afterwards the case up to the end of its part.
pub fn view_extent(actor: &Actor, case: &Case, org: &OrgTree) -> Extent {
    let whole = reads_whole_cases(actor, org)
        || case.created_by() == actor.username
        || case.accepting_unit_id() == Some(&actor.unit_id);
    if whole {
        return Extent::Whole;
    }
    let mine: Vec<_> = case
        .assignments()
        .iter()
        .filter(|a| org.is_within(&a.unit_id, &actor.unit_id))
        .collect();
    if mine.is_empty() || mine.iter().any(|a| a.is_open()) {
        // Seen only through a transfer from its subtree (which needs an assignment there
        // first), or still at work: the whole case.
        return Extent::Whole;
    }
    let end = mine
        .iter()
        .map(|a| a.ended_at.or(a.completed_at).unwrap_or(a.transferred_at))
        .max()
        .unwrap_or_else(|| unreachable!("`mine` is not empty"));
    Extent::Until(end)
}

/// How many of a case's events, oldest first, a viewer whose part is over
/// ([`Extent::Until`]) may read: up to and including the event that last ended their unit's
/// part (the recall, the completion, the cancellation), whatever came at the same instant.
pub fn visible_prefix<'a>(
    actor: &Actor,
    events: impl IntoIterator<Item = &'a Event>,
    org: &OrgTree,
) -> usize {
    let mut case = Case::default();
    let mut open_before = false;
    let mut cut = None;
    let mut seen = 0;
    for (i, event) in events.into_iter().enumerate() {
        seen = i + 1;
        case = evolve(case, event);
        let open_now = case
            .assignments()
            .iter()
            .any(|a| a.is_open() && org.is_within(&a.unit_id, &actor.unit_id));
        if open_before && !open_now {
            cut = Some(i + 1);
        }
        open_before = open_now;
    }
    cut.unwrap_or(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_and_landline_numbers_are_accepted() {
        for ok in [
            "13812345678",
            "19900000000",
            "0931-8123456",
            "010-12345678",
            "09318123456",
        ] {
            assert!(is_valid_phone(ok), "{ok}");
        }
    }

    #[test]
    fn malformed_phone_numbers_are_refused() {
        for bad in [
            "",
            "12812345678",
            "1381234567",
            "138123456789",
            "abc",
            "931-8123456",
            "0931-81234",
            "0931-8123456x",
        ] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn one_number_however_it_is_written() {
        for written in [
            "13812345678",
            "+86 138 1234 5678",
            "138-1234-5678",
            "0086 13812345678",
        ] {
            assert_eq!(
                normalize_phone(written).as_deref(),
                Some("13812345678"),
                "{written}"
            );
        }
        for written in [
            "0931-8123456",
            "0931 812 3456",
            "(0931)8123456",
            "+86 931 8123456",
        ] {
            assert_eq!(
                normalize_phone(written).as_deref(),
                Some("09318123456"),
                "{written}"
            );
        }
        for bad in ["", "12812345678", "0931-81234", "abc", "+86"] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_and_numbers_are_masked() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("李"), "李*");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("0931-8123456"), "093****3456");
        assert_eq!(mask_phone("12345"), "***45");
    }
}

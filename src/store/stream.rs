//! Stream names: which aggregate a stream holds, in one place instead of `"case-"` prefixes
//! written by hand.
//!
//! | stream | holds |
//! |---|---|
//! | `case-{工单编号}` | a case ([`domain::Case`]) |
//! | `kb-{id}` | a knowledge-base article ([`knowledge_base::article`]) |
//! | `identity-views-{工单编号}` | who saw a case's caller in full |
//! | `directory` | the units and staff ([`domain::directory`]), one stream for the city |
//! | `rules` | the calendar, office hours and deadline policy ([`domain::rules`]), one stream |
//! | `idempotency-{id}` | which stream an idempotency key of an intake claimed (`app::pipeline`) |
//! | `accounts` | passwords set and sessions opened and ended, written only on a store several instances share (`app::accounts`) |

use std::fmt;

use domain::CaseId;

/// The prefix of case streams.
pub const CASE_PREFIX: &str = domain::case::STREAM_PREFIX;
/// The prefix of article streams.
pub const ARTICLE_PREFIX: &str = knowledge_base::article::STREAM_PREFIX;
/// The prefix of identity-view streams.
pub const IDENTITY_VIEWS_PREFIX: &str = "identity-views-";
/// The one stream of the directory (机构与人员).
pub const DIRECTORY: &str = "directory";
/// The one stream of the rules (规则).
pub const RULES: &str = "rules";
/// The one stream of what instances sharing a store tell each other of accounts.
pub const ACCOUNTS: &str = "accounts";
/// The prefix of the streams that record what an idempotency key claimed.
pub const KEY_PREFIX: &str = "idempotency-";
/// Prefix of a day's case-number counter (`numbers-YYYYMMDD`), on a store several instances
/// share.
pub const NUMBERS_PREFIX: &str = "numbers-";

/// What a stream holds, told by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamName {
    /// A case's history.
    Case(CaseId),
    /// A knowledge-base article's history.
    Article(String),
    /// The recorded full views of a case's caller.
    IdentityViews(CaseId),
    /// The units and staff.
    Directory,
    /// The calendar, office hours and deadline policy.
    Rules,
    /// Passwords and sessions, shared between instances.
    Accounts,
    /// The streams an idempotency key of a command that starts its stream claimed, newest
    /// last (named by an id derived from the user, the key and the verb).
    Key(String),
}

impl StreamName {
    /// The stream of `name`, if it is one of ours with a well-formed id.
    pub fn parse(name: &str) -> Option<Self> {
        if name == DIRECTORY {
            return Some(StreamName::Directory);
        }
        if name == RULES {
            return Some(StreamName::Rules);
        }
        if name == ACCOUNTS {
            return Some(StreamName::Accounts);
        }
        if let Some(id) = name.strip_prefix(KEY_PREFIX) {
            return (!id.is_empty()).then(|| StreamName::Key(id.to_owned()));
        }
        if let Some(id) = name.strip_prefix(IDENTITY_VIEWS_PREFIX) {
            return CaseId::parse(id).ok().map(StreamName::IdentityViews);
        }
        if let Some(id) = name.strip_prefix(CASE_PREFIX) {
            return CaseId::parse(id).ok().map(StreamName::Case);
        }
        name.strip_prefix(ARTICLE_PREFIX)
            .filter(|id| !id.is_empty())
            .map(|id| StreamName::Article(id.to_owned()))
    }

    /// Whether `name` is a case stream (by its prefix alone: the projections follow every
    /// stream so named, whatever its id).
    pub fn is_case(name: &str) -> bool {
        name.starts_with(CASE_PREFIX)
    }

    /// The case of a case stream.
    pub fn case_id(name: &str) -> Option<CaseId> {
        match Self::parse(name) {
            Some(StreamName::Case(id)) => Some(id),
            _ => None,
        }
    }

    /// The prefix of the case streams numbered on `day` (`YYYYMMDD`).
    pub fn cases_of_day(day: &str) -> String {
        format!("{CASE_PREFIX}{day}")
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamName::Case(id) => write!(f, "{CASE_PREFIX}{id}"),
            StreamName::Article(id) => write!(f, "{ARTICLE_PREFIX}{id}"),
            StreamName::IdentityViews(id) => write!(f, "{IDENTITY_VIEWS_PREFIX}{id}"),
            StreamName::Directory => f.write_str(DIRECTORY),
            StreamName::Rules => f.write_str(RULES),
            StreamName::Accounts => f.write_str(ACCOUNTS),
            StreamName::Key(id) => write!(f, "{KEY_PREFIX}{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_name_reads_back_as_itself() {
        let id = CaseId::parse("2025031100456").expect("id");
        for name in [
            StreamName::Case(id.clone()),
            StreamName::Article("water-outage".into()),
            StreamName::IdentityViews(id.clone()),
            StreamName::Directory,
            StreamName::Rules,
            StreamName::Accounts,
            StreamName::Key("0f3a".into()),
        ] {
            assert_eq!(StreamName::parse(&name.to_string()), Some(name));
        }
        assert_eq!(StreamName::Case(id.clone()).to_string(), id.stream());
        assert_eq!(StreamName::case_id("case-2025031100456"), Some(id));
        // An identity-view stream is no case, and names that are no id are nothing.
        assert_eq!(StreamName::case_id("identity-views-2025031100456"), None);
        assert_eq!(StreamName::parse("case-"), None);
        assert_eq!(StreamName::parse("kb-"), None);
        assert_eq!(StreamName::parse("other-1"), None);
        assert!(StreamName::is_case("case-test-1"));
        assert!(!StreamName::is_case("kb-1"));
    }
}

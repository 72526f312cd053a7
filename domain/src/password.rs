//! The password policy (密码规则): what a new password must be, and which passwords must be
//! changed at the next sign-in.
//!
//! Pure: the caller passes the candidate, the username and the current password. The rules
//! follow what hotline centres are told in training and the usual guidance for staff
//! accounts: long enough to resist guessing when lock-out slows an attacker down, made of more
//! than one kind of character, not the shared initial password (`666666` and its kin), not
//! the username, not the password it replaces. The upper bound keeps the hashing cost bounded
//! whatever a client sends.

/// The shortest password accepted.
pub const MIN_CHARS: usize = 8;
/// The longest password accepted (characters). Hashing reads every byte once; the bound
/// keeps a client from sending megabytes to hash.
pub const MAX_CHARS: usize = 64;

/// Passwords a centre hands out or staff pick first: refused as new passwords, and a
/// sign-in with one of them must change it.
const INITIAL_PASSWORDS: &[&str] = &[
    "666666",
    "888888",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "000000",
    "111111",
    "password",
    "password1",
    "qwerty123",
    "abc12345",
    "12345abc",
    "a1234567",
    "admin123",
];

/// Why a new password is refused, each with the Chinese text shown in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    /// Shorter than [`MIN_CHARS`].
    TooShort,
    /// Longer than [`MAX_CHARS`].
    TooLong,
    /// Only one kind of character (all digits, all letters …).
    OneKind,
    /// A well-known initial or common password.
    Common,
    /// The username, or the username inside it.
    ContainsUsername,
    /// The same as the current password.
    Unchanged,
    /// A control character or a character outside what a keyboard types.
    BadCharacter,
    /// The confirmation does not match.
    Mismatch,
}

impl PasswordRefusal {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            PasswordRefusal::TooShort => "password_too_short",
            PasswordRefusal::TooLong => "password_too_long",
            PasswordRefusal::OneKind => "password_one_kind",
            PasswordRefusal::Common => "password_common",
            PasswordRefusal::ContainsUsername => "password_contains_username",
            PasswordRefusal::Unchanged => "password_unchanged",
            PasswordRefusal::BadCharacter => "password_bad_character",
            PasswordRefusal::Mismatch => "password_mismatch",
        }
    }

    /// What the user reads.
    pub fn message(self) -> &'static str {
        match self {
            PasswordRefusal::TooShort => "新密码至少 8 位",
            PasswordRefusal::TooLong => "新密码不能超过 64 位",
            PasswordRefusal::OneKind => "新密码须包含字母、数字、符号中的至少两类",
            PasswordRefusal::Common => "新密码过于常见（如初始密码 666666），请换一个",
            PasswordRefusal::ContainsUsername => "新密码不能包含用户名",
            PasswordRefusal::Unchanged => "新密码不能与当前密码相同",
            PasswordRefusal::BadCharacter => {
                "新密码含有不允许的字符（仅限键盘可输入的字母、数字和符号）"
            }
            PasswordRefusal::Mismatch => "两次输入的新密码不一致",
        }
    }
}

/// Whether `candidate` may become the password of `username`, replacing `current`.
///
/// # Errors
/// The first rule it breaks, in the order of [`PasswordRefusal`].
pub fn check_new(candidate: &str, username: &str, current: &str) -> Result<(), PasswordRefusal> {
    let chars = candidate.chars().count();
    if chars > MAX_CHARS {
        return Err(PasswordRefusal::TooLong);
    }
    if candidate.chars().any(|c| !(' '..='~').contains(&c)) {
        return Err(PasswordRefusal::BadCharacter);
    }
    if chars < MIN_CHARS {
        return Err(PasswordRefusal::TooShort);
    }
    let kinds = [
        candidate.chars().any(|c| c.is_ascii_alphabetic()),
        candidate.chars().any(|c| c.is_ascii_digit()),
        candidate
            .chars()
            .any(|c| !c.is_ascii_alphanumeric() && c != ' '),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err(PasswordRefusal::OneKind);
    }
    if is_common(candidate) {
        return Err(PasswordRefusal::Common);
    }
    let lower = candidate.to_ascii_lowercase();
    if username.len() >= 3 && lower.contains(&username.to_ascii_lowercase()) {
        return Err(PasswordRefusal::ContainsUsername);
    }
    if candidate == current {
        return Err(PasswordRefusal::Unchanged);
    }
    Ok(())
}

/// Whether a sign-in with `password` must change it before doing anything else: it breaks
/// the policy (the shared initial 666666 does), so it was handed out, not chosen.
pub fn must_change(password: &str, username: &str) -> bool {
    // `current` is nothing the password could equal: only the policy itself is asked.
    check_new(password, username, "\u{0}").is_err()
}

fn is_common(candidate: &str) -> bool {
    let lower = candidate.to_ascii_lowercase();
    if INITIAL_PASSWORDS.contains(&lower.as_str()) {
        return true;
    }
    // One character repeated, or a run up or down the keyboard's digits or letters.
    let bytes = lower.as_bytes();
    let repeated = bytes.iter().all(|b| *b == bytes[0]);
    let run = |step: i16| {
        bytes
            .windows(2)
            .all(|w| i16::from(w[1]) - i16::from(w[0]) == step)
    };
    repeated || run(1) || run(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_mixed_password_is_accepted() {
        assert_eq!(check_new("Hotline-2026", "zhangsan", "old"), Ok(()));
        assert_eq!(check_new("abcd1234x", "zhangsan", "old"), Ok(()));
    }

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        assert_eq!(check_new("ab12", "u1", ""), Err(PasswordRefusal::TooShort));
        assert_eq!(
            check_new(&"a1".repeat(33), "u1", ""),
            Err(PasswordRefusal::TooLong)
        );
        assert_eq!(
            check_new("abcdefghij", "u1", ""),
            Err(PasswordRefusal::OneKind)
        );
        assert_eq!(
            check_new("1357924680", "u1", ""),
            Err(PasswordRefusal::OneKind)
        );
        assert_eq!(
            check_new("password1", "u1", ""),
            Err(PasswordRefusal::Common)
        );
        assert_eq!(
            check_new("Operator2026", "operator", ""),
            Err(PasswordRefusal::ContainsUsername)
        );
        assert_eq!(
            check_new("Hotline-2026", "u1", "Hotline-2026"),
            Err(PasswordRefusal::Unchanged)
        );
        assert_eq!(
            check_new("热线密码abc123", "u1", ""),
            Err(PasswordRefusal::BadCharacter)
        );
        assert_eq!(
            check_new("abc\t12345", "u1", ""),
            Err(PasswordRefusal::BadCharacter)
        );
    }

    #[test]
    fn the_shared_initial_password_must_be_changed_and_a_chosen_one_need_not() {
        assert!(must_change("666666", "operator"));
        assert!(!must_change("e2e-secret-12345", "operator"));
        assert!(must_change("abcdefgh", "operator"));
    }

    #[test]
    fn runs_and_repeats_are_common() {
        assert!(is_common("aaaaaaaa"));
        assert!(is_common("abcdefgh"));
        assert!(is_common("87654321"));
        assert!(!is_common("a1b2c3d4"));
    }

    #[test]
    fn every_refusal_has_a_code_and_a_chinese_message() {
        for r in [
            PasswordRefusal::TooShort,
            PasswordRefusal::TooLong,
            PasswordRefusal::OneKind,
            PasswordRefusal::Common,
            PasswordRefusal::ContainsUsername,
            PasswordRefusal::Unchanged,
            PasswordRefusal::BadCharacter,
            PasswordRefusal::Mismatch,
        ] {
            assert!(r.code().starts_with("password_"));
            assert!(r.message().contains("密码"));
        }
    }
}

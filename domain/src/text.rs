//! Input hygiene for free text: the characters no field may hold.
//!
//! Control characters (NUL, ESC, the rest of C0 and C1, DEL) can break terminals, logs, CSV
//! exports and downstream systems; bidirectional overrides and isolates (U+202A–U+202E,
//! U+2066–U+2069) make a text read differently from what it holds (a caller's address or a
//! reply shown reversed). Every text field refuses them; fields of several lines (content,
//! replies, notes, opinions, article bodies) allow line feed, carriage return and tab.

/// Whether a field is one line or may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// A name, a title, an address, a username: no line breaks, no tabs.
    One,
    /// Content, replies, notes, opinions: `\n`, `\r` and `\t` allowed.
    Many,
}

/// The first character of a text that no field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForbiddenChar {
    /// The character.
    pub ch: char,
    /// Its position, in characters from 0.
    pub at: usize,
}

impl ForbiddenChar {
    /// The character as `U+XXXX`, for messages.
    pub fn code_point(&self) -> String {
        format!("U+{:04X}", u32::from(self.ch))
    }
}

/// Whether `ch` may appear in a field of `lines`.
pub fn allowed(ch: char, lines: Lines) -> bool {
    match ch {
        '\n' | '\r' | '\t' => lines == Lines::Many,
        // C0, DEL and C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => false,
        // Bidirectional embeddings, overrides and isolates.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => false,
        _ => true,
    }
}

/// Checks a text for [`allowed`] characters.
///
/// # Errors
/// The first [`ForbiddenChar`].
pub fn check(text: &str, lines: Lines) -> Result<(), ForbiddenChar> {
    match text
        .chars()
        .enumerate()
        .find(|&(_, ch)| !allowed(ch, lines))
    {
        Some((at, ch)) => Err(ForbiddenChar { ch, at }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_punctuation_and_emoji_pass() {
        assert_eq!(
            check("城关区张掖路 12 号，噪音扰民！😀", Lines::One),
            Ok(())
        );
        assert_eq!(check("第一行\n第二行\r\n\t缩进", Lines::Many), Ok(()));
        // Zero-width joiners and the implicit marks (U+200E, U+200F) are harmless.
        assert_eq!(check("👨\u{200d}👩 \u{200e}", Lines::One), Ok(()));
    }

    #[test]
    fn line_breaks_and_tabs_are_refused_in_one_line_fields() {
        assert_eq!(
            check("张三\n李四", Lines::One),
            Err(ForbiddenChar { ch: '\n', at: 2 })
        );
        assert!(check("a\tb", Lines::One).is_err());
        assert!(check("a\rb", Lines::One).is_err());
    }

    #[test]
    fn controls_and_bidi_overrides_are_refused_everywhere() {
        for ch in [
            '\u{0}', '\u{7}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9b}', '\u{202a}',
            '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            let text = format!("正常{ch}文字");
            for lines in [Lines::One, Lines::Many] {
                assert_eq!(
                    check(&text, lines),
                    Err(ForbiddenChar { ch, at: 2 }),
                    "{ch:?} in {lines:?}"
                );
            }
        }
        assert_eq!(
            ForbiddenChar {
                ch: '\u{202e}',
                at: 0
            }
            .code_point(),
            "U+202E"
        );
        assert_eq!(ForbiddenChar { ch: '\u{0}', at: 0 }.code_point(), "U+0000");
    }
}

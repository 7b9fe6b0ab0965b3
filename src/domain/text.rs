//! Rules for the names people read: a guest's (shown on the floor, greeted in mail) and a
//! restaurant's (the sender's name on every mail).

/// Whether `s` shows nothing: only whitespace and invisible format characters (a zero-width
/// space, joiner or no-break, a byte-order mark, a soft hyphen, a word joiner).
pub fn blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || invisible(c))
}

/// Whether `c` breaks or reverses the text around it: a control character, a line or
/// paragraph separator, or a bidirectional override (which makes a name, and the mail text
/// after it, read backwards). Embeddings and isolates stay: right-to-left names use them.
pub fn control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202D}' | '\u{202E}')
}

fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    ) || control(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_width_characters_alone_are_blank_and_separators_and_overrides_are_control() {
        for s in [
            "",
            " ",
            "\u{200B}",
            " \u{200B}\u{FEFF}\u{2060} ",
            "\u{00AD}",
            "\u{3000}",
        ] {
            assert!(blank(s), "{s:?}");
        }
        for s in ["Ada", "\u{200B}A", "Zoë", "محمد", "李"] {
            assert!(!blank(s), "{s:?}");
        }
        for c in [
            '\0', '\n', '\u{7F}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202D}', '\u{202E}',
        ] {
            assert!(control(c), "{c:?}");
        }
        for c in [
            'A', ' ', 'ë', '\u{200B}', '\u{200C}', '\u{200D}', '\u{202B}', '\u{2067}',
        ] {
            assert!(!control(c), "{c:?}");
        }
    }
}

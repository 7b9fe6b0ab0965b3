//! Rules for the names people read: a guest's (shown on the floor, greeted in mail) and a
//! restaurant's (the sender's name on every mail).

/// What is wrong with `name` as a name people read (a guest's, a restaurant's), as the message
/// of its field's error: blank or over 200 bytes, or holding a control character.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if blank(name) || name.len() > 200 {
        Some("must be 1 to 200 bytes")
    } else if name.chars().any(control) {
        Some("must not hold control characters")
    } else {
        None
    }
}

/// Whether `s` shows nothing: only whitespace and invisible characters (a zero-width space,
/// joiner or no-break, a byte-order mark, a soft hyphen, a word joiner, direction marks,
/// embeddings and isolates, variation selectors, tag characters, and the fillers that render
/// as blanks: Hangul's, the blank Braille pattern).
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
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
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
            "\u{3164}\u{FFA0}\u{115F}",
            "\u{2800}",
            "\u{202B}\u{2067}\u{FE0F}\u{E0041}",
        ] {
            assert!(blank(s), "{s:?}");
        }
        for s in [
            "Ada",
            "\u{200B}A",
            "Zoë",
            "محمد",
            "\u{202B}محمد\u{202C}",
            "李",
        ] {
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

//! Normalisation of an incoming SMS before the grammar reads it (SPEC §4).
//!
//! Handsets in China switch between half- and full-width input, insert spaces, and people copy
//! `KT#EDU10` from posters, so the grammar reads a canonical form:
//!
//! * only the first [`MAX_CHARS`] characters are looked at (a real command is far shorter);
//! * full-width ASCII (U+FF01–U+FF5E) becomes ASCII, so `ｋｔｅｄｕ１０` reads `KTEDU10` and the
//!   full-width comma `，` reads `,`; the enumeration comma `、` also reads `,`;
//! * ASCII letters are upper-cased (other scripts are left alone: `余额` stays `余额`);
//! * separators — any Unicode white space (including the ideographic space U+3000), `#`, and the
//!   invisible zero-width characters some input methods leave behind — are removed, EXCEPT that
//!   a run of separators between two digits becomes one space. That keeps `TD1 3` (items 1 and
//!   3) apart from `TD13` (item 13); the parsers for codes and PINs, where digit groups belong
//!   together (`KT EDU1 0`, a PIN typed in groups of six), drop that space themselves.
//!
//! The result is idempotent: normalising a normalised text changes nothing.

/// How many characters of a message are examined. One SMS holds 160 GSM characters; a command
/// is a few dozen at most, so anything longer is not a command (see `grammar::parse`).
pub const MAX_CHARS: usize = 160;

/// The canonical form of `text` (see the module doc). Total: never panics, whatever the input.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    let mut after_separator = false;
    for c in text.chars().take(MAX_CHARS).map(fold) {
        if is_separator(c) {
            after_separator = true;
            continue;
        }
        // Only digit-separator-digit survives, as a single space: it may split list items.
        if after_separator && c.is_ascii_digit() && out.ends_with(|p: char| p.is_ascii_digit()) {
            out.push(' ');
        }
        after_separator = false;
        out.push(c);
    }
    out
}

/// One character to its canonical form: full-width to ASCII, `、` to `,`, ASCII upper case.
fn fold(c: char) -> char {
    let c = match c {
        // The full-width block mirrors printable ASCII at a fixed offset.
        '\u{FF01}'..='\u{FF5E}' => u8::try_from(u32::from(c) - 0xFEE0)
            .map(char::from)
            .unwrap_or(c),
        '\u{3000}' => ' ',
        '、' => ',',
        _ => c,
    };
    c.to_ascii_uppercase()
}

/// Characters that only separate: white space, `#`, and zero-width marks.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c == '#'
        // Zero-width space/non-joiner/joiner, word joiner, byte-order mark.
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_case_and_separators() {
        let cases = [
            ("ｋｔｅｄｕ１０", "KTEDU10"),
            ("kt edu10", "KTEDU10"),
            ("KT#EDU10", "KTEDU10"),
            ("KT EDU 10", "KTEDU10"),
            ("  cxye \t\r\n", "CXYE"),
            ("ＣＸＹＥ", "CXYE"),
            ("\u{3000}余额\u{3000}", "余额"),
            ("KTEDU10#", "KTEDU10"),
            ("TD1，3", "TD1,3"),
            ("TD1、3", "TD1,3"),
            ("TD 1, 3", "TD1,3"),
            ("TD1 3", "TD1 3"),
            ("TD1 \u{3000}# 3", "TD1 3"),
            ("？", "?"),
            ("\u{200B}Y\u{FEFF}", "Y"),
            ("", ""),
            ("   ", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalise(input), want, "{input:?}");
        }
    }

    #[test]
    fn looks_at_the_first_max_chars_only() {
        let long = "A".repeat(10_000);
        assert_eq!(normalise(&long).chars().count(), MAX_CHARS);
        let wide = "余".repeat(10_000);
        assert_eq!(normalise(&wide).chars().count(), MAX_CHARS);
    }

    #[test]
    fn leaves_other_characters_alone() {
        // No case mapping outside ASCII: `ß` would otherwise grow into `SS`.
        assert_eq!(normalise("ßé\u{0}😀"), "ßé\u{0}😀");
    }
}

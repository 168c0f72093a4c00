//! The GSM 03.38 (3GPP TS 23.038) 7-bit default alphabet and its extension table, in the
//! *unpacked* form SMPP uses: one septet per octet, an extension character written as the
//! escape 0x1B followed by its code. The SMSC packs septets for the air interface; we never do.

/// The escape septet that selects the extension table for the next septet.
pub const ESC: u8 = 0x1B;

/// The basic table, indexed by septet. Entry 0x1B is the escape: a placeholder that is never
/// decoded or encoded as a character.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table: (code after the escape, character).
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// How a character is written in the default alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// One septet from the basic table.
    Basic(u8),
    /// The escape followed by this code from the extension table (two septets).
    Extended(u8),
}

impl Septets {
    /// How many septets the character takes (what counts against the 160/153 limits).
    pub fn count(self) -> usize {
        match self {
            Septets::Basic(_) => 1,
            Septets::Extended(_) => 2,
        }
    }

    /// Appends the unpacked septets to `out`.
    pub fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Septets::Basic(c) => out.push(c),
            Septets::Extended(c) => {
                out.push(ESC);
                out.push(c);
            }
        }
    }
}

/// The septets for `c`, or `None` if the default alphabet cannot write it.
pub fn encode_char(c: char) -> Option<Septets> {
    if let Some((code, _)) = EXTENSION.iter().find(|(_, e)| *e == c) {
        return Some(Septets::Extended(*code));
    }
    // Index 0x1B is the escape, never a character of its own (its table entry is a stand-in).
    BASIC
        .iter()
        .position(|b| *b == c)
        .filter(|i| *i != ESC as usize)
        .map(|i| Septets::Basic(i as u8))
}

/// Whether every character of `text` is in the default alphabet (basic or extension).
pub fn can_encode(text: &str) -> bool {
    text.chars().all(|c| encode_char(c).is_some())
}

/// Decodes unpacked septets. Never fails: an octet with the top bit set (some SMSCs send
/// Latin-1/ASCII under data_coding 0) is taken as Latin-1; an escape followed by a code the
/// extension table lacks shows the basic character, as TS 23.038 asks; a trailing escape is
/// dropped.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b >= 0x80 {
            out.push(char::from(b));
        } else if b == ESC {
            let Some(&next) = bytes.get(i) else { break };
            i += 1;
            if next >= 0x80 {
                out.push(char::from(next));
            } else if let Some((_, c)) = EXTENSION.iter().find(|(code, _)| *code == next) {
                out.push(*c);
            } else if next == ESC {
                // ESC ESC is reserved for a further extension table: show a space.
                out.push(' ');
            } else {
                out.push(BASIC[next as usize]);
            }
        } else {
            out.push(BASIC[b as usize]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_letters_and_digits_keep_their_codes() {
        for c in ('A'..='Z').chain('a'..='z').chain('0'..='9') {
            assert_eq!(encode_char(c), Some(Septets::Basic(c as u8)), "{c}");
        }
    }

    #[test]
    fn special_characters_use_their_gsm_codes() {
        assert_eq!(encode_char('@'), Some(Septets::Basic(0x00)));
        assert_eq!(encode_char('$'), Some(Septets::Basic(0x02)));
        assert_eq!(encode_char('_'), Some(Septets::Basic(0x11)));
        assert_eq!(encode_char('€'), Some(Septets::Extended(0x65)));
        assert_eq!(encode_char('{'), Some(Septets::Extended(0x28)));
        assert_eq!(encode_char('中'), None);
        assert_eq!(encode_char('`'), None);
    }

    #[test]
    fn decode_handles_escapes() {
        assert_eq!(decode(&[0x1B, 0x65, b'5']), "€5");
        assert_eq!(decode(&[b'a', 0x1B]), "a");
        assert_eq!(
            decode(&[0x1B, b'A']),
            "A",
            "unknown escape shows the basic character"
        );
        assert_eq!(decode(&[0x00, 0x02]), "@$");
        assert_eq!(decode(&[0xE9]), "é", "top bit set is read as Latin-1");
    }

    #[test]
    fn every_encodable_character_round_trips() {
        for c in BASIC
            .iter()
            .copied()
            .chain(EXTENSION.iter().map(|(_, c)| *c))
        {
            let Some(s) = encode_char(c) else { continue };
            let mut buf = Vec::new();
            s.push_to(&mut buf);
            assert_eq!(decode(&buf), c.to_string());
        }
    }
}

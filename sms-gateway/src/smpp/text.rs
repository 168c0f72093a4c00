//! Message text on the SMPP wire: decoding what subscribers send (MO) and encoding and
//! segmenting what we send them (MT). Pure functions; the link code only moves bytes.
//!
//! MO: data_coding 0 (GSM 7-bit default alphabet, unpacked as SMPP carries it), 1 and 3
//! (IA5/Latin-1), 8 (UCS-2 big-endian) and the GSM coding groups that name one of those;
//! a UDH (esm_class 0x40) is parsed for concatenation; `message_payload` wins over
//! `short_message` when present.
//!
//! MT: GSM 7-bit (data_coding 0, unpacked) when every character is in the default alphabet,
//! else UCS-2 (data_coding 8). One segment when it fits (160 septets, an extension character
//! counting 2 / 70 UTF-16 units), else parts of 153 septets / 67 units each behind a 6-octet
//! UDH with an 8-bit reference. A part never ends inside a GSM escape or a surrogate pair
//! (there are none: characters outside the BMP are replaced by '?' first, because SMSCs and
//! handsets disagree on them and a reply must never fail to encode).
use std::borrow::Cow;
use std::sync::atomic::{AtomicU8, Ordering};

use super::gsm7;
use super::udh::{self, ConcatInfo, UDHI};

/// data_coding for the GSM 7-bit default alphabet (SMSC default).
pub const DCS_GSM7: u8 = 0x00;
/// data_coding for Latin-1 (ISO-8859-1).
pub const DCS_LATIN1: u8 = 0x03;
/// data_coding for UCS-2 big-endian.
pub const DCS_UCS2: u8 = 0x08;

/// Septets in one unsegmented GSM 7-bit message.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part behind a 6-octet UDH.
pub const GSM7_PART: usize = 153;
/// UTF-16 units in one unsegmented UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 units per part behind a 6-octet UDH.
pub const UCS2_PART: usize = 67;
/// The most parts a concatenated message can have (the count is one octet).
pub const MAX_PARTS: usize = 255;

/// What stands in for a character outside the BMP (emoji and the like).
pub const NON_BMP_REPLACEMENT: char = '?';

/// One decoded MO short message (one part, if it is concatenated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoText {
    /// The text of this part.
    pub text: String,
    /// Where this part sits, if it is part of a concatenated message.
    pub concat: Option<ConcatInfo>,
    /// The part as UTF-16 code units exactly as received (for UCS-2, before any lossy
    /// conversion). Reassemble from these, so a surrogate pair that a sender split across
    /// two parts still joins up.
    pub units: Vec<u16>,
}

/// Why an MO could not be decoded. None of these is worth a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("data_coding {0:#04x} is not a text coding we read")]
    UnsupportedCoding(u8),
    #[error("UCS-2 user data of odd length {0}")]
    OddUcs2Length(usize),
    #[error(transparent)]
    BadUdh(#[from] udh::BadUdh),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Gsm7,
    Latin1,
    Ucs2,
}

/// The alphabet a data_coding value names, following SMPP 3.4 §5.2.19 for the low values and
/// the GSM 03.38 coding groups above them.
fn alphabet(dcs: u8) -> Option<Alphabet> {
    let from_bits = |bits: u8| match bits & 0x03 {
        0 => Some(Alphabet::Gsm7),
        2 => Some(Alphabet::Ucs2),
        _ => None, // 8-bit data or reserved
    };
    match dcs {
        0x00 => Some(Alphabet::Gsm7),
        0x01 | 0x03 => Some(Alphabet::Latin1), // IA5 is a subset of Latin-1
        0x08 => Some(Alphabet::Ucs2),
        // General and auto-deletion groups, uncompressed: bits 3..2 name the alphabet.
        0x10..=0x1F | 0x40..=0x5F => from_bits(dcs >> 2),
        0xC0..=0xDF => Some(Alphabet::Gsm7), // message waiting, default alphabet
        0xE0..=0xEF => Some(Alphabet::Ucs2), // message waiting, UCS-2
        0xF0..=0xFF if dcs & 0x04 == 0 => Some(Alphabet::Gsm7),
        _ => None,
    }
}

/// Decodes one MO (deliver_sm) body. Never panics, whatever the bytes.
pub fn decode_mo(
    data_coding: u8,
    esm_class: u8,
    short_message: &[u8],
    message_payload: Option<&[u8]>,
) -> Result<MoText, DecodeError> {
    let alphabet = alphabet(data_coding).ok_or(DecodeError::UnsupportedCoding(data_coding))?;
    let data = message_payload.unwrap_or(short_message);
    let (concat, body) = if esm_class & UDHI != 0 {
        udh::split(data)?
    } else {
        (None, data)
    };
    let (text, units) = match alphabet {
        Alphabet::Ucs2 => {
            if body.len() % 2 != 0 {
                return Err(DecodeError::OddUcs2Length(body.len()));
            }
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            (String::from_utf16_lossy(&units), units)
        }
        Alphabet::Gsm7 => {
            let text = gsm7::decode(body);
            let units = text.encode_utf16().collect();
            (text, units)
        }
        Alphabet::Latin1 => {
            let text: String = body.iter().map(|b| char::from(*b)).collect();
            let units = text.encode_utf16().collect();
            (text, units)
        }
    };
    Ok(MoText {
        text,
        concat,
        units,
    })
}

/// One submit_sm's worth of an MT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// 0x00 (GSM 7-bit) or 0x08 (UCS-2).
    pub data_coding: u8,
    /// 0x40 on the parts of a concatenated message, 0x00 otherwise.
    pub esm_class: u8,
    /// The UDH (if any) followed by the encoded text.
    pub short_message: Vec<u8>,
    /// Where this part sits, for a concatenated message.
    pub concat: Option<ConcatInfo>,
}

/// Replaces every character outside the BMP with [`NON_BMP_REPLACEMENT`].
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| (c as u32) <= 0xFFFF) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if (c as u32) > 0xFFFF {
                        NON_BMP_REPLACEMENT
                    } else {
                        c
                    }
                })
                .collect(),
        )
    }
}

static NEXT_REFERENCE: AtomicU8 = AtomicU8::new(1);

/// A fresh 8-bit concatenation reference (process-wide, wrapping).
pub fn next_reference() -> u8 {
    NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed)
}

/// Encodes and segments an MT text with a fresh concatenation reference.
pub fn encode_mt(text: &str) -> Vec<Segment> {
    encode_mt_with_reference(text, next_reference())
}

/// Encodes and segments an MT text; `reference` is used only if it needs several parts.
/// Always returns at least one segment; a text beyond 255 parts is cut at 255.
pub fn encode_mt_with_reference(text: &str, reference: u8) -> Vec<Segment> {
    let text = sanitize(text);
    // Each character as (cost against the limits, encoded bytes).
    let (data_coding, units, single, part): (u8, Vec<(usize, Vec<u8>)>, usize, usize) =
        if gsm7::can_encode(&text) {
            let units = text
                .chars()
                .filter_map(gsm7::encode_char)
                .map(|s| {
                    let mut b = Vec::with_capacity(2);
                    s.push_to(&mut b);
                    (s.count(), b)
                })
                .collect();
            (DCS_GSM7, units, GSM7_SINGLE, GSM7_PART)
        } else {
            let units = text
                .chars()
                .map(|c| {
                    let mut buf = [0u16; 2];
                    let u = c.encode_utf16(&mut buf);
                    (u.len(), u.iter().flat_map(|x| x.to_be_bytes()).collect())
                })
                .collect();
            (DCS_UCS2, units, UCS2_SINGLE, UCS2_PART)
        };

    let total_cost: usize = units.iter().map(|(c, _)| c).sum();
    if total_cost <= single {
        return vec![Segment {
            data_coding,
            esm_class: 0x00,
            short_message: units.into_iter().flat_map(|(_, b)| b).collect(),
            concat: None,
        }];
    }

    // Greedy packing by whole characters: a character is never split across parts.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for (cost, bytes) in units {
        if used + cost > part {
            bodies.push(std::mem::take(&mut current));
            used = 0;
        }
        current.extend_from_slice(&bytes);
        used += cost;
    }
    if !current.is_empty() {
        bodies.push(current);
    }
    bodies.truncate(MAX_PARTS);
    let total = bodies.len() as u8;
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let seq = i as u8 + 1;
            let mut short_message = udh::concat_8bit(reference, total, seq).to_vec();
            short_message.extend_from_slice(&body);
            Segment {
                data_coding,
                esm_class: UDHI,
                short_message,
                concat: Some(ConcatInfo {
                    reference: reference as u16,
                    total,
                    seq,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes every segment and joins the parts in UDH order.
    fn reassemble(segments: &[Segment]) -> String {
        let mut parts: Vec<MoText> = segments
            .iter()
            .map(|s| decode_mo(s.data_coding, s.esm_class, &s.short_message, None).unwrap())
            .collect();
        parts.sort_by_key(|p| p.concat.map(|c| c.seq).unwrap_or(0));
        let units: Vec<u16> = parts.into_iter().flat_map(|p| p.units).collect();
        String::from_utf16(&units).unwrap()
    }

    fn chinese(n: usize) -> String {
        "中国移动营业厅您好请回复余额查询话费套餐流量积分"
            .chars()
            .cycle()
            .take(n)
            .collect()
    }

    #[test]
    fn decodes_gsm_latin1_and_ucs2() {
        assert_eq!(decode_mo(0, 0, b"CXYE", None).unwrap().text, "CXYE");
        assert_eq!(
            decode_mo(0, 0, &[0x00, 0x1B, 0x65], None).unwrap().text,
            "@€"
        );
        assert_eq!(
            decode_mo(3, 0, &[0x63, 0x61, 0x66, 0xE9], None)
                .unwrap()
                .text,
            "café"
        );
        let ucs2: Vec<u8> = "余额"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let mo = decode_mo(8, 0, &ucs2, None).unwrap();
        assert_eq!(mo.text, "余额");
        assert_eq!(mo.concat, None);
        assert_eq!(
            decode_mo(0x18, 0, &ucs2, None).unwrap().text,
            "余额",
            "UCS-2 with a class"
        );
        assert_eq!(decode_mo(0xF0, 0, b"YE", None).unwrap().text, "YE");
    }

    #[test]
    fn message_payload_wins_and_udh_is_read_from_it() {
        let mut payload = vec![0x05, 0x00, 0x03, 9, 2, 2];
        payload.extend("话费".encode_utf16().flat_map(|u| u.to_be_bytes()));
        let mo = decode_mo(8, 0x40, b"", Some(&payload)).unwrap();
        assert_eq!(mo.text, "话费");
        assert_eq!(
            mo.concat,
            Some(ConcatInfo {
                reference: 9,
                total: 2,
                seq: 2
            })
        );
        assert_eq!(
            decode_mo(0, 0, b"ignored", Some(b"used")).unwrap().text,
            "used"
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            decode_mo(8, 0, &[0x4F, 0x59, 0x00], None),
            Err(DecodeError::OddUcs2Length(3))
        );
        assert_eq!(
            decode_mo(0x04, 0, b"bin", None),
            Err(DecodeError::UnsupportedCoding(0x04))
        );
        assert_eq!(
            decode_mo(0, 0x40, &[0x09, 0x00], None),
            Err(DecodeError::BadUdh(udh::BadUdh))
        );
    }

    #[test]
    fn short_texts_are_one_segment_with_esm_class_zero() {
        let s = encode_mt("Your code is 123456");
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].data_coding, s[0].esm_class), (DCS_GSM7, 0x00));
        let s = encode_mt(&chinese(70));
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].data_coding, s[0].esm_class, s[0].short_message.len()),
            (DCS_UCS2, 0x00, 140)
        );
        let s = encode_mt(&"a".repeat(160));
        assert_eq!((s.len(), s[0].short_message.len()), (1, 160));
        let s = encode_mt("");
        assert_eq!((s.len(), s[0].short_message.len()), (1, 0));
    }

    #[test]
    fn a_300_character_chinese_reply_is_five_numbered_parts() {
        let text = chinese(300);
        let segments = encode_mt_with_reference(&text, 0x42);
        assert_eq!(segments.len(), 5);
        for (i, s) in segments.iter().enumerate() {
            assert_eq!((s.data_coding, s.esm_class), (DCS_UCS2, 0x40));
            assert_eq!(
                &s.short_message[..6],
                &[0x05, 0x00, 0x03, 0x42, 5, i as u8 + 1]
            );
            let expected_len = if i < 4 {
                6 + 134
            } else {
                6 + 2 * (300 - 4 * 67)
            };
            assert_eq!(s.short_message.len(), expected_len);
        }
        assert_eq!(reassemble(&segments), text);
    }

    #[test]
    fn gsm_parts_hold_153_septets_and_never_split_an_escape() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let segments = encode_mt(&text);
        assert_eq!(segments.len(), 2);
        // 152 septets fit, the 2-septet euro does not: it opens the second part whole.
        assert_eq!(segments[0].short_message.len(), 6 + 152);
        assert_eq!(&segments[1].short_message[6..8], &[0x1B, 0x65]);
        assert_eq!(reassemble(&segments), text);
        // 161 septets because of an escape: no longer a single message.
        assert_eq!(encode_mt(&format!("{}€", "a".repeat(159))).len(), 2);
    }

    #[test]
    fn emoji_are_replaced_before_encoding() {
        let s = encode_mt("OK 👍");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].data_coding, DCS_GSM7);
        assert_eq!(reassemble(&s), "OK ?");
        let s = encode_mt("好的😀");
        assert_eq!(reassemble(&s), "好的?");
    }

    #[test]
    fn a_huge_text_stops_at_255_parts() {
        let segments = encode_mt(&chinese(67 * 300));
        assert_eq!(segments.len(), 255);
        assert!(segments.iter().all(|s| s.concat.unwrap().total == 255));
    }

    proptest! {
        #[test]
        fn decode_never_panics(dcs in any::<u8>(), esm in any::<u8>(), sm in proptest::collection::vec(any::<u8>(), 0..300),
                               payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..600))) {
            let _ = decode_mo(dcs, esm, &sm, payload.as_deref());
        }

        #[test]
        fn encode_then_decode_gives_back_the_text(text in ".{0,700}") {
            let segments = encode_mt(&text);
            prop_assert!(!segments.is_empty());
            for s in &segments {
                prop_assert!(s.short_message.len() <= 160);
                if segments.len() == 1 {
                    prop_assert_eq!(s.esm_class, 0x00);
                } else {
                    prop_assert_eq!(s.esm_class, 0x40);
                }
            }
            prop_assert_eq!(reassemble(&segments), sanitize(&text).into_owned());
        }

        #[test]
        fn gsm_only_text_round_trips(text in "[ -~€£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r]{0,500}") {
            let segments = encode_mt(&text);
            prop_assert!(segments.iter().all(|s| s.data_coding == DCS_GSM7 || text.contains('`')));
            prop_assert_eq!(reassemble(&segments), text);
        }
    }
}

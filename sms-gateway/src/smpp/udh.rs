//! The User Data Header (3GPP TS 23.040 §9.2.3.24) as it appears at the start of
//! `short_message` / `message_payload` when esm_class carries the UDHI bit (0x40): one length
//! octet, then information elements (IEI, length, data). We read and write only what
//! concatenation needs: IEI 0x00 (8-bit reference) and IEI 0x08 (16-bit reference).

/// The esm_class bit saying the user data starts with a UDH.
pub const UDHI: u8 = 0x40;

/// Where one part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcatInfo {
    /// The sender's reference shared by all parts (an 8-bit reference is widened).
    pub reference: u16,
    /// How many parts the message has (at least 2 once parsed).
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
}

/// A header that does not fit in the data it claims to introduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the user data header is truncated or longer than the message")]
pub struct BadUdh;

/// Splits `data` into (concatenation info if the header has a usable one, the user data
/// after the header). Unknown elements are skipped; a concatenation element with a zero or
/// out-of-range number, or a total of 1, is ignored as TS 23.040 asks.
pub fn split(data: &[u8]) -> Result<(Option<ConcatInfo>, &[u8]), BadUdh> {
    let (&udhl, rest) = data.split_first().ok_or(BadUdh)?;
    let udhl = udhl as usize;
    if rest.len() < udhl {
        return Err(BadUdh);
    }
    let (mut header, body) = rest.split_at(udhl);
    let mut concat = None;
    while !header.is_empty() {
        let [iei, len, tail @ ..] = header else {
            return Err(BadUdh);
        };
        let len = *len as usize;
        if tail.len() < len {
            return Err(BadUdh);
        }
        let (value, next) = tail.split_at(len);
        let found = match (*iei, value) {
            (0x00, [r, total, seq]) => Some((*r as u16, *total, *seq)),
            (0x08, [hi, lo, total, seq]) => Some((u16::from_be_bytes([*hi, *lo]), *total, *seq)),
            _ => None,
        };
        if let Some((reference, total, seq)) = found {
            if total >= 2 && seq >= 1 && seq <= total {
                concat = Some(ConcatInfo {
                    reference,
                    total,
                    seq,
                });
            }
        }
        header = next;
    }
    Ok((concat, body))
}

/// The 6-octet header of one part with an 8-bit reference: `05 00 03 ref total seq`.
pub fn concat_8bit(reference: u8, total: u8, seq: u8) -> [u8; 6] {
    [0x05, 0x00, 0x03, reference, total, seq]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_8bit_reference() {
        let data = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'h', b'i'];
        let (c, body) = split(&data).unwrap();
        assert_eq!(
            c,
            Some(ConcatInfo {
                reference: 0x2A,
                total: 3,
                seq: 2
            })
        );
        assert_eq!(body, b"hi");
    }

    #[test]
    fn reads_a_16bit_reference_after_another_element() {
        // A port-addressing element (IEI 0x05) first, then the 16-bit concatenation element.
        let data = [
            0x0C, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'x',
        ];
        let (c, body) = split(&data).unwrap();
        assert_eq!(
            c,
            Some(ConcatInfo {
                reference: 0x1234,
                total: 2,
                seq: 1
            })
        );
        assert_eq!(body, b"x");
    }

    #[test]
    fn ignores_nonsense_numbers_and_rejects_truncation() {
        assert_eq!(
            split(&[0x05, 0x00, 0x03, 1, 2, 0]).unwrap().0,
            None,
            "seq 0"
        );
        assert_eq!(
            split(&[0x05, 0x00, 0x03, 1, 2, 3]).unwrap().0,
            None,
            "seq > total"
        );
        assert_eq!(
            split(&[0x05, 0x00, 0x03, 1, 1, 1]).unwrap().0,
            None,
            "single part"
        );
        assert_eq!(split(&[0x06, 0x00, 0x03, 1, 2, 1]), Err(BadUdh));
        assert_eq!(split(&[0x02, 0x00, 0x03]), Err(BadUdh));
        assert_eq!(split(&[]), Err(BadUdh));
    }

    #[test]
    fn writes_the_six_octet_header() {
        assert_eq!(concat_8bit(7, 5, 1), [0x05, 0x00, 0x03, 7, 5, 1]);
        let mut data = concat_8bit(7, 5, 4).to_vec();
        data.extend_from_slice(b"ok");
        assert_eq!(
            split(&data).unwrap(),
            (
                Some(ConcatInfo {
                    reference: 7,
                    total: 5,
                    seq: 4
                }),
                &b"ok"[..]
            )
        );
    }
}

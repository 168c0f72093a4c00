//! SMSC delivery receipts: the de-facto text format of SMPP 3.4 Appendix B,
//! `id:IIII sub:SSS dlvr:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:…`,
//! carried in a deliver_sm whose esm_class has message type 0x04.

/// The esm_class message-type bits (2..5).
pub const ESM_TYPE_MASK: u8 = 0x3C;
/// Message type "SMSC delivery receipt".
pub const ESM_DELIVERY_RECEIPT: u8 = 0x04;

/// Whether an esm_class marks a delivery receipt rather than a subscriber's message.
pub fn is_receipt(esm_class: u8) -> bool {
    esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT
}

/// The fields we use from a receipt's text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptFields {
    /// `id:` — the message id the SMSC gave in submit_sm_resp.
    pub id: Option<String>,
    /// `stat:` — DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE.
    pub stat: Option<String>,
    /// `err:` — network-specific error code.
    pub err: Option<String>,
    /// `submit date:` and `done date:` as written (YYMMDDhhmm).
    pub submit_date: Option<String>,
    pub done_date: Option<String>,
}

/// Reads the fields out of a receipt text (keys matched without regard to case; missing
/// fields stay `None`).
pub fn parse(text: &str) -> ReceiptFields {
    let lower = text.to_ascii_lowercase();
    let field = |key: &str| -> Option<String> {
        // A key must start the text or follow a space ("id:" must not match inside "xid:").
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let at = from + pos;
            if at == 0 || lower.as_bytes()[at - 1] == b' ' {
                let start = at + key.len();
                let value: String = text[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return (!value.is_empty()).then_some(value);
            }
            from = at + key.len();
        }
        None
    };
    ReceiptFields {
        id: field("id:"),
        stat: field("stat:"),
        err: field("err:"),
        submit_date: field("submit date:"),
        done_date: field("done date:"),
    }
}

/// Writes a receipt text (what the simulator sends). `text` is cut to 20 characters.
pub fn format(
    id: &str,
    stat: &str,
    err: u16,
    submit_date: &str,
    done_date: &str,
    text: &str,
) -> String {
    let text: String = text.chars().take(20).collect();
    format!(
        "id:{id} sub:001 dlvr:{dlvr} submit date:{submit_date} done date:{done_date} stat:{stat} err:{err:03} text:{text}",
        dlvr = if stat == "DELIVRD" { "001" } else { "000" },
    )
}

/// The receipt stat word for an SMPP message_state value (for receipts that only carry TLVs).
pub fn stat_for_state(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_standard_text() {
        let t = "id:0123456789 sub:001 dlvr:001 submit date:2611151000 done date:2611151001 stat:DELIVRD err:000 text:您好";
        let f = parse(t);
        assert_eq!(f.id.as_deref(), Some("0123456789"));
        assert_eq!(f.stat.as_deref(), Some("DELIVRD"));
        assert_eq!(f.err.as_deref(), Some("000"));
        assert_eq!(f.submit_date.as_deref(), Some("2611151000"));
        assert_eq!(f.done_date.as_deref(), Some("2611151001"));
    }

    #[test]
    fn keys_are_case_insensitive_and_whole() {
        let f = parse("ID:ab12 Stat:UNDELIV Err:021");
        assert_eq!(
            (f.id.as_deref(), f.stat.as_deref(), f.err.as_deref()),
            (Some("ab12"), Some("UNDELIV"), Some("021"))
        );
        assert_eq!(parse("xid:1 stat:").id, None);
        assert_eq!(parse("nothing here"), ReceiptFields::default());
    }

    #[test]
    fn format_then_parse() {
        let t = format(
            "SIM1",
            "DELIVRD",
            0,
            "2611151000",
            "2611151000",
            "a long text that is cut at twenty",
        );
        assert!(t.ends_with("text:a long text that is "), "{t}");
        let f = parse(&t);
        assert_eq!(
            (f.id.as_deref(), f.stat.as_deref()),
            (Some("SIM1"), Some("DELIVRD"))
        );
        assert!(is_receipt(0x04) && !is_receipt(0x00) && !is_receipt(0x40));
    }
}

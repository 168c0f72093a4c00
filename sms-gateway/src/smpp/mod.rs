//! The SMPP 3.4 link to the SMSC (issue 4).
//!
//! Built directly on rusmpp 0.4's PDU codec rather than on the rusmppc client: rusmppc does
//! not reconnect, bound the submit window, answer the SMSC's unbind, decode MO text or wrap
//! sequence numbers, and working around all of that costs more than a session loop of our own
//! (and its default TLS stack would add a heavy build). The same codec runs the SMSC simulator.
//!
//! - [`text`]: MO decoding (GSM 7-bit, Latin-1, UCS-2, UDH) and MT encoding + segmentation.
//! - [`udh`]: the concatenation information elements.
//! - [`reassembly`]: collecting the parts of a concatenated MO.
//! - [`receipt`]: delivery-receipt text.
//! - [`frame`]: framing, sequence numbers and PDU builders shared with the simulator.
//! - [`esme`]: the client link (bind, enquire_link, reconnect, window, throttling, unbind).
pub mod esme;
pub mod frame;
pub mod gsm7;
pub mod reassembly;
pub mod receipt;
pub mod text;
pub mod udh;

pub use esme::{
    DeliveryReceipt, Esme, EsmeConfig, EsmeHandle, IncomingMo, MoHandler, MoVerdict, SubmitError,
};
pub use reassembly::Reassembler;
pub use text::{decode_mo, encode_mt, DecodeError, MoText, Segment};
pub use udh::ConcatInfo;

/// Command status values we act on (SMPP 3.4 §5.1.3).
pub mod status {
    pub const ESME_ROK: u32 = 0x0000_0000;
    pub const ESME_RINVCMDID: u32 = 0x0000_0003;
    pub const ESME_RINVBNDSTS: u32 = 0x0000_0004;
    pub const ESME_RALYBND: u32 = 0x0000_0005;
    pub const ESME_RSYSERR: u32 = 0x0000_0008;
    pub const ESME_RINVPASWD: u32 = 0x0000_000E;
    pub const ESME_RINVSYSID: u32 = 0x0000_000F;
    pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
    pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
    pub const ESME_RX_T_APPN: u32 = 0x0000_0064;
    pub const ESME_RX_P_APPN: u32 = 0x0000_0065;
}

/// How a sender is named in logs: masked like a number shown to a stranger (SPEC §6).
pub fn masked(source: &str) -> String {
    match app::domain::Msisdn::parse(source) {
        Ok(m) => m.masked(),
        Err(_) => {
            let chars: Vec<char> = source.chars().collect();
            if chars.len() <= 4 {
                "****".to_owned()
            } else {
                let head: String = chars[..2].iter().collect();
                let tail: String = chars[chars.len() - 2..].iter().collect();
                format!("{head}****{tail}")
            }
        }
    }
}

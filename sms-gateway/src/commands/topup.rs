//! `CZ<PIN>`: tops up the sender's own number with a recharge card. A suspended number may.
//! The PIN goes to the service and nowhere else: not into the reply, not into a log.
use app::domain::{Fen, Msisdn};
use app::{Hall, Result};

use super::render;
use super::replies::ToppedUpReply;
use crate::grammar::CardPin;

pub(super) async fn top_up(hall: &Hall, m: &Msisdn, pin: &CardPin) -> Result<String> {
    let receipt = hall.top_up_by_card(m, m, pin.expose(), None).await?;
    Ok(render(&ToppedUpReply {
        amount: receipt.amount.yuan_text(),
        gift: (receipt.gift != Fen::ZERO).then(|| receipt.gift.yuan_text()),
        balance: receipt.balance_after.map(Fen::yuan_text),
    }))
}

//! `是` / `Y`: applies the number's pending prompt (a subscription or a redemption), once.
use app::domain::{Fen, Msisdn};
use app::service::prompts::Confirmed;
use app::{Hall, Result};

use super::render;
use super::replies::{RedeemedReply, SubscribedReply};

pub(super) async fn confirm(hall: &Hall, m: &Msisdn) -> Result<String> {
    Ok(match hall.confirm(m).await? {
        Confirmed::Subscribed(s) => render(&SubscribedReply {
            name: s.product.name_zh,
            code: s.product.code.to_string(),
            charged: (s.charged != Fen::ZERO).then(|| s.charged.yuan_text()),
            balance: s.balance.total().yuan_text(),
            short_code: hall.settings().short_code.clone(),
        }),
        Confirmed::Redeemed(r) => render(&RedeemedReply {
            name: r.reward.name_zh,
            points: r.points.get(),
            kind: r.reward.kind,
            credit: r.reward.credit.yuan_text(),
            data_mb: r.reward.data_mb,
            left: r.balance_after.get(),
        }),
    })
}

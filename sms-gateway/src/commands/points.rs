//! `DH<reward>`: asks for confirmation with the points it costs; `是`/`Y` redeems.
use app::domain::Msisdn;
use app::service::prompts::PendingAction;
use app::{Error, Hall, Result};

use super::replies::{Hint, RedeemPrompt};
use super::{error_with_hint, render};

pub(super) async fn redeem(hall: &Hall, m: &Msisdn, reward: String) -> Result<String> {
    match hall
        .ask_confirmation(m, PendingAction::Redeem(reward))
        .await
    {
        Ok(prompt) => Ok(render(&RedeemPrompt {
            name: prompt.name_zh,
            rule: prompt.rule_zh,
            minutes: prompt.valid_minutes,
        })),
        Err(e @ Error::UnknownReward) => Ok(error_with_hint(&e, Some(Hint::RewardCode))),
        Err(e) => Err(e),
    }
}

//! Products: `KT<code>` (asks for confirmation), `QX<code>`/`TD<code>`, the `0000` menu and
//! cancelling by its numbers (`TD1`, `TD1,3`).
use app::domain::{Msisdn, ProductCode};
use app::service::prompts::PendingAction;
use app::{Error, Hall, Result};

use super::replies::{
    CancelledByNumberReply, CancelledReply, Failure, Hint, MenuLine, MenuReply, SubscribePrompt,
};
use super::{error_text, error_with_hint, render};

/// Only records the order and answers with its fee, charging rule and how to cancel; the
/// subscriber's `是`/`Y` applies it (see `confirm.rs`).
pub(super) async fn subscribe(hall: &Hall, m: &Msisdn, code: ProductCode) -> Result<String> {
    let prompt = match hall
        .ask_confirmation(m, PendingAction::Subscribe(code.clone()))
        .await
    {
        Ok(p) => p,
        Err(e @ Error::UnknownProduct) => return Ok(error_with_hint(&e, Some(Hint::ProductCode))),
        Err(e) => return Err(e),
    };
    Ok(render(&SubscribePrompt {
        name: prompt.name_zh,
        code: code.to_string(),
        fee: prompt.fee.map(|f| f.yuan_text()),
        rule: prompt.rule_zh,
        minutes: prompt.valid_minutes,
        short_code: hall.settings().short_code.clone(),
    }))
}

pub(super) async fn cancel(hall: &Hall, m: &Msisdn, code: &ProductCode) -> Result<String> {
    match hall.cancel(m, code).await {
        Ok(until) => {
            // The name for the reply; the cancellation itself is done, so a failed read
            // falls back to the code rather than reporting a failure.
            let name = hall
                .product(code)
                .await
                .map(|p| p.name_zh)
                .unwrap_or_else(|_| code.to_string());
            Ok(render(&CancelledReply {
                name,
                month: until.month(),
            }))
        }
        Err(e @ (Error::NotSubscribed | Error::UnknownProduct)) => {
            Ok(error_with_hint(&e, Some(Hint::Menu)))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn menu(hall: &Hall, m: &Msisdn) -> Result<String> {
    let items = hall
        .show_cancel_menu(m)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, s)| MenuLine {
            no: i + 1,
            name: s.product.name_zh,
            fee: s.product.monthly_fee.yuan_text(),
        })
        .collect();
    Ok(render(&MenuReply { items }))
}

/// Cancels every numbered item it can and answers once for all of them. Numbers refer to the
/// menu as it was last shown (the service remembers it), so `TD1` then `TD2` still mean the
/// first and second items the subscriber read.
pub(super) async fn cancel_by_number(hall: &Hall, m: &Msisdn, numbers: &[u8]) -> Result<String> {
    let items = hall.cancel_menu_codes(m).await?;
    let mut reply = CancelledByNumberReply {
        done: Vec::new(),
        month: 0,
        failed: Vec::new(),
        missing: Vec::new(),
        count: items.len(),
        left: items.len(),
    };
    for &n in numbers {
        let Some(code) = usize::from(n).checked_sub(1).and_then(|i| items.get(i)) else {
            reply.missing.push(n);
            continue;
        };
        let name = hall
            .product(code)
            .await
            .map(|p| p.name_zh)
            .unwrap_or_else(|_| code.to_string());
        match hall.cancel(m, code).await {
            Ok(until) => {
                reply.done.push(name);
                reply.month = until.month();
                reply.left -= 1;
            }
            Err(e) => reply.failed.push(Failure {
                name,
                why: error_text(&e),
            }),
        }
    }
    Ok(render(&reply))
}

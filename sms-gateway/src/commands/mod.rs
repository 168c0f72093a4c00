//! The 10086 command handler: one MO text in, the reply to send out (SPEC §4).
//!
//! [`handle_mo`] is the whole of it: it finds out who is asking (a subscriber, or a stranger who
//! gets one polite refusal), counts the command against the per-number limit, parses it with
//! [`crate::grammar`], calls the service layer and words the outcome with one askama template
//! per reply kind (see [`replies`] and `sms-gateway/templates/`). It holds no business rule:
//! what may be done, and what it costs, is the service layer's to decide; its refusals are
//! already written for customers (`Error::zh`) and are passed on as they are, except storage
//! failures, which get a plain "system busy".
//!
//! Commands that change something (`KT…`, `DH…`) only ask: the service records a prompt and the
//! subscriber's `是` / `Y` within the window applies it (二次确认, SPEC §6).
//!
//! Only the sender's own number is ever passed to the service layer, so a reply can never show
//! another person's data; a card PIN is passed on and never written into a reply or a log.

mod confirm;
mod points;
mod products;
mod queries;
pub mod replies;
mod topup;

#[cfg(test)]
mod tests;

use askama::Template;
use tracing::warn;

use app::domain::Msisdn;
use app::service::sms::{CommandAllowance, COMMAND_LIMIT};
use app::{Error, Hall};

use crate::grammar::{self, Command};
use replies::{
    BusyReply, ErrorReply, HelpReply, Hint, MalformedReply, ShortHelpReply, StrangerReply,
    TooFrequentReply,
};

/// Handles one MO text from `source` and returns the reply to send, or None for silence.
pub async fn handle_mo(hall: &app::Hall, source: &str, text: &str) -> Option<String> {
    // The reply to a change is its confirmation: the service queues no second SMS.
    let hall = &hall.answering_by_sms();
    let msisdn = match Msisdn::parse(source) {
        Ok(m) => match hall.is_subscriber(&m).await {
            Ok(true) => m,
            // Keyed by the number as we write it, so `+86…` and `…` are one sender.
            Ok(false) => return refuse_stranger(hall, m.as_str()).await,
            Err(e) => return Some(error_text(&e)),
        },
        Err(_) => return refuse_stranger(hall, source).await,
    };
    match hall.command_allowance(&msisdn).await {
        Ok(CommandAllowance::Allowed) => {}
        Ok(CommandAllowance::TooFrequent) => {
            return Some(render(&TooFrequentReply {
                minutes: COMMAND_LIMIT.0 / 60_000,
            }))
        }
        Ok(CommandAllowance::Silent) => return None,
        // Without the counter the limit cannot be kept: don't run the command unmetered.
        Err(e) => return Some(error_text(&e)),
    }
    Some(answer(hall, &msisdn, grammar::parse(text)).await)
}

/// One polite refusal for a sender that is not ours (the service remembers whom it told).
async fn refuse_stranger(hall: &Hall, source: &str) -> Option<String> {
    match hall.refuse_stranger_once(source).await {
        Ok(true) => Some(render(&StrangerReply {
            short_code: hall.settings().short_code.clone(),
        })),
        Ok(false) => None,
        // Not knowing whether it was told already, stay quiet rather than risk repeating.
        Err(e) => {
            warn!(error = %e.operator_detail(), "stranger refusal check failed");
            None
        }
    }
}

/// The reply to a subscriber's command.
async fn answer(hall: &Hall, m: &Msisdn, command: Command) -> String {
    let result = match command {
        Command::Balance => queries::balance(hall, m).await,
        Command::Bill => queries::bill(hall, m).await,
        Command::Plan => queries::plan(hall, m).await,
        Command::Data => queries::data(hall, m).await,
        Command::Points => queries::points(hall, m).await,
        Command::Subscribe(code) => products::subscribe(hall, m, code).await,
        Command::Cancel(code) => products::cancel(hall, m, &code).await,
        Command::Menu => products::menu(hall, m).await,
        Command::CancelByNumber(numbers) => products::cancel_by_number(hall, m, &numbers).await,
        Command::Redeem(reward) => points::redeem(hall, m, reward).await,
        Command::Confirm => confirm::confirm(hall, m).await,
        Command::TopUp(pin) => topup::top_up(hall, m, &pin).await,
        Command::Help => Ok(render(&HelpReply {
            short_code: hall.settings().short_code.clone(),
        })),
        Command::Malformed(what) => Ok(render(&MalformedReply { what })),
        Command::Unknown | Command::Empty => Ok(short_help(hall, m).await),
    };
    result.unwrap_or_else(|e| error_text(&e))
}

/// Short help, reminding of a waiting prompt (an unrecognised "ok" is often meant as "yes").
async fn short_help(hall: &Hall, m: &Msisdn) -> String {
    let pending = matches!(hall.pending_confirmation(m).await, Ok(Some(_)));
    render(&ShortHelpReply { pending })
}

/// A service refusal in its own customer-facing words; a storage failure as "system busy".
pub(crate) fn error_text(e: &Error) -> String {
    error_with_hint(e, None)
}

pub(crate) fn error_with_hint(e: &Error, hint: Option<Hint>) -> String {
    match e {
        Error::Storage(_) => {
            warn!(error = %e.operator_detail(), "SMS command failed");
            render(&BusyReply)
        }
        _ => render(&ErrorReply {
            message: e.zh(),
            hint,
        }),
    }
}

/// Renders a reply. The templates only format values already in hand, so this cannot really
/// fail; if it ever did, the subscriber still gets an answer.
pub(crate) fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        warn!(error = %e, "SMS reply template failed");
        "系统繁忙,请稍后再试。".to_owned()
    })
}

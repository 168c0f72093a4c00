//! The SMS command grammar of the 10086 business hall (SPEC §4): text in, [`Command`] out.
//!
//! Pure and total: [`parse`] does no I/O, never panics, and gives every input some `Command`
//! (anything it does not recognise is [`Command::Unknown`], answered with short help). Whether a
//! product or reward exists, whether the sender may use it, and what to reply are the
//! dispatcher's business, not the grammar's.
//!
//! The text is first normalised (see [`normalise`]): case, full-width characters, white space and
//! `#` do not matter, so `ｋｔｅｄｕ１０`, `kt edu10`, `KT#EDU10` and `KT EDU 10` are all
//! `KTEDU10`. A message longer than [`MAX_CHARS`] characters is `Unknown` without further reading.
//!
//! | command | accepted forms |
//! |---|---|
//! | [`Balance`](Command::Balance) | `CXYE`, `YE`, `余额` (also `查余额`, `查询余额`) |
//! | [`Bill`](Command::Bill) | `CXZD`, `ZD`, `话费`, `账单` (also with `查`/`查询` before the Chinese) |
//! | [`Plan`](Command::Plan) | `CXTC`, `套餐` (also `查套餐`, `查询套餐`) |
//! | [`Data`](Command::Data) | `CXLL`, `流量` (also `查流量`, `查询流量`) |
//! | [`Points`](Command::Points) | `CXJF`, `JF`, `积分` (also `查积分`, `查询积分`) |
//! | [`Menu`](Command::Menu) | `0000`, `00000` |
//! | [`Help`](Command::Help) | `BZ`, `HELP`, `?` (and full-width `？`), `帮助` |
//! | [`Confirm`](Command::Confirm) | `是`, `是的`, `确认`, `确定`, `Y`, `YES` |
//! | [`Subscribe`](Command::Subscribe) | `KT<code>`, `开通<code>`, `订购<code>` |
//! | [`Cancel`](Command::Cancel) | `QX<code>`, `TD<code>`, `取消<code>`, `退订<code>` |
//! | [`CancelByNumber`](Command::CancelByNumber) | the same four prefixes + item numbers: `TD1`, `TD1，3`, `TD 1, 3`, `TD1、3`, `TD1 3` |
//! | [`Redeem`](Command::Redeem) | `DH<reward>`, `兑换<reward>` |
//! | [`TopUp`](Command::TopUp) | `CZ<PIN>`, `充值<PIN>` (PIN may be typed in groups: `CZ 123456 123456 123456`) |
//!
//! Decisions where SPEC §4 leaves room:
//! * Product codes here must start with an ASCII letter (every catalogue code does: `EDU10`,
//!   `LL10`, `JTCL`, `DX5`), so a cancel prefix followed only by digits and separators is always
//!   a list of item numbers from the `0000` menu, never a code. Item numbers are 1–99 (leading
//!   zeros allowed: `TD01` is item 1), de-duplicated in first-seen order; list separators are
//!   `,` `，` `、` `;` `；` `/` and a space between digits (`TD1 3` is items 1 and 3, `TD13` is item 13).
//! * `QX` and the Chinese cancel words take item numbers too: SPEC makes `QX` and `TD` synonyms.
//! * Confirmation is deliberately narrow: a reply applies a charge, so only the unambiguous
//!   "yes" words above count; anything else (`好`, `OK`, `N`, `否`) is not a confirmation.
//! * A recognised prefix with a bad argument is [`Command::Malformed`], not `Unknown`, so the
//!   reply can say exactly what is wrong ("a PIN is 18 digits") rather than give generic help:
//!   `KT`, `KT!!`, `CZ123`, `TD0`. The PIN itself never appears in the error.
//! * A PIN may contain `-` between digit groups (printed that way on some cards); it is dropped.
//! * Reward codes are 2–16 ASCII letters/digits (`HF27`, `LL1G`, `BWB`), upper-cased.
//! * Empty text (nothing but white space and `#`) is [`Command::Empty`].

mod normalise;

pub use normalise::{normalise, MAX_CHARS};

use std::fmt;

use app::domain::ProductCode;

/// What one SMS to 10086 asks for. See the module doc for the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Balance: cash + gift balance and status.
    Balance,
    /// This month so far and last month's bill.
    Bill,
    /// Current plan, add-ons and pending change.
    Plan,
    /// Data used and remaining.
    Data,
    /// Points, and how many expire this year.
    Points,
    /// Subscribe to a product; the dispatcher asks for confirmation first.
    Subscribe(ProductCode),
    /// Cancel a product at the end of the month.
    Cancel(ProductCode),
    /// Cancel the add-ons listed under these numbers by the last `0000` menu (1–99, no
    /// duplicates, in the order the subscriber wrote them; never empty).
    CancelByNumber(Vec<u8>),
    /// Redeem points for a reward (code upper-cased); the dispatcher asks for confirmation first.
    Redeem(String),
    /// The numbered list of the subscriber's monthly add-ons.
    Menu,
    /// Top up with a recharge card PIN.
    TopUp(CardPin),
    /// "Yes" to the pending confirmation prompt.
    Confirm,
    /// The command list.
    Help,
    /// A known command with an argument that cannot be right.
    Malformed(Malformed),
    /// Nothing but white space and separators.
    Empty,
    /// Anything else (answered with short help).
    Unknown,
}

/// What was wrong with the argument of a recognised command prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// `KT`/`开通`/`订购` without a product code (2–16 letters/digits starting with a letter).
    SubscribeCode,
    /// `QX`/`TD`/`取消`/`退订` with neither a product code nor a list of item numbers.
    CancelTarget,
    /// A cancel-by-number list with an item outside 1–99 (`TD0`, `TD100`).
    ItemNumber,
    /// `DH`/`兑换` without a reward code (2–16 letters/digits).
    RewardCode,
    /// `CZ`/`充值` without an 18-digit PIN.
    CardPin,
}

/// An 18-digit recharge card PIN. It is worth money to whoever holds it, so `Debug` hides it
/// (commands end up in logs); read it with [`CardPin::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct CardPin(String);

impl CardPin {
    /// The number of digits in a PIN.
    pub const LEN: usize = 18;

    /// Exactly 18 ASCII digits, or nothing.
    pub fn parse(digits: &str) -> Option<Self> {
        (digits.len() == Self::LEN && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(digits.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardPin(******************)")
    }
}

/// Keywords that are a whole command on their own (compared after normalisation, spaces removed).
const KEYWORDS: &[(&str, Command)] = &[
    ("CXYE", Command::Balance),
    ("YE", Command::Balance),
    ("CXZD", Command::Bill),
    ("ZD", Command::Bill),
    ("CXTC", Command::Plan),
    ("CXLL", Command::Data),
    ("CXJF", Command::Points),
    ("JF", Command::Points),
    ("0000", Command::Menu),
    ("00000", Command::Menu),
    ("BZ", Command::Help),
    ("HELP", Command::Help),
    ("?", Command::Help),
    ("帮助", Command::Help),
    ("是", Command::Confirm),
    ("是的", Command::Confirm),
    ("确认", Command::Confirm),
    ("确定", Command::Confirm),
    ("Y", Command::Confirm),
    ("YES", Command::Confirm),
];

/// Chinese query words, which may also be preceded by `查` or `查询` ("check balance").
const QUERY_WORDS: &[(&str, Command)] = &[
    ("余额", Command::Balance),
    ("话费", Command::Bill),
    ("账单", Command::Bill),
    ("套餐", Command::Plan),
    ("流量", Command::Data),
    ("积分", Command::Points),
];

const SUBSCRIBE: &[&str] = &["KT", "开通", "订购"];
const CANCEL: &[&str] = &["QX", "TD", "取消", "退订"];
const REDEEM: &[&str] = &["DH", "兑换"];
const TOP_UP: &[&str] = &["CZ", "充值"];

/// Reads one SMS. Total: every input gives a `Command`, nothing panics.
pub fn parse(text: &str) -> Command {
    // Longer than any command: don't spend effort on it (and don't guess at a prefix of it).
    if text.chars().nth(MAX_CHARS).is_some() {
        return Command::Unknown;
    }
    let text = normalise(text);
    if text.is_empty() {
        return Command::Empty;
    }
    let compact = without_spaces(&text);
    if let Some(command) = keyword(&compact) {
        return command;
    }
    if let Some(arg) = strip_any(&text, SUBSCRIBE) {
        return product_code(arg).map_or(
            Command::Malformed(Malformed::SubscribeCode),
            Command::Subscribe,
        );
    }
    if let Some(arg) = strip_any(&text, CANCEL) {
        return cancel(arg);
    }
    if let Some(arg) = strip_any(&text, REDEEM) {
        return reward_code(arg).map_or(Command::Malformed(Malformed::RewardCode), Command::Redeem);
    }
    if let Some(arg) = strip_any(&text, TOP_UP) {
        let digits: String = arg.chars().filter(|&c| c != ' ' && c != '-').collect();
        return CardPin::parse(&digits)
            .map_or(Command::Malformed(Malformed::CardPin), Command::TopUp);
    }
    Command::Unknown
}

fn keyword(compact: &str) -> Option<Command> {
    let lookup = |table: &[(&str, Command)], word: &str| {
        table
            .iter()
            .find(|(k, _)| *k == word)
            .map(|(_, c)| c.clone())
    };
    lookup(KEYWORDS, compact).or_else(|| {
        let word = compact
            .strip_prefix("查询")
            .or_else(|| compact.strip_prefix('查'))
            .unwrap_or(compact);
        lookup(QUERY_WORDS, word)
    })
}

fn strip_any<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| text.strip_prefix(p))
}

fn without_spaces(s: &str) -> String {
    s.chars().filter(|&c| c != ' ').collect()
}

/// A catalogue code: what `ProductCode` accepts, and starting with a letter (see module doc).
fn product_code(arg: &str) -> Option<ProductCode> {
    let code = without_spaces(arg);
    if !code.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    ProductCode::parse(&code).ok()
}

fn reward_code(arg: &str) -> Option<String> {
    let code = without_spaces(arg);
    ((2..=16).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(code)
}

/// Characters that separate item numbers (after normalisation `，` is `,`, `、` is `,`, `；` is `;`).
fn is_list_separator(c: char) -> bool {
    matches!(c, ' ' | ',' | ';' | '/')
}

fn cancel(arg: &str) -> Command {
    let is_list = arg.chars().any(|c| c.is_ascii_digit())
        && arg
            .chars()
            .all(|c| c.is_ascii_digit() || is_list_separator(c));
    if is_list {
        return item_numbers(arg).map_or(
            Command::Malformed(Malformed::ItemNumber),
            Command::CancelByNumber,
        );
    }
    product_code(arg).map_or(Command::Malformed(Malformed::CancelTarget), Command::Cancel)
}

/// Digits and separators only (checked by the caller) → the numbers 1–99, de-duplicated in order.
fn item_numbers(arg: &str) -> Option<Vec<u8>> {
    let mut numbers = Vec::new();
    for item in arg.split(is_list_separator).filter(|s| !s.is_empty()) {
        // Strip zeros first so a long run of digits cannot overflow: at most two digits remain.
        let significant = item.trim_start_matches('0');
        if significant.is_empty() || significant.len() > 2 {
            return None;
        }
        let n: u8 = significant.parse().ok()?;
        if !numbers.contains(&n) {
            numbers.push(n);
        }
    }
    (!numbers.is_empty()).then_some(numbers)
}

#[cfg(test)]
mod tests;

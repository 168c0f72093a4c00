//! The grammar's acceptance: one table of every command, alias and normalisation case, and
//! property tests that no input panics it and that spelling variations don't change a command.

use proptest::prelude::*;

use super::*;

fn sub(code: &str) -> Command {
    Command::Subscribe(ProductCode::parse(code).unwrap())
}

fn cancel(code: &str) -> Command {
    Command::Cancel(ProductCode::parse(code).unwrap())
}

fn redeem(code: &str) -> Command {
    Command::Redeem(code.to_owned())
}

fn top_up(pin: &str) -> Command {
    Command::TopUp(CardPin::parse(pin).unwrap())
}

fn malformed(m: super::Malformed) -> Command {
    Command::Malformed(m)
}

const PIN: &str = "123456789012345678";

#[test]
fn every_command_alias_and_normalisation() {
    use super::Malformed as M;
    use Command::*;
    let long_spaces = format!("CXYE{}", " ".repeat(10_000));
    let long_junk = "余额".repeat(5_000);
    let just_long_enough = format!("CXYE{}", " ".repeat(MAX_CHARS - 4));
    let too_long = format!("CXYE{}", " ".repeat(MAX_CHARS - 3));
    let pin_grouped = "CZ 123456 789012 345678";
    let pin_dashed = "CZ123456-789012-345678";
    let pin_wide = "ＣＺ１２３４５６７８９０１２３４５６７８";
    let rows: Vec<(&str, Command)> = vec![
        // Balance
        ("CXYE", Balance),
        ("YE", Balance),
        ("余额", Balance),
        ("查余额", Balance),
        ("查询余额", Balance),
        ("cxye", Balance),
        ("Cxye", Balance),
        (" cxye ", Balance),
        ("ＣＸＹＥ", Balance),
        ("ｙｅ", Balance),
        ("\u{3000}余额\u{3000}", Balance),
        ("余 额", Balance),
        ("CX YE", Balance),
        ("#CXYE#", Balance),
        ("\tcxye\r\n", Balance),
        // Bill
        ("CXZD", Bill),
        ("ZD", Bill),
        ("话费", Bill),
        ("账单", Bill),
        ("查话费", Bill),
        ("查询话费", Bill),
        ("zd", Bill),
        // Plan
        ("CXTC", Plan),
        ("套餐", Plan),
        ("查询套餐", Plan),
        ("cxtc", Plan),
        // Data
        ("CXLL", Data),
        ("流量", Data),
        ("查流量", Data),
        ("ｃｘｌｌ", Data),
        // Points
        ("CXJF", Points),
        ("JF", Points),
        ("积分", Points),
        ("查积分", Points),
        ("jf", Points),
        // Menu
        ("0000", Menu),
        ("00000", Menu),
        ("００００", Menu),
        (" 0000 ", Menu),
        ("00 00", Menu),
        // Help
        ("BZ", Help),
        ("HELP", Help),
        ("help", Help),
        ("?", Help),
        ("？", Help),
        ("帮助", Help),
        ("bz", Help),
        // Confirm
        ("是", Confirm),
        ("是的", Confirm),
        ("确认", Confirm),
        ("确定", Confirm),
        ("Y", Confirm),
        ("y", Confirm),
        ("ｙ", Confirm),
        ("YES", Confirm),
        ("yes", Confirm),
        (" Y ", Confirm),
        // Subscribe
        ("KTEDU10", sub("EDU10")),
        ("ktedu10", sub("EDU10")),
        ("ｋｔｅｄｕ１０", sub("EDU10")),
        ("kt edu10", sub("EDU10")),
        ("KT#EDU10", sub("EDU10")),
        ("KT EDU 10", sub("EDU10")),
        ("KTEDU10#", sub("EDU10")),
        ("KT EDU1 0", sub("EDU10")),
        ("KTLL10", sub("LL10")),
        ("KTJTCL", sub("JTCL")),
        ("KTDX5", sub("DX5")),
        ("开通EDU10", sub("EDU10")),
        ("开通 edu10", sub("EDU10")),
        ("订购LL20", sub("LL20")),
        // Cancel by code
        ("QXEDU10", cancel("EDU10")),
        ("TDEDU10", cancel("EDU10")),
        ("qx edu10", cancel("EDU10")),
        ("td#jtcl", cancel("JTCL")),
        ("ＴＤＤＸ５", cancel("DX5")),
        ("取消EDU10", cancel("EDU10")),
        ("退订EDU10", cancel("EDU10")),
        // Cancel by number
        ("TD1", CancelByNumber(vec![1])),
        ("td1", CancelByNumber(vec![1])),
        ("TD1，3", CancelByNumber(vec![1, 3])),
        ("TD1,3", CancelByNumber(vec![1, 3])),
        ("TD 1,3", CancelByNumber(vec![1, 3])),
        ("TD 1, 3", CancelByNumber(vec![1, 3])),
        ("TD1、3", CancelByNumber(vec![1, 3])),
        ("TD1；3", CancelByNumber(vec![1, 3])),
        ("TD1/3", CancelByNumber(vec![1, 3])),
        ("TD1 3", CancelByNumber(vec![1, 3])),
        ("TD1#3", CancelByNumber(vec![1, 3])),
        ("TD13", CancelByNumber(vec![13])),
        ("TD３，1", CancelByNumber(vec![3, 1])),
        ("TD1,3,1,3", CancelByNumber(vec![1, 3])),
        ("TD1，，3，", CancelByNumber(vec![1, 3])),
        ("TD01", CancelByNumber(vec![1])),
        ("TD99", CancelByNumber(vec![99])),
        ("QX2", CancelByNumber(vec![2])),
        ("退订1、2", CancelByNumber(vec![1, 2])),
        ("取消 2", CancelByNumber(vec![2])),
        // Redeem
        ("DHHF27", redeem("HF27")),
        ("dhhf27", redeem("HF27")),
        ("DH HF 27", redeem("HF27")),
        ("DH#LL1G", redeem("LL1G")),
        ("DHBWB", redeem("BWB")),
        ("兑换HF5", redeem("HF5")),
        ("ＤＨｈｆ１０", redeem("HF10")),
        // Top-up
        ("CZ123456789012345678", top_up(PIN)),
        ("cz123456789012345678", top_up(PIN)),
        ("CZ#123456789012345678", top_up(PIN)),
        ("充值123456789012345678", top_up(PIN)),
        (pin_grouped, top_up(PIN)),
        (pin_dashed, top_up(PIN)),
        (pin_wide, top_up(PIN)),
        // A recognised prefix with a bad argument
        ("KT", malformed(M::SubscribeCode)),
        ("KT!!", malformed(M::SubscribeCode)),
        ("KT10", malformed(M::SubscribeCode)),
        ("KTEDU-10", malformed(M::SubscribeCode)),
        ("KTABCDEFGHIJKLMNOPQ", malformed(M::SubscribeCode)),
        ("开通", malformed(M::SubscribeCode)),
        ("开通校园网", malformed(M::SubscribeCode)),
        ("QX", malformed(M::CancelTarget)),
        ("TD", malformed(M::CancelTarget)),
        ("TD,", malformed(M::CancelTarget)),
        ("TD1A", malformed(M::CancelTarget)),
        ("退订", malformed(M::CancelTarget)),
        ("TD0", malformed(M::ItemNumber)),
        ("TD00", malformed(M::ItemNumber)),
        ("TD100", malformed(M::ItemNumber)),
        ("TD1,0", malformed(M::ItemNumber)),
        ("TD1,300", malformed(M::ItemNumber)),
        (
            "TD99999999999999999999999999999999999999",
            malformed(M::ItemNumber),
        ),
        ("DH", malformed(M::RewardCode)),
        ("DHX", malformed(M::RewardCode)),
        ("DHHF-27", malformed(M::RewardCode)),
        ("DHABCDEFGHIJKLMNOPQ", malformed(M::RewardCode)),
        ("兑换", malformed(M::RewardCode)),
        ("CZ", malformed(M::CardPin)),
        ("CZ123", malformed(M::CardPin)),
        ("CZ12345678901234567", malformed(M::CardPin)),
        ("CZ1234567890123456789", malformed(M::CardPin)),
        ("CZ12345678901234567X", malformed(M::CardPin)),
        ("充值100", malformed(M::CardPin)),
        // Nothing, or nothing we know
        ("", Empty),
        ("   ", Empty),
        ("\u{3000}#\t", Empty),
        ("\u{200B}", Empty),
        ("hello", Unknown),
        ("YE S", Confirm), // spaces never matter between letters: this is `YES`
        ("余额。", Unknown),
        ("CX", Unknown),
        ("N", Unknown),
        ("否", Unknown),
        ("OK", Unknown),
        ("000", Unknown),
        ("000000", Unknown),
        ("123456", Unknown),
        ("\u{0}", Unknown),
        ("CXYE\u{0}", Unknown),
        ("😀", Unknown),
        ("ß", Unknown),
        ("КТEDU10", Unknown), // Cyrillic К and Т look like K and T but are not
        (&just_long_enough, Balance),
        (&too_long, Unknown),
        (&long_spaces, Unknown),
        (&long_junk, Unknown),
    ];
    let mut failures = Vec::new();
    for (input, want) in &rows {
        let got = parse(input);
        if &got != want {
            let shown: String = input.chars().take(40).collect();
            failures.push(format!("{shown:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ten_kilobytes_is_unknown_and_quick() {
    let huge = "KTEDU10".repeat(1_500);
    assert!(huge.len() > 10_000);
    assert_eq!(parse(&huge), Command::Unknown);
}

#[test]
fn pin_is_hidden_from_debug() {
    let shown = format!("{:?}", parse(&format!("CZ{PIN}")));
    assert!(!shown.contains("123456"), "{shown}");
    assert_eq!(
        CardPin::parse(PIN).map(|p| p.expose().to_owned()),
        Some(PIN.to_owned())
    );
}

/// Characters an SMS may plausibly contain, weighted towards the interesting ones.
fn sms_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('0', '9'),
        4 => prop::char::range('A', 'Z'),
        2 => prop::char::range('a', 'z'),
        2 => prop::char::range('\u{FF01}', '\u{FF5E}'),
        2 => prop::sample::select(vec![
            ' ', '#', ',', '，', '、', ';', '；', '/', '-', '?', '？', '\u{3000}', '\t', '\n',
            '\u{0}', '\u{200B}', '\u{FEFF}', '\u{7F}',
        ]),
        1 => prop::sample::select(vec![
            '余', '额', '是', '查', '询', '开', '通', '取', '消', '退', '订', '兑', '换', '充',
            '值', '帮', '助', '😀', 'ß', 'İ', 'ﬀ', '\u{10FFFF}', '\u{E000}',
        ]),
        1 => any::<char>(),
    ]
}

/// Text that starts like a command and continues with anything.
fn command_like() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "KT", "QX", "TD", "DH", "CZ", "kt", "ｔｄ", "开通", "取消", "退订", "兑换", "充值", "0000",
        "CX", "查询", "",
    ]);
    (prefix, prop::collection::vec(sms_char(), 0..60))
        .prop_map(|(p, rest)| format!("{p}{}", rest.into_iter().collect::<String>()))
}

/// A canonical valid command and what it must parse to.
fn valid_command() -> impl Strategy<Value = (String, Command)> {
    let keyword = prop::sample::select(
        KEYWORDS
            .iter()
            .chain(QUERY_WORDS)
            .map(|(k, c)| (k.to_string(), c.clone()))
            .collect::<Vec<_>>(),
    );
    let code = "[A-Z][A-Z0-9]{1,15}";
    let subscribe = (prop::sample::select(SUBSCRIBE.to_vec()), code)
        .prop_map(|(p, c)| (format!("{p}{c}"), sub(&c)));
    let cancel_code = (prop::sample::select(CANCEL.to_vec()), code)
        .prop_map(|(p, c)| (format!("{p}{c}"), cancel(&c)));
    let cancel_numbers = (
        prop::sample::select(CANCEL.to_vec()),
        prop::collection::vec(1u8..=99, 1..6),
        prop::sample::select(vec![",", "，", "、", ";", "/", " "]),
    )
        .prop_map(|(p, ns, sep)| {
            let text = ns.iter().map(u8::to_string).collect::<Vec<_>>().join(sep);
            let mut want = Vec::new();
            for n in ns {
                if !want.contains(&n) {
                    want.push(n);
                }
            }
            (format!("{p}{text}"), Command::CancelByNumber(want))
        });
    let redeem_code = (prop::sample::select(REDEEM.to_vec()), "[A-Z0-9]{2,16}")
        .prop_map(|(p, c)| (format!("{p}{c}"), redeem(&c)));
    let top_up_pin = (prop::sample::select(TOP_UP.to_vec()), "[0-9]{18}")
        .prop_map(|(p, pin)| (format!("{p}{pin}"), top_up(&pin)));
    prop_oneof![
        keyword,
        subscribe,
        cancel_code,
        cancel_numbers,
        redeem_code,
        top_up_pin
    ]
}

/// `text` as a person might type it: each character in random case, randomly full-width,
/// with random separators around it — but never a new separator between two digits, which
/// would split an item number (`TD13` vs `TD1 3`).
fn vary(text: &str, seeds: &[u8]) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    let mut seeds = seeds.iter().copied().cycle();
    for c in text.chars() {
        let seed = seeds.next().unwrap_or(0);
        let between_digits = prev.is_some_and(|p| p.is_ascii_digit()) && c.is_ascii_digit();
        if !between_digits {
            out.push_str(["", "", " ", "#", "\u{3000}", "  ", "\t"][usize::from(seed % 7)]);
        }
        let mut v = if seed & 0x10 != 0 {
            c.to_ascii_lowercase()
        } else {
            c
        };
        if seed & 0x20 != 0 && ('!'..='~').contains(&v) {
            v = char::from_u32(u32::from(v) + 0xFEE0).unwrap_or(v);
        }
        out.push(v);
        prev = Some(c);
    }
    let seed = seeds.next().unwrap_or(0);
    out.push_str(["", " ", "#", "\u{3000}"][usize::from(seed % 4)]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_string_parses_without_panic(text in any::<String>()) {
        // Total: returns, and a short non-blank input never lands on `Empty` by accident.
        let command = parse(&text);
        if command == Command::Empty {
            prop_assert!(normalise(&text).is_empty());
        }
    }

    #[test]
    fn command_like_text_parses_without_panic(text in command_like()) {
        let command = parse(&text);
        // Whatever matched, the argument types kept their invariants.
        match command {
            Command::Subscribe(code) | Command::Cancel(code) => {
                prop_assert!(code.as_str().starts_with(|c: char| c.is_ascii_uppercase()));
            }
            Command::CancelByNumber(ns) => {
                prop_assert!(!ns.is_empty());
                prop_assert!(ns.iter().all(|n| (1..=99).contains(n)));
                let mut unique = ns.clone();
                unique.sort_unstable();
                unique.dedup();
                prop_assert_eq!(unique.len(), ns.len());
            }
            Command::Redeem(code) => {
                prop_assert!((2..=16).contains(&code.len()));
                prop_assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            }
            Command::TopUp(pin) => {
                prop_assert_eq!(pin.expose().len(), 18);
                prop_assert!(pin.expose().bytes().all(|b| b.is_ascii_digit()));
            }
            _ => {}
        }
    }

    #[test]
    fn normalise_is_idempotent(text in any::<String>()) {
        let once = normalise(&text);
        prop_assert_eq!(normalise(&once), once);
    }

    #[test]
    fn normalise_is_idempotent_on_command_like_text(text in command_like()) {
        let once = normalise(&text);
        prop_assert_eq!(normalise(&once), once);
    }

    #[test]
    fn spelling_variations_do_not_change_a_command(
        (text, want) in valid_command(),
        seeds in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        prop_assert_eq!(&parse(&text), &want, "canonical {:?}", text);
        let varied = vary(&text, &seeds);
        prop_assert_eq!(parse(&varied), want, "varied {:?}", varied);
    }
}

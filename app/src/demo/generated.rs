//! Generated subscribers for load tests (`server seed --subscribers N`): numbers 152xxxxxxxx,
//! plausible names and ID numbers, a plan of their brand and an opening balance that is a real
//! ledger entry. Written in multi-row batches, since one transaction per subscriber would take
//! far longer for 100,000. They all share one service password, `GENERATED_PASSWORD`, hashed
//! once.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Row;

use crate::domain::{Brand, Msisdn, Status, Tier};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::passwords;

pub const GENERATED_PASSWORD: &str = "802468";
const FIRST: u64 = 152_0000_0000;
const LAST: u64 = 152_9999_9999;
const BATCH: usize = 400;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "文", "晨", "宇", "欣怡", "子涵", "浩然",
    "思远",
];
const PLANS: &[(Brand, &[&str])] = &[
    (Brand::GoTone, &["GT58", "GT88", "GT128", "GT188"]),
    (Brand::MZone, &["DG18", "DG38"]),
    (Brand::Easyown, &["SZX8", "SZX19"]),
];

/// The ISO 7064 MOD 11-2 check character of a mainland ID number.
fn id_check(first17: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

fn id_number(rng: &mut StdRng) -> String {
    let body = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        [110101, 310104, 320102, 440106, 510107, 330106][rng.gen_range(0..6)],
        rng.gen_range(1960..2006),
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
        rng.gen_range(0..1000)
    );
    let check = id_check(&body);
    format!("{body}{check}")
}

/// Adds `count` generated subscribers after any generated before; calls `progress` with the
/// number done so far.
pub async fn seed_generated(hall: &Hall, count: u64, mut progress: impl FnMut(u64)) -> Result<()> {
    let highest: Option<String> =
        sqlx::query("SELECT MAX(msisdn) FROM subscribers WHERE msisdn >= $1 AND msisdn <= $2")
            .bind(FIRST.to_string())
            .bind(LAST.to_string())
            .fetch_one(hall.db().pool())
            .await?
            .try_get(0)?;
    let start = highest
        .and_then(|h| h.parse::<u64>().ok())
        .map_or(FIRST, |h| h + 1);
    if start + count > LAST + 1 {
        return Err(Error::Storage(format!(
            "only {} generated numbers are left",
            LAST + 1 - start
        )));
    }
    let hash = passwords::hash(GENERATED_PASSWORD)?;
    let mut rng = StdRng::seed_from_u64(start);
    let now = hall.now_ms();
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(BATCH as u64);
        let mut subs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let msisdn =
                Msisdn::parse(&(start + done + i).to_string()).expect("152 numbers are valid");
            let (brand, plans) = PLANS[rng.gen_range(0..PLANS.len())];
            let name = format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            );
            let cash = rng.gen_range(0..30_000i64);
            subs.push((
                msisdn,
                name,
                id_number(&mut rng),
                brand,
                plans[rng.gen_range(0..plans.len())],
                cash,
            ));
        }
        insert_batch(hall, &subs, &hash, now).await?;
        done += n;
        progress(done);
    }
    Ok(())
}

type Generated = (Msisdn, String, String, Brand, &'static str, i64);

async fn insert_batch(hall: &Hall, subs: &[Generated], hash: &str, now: i64) -> Result<()> {
    let mut tx = hall.db().begin().await?;
    let rows = |cols: usize| -> String {
        (0..subs.len())
            .map(|r| {
                format!(
                    "({})",
                    (1..=cols)
                        .map(|c| format!("${}", r * cols + c))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "INSERT INTO subscribers (msisdn, name, id_card, brand, status, tier, plan_code, password_hash, \
         must_change_password, created_at) VALUES {}",
        rows(10)
    );
    let mut q = sqlx::query(&sql);
    for (m, name, id, brand, plan, _) in subs {
        q = q
            .bind(m.as_str())
            .bind(name)
            .bind(id)
            .bind(brand.as_str())
            .bind(Status::Active.as_str())
            .bind(Tier::Standard.as_str())
            .bind(*plan)
            .bind(hash)
            .bind(0i64)
            .bind(now);
    }
    q.execute(&mut *tx).await?;
    let sql = format!("INSERT INTO accounts (msisdn, cash) VALUES {}", rows(2));
    let mut q = sqlx::query(&sql);
    for (m, .., cash) in subs {
        q = q.bind(m.as_str()).bind(*cash);
    }
    q.execute(&mut *tx).await?;
    // The opening balance is a ledger entry like any other: the account stays the ledger's sum.
    let sql = format!(
        "INSERT INTO ledger (msisdn, cash_delta, gift_delta, reason, memo, reference, created_at) VALUES {}",
        rows(7)
    );
    let mut q = sqlx::query(&sql);
    for (m, .., cash) in subs {
        q = q
            .bind(m.as_str())
            .bind(*cash)
            .bind(0i64)
            .bind("adjustment")
            .bind("开户预存")
            .bind(format!("open:{}", m.as_str()))
            .bind(now);
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_carry_a_valid_check_character() {
        // A published example: 11010519491231002X.
        assert_eq!(id_check("11010519491231002"), 'X');
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let id = id_number(&mut rng);
            assert_eq!(id.len(), 18);
            assert_eq!(id.chars().last(), Some(id_check(&id[..17])));
        }
    }
}

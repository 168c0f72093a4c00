//! Demo data: the fixed subscribers, staff and cards of SPEC §8 with a year of history
//! (`fixed`), and generated subscribers in bulk for load tests (`generated`).
mod fixed;
mod generated;
mod history;

pub use fixed::{
    demo_cards, seed_demo, DemoStaff, DemoSubscriber, STAFF, SUBSCRIBERS, TOTP_SECRET,
};
pub use generated::{seed_generated, GENERATED_PASSWORD};
pub use history::UsageProfile;

use crate::domain::Fen;
use crate::error::Result;
use crate::hall::Hall;
use crate::service::cards::IssuedCard;

/// True when the database has no subscribers at all (the run command seeds only then).
pub async fn is_empty(hall: &Hall) -> Result<bool> {
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM subscribers")
        .fetch_one(hall.db().pool())
        .await?
        .try_get(0)?;
    Ok(n == 0)
}

/// Prints a fresh batch of recharge cards of every face value, for people trying the demo.
pub async fn print_cards(hall: &Hall, count: usize) -> Result<Vec<IssuedCard>> {
    let batch = format!("SEED-{}", hall.now().format("%Y%m%d%H%M%S"));
    let values = [10, 20, 30, 50, 100];
    let mut cards = Vec::new();
    for (i, v) in values.iter().cycle().take(count).enumerate() {
        let mut c = hall
            .issue_cards(&format!("{batch}-{i}"), 1, Fen::yuan(*v))
            .await?;
        cards.append(&mut c);
    }
    Ok(cards)
}

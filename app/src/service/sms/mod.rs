//! The SMS channel's side of the service layer: the MO inbox (persisted before the SMSC is
//! answered, deduplicated against redelivery), the per-number command limit, the one polite
//! refusal for non-subscribers, and the outbox as the gateway drains it (claim, sent, retry,
//! delivery receipts), and the round that writes a gateway's share of all of these at once.
//! Several gateways may share one database: claims are conditional updates.
pub mod inbox;
pub mod outbox;
pub mod round;

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::Msisdn;
use crate::error::Result;
use crate::hall::Hall;
use crate::store::db::{placeholders, runs};
use crate::store::reads::Read;
use crate::store::RateDecision;

pub use inbox::{OnArrival, Replies};
pub use round::{SmsRound, SmsRoundDone};

/// A redelivery of the same text from the same number within this window is the same MO.
/// SMPP 3.4 gives an MO no id of its own, so content and time are all there is to go on;
/// the window is far shorter than a person needs to read a reply and answer it.
pub const DEDUPE_WINDOW_MS: i64 = 20_000;
/// SPEC §4: 30 commands in 10 minutes per number.
pub const COMMAND_LIMIT: (i64, i64) = (10 * 60_000, 30);
/// A claimed message not finished within this time is taken over by another worker.
pub const CLAIM_TIMEOUT_MS: i64 = 60_000;
/// What a sent code SMS reads as in the outbox afterwards.
pub const SENT_CODE_PLACEHOLDER: &str = "【验证码短信,已发送,内容不留存】";
/// Retries of an MT before it is given up as failed, with back-off between them.
pub(crate) const MAX_ATTEMPTS: i64 = 8;

#[derive(Clone, Debug, Serialize)]
pub struct InboxMo {
    pub id: i64,
    pub source: String,
    pub destination: String,
    pub body: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What the per-number limit says about one more command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandAllowance {
    Allowed,
    /// Over the limit: answer "too frequent" this once…
    TooFrequent,
    /// …and nothing after that until the window has room again.
    Silent,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutboundSms {
    pub id: i64,
    pub msisdn: String,
    pub kind: String,
    pub body: String,
    pub attempts: i64,
}

pub(crate) fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Hall {
    /// Runs an update of the rows `ids` in one transaction, a chunk of ids a statement:
    /// `statement` gets the IN list's placeholders (`$1, $2, …`).
    async fn update_by_ids(&self, ids: &[i64], statement: impl Fn(&str) -> String) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.db().begin_write().await?;
        for chunk in runs(ids) {
            let sql = statement(&placeholders(1, chunk.len(), 1));
            let mut q = Read::with_capacity(self.db().batch_sql(&sql).into_owned(), chunk.len());
            for id in chunk {
                q = q.int(*id);
            }
            tx.execute(q).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts one command against the number's limit.
    pub async fn command_allowance(&self, msisdn: &Msisdn) -> Result<CommandAllowance> {
        let now = self.now_ms();
        match self
            .eph()
            .rate_hit(
                &format!("smscmd:{}", msisdn.as_str()),
                now,
                &[COMMAND_LIMIT],
            )
            .await?
        {
            RateDecision::Allowed => Ok(CommandAllowance::Allowed),
            RateDecision::Limited { retry_after_ms } => {
                let ttl = Duration::from_millis(retry_after_ms.max(1) as u64);
                let n = self
                    .eph()
                    .incr(&format!("smscmd:told:{}", msisdn.as_str()), ttl)
                    .await?;
                Ok(if n == 1 {
                    CommandAllowance::TooFrequent
                } else {
                    CommandAllowance::Silent
                })
            }
        }
    }

    /// Whether a sender that is not a subscriber should get the polite refusal: once a day.
    pub async fn refuse_stranger_once(&self, source: &str) -> Result<bool> {
        let day = Duration::from_secs(24 * 3600);
        Ok(self.eph().incr(&format!("stranger:{source}"), day).await? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;
    use chrono::Duration as D;

    #[tokio::test]
    async fn thirty_commands_then_one_warning_then_silence() {
        let t = TestHall::empty().await;
        let m = Msisdn::parse("13800138000").unwrap();
        for _ in 0..30 {
            assert_eq!(
                t.command_allowance(&m).await.unwrap(),
                CommandAllowance::Allowed
            );
        }
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::TooFrequent
        );
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::Silent
        );
        t.clock.advance(D::minutes(10));
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::Allowed
        );
    }

    #[tokio::test]
    async fn strangers_are_refused_once() {
        let t = TestHall::empty().await;
        assert!(t.refuse_stranger_once("13999999999").await.unwrap());
        assert!(!t.refuse_stranger_once("13999999999").await.unwrap());
    }
}

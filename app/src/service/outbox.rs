//! Notifications: SMS the hall must send, queued in the same transaction as the change they
//! report, and drained by the gateway.
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::Msisdn;
use crate::error::Result;
use crate::hall::Hall;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SmsKind {
    /// A sign-in, second-factor or confirmation code.
    Code,
    /// A 二次确认 prompt.
    Prompt,
    /// The answer to an SMS command.
    Reply,
    TopUp,
    Subscription,
    BillAlert,
    Impersonation,
    Account,
}

impl SmsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Code => "code",
            SmsKind::Prompt => "prompt",
            SmsKind::Reply => "reply",
            SmsKind::TopUp => "topup",
            SmsKind::Subscription => "subscription",
            SmsKind::BillAlert => "bill_alert",
            SmsKind::Impersonation => "impersonation",
            SmsKind::Account => "account",
        }
    }
}

pub(crate) async fn queue(
    conn: &mut AnyConnection,
    now_ms: i64,
    to: &Msisdn,
    kind: SmsKind,
    body: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO outbox (msisdn, kind, body, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(to.as_str())
        .bind(kind.as_str())
        .bind(body)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub msisdn: String,
    pub kind: String,
    pub body: String,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Hall {
    /// The newest messages queued for a number, newest first (the handset page, tests).
    pub async fn outbox_for(&self, msisdn: &Msisdn, limit: i64) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT id, msisdn, kind, body, status, created_at FROM outbox WHERE msisdn = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(msisdn.as_str())
        .bind(limit)
        .fetch_all(self.db().pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxMessage {
                    id: r.try_get(0)?,
                    msisdn: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    body: r.try_get(3)?,
                    status: r.try_get(4)?,
                    created_at: from_millis(r.try_get(5)?),
                })
            })
            .collect()
    }
}

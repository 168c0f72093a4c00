//! `Hall`: the one service layer. Web pages, SMS commands and the staff console all call
//! methods on it; each capability adds its methods in its own file under `service/`.
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Settings};
use crate::error::Result;
use crate::service::payment::{PaymentProvider, SimulatedProvider};
use crate::store::{Db, Ephemeral, MemoryStore, RedisStore};

#[derive(Clone)]
pub struct Hall {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    eph: Arc<dyn Ephemeral>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// Where online top-ups are paid: the simulated provider (SPEC §2); a real one would
    /// implement the same trait.
    payments: Arc<dyn PaymentProvider>,
    /// Whether a change confirms itself by SMS. Off in the view the SMS channel uses, whose
    /// reply to the command already says what was done: one SMS per change, not two.
    change_notices: bool,
    /// Numbers known to be subscribers (numbers are never deleted, so a yes stays true).
    known: Arc<crate::service::subscribers::KnownSubscribers>,
    /// Balance queries asked together, read together.
    balance_reads: Arc<BalanceReads>,
    /// Months' usage records lately rated (see `service::month_events`).
    month_events: Arc<crate::service::month_events::MonthEvents>,
}

type BalanceReads =
    crate::store::coalesce::Coalescer<(crate::service::ledger::Balance, crate::domain::Status)>;

impl Hall {
    pub fn new(db: Db, eph: Arc<dyn Ephemeral>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                eph,
                clock,
                settings,
                payments: Arc::new(SimulatedProvider::new()),
                change_notices: true,
                known: Arc::default(),
                balance_reads: Arc::default(),
                month_events: Arc::default(),
            }),
        }
    }

    /// Connects the stores named by the configuration and brings the schema up to date.
    pub async fn from_config(cfg: &Config) -> Result<Self> {
        let db = Db::connect_with(&cfg.database_url, cfg.db_connections).await?;
        db.migrate().await?;
        let eph: Arc<dyn Ephemeral> = match &cfg.redis_url {
            Some(url) => Arc::new(RedisStore::connect(url, &cfg.redis_prefix).await?),
            None => Arc::new(MemoryStore::new()),
        };
        Ok(Self::new(
            db,
            eph,
            Arc::new(SystemClock),
            cfg.settings.clone(),
        ))
    }

    /// The same stores seen through another clock: the demo seeder replays a year of history
    /// through the real service functions this way.
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Hall {
        let i = &self.inner;
        Hall {
            inner: Arc::new(Inner {
                db: i.db.clone(),
                eph: i.eph.clone(),
                clock,
                settings: i.settings.clone(),
                payments: i.payments.clone(),
                change_notices: i.change_notices,
                known: i.known.clone(),
                balance_reads: i.balance_reads.clone(),
                month_events: i.month_events.clone(),
            }),
        }
    }

    /// The view of the hall for a channel that answers each change itself (the SMS business
    /// hall replies to `是`, `QX…`, `CZ…`): changes made through it queue no separate notice.
    pub fn answering_by_sms(&self) -> Hall {
        let i = &self.inner;
        Hall {
            inner: Arc::new(Inner {
                db: i.db.clone(),
                eph: i.eph.clone(),
                clock: i.clock.clone(),
                settings: i.settings.clone(),
                payments: i.payments.clone(),
                change_notices: false,
                known: i.known.clone(),
                balance_reads: i.balance_reads.clone(),
                month_events: i.month_events.clone(),
            }),
        }
    }

    pub(crate) fn balance_reads(&self) -> &Arc<BalanceReads> {
        &self.inner.balance_reads
    }

    pub(crate) fn month_events(&self) -> &crate::service::month_events::MonthEvents {
        &self.inner.month_events
    }

    pub(crate) fn known_subscribers(&self) -> &crate::service::subscribers::KnownSubscribers {
        &self.inner.known
    }

    pub(crate) fn change_notices(&self) -> bool {
        self.inner.change_notices
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn eph(&self) -> &dyn Ephemeral {
        self.inner.eph.as_ref()
    }

    pub fn payments(&self) -> &dyn PaymentProvider {
        self.inner.payments.as_ref()
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

impl Hall {
    /// A cheap round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.db().pool()).await?;
        Ok(())
    }
}

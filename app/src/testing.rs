//! Test support: every test gets its own database — a fresh SQLite file, or a fresh PostgreSQL
//! database when `DATABASE_URL` is `postgres://…` — and its own Redis key prefix when
//! `REDIS_URL` is set, so tests run in parallel against either configuration.
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::clock::ManualClock;
use crate::config::Settings;
use crate::hall::Hall;
use crate::store::{Db, Ephemeral, MemoryStore, RedisStore};

pub struct TestHall {
    pub hall: Hall,
    pub clock: ManualClock,
    _db: TestDbGuard,
}

/// Removes the test's database when the test ends: the SQLite folder, or the PostgreSQL
/// database (dropped from a thread of its own, since the test's runtime may be shutting down).
pub struct TestDbGuard {
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestDbGuard {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = Db::connect_with(&admin_url, Some(1)).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(admin.pool())
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

impl std::ops::Deref for TestHall {
    type Target = Hall;
    fn deref(&self) -> &Hall {
        &self.hall
    }
}

/// A fixed, ordinary moment: the middle of a month, mid-morning in Shanghai.
pub fn default_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 15, 2, 0, 0).unwrap()
}

fn unique_name() -> String {
    format!("oh_t_{}", uuid::Uuid::new_v4().simple())
}

/// Where the tests' databases live: `DATABASE_URL` if it names PostgreSQL, else SQLite files.
pub fn test_database_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A fresh, empty database of the configured kind (not yet migrated), as a URL that other
/// processes can open, and the guard that removes it.
pub async fn fresh_database_url() -> (String, TestDbGuard) {
    let name = unique_name();
    match test_database_url() {
        Some(admin_url) => {
            let admin = Db::connect_with(&admin_url, Some(1))
                .await
                .expect("connect to PostgreSQL for tests");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await
                .expect("create test database");
            admin.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            (
                format!("{base}/{name}"),
                TestDbGuard {
                    _dir: None,
                    pg: Some((admin_url, name)),
                },
            )
        }
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!(
                "sqlite://{}",
                dir.path().join(format!("{name}.db")).display()
            );
            (
                url,
                TestDbGuard {
                    _dir: Some(dir),
                    pg: None,
                },
            )
        }
    }
}

/// A fresh, empty, migrated database of the configured kind, and the guard that removes it.
pub async fn fresh_db() -> (Db, TestDbGuard) {
    let (url, guard) = fresh_database_url().await;
    let db = Db::connect_with(&url, Some(10))
        .await
        .expect("open the test database");
    db.migrate().await.expect("migrate");
    (db, guard)
}

/// The short-lived store of the configured kind: Redis (with a unique prefix) when `REDIS_URL`
/// is set, else in process.
pub async fn fresh_ephemeral() -> Arc<dyn Ephemeral> {
    match std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => Arc::new(
            RedisStore::connect(&url, &format!("{}:", unique_name()))
                .await
                .expect("connect to Redis for tests"),
        ),
        None => Arc::new(MemoryStore::new()),
    }
}

impl TestHall {
    /// An empty hall (schema only) with the clock at [`default_now`].
    pub async fn empty() -> Self {
        Self::empty_with(Settings::default()).await
    }

    pub async fn empty_with(settings: Settings) -> Self {
        let (db, guard) = fresh_db().await;
        let clock = ManualClock::at(default_now());
        let hall = Hall::new(
            db,
            fresh_ephemeral().await,
            Arc::new(clock.clone()),
            settings,
        );
        Self {
            hall,
            clock,
            _db: guard,
        }
    }
}

/// A 全球通 GT88 subscriber named 测试用户 with initial password 902468 (not yet changed).
pub fn new_subscriber(
    msisdn: &crate::domain::Msisdn,
) -> crate::service::subscribers::NewSubscriber {
    crate::service::subscribers::NewSubscriber {
        msisdn: msisdn.clone(),
        name: "测试用户".into(),
        id_card: "320102199001011234".into(),
        brand: crate::domain::Brand::GoTone,
        plan: crate::domain::ProductCode::parse("GT88").unwrap(),
        initial_password: "902468".into(),
        password_changed: false,
        tier: crate::domain::Tier::Standard,
    }
}

impl TestHall {
    /// Registers a subscriber (see [`new_subscriber`]) whose password is already changed, with
    /// `cash` fen of balance credited through the ledger.
    pub async fn subscriber(&self, msisdn: &str, cash: i64) -> crate::domain::Msisdn {
        let m = crate::domain::Msisdn::parse(msisdn).expect("test msisdn");
        let mut s = new_subscriber(&m);
        s.password_changed = true;
        self.hall.register_subscriber(s).await.expect("register");
        if cash != 0 {
            self.hall
                .adjust_balance(&m, crate::domain::Fen::new(cash), "测试预存")
                .await
                .expect("credit");
        }
        m
    }
}

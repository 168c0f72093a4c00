//! The `server` binary as an operator uses it: migrate, seed, close-month and serve, on the
//! configured database (a fresh SQLite file, or a fresh PostgreSQL database under
//! `bin/test --production`).
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use openhall_tests::{binary, free_port, http_get};

fn server(db: &str, args: &[&str]) -> Output {
    Command::new(binary("server"))
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("REDIS_URL")
        .env_remove("OPENHALL_DEMO")
        .output()
        .expect("run server")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn migrate_seed_and_close_a_month() {
    let (db, _guard) = app::testing::fresh_database_url().await;
    let o = server(&db, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("schema up to date"));

    let o = server(&db, &["seed", "--subscribers", "50"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("demo data created"), "{out}");
    assert!(out.contains("50 generated subscribers"), "{out}");
    // Ten fresh recharge cards with 17-digit serials and 18-digit PINs.
    let cards: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" / "))
        .collect();
    assert_eq!(cards.len(), 10, "{out}");
    assert!(cards.iter().all(|l| {
        let f: Vec<&str> = l.split(" / ").map(str::trim).collect();
        f.len() == 3 && f[0].len() == 17 && f[1].len() == 18
    }));

    let o = server(&db, &["seed"]);
    assert!(
        text(&o).contains("demo data already present"),
        "{}",
        text(&o)
    );

    // The seed closed last month already: closing it again bills nobody twice.
    let hall = app::Hall::from_config(&app::config::Config {
        database_url: db.clone(),
        ..test_config()
    })
    .await
    .unwrap();
    let last = app::domain::Period::containing(hall.now()).prev();
    let o = server(&db, &["close-month", &last.to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("closed {last}: 0 bills created")),
        "{}",
        text(&o)
    );

    let this = app::domain::Period::containing(hall.now());
    let o = server(&db, &["close-month", &this.to_string()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("has not ended"), "{}", text(&o));
    let o = server(&db, &["close-month", "2026-13"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("Not a valid month"), "{}", text(&o));
}

fn test_config() -> app::config::Config {
    app::config::Config::from_lookup(|_| None).expect("defaults")
}

#[tokio::test]
async fn serve_seeds_an_empty_database_and_answers_health_checks() {
    let (db, _guard) = app::testing::fresh_database_url().await;
    let port = free_port();
    let child = Command::new(binary("server"))
        .env("DATABASE_URL", &db)
        .env("OPENHALL_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("OPENHALL_DEMO", "1")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let _serving = Serving(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        match http_get(port, "/healthz") {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("server never answered: {e}"),
        }
    };
    assert_eq!(health, (200, "ok".to_string()));
    assert_eq!(http_get(port, "/readyz").unwrap().0, 200);
    // OPENHALL_DEMO=1 seeded the empty database.
    let hall = app::Hall::from_config(&app::config::Config {
        database_url: db.clone(),
        ..test_config()
    })
    .await
    .unwrap();
    let demo = app::domain::Msisdn::parse("13800138000").unwrap();
    assert!(hall.is_subscriber(&demo).await.unwrap());
}

#[test]
fn bad_configuration_is_refused_plainly() {
    let o = server("mysql://root@localhost/x", &["migrate"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("DATABASE_URL must be sqlite://"),
        "{}",
        text(&o)
    );
    let o = Command::new(binary("server"))
        .arg("migrate")
        .env("OPENHALL_CODE_TTL_SECS", "soon")
        .output()
        .expect("run server");
    assert!(!o.status.success());
    assert!(text(&o).contains("OPENHALL_CODE_TTL_SECS"), "{}", text(&o));
}

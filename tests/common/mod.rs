//! Shared by the tests that run the `roster` binary: the database a spawned process should
//! use. SQLite by default; a fresh PostgreSQL database when `ROSTER_TEST_DATABASE_URL` is set,
//! so that these tests, too, run on both backends.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use sqlx::{ConnectOptions, Executor};
use tempfile::TempDir;

pub struct TestDatabase {
    args: Vec<String>,
    postgres: Option<(String, String)>,
    _dir: TempDir,
}

/// Runs `f` on a runtime of its own, from sync or async tests alike.
fn on_runtime<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("database setup");
}

async fn admin(base: &str) -> sqlx::PgConnection {
    let options: sqlx::postgres::PgConnectOptions =
        base.parse().expect("valid ROSTER_TEST_DATABASE_URL");
    options.connect().await.expect("connect to PostgreSQL")
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("ROSTER_TEST_DATABASE_URL") {
            Err(_) => TestDatabase {
                args: vec![
                    "--database".into(),
                    dir.path().join("roster.db").display().to_string(),
                ],
                postgres: None,
                _dir: dir,
            },
            Ok(base) => {
                let name = format!("roster_mp_{}", uuid::Uuid::new_v4().simple());
                let (b, n) = (base.clone(), name.clone());
                on_runtime(async move {
                    admin(&b)
                        .await
                        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                        .await
                        .expect("create database");
                });
                let mut url = url::Url::parse(&base).expect("ROSTER_TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                TestDatabase {
                    args: vec!["--database-url".into(), url.to_string()],
                    postgres: Some((base, name)),
                    _dir: dir,
                }
            }
        }
    }

    /// The arguments that point a `roster` command at this database.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, name)) = self.postgres.take() {
            on_runtime(async move {
                let _ = admin(&base)
                    .await
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            });
        }
    }
}

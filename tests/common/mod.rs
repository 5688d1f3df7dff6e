//! Fresh, real databases for tests: a SQLite file in a temporary directory, or a new database
//! on the PostgreSQL server named by `FOLLOWFUND_TEST_POSTGRES` (default: local, user postgres).
#![allow(dead_code)]

pub mod graphql;

use chrono::Utc;
use followfund::store::{Actor, NewEvent, Store, StoreOptions};
use serde_json::json;
use uuid::Uuid;

/// The server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("FOLLOWFUND_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that lives as long as the test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

impl Drop for TestDb {
    /// Drops a PostgreSQL test database, on a thread of its own because `drop` cannot await.
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        });
        let _ = dropping.join();
    }
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            postgres_name: None,
        }
    }

    /// A new, empty database on the test server. Fails loudly when no server answers: a
    /// PostgreSQL suite that silently skips proves nothing.
    pub async fn postgres() -> TestDb {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!(
                "\n\n*** No PostgreSQL server answered at {admin}: {error}.\n*** The PostgreSQL conformance suite cannot run.\n\
                 *** Start one (bash .ci/run does), or point FOLLOWFUND_TEST_POSTGRES at one.\n\n"
            )
        });
        let name = format!("followfund_test_{}", Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("creating a test database");
        let (base, _) = admin
            .rsplit_once('/')
            .expect("a database URL ends in /NAME");
        TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            postgres_name: Some(name),
        }
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url, StoreOptions::default())
            .await
            .expect("opening the test store")
    }
}

/// A valid event in `stream`.
pub fn event(stream: &str) -> NewEvent {
    event_with_id(stream, Uuid::now_v7())
}

/// A valid event in `stream` with a chosen id.
pub fn event_with_id(stream: &str, event_id: Uuid) -> NewEvent {
    let data = json!({
        "referral_id": Uuid::now_v7(),
        "person_id": Uuid::now_v7(),
        "source": "self_referral",
        "referrer": null,
        "link_worker_organisation": "RX1LW",
        "reasons": ["loneliness"],
        "age_band": "65-74",
        "conditions": [],
    });
    NewEvent::from_parts(
        event_id,
        stream.into(),
        "referral.received",
        1,
        data,
        actor(),
        Utc::now(),
    )
    .expect("a valid test event")
}

pub fn actor() -> Actor {
    Actor {
        organisation: "RX1LW".into(),
        role: "anchor".into(),
        user: Some("lw-7".into()),
    }
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestDb::postgres().await).await
                }
            )*
        }
    };
}

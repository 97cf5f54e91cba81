//! The shared store stories (`vitals_store::conformance`) against the real PostgreSQL on
//! loopback (`VITALS_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`): every
//! story gets a database of its own, dropped when the story ends.

use std::sync::atomic::{AtomicU32, Ordering};
use vitals_store_postgres::PgStore;

fn admin_url() -> String {
    std::env::var("VITALS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Drops the story's database when the story ends (also when it fails).
pub struct TempDb {
    name: String,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A fresh runtime on a fresh thread: this runs inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url()).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn fresh() -> (PgStore, TempDb) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vitals_conf_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (set VITALS_TEST_PG to another server)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let guard = TempDb { name: name.clone() };
    let base = admin_url();
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 => {
            let query = base[i..].find('?').map(|q| &base[i + q..]).unwrap_or("");
            format!("{}/{name}{query}", &base[..i])
        }
        _ => format!("{base}/{name}"),
    };
    let store = PgStore::connect(&url).await.expect("connect the store");
    (store, guard)
}

vitals_store::conformance_tests!(fresh);

//! The store factory: `[server] store` (a data URL) → a backend.
//!
//! - `sqlite://PATH` — the embedded default (`sqlite://./data/vitals.db`,
//!   `sqlite:///var/lib/vitals/vitals.db`); without `store`, `vitals.db` in `data_dir`.
//! - `postgres://user:${PASSWORD}@host:5432/db?sslmode=require` (or `postgresql://`) — shared by
//!   replicas; see docs/high-availability.md.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vitals_store::Store;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    /// The URL as written (`${ENV}` expanded by the store when it connects).
    Postgres(String),
}

impl StoreUrl {
    /// Parses a data URL; `None` is the default SQLite file in `data_dir`.
    pub fn parse(url: Option<&str>, data_dir: &Path) -> Result<StoreUrl> {
        let Some(url) = url else {
            return Ok(StoreUrl::Sqlite(
                data_dir.join(vitals_store_sqlite::DB_FILE),
            ));
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                anyhow::bail!("store {url:?}: a sqlite:// URL needs a file path, e.g. sqlite://./data/vitals.db");
            }
            Ok(StoreUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(url.to_string()))
        } else {
            anyhow::bail!(
                "store {:?}: not a data URL Vitals knows; use sqlite://PATH or postgres://user@host/db",
                vitals_store_postgres::redact(url)
            )
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreUrl::Postgres(u) => vitals_store_postgres::redact(u),
        }
    }
}

/// An open store and the name its delivery worker claims notifications under.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    /// SQLite: one process per file, so a fixed name (a restart takes its claims back at
    /// once). PostgreSQL: this process among the replicas (host and pid).
    pub claim_owner: String,
    pub url: StoreUrl,
    /// PostgreSQL: the replicas' coordination (every process on it is a replica).
    pub cluster: Option<Arc<dyn vitals_store::cluster::Cluster>>,
}

/// Opens the store `[server]` names.
pub async fn open(server: &vitals_config::ServerConfig) -> Result<OpenedStore> {
    let url = StoreUrl::parse(server.store.as_deref(), &server.data_dir)?;
    let mut cluster: Option<Arc<dyn vitals_store::cluster::Cluster>> = None;
    let store: Arc<dyn Store> = match &url {
        StoreUrl::Sqlite(path) => {
            let opts = vitals_store_sqlite::SqliteOptions {
                synchronous_full: server.durability == vitals_config::Durability::Full,
                merge_rows: server.staging_rows,
                ..Default::default()
            };
            Arc::new(
                vitals_store_sqlite::SqliteStore::open_with(path, opts)
                    .with_context(|| format!("cannot open the store at {}", path.display()))?,
            )
        }
        StoreUrl::Postgres(u) => {
            let pg = Arc::new(
                vitals_store_postgres::PgStore::connect(u)
                    .await
                    .with_context(|| format!("cannot open the store at {}", url.describe()))?,
            );
            cluster = Some(pg.clone());
            pg
        }
    };
    let claim_owner = match &url {
        StoreUrl::Sqlite(_) => vitals_alert::outbox::LOCAL_OWNER.to_string(),
        StoreUrl::Postgres(_) => replica_name(),
    };
    Ok(OpenedStore {
        store,
        claim_owner,
        url,
        cluster,
    })
}

/// Opens the store a configuration names (`[server] store`, else `vitals.db` in `data_dir`).
pub async fn open_store(cfg: &vitals_config::Config) -> Result<OpenedStore> {
    open(&cfg.server).await
}

/// The embedded database file of a configuration when it uses SQLite (`vitals backup`,
/// `vitals cleanup` and `vitals export csv` work on the file); `None` on PostgreSQL.
pub fn store_path(cfg: &vitals_config::Config) -> Result<Option<PathBuf>> {
    Ok(
        match StoreUrl::parse(cfg.server.store.as_deref(), &cfg.server.data_dir)? {
            StoreUrl::Sqlite(p) => Some(p),
            StoreUrl::Postgres(_) => None,
        },
    )
}

/// This process among the replicas: host name and process id.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        let dir = Path::new("/var/lib/vitals");
        assert_eq!(
            StoreUrl::parse(None, dir).unwrap(),
            StoreUrl::Sqlite(dir.join("vitals.db"))
        );
        assert_eq!(
            StoreUrl::parse(Some("sqlite:///tmp/x.db"), dir).unwrap(),
            StoreUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            StoreUrl::parse(Some("sqlite://./x.db"), dir).unwrap(),
            StoreUrl::Sqlite("./x.db".into())
        );
        let pg = "postgres://vitals:s3cret@db/vitals?sslmode=require";
        let url = StoreUrl::parse(Some(pg), dir).unwrap();
        assert_eq!(url, StoreUrl::Postgres(pg.into()));
        assert_eq!(
            url.describe(),
            "postgres://vitals:***@db/vitals?sslmode=require"
        );
        let err = StoreUrl::parse(Some("mysql://root:pw@db/x"), dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sqlite://PATH") && !err.contains("pw"),
            "{err}"
        );
        assert!(StoreUrl::parse(Some("sqlite://"), dir).is_err());
    }
}

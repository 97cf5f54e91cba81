//! `vitals backup` and `vitals cleanup`.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitals_config::Config;

/// The configuration `path`, else ./vitals.toml if present, else the built-in one.
pub fn config(path: Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => {
            Config::load(&p).map_err(|e| anyhow::anyhow!("{} has errors:\n{e}", p.display()))
        }
        None if Path::new("vitals.toml").exists() => Config::load(Path::new("vitals.toml"))
            .map_err(|e| anyhow::anyhow!("vitals.toml has errors:\n{e}")),
        None => Ok(Config::builtin()),
    }
}

/// Copies the database with `VACUUM INTO` from a read-only connection: consistent, compact, and
/// safe while the server runs.
pub fn backup(cfg: Option<PathBuf>, dest: &Path) -> Result<String> {
    let cfg = config(cfg)?;
    let Some(db) = vitals_app::store_path(&cfg)? else {
        bail!("the store is PostgreSQL: back it up with pg_dump or the database's own backups (docs/high-availability.md)");
    };
    if !db.exists() {
        bail!("no database at {} (is data_dir right?)", db.display());
    }
    vitals_store_sqlite::backup_file(&db, dest)
        .with_context(|| format!("backing up {}", db.display()))?;
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(format!(
        "backup of {} written to {} ({size} bytes)",
        db.display(),
        dest.display()
    ))
}

/// `POST /api/v1/jobs/cleanup` on the running server; `None` if nothing listens there.
fn via_server(listen: std::net::SocketAddr) -> Option<Result<String>> {
    let addr = listen;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let req = format!("POST /api/v1/jobs/cleanup HTTP/1.1\r\nHost: {listen}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return None;
    }
    let mut resp = String::new();
    if s.read_to_string(&mut resp).is_err() {
        return Some(Err(anyhow::anyhow!(
            "no answer from the server at {listen}"
        )));
    }
    let code = resp.split_whitespace().nth(1).unwrap_or("");
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
        .trim();
    Some(match code {
        "200" | "202" => Ok(format!("cleanup through the server at {listen}: {body}")),
        _ => Err(anyhow::anyhow!(
            "the server at {listen} answered {code}: {body}"
        )),
    })
}

pub fn cleanup(cfg: Option<PathBuf>) -> Result<String> {
    let cfg = config(cfg)?;
    if let Some(r) = via_server(cfg.server.listen) {
        return r;
    }
    // No server: run here, on the database directly.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let store = vitals_app::open_store(&cfg).await?.store;
        let job = vitals_scheduler::housekeeping::Cleanup::new(
            store.clone(),
            vitals_app::retention_of(&cfg),
        );
        let run = job.run("cli", vitals_core::SystemClock::now()).await;
        store.close().await.context("closing the store")?;
        let run = run.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(serde_json::to_string_pretty(&run).unwrap_or_default())
    })
}

//! `vitals export csv DIR`: the fleet's yearly CSV files, as broker-monitor wrote them:
//! `DIR/<id>/<id>_stats_<YYYY>.csv` and `DIR/<id>/<id>_errors_<YYYY>.csv`.
//!
//! Like `vitals cleanup`, it goes through the running server when one answers at
//! `server.listen` (the database has one writer, the server's), and reads the database
//! directly otherwise.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitals_config::Config;
use vitals_store::Store;

fn config(path: Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => {
            Config::load(&p).map_err(|e| anyhow::anyhow!("{} has errors:\n{e}", p.display()))
        }
        None if Path::new("vitals.toml").exists() => Config::load(Path::new("vitals.toml"))
            .map_err(|e| anyhow::anyhow!("vitals.toml has errors:\n{e}")),
        None => Ok(Config::builtin()),
    }
}

/// A node id safe to use as a directory name (broker ids are numbers).
fn safe(node: &str) -> Result<&str> {
    if node.is_empty()
        || node.starts_with('.')
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("node id {node:?} cannot be used as a directory name");
    }
    Ok(node)
}

fn write_file(dir: &Path, node: &str, name: &str, body: &str) -> Result<()> {
    let d = dir.join(safe(node)?);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let p = d.join(name);
    std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))
}

pub fn csv(cfg: Option<PathBuf>, dir: &Path) -> Result<String> {
    let cfg = config(cfg)?;
    if let Some(result) = via_server(cfg.server.listen, dir) {
        return result;
    }
    if let Some(db) = vitals_app::store_path(&cfg)?.filter(|db| !db.exists()) {
        bail!("no database at {} (is data_dir right?)", db.display());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let store = vitals_app::open_store(&cfg).await?.store;
        let result = direct(&*store, dir).await;
        store.close().await.context("closing the store")?;
        result
    })
}

async fn direct(store: &dyn Store, dir: &Path) -> Result<String> {
    let years = store.fleet_years().await.context("reading fleet data")?;
    let mut files = 0;
    for (node, year) in &years {
        let Some((first, last)) = vitals_fleet::daily::year_days(*year) else {
            continue;
        };
        let samples = store
            .fleet_samples(Some(node), first, last)
            .await
            .context("reading samples")?;
        write_file(
            dir,
            node,
            &vitals_fleet::csv::stats_file(node, *year),
            &vitals_fleet::csv::stats_csv(&samples),
        )?;
        let errors = store
            .fleet_errors(Some(node), Some(*year), usize::MAX)
            .await
            .context("reading errors")?;
        write_file(
            dir,
            node,
            &vitals_fleet::csv::errors_file(node, *year),
            &vitals_fleet::csv::errors_csv(&errors),
        )?;
        files += 2;
    }
    Ok(format!(
        "{files} files for {} node-years written to {}",
        years.len(),
        dir.display()
    ))
}

/// One GET to the local server: status and body. `None` if nothing listens there.
fn get(listen: std::net::SocketAddr, path: &str) -> Option<Result<(u16, String)>> {
    let mut s = std::net::TcpStream::connect_timeout(&listen, Duration::from_secs(2)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return None;
    }
    let mut resp = Vec::new();
    if let Err(e) = s.read_to_end(&mut resp) {
        return Some(Err(anyhow::anyhow!(
            "no answer from the server at {listen}: {e}"
        )));
    }
    let text = String::from_utf8_lossy(&resp);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Some(Err(anyhow::anyhow!(
            "a broken answer from the server at {listen}"
        )));
    };
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(Err(anyhow::anyhow!(
            "the server at {listen} answered in chunks, which this client does not read"
        )));
    }
    Some(Ok((code, body.to_string())))
}

fn via_server(listen: std::net::SocketAddr, dir: &Path) -> Option<Result<String>> {
    let first = get(listen, "/api/v1/fleet/files")?;
    Some((|| {
        let (code, body) = first?;
        if code != 200 {
            bail!("the server at {listen} answered {code}: {body}");
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).context("the server's file list is not JSON")?;
        let list = v["files"].as_array().cloned().unwrap_or_default();
        let mut files = 0;
        for f in &list {
            let node = f["node"].as_str().unwrap_or("");
            for (url, name) in [("stats", "stats_file"), ("errors", "errors_file")] {
                let (Some(url), Some(name)) = (f[url].as_str(), f[name].as_str()) else {
                    bail!("the server's file list lacks {url}");
                };
                let (code, body) = get(listen, url)
                    .ok_or_else(|| anyhow::anyhow!("the server at {listen} went away"))??;
                if code != 200 {
                    bail!("the server at {listen} answered {code} for {url}: {body}");
                }
                write_file(dir, node, name, &body)?;
                files += 1;
            }
        }
        Ok(format!(
            "{files} files for {} node-years written to {} (through the server at {listen})",
            list.len(),
            dir.display()
        ))
    })())
}

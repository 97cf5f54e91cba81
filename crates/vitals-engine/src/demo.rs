//! The demo's small integration engine: a catalogue in an SQLite file, three hospital sources
//! answering FHIR-like JSON on loopback (one slow, one returning a changed family name for one
//! patient), a three-stage pipeline fed by pushed counts whose transform stalls now and then,
//! and one scheduled job. [`start`] returns the configuration sections to add.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::time::Duration;

/// What the demo engine runs; dropping it stops the sources and the pusher.
pub struct DemoEngine {
    /// `[[source_set]]`, `[[pipeline]]` and `[[job]]` sections (TOML) for the demo's config.
    pub config: String,
    pub sources: Vec<(String, SocketAddr)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DemoEngine {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Patients of the catalogue: id, family, given, birth date, sources with episodes.
const PATIENTS: &[(&str, &str, &str, &str, &[&str])] = &[
    ("P-1001", "Almeida", "Ana", "1961-04-12", &["hsj", "hsa"]),
    ("P-1002", "Barros", "Rui", "1979-11-03", &["hsj"]),
    ("P-1003", "Costa", "Marta", "1990-01-27", &["hsa", "hsm"]),
    ("P-1004", "Dias", "João", "1948-07-30", &["hsm"]),
    ("P-1005", "Esteves", "Inês", "2001-02-14", &["hsj", "hsm"]),
];

/// The source that answers slowly, and the one that returns a changed field.
const SLOW: &str = "hsa";
const CHANGED: &str = "hsm";

#[derive(Clone)]
struct SourceApp {
    id: &'static str,
}

async fn patient(State(s): State<SourceApp>, Path(id): Path<String>) -> Response {
    if s.id == SLOW {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let Some((pid, family, given, birth, at)) = PATIENTS.iter().find(|p| p.0 == id) else {
        return (axum::http::StatusCode::NOT_FOUND, "{}").into_response();
    };
    if !at.contains(&s.id) {
        return (axum::http::StatusCode::NOT_FOUND, "{}").into_response();
    }
    // The changed field: this hospital renamed its copy of one patient (a conversion bug).
    let family = if s.id == CHANGED && *pid == "P-1004" {
        "Diaz"
    } else {
        *family
    };
    axum::Json(serde_json::json!({
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family.to_uppercase(), "given": [given]}],
        "birthDate": birth,
    }))
    .into_response()
}

fn write_catalogue(path: &std::path::Path, bases: &[(String, SocketAddr)]) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let c = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    c.execute_batch(
        "CREATE TABLE sources (id TEXT PRIMARY KEY, name TEXT, base TEXT);
         CREATE TABLE patients (id TEXT PRIMARY KEY, family TEXT, given TEXT, birth_date TEXT);
         CREATE TABLE episodes (patient_id TEXT, source_id TEXT, at TEXT);",
    )
    .map_err(|e| e.to_string())?;
    let names = [
        ("hsj", "Hospital de São João"),
        ("hsa", "Hospital de Santo António (slow)"),
        ("hsm", "Hospital de Santa Maria"),
    ];
    for (id, addr) in bases {
        let name = names
            .iter()
            .find(|n| n.0 == id)
            .map_or(id.as_str(), |n| n.1);
        c.execute(
            "INSERT INTO sources VALUES (?1, ?2, ?3)",
            rusqlite::params![id, name, format!("http://{addr}/fhir")],
        )
        .map_err(|e| e.to_string())?;
    }
    for (pid, family, given, birth, at) in PATIENTS {
        c.execute(
            "INSERT INTO patients VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![pid, family, given, birth],
        )
        .map_err(|e| e.to_string())?;
        for s in *at {
            c.execute(
                "INSERT INTO episodes VALUES (?1, ?2, '2026-01-01')",
                rusqlite::params![pid, s],
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Starts the sources and the pusher of stage counts (to the server at `server`), writes the
/// catalogue into `data_dir`, and returns the configuration to append.
pub async fn start(data_dir: &std::path::Path, server: SocketAddr) -> Result<DemoEngine, String> {
    let mut tasks = Vec::new();
    let mut sources = Vec::new();
    for id in ["hsj", "hsa", "hsm"] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("demo source {id}: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let app = Router::new()
            .route("/fhir/Patient/{id}", get(patient))
            .with_state(SourceApp { id });
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        }));
        sources.push((id.to_string(), addr));
    }
    let catalogue = data_dir.join("catalogue.sqlite");
    write_catalogue(&catalogue, &sources)?;
    tasks.push(tokio::spawn(push_stages(server)));
    let config = format!(
        r#"
# The demo's integration engine (docs/integration-engines.md).
[[source_set]]
id = "rts"
name = "RTS hospital sources"
catalogue = {cat}
sources_query = "SELECT id, name, base FROM sources ORDER BY id"
refresh = "1m"
probe_patients = 2
assign_query = "SELECT patient_id FROM episodes WHERE source_id = :source ORDER BY patient_id"
catalogue_query = "SELECT family, given, birth_date FROM patients WHERE id = :patient"
interval = "20s"
timeout = "5s"
fetch = {{ type = "http", url = "{{source.base}}/Patient/{{patient}}", headers = {{ Accept = "application/fhir+json" }} }}

[[source_set.field]]
name = "family"
source = "/name/0/family"
catalogue = "family"
normalise = ["trim", "case"]

[[source_set.field]]
name = "given"
source = "/name/0/given/0"
catalogue = "given"

[[source_set.field]]
name = "birth_date"
source = "/birthDate"
catalogue = "birth_date"
normalise = ["date"]

[[asset]]
id = "etl"
name = "Catalogue ETL"
groups = ["integration"]

[[check]]
asset = "etl"
name = "extract"
type = "push"

[[check]]
asset = "etl"
name = "transform"
type = "push"

[[check]]
asset = "etl"
name = "load"
type = "push"

[[pipeline]]
id = "catalogue-update"
name = "Catalogue update"
interval = "15s"

[[pipeline.stage]]
name = "extract"
asset = "etl"
check = "extract"
records_in = "in"
records_out = "out"
max_silence = "2m"

[[pipeline.stage]]
name = "transform"
asset = "etl"
check = "transform"
records_in = "in"
records_out = "out"
rejects = "rejects"
backlog = "waiting"
max_silence = "1m"
max_rejects = 20

[[pipeline.stage]]
name = "load"
asset = "etl"
check = "load"
records_in = "in"
records_out = "out"
lag = "lag_s"
max_lag = 600

[[job]]
id = "rebuild-source-list"
name = "Rebuild the source list"
command = ["sh", "-c", "echo reading the source registry; sleep 1; echo 3 sources"]
schedule = "0 * * * * *"
timeout = "30s"
"#,
        cat = format_args!("\"sqlite:{}\"", catalogue.display()),
    );
    Ok(DemoEngine {
        config,
        sources,
        tasks,
    })
}

/// Pushes stage counts every 5 s; the transform stalls for 90 s of every 5 minutes (nothing
/// in, records waiting), which the pipeline names.
async fn push_stages(server: SocketAddr) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "demo engine: no HTTP client");
            return;
        }
    };
    let url = format!("http://{server}/api/v1/results");
    let started = std::time::Instant::now();
    let mut waiting = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for n in 0u64.. {
        tick.tick().await;
        let t = started.elapsed().as_secs() % 300;
        let stalled = (150..240).contains(&t);
        let extracted = 40 + (n * 7) % 13;
        let (t_in, t_out) = if stalled {
            waiting += extracted;
            (0, 0)
        } else {
            let drained = waiting.min(200);
            waiting -= drained;
            (extracted + drained, extracted + drained - (n % 3))
        };
        let results = serde_json::json!({"results": [
            {"asset": "etl", "check": "extract", "status": "ok", "values": {"in": extracted, "out": extracted}},
            {"asset": "etl", "check": "transform", "values": {"in": t_in, "out": t_out, "rejects": n % 3, "waiting": waiting},
             "status": if stalled { "warn" } else { "ok" }},
            {"asset": "etl", "check": "load", "status": "ok", "values": {"in": t_out, "out": t_out, "lag_s": if stalled { 60 + t - 150 } else { 20 }}},
        ]});
        if let Err(e) = client.post(&url).json(&results).send().await {
            tracing::debug!(error = %e, "demo engine: pushing stage counts failed");
        }
    }
}

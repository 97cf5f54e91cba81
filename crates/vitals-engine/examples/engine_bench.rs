//! The engine benchmark's two halves (bench/engine/run.sh):
//!
//! - `engine_bench serve DIR SOURCES K`: writes `DIR/catalogue.sqlite` (SOURCES sources with K
//!   patients each; every tenth source answers one patient with a changed family name) and
//!   serves the patients as FHIR-like JSON on a loopback port, printed on the first line.
//! - `engine_bench probe DIR URL SOURCES K SECONDS`: a source set over that catalogue and
//!   those sources, re-integrating every (source, probe patient) round after round for
//!   SECONDS; prints comparisons per minute and the CPU time of this process per comparison.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn patient_id(s: usize, k: usize) -> String {
    format!("P{s:05}-{k}")
}

fn family(s: usize, k: usize) -> String {
    format!("Family{s}x{k}")
}

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 5 => {
            rt.block_on(serve(&args[2], num(&args[3])?, num(&args[4])?))
        }
        Some("probe") if args.len() == 7 => rt.block_on(probe(
            &args[2],
            &args[3],
            num(&args[4])?,
            num(&args[5])?,
            num(&args[6])?,
        )),
        _ => {
            Err("usage: engine_bench serve DIR SOURCES K | probe DIR URL SOURCES K SECONDS".into())
        }
    }
}

fn num(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

async fn serve(dir: &str, sources: usize, k: usize) -> Result<(), String> {
    let path = std::path::Path::new(dir).join("catalogue.sqlite");
    let _ = std::fs::remove_file(&path);
    let c = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
    c.execute_batch(
        "CREATE TABLE sources (id TEXT PRIMARY KEY, name TEXT);
         CREATE TABLE patients (id TEXT PRIMARY KEY, family TEXT, given TEXT, birth_date TEXT);
         CREATE TABLE episodes (patient_id TEXT, source_id TEXT);
         CREATE INDEX episodes_by_source ON episodes (source_id);
         BEGIN;",
    )
    .map_err(|e| e.to_string())?;
    let mut docs: HashMap<String, String> = HashMap::new();
    for s in 0..sources {
        let sid = format!("S{s:05}");
        c.execute(
            "INSERT INTO sources VALUES (?1, ?2)",
            rusqlite::params![sid, format!("Hospital {s}")],
        )
        .map_err(|e| e.to_string())?;
        for k in 0..k {
            let pid = patient_id(s, k);
            c.execute(
                "INSERT INTO patients VALUES (?1, ?2, 'Ana', '1961-04-12')",
                rusqlite::params![pid, family(s, k)],
            )
            .map_err(|e| e.to_string())?;
            c.execute(
                "INSERT INTO episodes VALUES (?1, ?2)",
                rusqlite::params![pid, sid],
            )
            .map_err(|e| e.to_string())?;
            let fam = if s % 10 == 0 && k == 0 {
                "Changed".to_string()
            } else {
                family(s, k).to_uppercase()
            };
            docs.insert(
                pid.clone(),
                serde_json::json!({"resourceType": "Patient", "id": pid,
                    "name": [{"family": fam, "given": ["Ana"]}], "birthDate": "1961-04-12"})
                .to_string(),
            );
        }
    }
    c.execute_batch("COMMIT;").map_err(|e| e.to_string())?;
    drop(c);
    let docs = Arc::new(docs);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!("http://{}", l.local_addr().map_err(|e| e.to_string())?);
    let app = axum::Router::new()
        .route(
            "/fhir/Patient/{id}",
            axum::routing::get(
                |axum::extract::State(d): axum::extract::State<Arc<HashMap<String, String>>>,
                 axum::extract::Path(id): axum::extract::Path<String>| async move {
                    match d.get(&id) {
                        Some(doc) => (
                            axum::http::StatusCode::OK,
                            [("content-type", "application/json")],
                            doc.clone(),
                        ),
                        None => (
                            axum::http::StatusCode::NOT_FOUND,
                            [("content-type", "application/json")],
                            "{}".to_string(),
                        ),
                    }
                },
            ),
        )
        .with_state(docs);
    axum::serve(l, app).await.map_err(|e| e.to_string())
}

async fn probe(
    dir: &str,
    url: &str,
    sources: usize,
    k: usize,
    seconds: usize,
) -> Result<(), String> {
    let cat = std::path::Path::new(dir).join("catalogue.sqlite");
    let text = format!(
        r#"
[[source_set]]
id = "bench"
catalogue = "sqlite:{cat}"
sources_query = "SELECT id, name FROM sources"
probe_patients = {k}
assign_query = "SELECT patient_id FROM episodes WHERE source_id = :source ORDER BY patient_id"
catalogue_query = "SELECT family, given, birth_date FROM patients WHERE id = :patient"
concurrency = 16
fetch = {{ type = "http", url = "{url}/fhir/Patient/{{patient}}" }}
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
"#,
        cat = cat.display()
    );
    let cfg = vitals_config::Config::parse(&text, &|_| None).map_err(|e| e.to_string())?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let es: Arc<dyn vitals_engine::store::EngineStore> = Arc::new(
        vitals_engine::store::SqliteEngineStore::open(&tmp.path().join("engine.db"))?,
    );
    let set = Arc::new(vitals_engine::sources::SourceSet::new(
        cfg.engine.source_sets[0].clone(),
        es.clone(),
    )?);
    set.refresh(vitals_core::SystemClock::now()).await;
    let assigned = es.assignments("bench")?.len();
    if assigned != sources * k {
        return Err(format!(
            "{assigned} probe patients assigned, expected {}",
            sources * k
        ));
    }
    // One warm-up round (connections, prepared statements).
    set.probe_round(vitals_core::SystemClock::now()).await;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut comparisons = 0usize;
    let mut differing = 0usize;
    while t0.elapsed() < Duration::from_secs(seconds as u64) {
        let obs = set.probe_round(vitals_core::SystemClock::now()).await;
        comparisons += assigned;
        differing += obs
            .iter()
            .filter(|o| o.reason.starts_with("fields differ"))
            .count();
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    println!("comparisons {comparisons}");
    println!(
        "sources_with_differences_per_round {}",
        differing as f64 / (comparisons / assigned) as f64
    );
    println!("per_minute {:.0}", comparisons as f64 / wall * 60.0);
    println!(
        "cpu_us_per_comparison {:.1}",
        cpu / comparisons as f64 * 1e6
    );
    println!("cpu_share_of_a_core {:.2}", cpu / wall);
    Ok(())
}

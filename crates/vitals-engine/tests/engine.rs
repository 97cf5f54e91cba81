//! End to end with real components: the PostgreSQL on 127.0.0.1:5432 as the catalogue (one
//! database per test), loopback HTTP servers as hospital sources, the SQLite store and the
//! real pipeline (health, rules, one commit) behind the engine's observations.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use sqlx::Executor;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vitals_config::engine::EngineConfig;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_engine::sources::SourceSet;
use vitals_engine::store::{EngineStore, SqliteEngineStore};
use vitals_scheduler::{LiveState, Metrics, Pipeline, Pushed};
use vitals_store::Store;

const PG: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of its own, dropped at the end.
struct Catalogue {
    name: String,
    dsn: String,
}

impl Catalogue {
    async fn new(tag: &str) -> Catalogue {
        let name = format!(
            "vitals_engine_{tag}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        let admin = sqlx::PgPool::connect(&format!("{PG}/postgres"))
            .await
            .unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        admin.close().await;
        let dsn = format!("{PG}/{name}");
        let pool = sqlx::PgPool::connect(&dsn).await.unwrap();
        pool.execute(
            "CREATE TABLE sources (id TEXT PRIMARY KEY, name TEXT, base TEXT);
             CREATE TABLE patients (id TEXT PRIMARY KEY, family TEXT, given TEXT, birth_date DATE);
             CREATE TABLE episodes (patient_id TEXT, source_id TEXT);",
        )
        .await
        .unwrap();
        pool.close().await;
        Catalogue { name, dsn }
    }

    async fn run(&self, sql: &str) {
        let pool = sqlx::PgPool::connect(&self.dsn).await.unwrap();
        pool.execute(sql).await.unwrap();
        pool.close().await;
    }

    async fn drop_db(self) {
        let admin = sqlx::PgPool::connect(&format!("{PG}/postgres"))
            .await
            .unwrap();
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await;
        admin.close().await;
    }
}

/// Patients a source answers: id → (family, given, birth date as the source spells it).
type Answers = Arc<Mutex<HashMap<String, (String, String, String)>>>;

async fn fhir(State(a): State<Answers>, Path(id): Path<String>) -> axum::response::Response {
    let found = a.lock().unwrap().get(&id).cloned();
    match found {
        Some((family, given, birth)) => axum::Json(serde_json::json!({
            "resourceType": "Patient", "id": id,
            "name": [{"family": family, "given": [given]}], "birthDate": birth,
        }))
        .into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "{}").into_response(),
    }
}

async fn source_server(answers: Answers) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/fhir/Patient/{id}", get(fhir))
        .with_state(answers);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

/// A loopback address nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(dsn: &str, k: usize) -> EngineConfig {
    let text = format!(
        r#"
[[source_set]]
id = "rts"
catalogue = "{dsn}"
sources_query = "SELECT id, name, base FROM sources ORDER BY id"
probe_patients = {k}
assign_query = "SELECT patient_id FROM episodes WHERE source_id = :source ORDER BY patient_id"
catalogue_query = "SELECT family, given, birth_date FROM patients WHERE id = :patient"
timeout = "3s"
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
"#
    );
    vitals_config::Config::parse(&text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .engine
}

fn engine_store(dir: &tempfile::TempDir) -> Arc<dyn EngineStore> {
    Arc::new(SqliteEngineStore::open(&dir.path().join("engine.db")).unwrap())
}

fn answers(rows: &[(&str, &str, &str, &str)]) -> Answers {
    Arc::new(Mutex::new(
        rows.iter()
            .map(|(id, f, g, b)| {
                (
                    id.to_string(),
                    (f.to_string(), g.to_string(), b.to_string()),
                )
            })
            .collect(),
    ))
}

fn patients(store: &dyn EngineStore, source: &str) -> Vec<String> {
    store
        .assignments("rts")
        .unwrap()
        .into_iter()
        .filter(|a| a.source == source)
        .map(|a| a.patient)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_patients_are_assigned_kept_and_replaced_when_they_no_longer_qualify() {
    let cat = Catalogue::new("assign").await;
    let hsj = source_server(answers(&[])).await;
    cat.run(&format!(
        "INSERT INTO sources VALUES ('hsj', 'São João', 'http://{hsj}/fhir'), ('hsa', 'Santo António', 'http://{hsj}/fhir');
         INSERT INTO patients VALUES ('P1', 'Almeida', 'Ana', '1961-04-12'), ('P2', 'Barros', 'Rui', '1979-11-03'),
                                     ('P3', 'Costa', 'Marta', '1990-01-27');
         INSERT INTO episodes VALUES ('P1', 'hsj'), ('P2', 'hsj'), ('P3', 'hsj'), ('P3', 'hsa');"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let es = engine_store(&dir);
    let set =
        Arc::new(SourceSet::new(config(&cat.dsn, 2).source_sets[0].clone(), es.clone()).unwrap());

    let (obs, diff) = set.refresh(Timestamp(1_000)).await;
    let diff = diff.expect("the list was read");
    assert_eq!(diff.appeared, vec!["hsa", "hsj"]);
    assert_eq!(obs.last().unwrap().reason, "2 sources listed");
    // At most K per source, the query's order decides.
    assert_eq!(patients(&*es, "hsj"), vec!["P1", "P2"]);
    assert_eq!(patients(&*es, "hsa"), vec!["P3"]);

    // Kept while they qualify.
    set.refresh(Timestamp(2_000)).await;
    assert_eq!(patients(&*es, "hsj"), vec!["P1", "P2"]);

    // P1 no longer has episodes at hsj: released and replaced by P3.
    cat.run("DELETE FROM episodes WHERE patient_id = 'P1' AND source_id = 'hsj'")
        .await;
    set.refresh(Timestamp(3_000)).await;
    let mut now = patients(&*es, "hsj");
    now.sort();
    assert_eq!(now, vec!["P2", "P3"]);
    let events = es.events("rts", 50).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.source == "hsj" && e.what == "probe patient released: no longer qualifies"),
        "{events:?}"
    );

    // A source that disappears loses its probe patients and says so.
    cat.run("DELETE FROM sources WHERE id = 'hsa'").await;
    let (obs, diff) = set.refresh(Timestamp(4_000)).await;
    assert_eq!(diff.unwrap().disappeared, vec!["hsa"]);
    assert!(patients(&*es, "hsa").is_empty());
    let gone = obs
        .iter()
        .find(|o| o.asset == "rts.hsa")
        .expect("an observation for the gone source");
    assert_eq!(gone.reason, "no longer listed by the source set");
    cat.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_field_is_named_without_its_value_and_a_down_source_is_crit() {
    let cat = Catalogue::new("compare").await;
    // hsj agrees (after normalisation: case, spacing, date spelling); hsm renamed P4;
    // hsx is down.
    let hsj = source_server(answers(&[("P1", " ALMEIDA ", "Ana", "1961-04-12")])).await;
    let hsm = source_server(answers(&[("P4", "Diaz", "João", "1948-07-30")])).await;
    let down = closed_port();
    cat.run(&format!(
        "INSERT INTO sources VALUES ('hsj', 'São João', 'http://{hsj}/fhir'), ('hsm', 'Santa Maria', 'http://{hsm}/fhir'),
                                    ('hsx', 'Down', 'http://{down}/fhir');
         INSERT INTO patients VALUES ('P1', 'Almeida', 'Ana', '1961-04-12'), ('P4', 'Dias', 'João', '1948-07-30'),
                                     ('P9', 'Ferreira', 'Luís', '1955-05-05');
         INSERT INTO episodes VALUES ('P1', 'hsj'), ('P4', 'hsm'), ('P9', 'hsx');"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let es = engine_store(&dir);
    let set =
        Arc::new(SourceSet::new(config(&cat.dsn, 1).source_sets[0].clone(), es.clone()).unwrap());
    set.refresh(Timestamp(1_000)).await;
    let obs = set.probe_round(vitals_core::SystemClock::now()).await;
    let by: HashMap<&str, &Observation> = obs.iter().map(|o| (o.asset.as_str(), o)).collect();

    let ok = by["rts.hsj"];
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert_eq!(ok.reason, "1 probe patient re-integrated; all fields agree");
    assert_eq!(ok.value("correct"), Some(1.0));
    assert_eq!(ok.value("available"), Some(1.0));

    let changed = by["rts.hsm"];
    assert_eq!(changed.status, Status::Warn, "{changed:?}");
    assert_eq!(changed.reason, "fields differ: family");
    assert_eq!(changed.value("correct"), Some(0.0));
    let family = changed
        .components
        .iter()
        .find(|c| c.name == "family")
        .unwrap();
    assert_eq!(family.status, Status::Warn);
    assert_eq!(family.output, "differs for 1 of 1 probe patients");
    // Never the values: neither the source's nor the catalogue's.
    let text = serde_json::to_string(changed).unwrap();
    assert!(
        !text.contains("Diaz") && !text.contains("Dias") && !text.contains("P4"),
        "{text}"
    );

    let dead = by["rts.hsx"];
    assert_eq!(dead.status, Status::Crit, "{dead:?}");
    assert_eq!(
        dead.reason,
        "source unavailable: connection refused or unreachable"
    );
    assert_eq!(dead.value("available"), Some(0.0));

    // The runs give availability and correctness per source.
    let stats = es.stats("rts", Timestamp(0)).unwrap();
    assert_eq!(stats["hsx"].availability(), Some(0.0));
    assert_eq!(stats["hsm"].correctness(), Some(0.0));
    assert_eq!(stats["hsj"].correctness(), Some(1.0));
    cat.drop_db().await;
}

async fn flow(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Pipeline) {
    let store: Arc<dyn Store> =
        Arc::new(vitals_store_sqlite::SqliteStore::open(&dir.path().join("vitals.db")).unwrap());
    let (p, _task) = Pipeline::start(
        store.clone(),
        Arc::new(LiveState::new()),
        Arc::new(Metrics::default()),
        Arc::new(vitals_scheduler::ModelHandle::default()),
        vitals_alert::Engine::new(vec![], vec![], None, vec![], vec![], (0, 0)),
    );
    (store, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_engine_publishes_sources_as_assets_through_the_pipeline() {
    let cat = Catalogue::new("running").await;
    let hsm = source_server(answers(&[("P4", "Diaz", "João", "1948-07-30")])).await;
    cat.run(&format!(
        "INSERT INTO sources VALUES ('hsm', 'Santa Maria', 'http://{hsm}/fhir');
         INSERT INTO patients VALUES ('P4', 'Dias', 'João', '1948-07-30');
         INSERT INTO episodes VALUES ('P4', 'hsm');"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (store, p) = flow(&dir).await;
    let mut cfg = config(&cat.dsn, 1);
    cfg.source_sets[0].interval = Duration::from_secs(1);
    let engine = vitals_engine::start(&cfg, engine_store(&dir), store.clone(), p.clone())
        .await
        .unwrap();
    // Bounded wait for the first round to commit.
    let mut seen = None;
    for _ in 0..200 {
        seen = p
            .state()
            .asset("rts.hsm")
            .and_then(|a| a.checks.get("reintegration").and_then(|c| c.latest.clone()));
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let o = seen.expect("a committed re-integration");
    assert_eq!(o.reason, "fields differ: family");
    let a = p.state().asset("rts.hsm").unwrap();
    assert_eq!(a.record.name, "Santa Maria");
    assert_eq!(a.record.groups, vec!["rts"]);
    assert!(store
        .assets()
        .await
        .unwrap()
        .iter()
        .any(|a| a.id == "rts.hsm"));
    let view = engine
        .source_sets_view(vitals_core::SystemClock::now())
        .unwrap();
    assert_eq!(view[0].sources[0].probe_patients[0].patient, "P4");
    drop(engine);
    cat.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stage_is_named_with_how_long_and_how_many_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p) = flow(&dir).await;
    let text = r#"
[[pipeline]]
id = "catalogue-update"

[[pipeline.stage]]
name = "extract"
asset = "etl"
check = "extract"
records_in = "in"
max_silence = "30m"

[[pipeline.stage]]
name = "transform"
asset = "etl"
check = "transform"
records_in = "in"
backlog = "waiting"
max_silence = "30m"

[[pipeline.stage]]
name = "load"
asset = "etl"
check = "load"
max_age = "1h"
"#;
    let cfg = vitals_config::Config::parse(text, &|_| None)
        .unwrap()
        .engine;
    let now = vitals_core::SystemClock::now();
    let min = 60_000;
    let push = |check: &str, t: i64, values: Vec<Value>| {
        let mut o = Observation::new("etl", check, now.add_millis(-t), Status::Ok, "");
        o.values = values;
        Pushed { obs: o, id: None }
    };
    p.push(vec![
        push("extract", 2 * min, vec![Value::new("in", 120.0)]),
        push(
            "transform",
            40 * min,
            vec![Value::new("in", 80.0), Value::new("waiting", 3.0)],
        ),
        push(
            "transform",
            min,
            vec![Value::new("in", 0.0), Value::new("waiting", 1204.0)],
        ),
        push("load", min, vec![]),
    ])
    .await
    .unwrap();
    let es = engine_store(&dir);
    let pl = vitals_engine::pipeline::Pipeline::new(cfg.pipelines[0].clone(), es.clone());
    let o = pl.evaluate(now, p.state(), &*store).await;
    assert_eq!(o.status, Status::Crit, "{o:?}");
    assert_eq!(
        o.reason,
        "stuck at transform: nothing in for 40 min; 1,204 waiting"
    );
    let st: Vec<(&str, Status)> = o
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.status))
        .collect();
    assert_eq!(
        st,
        vec![
            ("extract", Status::Ok),
            ("transform", Status::Crit),
            ("load", Status::Ok)
        ]
    );
    // Records come in again: flowing.
    p.push(vec![push(
        "transform",
        0,
        vec![Value::new("in", 300.0), Value::new("waiting", 900.0)],
    )])
    .await
    .unwrap();
    let o = pl.evaluate(now.add_millis(1), p.state(), &*store).await;
    assert_eq!(o.reason, "all 3 stages flowing", "{o:?}");
    assert_eq!(
        es.stage_samples("catalogue-update", Timestamp(0))
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_engine_has_three_sources_one_slow_one_changed() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the server address: the stage pusher's posts fail quietly.
    let demo = vitals_engine::demo::start(dir.path(), closed_port())
        .await
        .unwrap();
    let cfg = vitals_config::Config::parse(&demo.config, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .engine;
    assert_eq!(
        (cfg.source_sets.len(), cfg.pipelines.len(), cfg.jobs.len()),
        (1, 1, 1)
    );
    assert_eq!(cfg.pipelines[0].stages.len(), 3);
    let es = engine_store(&dir);
    let set = Arc::new(SourceSet::new(cfg.source_sets[0].clone(), es.clone()).unwrap());
    set.refresh(Timestamp(1_000)).await;
    let obs = set.probe_round(vitals_core::SystemClock::now()).await;
    let by: HashMap<&str, &Observation> = obs.iter().map(|o| (o.asset.as_str(), o)).collect();
    assert_eq!(
        by["rts.hsj"].reason,
        "2 probe patients re-integrated; all fields agree"
    );
    assert_eq!(by["rts.hsm"].reason, "fields differ: family");
    let slow = by["rts.hsa"];
    assert_eq!(slow.status, Status::Ok, "{slow:?}");
    assert!(slow.value("fetch_ms").unwrap() >= 1500.0, "{slow:?}");
}

/// `sources_file` and `fetch = { type = "sql" }`: the list of sources is a CSV file naming each
/// source's own database; the catalogue is an SQLite file; one source's database is SQLite, one
/// PostgreSQL (whose copy of the patient was renamed), one is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_from_a_file_fetched_by_sql_from_each_sources_own_database() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = |name: &str, sql: &str| {
        let p = dir.path().join(name);
        rusqlite::Connection::open(&p)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        p
    };
    let catalogue = sqlite(
        "catalogue.db",
        "CREATE TABLE patients (id TEXT PRIMARY KEY, family TEXT, given TEXT, birth_date TEXT);
         CREATE TABLE episodes (patient_id TEXT, source_id TEXT);
         INSERT INTO patients VALUES ('P1', 'Almeida', 'Ana', '1961-04-12'),
                                     ('P4', 'Dias', 'João', '1948-07-30'),
                                     ('P9', 'Ferreira', 'Luís', '1955-05-05');
         INSERT INTO episodes VALUES ('P1', 'hsj'), ('P4', 'hsm'), ('P9', 'hsx');",
    );
    let hsj = sqlite(
        "hsj.db",
        "CREATE TABLE doentes (nproc TEXT, apelido TEXT, nome TEXT, nascimento TEXT);
         INSERT INTO doentes VALUES ('P1', 'ALMEIDA ', 'Ana', '1961-04-12');",
    );
    let hsm = Catalogue::new("sqlsource").await;
    hsm.run(
        "CREATE TABLE doentes (nproc TEXT, apelido TEXT, nome TEXT, nascimento DATE);
         INSERT INTO doentes VALUES ('P4', 'Diaz', 'João', '1948-07-30');",
    )
    .await;
    let down = closed_port();
    let list = dir.path().join("sources.csv");
    std::fs::write(
        &list,
        format!(
            "id,name,dsn\nhsj,São João,sqlite:{}\nhsm,Santa Maria,{}\nhsx,Down,postgres://postgres@{down}/none\n",
            hsj.display(),
            hsm.dsn
        ),
    )
    .unwrap();
    let text = format!(
        r#"
[[source_set]]
id = "rts"
catalogue = "sqlite:{cat}"
sources_file = "{list}"
probe_patients = 1
assign_query = "SELECT patient_id FROM episodes WHERE source_id = :source ORDER BY patient_id"
catalogue_query = "SELECT family, given, birth_date FROM patients WHERE id = :patient"
timeout = "3s"
fetch = {{ type = "sql", dsn = "{{source.dsn}}", query = "SELECT apelido AS family, nome AS given, nascimento AS birth_date FROM doentes WHERE nproc = :patient" }}

[[source_set.field]]
name = "family"
source = "family"
catalogue = "family"
normalise = ["trim", "case"]

[[source_set.field]]
name = "given"
source = "given"
catalogue = "given"

[[source_set.field]]
name = "birth_date"
source = "birth_date"
catalogue = "birth_date"
normalise = ["date"]
"#,
        cat = catalogue.display(),
        list = list.display(),
    );
    let cfg = vitals_config::Config::parse(&text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .engine;
    let es = engine_store(&dir);
    let set = Arc::new(SourceSet::new(cfg.source_sets[0].clone(), es.clone()).unwrap());
    let (_, diff) = set.refresh(Timestamp(1_000)).await;
    assert_eq!(
        diff.expect("the file was read").appeared,
        vec!["hsj", "hsm", "hsx"]
    );
    assert_eq!(patients(&*es, "hsm"), vec!["P4"]);
    let obs = set.probe_round(vitals_core::SystemClock::now()).await;
    let by: HashMap<&str, &Observation> = obs.iter().map(|o| (o.asset.as_str(), o)).collect();
    let ok = by["rts.hsj"];
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert_eq!(ok.reason, "1 probe patient re-integrated; all fields agree");
    let changed = by["rts.hsm"];
    assert_eq!(changed.status, Status::Warn, "{changed:?}");
    assert_eq!(changed.reason, "fields differ: family");
    let text = serde_json::to_string(changed).unwrap();
    assert!(!text.contains("Diaz") && !text.contains("Dias"), "{text}");
    let dead = by["rts.hsx"];
    assert_eq!(dead.status, Status::Crit, "{dead:?}");
    assert_eq!(dead.value("available"), Some(0.0));
    // A source added to the file appears at the next refresh; one removed disappears.
    std::fs::write(
        &list,
        format!("id,name,dsn\nhsj,São João,sqlite:{}\n", hsj.display()),
    )
    .unwrap();
    let (_, diff) = set.refresh(Timestamp(2_000)).await;
    assert_eq!(diff.unwrap().disappeared, vec!["hsm", "hsx"]);
    hsm.drop_db().await;
}

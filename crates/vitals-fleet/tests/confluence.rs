//! Confluence pages against a stand-in Confluence (axum on loopback) that implements the REST
//! v1 calls Vitals uses — like Confluence, it refuses a wrong token, a wrong version number and
//! an upload without `X-Atlassian-Token: no-check`, and it normalises the storage format it is
//! sent — and records every call.

mod support;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use support::*;
use vitals_fleet::runner::{After, Facts};

const TOKEN: &str = "conf-secret";

/// (page id, file name, media type, every version's bytes)
type Attachment = (String, String, String, Vec<Vec<u8>>);
/// (title, space, parent id, body, version)
type StoredPage = (String, String, Option<String>, String, i64);

#[derive(Default)]
struct Wiki {
    next: u64,
    pages: BTreeMap<String, StoredPage>,
    /// attachment id → attachment
    files: BTreeMap<String, Attachment>,
    calls: Vec<String>,
}

type Shared = Arc<Mutex<Wiki>>;

fn page_json(id: &str, p: &StoredPage) -> J {
    json!({"id": id, "type": "page", "title": p.0, "space": {"key": p.1},
           "version": {"number": p.4}, "body": {"storage": {"value": p.3, "representation": "storage"}}})
}

/// Confluence rewrites what it stores (here: `<col />` → `<col/>`), so a page never reads back
/// exactly as sent.
fn normalise(body: &str) -> String {
    body.replace(" />", "/>")
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn record(
    State(w): State<Shared>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _ = h;
    w.lock()
        .unwrap()
        .calls
        .push(format!("{method} {}", uri.path()));
    if !authorised(req.headers()) {
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    next.run(req).await
}

async fn find(State(w): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let w = w.lock().unwrap();
    assert_eq!(q.get("type").map(String::as_str), Some("page"));
    assert_eq!(
        q.get("expand").map(String::as_str),
        Some("body.storage,version")
    );
    let results: Vec<J> = w
        .pages
        .iter()
        .filter(|(_, p)| Some(&p.0) == q.get("title") && Some(&p.1) == q.get("spaceKey"))
        .take(1)
        .map(|(id, p)| page_json(id, p))
        .collect();
    Json(json!({"results": results, "size": results.len()})).into_response()
}

async fn create(State(w): State<Shared>, Json(doc): Json<J>) -> Response {
    let mut w = w.lock().unwrap();
    let (Some(title), Some(space), Some(body)) = (
        doc["title"].as_str(),
        doc["space"]["key"].as_str(),
        doc["body"]["storage"]["value"].as_str(),
    ) else {
        return (StatusCode::BAD_REQUEST, "incomplete").into_response();
    };
    if doc["type"] != "page" || doc["body"]["storage"]["representation"] != "storage" {
        return (StatusCode::BAD_REQUEST, "not a storage page").into_response();
    }
    if w.pages.values().any(|p| p.0 == title && p.1 == space) {
        return (
            StatusCode::BAD_REQUEST,
            "a page with this title already exists",
        )
            .into_response();
    }
    let parent = doc["ancestors"][0]["id"].as_str().map(str::to_string);
    if let Some(p) = &parent {
        if !w.pages.contains_key(p) {
            return (StatusCode::BAD_REQUEST, "no such ancestor").into_response();
        }
    }
    w.next += 1;
    let id = format!("{}", 1000 + w.next);
    let page = (
        title.to_string(),
        space.to_string(),
        parent,
        normalise(body),
        1,
    );
    let j = page_json(&id, &page);
    w.pages.insert(id, page);
    Json(j).into_response()
}

async fn update(State(w): State<Shared>, Path(id): Path<String>, Json(doc): Json<J>) -> Response {
    let mut w = w.lock().unwrap();
    let Some(p) = w.pages.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if doc["version"]["number"].as_i64() != Some(p.4 + 1) {
        return (StatusCode::CONFLICT, "version must be the current one + 1").into_response();
    }
    p.3 = normalise(doc["body"]["storage"]["value"].as_str().unwrap_or(""));
    p.4 += 1;
    let j = page_json(&id, p);
    Json(j).into_response()
}

async fn find_file(
    State(w): State<Shared>,
    Path(page): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let w = w.lock().unwrap();
    let results: Vec<J> = w
        .files
        .iter()
        .filter(|(_, f)| f.0 == page && Some(&f.1) == q.get("filename"))
        .map(|(id, f)| json!({"id": id, "title": f.1}))
        .collect();
    Json(json!({"results": results})).into_response()
}

async fn upload(
    w: &Shared,
    h: &HeaderMap,
    mut m: Multipart,
) -> Result<(String, String, Vec<u8>), Response> {
    if h.get("x-atlassian-token").and_then(|v| v.to_str().ok()) != Some("no-check") {
        return Err((StatusCode::FORBIDDEN, "XSRF check failed").into_response());
    }
    let _ = w;
    while let Ok(Some(field)) = m.next_field().await {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("").to_string();
            let ct = field.content_type().unwrap_or("").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response())?;
            return Ok((name, ct, bytes.to_vec()));
        }
    }
    Err((StatusCode::BAD_REQUEST, "no file part").into_response())
}

async fn new_file(
    State(w): State<Shared>,
    Path(page): Path<String>,
    h: HeaderMap,
    m: Multipart,
) -> Response {
    let (name, ct, bytes) = match upload(&w, &h, m).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut w = w.lock().unwrap();
    if w.files.values().any(|f| f.0 == page && f.1 == name) {
        return (
            StatusCode::BAD_REQUEST,
            "Cannot add a new attachment with same file name",
        )
            .into_response();
    }
    w.next += 1;
    let id = format!("att{}", w.next);
    w.files.insert(id.clone(), (page, name, ct, vec![bytes]));
    Json(json!({"results": [{"id": id}]})).into_response()
}

async fn new_version(
    State(w): State<Shared>,
    Path((page, att)): Path<(String, String)>,
    h: HeaderMap,
    m: Multipart,
) -> Response {
    let (name, _, bytes) = match upload(&w, &h, m).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut w = w.lock().unwrap();
    match w.files.get_mut(&att) {
        Some(f) if f.0 == page && f.1 == name => {
            f.3.push(bytes);
            Json(json!({"id": att})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn stand_in() -> (String, Shared) {
    let w: Shared = Arc::default();
    {
        let mut g = w.lock().unwrap();
        g.pages.insert(
            "1".into(),
            (
                "Support".into(),
                "AKTIN".into(),
                None,
                "<p>root</p>".into(),
                7,
            ),
        );
    }
    let app = Router::new()
        .route("/wiki/rest/api/content", get(find).post(create))
        .route("/wiki/rest/api/content/{id}", axum::routing::put(update))
        .route(
            "/wiki/rest/api/content/{id}/child/attachment",
            get(find_file).post(new_file),
        )
        .route(
            "/wiki/rest/api/content/{id}/child/attachment/{att}/data",
            post(new_version),
        )
        .layer(axum::middleware::from_fn_with_state(w.clone(), record))
        .with_state(w.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wiki", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, w)
}

const MAPPING: &str = r#"{
  "1": {"COMMON_NAME": "[1] Eins", "LONG_NAME": "Klinikum Eins", "JIRA_LABELS": ["eins", "nord"],
        "IMPORT_INTERFACE": "Direkt", "ROOT": {"PATIENT": "1.2.276.0.1"},
        "CONTACTS": [{"EMAIL": "chef@eins.example", "NAME": "Dr. Chef", "ROLE": "ed", "MAIN": true},
                     {"EMAIL": "weg@eins.example", "NAME": "Alt IT", "ROLE": "it", "OPTED_OUT": true}]},
  "2": {"COMMON_NAME": "[2] Zwei"}
}"#;

fn after(f: &Fixture, url: &str, token_env: &str, workdir: &std::path::Path) -> After {
    after_with(f, url, token_env, workdir, "")
}

fn after_with(
    f: &Fixture,
    url: &str,
    token_env: &str,
    workdir: &std::path::Path,
    extra: &str,
) -> After {
    let text = format!(
        "[broker]\nurl = \"{}\"\napi_key = \"k\"\nworking_dir = {:?}\n[broker.confluence]\nurl = \"{url}\"\nspace = \"AKTIN\"\ntoken = \"${{CONFLUENCE_TOKEN}}\"\n{extra}",
        f.broker.url(),
        workdir.display().to_string()
    );
    let token = token_env.to_string();
    let cfg = vitals_config::Config::parse(&text, &move |k| {
        (k == "CONFLUENCE_TOKEN").then(|| token.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    After::new(cfg.broker.as_ref().unwrap()).unwrap()
}

fn calls_since(w: &Shared, n: usize) -> Vec<String> {
    w.lock().unwrap().calls[n..].to_vec()
}

#[tokio::test]
async fn pages_created_updated_only_when_changed_and_files_attached() {
    let (url, wiki) = stand_in().await;
    let f = fixture(Options {
        mapping: Some(MAPPING),
        expected: Some("1.5.1"),
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut after = after(&f, &url, TOKEN, dir.path());
    let day1 = t("2024-06-03T06:00:00Z");
    f.broker.populate(4, day1, false);
    let c = f.collect(day1).await;
    after.run(day1, &Facts::of(&c), &f.store).await;

    let (parent_id, node1, node2) = {
        let w = wiki.lock().unwrap();
        let by_title = |t: &str| {
            w.pages
                .iter()
                .find(|(_, p)| p.0 == t)
                .map(|(id, p)| (id.clone(), p.clone()))
        };
        let (pid, parent) = by_title("Support Log Broker-Monitor").expect("parent created");
        assert_eq!(parent.2.as_deref(), Some("1"), "under Support");
        let (n1, p1) = by_title("[1] Eins").expect("node page");
        let (n2, _) = by_title("[2] Zwei").expect("node page");
        assert_eq!(p1.2.as_deref(), Some(pid.as_str()));
        assert!(
            by_title("[0] Emulated Clinic 0").is_none(),
            "unmapped nodes get no page"
        );
        // The node page: status, figures, contacts (all of them), versions, JIRA, backups.
        let b = &p1.3;
        for want in [
            "<ac:parameter ac:name=\"title\">ONLINE</ac:parameter>",
            "<ac:parameter ac:name=\"colour\">Green</ac:parameter>",
            "Klinikum Eins",
            "Monitoring seit</th><td>2024-06-03",
            "Letzter Check</th><td>2024-06-03 08:00:00",
            "<a href=\"mailto:chef@eins.example\">chef@eins.example</a>",
            "Alt IT",
            "<th>PATIENT</th><td>1.2.276.0.1</td><td>changeme</td>",
            "<th>dwh-j2ee</th><td>dwh-j2ee-1.5.1</td>",
            "<ac:parameter ac:name=\"jqlQuery\">project=AKTIN AND ( Labels=&quot;eins&quot; OR Labels=&quot;nord&quot; )</ac:parameter>",
            "<ac:structured-macro ac:name=\"attachments\"",
        ] {
            assert!(b.contains(want), "{want} in {b}");
        }
        let b2 = &w.pages[&n2].3;
        assert!(
            b2.contains("project=AKTIN AND Labels=&quot;empty&quot;"),
            "{b2}"
        );
        // The summary on the parent, and the heatmap attached to it.
        let s = &w.pages[&pid].3;
        assert!(
            s.contains("<ri:page ri:content-title=\"[1] Eins\"/>"),
            "{s}"
        );
        assert!(s.find("[1] Eins").unwrap() < s.find("[2] Zwei").unwrap());
        assert!(
            s.contains(&format!(
                "{url}/download/attachments/{pid}/error_rates_hist.png"
            )),
            "{s}"
        );
        assert!(s.contains("Fehlerrate über 7 Tage"));
        let png = w
            .files
            .values()
            .find(|f| f.0 == pid && f.1 == "error_rates_hist.png")
            .expect("heatmap");
        assert_eq!(png.2, "image/png");
        assert_eq!(&png.3[0][..8], b"\x89PNG\r\n\x1a\n");
        // The node's working-directory files as backups.
        let mut names: Vec<&str> = w
            .files
            .values()
            .filter(|f| f.0 == n1)
            .map(|f| f.1.as_str())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "1_errors_2024.csv",
                "1_import-scripts.txt",
                "1_python.txt",
                "1_rscript.txt",
                "1_stats_2024.csv",
                "1_versions.txt"
            ]
        );
        assert!(w
            .files
            .values()
            .filter(|f| f.0 == n1)
            .all(|f| f.2 == "text/csv"));
        (pid, n1, n2)
    };

    // Nothing changed: only look-ups, no writes (although Confluence rewrote the bodies).
    let n = wiki.lock().unwrap().calls.len();
    after.run(day1, &Facts::of(&c), &f.store).await;
    let calls = calls_since(&wiki, n);
    assert!(calls.iter().all(|c| c.starts_with("GET ")), "{calls:#?}");

    // The next day: pages get the next version, changed files a new version of themselves.
    let day2 = day1.add_millis(DAY);
    f.broker.advance(day2);
    let c = f.collect(day2).await;
    let n = wiki.lock().unwrap().calls.len();
    after.run(day2, &Facts::of(&c), &f.store).await;
    let calls = calls_since(&wiki, n);
    assert!(
        calls.contains(&format!("PUT /wiki/rest/api/content/{node1}")),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&format!("PUT /wiki/rest/api/content/{parent_id}")),
        "{calls:#?}"
    );
    assert!(
        !calls.iter().any(|c| c == "POST /wiki/rest/api/content"),
        "no new pages: {calls:#?}"
    );
    {
        let w = wiki.lock().unwrap();
        assert_eq!(w.pages[&node1].4, 2);
        assert_eq!(w.pages[&node2].4, 2);
        let stats = w
            .files
            .values()
            .find(|f| f.0 == node1 && f.1 == "1_stats_2024.csv")
            .unwrap();
        assert_eq!(stats.3.len(), 2, "a new version of the attachment");
        assert_eq!(String::from_utf8_lossy(&stats.3[1]).lines().count(), 3);
        let versions = w
            .files
            .values()
            .find(|f| f.0 == node1 && f.1 == "1_versions.txt")
            .unwrap();
        assert_eq!(versions.3.len(), 1, "unchanged files are not sent again");
    }

    // With `interval`, pages are written at most that often.
    let mut daily = after_with(&f, &url, TOKEN, dir.path(), "interval = \"1d\"\n");
    daily.run(day2, &Facts::of(&c), &f.store).await;
    let n = wiki.lock().unwrap().calls.len();
    daily
        .run(day2.add_millis(23 * H), &Facts::of(&c), &f.store)
        .await;
    assert!(
        calls_since(&wiki, n).is_empty(),
        "within the interval: no calls"
    );
    daily
        .run(day2.add_millis(DAY), &Facts::of(&c), &f.store)
        .await;
    assert!(!calls_since(&wiki, n).is_empty(), "after it: written");

    // A wrong token: reported, nothing written, nothing crashes.
    let mut wrong = after_with_token(&f, &url, dir.path());
    let n = wiki.lock().unwrap().calls.len();
    wrong.run(day2, &Facts::of(&c), &f.store).await;
    assert_eq!(calls_since(&wiki, n), ["GET /wiki/rest/api/content"]);
}

fn after_with_token(f: &Fixture, url: &str, workdir: &std::path::Path) -> After {
    after(f, url, "wrong-token", workdir)
}

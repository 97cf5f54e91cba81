//! Reload is whole or nothing: a new configuration that fails at any step of `App::reload`
//! leaves every part of the running one in place (checks, tokens, notifiers, status pages,
//! rules, TLS), and one that works replaces all of them at once.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::path::Path;
use tower::ServiceExt;
use vitals_app::testing::{spawn_in, TestApp};
use vitals_server::router;

const OLD_TOKEN: &str = "old-admin-secret-0123456789";
const NEW_TOKEN: &str = "new-admin-secret-0123456789";

/// A configuration; `extra` is appended, `token` is the admin's secret.
fn config(dir: &Path, token: &str, extra: &str) -> String {
    format!(
        r#"
[server]
tls_cert = "{cert}"
tls_key = "{key}"

[[asset]]
id = "web"

[[check]]
asset = "web"
name = "old"
type = "push"

[[token]]
name = "ops"
role = "admin"
secret = "{token}"

[[notifier]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[rule]]
id = "down"
status = "crit"
notifiers = ["hook"]
{extra}
"#,
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    )
}

fn write_certificate(dir: &Path) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

async fn start() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let cfg = vitals_config::Config::parse(&config(dir.path(), OLD_TOKEN, ""), &|_| None).unwrap();
    spawn_in(cfg, dir).await
}

/// What an authenticated GET answers with this token.
async fn status_with(t: &TestApp, token: &str) -> StatusCode {
    router(t.state().clone())
        .oneshot(
            Request::get("/api/v1/assets")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

fn checks_of_web(t: &TestApp) -> Vec<String> {
    t.state()
        .state()
        .read()
        .get("web")
        .map(|a| a.checks.keys().cloned().collect())
        .unwrap_or_default()
}

fn notifier_ids(t: &TestApp) -> Vec<String> {
    t.state()
        .site
        .notifiers()
        .iter()
        .map(|n| n.id.clone())
        .collect()
}

/// Everything that must not have moved after a refused reload.
async fn assert_unchanged(t: &TestApp) {
    assert_eq!(checks_of_web(t), ["old"]);
    assert_eq!(status_with(t, OLD_TOKEN).await, StatusCode::OK);
    assert_eq!(status_with(t, NEW_TOKEN).await, StatusCode::UNAUTHORIZED);
    assert_eq!(notifier_ids(t), ["hook"]);
    assert!(t.state().site.status_pages().is_empty());
    let rules = t
        .app()
        .pipeline()
        .with_engine(|e, _, _, _| e.rule_ids())
        .await
        .unwrap();
    assert_eq!(rules, ["down"]);
}

/// New checks, token, notifier, status page and rule, plus `broken` (the step that fails).
fn changed(dir: &Path, broken: &str) -> String {
    config(
        dir,
        NEW_TOKEN,
        &format!(
            r#"
[[check]]
asset = "web"
name = "new"
type = "push"

[[notifier]]
id = "second"
type = "webhook"
url = "http://127.0.0.1:9/second"

[[status_page]]
slug = "public"
title = "Public"
assets = ["web"]

[[rule]]
id = "late"
status = "warn"
{broken}
"#
        ),
    )
}

#[tokio::test]
async fn a_reload_refused_at_the_notifiers_changes_nothing() {
    let t = start().await;
    assert_unchanged(&t).await;
    // An e-mail notifier whose CA file cannot be read is refused when it is built.
    let text = changed(
        t.dir(),
        &format!(
            "[[notifier]]\nid = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = \"v@example.org\"\nto = [\"ops@example.org\"]\nca_file = \"{}\"\n",
            t.dir().join("missing-ca.pem").display()
        ),
    );
    let e = t.reload(&text).await.unwrap_err().to_string();
    assert!(e.contains("reload refused") && e.contains("ca_file"), "{e}");
    assert_unchanged(&t).await;
}

#[tokio::test]
async fn a_reload_refused_at_the_certificate_changes_nothing() {
    let t = start().await;
    std::fs::write(t.dir().join("bad.pem"), "not a certificate").unwrap();
    let text = changed(t.dir(), "").replace(
        &t.dir().join("cert.pem").display().to_string(),
        &t.dir().join("bad.pem").display().to_string(),
    );
    let e = t.reload(&text).await.unwrap_err().to_string();
    assert!(
        e.contains("reload refused") && e.contains("tls_cert"),
        "{e}"
    );
    assert_unchanged(&t).await;
}

#[tokio::test]
async fn a_reload_that_works_replaces_everything_at_once() {
    let t = start().await;
    // `[broker]` is reloaded too: the collector starts with it.
    let text = changed(
        t.dir(),
        "[broker]\nurl = \"http://127.0.0.1:9/broker/\"\napi_key = \"k\"\n",
    );
    let r = t.reload(&text).await.unwrap();
    assert_eq!(r.checks, 2);
    assert_eq!(checks_of_web(&t), ["new", "old"]);
    assert_eq!(status_with(&t, NEW_TOKEN).await, StatusCode::OK);
    assert_eq!(status_with(&t, OLD_TOKEN).await, StatusCode::UNAUTHORIZED);
    assert_eq!(notifier_ids(&t), ["hook", "second"]);
    assert_eq!(t.state().site.status_pages().len(), 1);
    let rules = t
        .app()
        .pipeline()
        .with_engine(|e, _, _, _| e.rule_ids())
        .await
        .unwrap();
    // The broker's default rules come only without configured rules; the collector runs.
    assert_eq!(rules, ["down", "late"]);
    let monitor = router(t.state().clone())
        .oneshot(
            Request::get("/monitor?details")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(monitor.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("fleet"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn a_reload_refused_at_the_store_stores_nothing_of_it() {
    let t = start().await;
    // The new assets and the alert changes of the new rules are one commit; a store that
    // refuses it keeps neither.
    let text = changed(t.dir(), "[[asset]]\nid = \"added\"\n");
    vitals_store_sqlite::failpoints::refuse_writes(true);
    let refused = t.reload(&text).await;
    vitals_store_sqlite::failpoints::refuse_writes(false);
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("reload refused"), "{e}");
    assert_unchanged(&t).await;
    let stored = |list: Vec<vitals_store::AssetRecord>| list.into_iter().any(|a| a.id == "added");
    assert!(!stored(t.store().assets().await.unwrap()));
    // Once the store takes writes again, the same configuration loads whole.
    t.reload(&text).await.unwrap();
    assert!(stored(t.store().assets().await.unwrap()));
    assert_eq!(checks_of_web(&t), ["new", "old"]);
}

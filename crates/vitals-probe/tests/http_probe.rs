//! The HTTP probe against real servers on 127.0.0.1: checks, health bodies, redirects and
//! hostile targets. Assertions are on statuses, reasons and values, never on timings.

mod http_support;

use http_support::{closed_port, serve, serve_raw, value, Reply, Req};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use vitals_core::spec::{HealthFormat, HttpSpec};
use vitals_core::Status;
use vitals_probe::http::HttpProber;
use vitals_probe::Outcome;

const TIMEOUT: Duration = Duration::from_secs(2);

fn routes(req: &Req) -> Reply {
    let target = req.target.as_str();
    if let Some(n) = target.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(0);
        return if n == 0 {
            Reply::redirect(302, "../ok")
        } else {
            Reply::redirect(302, &format!("/redirect/{}", n - 1))
        };
    }
    if let Some(code) = target.strip_prefix("/status/") {
        return Reply::text(code.parse().unwrap_or(500), "status page");
    }
    match target {
        "/ok" => Reply::text(200, "hello world"),
        "/loop" => Reply::redirect(302, "/loop"),
        "/absolute" => {
            let host = req.header("host").unwrap_or("");
            Reply::redirect(301, &format!("http://{host}/ok"))
        }
        "/see-other" => Reply::redirect(303, "/echo"),
        "/echo" => {
            let mut text = format!(
                "{} ua={} x-token={} host={} connection={} auth={}\n",
                req.method,
                req.header("user-agent").unwrap_or("-"),
                req.header("x-token").unwrap_or("-"),
                req.header("host").unwrap_or("-"),
                req.header("connection").unwrap_or("-"),
                req.header("authorization").unwrap_or("-"),
            );
            text.push_str(&String::from_utf8_lossy(&req.body));
            Reply::text(200, &text)
        }
        "/patient" => Reply::with_type(
            200,
            "application/json",
            r#"{"items":[{"id":17,"name":"Probe Patient","cpr":"0101011234"}],"count":1}"#,
        ),
        "/health" => Reply::with_type(
            503,
            "application/health+json",
            r#"{"status":"fail","version":"2.1",
                "checks":{"postgres:connections":[{"componentId":"db1","status":"pass",
                          "observedValue":12,"observedUnit":"connections"}],
                          "broker:reachable":[{"status":"fail","output":"connection refused"}]}}"#,
        ),
        "/actuator/health" => Reply::with_type(
            503,
            "application/vnd.spring-boot.actuator.v3+json",
            r#"{"status":"DOWN","components":{
                 "db":{"status":"DOWN","components":{
                    "primary":{"status":"DOWN","details":{"error":"org.postgresql.util.PSQLException: Connection refused"}},
                    "replica":{"status":"UP"}}},
                 "ping":{"status":"UP"}}}"#,
        ),
        "/monitor?details" => Reply::text(
            200,
            "MinLog2 database : OK\nStamdata database : FAIL connection refused\n",
        ),
        "/monitor" => Reply::text(200, "OK"),
        "/slow" => Reply::Delayed(
            Duration::from_millis(300),
            Box::new(Reply::text(200, "late")),
        ),
        "/drip-body" => Reply::DripBody,
        "/drip-head" => Reply::DripHead,
        "/silent" => Reply::Silent,
        "/endless" => Reply::EndlessBody,
        "/big" => Reply::text(200, &"b".repeat(100_000)),
        "/close" => Reply::Close,
        "/reset" => Reply::Reset,
        _ => Reply::text(404, "not found"),
    }
}

async fn server() -> SocketAddr {
    serve(routes).await
}

fn spec(addr: SocketAddr, path: &str) -> HttpSpec {
    HttpSpec::new(format!("http://{addr}{path}"))
}

async fn run(spec: &HttpSpec) -> Outcome {
    HttpProber::new().probe(spec, TIMEOUT).await
}

#[track_caller]
fn assert_reason(out: &Outcome, status: Status, reason_part: &str) {
    assert_eq!(out.status, status, "outcome: {out:?}");
    assert!(
        out.reason.contains(reason_part),
        "reason {:?} lacks {reason_part:?}",
        out.reason
    );
}

#[tokio::test]
async fn ok_200_with_values() {
    let addr = server().await;
    let out = run(&spec(addr, "/ok")).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "HTTP 200");
    assert_eq!(value(&out.values, "status_code"), Some(200.0));
    assert_eq!(value(&out.values, "body_bytes"), Some(11.0));
    assert_eq!(
        value(&out.values, "dns_ms"),
        Some(0.0),
        "IP literal: no lookup"
    );
    for name in ["connect_ms", "ttfb_ms", "total_ms"] {
        assert!(value(&out.values, name).is_some_and(|v| v >= 0.0), "{name}");
    }
    assert_eq!(value(&out.values, "tls_ms"), None);
    assert_eq!(value(&out.values, "cert_days_left"), None);
    assert!(out.duration_us > 0);
}

#[tokio::test]
async fn prober_is_reused_across_probes() {
    let addr = server().await;
    let prober = HttpProber::new();
    for _ in 0..20 {
        let out = prober.probe(&spec(addr, "/ok"), TIMEOUT).await;
        assert_eq!(out.status, Status::Ok);
    }
}

#[tokio::test]
async fn host_name_is_resolved() {
    let addr = server().await;
    let out = run(&HttpSpec::new(format!(
        "http://localhost:{}/ok",
        addr.port()
    )))
    .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert!(value(&out.values, "dns_ms").is_some());
}

#[tokio::test]
async fn unexpected_status() {
    let addr = server().await;
    assert_reason(
        &run(&spec(addr, "/status/503")).await,
        Status::Crit,
        "HTTP 503 (expected 2xx)",
    );
    let mut s = spec(addr, "/status/404");
    s.expect_status = vec![200, 204];
    let out = run(&s).await;
    assert_eq!(out.reason, "HTTP 404 (expected one of 200, 204)");
    assert_eq!(value(&out.values, "status_code"), Some(404.0));
    s.expect_status = vec![404];
    assert_eq!(run(&s).await.status, Status::Ok);
}

#[tokio::test]
async fn body_checks() {
    let addr = server().await;
    let mut s = spec(addr, "/ok");
    s.body_contains = Some("hello".into());
    s.body_not_contains = Some("error".into());
    s.body_regex = Some(r"^hello \w+$".into());
    assert_eq!(run(&s).await.status, Status::Ok);

    s.body_contains = Some("goodbye".into());
    assert_reason(
        &run(&s).await,
        Status::Crit,
        r#"body does not contain "goodbye""#,
    );

    s.body_contains = None;
    s.body_not_contains = Some("world".into());
    assert_reason(&run(&s).await, Status::Crit, r#"body contains "world""#);

    s.body_not_contains = None;
    s.body_regex = Some(r"^\d+$".into());
    assert_reason(&run(&s).await, Status::Crit, r"body does not match /^\d+$/");

    s.body_regex = Some("(unclosed".into());
    assert_reason(&run(&s).await, Status::Unknown, "invalid body_regex: ");
}

#[tokio::test]
async fn failures_are_combined_worst_first() {
    let addr = server().await;
    let mut s = spec(addr, "/slow");
    s.warn_latency = Some(Duration::from_millis(50));
    s.body_contains = Some("early".into());
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        r#"body does not contain "early"; response slower than 50ms"#
    );
}

#[tokio::test]
async fn latency_thresholds() {
    let addr = server().await;
    let mut s = spec(addr, "/slow");
    s.warn_latency = Some(Duration::from_millis(50));
    assert_reason(&run(&s).await, Status::Warn, "response slower than 50ms");
    s.crit_latency = Some(Duration::from_millis(100));
    assert_reason(&run(&s).await, Status::Crit, "response slower than 100ms");
    s.warn_latency = Some(Duration::from_secs(10));
    s.crit_latency = Some(Duration::from_secs(20));
    assert_eq!(run(&s).await.status, Status::Ok);
}

#[tokio::test]
async fn probe_patient_json_conditions() {
    let addr = server().await;
    let mut s = spec(addr, "/patient");
    s.json = vec![
        "/items/0/id == 17".into(),
        r#"/items/0/name == "Probe Patient""#.into(),
        "/count >= 1".into(),
        "/items/0/cpr".into(),
    ];
    assert_eq!(run(&s).await.status, Status::Ok);

    s.json = vec!["/items/0/id == 18".into(), "/items/1".into()];
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "/items/0/id is 17 (expected == 18); /items/1 is missing"
    );

    let mut s = spec(addr, "/ok");
    s.json = vec!["/status".into()];
    assert_reason(&run(&s).await, Status::Crit, "body is not JSON");

    s.json = vec!["status == 1".into()];
    assert_reason(&run(&s).await, Status::Unknown, "invalid json condition");
}

#[tokio::test]
async fn health_json_with_a_failing_component() {
    let addr = server().await;
    let mut s = spec(addr, "/health");
    s.health = HealthFormat::Auto;
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "component broker:reachable fail: connection refused"
    );
    assert_eq!(out.components.len(), 2);
    let db = out
        .components
        .iter()
        .find(|c| c.name == "postgres:connections")
        .unwrap();
    assert_eq!(db.status, Status::Ok);
    assert_eq!(db.value.as_deref(), Some("12 connections"));

    s.health = HealthFormat::HealthJson;
    assert_eq!(run(&s).await.reason, out.reason);
}

#[tokio::test]
async fn actuator_nested_down_with_503_names_components() {
    let addr = server().await;
    let mut s = spec(addr, "/actuator/health");
    s.health = HealthFormat::Actuator;
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "component db/primary DOWN: org.postgresql.util.PSQLException: Connection refused"
    );
    assert!(!out.reason.contains("503"));
    assert_eq!(value(&out.values, "status_code"), Some(503.0));
    let names: Vec<&str> = out.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"db/replica") && names.contains(&"ping"));

    // An explicit expect_status still applies next to the body's verdict.
    s.expect_status = vec![200];
    let out = run(&s).await;
    assert!(out.reason.contains("component db/primary DOWN"));
    assert!(out.reason.contains("HTTP 503 (expected 200)"));
}

#[tokio::test]
async fn monitor_details_lines_with_one_fail() {
    let addr = server().await;
    let mut s = spec(addr, "/monitor?details");
    s.health = HealthFormat::Lines;
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "component Stamdata database FAIL: connection refused"
    );
    assert_eq!(out.components.len(), 2);
    assert_eq!(out.components[0].name, "MinLog2 database");
    assert_eq!(out.components[0].status, Status::Ok);

    s.health = HealthFormat::Auto;
    assert_eq!(run(&s).await.reason, out.reason);
}

#[tokio::test]
async fn health_falls_back_to_http_status_without_a_health_body() {
    let addr = server().await;
    let mut s = spec(addr, "/monitor");
    s.health = HealthFormat::Auto;
    let out = run(&s).await;
    assert_eq!((out.status, out.reason.as_str()), (Status::Ok, "HTTP 200"));
    assert!(out.components.is_empty());

    let mut s = spec(addr, "/status/503");
    s.health = HealthFormat::Actuator;
    assert_reason(&run(&s).await, Status::Crit, "HTTP 503 (expected 2xx)");
}

#[tokio::test]
async fn redirects_are_followed() {
    let addr = server().await;
    let out = run(&spec(addr, "/redirect/3")).await;
    assert_eq!((out.status, out.reason.as_str()), (Status::Ok, "HTTP 200"));
    assert_eq!(value(&out.values, "body_bytes"), Some(11.0));

    let out = run(&spec(addr, "/absolute")).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");

    let mut s = spec(addr, "/redirect/3");
    s.max_redirects = 2;
    assert_reason(&run(&s).await, Status::Crit, "too many redirects (2)");

    s.max_redirects = 0;
    assert_reason(&run(&s).await, Status::Crit, "HTTP 302 (expected 2xx)");

    let mut s = spec(addr, "/redirect/1");
    s.expect_status = vec![302];
    assert_eq!(run(&s).await.status, Status::Ok, "an expected 3xx is final");
}

#[tokio::test]
async fn redirect_loop_is_bounded() {
    let addr = server().await;
    let out = run(&spec(addr, "/loop")).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "too many redirects (5)");
}

#[tokio::test]
async fn see_other_after_post_continues_as_get() {
    let addr = server().await;
    let mut s = spec(addr, "/see-other");
    s.method = "POST".into();
    s.body = Some("payload".into());
    s.body_contains = Some("GET ua=".into());
    let out = run(&s).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
}

#[tokio::test]
async fn request_is_sent_as_specified() {
    let addr = server().await;
    let mut s = spec(addr, "/echo");
    s.method = "PUT".into();
    s.body = Some(r#"{"probe":true}"#.into());
    s.headers.insert("X-Token".into(), "secret-1".into());
    s.headers.insert("Connection".into(), "keep-alive".into());
    s.body_contains = Some(format!(
        "PUT ua=vitals/{} x-token=secret-1 host={addr} connection=close auth=-\n{{\"probe\":true}}",
        env!("CARGO_PKG_VERSION")
    ));
    let out = run(&s).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");

    s.headers.insert("User-Agent".into(), "custom/1".into());
    s.body_contains = Some("ua=custom/1 ".into());
    assert_eq!(run(&s).await.status, Status::Ok);

    s.headers.insert("Bad Header".into(), "x".into());
    assert_reason(&run(&s).await, Status::Unknown, "invalid header name");
}

#[tokio::test]
async fn invalid_specs_are_unknown() {
    let mut s = HttpSpec::new("not a url");
    assert_reason(&run(&s).await, Status::Unknown, "invalid url");
    s.url = "ftp://127.0.0.1/".into();
    assert_reason(
        &run(&s).await,
        Status::Unknown,
        "unsupported scheme \"ftp\"",
    );
    s.url = "http://127.0.0.1:1/".into();
    s.method = "GE T".into();
    assert_reason(&run(&s).await, Status::Unknown, "invalid method");
}

#[tokio::test]
async fn connection_refused() {
    let addr = closed_port().await;
    let out = run(&spec(addr, "/")).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, format!("connect to {addr} refused"));
}

#[tokio::test]
async fn unresolvable_host() {
    let out = run(&HttpSpec::new("http://vitals-test.invalid/")).await;
    assert_eq!(out.status, Status::Crit);
    assert!(
        out.reason.starts_with("cannot resolve vitals-test.invalid")
            || out.reason.ends_with("during DNS resolution"),
        "{out:?}"
    );
}

#[tokio::test]
async fn slow_drip_body_is_bounded_by_the_timeout() {
    let addr = server().await;
    let out = HttpProber::new()
        .probe(&spec(addr, "/drip-body"), Duration::from_secs(1))
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "timed out after 1s reading the body");
    assert_eq!(value(&out.values, "status_code"), Some(200.0));
}

#[tokio::test]
async fn slow_headers_are_bounded_by_the_timeout() {
    let addr = server().await;
    let out = HttpProber::new()
        .probe(&spec(addr, "/drip-head"), Duration::from_secs(1))
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "timed out after 1s reading the response headers"
    );
}

#[tokio::test]
async fn silent_server_times_out_waiting_for_the_first_byte() {
    let addr = server().await;
    let out = HttpProber::new()
        .probe(&spec(addr, "/silent"), Duration::from_millis(500))
        .await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(
        out.reason,
        "timed out after 500ms waiting for the first byte"
    );
    assert!(value(&out.values, "connect_ms").is_some());
}

#[tokio::test]
async fn endless_body_is_capped() {
    let addr = server().await;
    let mut s = spec(addr, "/endless");
    s.max_body_bytes = 64 * 1024;
    let out = run(&s).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "body larger than 65536 bytes");
    assert!(value(&out.values, "body_bytes").is_some_and(|n| n > 65536.0));

    // Kept bodies are capped the same way.
    s.body_contains = Some("z".into());
    assert_reason(&run(&s).await, Status::Crit, "body larger than 65536 bytes");
}

#[tokio::test]
async fn declared_large_body_is_refused_without_reading_it() {
    let addr = server().await;
    let mut s = spec(addr, "/big");
    s.max_body_bytes = 1000;
    let out = run(&s).await;
    assert_eq!(out.reason, "body larger than 1000 bytes");
    assert_eq!(value(&out.values, "body_bytes"), Some(100_000.0));
    s.max_body_bytes = 100_000;
    assert_eq!(run(&s).await.status, Status::Ok);
}

#[tokio::test]
async fn connection_closed_before_response() {
    let addr = server().await;
    let out = run(&spec(addr, "/close")).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "connection closed before the response");
}

#[tokio::test]
async fn connection_reset_before_response() {
    let addr = server().await;
    let out = run(&spec(addr, "/reset")).await;
    assert_eq!(out.status, Status::Crit);
    assert!(
        out.reason == "connection reset before the response"
            || out.reason == "connection closed before the response",
        "{out:?}"
    );
}

#[tokio::test]
async fn garbage_response_is_invalid_http() {
    let addr = serve_raw(|mut tcp| async move {
        let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        let _ = tcp.shutdown().await;
        // Keep the socket until the client has read.
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    assert_reason(
        &run(&spec(addr, "/")).await,
        Status::Crit,
        "invalid HTTP response",
    );
}

#[tokio::test]
async fn body_cut_short_is_reported() {
    let addr = serve_raw(|mut tcp| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
            .await;
        let _ = tcp.shutdown().await;
        // Keep the socket until the client has read.
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let out = run(&spec(addr, "/")).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "connection closed while reading the body");
}

#[tokio::test]
async fn a_followed_redirect_body_is_not_read() {
    let target = server().await;
    let addr = serve_raw(move |mut tcp| async move {
        let head = format!("HTTP/1.1 302 Found\r\nLocation: http://{target}/ok\r\n\r\n");
        if tcp.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        // An endless body: only the client hanging up ends it.
        let chunk = vec![b'r'; 16 * 1024];
        while tcp.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let mut s = spec(addr, "/");
    s.max_body_bytes = 1000;
    let out = run(&s).await;
    assert_eq!(
        (out.status, out.reason.as_str()),
        (Status::Ok, "HTTP 200"),
        "{out:?}"
    );
    assert_eq!(value(&out.values, "body_bytes"), Some(11.0));
}

#[tokio::test]
async fn credentials_stay_with_their_origin_on_redirects() {
    let addr = server().await;
    // Same origin: kept.
    let mut s = spec(addr, "/see-other");
    s.headers
        .insert("Authorization".into(), "Bearer t0k3n".into());
    s.body_contains = Some("auth=Bearer t0k3n".into());
    assert_eq!(run(&s).await.status, Status::Ok);

    // Another origin (another port): dropped, other headers kept.
    let elsewhere = serve(move |_| Reply::redirect(302, &format!("http://{addr}/echo"))).await;
    let mut s = spec(elsewhere, "/");
    s.headers
        .insert("Authorization".into(), "Bearer t0k3n".into());
    s.headers.insert("X-Token".into(), "kept".into());
    s.body_contains = Some("x-token=kept".into());
    s.body_not_contains = Some("t0k3n".into());
    let out = run(&s).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
}

#[tokio::test]
async fn captures_a_version_by_regex_or_json_pointer() {
    use vitals_core::spec::CaptureSpec;
    let addr = serve(|req| match req.target.as_str() {
        "/version" => Reply::text(200, "MinLog2 Lookup\nVersion: 2.5.1 (build 77)\n"),
        "/version.json" => Reply::with_type(
            200,
            "application/json",
            r#"{"build": {"version": "2.5.0", "number": 77}}"#,
        ),
        _ => Reply::text(404, "no"),
    })
    .await;
    let capture = |regex: Option<&str>, json: Option<&str>| CaptureSpec {
        name: "version".into(),
        regex: regex.map(String::from),
        json: json.map(String::from),
    };
    let mut s = spec(addr, "/version");
    s.capture = Some(capture(Some(r"Version:\s*(\S+)"), None));
    let out = run(&s).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.components.len(), 1);
    assert_eq!(out.components[0].name, "version");
    assert_eq!(out.components[0].value.as_deref(), Some("2.5.1"));
    assert_eq!(out.components[0].status, Status::Ok);

    // No group: the whole match.
    s.capture = Some(capture(Some(r"build \d+"), None));
    assert_eq!(
        run(&s).await.components[0].value.as_deref(),
        Some("build 77")
    );

    let mut j = spec(addr, "/version.json");
    j.capture = Some(capture(None, Some("/build/version")));
    assert_eq!(run(&j).await.components[0].value.as_deref(), Some("2.5.0"));
    j.capture = Some(capture(None, Some("/build/number")));
    assert_eq!(run(&j).await.components[0].value.as_deref(), Some("77"));

    // Nothing to capture: a warning naming it, and no component.
    j.capture = Some(capture(None, Some("/build/commit")));
    let out = run(&j).await;
    assert_reason(
        &out,
        Status::Warn,
        "capture version: /build/commit is missing",
    );
    assert!(out.components.is_empty());
    s.capture = Some(capture(Some(r"Release: (\S+)"), None));
    assert_reason(
        &run(&s).await,
        Status::Warn,
        "capture version: /Release: (\\S+)/ matched nothing",
    );
    // A failed request says why, not that the capture failed.
    let mut down = spec(addr, "/missing");
    down.capture = Some(capture(Some("(.*)"), None));
    let out = run(&down).await;
    assert_reason(&out, Status::Crit, "HTTP 404");
    assert!(out.components.is_empty(), "an error page has no version");
}

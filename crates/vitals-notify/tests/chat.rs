//! Slack and Teams against loopback receivers standing in for the real webhooks (which cannot
//! run here): the JSON each receives has the documented shape.

mod support;

use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;
use support::{alert, notification, recorder};
use vitals_core::notify::{NotificationKind, NotifierSpec, SlackSpec, TeamsSpec};
use vitals_core::{Status, Timestamp};

fn slack(url: String) -> NotifierSpec {
    NotifierSpec::Slack(SlackSpec {
        url,
        timeout: Duration::from_secs(5),
    })
}

fn teams(url: String) -> NotifierSpec {
    NotifierSpec::Teams(TeamsSpec {
        url,
        timeout: Duration::from_secs(5),
    })
}

fn field_texts(block: &Value) -> Vec<String> {
    block["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn slack_gets_text_header_fields_reason_and_context() {
    let (addr, log) = recorder(StatusCode::OK, "ok").await;
    let url = format!("http://{addr}/services/T000/B000/XXXXSECRET");
    let notifier = vitals_notify::build("slack", &slack(url)).unwrap();
    let mut n = notification("5-slack-firing", NotificationKind::Firing, vec![alert(5)]);
    n.alerts[0].started = Timestamp(n.created.millis() - 120_000);
    let d = notifier.send(&n).await.unwrap();
    assert_eq!(d.detail, "HTTP 200");
    assert_eq!(d.recipients, [format!("http://{addr}")]);

    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/services/T000/B000/XXXXSECRET");
    let body = got[0].json();
    assert_eq!(
        body["text"],
        ":red_circle: FIRING: minlog2-5/monitor is CRIT"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(
        blocks[0]["text"]["text"],
        ":red_circle: FIRING: minlog2-5/monitor is CRIT"
    );
    assert_eq!(blocks[1]["type"], "section");
    let fields = field_texts(&blocks[1]);
    assert_eq!(fields[0], "*Asset*\nMinLog2 node 5 (minlog2-5)");
    assert_eq!(fields[1], "*Check*\nmonitor");
    assert_eq!(fields[2], "*Status*\n:red_circle: CRIT");
    assert!(fields[3].starts_with("*Since*\n<!date^"), "{}", fields[3]);
    assert!(fields[3].ends_with("(2m)"), "{}", fields[3]);
    assert_eq!(fields[4], "*Group*\nnational");
    assert_eq!(fields[5], "*Value*\n503");
    // The reason, with Slack's control characters escaped.
    assert_eq!(blocks[2]["type"], "section");
    assert_eq!(
        blocks[2]["text"]["text"],
        "HTTP 503 &lt;Service Unavailable&gt; &amp; retrying"
    );
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    let ctx = context["elements"][0]["text"].as_str().unwrap();
    assert!(
        ctx.contains("<https://vitals.example/alerts/5|Open in Vitals>"),
        "{ctx}"
    );
    assert!(ctx.contains("notification `5-slack-firing`"), "{ctx}");
}

#[tokio::test]
async fn slack_lists_grouped_alerts_and_marks_resolution() {
    let (addr, log) = recorder(StatusCode::OK, "ok").await;
    let notifier = vitals_notify::build("slack", &slack(format!("http://{addr}/hook"))).unwrap();
    let mut warn = alert(2);
    warn.status = Status::Warn;
    warn.title = "minlog2-2/monitor is WARN".into();
    let n = notification("g", NotificationKind::Firing, vec![alert(1), warn]);
    notifier.send(&n).await.unwrap();
    let mut pop = alert(3);
    pop.assets = vec!["n1".into(), "n2".into(), "n3".into()];
    let mut resolved = notification("r", NotificationKind::Resolved, vec![pop]);
    resolved.alerts[0].resolved = Some(Timestamp(resolved.created.millis() - 1_000));
    notifier.send(&resolved).await.unwrap();

    let got = log.lock().unwrap().clone();
    let grouped = got[0].json();
    assert_eq!(
        grouped["text"],
        ":red_circle: FIRING: minlog2-1/monitor is CRIT and 1 more"
    );
    let list = grouped["blocks"][1]["text"]["text"].as_str().unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with(":red_circle: *minlog2-1/monitor is CRIT*"),
        "{list}"
    );
    assert!(
        lines[1].starts_with(":large_orange_circle: *minlog2-2/monitor is WARN*"),
        "{list}"
    );

    let r = got[1].json();
    assert_eq!(
        r["text"],
        ":white_check_mark: RESOLVED: minlog2-3/monitor is CRIT"
    );
    let blocks = r["blocks"].as_array().unwrap();
    let texts: Vec<String> = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "*Failing assets (3)*\n`n1`, `n2`, `n3`"),
        "{texts:?}"
    );
}

#[tokio::test]
async fn slack_errors_are_classified_without_the_url_token() {
    // Slack answers 404 "no_service" for a deleted webhook, 403 "invalid_token", 429 when
    // rate limited.
    let (addr, _log) = recorder(StatusCode::NOT_FOUND, "no_service").await;
    let notifier = vitals_notify::build(
        "slack",
        &slack(format!("http://{addr}/services/T/B/XXXXSECRET")),
    )
    .unwrap();
    let n = notification("x", NotificationKind::Firing, vec![alert(1)]);
    let e = notifier.send(&n).await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(
        e.to_string(),
        format!("http://{addr} answered HTTP 404: no_service")
    );
    let (addr, _log) = recorder(StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let notifier = vitals_notify::build("slack", &slack(format!("http://{addr}/x"))).unwrap();
    assert!(notifier.send(&n).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_with_facts_and_a_link() {
    let (addr, log) = recorder(StatusCode::ACCEPTED, "").await;
    let url = format!("http://{addr}/workflows/abc/triggers/manual/paths/invoke?sig=SECRET");
    let notifier = vitals_notify::build("teams", &teams(url)).unwrap();
    let n = notification(
        "9-teams-escalation",
        NotificationKind::Escalation,
        vec![alert(9)],
    );
    let d = notifier.send(&n).await.unwrap();
    assert_eq!(d.detail, "HTTP 202");
    assert_eq!(d.recipients, [format!("http://{addr}")]);

    let got = log.lock().unwrap().clone();
    let body = got[0].json();
    assert_eq!(body["type"], "message");
    let att = &body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let items = card["body"].as_array().unwrap();
    assert_eq!(items[0]["type"], "TextBlock");
    assert_eq!(items[0]["text"], "ESCALATION: minlog2-9/monitor is CRIT");
    assert_eq!(items[0]["color"], "Attention");
    assert_eq!(
        items[1]["text"],
        "HTTP 503 <Service Unavailable> & retrying"
    );
    let facts = items
        .iter()
        .find(|i| i["type"] == "FactSet")
        .expect("a FactSet")["facts"]
        .as_array()
        .unwrap()
        .clone();
    let titles: Vec<&str> = facts.iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Asset", "Check", "Status", "Since", "Group", "Value", "Rule"]
    );
    assert_eq!(facts[0]["value"], "MinLog2 node 9 (minlog2-9)");
    assert_eq!(facts[2]["value"], "CRIT");
    let since = facts[3]["value"].as_str().unwrap();
    assert!(
        since.starts_with("{{DATE(") && since.contains("{{TIME("),
        "{since}"
    );
    assert_eq!(facts[6]["value"], "minlog2-down");
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["url"], "https://vitals.example/alerts/9");
}

#[tokio::test]
async fn teams_lists_grouped_alerts_and_colours_resolution_green() {
    let (addr, log) = recorder(StatusCode::OK, "").await;
    let notifier = vitals_notify::build("teams", &teams(format!("http://{addr}/x"))).unwrap();
    let mut n = notification(
        "r",
        NotificationKind::Resolved,
        vec![alert(1), alert(2), alert(3)],
    );
    for a in &mut n.alerts {
        a.resolved = Some(n.created);
    }
    notifier.send(&n).await.unwrap();
    let body = log.lock().unwrap()[0].json();
    let items = body["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items[0]["color"], "Good");
    assert_eq!(
        items[0]["text"],
        "RESOLVED: minlog2-1/monitor is CRIT and 2 more"
    );
    let listed: Vec<&str> = items[1..4]
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    for (i, text) in listed.iter().enumerate() {
        assert!(
            text.starts_with(&format!(
                "- **minlog2-{}/monitor is CRIT** — CRIT since",
                i + 1
            )),
            "{text}"
        );
    }
}

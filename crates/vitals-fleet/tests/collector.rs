//! The collector against the emulated broker over HTTP on loopback, rule by rule at the
//! boundaries. Time is injected, so day boundaries are exact.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::*;
use vitals_core::Status;
use vitals_fleet::csv;
use vitals_fleet::daily::{day_of, year_days};
use vitals_fleet::emulator::Fault;
use vitals_fleet::xml::ImportError;

/// Sets a node whose statistics are fresh at `now` apart from the given contact and write.
fn node(f: &Fixture, id: u64, now: vitals_core::Timestamp, contact_age: i64, write_age: i64) {
    f.broker.add_node(id, &format!("Clinic {id}"));
    f.broker.set_contact(id, Some(now.add_millis(-contact_age)));
    f.broker.set_stats(
        id,
        stats(
            now.add_millis(-30 * DAY),
            100,
            0,
            Some(now.add_millis(-write_age)),
        ),
    );
}

#[tokio::test]
async fn offline_and_no_imports_at_the_threshold_in_rounded_hours() {
    let f = fixture(Options {
        mapping: Some(r#"{"5": {"COMMON_NAME": "[5] Slow clinic", "THRESHOLD_HOURS_FAILURE": 48},
                         "6": {"COMMON_NAME": "[6] Slow clinic", "THRESHOLD_HOURS_FAILURE": "48"}}"#),
        ..Options::default()
    })
    .await;
    let now = t("2024-03-10T12:00:00Z");
    node(&f, 1, now, 23 * H, H); // 23 h < 24 h
    node(&f, 2, now, 25 * H, H); // 25 h > 24 h
    node(&f, 3, now, H, 23 * H);
    node(&f, 4, now, H, 25 * H);
    node(&f, 5, now, 47 * H, H); // per-node threshold 48 h
    node(&f, 6, now, 49 * H, H);
    node(&f, 7, now, 24 * H + H / 2, H); // 24 h 30 min rounds to 24 (even): not more than 24
    node(&f, 8, now, 24 * H + H / 2 + 1, H); // just past the half hour: 25 > 24
    node(&f, 9, now, H, 25 * H + H / 2); // 25 h 30 min rounds to 26: NO IMPORTS
    let c = f.collect(now).await;
    assert_eq!(status_of(&c, "1"), "ONLINE");
    assert_eq!(status_of(&c, "2"), "OFFLINE");
    assert_eq!(obs(&c, "2", "status").status, Status::Crit);
    assert_eq!(obs(&c, "2", "status").value("notify"), Some(1.0));
    assert_eq!(status_of(&c, "3"), "ONLINE");
    assert_eq!(status_of(&c, "4"), "NO IMPORTS");
    assert_eq!(obs(&c, "4", "status").value("notify"), Some(1.0));
    assert_eq!(status_of(&c, "5"), "ONLINE");
    assert_eq!(status_of(&c, "6"), "OFFLINE");
    assert_eq!(status_of(&c, "7"), "ONLINE");
    assert_eq!(status_of(&c, "8"), "OFFLINE");
    assert_eq!(status_of(&c, "9"), "NO IMPORTS");
    assert_eq!(obs(&c, "1", "status").value("notify"), Some(0.0));
    // One value per mailed state, so each state is its own alert.
    assert_eq!(obs(&c, "2", "status").value("offline"), Some(1.0));
    assert_eq!(obs(&c, "2", "status").value("no_imports"), Some(0.0));
    assert_eq!(obs(&c, "4", "status").value("offline"), Some(0.0));
    assert_eq!(obs(&c, "4", "status").value("no_imports"), Some(1.0));
    assert_eq!(
        obs(&c, "8", "status").value("hours_since_contact"),
        Some(25.0)
    );
    // Names come from the mapping, else from the certificate's CN.
    let name = |id: &str| c.assets.iter().find(|a| a.id == id).unwrap().name.clone();
    assert_eq!(name("5"), "[5] Slow clinic");
    assert_eq!(name("1"), "Clinic 1");
    assert_eq!(c.nodes, 9);
    assert_eq!(c.failed, 0);
}

#[tokio::test]
async fn error_rate_boundaries() {
    let f = fixture(Options::default()).await;
    let day1 = t("2024-03-10T06:00:00Z");
    let day2 = day1.add_millis(DAY);
    let start = day1.add_millis(-10 * DAY);
    // (successes, failures) of day 2 and the expected status.
    let cases = [
        (9901, 99, "ONLINE", 0.99),
        (99, 1, "LOW ERROR RATE", 1.0),
        (9501, 499, "LOW ERROR RATE", 4.99),
        (95, 5, "HIGH ERROR RATE", 5.0),
        (9001, 999, "HIGH ERROR RATE", 9.99),
        (9, 1, "EXTREME ERROR RATE", 10.0),
    ];
    for (i, _) in cases.iter().enumerate() {
        let id = i as u64;
        f.broker.add_node(id, &format!("Clinic {id}"));
        f.broker.set_contact(id, Some(day1));
        f.broker.set_stats(id, stats(start, 1000, 10, Some(day1)));
    }
    f.collect(day1).await;
    for (i, (ok, bad, _, _)) in cases.iter().enumerate() {
        let id = i as u64;
        f.broker.set_contact(id, Some(day2));
        f.broker
            .set_stats(id, stats(start, 1000 + ok, 10 + bad, Some(day2)));
    }
    let c = f.collect(day2).await;
    for (i, (_, _, want, rate)) in cases.iter().enumerate() {
        let id = i.to_string();
        assert_eq!(status_of(&c, &id), *want, "rate {rate}");
        assert_eq!(
            obs(&c, &id, "status").value("error_rate_today"),
            Some(*rate)
        );
    }
    assert_eq!(obs(&c, "1", "status").status, Status::Warn);
    assert_eq!(obs(&c, "5", "status").status, Status::Crit);
}

#[tokio::test]
async fn no_daily_values_across_a_restart_or_a_missing_day() {
    let f = fixture(Options::default()).await;
    let day1 = t("2024-06-01T06:00:00Z");
    let start = day1.add_millis(-5 * DAY);
    for id in [1, 2, 3] {
        f.broker.add_node(id, "Clinic");
        f.broker.set_contact(id, Some(day1));
        f.broker.set_stats(id, stats(start, 500, 5, Some(day1)));
    }
    f.collect(day1).await;
    let day2 = day1.add_millis(DAY);
    // 1: same start → deltas; 2: restarted between the days → counters reset, no deltas.
    f.broker.set_stats(1, stats(start, 600, 6, Some(day2)));
    f.broker
        .set_stats(2, stats(day2.add_millis(-2 * H), 40, 0, Some(day2)));
    for id in [1, 2] {
        f.broker.set_contact(id, Some(day2));
    }
    // 3 cannot be polled on day 2.
    f.broker.set_fault(3, Some(Fault::Status(503)));
    f.collect(day2).await;
    f.broker.set_fault(3, None);
    let samples = f
        .store
        .fleet_samples(None, day_of(day1), day_of(day2))
        .await
        .unwrap();
    let of = |node: &str, day| {
        samples
            .iter()
            .find(|s| s.node == node && s.day == day)
            .unwrap()
    };
    let d1 = of("1", day_of(day2)).daily.unwrap();
    assert_eq!((d1.imported, d1.invalid), (100, 1));
    assert_eq!(of("2", day_of(day2)).daily, None);
    assert_eq!(
        of("1", day_of(day1)).daily,
        None,
        "the first day has nothing to compare with"
    );

    // 3: polled again only on day 3: yesterday's sample is missing → no deltas, and a gap.
    let day3 = day2.add_millis(DAY);
    f.broker.set_contact(3, Some(day3));
    f.broker.set_stats(3, stats(start, 700, 5, Some(day3)));
    let c = f.collect(day3).await;
    let s3 = f
        .store
        .fleet_samples(Some("3"), day_of(day3), day_of(day3))
        .await
        .unwrap();
    assert_eq!(s3[0].daily, None);
    assert_eq!(status_of(&c, "3"), "GAP IN MONITORING");

    // The CSV shows unknown daily values as "-".
    let rows = f
        .store
        .fleet_samples(Some("2"), day_of(day1), day_of(day3))
        .await
        .unwrap();
    let text = csv::stats_csv(&rows);
    let line = text.lines().nth(2).unwrap();
    assert!(line.ends_with(";40;0;0;0;0.00;-;-;-;-;-"), "{line}");
}

#[tokio::test]
async fn a_run_of_n_minus_one_import_days_is_testing() {
    let f = fixture(Options {
        mapping: Some(r#"{"2": {"COMMON_NAME": "[2] Five days", "CONSECUTIVE_IMPORT_DAYS": 5}}"#),
        ..Options::default()
    })
    .await;
    let day1 = t("2024-06-01T06:00:00Z");
    let start = day1.add_millis(-DAY);
    let mut statuses: Vec<(String, String)> = Vec::new();
    for d in 0..6i64 {
        let now = day1.add_millis(d * DAY);
        for id in [1, 2] {
            if d == 0 {
                f.broker.add_node(id, "Clinic");
            }
            f.broker.set_contact(id, Some(now));
            f.broker
                .set_stats(id, stats(start, 100 * (d + 1), 0, Some(now)));
        }
        let c = f.collect(now).await;
        statuses.push((status_of(&c, "1"), status_of(&c, "2")));
    }
    let one: Vec<&str> = statuses.iter().map(|s| s.0.as_str()).collect();
    // n = 3: day 1 has no daily value; days 2–3 are a run of 2 = n − 1 with 3 samples →
    // TESTING; day 4 completes the run of 3 → ONLINE, and it stays so.
    assert_eq!(
        one,
        ["ONLINE", "ONLINE", "TESTING", "ONLINE", "ONLINE", "ONLINE"]
    );
    let two: Vec<&str> = statuses.iter().map(|s| s.1.as_str()).collect();
    // n = 5 from the mapping: 5 samples with a run of 4 → TESTING; the 6th day completes it.
    assert_eq!(
        two,
        ["ONLINE", "ONLINE", "ONLINE", "ONLINE", "TESTING", "ONLINE"]
    );
}

#[tokio::test]
async fn a_later_poll_the_same_day_replaces_the_sample() {
    let f = fixture(Options::default()).await;
    let day1 = t("2024-06-01T06:00:00Z");
    let start = day1.add_millis(-DAY);
    f.broker.add_node(1, "Clinic");
    f.broker.set_contact(1, Some(day1));
    f.broker.set_stats(1, stats(start, 100, 0, Some(day1)));
    f.collect(day1).await;
    let day2 = day1.add_millis(DAY);
    f.broker.set_stats(1, stats(start, 150, 0, Some(day2)));
    f.collect(day2).await;
    f.broker.set_stats(1, stats(start, 180, 2, Some(day2)));
    f.collect(day2.add_millis(5 * H)).await;
    let rows = f
        .store
        .fleet_samples(Some("1"), 0, day_of(day2))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].imported, 180);
    assert_eq!(rows[1].polled, day2.add_millis(5 * H));
    let d = rows[1].daily.unwrap();
    assert_eq!(
        (d.imported, d.invalid),
        (80, 2),
        "still against yesterday's sample"
    );
}

#[tokio::test]
async fn gap_in_monitoring_after_more_than_24_hours() {
    let f = fixture(Options::default()).await;
    let day1 = t("2024-06-01T06:00:00Z");
    for id in [1, 2] {
        f.broker.add_node(id, "Clinic");
        f.broker.set_contact(id, Some(day1));
        f.broker
            .set_stats(id, stats(day1.add_millis(-DAY), 10, 0, Some(day1)));
    }
    f.collect(day1).await;
    // The statistics stop answering; the node's newest sample ages.
    for id in [1, 2] {
        f.broker.set_fault(id, Some(Fault::NotFound));
    }
    // 24 h 30 min rounds to 24 (half to even), which is not more than 24.
    let c = f.collect(day1.add_millis(24 * H + H / 2)).await;
    assert_eq!(
        status_of(&c, "1"),
        "ONLINE",
        "24 h 30 min is 24 hours, not more than 24"
    );
    let c = f.collect(day1.add_millis(24 * H + H / 2 + 1)).await;
    assert_eq!(status_of(&c, "1"), "GAP IN MONITORING");
    assert_eq!(obs(&c, "1", "status").status, Status::Crit);
    let poll = obs(&c, "1", "broker");
    assert_eq!(poll.status, Status::Crit);
    assert_eq!(poll.reason, "404 Not Found on /broker/node/1/stats");
}

#[tokio::test]
async fn failing_nodes_are_observations_and_the_others_go_on() {
    let f = fixture(Options {
        timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let now = t("2024-06-01T06:00:00Z");
    for id in 0..6 {
        f.broker.add_node(id, "Clinic");
        f.broker.set_contact(id, Some(now));
        f.broker
            .set_stats(id, stats(now.add_millis(-DAY), 10, 0, Some(now)));
    }
    f.broker.set_fault(1, Some(Fault::NotFound));
    f.broker.set_fault(2, Some(Fault::Malformed));
    f.broker.set_fault(3, Some(Fault::Status(500)));
    f.broker
        .set_fault(4, Some(Fault::Slow(Duration::from_secs(5))));
    f.broker
        .set_raw(5, "versions", "<properties><entry key=\"a\">1</properties>");
    let c = f.collect(now).await;
    assert_eq!(obs(&c, "0", "broker").status, Status::Ok);
    assert_eq!(
        obs(&c, "1", "broker").reason,
        "404 Not Found on /broker/node/1/stats"
    );
    let malformed = &obs(&c, "2", "broker").reason;
    assert!(
        malformed.starts_with("malformed XML: ") && malformed.ends_with(" in /broker/node/2/stats"),
        "{malformed}"
    );
    assert_eq!(
        obs(&c, "3", "broker").reason,
        "HTTP 500 on /broker/node/3/stats"
    );
    assert_eq!(
        obs(&c, "4", "broker").reason,
        "timeout after 300ms on /broker/node/4/stats"
    );
    let bad_resource = &obs(&c, "5", "broker").reason;
    assert!(
        bad_resource.ends_with(" in /broker/node/5/versions"),
        "{bad_resource}"
    );
    assert_eq!(c.failed, 5);
    // The healthy node and the one with a bad resource still got their samples.
    let rows = f.store.fleet_samples(None, 0, day_of(now)).await.unwrap();
    let nodes: Vec<&str> = rows.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(nodes, ["0", "5"]);
    assert_eq!(status_of(&c, "0"), "ONLINE");
}

#[tokio::test]
async fn the_broker_itself_failing_is_one_observation() {
    let f = fixture(Options::default()).await;
    let now = t("2024-06-01T06:00:00Z");
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = vitals_fleet::collector::Settings {
        api_key: "wrong".into(),
        ..f.collector.settings().clone()
    };
    let wrong_key = vitals_fleet::collector::Collector::new(settings, f.store.clone()).unwrap();
    let c = wrong_key.collect_once(now).await.unwrap();
    assert_eq!(c.observations.len(), 1);
    assert_eq!(c.observations[0].asset, vitals_fleet::BROKER_ASSET);
    assert_eq!(c.observations[0].status, Status::Crit);
    assert_eq!(
        c.observations[0].reason,
        "401 Unauthorized on /broker/node (check broker.api_key)"
    );
    let settings = vitals_fleet::collector::Settings {
        base: url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        ..f.collector.settings().clone()
    };
    let nobody = vitals_fleet::collector::Collector::new(settings, f.store.clone()).unwrap();
    let c = nobody.collect_once(now).await.unwrap();
    assert_eq!(
        c.observations[0].reason,
        "cannot connect to the broker for /broker/node"
    );
}

#[tokio::test]
async fn error_history_replaces_on_new_repeats_and_keeps_vanished_errors() {
    let f = fixture(Options::default()).await;
    let day1 = t("2024-06-01T06:00:00Z");
    f.broker.add_node(1, "Clinic");
    f.broker.set_contact(1, Some(day1));
    let err = |ts: &str, repeats: i64, content: &str| ImportError {
        time: t(ts),
        repeats,
        content: content.into(),
    };
    let mut s = stats(day1.add_millis(-DAY), 10, 2, Some(day1));
    s.errors = vec![
        err("2024-05-31T10:00:00Z", 1, "missing encounter; id"),
        err("2024-05-31T11:00:00Z", 2, "bad\nCDA"),
    ];
    f.broker.set_stats(1, s.clone());
    f.collect(day1).await;
    // Next poll: a known text with the same repeats (new timestamp) changes nothing; a new
    // repeats count replaces the entry with its timestamp; a new text is added; one vanishes.
    s.errors = vec![
        err("2024-06-01T09:00:00Z", 1, "missing encounter; id"),
        err("2024-06-01T10:00:00Z", 5, "bad\nCDA"),
        err("2024-06-01T11:00:00Z", 1, "new error"),
    ];
    f.broker.set_stats(1, s.clone());
    f.collect(day1.add_millis(8 * H)).await;
    s.errors.clear();
    f.broker.set_stats(1, s);
    f.collect(day1.add_millis(9 * H)).await;
    let errors = f
        .store
        .fleet_errors(Some("1"), Some(2024), 100)
        .await
        .unwrap();
    let got: Vec<(String, i64, &str)> = errors
        .iter()
        .map(|e| (e.time.to_rfc3339(), e.repeats, e.content.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("2024-06-01T11:00:00.000Z".to_string(), 1, "new error"),
            ("2024-06-01T10:00:00.000Z".to_string(), 5, "bad\nCDA"),
            (
                "2024-05-31T10:00:00.000Z".to_string(),
                1,
                "missing encounter; id"
            ),
        ]
    );
    assert_eq!(
        csv::errors_csv(&errors),
        "timestamp;repeats;content\n\
         2024-06-01T11:00:00.000Z;1;new error\n\
         2024-06-01T10:00:00.000Z;5;\"bad\nCDA\"\n\
         2024-05-31T10:00:00.000Z;1;\"missing encounter; id\"\n"
    );
}

#[tokio::test]
async fn resources_uploaded_by_nodes_and_their_change_log() {
    let f = fixture(Options {
        expected: Some("1.5.1"),
        ..Options::default()
    })
    .await;
    let now = t("2024-06-01T06:00:00Z");
    let key = f.broker.add_node(1, "Clinic");
    f.broker.add_node(2, "Clinic two");
    f.broker.set_clock(Some(now));
    let client = reqwest::Client::new();
    let put = |name: &str, key: &str, body: String| {
        client
            .put(format!("{}/broker/my/node/{name}", f.broker.url()))
            .bearer_auth(key)
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
    };
    let props = |kv: &[(&str, &str)]| -> String {
        let m: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vitals_fleet::xml::render_properties("versions", &m)
    };
    let stats_xml = vitals_fleet::xml::render_stats(&stats(now.add_millis(-DAY), 10, 0, Some(now)));
    // The node plays its part over HTTP: statistics and versions.
    assert_eq!(
        put("stats", &key, stats_xml.clone())
            .await
            .unwrap()
            .status(),
        204
    );
    let v1 = props(&[
        ("dwh-j2ee", "dwh-j2ee-1.5.1rc1"),
        ("java", "11"),
        ("r", "4.0"),
        ("x", ""),
    ]);
    assert_eq!(put("versions", &key, v1).await.unwrap().status(), 204);
    assert_eq!(
        put("versions", "wrong", String::new())
            .await
            .unwrap()
            .status(),
        401
    );
    // A node key on an admin path, or no key, is refused.
    let admin = client.get(format!("{}/broker/node", f.broker.url()));
    assert_eq!(admin.bearer_auth(&key).send().await.unwrap().status(), 401);
    assert_eq!(
        client
            .get(format!("{}/broker/node/1/stats", f.broker.url()))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(format!("{}/broker/node/99/stats", f.broker.url()))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let c = f.collect(now).await;
    let v = obs(&c, "1", "version");
    assert_eq!(v.status, Status::Warn);
    assert_eq!(v.reason, "OUTDATED: dwh-j2ee 1.5.1rc1 < expected 1.5.1");
    assert_eq!(v.value("notify"), Some(1.0));
    // Node 2 never uploaded versions.
    assert_eq!(
        obs(&c, "2", "version").reason,
        "no dwh-j2ee version uploaded"
    );
    assert_eq!(
        f.broker.node(1).unwrap().last_contact,
        Some(now),
        "a PUT is contact"
    );

    let v2 = props(&[
        ("dwh-j2ee", "dwh-j2ee-1.5.1"),
        ("java", "17"),
        ("python", "3.10"),
        ("x", ""),
    ]);
    assert_eq!(put("versions", &key, v2).await.unwrap().status(), 204);
    let c = f.collect(now.add_millis(H)).await;
    assert_eq!(obs(&c, "1", "version").status, Status::Ok);
    assert_eq!(obs(&c, "1", "version").reason, "dwh-j2ee 1.5.1");
    let changes = f.store.fleet_changes("1", 100).await.unwrap();
    let mut text: Vec<String> = changes
        .iter()
        .map(vitals_fleet::history::describe)
        .collect();
    text.sort();
    assert_eq!(
        text,
        [
            "[dwh-j2ee] dwh-j2ee-1.5.1rc1 --> dwh-j2ee-1.5.1",
            "[java] 11 --> 17",
            "[python] NEW --> 3.10",
            "[r] 4.0 --> DELETED",
        ]
    );
    // Unparseable versions are said so, not OUTDATED.
    let weird = props(&[("dwh-j2ee", "dwh-j2ee-latest")]);
    assert_eq!(put("versions", &key, weird).await.unwrap().status(), 204);
    let c = f.collect(now.add_millis(2 * H)).await;
    assert_eq!(obs(&c, "1", "version").status, Status::Unknown);
    assert_eq!(
        obs(&c, "1", "version").reason,
        "unparseable version \"dwh-j2ee-latest\""
    );
}

#[tokio::test]
async fn the_year_changes_between_two_days() {
    let f = fixture(Options::default()).await;
    let dec31 = t("2024-12-31T06:00:00Z");
    let jan1 = t("2025-01-01T06:00:00Z");
    let start = dec31.add_millis(-10 * DAY);
    f.broker.add_node(1, "Clinic");
    f.broker.set_contact(1, Some(dec31));
    let mut s = stats(start, 100, 1, Some(dec31));
    s.errors = vec![ImportError {
        time: t("2024-12-31T05:00:00Z"),
        repeats: 1,
        content: "old year".into(),
    }];
    f.broker.set_stats(1, s.clone());
    f.collect(dec31).await;
    s.imported = 150;
    s.invalid = 2;
    s.last_write = Some(jan1);
    s.errors.push(ImportError {
        time: t("2025-01-01T01:00:00Z"),
        repeats: 1,
        content: "new year".into(),
    });
    f.broker.set_contact(1, Some(jan1));
    f.broker.set_stats(1, s);
    f.collect(jan1).await;

    // Daily values are computed across the year boundary (consecutive days, same start).
    let (a, b) = year_days(2025).unwrap();
    let rows2025 = f.store.fleet_samples(Some("1"), a, b).await.unwrap();
    assert_eq!(rows2025.len(), 1);
    let d = rows2025[0].daily.unwrap();
    assert_eq!((d.imported, d.invalid), (50, 1));
    let (a, b) = year_days(2024).unwrap();
    let rows2024 = f.store.fleet_samples(Some("1"), a, b).await.unwrap();
    assert_eq!(rows2024.len(), 1);
    assert!(csv::stats_csv(&rows2024)
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("2024-12-31T06:00:00.000Z;"));
    assert!(csv::stats_csv(&rows2025)
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("2025-01-01T06:00:00.000Z;"));
    assert_eq!(
        f.store.fleet_years().await.unwrap(),
        [("1".to_string(), 2024), ("1".to_string(), 2025)]
    );
    // Each error is in its own year's file; last year's error seen again in January is not
    // moved into the new year.
    let e24 = f
        .store
        .fleet_errors(Some("1"), Some(2024), 10)
        .await
        .unwrap();
    let e25 = f
        .store
        .fleet_errors(Some("1"), Some(2025), 10)
        .await
        .unwrap();
    assert_eq!(
        e24.iter().map(|e| e.content.as_str()).collect::<Vec<_>>(),
        ["old year"]
    );
    assert_eq!(
        e25.iter().map(|e| e.content.as_str()).collect::<Vec<_>>(),
        ["new year"]
    );
}

//! `vitals serve` over HTTPS (rustls), checked with Vitals' own probe as the client; the
//! certificate is replaced and reloaded on SIGHUP.

mod common;

use common::*;
use std::process::{Command, Stdio};

fn probe(url: &str, ca: &std::path::Path) -> i32 {
    Command::new(BIN)
        .args([
            "probe",
            url,
            "--ca-file",
            ca.to_str().unwrap(),
            "--timeout",
            "3s",
            "--health",
            "none",
        ])
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

#[test]
fn serves_https_and_reloads_the_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = pki("Vitals Test CA one");
    let (ca2, cert2, key2) = pki("Vitals Test CA two");
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca1.pem"), ca1).unwrap();
    std::fs::write(p("ca2.pem"), ca2).unwrap();
    std::fs::write(p("cert.pem"), cert1).unwrap();
    std::fs::write(p("key.pem"), key1).unwrap();
    let port = free_port();
    std::fs::write(
        p("vitals.toml"),
        "[server]\ndata_dir = \"data\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            "vitals.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/monitor");
    let up = wait_until(20, || probe(&url, &p("ca1.pem")) == 0);
    let plain = http_get(&format!("127.0.0.1:{port}"), "/monitor");
    let wrong_ca = probe(&url, &p("ca2.pem"));
    // New certificate from another CA, then SIGHUP.
    std::fs::write(p("cert.pem"), cert2).unwrap();
    std::fs::write(p("key.pem"), key2).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    let reloaded = wait_until(20, || probe(&url, &p("ca2.pem")) == 0);
    let old_ca = probe(&url, &p("ca1.pem"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "HTTPS did not come up");
    assert!(
        plain.is_none_or(|(c, _)| c != 200),
        "plain HTTP must not be answered"
    );
    assert_eq!(wrong_ca, 2, "an unknown CA must fail the probe");
    assert!(reloaded, "the new certificate was not served after SIGHUP");
    assert_eq!(old_ca, 2, "the old certificate is gone");
}

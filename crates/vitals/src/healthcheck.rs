//! `vitals healthcheck`: exit 0 when a running Vitals answers `/monitor` with 200, else 1 — for
//! container HEALTHCHECKs and service managers (no shell or curl needed in the image).

use std::path::PathBuf;
use std::time::Duration;
use vitals_core::spec::{HttpSpec, ProbeSpec};
use vitals_core::Status;

/// `url`, or `/monitor` at the configured listen address (an unspecified address such as
/// 0.0.0.0 is reached over loopback).
pub fn run(config: Option<PathBuf>, url: Option<String>) -> (u8, String) {
    let url = match url {
        Some(u) => u,
        None => match crate::ops::config(config) {
            Ok(cfg) => {
                let scheme = if cfg.server.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                let mut addr = cfg.server.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(if addr.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                format!("{scheme}://{addr}/monitor")
            }
            Err(e) => return (1, format!("vitals healthcheck: {e:#}")),
        },
    };
    let mut spec = HttpSpec::new(url.clone());
    spec.expect_status = vec![200];
    // Our own certificate need not name the loopback address we reach ourselves on.
    spec.insecure = true;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                1,
                format!("vitals healthcheck: cannot start the runtime: {e}"),
            )
        }
    };
    let outcome = rt
        .block_on(vitals_probe::Prober::new().run(&ProbeSpec::Http(spec), Duration::from_secs(5)));
    let obs = outcome.into_observation("vitals", "healthcheck", vitals_core::SystemClock::now());
    if obs.status == Status::Ok {
        (0, format!("{url}: OK"))
    } else {
        (1, format!("{url}: {}", obs.reason))
    }
}

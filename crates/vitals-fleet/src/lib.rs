//! Fleet data-flow monitoring: Vitals watches an AKTIN broker and every hospital node behind it.
//!
//! Flow: `collector` (HTTP, bounded concurrency) → pure rules → store + observations.
//!
//! - [`xml`]: the broker's admin API answers (node list, import statistics, Java properties
//!   resources), parsed defensively; and rendered, for the [`emulator`].
//! - [`daily`]: one sample per node and UTC day, daily deltas (only across consecutive days
//!   without a data-warehouse restart) and error rates in hundredths of a percent.
//! - [`status`]: GAP IN MONITORING, TESTING, OFFLINE, NO IMPORTS, EXTREME / HIGH / LOW ERROR
//!   RATE, ONLINE — first match wins — and what each means as an observation.
//! - [`version`]: PEP 440-like version ordering for OUTDATED (`1.5.1rc1 < 1.5.1`).
//! - [`history`]: the error history merge (replace on new repeats) and resource diffs.
//! - [`csv`]: the yearly stats and errors CSV files in broker-monitor's exact columns.
//! - [`heatmap`]: nodes × days of daily error rates as SVG and PNG.
//! - [`collector`]: polls the broker, writes samples, returns assets and observations;
//!   [`runner`] runs it every interval and feeds the pipeline.
//! - [`emulator`]: an in-memory broker (admin API and the nodes' `PUT /broker/my/node/…`) on
//!   loopback, with simulated nodes, for tests, the benchmark and `vitals demo`.
//!
//! Everything but `collector`, `runner` and `emulator` is pure: no I/O, time passed in.

pub mod collector;
pub mod csv;
pub mod daily;
pub mod emulator;
pub mod heatmap;
pub mod history;
pub mod runner;
pub mod status;
pub mod version;
pub mod xml;

/// Check names of node observations (fixed, so rules can select them).
pub const CHECK_BROKER: &str = "broker";
pub const CHECK_STATUS: &str = "status";
pub const CHECK_VERSION: &str = "version";
/// The group every node asset is in.
pub const GROUP: &str = "aktin";
/// The asset of the broker itself (its node list poll).
pub const BROKER_ASSET: &str = "aktin-broker";
/// Metadata key that marks an asset as a broker node (its value is the node id).
pub const NODE_KEY: &str = "broker_node";
/// The resources fetched from every node.
pub const RESOURCES: [&str; 4] = ["versions", "rscript", "python", "import-scripts"];

/// The rule a configuration with `[broker]` and no `[[rule]]` gets for its nodes: alert when a
/// node's `status` or `version` observation carries `notify = 1` (OFFLINE, NO IMPORTS,
/// OUTDATED), notify once, remind every week — or every node's own re-notify interval
/// (`WEEKS_NOTIFICATION_INTERVAL`, kept as the asset's `metadata.reminder`).
pub fn default_rule(notifiers: Vec<String>) -> vitals_config::Rule {
    vitals_config::Rule {
        id: "aktin-nodes".into(),
        description: Some("mail the node's contacts on OFFLINE, NO IMPORTS and OUTDATED".into()),
        selector: vitals_core::rules::Selector {
            groups: vec![GROUP.to_string()],
            checks: vec!["status".into(), "version".into()],
            ..Default::default()
        },
        kind: vitals_config::RuleKind::Check {
            condition: vitals_core::rules::Condition::Threshold {
                value: "notify".into(),
                above: Some(0.5),
                below: None,
            },
            trigger: vitals_core::rules::Trigger::default(),
        },
        severity: vitals_core::Status::Crit,
        policy: vitals_core::alert::Policy {
            notifiers,
            reminder: Some(std::time::Duration::from_secs(7 * 86_400)),
            ..Default::default()
        },
        group_wait: std::time::Duration::ZERO,
    }
}

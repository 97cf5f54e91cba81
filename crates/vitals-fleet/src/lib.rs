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
//! - [`workdir`]: broker-monitor's working directory (CSVs, resource files, logs, sent-mail
//!   log, tracking files), kept current after every collection, written atomically.
//! - [`confluence`]: node pages, the summary page with the heatmap, and the node files as
//!   attachments, through Confluence's REST API v1, updated only when changed.
//!
//! Everything but `collector`, `runner`, `emulator`, `workdir` and `confluence` is pure: no
//! I/O, time passed in.

pub mod collector;
pub mod confluence;
pub mod csv;
pub mod daily;
pub mod emulator;
pub mod heatmap;
pub mod history;
pub mod runner;
pub mod status;
pub mod version;
pub mod workdir;
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

/// Observation values that are 1 exactly while a node is in a mailed state (0 otherwise): on
/// the `status` observation `offline` and `no_imports`, on the `version` observation
/// `outdated`. (`notify` is 1 in any of them, for rules written before.)
pub const VALUE_OFFLINE: &str = "offline";
pub const VALUE_NO_IMPORTS: &str = "no_imports";
pub const VALUE_OUTDATED: &str = "outdated";

/// One node state that is mailed to the node's people, as broker-monitor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailState {
    /// broker-monitor's name of the state (its sent-mail log says "Sent mail for status …").
    pub status: &'static str,
    /// The observation (check) and its value that say the state holds.
    pub check: &'static str,
    pub value: &'static str,
    /// The default rule's id and e-mail template family (German; `<family>_en` in English).
    pub rule: &'static str,
    pub family: &'static str,
    /// broker-monitor's tracking file in its working directory.
    pub tracking_file: &'static str,
}

/// OFFLINE, NO IMPORTS and DWH OUTDATED, in broker-monitor's order.
pub const MAIL_STATES: [MailState; 3] = [
    MailState {
        status: "OFFLINE",
        check: CHECK_STATUS,
        value: VALUE_OFFLINE,
        rule: "aktin-offline",
        family: "aktin_offline",
        tracking_file: "tracking_OFFLINE.json",
    },
    MailState {
        status: "NO IMPORTS",
        check: CHECK_STATUS,
        value: VALUE_NO_IMPORTS,
        rule: "aktin-no-imports",
        family: "aktin_no_imports",
        tracking_file: "tracking_NO_IMPORTS.json",
    },
    MailState {
        status: "DWH OUTDATED",
        check: CHECK_VERSION,
        value: VALUE_OUTDATED,
        rule: "aktin-outdated",
        family: "aktin_outdated",
        tracking_file: "tracking_DWH_OUTDATED.json",
    },
];

/// The mailed state a template family stands for (`aktin_offline`, `aktin_offline_en`, …).
pub fn mail_state_of_family(family: &str) -> Option<&'static MailState> {
    let base = family.strip_suffix("_en").unwrap_or(family);
    MAIL_STATES.iter().find(|m| m.family == base)
}

/// The rules a configuration with `[broker]` and no `[[rule]]` gets for its nodes — broker-
/// monitor's mail rules: per node and state (OFFLINE, NO IMPORTS, DWH OUTDATED) one alert, its
/// mail at once ([`MAIL_STATES`]' template family, in `language` "de" or "en"), again only when
/// a collection finds the state still there and more than the node's re-notify interval
/// (`WEEKS_NOTIFICATION_INTERVAL`, the asset's `metadata.reminder`; one week by default) has
/// passed in rounded hours; one collection without the state ends the alert, so the next
/// occurrence mails at once. No acknowledged or resolved mails.
pub fn default_rules(notifiers: Vec<String>, language: &str) -> Vec<vitals_config::Rule> {
    use vitals_core::notify::NotificationKind;
    MAIL_STATES
        .iter()
        .map(|m| vitals_config::Rule {
            id: m.rule.into(),
            description: Some(format!(
                "mail the node's people once when it is {}, again after its re-notify interval",
                m.status
            )),
            selector: vitals_core::rules::Selector {
                groups: vec![GROUP.to_string()],
                checks: vec![m.check.to_string()],
                ..Default::default()
            },
            kind: vitals_config::RuleKind::Check {
                condition: vitals_core::rules::Condition::Threshold {
                    value: m.value.into(),
                    above: Some(0.5),
                    below: None,
                },
                trigger: vitals_core::rules::Trigger::default(),
            },
            severity: if m.check == CHECK_VERSION {
                vitals_core::Status::Warn
            } else {
                vitals_core::Status::Crit
            },
            policy: vitals_core::alert::Policy {
                notifiers: notifiers.clone(),
                reminder: Some(std::time::Duration::from_secs(7 * 86_400)),
                reminder_at: vitals_core::alert::ReminderAt::Observed,
                send: Some(vec![NotificationKind::Firing, NotificationKind::Reminder]),
                ..Default::default()
            },
            group_wait: std::time::Duration::ZERO,
            template: Some(if language == "en" {
                format!("{}_en", m.family)
            } else {
                m.family.to_string()
            }),
        })
        .collect()
}

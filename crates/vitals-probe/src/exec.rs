//! Exec probe: run a Nagios / Monitoring Plugins plugin and read its verdict.
//!
//! The program is started directly (no shell, so no quoting or injection surprises) with
//! stdin closed, in a process group of its own. The exit code is the status (0 ok, 1 warn,
//! 2 crit, anything else unknown); the first line of output, before `|`, is the reason; the
//! performance data become values named by their labels, plus `exit_code`.
//!
//! Bounds: on timeout the whole process group is killed (a shell script's `sleep` child
//! included) and the outcome is crit "timed out after 2s (killed)". Output beyond
//! `max_output_bytes` is read and discarded, so a chatty plugin never blocks on a full pipe
//! and never costs more memory than the cap; truncation sets the value `output_truncated` to 1
//! and changes nothing else.

use crate::nagios;
use crate::{fmt_duration, Outcome};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::timeout_at;
use vitals_core::spec::ExecSpec;
use vitals_core::{Status, Value};

/// Longest reason kept from a plugin's first line, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// At most this many perfdata items become values; a plugin printing more is misbehaving,
/// and every value is stored with every observation.
pub const MAX_VALUES: usize = 256;

/// The only variables of the server's environment a plugin sees (plus the check's `env`).
pub const PASSED_ENV: [&str; 2] = ["PATH", "LANG"];

/// Runs one plugin bounded by `timeout`.
pub async fn probe(spec: &ExecSpec, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut out = run(spec, timeout).await;
    out.duration_us = started.elapsed().as_micros() as u64;
    out
}

async fn run(spec: &ExecSpec, timeout: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let Some(program) = spec.command.first() else {
        return Outcome::new(Status::Unknown, "exec check has an empty command");
    };
    if program.is_empty() {
        return Outcome::new(Status::Unknown, "exec check has an empty program name");
    }
    let cap = usize::try_from(spec.max_output_bytes).unwrap_or(usize::MAX);

    let mut cmd = Command::new(program);
    // A clean environment: the server's own (tokens, SMTP and database passwords) is none of
    // the plugin's business. PATH and LANG pass through; the check's `env` is added.
    cmd.env_clear();
    for keep in PASSED_ENV {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.args(&spec.command[1..])
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // A group of its own, so that a timeout can kill the plugin's children too.
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome::new(
                Status::Unknown,
                format!("cannot run {program}: {}", strip_os_error(&e.to_string())),
            )
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    // The pipes are drained to EOF, not just until exit: output written just before exiting
    // must not be lost.
    let all = async {
        tokio::join!(
            child.wait(),
            read_capped(stdout, cap),
            read_capped(stderr, cap)
        )
    };
    let result = timeout_at(deadline, all).await;
    let (status, (stdout, out_trunc), (stderr, err_trunc)) = match result {
        Ok(r) => r,
        Err(_) => {
            kill_group(pid);
            // The group kill reached the plugin too; this covers a plugin that left its group.
            // `kill_on_drop` and tokio's orphan reaping collect the zombie.
            let _ = child.start_kill();
            return Outcome::new(
                Status::Crit,
                format!("timed out after {} (killed)", fmt_duration(timeout)),
            );
        }
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return Outcome::new(
                Status::Unknown,
                format!(
                    "cannot wait for {program}: {}",
                    strip_os_error(&e.to_string())
                ),
            )
        }
    };

    // Plugins that fail early often print only to stderr.
    let (bytes, truncated) = if stdout.iter().any(|b| !b.is_ascii_whitespace()) {
        (stdout, out_trunc)
    } else {
        (stderr, err_trunc)
    };
    let text = String::from_utf8_lossy(&bytes);
    let parsed = nagios::parse_output(&text);

    let mut values: Vec<Value> = parsed
        .perfdata
        .iter()
        .take(MAX_VALUES)
        .map(|p| Value::new(p.label.clone(), p.value))
        .collect();
    if truncated {
        values.push(Value::new("output_truncated", 1.0));
    }

    let first_line = cap_chars(&parsed.text, MAX_REASON_CHARS);
    let (status, reason) = match status.code() {
        Some(code) => {
            values.push(Value::new("exit_code", f64::from(code)));
            let reason = match (first_line.is_empty(), (0..=3).contains(&code)) {
                (false, true) => first_line,
                (false, false) => format!("{first_line} (exit code {code})"),
                (true, _) => format!("no output (exit code {code})"),
            };
            (Status::from_exit_code(code), reason)
        }
        None => {
            let reason = match status.signal() {
                Some(sig) => format!("killed by signal {sig}"),
                None => "ended without exit code".to_string(),
            };
            (Status::Unknown, reason)
        }
    };
    let mut out = Outcome::new(status, reason);
    out.values = values;
    out
}

/// Reads to EOF, keeping at most `cap` bytes; returns them and whether anything was dropped.
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// SIGKILL to the process group led by `pid` (the plugin was spawned with `process_group(0)`,
/// so its group id is its pid).
fn kill_group(pid: Option<u32>) {
    let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a group that is
    // already gone yields ESRCH, which is fine to ignore.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// At most `max` characters, with `…` when cut.
fn cap_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_string(),
    }
}

/// `No such file or directory (os error 2)` → `No such file or directory`.
pub(crate) fn strip_os_error(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

impl crate::Probe for vitals_core::spec::ExecSpec {
    async fn run(
        &self,
        _prober: &crate::Prober,
        _kind: vitals_core::spec::ProbeKind,
        _key: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        probe(self, timeout).await
    }
}

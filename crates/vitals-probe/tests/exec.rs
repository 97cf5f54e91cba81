//! The exec probe with Debian's real Monitoring Plugins (`monitoring-plugins-basic`) and
//! shell scripts written to a temporary directory (run as `/bin/sh script`: sh is the program,
//! no shell parses the command line).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use vitals_core::spec::ExecSpec;
use vitals_core::Status;
use vitals_probe::exec::{probe, MAX_REASON_CHARS};
use vitals_probe::Outcome;

const TIMEOUT: Duration = Duration::from_secs(10);
const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// The path of a Monitoring Plugins binary; fails loudly when the package is missing.
fn plugin(name: &str) -> String {
    let path = Path::new(PLUGINS).join(name);
    assert!(
        path.is_file(),
        "{} is missing: install the Monitoring Plugins with \
         `apt-get install -y monitoring-plugins-basic`",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn spec(command: &[&str]) -> ExecSpec {
    ExecSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        max_output_bytes: 64 * 1024,
    }
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

/// Writes `body` as a script in `dir` and returns its path.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn check_dummy_exit_codes_map_to_statuses() {
    let dummy = plugin("check_dummy");
    for (args, status, reason, code) in [
        (vec!["0", "all good"], Status::Ok, "OK: all good", 0.0),
        (vec!["1", "warn"], Status::Warn, "WARNING: warn", 1.0),
        (vec!["2"], Status::Crit, "CRITICAL", 2.0),
        (vec!["3"], Status::Unknown, "UNKNOWN", 3.0),
    ] {
        let mut command = vec![dummy.as_str()];
        command.extend(args.iter().copied());
        let out = probe(&spec(&command), TIMEOUT).await;
        assert_eq!(out.status, status, "{command:?}: {out:?}");
        assert_eq!(out.reason, reason);
        assert_eq!(value(&out, "exit_code"), Some(code));
        assert!(out.duration_us > 0);
    }
}

#[tokio::test]
async fn arguments_reach_the_plugin_verbatim_without_a_shell() {
    let dummy = plugin("check_dummy");
    let text = "$(echo injected); `id` && ls * > /tmp/x";
    let out = probe(&spec(&[&dummy, "0", text]), TIMEOUT).await;
    assert_eq!(out.status, Status::Ok);
    assert_eq!(out.reason, format!("OK: {text}"));
}

#[tokio::test]
async fn check_tcp_against_a_loopback_listener_gives_time_perfdata() {
    let check_tcp = plugin("check_tcp");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let accepting = tokio::spawn(async move {
        // check_tcp connects once and closes.
        let _ = listener.accept().await;
    });
    let out = probe(
        &spec(&[&check_tcp, "-H", "127.0.0.1", "-p", &port]),
        TIMEOUT,
    )
    .await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert!(out.reason.starts_with("TCP OK"), "{}", out.reason);
    assert!(
        value(&out, "time").is_some_and(|t| (0.0..10.0).contains(&t)),
        "{out:?}"
    );
    assert_eq!(value(&out, "exit_code"), Some(0.0));
    accepting.await.unwrap();

    let out = probe(&spec(&[&check_tcp, "-H", "127.0.0.1", "-p", "1"]), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit, "{out:?}");
    assert!(out.reason.contains("Connection refused"), "{}", out.reason);
}

#[tokio::test]
async fn a_missing_program_is_unknown() {
    let out = probe(&spec(&["/nonexistent/check_nothing", "-v"]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(
        out.reason,
        "cannot run /nonexistent/check_nothing: No such file or directory"
    );
    assert!(out.values.is_empty());
}

#[tokio::test]
async fn a_file_that_is_not_executable_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "plain.sh", "echo hi\n");
    let out = probe(&spec(&[&path]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, format!("cannot run {path}: Permission denied"));
}

#[tokio::test]
async fn an_empty_command_is_unknown() {
    let out = probe(&spec(&[]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, "exec check has an empty command");
}

/// `S` or `Z` state of a pid, or `None` when it is gone.
fn proc_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[tokio::test]
async fn a_hanging_plugin_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let body = format!(
        "sleep 30 &\necho \"$$ $!\" > {}\nwait\necho never\n",
        pids.display()
    );
    let path = script(dir.path(), "hang.sh", &body);
    let out = probe(&spec(&["/bin/sh", &path]), Duration::from_secs(1)).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "timed out after 1s (killed)");

    let written = std::fs::read_to_string(&pids).expect("the script wrote its pids");
    let (sh, sleep) = written.trim().split_once(' ').unwrap();
    // SIGKILL is asynchronous: poll, bounded, until both are dead (gone, or zombies waiting
    // for a reaper that is not ours to drive).
    let dead = |pid: &str| matches!(proc_state(pid), None | Some('Z') | Some('X'));
    let mut all_dead = false;
    for _ in 0..200 {
        if dead(sh) && dead(sleep) {
            all_dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        all_dead,
        "still alive: sh {sh} {:?}, sleep {sleep} {:?}",
        proc_state(sh),
        proc_state(sleep)
    );
}

#[tokio::test]
async fn huge_output_is_capped_without_blocking_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "big.sh",
        "echo 'OK - lots of output | items=3;5;10'\n\
         head -c 10000000 /dev/zero | tr '\\0' 'x'\n\
         echo\n\
         echo 'still here' >&2\n\
         exit 0\n",
    );
    let out = probe(&spec(&["/bin/sh", &path]), TIMEOUT).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "OK - lots of output");
    assert_eq!(value(&out, "items"), Some(3.0));
    assert_eq!(value(&out, "output_truncated"), Some(1.0));
    assert_eq!(value(&out, "exit_code"), Some(0.0));
}

#[tokio::test]
async fn output_within_the_cap_is_not_flagged() {
    let dummy = plugin("check_dummy");
    let out = probe(&spec(&[&dummy, "0", "fine"]), TIMEOUT).await;
    assert_eq!(value(&out, "output_truncated"), None);
}

#[tokio::test]
async fn multi_line_perfdata_becomes_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "disk.sh",
        "printf '%s\\n' \
           'DISK WARNING - free space: /boot 68 MB (9%); | /=2643MB;5948;5958;0;5968' \
           '/ 15272 MB (77%);' \
           '/boot 68 MB (9%); | /boot=68MB;88;93;0;98' \
           \"'/var/log'=818MB;970;975;0;980 inodes=12c\"\n\
         exit 1\n",
    );
    let out = probe(&spec(&["/bin/sh", &path]), TIMEOUT).await;
    assert_eq!(out.status, Status::Warn, "{out:?}");
    assert_eq!(out.reason, "DISK WARNING - free space: /boot 68 MB (9%);");
    let names: Vec<&str> = out.values.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["/", "/boot", "/var/log", "inodes", "exit_code"]);
    assert_eq!(value(&out, "/var/log"), Some(818.0));
    assert_eq!(value(&out, "exit_code"), Some(1.0));
}

#[tokio::test]
async fn stderr_is_used_when_stdout_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "err.sh",
        "echo '  ' \necho 'UNKNOWN - config file missing' >&2\nexit 3\n",
    );
    let out = probe(&spec(&["/bin/sh", &path]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, "UNKNOWN - config file missing");
}

#[tokio::test]
async fn killed_by_a_signal_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "kill.sh", "echo 'about to die'\nkill -9 $$\n");
    let out = probe(&spec(&["/bin/sh", &path]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, "killed by signal 9");
    assert_eq!(value(&out, "exit_code"), None);
}

#[tokio::test]
async fn unusual_exit_codes_and_silence() {
    let dir = tempfile::tempdir().unwrap();
    let odd = script(dir.path(), "odd.sh", "echo weird\nexit 4\n");
    let out = probe(&spec(&["/bin/sh", &odd]), TIMEOUT).await;
    assert_eq!(out.status, Status::Unknown);
    assert_eq!(out.reason, "weird (exit code 4)");
    assert_eq!(value(&out, "exit_code"), Some(4.0));

    let silent = script(dir.path(), "silent.sh", "exit 2\n");
    let out = probe(&spec(&["/bin/sh", &silent]), TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "no output (exit code 2)");
}

#[tokio::test]
async fn env_is_added_and_stdin_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    // `read` fails at once on a closed stdin instead of waiting for input.
    let path = script(
        dir.path(),
        "env.sh",
        "if read line; then echo \"CRITICAL stdin open\"; exit 2; fi\n\
         echo \"OK $VITALS_TEST_GREETING from ${PATH:+path}\"\n",
    );
    let mut s = spec(&["/bin/sh", &path]);
    s.env
        .insert("VITALS_TEST_GREETING".to_string(), "hello".to_string());
    let out = probe(&s, TIMEOUT).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "OK hello from path");
}

#[tokio::test]
async fn the_server_environment_stays_out_of_plugins() {
    // nextest runs every test in a process of its own, so this touches no other test.
    std::env::set_var("VITALS_TEST_SECRET", "smtp-password");
    std::env::set_var("LANG", "C.UTF-8");
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "leak.sh",
        "echo \"OK secret=${VITALS_TEST_SECRET:-none} lang=${LANG:-none} path=${PATH:+set} own=$OWN\"\n",
    );
    let mut s = spec(&["/bin/sh", &path]);
    s.env.insert("OWN".to_string(), "mine".to_string());
    let out = probe(&s, TIMEOUT).await;
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.reason, "OK secret=none lang=C.UTF-8 path=set own=mine");
}

#[tokio::test]
async fn long_first_lines_are_capped() {
    let dummy = plugin("check_dummy");
    let text = "é".repeat(500);
    let out = probe(&spec(&[&dummy, "1", &text]), TIMEOUT).await;
    assert_eq!(out.status, Status::Warn);
    assert_eq!(out.reason.chars().count(), MAX_REASON_CHARS + 1);
    assert!(out.reason.starts_with("WARNING: éé"));
    assert!(out.reason.ends_with('…'));
}

#[tokio::test]
async fn a_tiny_output_cap_still_reads_the_verdict() {
    let dummy = plugin("check_dummy");
    let mut s = spec(&[&dummy, "2", "disk full | used=99%"]);
    s.max_output_bytes = 8;
    let out = probe(&s, TIMEOUT).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "CRITICAL");
    assert_eq!(value(&out, "output_truncated"), Some(1.0));
    assert_eq!(value(&out, "used"), None);
}

#[tokio::test]
async fn through_the_prober_the_probe_own_timeout_reason_wins() {
    // `Prober::run` has a backstop 50 ms after the timeout; the exec probe must kill and
    // answer before it, with its own precise reason.
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "hang.sh", "sleep 30\n");
    let prober = vitals_probe::Prober::new();
    let s = vitals_core::spec::ProbeSpec::Exec(spec(&["/bin/sh", &path]));
    let out = prober.run(&s, Duration::from_millis(500)).await;
    assert_eq!(out.status, Status::Crit);
    assert_eq!(out.reason, "timed out after 500ms (killed)");

    let dummy = plugin("check_dummy");
    let s = vitals_core::spec::ProbeSpec::Exec(spec(&[&dummy, "1", "slow | t=2s;1;3"]));
    let out = prober.run(&s, TIMEOUT).await;
    assert_eq!(out.status, Status::Warn);
    assert_eq!(value(&out, "t"), Some(2.0));
}

//! The postgres and mysql probes against the real servers on this machine (PostgreSQL on
//! 127.0.0.1:5432 with trust auth, MariaDB on 127.0.0.1:3306 as root without password), with
//! roles, databases and tables of unique names made by each test: success, conditions, missing
//! grants, a slow query hitting the timeout, read-only enforcement, TLS, and a server that is
//! down. PostgreSQL's trust auth accepts any password over 127.0.0.1, so the wrong-password case
//! runs against a private PostgreSQL cluster (Debian's binaries, scram-sha-256, its own TLS
//! certificate) that the test starts on a free loopback port.

mod http_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use vitals_core::spec::{ProbeSpec, SqlSpec, SqlTls};
use vitals_core::Status;
use vitals_probe::{Outcome, Prober};

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn psql(sql: &str) {
    sh(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ],
    );
}

fn mysql(sql: &str) {
    sh("mysql", &["-h", "127.0.0.1", "-u", "root", "-e", sql]);
}

fn spec(host: &str, port: u16, user: &str, query: &str) -> SqlSpec {
    SqlSpec {
        host: host.into(),
        port: Some(port),
        database: None,
        user: user.into(),
        password: None,
        tls: SqlTls::Disable,
        ca_file: None,
        query: query.into(),
        conditions: Vec::new(),
        warn_conditions: Vec::new(),
        grants: BTreeMap::new(),
        max_rows: 1000,
    }
}

fn all_four(table: &str) -> BTreeMap<String, Vec<String>> {
    [(
        table.to_string(),
        ["SELECT", "INSERT", "UPDATE", "DELETE"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )]
    .into()
}

async fn pg(s: SqlSpec, timeout: Duration) -> Outcome {
    Prober::new().run(&ProbeSpec::Postgres(s), timeout).await
}

async fn my(s: SqlSpec, timeout: Duration) -> Outcome {
    Prober::new().run(&ProbeSpec::Mysql(s), timeout).await
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.values.iter().find(|v| v.name == name).map(|v| v.value)
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn postgres_query_conditions_grants_and_read_only() {
    let table = unique("vt_entries");
    let ro = unique("vt_ro");
    psql(&format!(
        "CREATE TABLE {table} (id int, state text); INSERT INTO {table} VALUES (1, 'ready'), (2, 'ready');
         CREATE ROLE {ro} LOGIN; GRANT SELECT ON {table} TO {ro};"
    ));

    let mut s = spec(
        "127.0.0.1",
        5432,
        "postgres",
        &format!("SELECT count(*) AS entries, min(state) AS state, avg(id) AS mean FROM {table}"),
    );
    s.database = Some("postgres".into());
    s.conditions = vec!["rows >= 1".into(), "state == ready".into()];
    s.warn_conditions = vec!["entries < 100".into()];
    s.grants = all_four(&table);
    let o = pg(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.reason, "1 row: \"2\"");
    assert_eq!(value(&o, "rows"), Some(1.0));
    assert_eq!(value(&o, "entries"), Some(2.0));
    // numeric (avg) reads as text like any type.
    assert_eq!(value(&o, "mean"), Some(1.5));
    assert!(value(&o, "connect_ms").is_some() && value(&o, "query_ms").is_some());

    // Conditions: crit and warn, each named.
    let mut c = s.clone();
    c.conditions = vec!["entries >= 5".into()];
    c.warn_conditions = vec!["state != ready".into()];
    let o = pg(c, T).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        r#"entries is "2" (expected >= 5); state is "ready" (expected != "ready")"#
    );

    // A user who may only read: the missing grants are named.
    let mut g = s.clone();
    g.user = ro.clone();
    g.conditions.clear();
    let o = pg(g.clone(), T).await;
    assert_eq!(o.status, Status::Crit, "{}", o.reason);
    assert_eq!(
        o.reason,
        format!("grant missing: INSERT on {table}; grant missing: UPDATE on {table}; grant missing: DELETE on {table}")
    );
    g.grants = [("no_such_table".to_string(), vec!["SELECT".to_string()])].into();
    let o = pg(g, T).await;
    assert_eq!(o.reason, "grant check: table no_such_table does not exist");

    // Read-only: a write fails inside the read-only transaction and changes nothing.
    let w = spec(
        "127.0.0.1",
        5432,
        "postgres",
        &format!("DELETE FROM {table} RETURNING id"),
    );
    let o = pg(w, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(o.reason.contains("read-only transaction"), "{}", o.reason);
    let o = pg(
        spec(
            "127.0.0.1",
            5432,
            "postgres",
            &format!("SELECT count(*) FROM {table}"),
        ),
        T,
    )
    .await;
    assert_eq!(o.reason, "1 row: \"2\"");
    // …and a second statement is refused before anything runs.
    let o = pg(
        spec(
            "127.0.0.1",
            5432,
            "postgres",
            &format!("SELECT 1; DELETE FROM {table}"),
        ),
        T,
    )
    .await;
    assert_eq!(o.status, Status::Unknown);
    assert!(o.reason.starts_with("one statement only"), "{}", o.reason);

    psql(&format!("DROP TABLE {table}; DROP ROLE {ro};"));
}

#[tokio::test]
async fn postgres_slow_query_down_server_tls_and_unknown_database() {
    let o = pg(
        spec("127.0.0.1", 5432, "postgres", "SELECT pg_sleep(5)"),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(o.status, Status::Crit);
    assert!(o.reason.contains("timed out"), "{}", o.reason);
    assert!(
        o.duration_us < 4_000_000,
        "bounded by the timeout, not the query"
    );

    let port = http_support::closed_port().await.port();
    let o = pg(spec("127.0.0.1", port, "postgres", "SELECT 1"), T).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        format!("cannot connect to 127.0.0.1:{port}: refused")
    );

    // The shared server has TLS on (Debian's snakeoil certificate): required TLS works; a
    // verified one cannot (the certificate is for another name, from no trusted CA).
    let mut s = spec(
        "127.0.0.1",
        5432,
        "postgres",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    s.tls = SqlTls::Require;
    s.conditions = vec!["ssl == true".into()];
    let o = pg(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    s.tls = SqlTls::VerifyFull;
    let o = pg(s, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.contains("TLS") || o.reason.contains("certificate"),
        "{}",
        o.reason
    );

    let mut s = spec("127.0.0.1", 5432, "postgres", "SELECT 1");
    s.database = Some(unique("vt_no_db"));
    let o = pg(s, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.starts_with("database does not exist"),
        "{}",
        o.reason
    );
}

/// A private PostgreSQL cluster that asks for passwords (scram-sha-256) and serves TLS with a
/// certificate from a test CA; stopped when dropped.
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    ca: tempfile::NamedTempFile,
}

const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql is installed")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb")
}

fn as_postgres(program: &std::path::Path, args: &[&str]) {
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    // PostgreSQL refuses to run as root: run it as the postgres user then.
    let out = if root.unwrap_or(false) {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .output()
    } else {
        Command::new(program).args(args).output()
    }
    .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePg {
    async fn start() -> PrivatePg {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let port = http_support::closed_port().await.port();
        let root = dir.path();
        std::fs::write(root.join("pw"), ADMIN_PASSWORD).unwrap();
        let ca = http_support::Ca::new("Vitals test database CA");
        let (cert, key) = ca.server_pem(&["127.0.0.1"]);
        std::fs::write(root.join("server.crt"), cert).unwrap();
        std::fs::write(root.join("server.key"), key).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                root.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        sh(
            "chown",
            &["-R", "postgres:postgres", root.to_str().unwrap()],
        );
        let data = root.join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "vitals_admin",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", root.join("pw").display()),
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nfsync = off\nssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n",
            dir = root.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                root.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        PrivatePg {
            ca: ca.write_pem(),
            dir,
            bin,
            port,
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test]
async fn postgres_wrong_password_and_verified_tls() {
    let db = PrivatePg::start().await;
    let mut s = spec(
        "127.0.0.1",
        db.port,
        "vitals_admin",
        "SELECT current_user AS who",
    );
    s.database = Some("postgres".into());
    s.password = Some("wrong".into());
    let o = pg(s.clone(), T).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        "wrong password for user \"vitals_admin\" (authentication failed)"
    );

    s.password = Some(ADMIN_PASSWORD.into());
    s.conditions = vec!["who == vitals_admin".into()];
    let o = pg(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);

    // verify-full: trusted with the test CA, refused without it.
    s.tls = SqlTls::VerifyFull;
    s.ca_file = Some(db.ca.path().to_path_buf());
    let o = pg(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    s.ca_file = None;
    let o = pg(s, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.contains("TLS") || o.reason.contains("certificate"),
        "{}",
        o.reason
    );
}

#[tokio::test]
async fn mysql_query_conditions_grants_wrong_password_and_read_only() {
    let db = unique("vt_db");
    let user = unique("vt_ro");
    mysql(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.logentries (id INT NOT NULL, state VARCHAR(10) NOT NULL);
         INSERT INTO {db}.logentries VALUES (1, 'ready'), (2, 'ready');
         CREATE USER '{user}'@'%' IDENTIFIED BY 's3cret'; GRANT SELECT ON {db}.logentries TO '{user}'@'%';"
    ));

    let mut s = spec(
        "127.0.0.1",
        3306,
        "root",
        "SELECT count(*) AS entries, min(state) AS state, avg(id) AS mean FROM logentries",
    );
    s.database = Some(db.clone());
    s.conditions = vec![
        "rows == 1".into(),
        "entries >= 2".into(),
        "state == ready".into(),
    ];
    s.grants = all_four("logentries");
    let o = my(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(value(&o, "entries"), Some(2.0));
    assert_eq!(value(&o, "mean"), Some(1.5));

    // The read-only user: its password, then its grants.
    let mut r = s.clone();
    r.user = user.clone();
    r.password = Some("wrong".into());
    let o = my(r.clone(), T).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        format!("wrong password or unknown user {user:?} (access denied)")
    );
    r.password = Some("s3cret".into());
    r.grants = all_four(&format!("{db}.logentries"));
    let o = my(r.clone(), T).await;
    assert_eq!(o.status, Status::Crit, "{}", o.reason);
    assert_eq!(
        o.reason,
        format!("grant missing: INSERT on {db}.logentries; grant missing: UPDATE on {db}.logentries; grant missing: DELETE on {db}.logentries")
    );
    r.grants = [("nope".to_string(), vec!["SELECT".to_string()])].into();
    let o = my(r, T).await;
    assert!(o.reason.starts_with("grant"), "{}", o.reason);

    // Read-only transaction: the delete is refused, the rows stay.
    let mut w = spec("127.0.0.1", 3306, "root", "DELETE FROM logentries");
    w.database = Some(db.clone());
    let o = my(w, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.to_ascii_lowercase().contains("read only"),
        "{}",
        o.reason
    );
    let o = my(s, T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);

    mysql(&format!("DROP USER '{user}'@'%'; DROP DATABASE {db};"));
}

#[tokio::test]
async fn mysql_slow_query_down_server_and_tls() {
    let o = my(
        spec("127.0.0.1", 3306, "root", "SELECT SLEEP(5)"),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(o.status, Status::Crit);
    assert!(o.reason.contains("timed out"), "{}", o.reason);
    assert!(
        o.duration_us < 4_000_000,
        "bounded by the timeout, not the query"
    );

    let port = http_support::closed_port().await.port();
    let o = my(spec("127.0.0.1", port, "root", "SELECT 1"), T).await;
    assert_eq!(o.status, Status::Crit);
    assert_eq!(
        o.reason,
        format!("cannot connect to 127.0.0.1:{port}: refused")
    );

    // This MariaDB has no TLS: preferred falls back, required fails with a reason.
    let mut s = spec("127.0.0.1", 3306, "root", "SELECT 1");
    s.tls = SqlTls::Prefer;
    let o = my(s.clone(), T).await;
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    s.tls = SqlTls::Require;
    let o = my(s, T).await;
    assert_eq!(o.status, Status::Crit);
    assert!(
        o.reason.to_ascii_lowercase().contains("tls"),
        "{}",
        o.reason
    );
}

//! Dates read from MariaDB (127.0.0.1:3306, root without password; a database of the test's own)
//! equal the same dates read from PostgreSQL (127.0.0.1:5432, trust) and from an HTTP
//! source once normalised: a re-integration against a MariaDB catalogue must not report
//! `birth_date` as differing because of how the driver hands dates over.

use sqlx::Executor;
use std::time::Duration;
use vitals_engine::compare::normalise_date;
use vitals_engine::db::Db;

/// Made by the test (a fresh MariaDB has no `test` database).
const MY: &str = "mysql://root@127.0.0.1:3306/vitals_engine_test";
const PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const T: Duration = Duration::from_secs(10);

/// Makes the tests' database (a fresh MariaDB has no `test` database).
async fn own_database() {
    let server = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
        .await
        .unwrap();
    server
        .execute("CREATE DATABASE IF NOT EXISTS vitals_engine_test")
        .await
        .unwrap();
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_dates_equal_postgresql_and_http_dates() {
    let table = format!(
        "vitals_engine_dates_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    own_database().await;
    let admin = sqlx::MySqlPool::connect(MY).await.unwrap();
    admin
        .execute(
            format!(
                "CREATE TABLE {table} (id VARCHAR(20) PRIMARY KEY, birth_date DATE NULL,
                 seen DATETIME NULL, stamped TIMESTAMP NULL, fine DATETIME(6) NULL)"
            )
            .as_str(),
        )
        .await
        .unwrap();
    admin
        .execute(
            format!(
                "INSERT INTO {table} VALUES
                 ('P1', '1961-04-12', '2024-03-01 08:30:05', '2024-03-01 08:30:05', '2024-03-01 08:30:05.250000'),
                 ('P2', NULL, NULL, NULL, NULL)"
            )
            .as_str(),
        )
        .await
        .unwrap();

    let my = Db::open(MY, 2, T).unwrap();
    let pg = Db::open(PG, 2, T).unwrap();
    let result = async {
        // With a parameter (a prepared statement: binary dates) …
        let bound = my
            .query(
                &format!("SELECT birth_date, seen, stamped, fine FROM {table} WHERE id = :patient"),
                &[("patient", "P1")],
                T,
            )
            .await
            .unwrap();
        // … and without one, and a cast to text as before.
        let plain = my
            .query(
                &format!("SELECT birth_date, seen, stamped, fine, CAST(birth_date AS CHAR) AS cast_date FROM {table} WHERE id = 'P1'"),
                &[],
                T,
            )
            .await
            .unwrap();
        let from_pg = pg
            .query(
                "SELECT DATE '1961-04-12' AS birth_date, TIMESTAMP '2024-03-01 08:30:05' AS seen",
                &[],
                T,
            )
            .await
            .unwrap();
        let nulls = my
            .query(
                &format!("SELECT birth_date, seen FROM {table} WHERE id = :patient"),
                &[("patient", "P2")],
                T,
            )
            .await
            .unwrap();
        (bound, plain, from_pg, nulls)
    }
    .await;
    admin
        .execute(format!("DROP TABLE IF EXISTS {table}").as_str())
        .await
        .unwrap();
    admin.close().await;
    let (bound, plain, from_pg, nulls) = result;

    let text =
        |rows: &vitals_engine::db::Rows, col: &str| rows.rows[0][rows.column(col).unwrap()].clone();
    for rows in [&bound, &plain] {
        assert_eq!(text(rows, "birth_date"), text(&from_pg, "birth_date"));
        assert_eq!(text(rows, "birth_date").as_deref(), Some("1961-04-12"));
        assert_eq!(text(rows, "seen"), text(&from_pg, "seen"));
        assert_eq!(
            text(rows, "stamped").as_deref(),
            Some("2024-03-01T08:30:05")
        );
        assert_eq!(text(rows, "fine").as_deref(), Some("2024-03-01T08:30:05"));
        // The same date as an HTTP (FHIR) source spells it, once normalised.
        assert_eq!(
            normalise_date(&text(rows, "birth_date").unwrap()),
            normalise_date("1961-04-12")
        );
        assert_eq!(
            normalise_date(&text(rows, "seen").unwrap()).as_deref(),
            Some("2024-03-01")
        );
    }
    assert_eq!(text(&plain, "cast_date").as_deref(), Some("1961-04-12"));
    assert_eq!(nulls.rows[0], vec![None, None], "NULL dates stay absent");
}

/// DECIMAL (MariaDB) and NUMERIC (PostgreSQL) columns read as their digits, with and without a
/// bound parameter, so a catalogue's amount or code kept as a decimal compares like text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimals_read_as_their_digits_from_mariadb_and_postgresql() {
    own_database().await;
    let my = Db::open(MY, 2, T).unwrap();
    let pg = Db::open(PG, 2, T).unwrap();
    let sql_my = "SELECT CAST(12.50 AS DECIMAL(10,2)) AS d, CAST(-0.05 AS DECIMAL(6,3)) AS n, \
                  CAST(:patient AS DECIMAL(12,0)) AS i";
    let sql_pg = "SELECT 12.50::numeric(10,2) AS d, (-0.05)::numeric(6,3) AS n, \
                  CAST(:patient AS numeric) AS i, 'NaN'::numeric AS x";
    for (db, sql, n) in [(&my, sql_my, "-0.050"), (&pg, sql_pg, "-0.050")] {
        let rows = db.query(sql, &[("patient", "123456789")], T).await.unwrap();
        let text = |col: &str| rows.rows[0][rows.column(col).unwrap()].clone();
        assert_eq!(text("d").as_deref(), Some("12.50"), "{sql}");
        assert_eq!(text("n").as_deref(), Some(n), "{sql}");
        assert_eq!(text("i").as_deref(), Some("123456789"), "{sql}");
    }
    let rows = pg
        .query("SELECT 'NaN'::numeric AS x", &[], T)
        .await
        .unwrap();
    assert_eq!(rows.rows[0][0].as_deref(), Some("NaN"));
}

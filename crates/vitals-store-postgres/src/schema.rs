//! Schema and migrations.
//!
//! `vitals_schema.version` is the number of entries of [`MIGRATIONS`] applied. Opening a store
//! applies the missing ones in one transaction under an advisory lock, so replicas starting at
//! once do not race (PostgreSQL DDL is transactional: a failed migration leaves nothing).
//!
//! Observations are partitioned by day (`observations_d<day>`, `day` = ms / 86,400,000), created
//! on demand by the writer; retention drops whole partitions and deletes only in the partition
//! that straddles the cutoff. Asset/check pairs, reasons, component lists and value names are
//! interned as on SQLite, values use the same compact codec (`vitals_store::codec`).

use sqlx::PgPool;
use vitals_store::StoreError;

use crate::backend;

/// Advisory lock keys (arbitrary constants, unique to Vitals).
pub const LOCK_MIGRATE: i64 = 0x7669_7461_6c73_0001;
pub const LOCK_PARTITIONS: i64 = 0x7669_7461_6c73_0002;

/// Ordered migrations; entry `i` brings the schema from version `i` to `i + 1`. Append, never
/// edit an entry.
pub const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema has at its version 9, in PostgreSQL terms.
    r#"
    CREATE TABLE assets (
        id   TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        doc  TEXT NOT NULL
    );
    CREATE TABLE checks (
        id    SERIAL PRIMARY KEY,
        asset TEXT NOT NULL,
        name  TEXT NOT NULL,
        UNIQUE (asset, name)
    );
    CREATE INDEX checks_by_name ON checks (name, asset);
    CREATE TABLE texts (
        id   SERIAL PRIMARY KEY,
        text TEXT NOT NULL UNIQUE,
        used BIGINT NOT NULL
    );
    CREATE INDEX texts_by_used ON texts (used);
    CREATE TABLE value_names (
        id   SERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        used BIGINT NOT NULL
    );
    CREATE INDEX value_names_by_used ON value_names (used);
    CREATE TABLE observations (
        check_id    INTEGER NOT NULL,
        ts          BIGINT NOT NULL,
        status      SMALLINT NOT NULL,
        duration_us BIGINT NOT NULL,
        score       BIGINT,
        reason_id   INTEGER,
        comp_id     INTEGER,
        vals        BYTEA,
        PRIMARY KEY (check_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE TABLE health_state (
        asset   TEXT NOT NULL,
        grp     TEXT NOT NULL,
        test    TEXT NOT NULL,
        score   BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        PRIMARY KEY (asset, grp, test)
    );
    CREATE TABLE health_severity (
        asset   TEXT NOT NULL,
        grp     TEXT NOT NULL,
        score   BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        PRIMARY KEY (asset, grp)
    );
    CREATE TABLE result_ids (
        id TEXT PRIMARY KEY,
        ts BIGINT NOT NULL
    );
    CREATE INDEX result_ids_by_ts ON result_ids (ts);
    CREATE TABLE alerts (
        id      BIGINT PRIMARY KEY,
        key     TEXT NOT NULL,
        rule    TEXT NOT NULL,
        asset   TEXT,
        state   TEXT NOT NULL,
        started BIGINT NOT NULL,
        ended   BIGINT NOT NULL,   -- resolved, else started (for retention)
        doc     TEXT NOT NULL
    );
    CREATE INDEX alerts_open ON alerts (state) WHERE state <> 'resolved';
    CREATE INDEX alerts_by_asset ON alerts (asset, id);
    CREATE INDEX alerts_resolved ON alerts (ended) WHERE state = 'resolved';
    CREATE TABLE alert_events (
        alert_id BIGINT NOT NULL,
        seq      INTEGER NOT NULL,
        doc      TEXT NOT NULL,
        PRIMARY KEY (alert_id, seq)
    );
    CREATE TABLE outbox (
        id            TEXT PRIMARY KEY,
        notifier      TEXT NOT NULL,
        group_key     TEXT NOT NULL,
        alert_id      BIGINT NOT NULL,
        created       BIGINT NOT NULL,
        not_before    BIGINT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'sent', 'failed')),
        attempts      INTEGER NOT NULL,
        next_attempt  BIGINT NOT NULL,
        last_error    TEXT,
        recipients    TEXT NOT NULL,
        detail        TEXT,
        sent          BIGINT,
        claimed_by    TEXT,
        claimed_until BIGINT,
        doc           TEXT NOT NULL
    );
    CREATE INDEX outbox_open ON outbox (next_attempt) WHERE state IN ('pending', 'claimed');
    CREATE INDEX outbox_by_created ON outbox (created);
    CREATE INDEX outbox_by_alert ON outbox (alert_id, created);
    CREATE TABLE silences (
        id   BIGINT PRIMARY KEY,
        ends BIGINT NOT NULL,
        doc  TEXT NOT NULL
    );
    CREATE TABLE audit (
        id      BIGSERIAL PRIMARY KEY,
        ts      BIGINT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        target  TEXT NOT NULL,
        params  TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE TABLE audit_archived (
        one  INTEGER PRIMARY KEY CHECK (one = 1),
        upto BIGINT NOT NULL
    );
    INSERT INTO audit_archived (one, upto) VALUES (1, 0);
    CREATE FUNCTION vitals_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' OR TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION 'the audit log is append-only';
        END IF;
        IF OLD.id > (SELECT upto FROM audit_archived) THEN
            RAISE EXCEPTION 'the audit log is append-only: only archived rows may be deleted';
        END IF;
        RETURN OLD;
    END $$;
    CREATE TRIGGER audit_guard BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION vitals_audit_guard();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION vitals_audit_guard();
    CREATE FUNCTION vitals_audit_mark_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'the audit archive mark is kept';
        END IF;
        IF NEW.upto < OLD.upto THEN
            RAISE EXCEPTION 'the audit archive mark only moves forward';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER audit_archived_guard BEFORE UPDATE OR DELETE ON audit_archived
        FOR EACH ROW EXECUTE FUNCTION vitals_audit_mark_guard();
    CREATE TABLE rollups (
        check_id INTEGER NOT NULL,
        period   BIGINT NOT NULL,
        start    BIGINT NOT NULL,
        count    BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        min_us   BIGINT NOT NULL,
        mean_us  BIGINT NOT NULL,
        max_us   BIGINT NOT NULL,
        p95_us   BIGINT NOT NULL,
        PRIMARY KEY (check_id, period, start)
    );
    CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        doc  TEXT NOT NULL
    );
    CREATE TABLE job_state (
        name  TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    CREATE TABLE fleet_samples (
        node         TEXT NOT NULL,
        day          BIGINT NOT NULL,
        polled       BIGINT NOT NULL,
        last_contact BIGINT,
        last_start   BIGINT NOT NULL,
        last_write   BIGINT,
        last_reject  BIGINT,
        imported     BIGINT NOT NULL,
        updated      BIGINT NOT NULL,
        invalid      BIGINT NOT NULL,
        failed       BIGINT NOT NULL,
        d_imported   BIGINT,
        d_updated    BIGINT,
        d_invalid    BIGINT,
        d_failed     BIGINT,
        PRIMARY KEY (node, day)
    );
    CREATE INDEX fleet_samples_by_day ON fleet_samples (day);
    CREATE TABLE fleet_errors (
        node    TEXT NOT NULL,
        year    INTEGER NOT NULL,
        content TEXT NOT NULL,
        ts      BIGINT NOT NULL,
        repeats BIGINT NOT NULL,
        PRIMARY KEY (node, year, content)
    );
    CREATE INDEX fleet_errors_by_time ON fleet_errors (node, ts);
    CREATE TABLE fleet_resources (
        node    TEXT NOT NULL,
        name    TEXT NOT NULL,
        fetched BIGINT NOT NULL,
        doc     TEXT NOT NULL,
        PRIMARY KEY (node, name)
    );
    CREATE TABLE fleet_changes (
        id       BIGSERIAL PRIMARY KEY,
        node     TEXT NOT NULL,
        ts       BIGINT NOT NULL,
        resource TEXT NOT NULL,
        key      TEXT NOT NULL,
        old      TEXT,
        new      TEXT
    );
    CREATE INDEX fleet_changes_by_node ON fleet_changes (node, id);
    CREATE TABLE notices (
        id      BIGSERIAL PRIMARY KEY,
        page    TEXT NOT NULL,
        created BIGINT NOT NULL,
        ended   BIGINT,
        doc     TEXT NOT NULL
    );
    CREATE INDEX notices_by_page ON notices (page, id);
    "#,
    // 2: replicas (crate::cluster): members, the decider lease, the inbox and the feed.
    r#"
    CREATE TABLE vitals_members (
        name        TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE vitals_decider (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        holder      TEXT NOT NULL,
        epoch       BIGINT NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE vitals_inbox (
        seq  BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        at   TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE vitals_inbox_done (
        seq    BIGINT PRIMARY KEY,
        answer TEXT NOT NULL,
        at     TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX vitals_inbox_done_by_at ON vitals_inbox_done (at);
    CREATE TABLE vitals_feed (
        seq    BIGSERIAL PRIMARY KEY,
        writer TEXT NOT NULL,
        body   TEXT NOT NULL,
        at     TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX vitals_feed_by_at ON vitals_feed (at);
    "#,
];

/// Applies every migration the database does not have yet.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_MIGRATE)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS vitals_schema (version INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM vitals_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let version = version.unwrap_or(0);
    let known = MIGRATIONS.len() as i32;
    if version > known || version < 0 {
        return Err(StoreError::Backend(format!(
            "the database has schema version {version}, but this build of Vitals only knows \
             versions up to {known}; use a newer Vitals or another database"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Backend(format!("migration {} failed: {e}", i + 1)))?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    sqlx::query("DELETE FROM vitals_schema")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query("INSERT INTO vitals_schema (version) VALUES ($1)")
        .bind(known)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

/// The partition of observations holding day `day`.
pub fn partition_name(day: i64) -> String {
    if day < 0 {
        format!("observations_m{}", day.unsigned_abs())
    } else {
        format!("observations_d{day}")
    }
}

/// The day a partition name stands for (`None`: not one of ours).
pub fn partition_day(name: &str) -> Option<i64> {
    if let Some(d) = name.strip_prefix("observations_d") {
        d.parse().ok()
    } else if let Some(d) = name.strip_prefix("observations_m") {
        d.parse::<i64>().ok().map(|d| -d)
    } else {
        None
    }
}

use rusqlite::{params, Connection};
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let checks: i64 = args[1].parse().unwrap();
    let batch: i64 = args[2].parse().unwrap();
    let ckpt: i64 = args[3].parse().unwrap();
    let total: i64 = args[4].parse().unwrap();
    let layout = args.get(5).map(|s| s.as_str()).unwrap_or("check");
    let dir = tempfile::tempdir().unwrap();
    let mut c = Connection::open(dir.path().join("x.db")).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.pragma_update(None, "cache_size", -65536).unwrap();
    c.pragma_update(None, "wal_autocheckpoint", ckpt).unwrap();
    vitals_store_sqlite::schema::migrate(&mut c).unwrap();
    if layout == "time" {
        c.execute_batch("CREATE TABLE o2 (check_id INTEGER NOT NULL, ts INTEGER NOT NULL, status INTEGER NOT NULL, score INTEGER, duration_us INTEGER NOT NULL, reason_id INTEGER, comp_id INTEGER, vals BLOB, PRIMARY KEY (ts, check_id)) WITHOUT ROWID;").unwrap();
    }
    let table = if layout == "time" { "o2" } else { "observations" };
    let vals = vec![7u8; 20];
    let t = Instant::now();
    let mut i = 0i64;
    while i < total {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        {
            let mut st = c.prepare_cached(&format!("INSERT INTO {table} (check_id, ts, status, score, duration_us, reason_id, comp_id, vals) VALUES (?1,?2,0,NULL,?3,NULL,NULL,?4)")).unwrap();
            for _ in 0..batch {
                let check = i % checks;
                let round = i / checks;
                st.execute(params![check + 1, 1_714_000_000_000i64 + round * 10_000 + check * 7, 123_456, vals]).unwrap();
                i += 1;
            }
        }
        c.execute_batch("COMMIT").unwrap();
    }
    let el = t.elapsed();
    println!("checks={checks} batch={batch} ckpt={ckpt} layout={layout}: {:.0} obs/s", total as f64 / el.as_secs_f64());
}

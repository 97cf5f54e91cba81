use rusqlite::Connection;
use std::time::Instant;
use vitals_core::{Observation, Status, Timestamp, Value};
use vitals_store::Store;
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = vitals_store_sqlite::SqliteStore::open_in(dir.path()).unwrap();
    rt.block_on(async {
        for r in 0..3i64 {
            let batch: Vec<Observation> = (0..10_000)
                .map(|i| {
                    let mut o = Observation::new(
                        format!("a{}", i / 4),
                        format!("c{}", i % 4),
                        Timestamp(1_700_000_000_000 + r * 10_000 + i),
                        Status::Ok,
                        "",
                    );
                    o.values = vec![Value::new("x", 1.5), Value::new("y", 200.0)];
                    o
                })
                .collect();
            store.append(batch).await.unwrap();
        }
        let t = Instant::now();
        let l = store.latest().await.unwrap();
        println!("latest: {} in {:?}", l.len(), t.elapsed());
        for _ in 0..3 {
            let t = Instant::now();
            let l = store.latest().await.unwrap();
            println!("latest again: {} in {:?}", l.len(), t.elapsed());
        }
        let t = Instant::now();
        let n = store.count_observations().await.unwrap();
        println!("count {n} in {:?}", t.elapsed());
    });
    let c = Connection::open(dir.path().join("vitals.db")).unwrap();
    let cols = "SELECT c.asset, c.name, o.ts, o.status, o.score, o.duration_us, o.reason_id, r.text, o.comp_id, k.text, o.vals";
    let tj = "LEFT JOIN texts r ON r.id = o.reason_id LEFT JOIN texts k ON k.id = o.comp_id";
    for q in [
        format!("{cols} FROM checks c CROSS JOIN observations o ON o.check_id = c.id AND o.ts = (SELECT max(m.ts) FROM observations m WHERE m.check_id = c.id) {tj}"),
        format!("{cols} FROM (SELECT seq, max(ts) FROM observations_recent GROUP BY check_id) n JOIN observations_recent o ON o.seq = n.seq JOIN checks c ON c.id = o.check_id {tj}"),
    ] {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {q}")).unwrap();
        let plan: Vec<String> = st.query_map([], |r| r.get::<_, String>(3)).unwrap().map(|x| x.unwrap()).collect();
        println!("{plan:?}");
        for _ in 0..3 {
        let t = Instant::now();
        let mut st = c.prepare(&q).unwrap();
        let n = st.query_map([], |r| r.get::<_, i64>(2)).unwrap().count();
        println!("{n} rows in {:?}", t.elapsed());
        }
    }
}

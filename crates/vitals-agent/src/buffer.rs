//! The disk buffer: results wait here, in order, until the server has taken them.
//!
//! One SQLite file (`agent-buffer.db`) in WAL mode with `synchronous = FULL`: results are
//! appended (gathered for at most 200 ms, one fsync per append) in a transaction that is on
//! disk before the next is taken, so neither a restart nor `kill -9` (nor a power cut) loses
//! what was appended. Rows leave only
//! when the server has answered that it committed them (`ack`). The buffer is bounded by the
//! bytes of its results: beyond `max_bytes` the oldest are dropped, and how many is counted
//! (kept in the file, reported to the server with every request).

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct Buffer {
    conn: Connection,
    /// Sum of the stored bodies' lengths.
    bytes: u64,
    rows: u64,
    max_bytes: u64,
    dropped: u64,
    /// Random per buffer file: with the row number, the results' idempotency ids.
    instance: String,
}

#[derive(Debug)]
pub struct Row {
    pub seq: i64,
    pub body: Vec<u8>,
}

impl Buffer {
    pub fn open(path: &Path, max_bytes: u64) -> rusqlite::Result<Buffer> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS results (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 body BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        let instance: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let instance = match instance {
            Some(i) => i,
            None => {
                let i = format!("{:016x}", rand::random::<u64>());
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
                    params![i],
                )?;
                i
            }
        };
        let dropped: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'dropped'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let (rows, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Buffer {
            conn,
            bytes: bytes.max(0) as u64,
            rows: rows.max(0) as u64,
            max_bytes,
            dropped: dropped.and_then(|d| d.parse().ok()).unwrap_or(0),
            instance,
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Results waiting.
    pub fn depth(&self) -> u64 {
        self.rows
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Results dropped (oldest first) because the buffer was full, since it was created.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends bodies in one durable transaction, then drops the oldest beyond the bound.
    pub fn append(&mut self, bodies: &[Vec<u8>]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO results (body) VALUES (?1)")?;
            for b in bodies {
                st.execute(params![b])?;
            }
        }
        let mut bytes = self.bytes + bodies.iter().map(|b| b.len() as u64).sum::<u64>();
        let mut rows = self.rows + bodies.len() as u64;
        let mut dropped = self.dropped;
        if bytes > self.max_bytes {
            // Oldest first, until the rest fits.
            let mut gone: Vec<(i64, u64)> = Vec::new();
            {
                let mut st =
                    tx.prepare_cached("SELECT seq, LENGTH(body) FROM results ORDER BY seq")?;
                let mut q = st.query([])?;
                while bytes > self.max_bytes {
                    let Some(r) = q.next()? else { break };
                    let len = r.get::<_, i64>(1)?.max(0) as u64;
                    gone.push((r.get(0)?, len));
                    bytes -= len;
                }
            }
            if let Some((last, _)) = gone.last() {
                tx.execute("DELETE FROM results WHERE seq <= ?1", params![last])?;
                rows -= gone.len() as u64;
                dropped += gone.len() as u64;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![dropped.to_string()],
                )?;
            }
        }
        tx.commit()?;
        self.bytes = bytes;
        self.rows = rows;
        self.dropped = dropped;
        Ok(())
    }

    /// The oldest `n` results after row `after` (0: from the start), in order.
    pub fn peek(&self, after: i64, n: usize) -> rusqlite::Result<Vec<Row>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT seq, body FROM results WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = st.query_map(params![after, n as i64], |r| {
            Ok(Row {
                seq: r.get(0)?,
                body: r.get(1)?,
            })
        })?;
        rows.collect()
    }

    /// Results waiting behind row `seq`: the depth without what is sent or being sent. Counts
    /// only the rows up to `seq`, which are few (the batches in flight).
    pub fn waiting_after(&self, seq: i64) -> rusqlite::Result<u64> {
        let up_to: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM results WHERE seq <= ?1",
            params![seq],
            |r| r.get(0),
        )?;
        Ok(self.rows.saturating_sub(up_to.max(0) as u64))
    }

    /// The server has these: they leave the buffer.
    pub fn ack(&mut self, seqs: &[i64]) -> rusqlite::Result<()> {
        let Some(&last) = seqs.iter().max() else {
            return Ok(());
        };
        let first = seqs.iter().min().copied().unwrap_or(last);
        let tx = self.conn.transaction()?;
        let (n, len): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM results WHERE seq BETWEEN ?1 AND ?2",
            params![first, last],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "DELETE FROM results WHERE seq BETWEEN ?1 AND ?2",
            params![first, last],
        )?;
        tx.commit()?;
        self.rows = self.rows.saturating_sub(n.max(0) as u64);
        self.bytes = self.bytes.saturating_sub(len.max(0) as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_drops_oldest_beyond_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let mut b = Buffer::open(&path, 100).unwrap();
        let instance = b.instance().to_string();
        b.append(&[vec![b'a'; 40], vec![b'b'; 40]]).unwrap();
        assert_eq!((b.depth(), b.dropped()), (2, 0));
        drop(b);
        let mut b = Buffer::open(&path, 100).unwrap();
        assert_eq!(b.instance(), instance);
        assert_eq!((b.depth(), b.bytes()), (2, 80));
        b.append(&[vec![b'c'; 40]]).unwrap();
        // 120 > 100: the oldest ('a') goes.
        assert_eq!((b.depth(), b.dropped()), (2, 1));
        let rows = b.peek(0, 10).unwrap();
        assert_eq!(b.peek(rows[0].seq, 10).unwrap()[0].body[0], b'c');
        assert_eq!(b.waiting_after(0).unwrap(), 2);
        assert_eq!(b.waiting_after(rows[0].seq).unwrap(), 1);
        assert_eq!(b.waiting_after(rows[1].seq).unwrap(), 0);
        assert_eq!(rows[0].body[0], b'b');
        assert_eq!(rows[1].body[0], b'c');
        b.ack(&[rows[0].seq]).unwrap();
        drop(b);
        let b = Buffer::open(&path, 100).unwrap();
        assert_eq!((b.depth(), b.dropped()), (1, 1));
        assert_eq!(b.peek(0, 10).unwrap()[0].body[0], b'c');
    }
}

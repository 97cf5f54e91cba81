//! SQLite allocates through mimalloc, like the rest of the process.
//!
//! Bundled SQLite calls the C library's `malloc` by default. With glibc every thread that
//! allocates gets its own arena, and SQLite's page caches are filled from tokio's blocking
//! threads, which come and go, so a reader's cache refilled on a fresh thread lands in a fresh
//! arena while the old one stays mapped. mimalloc returns freed pages to the OS and keeps one
//! accounting, so the `soft_heap_limit` the store sets is also what SQLite really holds.

use std::os::raw::{c_int, c_void};

use libmimalloc_sys as mi;
use libsqlite3_sys as ffi;

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SQLite never asks for <= 0 bytes, but a negative int must not become a huge usize.
    unsafe { mi::mi_malloc(n.max(0) as usize) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    unsafe { mi::mi_realloc(p, n.max(0) as usize) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SQLite's allocations are below 2 GiB (its own limit is SQLITE_MAX_ALLOCATION_SIZE).
    c_int::try_from(unsafe { mi::mi_usable_size(p) }).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    c_int::try_from(unsafe { mi::mi_good_size(n.max(0) as usize) }).unwrap_or(n)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Hands SQLite the mimalloc functions. Must run before anything opens a database (SQLite
/// accepts the setting only before it initialises), so `main` calls it first. Returns SQLite's
/// code when it refused, which leaves SQLite on the C library's malloc: slower to give memory
/// back, still correct.
pub fn install() -> Result<(), c_int> {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a sqlite3_mem_methods that SQLite copies
    // before returning; the functions above follow its contract (8-byte aligned blocks, xSize
    // of a live block).
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_runs_on_mimalloc() {
        // nextest (the README's test command) runs each test in its own process, where nothing
        // has opened a database yet. Under `cargo test` another test of this binary may have
        // initialised SQLite first; then only the refusal can be checked.
        let alone = std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test");
        match super::install() {
            Ok(()) => {}
            Err(rc) if !alone && rc == libsqlite3_sys::SQLITE_MISUSE => return,
            Err(rc) => panic!("sqlite3_config refused the allocator: {rc}"),
        }
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t(x TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<5000) INSERT INTO t SELECT printf('%0500d', i) FROM n;",
        )
        .unwrap();
        let n: i64 = db
            .query_row("SELECT count(*) FROM t WHERE length(x) = 500", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 5000);
        // SQLite's own accounting now reads mimalloc's block sizes.
        let (mut cur, mut hi) = (0i64, 0i64);
        let rc = unsafe {
            libsqlite3_sys::sqlite3_status64(
                libsqlite3_sys::SQLITE_STATUS_MEMORY_USED,
                &mut cur,
                &mut hi,
                0,
            )
        };
        assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
        assert!(cur > 0 && hi >= cur, "memory used {cur}, high water {hi}");
        drop(db);
        // Too late once SQLite is initialised: refused, not half-applied.
        assert_eq!(super::install(), Err(libsqlite3_sys::SQLITE_MISUSE));
    }
}

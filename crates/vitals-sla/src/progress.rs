//! A one-line progress bar on stderr, drawn by a helper thread from a shared byte counter, only
//! when stderr is a terminal and the input is big enough for a wait to be noticed.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Inputs smaller than this finish before a bar would be useful.
pub(crate) const MIN_BYTES: u64 = 256 << 20;

/// Whether to draw: asked for, stderr is a terminal, and `total` bytes is big.
pub(crate) fn wanted(requested: bool, total: u64) -> bool {
    requested && total >= MIN_BYTES && std::io::stderr().is_terminal()
}

/// Runs `work`, drawing `counter / total` every 100 ms while it runs when `enabled`.
pub(crate) fn run_with<T>(
    enabled: bool,
    total: u64,
    counter: &AtomicU64,
    work: impl FnOnce() -> T,
) -> T {
    if !enabled {
        return work();
    }
    std::thread::scope(|s| {
        let (stop, stopped) = mpsc::channel::<()>();
        s.spawn(move || {
            // Ends when `stop` is dropped, i.e. when the work is done.
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(100))
            {
                draw(counter.load(Ordering::Relaxed), total);
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        });
        let result = work();
        drop(stop);
        result
    })
}

fn draw(done: u64, total: u64) {
    const WIDTH: u64 = 30;
    let done = done.min(total);
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    let bar: String = "#".repeat(filled) + &" ".repeat(WIDTH as usize - filled);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{bar}] {percent:3}% {}/{} MiB",
        done >> 20,
        total >> 20
    );
    let _ = err.flush();
}

//! The "last 50" bar and uptime figures of the overview, the asset page and status pages.
//!
//! A bar is one `<div class=beats>`: a cell per result, oldest left, newest right, coloured by
//! status; cells not filled yet (fewer than 50 results) are grey. A run of one status is one
//! void element, `<hr class=k7>`: its class names the status (`k` ok, `w` warn, `c` crit, `u`
//! unknown, `p` not run yet) and the width in cells (a flex weight); the stylesheet makes it a
//! coloured box and paints the gaps between cells over the whole bar. So a steady row costs
//! about 80 bytes of HTML and a restless one 13 bytes per run — it matters on an overview of
//! 1,000 rows (P6: every byte is rendered and compressed per request). The bar's `aria-label`
//! says the counts in words; its children are presentational (`role=img`). No script, no
//! inline style (the CSP forbids it), no image.

use super::{w, Ctx};
use vitals_core::{Status, Timestamp};
use vitals_scheduler::history::{Counts, Uptime, RECENT};

/// The class letter of a status in a bar.
fn letter(s: Status) -> char {
    match s {
        Status::Ok => 'k',
        Status::Warn => 'w',
        Status::Crit => 'c',
        Status::Unknown => 'u',
    }
}

/// Words for the counts of each status among `results`: `"48 OK, 2 CRIT"`.
fn tally(results: &[(Timestamp, Status)]) -> String {
    let mut n = [0usize; 4];
    for (_, s) in results {
        n[usize::from(s.code().min(3))] += 1;
    }
    let mut out = String::new();
    for (count, s) in n
        .iter()
        .zip([Status::Ok, Status::Warn, Status::Crit, Status::Unknown])
    {
        if *count > 0 {
            if !out.is_empty() {
                out.push_str(", ");
            }
            w!(out, "{count} {}", super::status_parts(Some(s)).1);
        }
    }
    if out.is_empty() {
        out.push_str("no results yet");
    }
    out
}

/// A bar of `results` (oldest first, at most [`RECENT`]). With `ctx`, every cell carries its
/// time and status as a tooltip (the asset page); without, runs are merged (the overview).
pub fn bar(results: &[(Timestamp, Status)], ctx: Option<&Ctx>) -> String {
    let mut s = String::with_capacity(128);
    push_bar(&mut s, results, ctx);
    s
}

/// [`bar`], appended to `s`.
pub fn push_bar(mut s: &mut String, results: &[(Timestamp, Status)], ctx: Option<&Ctx>) {
    let results = &results[results.len().saturating_sub(RECENT)..];
    let empty = RECENT - results.len();
    w!(
        s,
        "<div class=beats role=img aria-label=\"Last {} results: {}\">",
        results.len(),
        tally(results)
    );
    if empty > 0 {
        w!(s, "<hr class=p{empty}>");
    }
    match ctx {
        Some(ctx) => {
            for (t, st) in results {
                w!(
                    s,
                    "<hr class={}1 title=\"{} {}\">",
                    letter(*st),
                    ctx.plain_time(*t),
                    super::status_parts(Some(*st)).1
                );
            }
        }
        None => {
            let mut i = 0;
            while i < results.len() {
                let c = letter(results[i].1);
                let mut j = i + 1;
                while j < results.len() && letter(results[j].1) == c {
                    j += 1;
                }
                w!(s, "<hr class={c}{}>", j - i);
                i = j;
            }
        }
    }
    s.push_str("</div>");
}

/// `99.95 %`, rounded down so that `100 %` means no failure at all; `—` without observations.
pub fn percent(c: Counts) -> String {
    let mut s = String::with_capacity(8);
    push_percent(&mut s, c);
    s
}

fn push_percent(mut s: &mut String, c: Counts) {
    match c.ratio() {
        None => s.push('—'),
        Some(_) if c.bad == 0 => s.push_str("100 %"),
        Some(r) => w!(s, "{:.2} %", (r * 10_000.0).floor() / 100.0),
    }
}

/// The three uptime cells of a table row (`td.num`), each with its counts as a tooltip.
pub fn uptime_cells(u: &Uptime) -> String {
    let mut s = String::with_capacity(160);
    push_uptime_cells(&mut s, u, true);
    s
}

/// The uptime cells appended to `s`; `titles`: with the counts as tooltips and a `num` class
/// (left out on the overview, where 1,000 rows of them would be 90 KB; its stylesheet aligns
/// the columns instead).
pub fn push_uptime_cells(mut s: &mut String, u: &Uptime, titles: bool) {
    for c in [u.h24, u.d7, u.d30] {
        if c.total == 0 {
            s.push_str("<td class=\"num\">—</td>");
        } else if titles {
            w!(
                s,
                "<td class=\"num\" title=\"{} of {} OK\">{}</td>",
                c.total - c.bad.min(c.total),
                c.total,
                percent(c)
            );
        } else {
            // The overview's uptime columns are aligned by the stylesheet (#assets .up).
            s.push_str("<td>");
            push_percent(s, c);
            s.push_str("</td>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_merges_runs_and_greys_what_has_not_run() {
        let r: Vec<(Timestamp, Status)> = (0..10)
            .map(|i| (Timestamp(i), if i == 7 { Status::Crit } else { Status::Ok }))
            .collect();
        assert_eq!(
            bar(&r, None),
            "<div class=beats role=img aria-label=\"Last 10 results: 9 OK, 1 CRIT\">\
<hr class=p40><hr class=k7><hr class=c1><hr class=k2></div>"
        );
        assert_eq!(
            bar(&[], None),
            "<div class=beats role=img aria-label=\"Last 0 results: no results yet\"><hr class=p50></div>"
        );
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent(Counts { total: 0, bad: 0 }), "—");
        assert_eq!(percent(Counts { total: 5, bad: 0 }), "100 %");
        assert_eq!(
            percent(Counts {
                total: 100_000,
                bad: 1
            }),
            "99.99 %"
        );
        assert_eq!(percent(Counts { total: 4, bad: 1 }), "75.00 %");
    }
}

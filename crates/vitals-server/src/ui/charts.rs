//! Server-side SVG charts: a status band and latency lines. No JavaScript is needed to see
//! them; colours come from the stylesheet (classes), so dark mode applies to them too.

use super::{w, E};

const W: f64 = 800.0;
const BAND_H: f64 = 24.0;
const LINE_H: f64 = 140.0;
/// Room on the left of the latency chart for the scale.
const PAD: f64 = 48.0;

fn x_of(t: i64, from: i64, to: i64, left: f64) -> f64 {
    let span = (to - from).max(1) as f64;
    left + ((t - from) as f64 / span).clamp(0.0, 1.0) * (W - left)
}

/// A status band over `[from, to]`: `spans` are `(start ms, status class)` oldest first, each
/// lasting until the next one (the last until `to`).
pub fn band(from: i64, to: i64, spans: &[(i64, &str)], label: &str) -> String {
    let mut s = String::with_capacity(64 + spans.len() * 72);
    w!(
        s,
        "<svg class=\"band\" viewBox=\"0 0 {W} {BAND_H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        E(label),
        E(label)
    );
    if spans.is_empty() {
        w!(
            s,
            "<rect class=\"fill-none\" x=\"0\" y=\"0\" width=\"{W}\" height=\"{BAND_H}\"/>"
        );
    }
    for (i, (t, class)) in spans.iter().enumerate() {
        let end = spans.get(i + 1).map_or(to, |n| n.0);
        let x0 = x_of(*t, from, to, 0.0);
        let x1 = x_of(end, from, to, 0.0);
        // At least a hair wide, so a single failed check in 30 days still shows.
        let width = (x1 - x0).max(0.75);
        w!(
            s,
            "<rect class=\"fill-{class}\" x=\"{x0:.2}\" y=\"0\" width=\"{width:.2}\" height=\"{BAND_H}\"/>"
        );
    }
    s.push_str("</svg>");
    s
}

/// One line of a latency chart.
pub struct Series<'a> {
    pub name: &'a str,
    /// CSS class (`lat-total`, `lat-connect`, `lat-ttfb`, `lat-mean`, `lat-p95`).
    pub class: &'a str,
    /// `(time ms, milliseconds)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// Latency lines over `[from, to]` with a 0…max scale and a legend.
pub fn lines(from: i64, to: i64, series: &[Series], label: &str) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let y_of = |v: f64| (LINE_H - 14.0) - (v / top).clamp(0.0, 1.0) * (LINE_H - 24.0);
    let mut s =
        String::with_capacity(256 + series.iter().map(|x| x.points.len() * 16).sum::<usize>());
    w!(
        s,
        "<svg class=\"lines\" viewBox=\"0 0 {W} {LINE_H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        E(label),
        E(label)
    );
    let (y_max, y_zero) = (y_of(top / 1.1), y_of(0.0));
    w!(
        s,
        "<line class=\"axis\" x1=\"{PAD}\" y1=\"{y_zero:.1}\" x2=\"{W}\" y2=\"{y_zero:.1}\"/>\
<line class=\"grid\" x1=\"{PAD}\" y1=\"{y_max:.1}\" x2=\"{W}\" y2=\"{y_max:.1}\"/>\
<text class=\"tick\" x=\"2\" y=\"{:.1}\">{:.0} ms</text><text class=\"tick\" x=\"2\" y=\"{:.1}\">0</text>",
        y_max + 4.0,
        top / 1.1,
        y_zero + 4.0
    );
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        w!(s, "<polyline class=\"{}\" points=\"", se.class);
        for (t, v) in &se.points {
            w!(s, "{:.1},{:.1} ", x_of(*t, from, to, PAD), y_of(*v));
        }
        s.push_str("\"/>");
    }
    s.push_str("</svg><ul class=\"legend\">");
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        let n = se.points.len() as f64;
        let mean = se.points.iter().map(|p| p.1).sum::<f64>() / n;
        let peak = se.points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        w!(
            s,
            "<li><span class=\"key {}\" aria-hidden=\"true\"></span>{}: mean {mean:.1} ms, max {peak:.1} ms</li>",
            se.class,
            E(se.name)
        );
    }
    s.push_str("</ul>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_has_one_rect_per_span_coloured_by_status() {
        let svg = band(0, 100, &[(0, "ok"), (50, "crit")], "db");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("class=\"fill-crit\" x=\"400.00\""), "{svg}");
    }

    #[test]
    fn lines_scale_to_the_largest_value() {
        let svg = lines(
            0,
            10,
            &[Series {
                name: "total",
                class: "lat-total",
                points: vec![(0, 10.0), (10, 20.0)],
            }],
            "latency",
        );
        assert!(svg.contains("<polyline class=\"lat-total\""));
        assert!(svg.contains("20 ms"));
        assert!(svg.contains("mean 15.0 ms, max 20.0 ms"));
    }
}

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
    lines_in(from, to, series, label, "ms")
}

/// Lines of any values over `[from, to]`: a scale from 0 (or the smallest value, when it is
/// negative) to the largest, in `unit` (empty for plain numbers), and a legend.
pub fn lines_in(from: i64, to: i64, series: &[Series], label: &str, unit: &str) -> String {
    let sp = if unit.is_empty() { "" } else { " " };
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
    };
    let max = finite().fold(0.0_f64, f64::max);
    let min = finite().fold(0.0_f64, f64::min);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let bottom = if min < 0.0 { min * 1.1 } else { 0.0 };
    let y_of = |v: f64| {
        (LINE_H - 14.0) - ((v - bottom) / (top - bottom)).clamp(0.0, 1.0) * (LINE_H - 24.0)
    };
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
<text class=\"tick\" x=\"2\" y=\"{:.1}\">{}{sp}{unit}</text><text class=\"tick\" x=\"2\" y=\"{:.1}\">0</text>",
        y_max + 4.0,
        short(top / 1.1),
        y_zero + 4.0
    );
    if bottom < 0.0 {
        let y_min = y_of(bottom / 1.1);
        w!(
            s,
            "<text class=\"tick\" x=\"2\" y=\"{:.1}\">{}{sp}{unit}</text>",
            y_min + 4.0,
            short(bottom / 1.1)
        );
    }
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        w!(s, "<polyline class=\"{}\" points=\"", se.class);
        for (t, v) in se.points.iter().filter(|p| p.1.is_finite()) {
            w!(s, "{:.1},{:.1} ", x_of(*t, from, to, PAD), y_of(*v));
        }
        s.push_str("\"/>");
    }
    s.push_str("</svg><ul class=\"legend\">");
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        let vals: Vec<f64> = se
            .points
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let peak = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let low = vals.iter().copied().fold(f64::INFINITY, f64::min);
        if unit == "ms" {
            w!(
                s,
                "<li><span class=\"key {}\" aria-hidden=\"true\"></span>{}: mean {mean:.1} ms, max {peak:.1} ms</li>",
                se.class,
                E(se.name)
            );
        } else {
            w!(
                s,
                "<li><span class=\"key {}\" aria-hidden=\"true\"></span>{}: last {}{sp}{unit}, min {}, mean {}, max {}</li>",
                se.class,
                E(se.name),
                short(vals.last().copied().unwrap_or(0.0)),
                short(low),
                short(mean),
                short(peak)
            );
        }
    }
    s.push_str("</ul>");
    s
}

/// A number for a scale or legend: whole numbers without decimals, others with up to three
/// significant decimals.
fn short(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_get_their_own_scale_and_unit() {
        let svg = lines_in(
            0,
            10,
            &[Series {
                name: "queue_depth",
                class: "val",
                points: vec![(0, 3.0), (5, 12.0), (10, 7.0)],
            }],
            "queue",
            "",
        );
        assert!(svg.contains(">12</text>"), "{svg}");
        assert!(
            svg.contains("queue_depth: last 7, min 3, mean 7.333, max 12"),
            "{svg}"
        );
        let neg = lines_in(
            0,
            10,
            &[Series {
                name: "drift",
                class: "val",
                points: vec![(0, -2.5), (10, 1.0)],
            }],
            "drift",
            "s",
        );
        assert!(neg.contains(">-2.5 s</text>"), "{neg}");
    }

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

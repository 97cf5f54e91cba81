//! The error-rate heatmap: nodes × days, one cell per daily error rate. Pure.
//!
//! Colours: black = no imports (no daily imports, or daily values unknown), blue = 0 to < 1 %,
//! yellow = 1 to < 10 %, red = ≥ 10 %, light grey = no sample that day. Nodes with recent
//! trouble come first: each cell scores red 3, black 2, yellow 1, grey 1, blue 0, and cells
//! of the last 7 days count three times; ties go by name.
//!
//! The SVG has the node names, a date axis every 7 days and a legend. The PNG is drawn from
//! the same layout straight into pixels (rectangles) with an 8×8 bitmap font for the text
//! (ASCII and Latin-1; other characters become `?`), so no font or renderer is needed.

use crate::daily::{date_string, ErrorRate};
use crate::xml::escape;
use vitals_store::FleetSample;

/// One cell of the heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    NoData,
    NoImports,
    Rate(ErrorRate),
}

impl Cell {
    /// The cell of one day's sample.
    pub fn of(sample: Option<&FleetSample>) -> Cell {
        let Some(s) = sample else {
            return Cell::NoData;
        };
        let Some(d) = s.daily else {
            return Cell::NoImports;
        };
        if d.imported + d.updated <= 0 && d.invalid + d.failed <= 0 {
            return Cell::NoImports;
        }
        match ErrorRate::of(&d) {
            Some(r) => Cell::Rate(r),
            None => Cell::NoImports,
        }
    }

    fn colour(self) -> [u8; 3] {
        match self {
            Cell::NoData => [0xe2, 0xe8, 0xf0],
            Cell::NoImports => [0x00, 0x00, 0x00],
            Cell::Rate(r) if r < ErrorRate(100) => [0x2b, 0x6c, 0xb0],
            Cell::Rate(r) if r < ErrorRate(1000) => [0xec, 0xc9, 0x4b],
            Cell::Rate(_) => [0xe5, 0x3e, 0x3e],
        }
    }

    fn trouble(self) -> u32 {
        match self {
            Cell::NoData => 1,
            Cell::NoImports => 2,
            Cell::Rate(r) if r < ErrorRate(100) => 0,
            Cell::Rate(r) if r < ErrorRate(1000) => 1,
            Cell::Rate(_) => 3,
        }
    }

    fn title(self) -> String {
        match self {
            Cell::NoData => "no data".into(),
            Cell::NoImports => "no imports".into(),
            Cell::Rate(r) => format!("{r} %"),
        }
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// One node's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub cells: Vec<Cell>,
}

/// The heatmap of `days` days ending with `last_day`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub first_day: i64,
    pub rows: Vec<Row>,
}

/// Builds the rows (in trouble order) of the given nodes `(id, name)` from their samples.
pub fn build(
    nodes: &[(String, String)],
    samples: &[FleetSample],
    last_day: i64,
    days: usize,
) -> Heatmap {
    let days_i = i64::try_from(days).unwrap_or(i64::MAX).max(1);
    let first_day = last_day - days_i + 1;
    let mut by_node: std::collections::HashMap<&str, Vec<&FleetSample>> = Default::default();
    for s in samples
        .iter()
        .filter(|s| s.day >= first_day && s.day <= last_day)
    {
        by_node.entry(s.node.as_str()).or_default().push(s);
    }
    let mut scored: Vec<(u32, Row)> = nodes
        .iter()
        .map(|(id, name)| {
            let list = by_node.get(id.as_str());
            let cells: Vec<Cell> = (first_day..=last_day)
                .map(|day| Cell::of(list.and_then(|l| l.iter().find(|s| s.day == day).copied())))
                .collect();
            let score = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let recent = i + 7 >= cells.len();
                    c.trouble() * if recent { 3 } else { 1 }
                })
                .sum();
            (
                score,
                Row {
                    id: id.clone(),
                    name: name.clone(),
                    cells,
                },
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    Heatmap {
        first_day,
        rows: scored.into_iter().map(|(_, r)| r).collect(),
    }
}

// Layout, shared by SVG and PNG.
const LABEL_W: u32 = 248;
const CELL_W: u32 = 14;
const ROW_H: u32 = 12;
const TOP: u32 = 64;
const PAD: u32 = 8;

const LEGEND: [(Cell, &str); 5] = [
    (Cell::NoImports, "no imports"),
    (Cell::Rate(ErrorRate(0)), "0 to < 1 %"),
    (Cell::Rate(ErrorRate(500)), "1 to < 10 %"),
    (Cell::Rate(ErrorRate(1000)), ">= 10 %"),
    (Cell::NoData, "no data"),
];

impl Heatmap {
    fn days(&self) -> usize {
        self.rows.first().map_or(0, |r| r.cells.len())
    }

    fn size(&self, days: usize) -> (u32, u32) {
        let days = u32::try_from(days).unwrap_or(u32::MAX);
        let rows = u32::try_from(self.rows.len()).unwrap_or(u32::MAX);
        (
            LABEL_W
                .saturating_add(days.saturating_mul(CELL_W))
                .saturating_add(2 * PAD)
                .max(560),
            TOP.saturating_add(rows.saturating_mul(ROW_H))
                .saturating_add(PAD),
        )
    }

    /// The heatmap as SVG, `days` columns wide (so an empty fleet still has its axis).
    pub fn svg(&self, days: usize) -> String {
        let (w, h) = self.size(days);
        let mut out = String::with_capacity(4096 + self.rows.len() * days * 90);
        out.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n"
        ));
        out.push_str(&format!(
            "<text x=\"{PAD}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">Daily error rate, {} nodes, {} to {}</text>\n",
            self.rows.len(),
            date_string(self.first_day),
            date_string(self.first_day + days as i64 - 1)
        ));
        let mut x = PAD;
        for (cell, label) in LEGEND {
            out.push_str(&format!(
                "<rect x=\"{x}\" y=\"28\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#999\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"38\">{}</text>\n",
                hex(cell.colour()),
                x + 16,
                escape(label)
            ));
            x += 26 + 8 * label.len() as u32;
        }
        for i in (0..days).step_by(7) {
            let day = self.first_day + i as i64;
            let date = date_string(day);
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\">{}</text>\n",
                PAD + LABEL_W + i as u32 * CELL_W,
                TOP - 6,
                escape(date.get(5..).unwrap_or(&date))
            ));
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = TOP + r as u32 * ROW_H;
            out.push_str(&format!(
                "<text x=\"{PAD}\" y=\"{}\"><title>{}</title>{}</text>\n",
                y + ROW_H - 3,
                escape(&row.id),
                escape(&truncate(&row.name, 40))
            ));
            for (i, c) in row.cells.iter().enumerate() {
                out.push_str(&format!(
                    "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {}: {}</title></rect>\n",
                    PAD + LABEL_W + i as u32 * CELL_W,
                    CELL_W - 1,
                    ROW_H - 1,
                    hex(c.colour()),
                    escape(&row.name),
                    date_string(self.first_day + i as i64),
                    c.title()
                ));
            }
        }
        out.push_str("</svg>\n");
        out
    }

    /// The heatmap as PNG; fails (naming the size) beyond `max_pixels`.
    pub fn png(&self, days: usize, max_pixels: u64) -> Result<Vec<u8>, String> {
        let (w, h) = self.size(days.max(self.days()));
        if u64::from(w) * u64::from(h) > max_pixels {
            return Err(format!(
                "a {w}×{h} PNG is larger than {max_pixels} pixels; ask for fewer days or use the SVG"
            ));
        }
        let mut canvas = Canvas::new(w, h);
        canvas.text(PAD, 10, "Daily error rate", [0, 0, 0]);
        let mut x = PAD;
        for (cell, label) in LEGEND {
            canvas.rect(x, 28, 12, 12, [0x99, 0x99, 0x99]);
            canvas.rect(x + 1, 29, 10, 10, cell.colour());
            canvas.text(x + 16, 30, label, [0, 0, 0]);
            x += 26 + 8 * label.len() as u32;
        }
        for i in (0..days).step_by(7) {
            let date = date_string(self.first_day + i as i64);
            canvas.text(
                PAD + LABEL_W + i as u32 * CELL_W,
                TOP - 12,
                date.get(5..).unwrap_or(&date),
                [0x33, 0x33, 0x33],
            );
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = TOP + r as u32 * ROW_H;
            canvas.text(PAD, y + 2, &truncate(&row.name, 29), [0, 0, 0]);
            for (i, c) in row.cells.iter().enumerate() {
                canvas.rect(
                    PAD + LABEL_W + i as u32 * CELL_W,
                    y,
                    CELL_W - 1,
                    ROW_H - 1,
                    c.colour(),
                );
            }
        }
        canvas.encode()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// An RGB pixel buffer.
struct Canvas {
    w: u32,
    h: u32,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![0xff; (w as usize) * (h as usize) * 3],
        }
    }

    fn set(&mut self, x: u32, y: u32, c: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = ((y as usize) * (self.w as usize) + x as usize) * 3;
            if let Some(p) = self.px.get_mut(i..i + 3) {
                p.copy_from_slice(&c);
            }
        }
    }

    fn rect(&mut self, x: u32, y: u32, w: u32, h: u32, c: [u8; 3]) {
        for yy in y..y.saturating_add(h).min(self.h) {
            for xx in x..x.saturating_add(w).min(self.w) {
                self.set(xx, yy, c);
            }
        }
    }

    fn text(&mut self, x: u32, y: u32, s: &str, c: [u8; 3]) {
        use font8x8::UnicodeFonts;
        for (i, ch) in s.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::LATIN_FONTS.get(ch))
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            let gx = x.saturating_add(8 * i as u32);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8u32 {
                    // font8x8: bit 0 is the leftmost pixel.
                    if bits & (1 << col) != 0 {
                        self.set(gx + col, y + row as u32, c);
                    }
                }
            }
        }
    }

    fn encode(self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w, self.h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
            writer
                .write_image_data(&self.px)
                .map_err(|e| format!("PNG: {e}"))?;
            writer.finish().map_err(|e| format!("PNG: {e}"))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_core::Timestamp;
    use vitals_store::FleetCounts;

    fn s(node: &str, day: i64, ok: i64, bad: i64) -> FleetSample {
        FleetSample {
            node: node.into(),
            day,
            polled: Timestamp(day * 86_400_000),
            last_contact: None,
            last_start: Timestamp(0),
            last_write: None,
            last_reject: None,
            imported: 0,
            updated: 0,
            invalid: 0,
            failed: 0,
            daily: Some(FleetCounts {
                imported: ok,
                updated: 0,
                invalid: bad,
                failed: 0,
            }),
        }
    }

    #[test]
    fn colours_and_trouble_order() {
        let nodes = vec![
            ("1".to_string(), "A good".to_string()),
            ("2".to_string(), "B bad lately".to_string()),
            ("3".to_string(), "C bad long ago".to_string()),
        ];
        let mut samples = Vec::new();
        for d in 0..42 {
            samples.push(s("1", d, 100, 0));
            samples.push(s("2", d, 100, if d >= 40 { 50 } else { 0 }));
            samples.push(s("3", d, 100, if d < 2 { 50 } else { 0 }));
        }
        let h = build(&nodes, &samples, 41, 42);
        let order: Vec<&str> = h.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(order, vec!["2", "3", "1"]);
        assert_eq!(
            Cell::of(Some(&s("x", 0, 99, 1))).colour(),
            [0xec, 0xc9, 0x4b]
        );
        assert_eq!(
            Cell::of(Some(&s("x", 0, 9901, 99))).colour(),
            [0x2b, 0x6c, 0xb0]
        );
        assert_eq!(
            Cell::of(Some(&s("x", 0, 9, 1))).colour(),
            [0xe5, 0x3e, 0x3e]
        );
        assert_eq!(Cell::of(Some(&s("x", 0, 0, 0))), Cell::NoImports);
        assert_eq!(Cell::of(None), Cell::NoData);
        let svg = h.svg(42);
        assert!(
            svg.starts_with("<svg") && svg.contains("B bad lately") && svg.contains("no imports")
        );
        let png = h.png(42, 50_000_000).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(h.png(42, 10).is_err());
    }
}

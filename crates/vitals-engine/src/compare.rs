//! Comparing what a source answered with the catalogue's copy, field by field, after
//! normalisation. Pure: the result names fields, never their values (they are patient data).

use vitals_config::engine::FieldConfig;

/// A field as prepared for comparison.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub source: String,
    pub catalogue: String,
    trim: bool,
    case: bool,
    space: bool,
    date: bool,
}

impl Field {
    pub fn from_config(f: &FieldConfig) -> Field {
        let has = |n: &str| f.normalise.iter().any(|x| x == n);
        Field {
            name: f.name.clone(),
            source: f.source.clone(),
            catalogue: f.catalogue.clone(),
            trim: has("trim"),
            case: has("case"),
            space: has("space"),
            date: has("date"),
        }
    }

    /// The value as compared: trimmed, lower-cased, inner white space collapsed, dates as
    /// `YYYY-MM-DD` — as configured.
    pub fn normalise(&self, v: &str) -> String {
        let mut s = if self.trim { v.trim() } else { v }.to_string();
        if self.space {
            s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        if self.case {
            s = s.to_lowercase();
        }
        if self.date {
            if let Some(d) = normalise_date(&s) {
                s = d;
            }
        }
        s
    }
}

/// Why a field differs: the kinds only, no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Both have it; the normalised values differ.
    Value,
    /// The source's answer lacks it.
    MissingAtSource,
    /// The catalogue's copy lacks it.
    MissingInCatalogue,
}

/// The fields that differ, in configuration order.
pub fn compare(
    fields: &[Field],
    source: &dyn Fn(&str) -> Option<String>,
    catalogue: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, Difference)> {
    let mut out = Vec::new();
    for f in fields {
        let a = source(&f.source).map(|v| f.normalise(&v));
        let b = catalogue(&f.catalogue).map(|v| f.normalise(&v));
        let d = match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => continue,
            (Some(_), Some(_)) => Difference::Value,
            (None, Some(_)) => Difference::MissingAtSource,
            (Some(_), None) => Difference::MissingInCatalogue,
        };
        out.push((f.name.clone(), d));
    }
    out
}

/// A JSON value as text for comparison: strings bare, numbers and booleans as written, null
/// and objects/arrays as absent (a field compares scalars).
pub fn json_text(doc: &serde_json::Value, pointer: &str) -> Option<String> {
    match doc.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A date in one of the usual spellings as `YYYY-MM-DD`; the time of day of a timestamp is
/// dropped (sources answer birth dates as dates, catalogues sometimes as midnight timestamps).
pub fn normalise_date(s: &str) -> Option<String> {
    use chrono::NaiveDate;
    let s = s.trim();
    let date_part = s.split(['T', ' ']).next().unwrap_or(s);
    for fmt in ["%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, fmt) {
            return Some(d.format("%Y-%m-%d").to_string());
        }
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.date_naive().format("%Y-%m-%d").to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, norm: &[&str]) -> Field {
        Field::from_config(&FieldConfig {
            name: name.into(),
            source: format!("/{name}"),
            catalogue: name.into(),
            normalise: norm.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn normalisation_trims_folds_case_and_reads_dates() {
        let f = field("family", &["trim", "case", "space"]);
        assert_eq!(f.normalise("  Van  der   BERG "), "van der berg");
        let d = field("birth", &["trim", "date"]);
        for v in [
            "1970-03-01",
            "19700301",
            "01.03.1970",
            "1970-03-01T00:00:00",
            "1970-03-01 00:00:00+00",
        ] {
            assert_eq!(d.normalise(v), "1970-03-01", "{v}");
        }
        assert_eq!(d.normalise("not a date"), "not a date");
        let raw = field("x", &[]);
        assert_eq!(raw.normalise(" A "), " A ");
    }

    #[test]
    fn differences_name_fields_and_kinds_only() {
        let fields = vec![
            field("family", &["trim", "case"]),
            field("given", &["trim"]),
            field("birth", &["date"]),
            field("gender", &["trim"]),
        ];
        let doc = serde_json::json!({"family": "SMITH ", "given": "Ann", "birth": "1970-03-01"});
        let cat = |c: &str| match c {
            "family" => Some("smith".to_string()),
            "given" => Some("Anne".to_string()),
            "birth" => Some("01.03.1970".to_string()),
            "gender" => Some("f".to_string()),
            _ => None,
        };
        let d = compare(&fields, &|p| json_text(&doc, p), &cat);
        assert_eq!(
            d,
            vec![
                ("given".to_string(), Difference::Value),
                ("gender".to_string(), Difference::MissingAtSource)
            ]
        );
    }

    #[test]
    fn json_pointers_read_scalars() {
        let doc = serde_json::json!({"name": [{"family": "Berg", "given": ["Ann"]}], "active": true, "n": 3});
        assert_eq!(json_text(&doc, "/name/0/family").as_deref(), Some("Berg"));
        assert_eq!(json_text(&doc, "/name/0/given/0").as_deref(), Some("Ann"));
        assert_eq!(json_text(&doc, "/active").as_deref(), Some("true"));
        assert_eq!(json_text(&doc, "/n").as_deref(), Some("3"));
        assert_eq!(json_text(&doc, "/name/0"), None);
        assert_eq!(json_text(&doc, "/missing"), None);
    }
}

//! What a poll adds to a node's history. Pure.
//!
//! - **Errors** are identified by their text within a year: a new text is added; a known text
//!   with a different `repeats` replaces the old entry (taking the new timestamp); an identical
//!   one changes nothing. Errors that vanish from the broker stay in the history.
//! - **Resources**: each fetch is compared with the previous one; every added, changed or
//!   removed key is a change (`[key] old --> new`, `[key] NEW --> v`, `[key] v --> DELETED`).
//!   The first fetch of a resource has nothing to compare with and records no change.

use std::collections::{BTreeMap, HashMap};
use vitals_core::Timestamp;
use vitals_store::{FleetError, ResourceChange};

/// The errors to write: those of `incoming` that are new or whose `repeats` changed compared
/// with `known` (errors of the same node). When the broker lists one text twice, the later
/// entry wins.
pub fn merge_errors(known: &[FleetError], incoming: &[FleetError]) -> Vec<FleetError> {
    let known: HashMap<(i32, &str), i64> = known
        .iter()
        .map(|e| ((e.year, e.content.as_str()), e.repeats))
        .collect();
    let mut out: Vec<FleetError> = Vec::new();
    let mut at: HashMap<(i32, String), usize> = HashMap::new();
    for e in incoming {
        if known.get(&(e.year, e.content.as_str())) == Some(&e.repeats) {
            continue;
        }
        match at.get(&(e.year, e.content.clone())) {
            Some(&i) => out[i] = e.clone(),
            None => {
                at.insert((e.year, e.content.clone()), out.len());
                out.push(e.clone());
            }
        }
    }
    out
}

/// The changes from `old` (the previous fetch, if any) to `new`, in key order.
pub fn diff_resource(
    node: &str,
    resource: &str,
    time: Timestamp,
    old: Option<&BTreeMap<String, String>>,
    new: &BTreeMap<String, String>,
) -> Vec<ResourceChange> {
    let Some(old) = old else {
        return Vec::new();
    };
    let change = |key: &str, o: Option<&String>, n: Option<&String>| ResourceChange {
        node: node.to_string(),
        time,
        resource: resource.to_string(),
        key: key.to_string(),
        old: o.cloned(),
        new: n.cloned(),
    };
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            Some(o) if o == v => {}
            o => out.push(change(k, o, Some(v))),
        }
    }
    for (k, o) in old {
        if !new.contains_key(k) {
            out.push(change(k, Some(o), None));
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// `[key] old --> new`, `[key] NEW --> v`, `[key] v --> DELETED`.
pub fn describe(c: &ResourceChange) -> String {
    format!(
        "[{}] {} --> {}",
        c.key,
        c.old.as_deref().unwrap_or("NEW"),
        c.new.as_deref().unwrap_or("DELETED")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(year: i32, t: i64, repeats: i64, content: &str) -> FleetError {
        FleetError {
            node: "1".into(),
            year,
            time: Timestamp(t),
            repeats,
            content: content.into(),
        }
    }

    #[test]
    fn errors_replace_only_on_new_repeats() {
        let known = vec![e(2024, 1, 1, "a"), e(2024, 2, 3, "b")];
        let incoming = vec![
            e(2024, 5, 1, "a"), // identical repeats: nothing, even with a new timestamp
            e(2024, 6, 4, "b"), // new repeats: replaces, with the new timestamp
            e(2024, 7, 1, "c"), // new text
            e(2025, 8, 1, "a"), // same text, other year: new
        ];
        let out = merge_errors(&known, &incoming);
        assert_eq!(
            out,
            vec![e(2024, 6, 4, "b"), e(2024, 7, 1, "c"), e(2025, 8, 1, "a")]
        );
        assert!(merge_errors(&known, &known).is_empty());
    }

    #[test]
    fn resource_changes() {
        let m = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let old = m(&[("java", "11"), ("os", "Ubuntu 20.04"), ("r", "4.0")]);
        let new = m(&[("java", "17"), ("os", "Ubuntu 20.04"), ("python", "3.10")]);
        let ch = diff_resource("1", "versions", Timestamp(9), Some(&old), &new);
        let text: Vec<String> = ch.iter().map(describe).collect();
        assert_eq!(
            text,
            vec![
                "[java] 11 --> 17",
                "[python] NEW --> 3.10",
                "[r] 4.0 --> DELETED"
            ]
        );
        assert!(diff_resource("1", "versions", Timestamp(9), None, &new).is_empty());
    }
}

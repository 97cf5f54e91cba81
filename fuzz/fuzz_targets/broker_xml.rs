//! AKTIN broker answers → the XML parsers of `vitals_fleet::xml`: the node list, one node, a
//! node's import statistics and Java properties resources. A broker (or anything answering in
//! its place) may send anything; the collector must get a value or an `XmlError`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vitals_fleet::xml::{parse_node, parse_node_list, parse_properties, parse_stats};

fuzz_target!(|text: &str| {
    if let Ok(nodes) = parse_node_list(text) {
        for n in &nodes {
            let _ = n.common_name();
        }
    }
    if let Ok(n) = parse_node(text) {
        let _ = n.common_name();
    }
    let _ = parse_stats(text);
    let _ = parse_properties(text);
});

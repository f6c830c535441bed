//! The library's modules form a downward stack: the order written at the top of `src/lib.rs`, where a
//! module may name (`crate::x`) only modules on lines above its own. Fails naming every upward reference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The layers as `src/lib.rs` writes them: its numbered `//!` lines (a number, a dot, then module names in
/// backticks, a dash and what they are), bottom first.
fn documented_layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let mut rank = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! ")) {
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(n) = number.trim().parse::<usize>() else {
            continue;
        };
        // Names are the backticked words before the dash; what follows it describes them.
        let names = rest.split(" — ").next().unwrap_or_default();
        for name in names.split('`').skip(1).step_by(2) {
            assert!(
                rank.insert(name.to_string(), n).is_none(),
                "{name} is listed twice in src/lib.rs"
            );
        }
    }
    rank
}

/// The text of a module's files, unit tests left out (they sit at the end, behind `#[cfg(test)]`).
fn module_sources(name: &str) -> Vec<(String, String)> {
    let file = Path::new(SRC).join(format!("{name}.rs"));
    let mut files = Vec::new();
    if file.is_file() {
        files.push(file);
    }
    let dir = Path::new(SRC).join(name);
    if dir.is_dir() {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().is_some_and(|f| f != "tests.rs") {
                    files.push(p);
                }
            }
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .to_string();
            (p.strip_prefix(SRC).unwrap().display().to_string(), text)
        })
        .collect()
}

/// Every `crate::x` a text names, `crate::{x, y::z}` groups included.
fn named_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(
                group
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string()),
            );
        } else {
            out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[test]
fn every_module_is_in_the_documented_stack_and_names_only_modules_below_it() {
    let rank = documented_layers();
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    assert!(!declared.is_empty(), "no modules found in src/lib.rs");
    let mut problems = Vec::new();
    for m in &declared {
        let Some(&own) = rank.get(m) else {
            problems.push(format!("module {m} is not in the layer list at the top of src/lib.rs"));
            continue;
        };
        for (file, text) in module_sources(m) {
            for used in named_modules(&text) {
                if used == *m || !rank.contains_key(&used) {
                    continue;
                }
                if rank[&used] >= own {
                    problems.push(format!(
                        "{file} (layer {own}) names crate::{used} (layer {}): a module may only use layers below its own",
                        rank[&used]
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "the module stack runs upward:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_layer_check_sees_plain_and_grouped_references() {
    let text = "use crate::store::Store;\nuse crate::{error::Error, digest};\nlet x = crate::frame::Frame::new();";
    assert_eq!(named_modules(text), ["store", "error", "digest", "frame"]);
}

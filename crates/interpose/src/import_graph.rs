//! The library's module import graph has no cycles: `sys` at the bottom,
//! `state`, `channel` and `ops` above it, the hooks on top. Read from the
//! sources (every `crate::module` in code, comments ignored), so a new
//! back-edge fails here instead of growing into a knot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // (module, file): a file of `src/` is its own module; every file of a
    // directory of `src/` belongs to the module the directory is.
    let mut files = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let module = p.file_name().unwrap().to_str().unwrap().to_string();
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|x| x == "rs") {
                    files.push((module.clone(), f));
                }
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            let module = p.file_stem().unwrap().to_str().unwrap().to_string();
            files.push((module, p));
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, p) in files {
        if module == "lib" || module == "import_graph" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let deps = g.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap();
            deps.extend(crate_refs(code).filter(|d| *d != module));
        }
    }
    g
}

/// The module names in `crate::name` paths of one line of code (not
/// `$crate::`, which a macro uses to name its own module).
fn crate_refs(code: &str) -> impl Iterator<Item = String> + '_ {
    code.match_indices("crate::").filter_map(move |(i, _)| {
        if code[..i].ends_with('$')
            || code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            return None;
        }
        let rest = &code[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| rest[..end].to_string())
    })
}

/// A cycle of `g`, if it has one (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn crate_refs_reads_paths_not_macro_self_references() {
    let refs: Vec<_> =
        crate_refs("use crate::ops::{self, At}; $crate::sys::raw(); x(crate::state::epoch())")
            .collect();
    assert_eq!(refs, ["ops", "state"]);
}

#[test]
fn find_cycle_sees_a_loop_and_not_a_chain() {
    let g = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn module_imports_have_no_cycle() {
    let g = graph();
    assert!(
        g["hooks"].contains("ops") && g["ops"].contains("state"),
        "graph read: {g:?}"
    );
    assert!(
        g["sys"].is_empty(),
        "sys must depend on no module: {:?}",
        g["sys"]
    );
    assert_eq!(find_cycle(&g), None, "import cycle; graph: {g:#?}");
}

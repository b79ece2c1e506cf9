//! The module graph: read from the `crate::` paths of every file under src/.
//! A module is a top-level module of the library (`src/x.rs` or `src/x/`);
//! a file's module depends on every other module it names. The graph must
//! have no cycle (data flows tasks -> data -> model -> sample/train -> eval
//! -> cmd), and the sweep runner and the report must not reach libtorch.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module -> the modules it names, and the modules that name `tch::`.
fn read_graph() -> (Graph, BTreeSet<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut uses_tch = BTreeSet::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(module.clone()).or_default();
            for name in crate_paths(&text) {
                if name != module {
                    deps.insert(name);
                }
            }
            let bytes = text.as_bytes();
            let names_tch = text.match_indices("tch::").any(|(i, _)| {
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
            });
            if names_tch {
                uses_tch.insert(module);
            }
        }
    }
    (graph, uses_tch)
}

/// The top-level modules a text names after `crate::`: `crate::a::b`,
/// `crate::{a, b::c}` (grouped imports), not macros (`crate::say!`).
fn crate_paths(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(
                inner
                    .split(',')
                    .map(|p| ident(p.trim()))
                    .filter(|n| !n.is_empty()),
            );
            continue;
        }
        let name = ident(rest);
        if !name.is_empty() && !rest[name.len()..].starts_with('!') {
            out.push(name);
        }
    }
    out
}

/// A cycle through `from`, as a path, if any (depth-first search).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

/// Every module `from` reaches, itself included.
fn reach(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone()) {
            todo.extend(graph.get(&n).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_module_graph_has_no_cycle() {
    let (graph, _) = read_graph();
    for m in [
        "config", "model", "train", "eval", "sample", "cmd", "sweep", "report",
    ] {
        assert!(graph.contains_key(m), "module {m} not found: {graph:?}");
    }
    // The layers the data flows through, in order.
    for (lower, upper) in [
        ("data", "model"),
        ("model", "sample"),
        ("sample", "train"),
        ("eval", "train"),
        ("train", "cmd"),
    ] {
        assert!(
            !reach(&graph, lower).contains(upper),
            "{lower} depends on {upper}: {:?}",
            graph[lower]
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn grouped_imports_and_macros_are_read_right() {
    let names = crate_paths(
        "use crate::{eval, train::loss};\ncrate::say!(\"x\");\nlet d = crate::device::start(c);",
    );
    assert_eq!(names, ["eval", "train", "device"]);
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let (mut graph, _) = read_graph();
    graph.get_mut("config").unwrap().insert("eval".into());
    let cycle = find_cycle(&graph).expect("config -> eval -> ... -> config is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"config".to_string()), "{cycle:?}");
}

#[test]
fn sweep_and_report_never_reach_libtorch() {
    let (graph, uses_tch) = read_graph();
    assert!(uses_tch.contains("model") && uses_tch.contains("train"));
    for m in ["sweep", "report"] {
        let reached: Vec<_> = reach(&graph, m).intersection(&uses_tch).cloned().collect();
        assert!(
            reached.is_empty(),
            "{m} reaches libtorch through {reached:?}"
        );
    }
}

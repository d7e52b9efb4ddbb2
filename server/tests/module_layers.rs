//! The crate's import graph, read from `src/`: no module imports another that imports it back (no
//! cycles, not even between a `mod.rs` and its children), and the lower layers (auth, kb, postgres,
//! watch) never import the routes, `mcp`, `app` or the command line above them.
//!
//! An edge is any `use crate::…`/`use super::…` (braces expanded) or inline `crate::…`/`super::…`
//! path outside comments and `#[cfg(test)] mod tests`, resolved to the longest module it names.
//! `mod` declarations are not edges. See `lib.rs` for the layer map this protects.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Lower layers, and what they must never import.
const LOWER: &[&str] = &["auth", "kb", "postgres", "watch"];
const UPPER: &[&str] = &[
    "mcp",
    "app",
    "server",
    "health",
    "probes",
    "origin",
    "request_context",
    "cli",
    "sync",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `auth/http.rs` -> `auth::http`; `auth/mod.rs` -> `auth`; `lib.rs` -> ``.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit-test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]].
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default();
        return vec![
            path.split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ];
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let Some(close) = tree.rfind('}') else {
        return Vec::new();
    };
    let inner = &tree[open + 1..close];
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(expand)
        .map(|tail| head.iter().cloned().chain(tail).collect())
        .collect()
}

/// Every path the code names that starts at `crate` or `super` (or, in a `mod.rs`, at a child).
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        // Only a statement: nothing but `pub`/`pub(crate)` before it on its line.
        let line_start = rest[..at].rfind('\n').map_or(0, |n| n + 1);
        let before = rest[line_start..at].trim();
        rest = &rest[at + 4..];
        if !(before.is_empty() || before == "pub" || before.starts_with("pub(")) {
            continue;
        }
        let end = rest.find(';').unwrap_or(rest.len());
        paths.extend(expand(&rest[..end]).into_iter().filter(|p| {
            p.first()
                .is_some_and(|s| s == "crate" || s == "super" || children.contains(s))
        }));
    }
    for anchor in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let path: Vec<String> = tail[..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            // `use super::{…}` is read above; here only paths that name something.
            if path.len() > 1 {
                paths.push(path);
            }
        }
    }
    paths
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let modules: BTreeMap<Vec<String>, PathBuf> = files.iter().map(|f| (module_of(&root, f), f.clone())).collect();
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let is_dir = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| is_dir && m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let text = std::fs::read_to_string(file).unwrap();
        let mut targets = BTreeSet::new();
        for path in named_paths(&code(&text), &children) {
            let path: Vec<String> = path.into_iter().filter(|s| s != "self").collect();
            let absolute = match path.first().map(String::as_str) {
                Some("crate") => path[1..].to_vec(),
                Some("super") => {
                    let mut base = module[..module.len().saturating_sub(1)].to_vec();
                    let mut tail = &path[1..];
                    while tail.first().is_some_and(|s| s == "super") {
                        base.pop();
                        tail = &tail[1..];
                    }
                    base.into_iter().chain(tail.iter().cloned()).collect()
                }
                Some(_) => module.iter().chain(&path).cloned().collect(),
                None => continue,
            };
            if let Some(target) = resolve(&absolute).filter(|t| t != module) {
                targets.insert(target.join("::"));
            }
        }
        graph.insert(module.join("::"), targets);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.graph[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|m| *m == v).unwrap();
            let component: Vec<String> = s.stack.drain(at..).map(str::to_string).collect();
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or_default()
}

#[test]
fn the_module_graph_has_no_cycles() {
    let graph = graph();
    assert!(
        graph.len() > 40 && graph["app"].contains("mcp"),
        "the parser sees the crate: {graph:#?}"
    );
    let found = cycles(&graph);
    println!(
        "{} modules, {} imports, {} cycles",
        graph.len(),
        graph.values().map(BTreeSet::len).sum::<usize>(),
        found.len()
    );
    assert!(found.is_empty(), "import cycles: {found:?}");
}

#[test]
fn lower_layers_never_import_upward() {
    let upward: Vec<String> = graph()
        .iter()
        .filter(|(module, _)| LOWER.contains(&layer(module)))
        .flat_map(|(module, targets)| {
            targets
                .iter()
                .filter(|t| UPPER.contains(&layer(t)))
                .map(move |t| format!("{module} -> {t}"))
        })
        .collect();
    assert!(upward.is_empty(), "imports up the layers: {upward:#?}");
}

#[test]
fn a_cycle_and_an_upward_import_would_be_seen() {
    let mut graph = Graph::new();
    graph.insert("auth".into(), ["mcp::tools".to_string()].into());
    graph.insert("mcp::tools".into(), ["auth".to_string()].into());
    assert_eq!(cycles(&graph).len(), 1);
    assert_eq!(
        expand("super::{error::DbError, pool::Database}"),
        [["super", "error", "DbError"], ["super", "pool", "Database"]]
    );
}

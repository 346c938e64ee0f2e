//! The crates along the layers (SPEC.md §2), checked where a reviewer
//! would check them: `cargo tree` for what each crate pulls in, and the
//! sources for imports that go both ways between two modules.
//!
//! * `approval-host` depends on neither tonic nor async-nats, and on none
//!   of the CLI's crates (clap, indicatif, tracing-subscriber, anyhow);
//! * `approval-grpc` has no tonic server (tonic's `server` feature);
//! * the CLI, built alone as the README builds it, never has the sink's
//!   `fault-injection` feature;
//! * no module of any crate imports another module that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `cargo tree` with `args`, run offline in the workspace (the build that
/// runs this test has resolved and fetched everything already).
fn cargo_tree(args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .arg("tree")
        .args(args)
        .args(["--offline", "--prefix", "none"])
        .current_dir(repo())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package names of a `cargo tree` listing.
fn packages(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_host_library_pulls_in_no_transport_and_no_cli_crate() {
    let all = packages(&cargo_tree(&["-p", "approval-host", "-e", "normal"]));
    for banned in ["tonic", "async-nats", "approval-grpc", "approval-nats"] {
        assert!(!all.contains(banned), "approval-host depends on {banned}");
    }
    let direct = packages(&cargo_tree(&[
        "-p",
        "approval-host",
        "-e",
        "normal",
        "--depth",
        "1",
    ]));
    for banned in ["clap", "indicatif", "tracing-subscriber", "anyhow"] {
        assert!(
            !direct.contains(banned),
            "approval-host depends on {banned} directly"
        );
    }
}

#[test]
fn the_grpc_client_has_no_tonic_server() {
    let features = cargo_tree(&[
        "-p",
        "approval-grpc",
        "-e",
        "features,normal",
        "-i",
        "tonic",
    ]);
    assert!(
        features.lines().any(|l| l.starts_with("tonic ")),
        "the listing names tonic:\n{features}"
    );
    for server in ["tonic feature \"server\"", "tonic feature \"router\""] {
        assert!(
            !features.contains(server),
            "approval-grpc enables {server}:\n{features}"
        );
    }
}

#[test]
fn the_cli_built_alone_has_no_fault_injection() {
    let features = cargo_tree(&[
        "-p",
        "approval-sink",
        "-e",
        "features,normal",
        "-i",
        "approval-host",
    ]);
    assert!(
        features.lines().any(|l| l.starts_with("approval-host ")),
        "the listing names approval-host:\n{features}"
    );
    assert!(
        !features.contains("fault-injection"),
        "the CLI enables fault-injection:\n{features}"
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let crates = [
        "proto/src",
        "guest/src",
        "host/src",
        "host/grpc/src",
        "host/nats/src",
        "host/gateway/src",
        "host/cli/src",
        "tests/src",
    ];
    let mut cycles = Vec::new();
    for dir in crates {
        let graph = import_graph(&repo().join(dir));
        for (from, tos) in &graph {
            for to in tos {
                if from < to && graph.get(to).is_some_and(|back| back.contains(from)) {
                    cycles.push(format!("{dir}: {} <-> {}", name(from), name(to)));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.join("\n")
    );
}

type ModPath = Vec<String>;

fn name(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// Which module imports which, for the crate whose sources are under
/// `src`. A module is a file; an import is a `use` path or an inline path
/// starting with `crate::`, `super::` or `self::`, resolved to the longest
/// module it names (`crate::Item` re-exported by the root resolves to the
/// module it comes from). Edges between a module and its own ancestors or
/// descendants are left out: a parent re-exporting its child's items is
/// the module tree's structure, not an import cycle.
fn import_graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let files = rust_files(src);
    let modules: BTreeMap<ModPath, String> = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("readable source");
            (module_of(src, file), strip_comments(&text))
        })
        .collect();
    let known: BTreeSet<&ModPath> = modules.keys().collect();
    let root_reexports = reexports(modules.get(&Vec::new()).map_or("", String::as_str));
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, text) in &modules {
        for path in imported_paths(text) {
            let Some(mut absolute) = absolute(module, &path) else {
                continue;
            };
            if absolute.len() == 1
                && let Some(from) = root_reexports.get(&absolute[0])
            {
                absolute = from.clone();
            }
            let target = (0..=absolute.len())
                .rev()
                .map(|n| absolute[..n].to_vec())
                .find(|prefix| known.contains(prefix))
                .unwrap_or_default();
            let nested = target.starts_with(module) || module.starts_with(&target);
            if !nested {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            // Generated code is checked by its own freshness test.
            if path.file_name().is_some_and(|n| n != "generated") {
                out.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The module a file holds: `lib.rs`/`main.rs` the root, `a/mod.rs` and
/// `a.rs` module `a`, `a/b.rs` module `a::b`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: ModPath = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// `path` (as written in `module`) as a path from the crate root, if it is
/// one of the crate's own (`crate::`, `super::`, `self::`).
fn absolute(module: &ModPath, path: &[String]) -> Option<ModPath> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut base = module.clone();
            base.pop()?;
            base
        }
        _ => return None,
    };
    let mut rest = rest.iter().peekable();
    while rest.peek().is_some_and(|s| *s == "super") {
        base.pop()?;
        rest.next();
    }
    base.extend(rest.cloned());
    Some(base)
}

/// The root's `pub use a::b::{X, Y}` as `X -> [a, b]`.
fn reexports(root: &str) -> BTreeMap<String, ModPath> {
    let mut map = BTreeMap::new();
    for tree in use_trees(root) {
        for path in flatten(&tree) {
            if let Some((item, module)) = path.split_last()
                && !module.is_empty()
                && !matches!(module[0].as_str(), "crate" | "self" | "super")
            {
                map.insert(item.clone(), module.to_vec());
            }
        }
    }
    map
}

/// Every path a module's text names: its `use` trees flattened, and the
/// inline paths that start with `crate::`, `super::` or `self::`.
fn imported_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = use_trees(text).iter().flat_map(|t| flatten(t)).collect();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':')
            {
                continue;
            }
            let end = text[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |n| at + n);
            paths.push(
                text[at..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    paths
}

/// The text of each `use ...;` item.
fn use_trees(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("use ") {
        let at = from + at;
        from = at + 4;
        let word_start =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !word_start {
            continue;
        }
        if let Some(end) = text[from..].find(';') {
            out.push(text[from..from + end].trim().to_owned());
            from += end;
        }
    }
    out
}

/// A use tree (`a::{b, c::{d, e as f}}`) as its paths.
fn flatten(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(open) = tree.find('{') else {
        let mut path = prefix.clone();
        let head = tree.split("as").next().unwrap_or(tree);
        path.extend(
            head.split("::")
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned),
        );
        if !path.is_empty() {
            out.push(path);
        }
        return;
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let len = prefix.len();
    prefix.extend(head);
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], prefix, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&inner[start..], prefix, out);
    prefix.truncate(len);
}

/// The text without comments, strings or char literals (each replaced by
/// a space), so paths in docs or messages are not read as imports.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&chars, i)
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push(' ');
            } else {
                out.push(c);
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push(' ');
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

#[test]
fn the_import_reader_finds_a_cycle_it_is_shown() {
    let dir = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a; mod b; pub use b::Thing;").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "mod c; use crate::{b::Thing, a::c};").unwrap();
    std::fs::write(
        dir.join("a/c.rs"),
        "use super::super::b; // crate::nothing::here\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "pub struct Thing; fn f() { crate::a::c::g(\"crate::x\"); }",
    )
    .unwrap();
    let graph = import_graph(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let c = vec!["a".to_owned(), "c".to_owned()];
    assert!(graph[&a].contains(&b), "{graph:?}");
    assert!(graph[&c].contains(&b), "{graph:?}");
    assert!(graph[&b].contains(&c), "{graph:?}");
    assert!(
        !graph[&a].contains(&c),
        "a child is structure, not an import"
    );
    assert_eq!(
        graph[&b].len(),
        1,
        "nothing read from a comment or string: {graph:?}"
    );
}

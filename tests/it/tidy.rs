//! Checks of the source tree that the compiler cannot make, in the spirit of rust-analyzer's
//! `xtask/src/tidy.rs`: it reads `src/**/*.rs` and ARCHITECTURE.md as text.
//!
//! - SQLite stays behind the store boundary: no `rusqlite` and no SQL string literal outside
//!   `src/store/`.
//! - Socket.IO stays in `realtime`: no `socketioxide` outside `src/realtime/` (and the
//!   wiring: `src/app.rs`, and `src/state.rs`, which holds the handle).
//! - Nothing imports `crate::app` but `main.rs` and `lib.rs`: `app` only wires; what the
//!   features share is in `src/state.rs` (the import graph stays without `app` in a cycle).
//! - Every module file under `src/` is on ARCHITECTURE.md's code map (by its own path or a
//!   folder it lies in).
//! - The top-level modules form layers: no import cycle among them, counting the modules a
//!   module names through `crate::` paths in code outside `#[cfg(test)]` modules (the graph
//!   `tools/import-graph.py` prints).
//! - No function outside tests is longer than `MAX_FN_LINES` lines (from the line of its
//!   `fn` to its closing brace); `#[cfg(test)]` modules are not counted.
//!
//! Comments are not checked (they may name what they talk about); code and string literals
//! are. Every message says `file:line`, what is wrong and what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a dependency may be named: path prefixes under the crate root.
const RUSQLITE_ALLOWED: &[&str] = &["src/store/"];
const SOCKETIOXIDE_ALLOWED: &[&str] = &["src/realtime/", "src/app.rs", "src/state.rs"];
const APP_ALLOWED: &[&str] = &["src/app.rs", "src/main.rs", "src/lib.rs"];

/// The longest a function outside tests may be, in lines from its `fn` to its closing brace.
const MAX_FN_LINES: usize = 80;
/// Files whose long functions are not reported (yet).
const LONG_FN_ALLOWED: &[&str] = &[];

/// SQL a string literal may start with (after white space); `UPDATE` counts only with a `SET`.
const SQL_STARTS: &[&str] = &[
    "SELECT ",
    "SELECT\n",
    "INSERT INTO",
    "INSERT OR",
    "DELETE FROM",
    "PRAGMA ",
    "CREATE TABLE",
    "CREATE INDEX",
    "CREATE UNIQUE",
    "ALTER TABLE",
    "DROP TABLE",
    "BEGIN IMMEDIATE",
    "SAVEPOINT ",
    "ROLLBACK",
    "RELEASE ",
    "VACUUM",
];

/// One source file: its path relative to the crate root (with `/`) and its text.
struct Source {
    path: String,
    text: String,
}

/// A source file split into code (comments and literals blanked, lines kept) and its string
/// literals with the line each starts on.
struct Lexed {
    code: String,
    strings: Vec<(usize, String)>,
}

fn lex(text: &str) -> Lexed {
    let b: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Copies `c` to the code, or blanks it (keeping line breaks) when it is not code.
    let keep = |code: &mut String, c: char, is_code: bool| code.push(if is_code || c == '\n' { c } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let prev_ident = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                keep(&mut code, b[i], false);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            while i < b.len() && !(b[i] == '*' && b.get(i + 1) == Some(&'/')) {
                line += usize::from(b[i] == '\n');
                keep(&mut code, b[i], false);
                i += 1;
            }
            code.push_str("  ");
            i += 2;
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        let raw_start = if !prev_ident && c == 'r' {
            Some(i + 1)
        } else if !prev_ident && c == 'b' && next == Some('r') {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let close: Vec<char> = close.chars().collect();
                let start_line = line;
                let mut k = j + 1;
                let mut s = String::new();
                while k < b.len() && b[k..].iter().take(close.len()).ne(close.iter()) {
                    s.push(b[k]);
                    line += usize::from(b[k] == '\n');
                    k += 1;
                }
                strings.push((start_line, s));
                for &ch in &b[i..(k + close.len()).min(b.len())] {
                    keep(&mut code, ch, false);
                }
                i = k + close.len();
                continue;
            }
        }
        if c == '"' {
            let start_line = line;
            let mut s = String::new();
            keep(&mut code, c, false);
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    let esc = b[i + 1];
                    s.push(match esc {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                    keep(&mut code, b[i], false);
                    keep(&mut code, esc, false);
                    line += usize::from(esc == '\n');
                    i += 2;
                    continue;
                }
                s.push(b[i]);
                line += usize::from(b[i] == '\n');
                keep(&mut code, b[i], false);
                i += 1;
            }
            keep(&mut code, '"', false);
            i += 1;
            strings.push((start_line, s));
            continue;
        }
        // Character literals ('"', '\'', '\n'); a lifetime ('a) is code.
        if c == '\'' {
            let len = if next == Some('\\') {
                b.get(i + 3..).and_then(|rest| rest.iter().position(|&x| x == '\'')).map(|p| p + 4)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            if let Some(len) = len {
                for &ch in &b[i..(i + len).min(b.len())] {
                    keep(&mut code, ch, false);
                }
                i += len;
                continue;
            }
        }
        line += usize::from(c == '\n');
        keep(&mut code, c, true);
        i += 1;
    }
    Lexed { code, strings }
}

fn is_sql(literal: &str) -> bool {
    let t = literal.trim_start();
    SQL_STARTS.iter().any(|k| t.starts_with(k)) || (t.starts_with("UPDATE ") && t.contains(" SET "))
}

fn allowed(path: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| path.starts_with(p))
}

/// Whole-word occurrences of `word` in code, with their line numbers.
fn word_lines(code: &str, word: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut from = 0;
        while let Some(p) = line[from..].find(word) {
            let at = from + p;
            let before = line[..at].chars().next_back();
            let after = line[at + word.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if boundary(before) && boundary(after) {
                out.push(n + 1);
                break;
            }
            from = at + word.len();
        }
    }
    out
}

/// Blanks every `#[cfg(test)] mod … { … }` in lexed code (line breaks kept), so that test
/// code is not measured.
fn without_test_modules(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let attr: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + attr.len() <= out.len() {
        if out[i..].starts_with(&attr) {
            // The item the attribute is on: skip white space and further attributes.
            let mut j = i + attr.len();
            loop {
                while out.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                if !out[j..].starts_with(&['#', '[']) {
                    break;
                }
                j += out[j..].iter().position(|&c| c == ']').map_or(out.len() - j, |p| p + 1);
            }
            let item: String = out[j..].iter().take(8).collect();
            let open = out[j..].iter().position(|&c| c == '{' || c == ';').map(|p| j + p);
            if let Some(open) = open.filter(|&o| (item.starts_with("mod ") || item.starts_with("pub mod ")) && out[o] == '{') {
                let mut depth = 0;
                let mut end = open;
                while end < out.len() {
                    depth += i32::from(out[end] == '{') - i32::from(out[end] == '}');
                    end += 1;
                    if depth == 0 {
                        break;
                    }
                }
                for c in &mut out[i..end] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// Every function with a body in lexed code: (line of its `fn`, name, length in lines).
fn functions(code: &str) -> Vec<(usize, String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
        }
        let starts_fn = chars[i..].starts_with(&['f', 'n'])
            && (i == 0 || !is_ident(chars[i - 1]))
            && chars.get(i + 2).is_some_and(|c| c.is_whitespace());
        if !starts_fn {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while chars.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        let name: String = chars[j..].iter().take_while(|&&c| is_ident(c)).collect();
        // The body: the first `{` at bracket depth 0 (a `;` first means no body).
        let (mut depth, mut k, mut body_line, mut end_line) = (0i32, j, line, None);
        let mut in_body = false;
        while k < chars.len() {
            let c = chars[k];
            if c == '\n' {
                body_line += 1;
            }
            match c {
                '(' | '[' | '<' if !in_body => depth += 1,
                ')' | ']' if !in_body => depth -= 1,
                '>' if !in_body && chars[k - 1] != '-' && chars[k - 1] != '=' => depth -= 1,
                ';' if !in_body && depth <= 0 => break,
                '{' if !in_body && depth <= 0 => {
                    in_body = true;
                    depth = 1;
                }
                '{' if in_body => depth += 1,
                '}' if in_body => {
                    depth -= 1;
                    if depth == 0 {
                        end_line = Some(body_line);
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        if let Some(end) = end_line {
            out.push((line, name, end - line + 1));
        }
        i = j;
    }
    out
}

/// The `src/…` paths named on the code map (the table under `## Code map`).
fn code_map(architecture: &str) -> Vec<String> {
    let Some(start) = architecture.find("## Code map") else { return Vec::new() };
    let rest = &architecture[start + 2..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    section.split('`').skip(1).step_by(2).filter(|t| t.starts_with("src/")).map(str::to_string).collect()
}

/// The top-level module a source file belongs to (`src/store/db.rs` → `store`, `src/state.rs`
/// → `state`); `None` for the crate roots `lib.rs` and `main.rs`.
fn top_module(path: &str) -> Option<&str> {
    let head = path.strip_prefix("src/")?.split('/').next()?;
    let module = head.strip_suffix(".rs").unwrap_or(head);
    (!matches!(module, "lib" | "main")).then_some(module)
}

/// The first names of the paths after each `crate::` in lexed code, with their byte offsets:
/// `crate::store::Db` → `store`, `crate::{auth::Role, store}` → `auth` and `store`.
fn crate_paths(code: &str) -> Vec<(usize, &str)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let ident_at = |at: usize| {
        let len = code[at..].find(|c: char| !is_ident(c)).unwrap_or(code.len() - at);
        &code[at..at + len]
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("crate::") {
        let at = from + p;
        from = at + "crate::".len();
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        if !code[from..].starts_with('{') {
            out.push((from, ident_at(from)));
            continue;
        }
        // A group: the first name of each item at depth 1.
        let (mut depth, mut item_start) = (0, true);
        for (i, c) in code[from..].char_indices() {
            match c {
                '{' => {
                    depth += 1;
                    item_start = depth == 1;
                }
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => item_start = true,
                c if item_start && is_ident(c) => {
                    out.push((from + i, ident_at(from + i)));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    out
}

/// Module → module → the first `file:line` that names it: the top-level modules each module
/// names through `crate::` paths, in code outside `#[cfg(test)]` modules.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn import_graph(files: &[Source]) -> Graph {
    let known: BTreeSet<&str> = files.iter().filter_map(|f| top_module(&f.path)).collect();
    let mut graph = Graph::new();
    for f in files {
        let Some(me) = top_module(&f.path) else { continue };
        let code = without_test_modules(&lex(&f.text).code);
        for (at, dep) in crate_paths(&code) {
            if dep != me && known.contains(dep) {
                let line = code[..at].matches('\n').count() + 1;
                let edges = graph.entry(me.to_string()).or_default();
                edges.entry(dep.to_string()).or_insert_with(|| format!("{}:{line}", f.path));
            }
        }
    }
    graph
}

/// The import cycles of `graph`: each strongly connected set of more than one module,
/// sorted.
fn import_cycles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |start: &str| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start.to_string()]);
        while let Some(m) = todo.pop() {
            for dep in graph.get(&m).into_iter().flat_map(|d| d.keys()) {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for (m, from_m) in &reaches {
        let mut cycle: Vec<String> = from_m.iter().filter(|o| reaches.get(o).is_some_and(|r| r.contains(*m))).cloned().collect();
        if cycle.len() > 1 && !cycles.iter().any(|c| c.contains(m)) {
            cycle.sort();
            cycles.push(cycle);
        }
    }
    cycles
}

/// Every violation in `files` (and against the code map in `architecture`), one line each.
fn check(files: &[Source], architecture: &str) -> Vec<String> {
    let mut out = Vec::new();
    let map = code_map(architecture);
    for f in files {
        let lexed = lex(&f.text);
        if !allowed(&f.path, RUSQLITE_ALLOWED) {
            for line in word_lines(&lexed.code, "rusqlite") {
                out.push(format!(
                    "{}:{line}: `rusqlite` outside src/store/: only the store touches SQLite; call (or add) a typed function in src/store/ instead",
                    f.path
                ));
            }
            for (line, s) in &lexed.strings {
                if is_sql(s) {
                    let head: String = s.trim_start().chars().take(40).collect();
                    out.push(format!(
                        "{}:{line}: SQL outside src/store/ ({head:?}…): move the query into a typed function in src/store/ and call that",
                        f.path
                    ));
                }
            }
        }
        if !allowed(&f.path, SOCKETIOXIDE_ALLOWED) {
            for line in word_lines(&lexed.code, "socketioxide") {
                out.push(format!(
                    "{}:{line}: `socketioxide` outside src/realtime/: only realtime knows Socket.IO; add a function to src/realtime/ and call that",
                    f.path
                ));
            }
        }
        if !allowed(&f.path, APP_ALLOWED) {
            for line in word_lines(&lexed.code, "crate::app") {
                out.push(format!(
                    "{}:{line}: `crate::app` outside the wiring: app.rs only wires; take what you need from crate::state (AppState) or the module that owns it",
                    f.path
                ));
            }
        }
        if !allowed(&f.path, LONG_FN_ALLOWED) {
            for (line, name, len) in functions(&without_test_modules(&lexed.code)) {
                if len > MAX_FN_LINES {
                    out.push(format!(
                        "{}:{line}: fn `{name}` is {len} lines (more than {MAX_FN_LINES}): split it along its steps into functions that say what they do",
                        f.path
                    ));
                }
            }
        }
        let on_map = map.iter().any(|m| *m == f.path || (m.ends_with('/') && f.path.starts_with(m.as_str())));
        if !on_map {
            out.push(format!(
                "{}:1: module missing from ARCHITECTURE.md's code map: add a row for it (or for its folder) saying what it owns",
                f.path
            ));
        }
    }
    let graph = import_graph(files);
    for cycle in import_cycles(&graph) {
        let edges: Vec<(&String, &String, &String)> =
            cycle.iter().flat_map(|m| graph[m].iter().filter(|(dep, _)| cycle.contains(dep)).map(move |(dep, at)| (m, dep, at))).collect();
        let list: Vec<String> = edges.iter().map(|(m, dep, at)| format!("{m} -> {dep} ({at})")).collect();
        out.push(format!(
            "{}: import cycle among the top-level modules {}: {}; move what the lower one needs beneath both (a plain type), or have it take a value or closure that app.rs wires, instead (ARCHITECTURE.md, \"Import graph\")",
            edges[0].2,
            cycle.join(", "),
            list.join(", ")
        ));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn sources(root: &Path) -> Vec<Source> {
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths
        .into_iter()
        .map(|p| Source {
            path: p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect()
}

#[test]
fn the_source_tree_is_tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = sources(root);
    assert!(files.iter().any(|f| f.path == "src/store/db.rs"), "the checker sees the source tree");
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let problems = check(&files, &architecture);
    assert!(problems.is_empty(), "tidy found {} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn planted_violations_are_reported() {
    let map = "# Architecture\n\n## Code map\n\n| `src/store/` | all SQLite |\n| `src/http/` | routes |\n| `src/app.rs` | wiring |\n\n## Data flow\n`src/planted.rs`\n";
    let file = |path: &str, text: &str| Source { path: path.into(), text: text.into() };
    let body = |n: usize| "    let x = 1;\n".repeat(n - 2);
    let long_fns = format!(
        "trait T {{\n    fn declared(&self) -> [u8; 2];\n}}\n\npub(crate) async fn fits(a: u8) -> Result<(), ()> {{\n{}}}\n\nfn too_long<T: Into<String>>(\n    t: T,\n) -> impl Fn() -> u8 {{\n{}}}\n\n#[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{}    }}\n}}\n",
        body(80),
        body(79),
        body(200)
    );
    let files = [
        // Allowed: SQL and rusqlite inside the store, socketioxide in the wiring.
        file("src/store/x.rs", "use rusqlite::Connection;\nfn f(c: &Connection) { c.execute(\"DELETE FROM t\", []); }\n"),
        file("src/app.rs", "use socketioxide::SocketIo;\n"),
        // Not SQL, not code: a message naming a pragma, comments, a word that only contains it.
        file(
            "src/http/fine.rs",
            "// rusqlite and socketioxide in a comment\n/* SELECT * FROM t */\nfn f() { let m = \"failed PRAGMA quick_check: x\"; let not_rusqlite_x = 1; let c = '\"'; }\n",
        ),
        // Violations.
        file(
            "src/http/bad.rs",
            "fn f<'a>(c: &'a x) {\n    let n = c.query_row(\"SELECT 1\", [], |r| r.get(0));\n    let e: rusqlite::Error = todo!();\n    let s = r#\"\n  UPDATE orders SET x = 1\"#;\n    let io: socketioxide::SocketIo = todo!();\n    let st: crate::app::AppState = todo!();\n}\n",
        ),
        file("src/planted.rs", "use crate::http::x;\nfn main() {}\n"),
        // A function of 81 lines is one too many; 80 lines, a declaration, and test code pass.
        file("src/http/long.rs", &long_fns),
        // An import cycle: store -> http (in a `use` group over lines) -> store. A `crate::`
        // path in a comment, a string or a test module, or after a word ending in `crate`,
        // is no edge (else http -> planted -> http would be a second cycle).
        file("src/store/up.rs", "use crate::{\n    validate::{self, Invalid},\n    http::Json,\n};\n"),
        file(
            "src/http/down.rs",
            "// crate::planted\nfn f() {\n    let s = \"crate::planted\";\n    let notcrate::planted = 1;\n    let db: crate::store::Db = todo!();\n}\n#[cfg(test)]\nmod tests {\n    use crate::planted::x;\n}\n",
        ),
    ];
    let problems = check(&files, map);
    let expect = [
        "src/http/bad.rs:2: SQL outside src/store/",
        "src/http/bad.rs:3: `rusqlite` outside src/store/",
        "src/http/bad.rs:4: SQL outside src/store/",
        "src/http/bad.rs:6: `socketioxide` outside src/realtime/",
        "src/http/bad.rs:7: `crate::app` outside the wiring",
        "src/planted.rs:1: module missing from ARCHITECTURE.md's code map",
        "src/http/long.rs:86: fn `too_long` is 81 lines (more than 80)",
        "src/http/down.rs:5: import cycle among the top-level modules http, store: http -> store (src/http/down.rs:5), store -> http (src/store/up.rs:3)",
    ];
    for e in expect {
        assert!(problems.iter().any(|p| p.starts_with(e)), "expected a problem starting {e:?}, got:\n{}", problems.join("\n"));
    }
    assert_eq!(problems.len(), expect.len(), "nothing else is reported:\n{}", problems.join("\n"));
    assert!(problems.iter().all(|p| p.contains(": ")
        && (p.contains("instead")
            || p.contains("call that")
            || p.contains("add a row")
            || p.contains("owns it")
            || p.contains("what they do"))));
}

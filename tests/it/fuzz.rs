//! Fuzzing on stable (issue #10, "keep finding them"): a small mutation engine (bit flips,
//! byte insert/delete, splices, and JSON-aware mutations: swapped value types, huge numbers,
//! deep nesting, long strings, unicode and control characters, duplicate keys) seeded from
//! the committed corpus in `tests/fuzz-corpus/<target>/`, run against every parser of
//! outside input, called as the server calls it.
//!
//! Each target runs for `FUZZ_SECONDS` (default 3) seconds; `FUZZ_SEED` repeats a run. A
//! panic anywhere in the process (the test's own thread, the server's tasks, the writer
//! thread) fails the target and leaves the input that caused it in `target/fuzz-crashes/`;
//! copy it into the target's corpus directory once fixed, so it stays a regression input.
//! Server targets also fail on a 500 (the server's panic guard answers 500).
//!
//! Figures: `FUZZ_SECONDS=3 cargo test --test it fuzz:: -- --nocapture --test-threads 1` prints
//! one `fuzz <target>: N executions ...` line per target (docs/RELIABILITY.md).

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use branchd::printing::drivers::Timeouts;
use branchd::printing::drivers::network::Network;
use common::{SECRET, TestServer, order_body};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Panic capture: every panic of the process is recorded (message and place), so a panic in
// a server task or the writer thread is seen even though it does not unwind into the test.
// The process is shared with the other test modules: a panic on another module's own test
// thread (libtest names it after the test, `module::name`) is that test's failure, reported
// there, and not recorded; panics on every other thread (server tasks and threads of any
// test, fuzz's own tests) are.

fn panics() -> &'static Mutex<Vec<String>> {
    static P: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    P.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let other_test = thread.name().is_some_and(|n| n.contains("::") && !n.starts_with("fuzz::"));
            if !other_test && let Ok(mut p) = panics().lock() {
                p.push(format!("{info}"));
            }
            default(info);
        }));
        Mutex::new(Vec::new())
    })
}

fn panic_count() -> usize {
    panics().lock().map(|p| p.len()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// The mutation engine.

const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e400",
    "1.5",
    "-0",
    "0.0000001",
    "1000000000000",
    "100000",
];

const WEIRD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\n",
    "\r\n",
    "\u{1b}[31m",
    "\u{202e}",
    "\u{2028}",
    "\u{feff}",
    "é",
    "東京",
    "مرحبا",
    "🍕🍕",
    "\u{10ffff}",
    "\\",
    "\"",
    "%00",
    "../../etc/passwd",
    "br-1",
    "br-3",
    "co-2",
    "null",
    "true",
    "9100",
    "receipt",
    "kitchen",
    "raw",
    "network",
    "virtual",
    "desktop",
    "serial",
    "usb",
    "pending",
    "confirmed",
    "completed",
    "cancelled",
    "delivery",
    "product",
    "modifier",
    "newOrder",
    "orderStatusUpdate",
    "availabilityUpdate",
    "printerUpdate",
];

const TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"", b"null", b"true", b"false", b"-", b"e9", b"\\u0000", b"\\ud800", b"\xff", b"\xc3", b"\x00",
];

struct Mutator {
    rng: StdRng,
}

impl Mutator {
    fn bytes(&mut self, corpus: &[Vec<u8>]) -> Vec<u8> {
        let mut data = corpus[self.rng.gen_range(0..corpus.len())].clone();
        let rounds = self.rng.gen_range(1..=4);
        for _ in 0..rounds {
            data = match self.rng.gen_range(0..10) {
                0..=4 => match serde_json::from_slice::<Value>(&data) {
                    Ok(v) => self.json(v, corpus),
                    Err(_) => self.raw(data, corpus),
                },
                _ => self.raw(data, corpus),
            };
            if data.len() > 64 * 1024 {
                break; // big enough: more rounds would only make it slower to build
            }
        }
        data.truncate(256 * 1024);
        data
    }

    fn raw(&mut self, mut d: Vec<u8>, corpus: &[Vec<u8>]) -> Vec<u8> {
        let len = d.len();
        match self.rng.gen_range(0..7) {
            0 if len > 0 => {
                let i = self.rng.gen_range(0..len);
                d[i] ^= 1 << self.rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = self.rng.gen_range(0..len);
                d[i] = self.rng.r#gen();
            }
            2 => {
                let i = self.rng.gen_range(0..=len);
                let n = self.rng.gen_range(1..8);
                let ins: Vec<u8> = (0..n).map(|_| self.rng.r#gen()).collect();
                d.splice(i..i, ins);
            }
            3 if len > 0 => {
                let i = self.rng.gen_range(0..len);
                let n = self.rng.gen_range(1..=(len - i).min(16));
                d.drain(i..i + n);
            }
            4 => {
                let other = &corpus[self.rng.gen_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = self.rng.gen_range(0..=len);
                    let b = self.rng.gen_range(0..other.len());
                    let c = self.rng.gen_range(b..=other.len());
                    d.truncate(a);
                    d.extend_from_slice(&other[b..c]);
                }
            }
            5 => {
                let i = self.rng.gen_range(0..=len);
                let t = TOKENS[self.rng.gen_range(0..TOKENS.len())];
                d.splice(i..i, t.iter().copied());
            }
            _ if len > 1 => {
                // Repeat a chunk (long inputs, deep brackets).
                let i = self.rng.gen_range(0..len);
                let n = self.rng.gen_range(1..=(len - i).min(8));
                let chunk = d[i..i + n].to_vec();
                let times = self.rng.gen_range(2..300);
                let rep: Vec<u8> = chunk.iter().copied().cycle().take(n * times).collect();
                d.splice(i..i, rep);
            }
            _ => d.push(self.rng.r#gen()),
        }
        d
    }

    fn json(&mut self, mut v: Value, corpus: &[Vec<u8>]) -> Vec<u8> {
        let choice = self.rng.gen_range(0..12);
        if choice == 0 {
            // Duplicate keys: only expressible in the text.
            let text = v.to_string();
            if let (Value::Object(m), Some(pos)) = (&v, text.find('{'))
                && let Some((k, _)) = m.iter().nth(self.rng.gen_range(0..m.len().max(1)))
            {
                let dup = format!("{}:{},", Value::String(k.clone()), self.leaf());
                let mut out = text.clone();
                out.insert_str(pos + 1, &dup);
                return out.into_bytes();
            }
            return text.into_bytes();
        }
        if choice == 1 {
            // A raw number serde_json would not produce (out of range, many digits).
            let text = v.to_string();
            let n = INTERESTING_NUMBERS[self.rng.gen_range(0..INTERESTING_NUMBERS.len())];
            let digits: Vec<usize> = text.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
            if let Some(&i) = digits.get(self.rng.gen_range(0..digits.len().max(1))) {
                let mut out = text.clone();
                out.insert_str(i, n);
                return out.into_bytes();
            }
            return text.into_bytes();
        }
        let donor = corpus.get(self.rng.gen_range(0..corpus.len())).and_then(|c| serde_json::from_slice::<Value>(c).ok());
        let count = count_nodes(&v);
        let target = self.rng.gen_range(0..count);
        let mut i = 0;
        let replacement = self.node(choice, donor);
        visit_mut(&mut v, &mut i, target, &mut |node, rng_pick| self_mutate(node, &replacement, rng_pick), self.rng.r#gen());
        v.to_string().into_bytes()
    }

    fn leaf(&mut self) -> Value {
        match self.rng.gen_range(0..6) {
            0 => Value::Null,
            1 => Value::Bool(self.rng.r#gen()),
            2 => serde_json::from_str(INTERESTING_NUMBERS[self.rng.gen_range(0..INTERESTING_NUMBERS.len())]).unwrap_or(Value::Null),
            3 => json!([]),
            4 => json!({}),
            _ => Value::String(WEIRD_STRINGS[self.rng.gen_range(0..WEIRD_STRINGS.len())].into()),
        }
    }

    /// What replaces (or joins) the chosen node.
    fn node(&mut self, choice: u32, donor: Option<Value>) -> Replacement {
        match choice {
            2 | 3 => Replacement::Value(self.leaf()),
            4 => {
                let depth = self.rng.gen_range(10..200);
                let mut v = self.leaf();
                for _ in 0..depth {
                    v = if self.rng.r#gen() { json!([v]) } else { json!({ "a": v }) };
                }
                Replacement::Value(v)
            }
            5 => {
                let unit = WEIRD_STRINGS[self.rng.gen_range(0..WEIRD_STRINGS.len())];
                let unit = if unit.is_empty() { "x" } else { unit };
                Replacement::Value(Value::String(unit.repeat(self.rng.gen_range(100..3_000))))
            }
            6 => Replacement::RemoveKey,
            7 => Replacement::AddKey(WEIRD_STRINGS[self.rng.gen_range(0..WEIRD_STRINGS.len())].to_string(), self.leaf()),
            8 => Replacement::Duplicate(self.rng.gen_range(2..120)),
            9 => Replacement::Value(donor.unwrap_or(Value::Null)),
            10 => Replacement::Value(Value::String(
                (0..self.rng.gen_range(1..40)).map(|_| char::from_u32(self.rng.gen_range(0..0x3000)).unwrap_or('\u{fffd}')).collect(),
            )),
            _ => Replacement::Value(
                serde_json::from_str(INTERESTING_NUMBERS[self.rng.gen_range(0..INTERESTING_NUMBERS.len())]).unwrap_or(Value::Null),
            ),
        }
    }
}

enum Replacement {
    Value(Value),
    RemoveKey,
    AddKey(String, Value),
    Duplicate(usize),
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn visit_mut(v: &mut Value, i: &mut usize, target: usize, f: &mut dyn FnMut(&mut Value, u64), pick: u64) -> bool {
    if *i == target {
        f(v, pick);
        return true;
    }
    *i += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| visit_mut(x, i, target, f, pick)),
        Value::Object(m) => m.values_mut().any(|x| visit_mut(x, i, target, f, pick)),
        _ => false,
    }
}

fn self_mutate(node: &mut Value, r: &Replacement, pick: u64) {
    match r {
        Replacement::Value(v) => *node = v.clone(),
        Replacement::RemoveKey => match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(pick as usize % m.len()).cloned().unwrap_or_default();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(pick as usize % a.len());
            }
            _ => *node = Value::Null,
        },
        Replacement::AddKey(k, v) => match node {
            Value::Object(m) => {
                m.insert(k.clone(), v.clone());
            }
            Value::Array(a) => a.push(v.clone()),
            _ => *node = json!({ k.clone(): v.clone() }),
        },
        Replacement::Duplicate(n) => match node {
            Value::Array(a) if !a.is_empty() => {
                let x = a[pick as usize % a.len()].clone();
                a.extend(std::iter::repeat_n(x, *n));
            }
            other => *other = Value::Array(std::iter::repeat_n(other.clone(), *n).collect()),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Running a target.

fn seconds() -> Duration {
    let s = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("tests/fuzz-corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!out.is_empty(), "the corpus of {target} is empty");
    out
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::thread_rng().r#gen())
}

/// A failure message short enough to read (the input itself is in the saved file).
fn short(s: &str) -> String {
    if s.chars().count() > 600 { format!("{}…", s.chars().take(600).collect::<String>()) } else { s.to_string() }
}

fn save_crash(target: &str, input: &[u8], what: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let dir = root().join("target/fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{:016x}", h.finish()));
    let _ = std::fs::write(&path, input);
    let _ = std::fs::write(path.with_extension("txt"), what);
    path
}

struct Stats {
    target: &'static str,
    execs: u64,
    started: Instant,
    seed: u64,
}

impl Stats {
    fn report(&self) {
        let s = self.started.elapsed().as_secs_f64();
        println!(
            "fuzz {}: {} executions in {:.1} s ({:.0}/s), seed {}, 0 crashes",
            self.target,
            self.execs,
            s,
            self.execs as f64 / s,
            self.seed
        );
    }
}

/// Runs a synchronous target: the whole corpus first, then mutations until the time is up.
fn fuzz_sync(target: &'static str, f: impl Fn(&[u8])) {
    let base = corpus(target);
    let seed = seed();
    let mut m = Mutator { rng: StdRng::seed_from_u64(seed) };
    let before = panic_count();
    let deadline = Instant::now() + seconds();
    let mut st = Stats { target, execs: 0, started: Instant::now(), seed };
    let mut i = 0usize;
    loop {
        let input = if i < base.len() { base[i].clone() } else { m.bytes(&base) };
        i += 1;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)));
        st.execs += 1;
        if r.is_err() || panic_count() != before {
            let what = panics().lock().map(|p| p.join("\n")).unwrap_or_default();
            let path = save_crash(target, &input, &what);
            panic!("fuzz {target}: a panic on the input saved in {} (seed {seed}): {}", path.display(), short(&what));
        }
        if i >= base.len() && Instant::now() >= deadline {
            break;
        }
    }
    st.report();
}

/// Runs an async target against a server: the input's future runs in its own task (so a
/// panic in it is caught), and panics in the server's tasks are seen through the hook.
async fn fuzz_async<F, Fut>(target: &'static str, f: F)
where
    F: Fn(Vec<u8>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let base = corpus(target);
    let seed = seed();
    let mut m = Mutator { rng: StdRng::seed_from_u64(seed) };
    let before = panic_count();
    let deadline = Instant::now() + seconds();
    let mut st = Stats { target, execs: 0, started: Instant::now(), seed };
    let mut i = 0usize;
    loop {
        let input = if i < base.len() { base[i].clone() } else { m.bytes(&base) };
        i += 1;
        // Corpus inputs always take their natural route (bit 32: see `fuzz_rest_bodies`), so
        // regression inputs are replayed where they failed.
        let pick: u64 = if i <= base.len() { m.rng.r#gen::<u64>() | (1 << 32) } else { m.rng.r#gen() };
        let r = tokio::spawn(f(input.clone(), pick)).await;
        st.execs += 1;
        let failure = match r {
            Err(e) => Some(format!("the test's task failed: {e}")),
            Ok(Err(e)) => Some(e),
            Ok(Ok(())) => None,
        };
        let failure = failure.or_else(|| (panic_count() != before).then(|| panics().lock().map(|p| p.join("\n")).unwrap_or_default()));
        if let Some(what) = failure {
            let path = save_crash(target, &input, &what);
            panic!("fuzz {target}: failure on the input saved in {} (seed {seed}): {}", path.display(), short(&what));
        }
        if i >= base.len() && Instant::now() >= deadline {
            break;
        }
    }
    st.report();
}

/// The input as JSON, or (not JSON) as a JSON string of its text, as a server would see it
/// after its own JSON parsing.
fn as_json(input: &[u8]) -> Option<Value> {
    serde_json::from_slice(input).ok()
}

// ---------------------------------------------------------------------------------------
// Pure targets: the parsers as the handlers call them.

#[test]
fn fuzz_socketio_payloads() {
    // join/leave/catchUp/requestLiveOrders/printer:* payload validation (src/validate.rs).
    fuzz_sync("socketio_payload", |input| {
        let Some(v) = as_json(input) else { return };
        let _ = branchd::validate::branch_id_payload(&v);
        if let Some(m) = v.as_object() {
            let _ = branchd::validate::string(m, "printerId", 128);
            let _ = branchd::validate::opt_string(m, "message", 1000);
            let _ = branchd::validate::bool(m, "success");
            let _ = branchd::validate::opt_int(m, "since", 0, i64::MAX);
        }
        if let Some(s) = v.as_str() {
            let _ = branchd::validate::id(s, "id");
            let _ = branchd::validate::loggable(s);
        }
    });
}

#[test]
fn fuzz_order_bodies() {
    fuzz_sync("orders", |input| {
        let Some(v) = as_json(input) else { return };
        if branchd::orders::branch_of(&v).is_ok()
            && let Ok(o) = branchd::orders::parse_new(&v)
        {
            let _ = o.subtotal();
        }
        let _ = branchd::orders::parse_driver(&v);
        if let Some(s) = v.get("status").and_then(Value::as_str)
            && let Some(st) = branchd::orders::Status::parse(s)
        {
            let _ = st.next("delivery");
        }
    });
}

#[test]
fn fuzz_availability_bodies() {
    fuzz_sync("availability", |input| {
        let Some(v) = as_json(input) else { return };
        let _ = branchd::availability::parse_bulk(&v);
        let t = v.get("itemType").and_then(Value::as_str).unwrap_or("product");
        let id = v.get("itemId").and_then(Value::as_str).unwrap_or("x");
        if let Ok(c) = branchd::availability::parse_change(t, id, &v) {
            let prev = c.apply("br-1", None, "2026-01-01T00:00:00Z");
            let next = c.apply("br-1", Some(&prev), "2026-01-01T00:00:01Z");
            let _ = branchd::availability::crossing(Some(&prev), &next);
        }
    });
}

#[test]
fn fuzz_printer_bodies() {
    fuzz_sync("printers", |input| {
        let Some(v) = as_json(input) else { return };
        if let Ok(f) = branchd::domain::printer::parse_fields(&v)
            && let Some(c) = &f.connection
        {
            let _ = branchd::domain::printer::initial_status(c);
        }
        if let Some(c) = v.get("connection") {
            let _ = branchd::domain::printer::parse_connection(c);
        }
    });
}

#[test]
fn fuzz_config_toml() {
    fuzz_sync("config", |input| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        if let Ok(layer) = branchd::config::Layer::from_toml(text) {
            let _ = layer.resolve();
        }
    });
}

#[test]
fn fuzz_jwt_verify() {
    let keys = branchd::auth::jwt::Keys::new(SECRET.as_bytes());
    fuzz_sync("jwt", |input| {
        let token = String::from_utf8_lossy(input);
        let _ = keys.verify(&token);
        // Also as a token whose parts are the input, base64url-encoded and signed by us.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let _ = keys.verify(&format!("{}.{}.sig", b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#), b64.encode(input)));
        let _ = branchd::auth::jwt::parse_ttl(&token);
    });
}

#[test]
fn fuzz_escpos_status_bytes() {
    fuzz_sync("escpos_status", |input| {
        let b = |i: usize| input.get(i).copied().unwrap_or(0);
        let _ = branchd::printing::drivers::status::from_realtime(b(0), b(1), b(2));
        let _ = branchd::printing::drivers::status::from_paper_reply(b(0));
        let _ = branchd::printing::drivers::status::valid_rt(b(0));
        let _ = branchd::printing::drivers::status::from_asb([b(0), b(1), b(2), b(3)]);
        if let Some(len) = branchd::printing::drivers::status::star_frame_len(b(0)) {
            let _ = branchd::printing::drivers::status::from_star(&input[..len.min(input.len())]);
        }
        if let Ok(s) = std::str::from_utf8(input) {
            let _ = branchd::printing::discovery::hosts_of(s.trim());
        }
    });
}

#[test]
fn fuzz_printer_status_stream() {
    // A held connection's bytes through `status::Splitter`; the first byte picks the mode
    // (ASB off, ESC/POS ASB, Star Line, Star raster). The same target as fuzz/ (cargo-fuzz).
    use branchd::printing::drivers::status::{Asb, Piece, Splitter};
    fuzz_sync("printer_status_stream", |input| {
        let Some((&mode, stream)) = input.split_first() else { return };
        let asb = [None, Some(Asb::EscPos), Some(Asb::StarLine), Some(Asb::StarRaster)][usize::from(mode % 4)];
        let mut split = Splitter::new(asb);
        for &b in stream {
            match split.feed(b) {
                Some(Piece::Reply(r)) => assert!(asb.is_some() || r == b, "ASB off: every byte is an answer as it came"),
                Some(Piece::Pushed(_)) | None => assert!(asb.is_some(), "ASB off: a byte taken for a pushed frame"),
            }
        }
    });
}

#[test]
fn fuzz_sync_batch_parse() {
    let up = branchd::sync::hub::Uplink { branch_id: "br-1".into(), company_id: "co-1".into() };
    fuzz_sync("sync_batch", |input| {
        let Some(v) = as_json(input) else { return };
        let _ = branchd::sync::hub::parse_push(&v, &up);
    });
}

// ---------------------------------------------------------------------------------------
// Targets that need the server: I/O replies, the store-backed sync appliers, REST bodies
// and Socket.IO over the wire.

/// A fake printer that answers every connection with the current fuzz input, then closes.
async fn fake_printer() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = Arc::new(Mutex::new(Vec::new()));
    let r = reply.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let bytes = r.lock().map(|b| b.clone()).unwrap_or_default();
            tokio::spawn(async move {
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    (port, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_printer_and_discovery_replies() {
    let (port, reply) = fake_printer().await;
    let ms = Duration::from_millis(50);
    let net = Arc::new(Network::one_shot(
        "127.0.0.1",
        port,
        Timeouts { connect: ms, write: ms, read: ms, confirm: ms, poll: Duration::from_secs(5), ..Timeouts::default() },
    ));
    fuzz_async("printer_replies", move |input, _| {
        let (net, reply) = (net.clone(), reply.clone());
        async move {
            *reply.lock().map_err(|e| e.to_string())? = input;
            let _ = net.status().await;
            let _ = net.print(b"\x1b@hello\n", true).await;
            let _ = branchd::printing::discovery::scan(&["127.0.0.1".parse().unwrap()], port).await;
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_sync_appliers() {
    // Events as the hub applies a branch's batch (`from_branch`) and as a branch applies the
    // hub's feed (`from_hub`), each in its own savepoint as the server runs them, 32 inputs
    // per write.
    let s = TestServer::start().await;
    let (st, order) = s.post("/api/orders", &s.token("cashier", Some("co-1"), Some("br-1")), order_body("br-1")).await;
    assert_eq!(st, 201);
    let order_id = order["id"].as_str().unwrap().to_string();
    let names = [
        "newOrder",
        "orderStatusUpdate",
        "orderCancelled",
        "driverUpdate",
        "availabilityUpdate",
        "bulkAvailabilityUpdate",
        "printer:added",
        "printerUpdate",
        "printerRemoved",
        "printerStatusUpdate",
        "printAlert",
        "printAlertAck",
        "orderPrintingUpdate",
        "userUpdate",
        "licenseRevoked",
        "branchUpdate",
        "nope",
    ];
    let state = s.state.clone();
    fuzz_async("sync_events", move |input, pick| {
        let state = state.clone();
        let order_id = order_id.clone();
        async move {
            let Some(mut data) = as_json(&input) else { return Ok(()) };
            if let Some(m) = data.as_object_mut()
                && m.get("orderId").and_then(Value::as_str) == Some("$ORDER")
            {
                m.insert("orderId".into(), Value::String(order_id));
            }
            let name = names[pick as usize % names.len()].to_string();
            let out = state
                .db()
                .write(move |tx| {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let a = branchd::sync::apply::isolated(tx, |tx| {
                            branchd::sync::apply::from_branch(tx, "co-1", "br-1", "/orders", &name, &data)
                        });
                        let b = branchd::sync::apply::isolated(tx, |tx| {
                            branchd::sync::apply::from_hub(tx, "co-1", "br-1", "2026-12-04", &name, &data)
                        });
                        (a.is_ok(), b.is_ok())
                    }));
                    Ok::<_, branchd::store::StoreError>(r.is_ok())
                })
                .await;
            match out {
                Ok(true) => Ok(()),
                Ok(false) => Err("an applier panicked".into()),
                Err(e) => Err(format!("the write failed: {e}")),
            }
        }
    })
    .await;
}

/// Percent-encodes everything but unreserved characters.
fn pct(input: &[u8]) -> String {
    input
        .iter()
        .map(|&b| if b.is_ascii_alphanumeric() || b"-_.~=&".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn check_answer(route: &str, status: u16, body: &str) -> Result<(), String> {
    if status >= 500 && status != 507 && status != 503 {
        return Err(format!("{route}: {status} {body}"));
    }
    if status >= 400 {
        let v: Value = serde_json::from_str(body).map_err(|_| format!("{route}: {status} with a body that is not JSON: {body}"))?;
        if !v["error"]["code"].is_string() || !v["error"]["message"].is_string() {
            return Err(format!("{route}: {status} without SPEC's error shape: {body}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_rest_bodies() {
    let s = TestServer::start().await;
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let (st, order) = s.post("/api/orders", &manager, order_body("br-1")).await;
    assert_eq!(st, 201);
    let order_id = order["id"].as_str().unwrap().to_string();
    let (st, printer) = s
        .post("/api/printers", &manager, json!({"name": "V", "branchId": "br-1", "role": "label", "connection": {"type": "virtual"}}))
        .await;
    assert_eq!(st, 201, "{printer}");
    let printer_id = printer["id"].as_str().unwrap().to_string();
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, "/api/orders".into()),
        (reqwest::Method::PATCH, format!("/api/orders/{order_id}/status")),
        (reqwest::Method::POST, format!("/api/orders/{order_id}/cancel")),
        (reqwest::Method::PUT, format!("/api/orders/{order_id}/driver")),
        (reqwest::Method::PUT, "/api/availability/br-1/product/p-1".into()),
        (reqwest::Method::POST, "/api/availability/br-1/bulk".into()),
        (reqwest::Method::POST, "/api/printers".into()),
        (reqwest::Method::PATCH, format!("/api/printers/{printer_id}")),
        (reqwest::Method::POST, "/api/print-jobs".into()),
    ];
    let lists = ["/api/orders?", "/api/printers?", "/api/print-jobs?", "/api/availability/br-1?", "/sync/v1/feed?"];
    let http = reqwest::Client::new();
    let base = s.base.clone();
    let printer_id2 = printer_id.clone();
    fuzz_async("rest", move |input, pick| {
        let (http, base, manager) = (http.clone(), base.clone(), manager.clone());
        let routes = routes.clone();
        let printer_id = printer_id2.clone();
        async move {
            // The corpus' "$PRINTER" stands for the fixture printer (print-job bodies).
            let input = String::from_utf8_lossy(&input).replace("$PRINTER", &printer_id).into_bytes();
            // Mostly the route the body looks made for (so mutations go deep), sometimes any.
            let natural = as_json(&input).and_then(|v| {
                let has = |k: &str| v.get(k).is_some();
                let i = if has("items") && has("type") {
                    0
                } else if has("status") {
                    1
                } else if has("reason") {
                    2
                } else if has("driverId") {
                    3
                } else if has("available") {
                    4
                } else if has("items") {
                    5
                } else if has("connection") {
                    6 + (pick as usize >> 24) % 2
                } else if has("printerId") {
                    8
                } else {
                    return None;
                };
                Some(i)
            });
            let i = match natural {
                Some(i) if (pick >> 32) % 4 != 0 => i,
                _ => pick as usize % routes.len(),
            };
            let (method, path) = &routes[i];
            let res = http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(&manager)
                .header("content-type", "application/json")
                .body(input.clone())
                .send()
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let status = res.status().as_u16();
            check_answer(path, status, &res.text().await.unwrap_or_default())?;
            // The same bytes as a query string of a list endpoint.
            let list = lists[(pick >> 8) as usize % lists.len()];
            let q = String::from_utf8_lossy(&input).chars().filter(|c| !c.is_whitespace()).collect::<String>();
            let q = pct(&q.as_bytes()[..q.len().min(2048)]);
            let res = http.get(format!("{base}{list}{q}")).bearer_auth(&manager).send().await.map_err(|e| format!("{list}: {e}"))?;
            let status = res.status().as_u16();
            check_answer(list, status, &res.text().await.unwrap_or_default())
        }
    })
    .await;
    // The server still answers.
    let (st, _) = s.get("/api/orders?branchId=br-1", &s.token("cashier", Some("co-1"), Some("br-1"))).await;
    assert_eq!(st, 200);
}

/// One raw Engine.IO long-polling session (see tests/it/slow_client.rs).
struct Polling {
    http: reqwest::Client,
    url: String,
}

impl Polling {
    async fn open(base: &str) -> Result<Polling, String> {
        let http = reqwest::Client::new();
        let open = http
            .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let hs: Value = serde_json::from_str(open.strip_prefix('0').ok_or("no open packet")?).map_err(|e| e.to_string())?;
        let sid = hs["sid"].as_str().ok_or("no sid")?;
        Ok(Polling { http, url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}") })
    }

    async fn send(&self, packet: &str) -> Result<u16, String> {
        Ok(self.http.post(&self.url).body(packet.to_string()).send().await.map_err(|e| e.to_string())?.status().as_u16())
    }

    async fn poll(&self) -> Result<Vec<String>, String> {
        let res = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if res.status() != 200 {
            return Err(format!("poll: {}", res.status()));
        }
        let text = res.text().await.map_err(|e| e.to_string())?;
        let packets: Vec<String> = text.split('\u{1e}').map(str::to_string).collect();
        if packets.iter().any(|p| p == "2") {
            self.send("3").await?;
        }
        Ok(packets)
    }

    /// Connects to `ns` with `auth`: the first CONNECT (`40`) or CONNECT_ERROR (`44`) packet.
    async fn connect(&self, ns: &str, auth: &str) -> Result<String, String> {
        self.send(&format!("40{ns},{auth}")).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for p in self.poll().await? {
                if p.starts_with(&format!("40{ns},")) || p.starts_with(&format!("44{ns},")) {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no answer to CONNECT on {ns}"));
            }
        }
    }

    /// Polls until a packet starting with `prefix` arrives.
    async fn wait_for(&self, prefix: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for p in self.poll().await? {
                if p.starts_with(prefix) {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("nothing starting with {prefix}"));
            }
        }
    }
}

fn p_base(p: &Polling) -> String {
    p.url.split("/socket.io/").next().unwrap_or_default().to_string()
}

const CODES: [&str; 6] = ["AUTH_REQUIRED", "TOKEN_INVALID", "TOKEN_EXPIRED", "LICENSE_INVALID", "FORBIDDEN", "INTERNAL_ERROR"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_socketio_handshake() {
    // The handshake `auth` object: JWT web clients and desktop license keys, as the connect
    // middleware reads them. Every CONNECT is answered with CONNECT or CONNECT_ERROR whose
    // message is one of SPEC's codes.
    let s = TestServer::start().await;
    let base = s.base.clone();
    let (owner, license) = (s.token("company_owner", Some("co-1"), None), s.fixtures.license_br1.clone());
    let nss = ["/orders", "/availability", "/printing-ws"];
    fuzz_async("socketio_handshake", move |input, pick| {
        let base = base.clone();
        let text = String::from_utf8_lossy(&input).replace("$TOKEN", &owner).replace("$LICENSE", &license);
        async move {
            let auth = match serde_json::from_str::<Value>(&text) {
                Ok(v) => v.to_string(),
                Err(_) => Value::String(text).to_string(),
            };
            let ns = nss[pick as usize % nss.len()];
            let p = Polling::open(&base).await?;
            let answer = p.connect(ns, &auth).await?;
            if let Some(err) = answer.strip_prefix(&format!("44{ns},")) {
                let v: Value = serde_json::from_str(err).map_err(|e| format!("{err}: {e}"))?;
                let msg = v["message"].as_str().unwrap_or_default();
                if !CODES.contains(&msg) {
                    return Err(format!("CONNECT_ERROR message {msg:?} is not one of SPEC's codes"));
                }
            }
            let _ = p.http.delete(&p.url).send().await;
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_socketio_events() {
    // Every client→server event of every namespace with fuzzed payloads, sent as a manager
    // (all handlers' parsing reachable) and, on /printing-ws, as a desktop app; each one with
    // an ack id must be answered, and the session must stay usable. Raw packets too.
    let s = TestServer::start_with(|c| c.print_timeout = Duration::from_millis(300)).await;
    let manager = s.token("branch_manager", Some("co-1"), Some("br-1"));
    let web = json!({"token": manager}).to_string();
    let desktop = json!({"userRole": "desktop_app", "deviceId": "dev-fuzz", "branchId": "br-1", "companyId": "co-1",
        "licenseKey": s.fixtures.license_br1, "appVersion": "1.0", "instanceId": "i"})
    .to_string();
    let mut sessions: BTreeMap<&str, Arc<Polling>> = BTreeMap::new();
    for (key, ns, auth) in [
        ("orders", "/orders", &web),
        ("availability", "/availability", &web),
        ("printing", "/printing-ws", &web),
        ("desktop", "/printing-ws", &desktop),
    ] {
        let p = Polling::open(&s.base).await.unwrap();
        let answer = p.connect(ns, auth).await.unwrap();
        assert!(answer.starts_with(&format!("40{ns},")), "{key}: {answer}");
        sessions.insert(key, Arc::new(p));
    }
    let sessions: Vec<(&'static str, &'static str, Arc<Polling>)> = sessions
        .into_iter()
        .map(|(k, p)| {
            (
                k,
                if k == "orders" {
                    "/orders"
                } else if k == "availability" {
                    "/availability"
                } else {
                    "/printing-ws"
                },
                p,
            )
        })
        .collect();
    let events: [&[&str]; 3] = [
        &["joinBranch", "join:branch", "leaveBranch", "leave:branch", "catchUp", "requestLiveOrders", "bogus"],
        &["joinBranch", "leaveBranch", "catchUp", "ping", "bogus"],
        &["joinBranch", "leaveBranch", "catchUp", "printer:test", "printer:test:result", "printer:discovered", "desktop:status"],
    ];
    let ack = Arc::new(std::sync::atomic::AtomicU64::new(1));
    fuzz_async("socketio_event", move |input, pick| {
        let (key, ns, p) = sessions[pick as usize % sessions.len()].clone();
        let list = match key {
            "orders" => events[0],
            "availability" => events[1],
            _ => events[2],
        };
        let event = list[(pick >> 8) as usize % list.len()];
        let id = ack.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let raw = (pick >> 16) % 8 == 0;
            let packet = if raw {
                // A whole packet of the input: whatever it is, the session must survive or be
                // closed cleanly; the server must not panic.
                String::from_utf8_lossy(&input).into_owned()
            } else {
                let data = as_json(&input).unwrap_or_else(|| Value::String(String::from_utf8_lossy(&input).into_owned()));
                format!("42{ns},{id}{}", json!([event, data]))
            };
            if raw {
                // On a session of its own: the server may close it.
                let fresh = Polling::open(&p_base(&p)).await?;
                let _ = fresh.send(&packet).await?;
                let _ = fresh.http.delete(&fresh.url).send().await;
                return Ok(());
            }
            let sent = p.send(&packet).await?;
            if sent != 200 {
                return Err(format!("{key} {event}: POST answered {sent}"));
            }
            let want = format!("43{ns},{id}[");
            let answer = p.wait_for(&want).await.map_err(|e| format!("{key} {event}: {e}"))?;
            let v: Value = serde_json::from_str(&answer[want.len() - 1..]).map_err(|e| format!("{answer}: {e}"))?;
            if !v[0]["success"].is_boolean() {
                return Err(format!("{key} {event}: ack without success: {answer}"));
            }
            Ok(())
        }
    })
    .await;
}

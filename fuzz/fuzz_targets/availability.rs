//! Availability bodies: `availability::parse_change` and `parse_bulk`, then `apply` and
//! `crossing` on what was accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
    let _ = branchd::availability::parse_bulk(&v);
    let t = v.get("itemType").and_then(Value::as_str).unwrap_or("product");
    let id = v.get("itemId").and_then(Value::as_str).unwrap_or("x");
    if let Ok(c) = branchd::availability::parse_change(t, id, &v) {
        let prev = c.apply("br-1", None, "2026-01-01T00:00:00Z");
        let next = c.apply("br-1", Some(&prev), "2026-01-01T00:00:01Z");
        let _ = branchd::availability::crossing(Some(&prev), &next);
    }
});

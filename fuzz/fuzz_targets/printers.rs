//! Printer bodies: `printing::model::parse_fields` and `parse_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
    if let Ok(f) = branchd::printing::model::parse_fields(&v)
        && let Some(c) = &f.connection
    {
        let _ = branchd::printing::model::initial_status(c);
    }
    if let Some(c) = v.get("connection") {
        let _ = branchd::printing::model::parse_connection(c);
    }
});

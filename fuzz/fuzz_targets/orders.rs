//! Order bodies (REST and Socket.IO): `orders::branch_of`, `parse_new` (and the subtotal of
//! an accepted order), `parse_driver`, `Status::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
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
        let _ = st.next("pickup");
    }
});

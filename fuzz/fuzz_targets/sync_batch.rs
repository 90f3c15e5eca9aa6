//! A branch's push body as the hub checks it: `sync::hub::parse_push`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
    let up = branchd::sync::hub::Uplink { branch_id: "br-1".into(), company_id: "co-1".into() };
    let _ = branchd::sync::hub::parse_push(&v, &up);
});

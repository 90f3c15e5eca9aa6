//! Socket.IO payload validation (`src/validate.rs`), as the namespace handlers call it for
//! join/leave/catchUp/requestLiveOrders/printer:* payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
    let _ = branchd::validate::branch_id_payload(&v);
    if let Some(m) = v.as_object() {
        let _ = branchd::validate::string(m, "printerId", 128);
        let _ = branchd::validate::opt_string(m, "message", 1000);
        let _ = branchd::validate::bool(m, "success");
        let _ = branchd::validate::opt_int(m, "since", 0, i64::MAX);
    }
    if let Some(s) = v.as_str() {
        let _ = branchd::validate::id(s, "id");
        let logged = branchd::validate::loggable(s);
        assert!(!logged.chars().any(char::is_control), "a logged string keeps a control character: {logged:?}");
    }
});

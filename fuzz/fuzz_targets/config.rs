//! A config file's text: `config::Layer::from_toml`, then `resolve`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    if let Ok(layer) = branchd::config::Layer::from_toml(text) {
        let _ = layer.resolve();
    }
});

//! One-shot printer replies and discovery input: DLE EOT (`status::from_realtime`,
//! `valid_rt`), GS r (`from_paper_reply`), an ESC/POS ASB frame (`from_asb`), a Star ASB
//! frame (`star_frame_len`, `from_star`), and a discovery range (`discovery::hosts_of`).
#![no_main]

use branchd::printing::drivers::status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let b = |i: usize| input.get(i).copied().unwrap_or(0);
    let _ = status::from_realtime(b(0), b(1), b(2));
    let _ = status::from_paper_reply(b(0));
    let _ = status::valid_rt(b(0));
    let _ = status::from_asb([b(0), b(1), b(2), b(3)]);
    if let Some(len) = status::star_frame_len(b(0)) {
        assert!((6..=15).contains(&len), "a Star frame of {len} bytes");
        let _ = status::from_star(&input[..len.min(input.len())]);
    }
    if let Ok(s) = std::str::from_utf8(input)
        && let Some(hosts) = branchd::printing::discovery::hosts_of(s.trim())
    {
        assert!(hosts.len() <= 256, "a /24 at most: {} hosts", hosts.len());
    }
});

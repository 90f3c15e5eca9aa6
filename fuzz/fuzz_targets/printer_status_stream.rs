//! What a printer sends on a held connection, byte by byte through `status::Splitter`: the
//! first byte picks the mode (ASB off, ESC/POS ASB, Star Line, Star raster), the rest is the
//! stream.
#![no_main]

use branchd::printing::drivers::status::{Asb, Piece, Splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, stream)) = input.split_first() else { return };
    let asb = match mode % 4 {
        0 => None,
        1 => Some(Asb::EscPos),
        2 => Some(Asb::StarLine),
        _ => Some(Asb::StarRaster),
    };
    let mut split = Splitter::new(asb);
    let mut pieces = 0usize;
    for &b in stream {
        match split.feed(b) {
            // With ASB off every byte is an answer, as it came.
            Some(Piece::Reply(r)) => {
                assert!(asb.is_some() || r == b);
                pieces += 1;
            }
            Some(Piece::Pushed(_)) => {
                assert!(asb.is_some(), "a pushed frame on a connection without ASB");
                pieces += 1;
            }
            None => assert!(asb.is_some(), "a byte held back on a connection without ASB"),
        }
    }
    assert!(pieces <= stream.len());
});

//! Job structure: init, cut, drawer, QR, Star command sets, paper widths, banners,
//! station tickets, golden preview, hostile input, profiles, raw and test pages.

use serde_json::json;

use super::super::tickets;
use super::*;

#[test]
fn every_job_starts_with_init() {
    for p in PROFILES {
        for w in [58, 80] {
            assert_eq!(&receipt(&sample(), &SHOP, w, &p, None, NOW).bytes[..2], &[0x1B, 0x40], "{p:?} {w}");
            assert_eq!(&kitchen_ticket(&sample(), None, &sample().items, w, &p, None, NOW).bytes[..2], &[0x1B, 0x40]);
            assert_eq!(&test_page("Bar", w, &p, "c-1", NOW).bytes[..2], &[0x1B, 0x40]);
        }
    }
}

#[test]
fn epson_receipt_cuts_then_kicks_the_drawer_with_five_bytes() {
    let b = receipt(&sample(), &SHOP, 80, &Profile::EpsonTm, None, NOW).bytes;
    let cut = find(&b, &[0x1D, 0x56, 66, 3]).expect("GS V 66 3");
    let kick = find(&b, &[0x1B, 0x70, 0x00, 0x19, 0xFA]).expect("ESC p 0 25 250");
    assert!(cut < kick);
    assert_eq!(count(&b, &[0x1B, 0x70]), 1, "exactly one drawer command");
    assert_eq!(kick + 5, b.len(), "the kick is the last command");
    // Generic clones get a feed and a function-A full cut.
    let g = receipt(&sample(), &SHOP, 80, &Profile::GenericEscPos, None, NOW).bytes;
    assert!(find(&g, &[0x1B, b'd', 4, 0x1D, 0x56, 0]).is_some());
    // Kitchen tickets cut but never open the drawer.
    let k = kitchen_ticket(&sample(), None, &sample().items, 80, &Profile::EpsonTm, None, NOW).bytes;
    assert!(find(&k, &[0x1D, 0x56, 66, 3]).is_some());
    assert!(find(&k, &[0x1B, 0x70]).is_none());
    // A reprint or possible duplicate of a receipt never opens the drawer again.
    for banner in ["REPRINT", "POSSIBLE DUPLICATE"] {
        let again = receipt(&sample(), &SHOP, 80, &Profile::EpsonTm, Some(banner), NOW).bytes;
        assert!(find(&again, &[0x1D, 0x56, 66, 3]).is_some() && find(&again, &[0x1B, 0x70]).is_none(), "{banner}");
    }
}

#[test]
fn receipts_are_headed_with_names_not_ids() {
    let r = receipt(&sample(), &SHOP, 80, &Profile::EpsonTm, None, NOW);
    let head: Vec<&str> = r.preview.lines().take(2).map(str::trim).collect();
    assert_eq!(head, ["Mezze House", "Marina"]);
    assert!(!r.preview.contains(&sample().company_id) && !r.preview.contains(&sample().branch_id));
}

#[test]
fn a_raw_job_sent_again_carries_its_banner_then_its_own_bytes() {
    let data = b"\x1b@LABEL 42\n\x1dV\x00";
    assert_eq!(raw_with_banner(data, None, 80, &Profile::EpsonTm).bytes, data, "a first copy is untouched");
    let again = raw_with_banner(data, Some("POSSIBLE DUPLICATE"), 80, &Profile::EpsonTm);
    assert!(again.bytes.ends_with(data) && again.bytes.len() > data.len());
    assert!(find(&again.bytes, b"POSSIBLE DUPLICATE").is_some());
    assert!(again.preview.contains("POSSIBLE DUPLICATE") && again.preview.contains("RAW"));
}

#[test]
fn qr_code_sequence_has_model_2_and_correct_lengths() {
    let o = sample();
    let b = receipt(&o, &SHOP, 58, &Profile::EpsonTm, None, NOW).bytes;
    let at = find(&b, &[0x1D, 0x28, 0x6B, 4, 0, 49, 65, 50, 0]).expect("select model 2");
    let rest = &b[at + 9..];
    assert_eq!(&rest[..8], &[0x1D, 0x28, 0x6B, 3, 0, 49, 67, 6], "module size 6");
    assert_eq!(&rest[8..16], &[0x1D, 0x28, 0x6B, 3, 0, 49, 69, 49], "error correction M");
    let id = o.id.as_bytes();
    let p = (id.len() + 3) as u16;
    assert_eq!(&rest[16..24], &[0x1D, 0x28, 0x6B, p as u8, (p >> 8) as u8, 49, 80, 48], "store, pL pH = k + 3");
    assert_eq!(&rest[24..24 + id.len()], id);
    assert_eq!(&rest[24 + id.len()..32 + id.len()], &[0x1D, 0x28, 0x6B, 3, 0, 49, 81, 48], "print");
    // Centred while printing, left alignment restored after.
    assert_eq!(&b[at - 3..at], &[0x1B, b'a', 1]);
    assert_eq!(&rest[32 + id.len()..35 + id.len()], &[0x1B, b'a', 0]);
}

#[test]
fn star_line_uses_star_commands_only() {
    let o = order(vec![item("Burger", 2, 1250, None, None), item("فلافل", 1, 500, None, None)]);
    let b = receipt(&o, &SHOP, 80, &Profile::StarLine, Some("REPRINT"), NOW).bytes;
    assert!(find(&b, &[0x1B, b'd', 3]).is_some(), "Star cut ESC d 3");
    let first = receipt(&o, &SHOP, 80, &Profile::StarLine, None, NOW).bytes;
    assert!(find(&first, &[0x1B, 0x07, 20, 20, 0x07]).is_some(), "Star drawer ESC BEL n1 n2 BEL");
    assert!(find(&b, &[0x1B, 0x1D, b'y', b'S', b'0', 2]).is_some(), "Star QR model 2");
    let band = find(&b, &[0x1B, 0x1D, b'S', 1]).expect("Star raster for Arabic");
    assert_eq!(&b[band + 4..band + 6], &[72, 0], "80 mm: 72 bytes a row");
    assert!((1..=240).contains(&b[band + 6]) && b[band + 7] == 0 && b[band + 8] == 0);
    assert!(find(&b, &[0x1B, b'4']).is_some() && find(&b, &[0x1B, b'i', 1, 1]).is_some(), "Star highlight + expansion");
    let cmds = commands(&b);
    for esc_pos in [&[0x1D, 0x56][..], &[0x1B, 0x70], &[0x1D, 0x28, 0x6B], &[0x1D, 0x76, 0x30], &[0x1D, b'!'], &[0x1D, b'B']] {
        assert!(find(&cmds, esc_pos).is_none(), "ESC/POS command {esc_pos:02x?} in a Star job");
    }
}

#[test]
fn star_raster_sends_everything_as_an_image() {
    let b = receipt(&sample(), &SHOP, 80, &Profile::StarRaster, None, NOW).bytes;
    assert!(b.starts_with(b"\x1b@\x1b*rR\x1b*rA\x1b*rP0\x00\x1b*rD1\x00\x1b*rE13\x00"));
    assert!(b.ends_with(b"\x1b\x0c\x04\x1b*rB"));
    assert!(find(&b, b"Burger").is_none(), "no text in a raster-only job");
    assert!(find(&b, &[0x1D, 0x76, 0x30]).is_none() && find(&b, &[0x1D, 0x56]).is_none());
    // Walk the rows: every row is `b nL nH` with at most 72 bytes, or an `ESC * r Y n NUL` skip.
    let mut i = b"\x1b@\x1b*rR\x1b*rA\x1b*rP0\x00\x1b*rD1\x00\x1b*rE13\x00".len();
    let end = b.len() - 7;
    let mut rows = 0;
    while i < end {
        if b[i] == b'b' {
            let n = usize::from(b[i + 1]) + 256 * usize::from(b[i + 2]);
            assert!((1..=72).contains(&n));
            i += 3 + n;
            rows += 1;
        } else {
            assert_eq!(&b[i..i + 4], b"\x1b*rY", "at {i}");
            i += b[i..].iter().position(|c| *c == 0).unwrap() + 1;
        }
    }
    assert_eq!(i, end);
    assert!(rows > 100);
    let k = kitchen_ticket(&sample(), None, &sample().items, 58, &Profile::StarRaster, None, NOW).bytes;
    assert!(find(&k, b"\x1b*rD0\x00").is_some(), "no drawer on kitchen tickets");
}

#[test]
fn column_widths_follow_the_paper() {
    let long = "Extra large double cheeseburger with caramelised onions and a side of everything";
    let o = order(vec![item(long, 1, 999, None, Some(long))]);
    for (w, cols) in [(58, 32), (80, 48)] {
        let r = receipt(&o, &SHOP, w, &Profile::EpsonTm, None, NOW);
        let rule = vec![b'-'; cols];
        assert!(find(&r.bytes, &[&rule[..], b"\n"].concat()).is_some());
        assert!(find(&r.bytes, &vec![b'-'; cols + 1]).is_none());
        for line in r.preview.lines() {
            assert!(line.chars().count() <= cols, "{w} mm: {line:?}");
        }
        // The long name wraps, its total stays on the first row at the right edge.
        let first = r.preview.lines().find(|l| l.starts_with("1 x Extra")).unwrap();
        assert_eq!(first.chars().count(), cols);
        assert!(first.ends_with(" 9.99"));
        assert!(r.preview.contains("everything"));
    }
}

#[test]
fn banner_is_printed_big_and_reversed_when_given() {
    for p in [Profile::EpsonTm, Profile::GenericEscPos] {
        let with = kitchen_ticket(&sample(), None, &sample().items, 80, &p, Some("POSSIBLE DUPLICATE"), NOW);
        let at = find(&with.bytes, b"POSSIBLE DUPLICATE").expect("banner text");
        let head = &with.bytes[..at];
        assert!(find(head, &[0x1D, b'!', 0x11]).is_some() && find(head, &[0x1D, b'B', 1]).is_some());
        assert!(with.preview.starts_with("           *** POSSIBLE DUPLICATE ***\n"), "{}", with.preview);
        let without = kitchen_ticket(&sample(), None, &sample().items, 80, &p, None, NOW);
        assert!(find(&without.bytes, b"DUPLICATE").is_none() && find(&without.bytes, &[0x1D, b'B', 1]).is_none());
    }
}

#[test]
fn station_ticket_lists_only_that_station() {
    let o = sample();
    let groups = station_groups(&o.items);
    assert_eq!(groups.iter().map(|g| g.0.as_deref()).collect::<Vec<_>>(), vec![Some("grill"), Some("cold")]);
    let (station, items) = &groups[0];
    let r = kitchen_ticket(&o, station.as_deref(), items, 58, &Profile::EpsonTm, None, NOW);
    assert!(find(&r.bytes, b"GRILL").is_some());
    assert!(find(&r.bytes, b"2 x Burger").is_some() && find(&r.bytes, b"3 x Fries").is_some());
    assert!(find(&r.bytes, b"Salad").is_none() && !r.preview.contains("Salad"));
    assert!(r.preview.contains("    > no onions"), "notes indented:\n{}", r.preview);
    assert!(r.preview.contains("#42") && r.preview.contains("TAKEAWAY") && r.preview.contains(NOW));
    assert!(r.preview.contains("Ring the bell"));
}

#[test]
fn golden_kitchen_ticket_preview_58mm() {
    let o = order(vec![item("Burger", 2, 1250, Some("grill"), Some("no onions\nwell done"))]);
    let r = kitchen_ticket(&o, Some("grill"), &o.items, 58, &Profile::GenericEscPos, None, NOW);
    let expected = [
        "             GRILL",
        "              #42",
        "            TAKEAWAY",
        "        2026-01-01 13:00",
        "         Order ord-7f3a",
        "================================",
        "2 x Burger",
        "    > no onions",
        "    > well done",
        "================================",
        "ORDER NOTES",
        "Ring the bell",
        "--------------------------------",
        "",
        "",
        "[cut]",
        "",
    ]
    .join("\n");
    assert_eq!(r.preview, expected);
}

#[test]
fn hostile_and_extreme_input_never_panics_nor_injects_commands() {
    let evil = "Soup\x1b@\x1bp\x00\x19\u{fa}\x1dV\x00\u{85}\u{9b}";
    let mut o = order(vec![
        item(evil, i64::MAX, i64::MAX, Some("grill\x1b"), Some("\x1bp\x00\x19\u{fa} note\r\n\ttab")),
        item(&"W".repeat(5000), -3, i64::MIN, None, Some(&"ملاحظة طويلة ".repeat(40))),
        item("", 0, 0, Some(""), Some("")),
        item("\u{202e}\u{200f}🍔 بيتزا 中文 עברית", 1, 1, None, None),
    ]);
    o.customer = Some(json!({"name": {"nested": true}, "phone": 5550100, "address": "\x1b@ شارع ١٢"}));
    o.notes = Some("\x00\x1b\x1d".into());
    for p in PROFILES {
        for w in [0, 58, 80, 255] {
            let r = receipt(&o, &SHOP, w, &p, Some("RE\x1bPRINT"), "\x1b@now");
            let k = kitchen_ticket(&o, Some("\x1b"), &o.items, w, &p, None, "");
            if p.prints_text() {
                let (rc, kc) = (commands(&r.bytes), commands(&k.bytes));
                assert_eq!(count(&rc, &[0x1B, 0x40]), 1, "{p:?}: one ESC @, the first");
                assert_eq!(count(&kc, &[0x1B, 0x40]), 1);
                // Control characters are gone; what is left prints as text (ú is 0xA3 in CP437).
                assert!(find(&rc, b"Soup@p\xA3V").is_some() && find(&kc, b"Soup@p\xA3V").is_some(), "{p:?}");
                assert_eq!(count(&rc, &[0x1B, 0x70]), 0, "{p:?}: no drawer kick smuggled in (and none on a reprint)");
                assert!(find(&rc, b"REPRINT").is_some() && find(&rc, b"RE\x1b").is_none());
                assert!(find(&kc, &[0x1B, 0x70]).is_none() && find(&kc, &[0x1D, 0x56, 0x00, 0x85]).is_none());
            }
            let empty = order(vec![]);
            assert!(!receipt(&empty, &SHOP, w, &p, None, NOW).bytes.is_empty());
            assert!(kitchen_ticket(&empty, None, &[], w, &p, Some(""), NOW).preview.contains("(no items)"));
        }
    }
}

#[test]
fn money_has_the_currencys_minor_digits() {
    assert_eq!(tickets::money(1250, 2), "12.50");
    assert_eq!(tickets::money(5, 2), "0.05");
    assert_eq!(tickets::money(-5, 2), "-0.05");
    assert_eq!(tickets::money(0, 2), "0.00");
    assert_eq!(tickets::money(1500, 0), "1500");
    assert_eq!(tickets::money(1500, 3), "1.500");
    assert_eq!(tickets::money(-1, 3), "-0.001");
    assert_eq!(
        tickets::money(i128::from(i64::MIN) * i128::from(i64::MAX), 2),
        format!("-{}.{}", 85070591730234615856620279821087277056u128 / 100, "56")
    );
}

#[test]
fn a_receipt_prints_amounts_in_the_branchs_currency() {
    let o = order(vec![item("Ramen", 2, 750, None, None)]);
    let yen = super::super::Shop { digits: 0, ..SHOP };
    let r = receipt(&o, &yen, 80, &Profile::EpsonTm, None, NOW);
    assert!(r.preview.contains("1500"), "{}", r.preview);
    assert!(r.preview.contains("@ 750"), "{}", r.preview);
    assert!(!r.preview.contains("15.00") && !r.preview.contains("7.50"), "no decimal point for JPY:\n{}", r.preview);
    let dinar = super::super::Shop { digits: 3, ..SHOP };
    let r = receipt(&o, &dinar, 80, &Profile::EpsonTm, None, NOW);
    assert!(r.preview.contains("1.500") && r.preview.contains("@ 0.750"), "{}", r.preview);
    let r = receipt(&o, &SHOP, 80, &Profile::EpsonTm, None, NOW);
    assert!(r.preview.contains("15.00") && r.preview.contains("@ 7.50"), "{}", r.preview);
}

#[test]
fn raw_is_passed_through_with_a_hex_preview() {
    let data: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    let r = raw(&data);
    assert_eq!(r.bytes, data);
    assert!(r.preview.starts_with("RAW 600 bytes\n00000000  00 01 02"));
    assert!(r.preview.contains("|.... !\"#$%&'()*+,-./|") || r.preview.contains(" !\"#$%&'()*+,-./|"));
    assert!(r.preview.ends_with("... 88 more bytes\n"));
    assert_eq!(raw(&[]).preview, "RAW 0 bytes\n");
}

#[test]
fn test_page_names_printer_profile_and_correlation_id() {
    let r = test_page("Kitchen 1", 80, &Profile::EpsonTm, "corr-123", NOW);
    for s in ["TEST PRINT", "Kitchen 1", "epson-tm", "80 mm, 48 cols, 576 dots", "corr-123", NOW] {
        assert!(r.preview.contains(s), "{s} in\n{}", r.preview);
    }
    assert!(find(&r.bytes, b"corr-123").is_some());
    assert!(!gs_v0_bands(&r.bytes).is_empty(), "the Arabic sample is rasterised");
}

#[test]
fn many_items_all_print_in_order() {
    let items: Vec<Item> = (1..=500).map(|i| item(&format!("Dish {i:03}"), i, 100, Some("line"), None)).collect();
    let o = order(items);
    let r = receipt(&o, &SHOP, 58, &Profile::EpsonTm, None, NOW);
    let mut last = 0;
    for i in 1..=500 {
        let at = r.preview.find(&format!("{i} x Dish {i:03}")).unwrap_or_else(|| panic!("item {i} missing"));
        assert!(at > last);
        last = at;
    }
    assert!(r.preview.contains(&format!("TOTAL{:>27}", tickets::money((1..=500i128).sum::<i128>() * 100, 2))));
    let k = kitchen_ticket(&o, Some("line"), &o.items, 80, &Profile::StarRaster, None, NOW);
    assert!(k.bytes.ends_with(b"\x1b\x0c\x04\x1b*rB"));
}

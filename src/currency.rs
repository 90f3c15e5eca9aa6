//! Currencies (SPEC §3: money is an integer in the currency's minor unit): the ISO 4217
//! codes this build knows, with their minor-unit digits, and formatting an amount in minor
//! units for paper. A branch's `currency` is one of these codes; anything else is refused.
//!
//! Owns the table and the formatting; knows no I/O.

/// The currency of a branch that never chose one (and of the demo branch): amounts print
/// with two decimals, as before currencies were modelled.
pub const DEFAULT: &str = "USD";

/// Active ISO 4217 codes and their minor-unit digits (ISO 4217 list one). Codes whose
/// minor unit is not 2 are: 0 — BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF
/// XOF XPF; 3 — BHD IQD JOD KWD LYD OMR TND; 4 — CLF UYW.
#[rustfmt::skip]
const TABLE: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2),
    ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2),
    ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2),
    ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2),
    ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2),
    ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2),
    ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2),
    ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0),
    ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLE", 2),
    ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2),
    ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2),
    ("UAH", 2), ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0), ("UYU", 2), ("UYW", 4), ("UZS", 2),
    ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2),
    ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// The minor-unit digits of a known code (exactly as ISO writes it: three capitals).
pub fn minor_digits(code: &str) -> Option<u8> {
    TABLE.binary_search_by(|(c, _)| (*c).cmp(code)).ok().map(|i| TABLE[i].1)
}

/// Every known code, in order (for the dashboard's picker).
pub fn codes() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(c, _)| *c)
}

/// Checks a client-given code: trimmed, upper-cased, and known. The error says why.
pub fn parse(code: &str) -> Result<&'static str, String> {
    let c = code.trim().to_ascii_uppercase();
    match TABLE.binary_search_by(|(k, _)| (*k).cmp(c.as_str())) {
        Ok(i) => Ok(TABLE[i].0),
        Err(_) => Err(format!("currency must be an ISO 4217 code such as USD, EUR, JPY or KWD; {:?} is not one", code.trim())),
    }
}

/// An amount in minor units as printed: `digits` decimals after a point, no grouping, a
/// leading `-` when negative. `1500` is `15.00` with 2 digits, `1500` with 0, `1.500` with 3.
pub fn format_minor(minor: i128, digits: u8) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u128.pow(u32::from(digits.min(18)));
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::from(digits.min(18)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique_so_lookups_find_every_code() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicates");
        for (c, d) in TABLE {
            assert_eq!(minor_digits(c), Some(*d), "{c}");
            assert!(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()), "{c}");
        }
    }

    #[test]
    fn minor_digits_follow_iso_4217() {
        for (code, digits) in [
            ("JPY", 0),
            ("KRW", 0),
            ("USD", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("SAR", 2),
            ("AED", 2),
            ("EGP", 2),
            ("KWD", 3),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            ("IQD", 3),
            ("LYD", 3),
            ("CLF", 4),
        ] {
            assert_eq!(minor_digits(code), Some(digits), "{code}");
        }
        assert_eq!(minor_digits(DEFAULT), Some(2));
    }

    #[test]
    fn parse_accepts_known_codes_in_any_case_and_refuses_the_rest() {
        assert_eq!(parse("jpy"), Ok("JPY"));
        assert_eq!(parse(" kwd "), Ok("KWD"));
        for bad in ["", "XXX", "US", "USDD", "€", "usd;", "ДОЛ"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts_print_with_the_currencys_digits() {
        assert_eq!(format_minor(1500, 0), "1500");
        assert_eq!(format_minor(1500, 2), "15.00");
        assert_eq!(format_minor(1500, 3), "1.500");
        assert_eq!(format_minor(1250, 2), "12.50");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(5, 3), "0.005");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(-1500, 0), "-1500");
        assert_eq!(format_minor(0, 0), "0");
        assert_eq!(format_minor(0, 3), "0.000");
        assert_eq!(format_minor(12345, 4), "1.2345");
        let huge = i128::from(i64::MIN) * i128::from(i64::MAX);
        assert_eq!(format_minor(huge, 0), huge.to_string());
        assert!(format_minor(huge, 3).ends_with(".056"));
    }
}

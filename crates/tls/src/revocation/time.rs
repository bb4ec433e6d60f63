//! OpenSSL prints ASN.1 times as "Nov 22 05:33:00 2026 GMT" (`ASN1_TIME_print`), and
//! that text is the only view the `openssl` crate gives of an OCSP GeneralizedTime. To
//! know how long a response may be cached we turn it back into unix seconds. Pure
//! arithmetic, no clock.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Longest text accepted (the printed form is about 24 bytes, more with fractions).
const MAX_TEXT_LEN: usize = 64;

/// Parses `Mmm [d]d hh:mm:ss[.fff] yyyy GMT` into unix seconds (fractions dropped).
pub(crate) fn parse_openssl_time(text: &str) -> Option<i64> {
    if text.len() > MAX_TEXT_LEN {
        return None;
    }
    let mut parts = text.split_ascii_whitespace();
    let month = parts.next()?;
    let day = parts.next()?;
    let clock = parts.next()?;
    let year = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day = number(day, 1, 2)?;
    let year = number(year, 4, 4)?;
    let clock = clock.split('.').next()?;
    let mut hms = clock.split(':');
    let h = number(hms.next()?, 2, 2)?;
    let m = number(hms.next()?, 2, 2)?;
    let s = number(hms.next()?, 2, 2)?;
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn number(text: &str, min_len: usize, max_len: usize) -> Option<i64> {
    if text.len() < min_len || text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based
/// algorithm; valid for every year this parser accepts, 0000..=9999).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;

    #[test]
    fn known_values() {
        assert_eq!(parse_openssl_time("Jan  1 00:00:00 1970 GMT"), Some(0));
        // 2000-02-29 12:00:00 UTC = 951825600.
        assert_eq!(
            parse_openssl_time("Feb 29 12:00:00 2000 GMT"),
            Some(951_825_600)
        );
        assert_eq!(
            parse_openssl_time("Feb 29 12:00:00.123 2000 GMT"),
            Some(951_825_600)
        );
        for bad in [
            "",
            "Feb 30 00:00:00 2001 GMT",
            "Feb 29 00:00:00 1900 GMT",
            "Foo  1 00:00:00 1970 GMT",
            "Jan  1 24:00:00 1970 GMT",
            "Jan  1 00:00:00 1970 UTC",
            "Jan  1 00:00:00 1970 GMT x",
            "Jan  1 0:00:00 1970 GMT",
            "Jan  1 00:00:00 70 GMT",
            "Jan +1 00:00:00 1970 GMT",
        ] {
            assert_eq!(parse_openssl_time(bad), None, "{bad:?}");
        }
    }

    /// OpenSSL's own printing of random instants (an independent implementation of the
    /// calendar) must parse back to the same instant; then mutations must not panic.
    #[test]
    fn agrees_with_openssl_and_never_panics() {
        let mut state: u64 = 0x0bad_5eed_1234_5678;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            // 1950..2200, covering both UTCTime and GeneralizedTime printing.
            let t = (next() % 7_889_238_000) as i64 - 631_152_000;
            let text = Asn1Time::from_unix(t).unwrap().to_string();
            assert_eq!(parse_openssl_time(&text), Some(t), "{text}");
            let mut bytes = text.into_bytes();
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = b" 0:9.GMTaZ\xff"[(next() % 11) as usize];
            let _ = parse_openssl_time(&String::from_utf8_lossy(&bytes));
        }
    }
}

//! `Retry-After` (RFC 9110 section 10.2.3), read the same way by every client of the
//! workspace: the token endpoint's, the Real Time Chat and the Sunshine Conversations ones.
//!
//! ```
//! use std::time::Duration;
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("120"));
//! assert_eq!(zd_auth::retry_after::from_headers(&headers), Some(Duration::from_secs(120)));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait read from a header (over thirty years): a longer one says "wait as long as
/// you allow", so it is cut to this and each caller's own cap decides. Kept far from what a
/// clock can add, and from `Duration::from_secs_f64`'s panic.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(1_000_000_000);

/// The wait a response's `Retry-After` asks for: seconds (the form the APIs use) or an HTTP
/// date (IMF-fixdate, which proxies in front of them may send); a date already past means no
/// wait. `None` when the header is missing or unreadable.
#[must_use]
pub fn from_headers(headers: &http::HeaderMap) -> Option<Duration> {
    parse(
        headers.get(http::header::RETRY_AFTER)?.to_str().ok()?,
        SystemTime::now(),
    )
}

/// [`from_headers`] for one header value, with the date measured from `now`.
///
/// Waits beyond [`MAX_RETRY_AFTER`] (a huge number, a date centuries ahead) are cut to it;
/// negative and non-finite values are `None`. Nothing here panics.
#[must_use]
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if let Some(at) = parse_imf_fixdate(v) {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(at.saturating_sub(now)).min(MAX_RETRY_AFTER));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as seconds since the Unix epoch.
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = v.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u64 = parts.next()?.parse().ok()?;
    let mon = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)?;
    let year: u64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), March-based years.
    let month = month as u64 + 1;
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{MAX_RETRY_AFTER, parse, parse_imf_fixdate};

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_imf_fixdate("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_imf_fixdate("06 Nov 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        let at = |v: &str| parse(v, now);
        assert_eq!(
            at("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("120"), Some(Duration::from_secs(120)));
        assert_eq!(at("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(at(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(at("soon"), None);
    }

    #[test]
    fn absurd_retry_after_is_capped_and_negative_ignored() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        let at = |v: &str| parse(v, now);
        // Duration::from_secs_f64 would panic on the huge ones; nothing here may.
        assert_eq!(at("-1"), None);
        assert_eq!(at("NaN"), None);
        assert_eq!(at("inf"), None);
        // The same cap for every form: integers, floats and far-future dates.
        assert_eq!(at("1e20"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("999999999"), Some(Duration::from_secs(999_999_999)));
        assert_eq!(at("1000000001"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            at("Wed, 15 Jul 2026 10:36:09 GMT"),
            Some(Duration::from_secs(999_999_999))
        );
    }
}

//! Ids and timestamps in the service's formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Makes 24-hex-digit ids (the service's ObjectId shape) that sort in creation order, so a
/// `BTreeMap` keyed by id is also the listing order and an id is a valid cursor.
#[derive(Debug)]
pub(crate) struct IdGen {
    prefix: u32,
    next: AtomicU64,
}

impl IdGen {
    pub(crate) fn new() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            prefix: u32::try_from(secs & 0xffff_ffff).unwrap_or(0),
            next: AtomicU64::new(rand::rng().random_range(1..1 << 40)),
        }
    }

    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{:016x}", self.prefix, n)
    }
}

/// A random secret of the length the service hands out.
pub(crate) fn secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..64)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The current time as RFC 3339 with milliseconds, `2026-11-21T19:29:50.123Z`.
pub(crate) fn now_iso() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    iso_from_unix_ms(u64::try_from(ms).unwrap_or(0))
}

/// Formats milliseconds since the epoch (proleptic Gregorian calendar, UTC).
pub(crate) fn iso_from_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Unused OAuth codes and refresh tokens kept at most per kind. Anyone may ask for a code, so
/// a loop could otherwise grow the map for good; past the bound the map starts over (the
/// grant just made stays valid), as the document cache does.
pub(crate) const MAX_PENDING_GRANTS: usize = 4096;

/// Remembers a code or refresh token within [`MAX_PENDING_GRANTS`].
pub(crate) fn remember_grant<V>(
    grants: &mut std::collections::HashMap<String, V>,
    key: String,
    value: V,
) {
    if grants.len() >= MAX_PENDING_GRANTS {
        grants.clear();
    }
    grants.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_unix_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            iso_from_unix_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn ids_sort_in_creation_order() {
        let ids = IdGen::new();
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a.len(), 24);
        assert!(a < b);
    }

    #[test]
    fn pending_grants_stay_bounded_and_the_newest_is_kept() {
        let mut grants = std::collections::HashMap::new();
        for n in 0..3 * MAX_PENDING_GRANTS {
            remember_grant(&mut grants, format!("code-{n}"), "token".to_owned());
            assert!(grants.len() <= MAX_PENDING_GRANTS);
            assert!(grants.contains_key(&format!("code-{n}")));
        }
    }
}

//! Reads a JSON object as ordered, borrowed `(key, raw value)` pairs.

use std::{borrow::Cow, collections::HashMap, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor},
};
use serde_json::value::RawValue;

/// Most entries an object read here may hold: an update of more metrics, or a metric value of
/// more windows, is refused rather than read.
///
/// The catalogue has 15 metrics and two windows, and one update names each metric at most once,
/// so a real object holds a few dozen entries at the very most; this leaves room for metrics the
/// catalogue does not know yet. Without a cap a 1 MiB frame of `"":0,` would become some 200,000
/// entries, about twenty times its size in memory.
pub(super) const MAX_ENTRIES: usize = 10_000;

pub(super) struct Entries<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(key) = map.next_key::<CowKey<'de>>()? {
                    if out.len() == MAX_ENTRIES {
                        return Err(serde::de::Error::custom("too many entries"));
                    }
                    out.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key that borrows when it can (serde's `Cow<str>` impl always copies).
struct CowKey<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowKey(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses `raw` as an object, each key once; `None` when it is anything else or holds more than
/// [`MAX_ENTRIES`] entries.
///
/// A key given twice keeps its first place and takes its last value, as `serde_json::Value`
/// and JavaScript read it: the service's own clients would show that value, and refusing the
/// whole update would lose every other metric in it.
pub(super) fn entries(raw: &RawValue) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut entries = serde_json::from_str::<Entries<'_>>(raw.get()).ok()?.0;
    keep_last(&mut entries);
    Some(entries)
}

/// Below this many entries duplicates are looked for pairwise, which allocates nothing.
const PAIRWISE: usize = 16;

fn keep_last(entries: &mut Vec<(Cow<'_, str>, &RawValue)>) {
    if entries.len() <= PAIRWISE {
        let mut i = 1;
        while i < entries.len() {
            let (before, rest) = entries.split_at_mut(i);
            match before.iter_mut().find(|(key, _)| *key == rest[0].0) {
                Some(first) => {
                    first.1 = rest[0].1;
                    entries.remove(i);
                }
                None => i += 1,
            }
        }
        return;
    }
    // Where each entry's key first came; a later entry's value goes there, in wire order so
    // the latest wins, and the entry goes.
    let first_of: Vec<usize> = {
        let mut first_at: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
        (0..entries.len())
            .map(|i| *first_at.entry(&entries[i].0).or_insert(i))
            .collect()
    };
    for (i, &first) in first_of.iter().enumerate() {
        if first != i {
            entries[first].1 = entries[i].1;
        }
    }
    let mut at = 0;
    entries.retain(|_| {
        at += 1;
        first_of[at - 1] == at - 1
    });
}

#[cfg(test)]
mod tests {
    use super::{MAX_ENTRIES, entries};

    fn keys_and_values(text: &str) -> Option<Vec<(String, String)>> {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).expect("JSON");
        entries(&raw).map(|e| {
            e.into_iter()
                .map(|(k, v)| (k.into_owned(), v.get().to_owned()))
                .collect()
        })
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_its_last_value() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys_and_values(r#"{"a":1,"b":2,"a":3,"c":4,"a":5,"b":6}"#),
            Some(pairs(&[("a", "5"), ("b", "6"), ("c", "4")]))
        );
        // The same above the pairwise size.
        let mut text: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
        text.push_str(r#""k3":"last","k0":null,"k3":7"#);
        let read = keys_and_values(&format!("{{{text}}}")).expect("an object");
        assert_eq!(read.len(), 40);
        assert_eq!(read[0], ("k0".to_owned(), "null".to_owned()));
        assert_eq!(read[3], ("k3".to_owned(), "7".to_owned()));
        assert_eq!(read[39], ("k39".to_owned(), "39".to_owned()));
    }

    #[test]
    fn objects_of_too_many_entries_are_refused() {
        let at_most: String = (0..MAX_ENTRIES).map(|i| format!(r#""k{i}":0,"#)).collect();
        let at_most = format!("{{{}}}", at_most.trim_end_matches(','));
        assert_eq!(
            keys_and_values(&at_most).map(|e| e.len()),
            Some(MAX_ENTRIES)
        );
        let over = format!("{{{}}}", r#""":0,"#.repeat(MAX_ENTRIES) + r#""":1"#);
        let read = keys_and_values(&over);
        assert!(read.is_none(), "{:?} entries", read.map(|e| e.len()));
    }
}

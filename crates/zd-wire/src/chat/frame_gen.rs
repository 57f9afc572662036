//! Test-only generators of mostly-valid chat frames for the splitters' property tests.
//!
//! Random strings almost never form a frame a splitter accepts, so a property that only checks
//! accepted frames would pass without checking anything. These generators build frames from
//! random JSON values instead: strings full of quotes, backslashes, brackets and `\u` escapes,
//! random whitespace between every token, the envelope's keys in random order, then a few kinds
//! of deliberate deviation (an error key, an extra or repeated key, an escaped key, a payload
//! of the wrong type, trailing text) and, for a quarter of the frames, a few mutated characters.
//! [`run`] checks that most unmutated frames are accepted, so the properties cannot go vacuous
//! unnoticed.

use std::cell::Cell;

use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{Map, Value, json};

/// Cases per property: enough for the acceptance share to be stable.
const CASES: u32 = 256;

/// One generated frame (or payload).
#[derive(Debug, Clone)]
pub(in crate::chat) struct Case {
    /// The text to split.
    pub(in crate::chat) text: String,
    /// Built in the exact shape the splitter accepts (before any mutation).
    pub(in crate::chat) plain: bool,
    /// Some characters were changed after building.
    pub(in crate::chat) mutated: bool,
}

/// Runs `check` (which asserts agreement with the decoder and gives whether the splitter
/// accepted) on [`CASES`] cases of `strategy`. Every plain unmutated case must be accepted, and
/// at least half of all unmutated ones.
pub(in crate::chat) fn run(strategy: impl Strategy<Value = Case>, check: impl Fn(&str) -> bool) {
    let unmutated = Cell::new(0_u32);
    let accepted = Cell::new(0_u32);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |case| {
        let took = check(&case.text);
        if !case.mutated {
            unmutated.set(unmutated.get() + 1);
            accepted.set(accepted.get() + u32::from(took));
            if case.plain && !took {
                return Err(TestCaseError::fail(format!(
                    "a plain frame was refused: {:?}",
                    case.text
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (unmutated, accepted) = (unmutated.get(), accepted.get());
    assert!(unmutated >= CASES / 2, "only {unmutated} unmutated cases");
    assert!(
        accepted * 2 >= unmutated,
        "only {accepted} of {unmutated} unmutated frames accepted: the property is near vacuous"
    );
}

/// DATA frames for `split_data`: 13 in 20 plain.
pub(in crate::chat) fn data_frames() -> impl Strategy<Value = Case> {
    (
        value(),
        value(),
        id_text(),
        0_u32..20,
        any::<u64>(),
        0_u32..4,
    )
        .prop_map(|(v, extra, sub, variant, seed, mutate)| {
            let l = &mut Layout(seed);
            let payload = event_payload(v, l);
            let mut members = vec![
                (key("sig"), r#""DATA""#.to_owned()),
                (key("subscription_id"), format!("\"{sub}\"")),
                (key("payload"), written(&payload, l)),
            ];
            let mut trailing = "";
            match variant {
                0..13 => {}
                13 => members.push((key(l.pick(&["error_code", "errorCode"])), error_code(l))),
                14 => members.push((
                    key(l.pick(&["id", "type", "reason", "x"])),
                    written(&extra, l),
                )),
                15 => match l.below(3) {
                    0 => members[0].0 = r#""\u0073ig""#.to_owned(),
                    1 => members[1].1 = format!(r#""\u0041{sub}""#),
                    _ => members[2].0 = r#""p\u0061yload""#.to_owned(),
                },
                16 => members[2].1 = written(&not_object(extra), l),
                17 => {
                    let again = members[l.below(3)].clone();
                    members.push(again);
                }
                18 => {
                    members[0].1 = l
                        .pick(&[r#""PONG""#, r#""EOS""#, r#""data""#, "null"])
                        .to_owned()
                }
                _ => trailing = l.pick(&[" x", ",", "}", "{}", "\u{c}"]),
            }
            let text = envelope(members, trailing, l);
            finish(text, variant < 13, mutate == 0, l)
        })
}

/// Answers for `split_response`: 13 in 20 plain (one of them a subscription ack).
pub(in crate::chat) fn responses() -> impl Strategy<Value = Case> {
    let id = prop_oneof![0_u64..100, any::<u64>()];
    (
        value(),
        value(),
        id,
        id_text(),
        0_u32..20,
        any::<u64>(),
        0_u32..4,
    )
        .prop_map(|(v, extra, id, sub, variant, seed, mutate)| {
            let l = &mut Layout(seed);
            let data = if variant == 12 {
                json!({ "subscription_id": sub })
            } else {
                as_object(v)
            };
            let mut payload = vec![(key("data"), written(&data, l))];
            let mut members = vec![(key("id"), id.to_string())];
            let mut trailing = "";
            match variant {
                0..13 => {}
                13 => members.push((key(l.pick(&["error_code", "errorCode"])), error_code(l))),
                14 => {
                    let other = l.pick(&["errors", "extensions", "body"]);
                    payload.push((key(other), written(&extra, l)));
                    if l.below(2) == 0 {
                        payload.remove(0);
                    }
                }
                15 => payload[0].1 = written(&not_object(extra), l),
                16 => {
                    members[0].1 = l
                        .pick(&[
                            r#""7""#,
                            "-1",
                            "1.0",
                            "01",
                            "1e2",
                            "18446744073709551616",
                            "null",
                        ])
                        .to_owned();
                }
                17 => members.push((key(l.pick(&["sig", "type", "x"])), written(&extra, l))),
                18 => match l.below(2) {
                    0 => members[0].0 = r#""\u0069d""#.to_owned(),
                    _ => payload[0].0 = r#""d\u0061ta""#.to_owned(),
                },
                _ => match l.below(3) {
                    0 => members.push(members[0].clone()),
                    1 => payload.push(payload[0].clone()),
                    _ => trailing = l.pick(&[" x", ",", "}", "\u{c}"]),
                },
            }
            members.push((key("payload"), envelope(payload, "", l)));
            let text = envelope(members, trailing, l);
            finish(text, variant < 13, mutate == 0, l)
        })
}

/// Event payloads for `payload_data`: 13 in 20 plain.
pub(in crate::chat) fn payloads() -> impl Strategy<Value = Case> {
    (value(), value(), 0_u32..20, any::<u64>(), 0_u32..4).prop_map(
        |(v, extra, variant, seed, mutate)| {
            let l = &mut Layout(seed);
            let mut members = vec![(key("data"), written(&as_object(v), l))];
            let mut trailing = "";
            match variant {
                0..13 => {}
                13 => members[0].1 = written(&not_object(extra), l),
                14 => {
                    let other = l.pick(&["errors", "extensions", "x"]);
                    members.push((key(other), written(&extra, l)));
                }
                15 => members[0].0 = r#""d\u0061ta""#.to_owned(),
                16 => members.clear(),
                17 => members.push(members[0].clone()),
                18 => trailing = l.pick(&[" x", ",", "}", "{}", "\u{c}"]),
                _ => {
                    let text = written(&extra, l);
                    return finish(text, false, mutate == 0, l);
                }
            }
            let text = envelope(members, trailing, l);
            finish(text, variant < 13, mutate == 0, l)
        },
    )
}

/// Any JSON value, a few levels deep, its strings full of what a scan must get right.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e300_f64..1.0e300).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Short strings of quotes, backslashes, brackets, control and non-ASCII characters.
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9 {}\\[\\]\":,\\\\/\u{1}\t\n\u{7f}\u{e9}\u{2028}\u{1F600}]{0,10}"
}

/// A subscription id as the envelope carries it: nothing that needs an escape.
fn id_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.:\\- \u{e9}\u{1F600}]{0,16}"
}

fn event_payload(v: Value, l: &mut Layout) -> Value {
    match l.below(6) {
        0 => as_object(v),
        1 => json!({ "data": null, "errors": [{ "message": v }] }),
        _ => json!({ "data": as_object(v) }),
    }
}

fn as_object(v: Value) -> Value {
    if v.is_object() { v } else { json!({ "v": v }) }
}

fn not_object(v: Value) -> Value {
    match v {
        Value::Object(members) => Value::Array(members.into_iter().map(|(_, v)| v).collect()),
        other => other,
    }
}

fn error_code(l: &mut Layout) -> String {
    l.pick(&["500", r#""503""#, "0", r#""x""#, "null", "[429]"])
        .to_owned()
}

fn key(name: &str) -> String {
    format!("\"{name}\"")
}

/// Writes an object of already written members in random order with random whitespace, and
/// `trailing` after it.
fn envelope(mut members: Vec<(String, String)>, trailing: &str, l: &mut Layout) -> String {
    l.shuffle(&mut members);
    let mut out = String::new();
    l.ws(&mut out);
    out.push('{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        l.ws(&mut out);
        out.push_str(key);
        l.ws(&mut out);
        out.push(':');
        l.ws(&mut out);
        out.push_str(value);
        l.ws(&mut out);
    }
    out.push('}');
    out.push_str(trailing);
    l.ws(&mut out);
    out
}

fn finish(text: String, plain: bool, mutate: bool, l: &mut Layout) -> Case {
    let text = if mutate { mutated(&text, l) } else { text };
    Case {
        text,
        plain,
        mutated: mutate,
    }
}

/// One to three characters replaced, removed or inserted.
fn mutated(text: &str, l: &mut Layout) -> String {
    const MUTANTS: &[char] = &[
        '"', '{', '}', '[', ']', ':', ',', '\\', ' ', '0', 'a', 'u', '\u{e9}', '\u{c}', '\n',
    ];
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=l.below(3) {
        let at = l.below(chars.len() + 1);
        let c = MUTANTS[l.below(MUTANTS.len())];
        match l.below(3) {
            0 if at < chars.len() => chars[at] = c,
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

/// `value` as JSON text, with random whitespace, member order and string escapes.
fn written(value: &Value, l: &mut Layout) -> String {
    let mut out = String::new();
    write(&mut out, value, l);
    out
}

fn write(out: &mut String, value: &Value, l: &mut Layout) {
    match value {
        Value::String(s) => write_string(out, s, l),
        Value::Array(items) => write_seq(out, l, ('[', ']'), items, |out, item, l| {
            write(out, item, l);
        }),
        Value::Object(members) => {
            let mut members: Vec<_> = members.iter().collect();
            l.shuffle(&mut members);
            write_seq(out, l, ('{', '}'), &members, |out, (key, item), l| {
                write_string(out, key, l);
                l.ws(out);
                out.push(':');
                l.ws(out);
                write(out, item, l);
            });
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `open`, the items comma-separated with the layout's whitespace around each, `close`.
fn write_seq<T>(
    out: &mut String,
    l: &mut Layout,
    (open, close): (char, char),
    items: &[T],
    mut item: impl FnMut(&mut String, &T, &mut Layout),
) {
    out.push(open);
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        l.ws(out);
        item(out, it, l);
        l.ws(out);
    }
    if items.is_empty() {
        l.ws(out);
    }
    out.push(close);
}

fn write_string(out: &mut String, s: &str, l: &mut Layout) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' if l.below(3) > 0 => out.push_str("\\\""),
            '\\' if l.below(3) > 0 => out.push_str("\\\\"),
            '\n' if l.below(2) > 0 => out.push_str("\\n"),
            '\t' if l.below(2) > 0 => out.push_str("\\t"),
            '/' if l.below(3) == 0 => out.push_str("\\/"),
            '"' | '\\' | '\n' | '\t' | '\u{0}'..='\u{1f}' => unicode_escape(out, c, l),
            c if l.below(6) == 0 => unicode_escape(out, c, l),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `\uXXXX` (a surrogate pair beyond the BMP), hex digits in either case.
fn unicode_escape(out: &mut String, c: char, l: &mut Layout) {
    let upper = l.below(2) == 0;
    let mut units = [0_u16; 2];
    for unit in c.encode_utf16(&mut units) {
        if upper {
            out.push_str(&format!("\\u{unit:04X}"));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
}

/// The layout choices of one frame, from one seed proptest draws (splitmix64).
struct Layout(u64);

impl Layout {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.below(from.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// JSON whitespace, none half of the time.
    fn ws(&mut self, out: &mut String) {
        const WS: &[&str] = &["", "", "", "", " ", "  ", "\n", "\t", "\r\n ", " \n\t\r"];
        out.push_str(WS[self.below(WS.len())]);
    }
}

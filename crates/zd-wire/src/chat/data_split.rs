//! The client's hot path for DATA frames: find the subscription id and the payload's span
//! without parsing the payload.
//!
//! [`ServerFrame::decode_with`](super::ServerFrame::decode_with) validates every byte of a
//! frame, the payload included, and the subscriber then parses that payload again into its own
//! type: two full passes over the largest part of the busiest frame. A subscriber's parse
//! validates the payload anyway, so a client only needs to know where the payload starts and
//! ends. [`split_data`] finds that with a structural scan (quotes, escapes, brackets) and leaves
//! the validation to the one parse that follows.
//!
//! It accepts only the plain shape, `{"sig":"DATA","subscription_id":"…","payload":{…}}` in any
//! key order, and answers `None` for everything else (other keys, `error_code` or `errorCode`
//! among them, escapes in the envelope's strings, repeated keys, a payload that is not an
//! object, trailing text), which the full decoder then handles. So for a frame it accepts, the full decoder would have produced the
//! same [`Data`](super::Data), or refused it only because the payload is not valid JSON.

use super::scan::{object_end, plain_string, skip_ws, walk_object};
use crate::DecodeLimits;

/// The parts of a plain DATA frame, the payload still unparsed.
///
/// ```
/// use zd_wire::DecodeLimits;
/// use zd_wire::chat::split_data;
///
/// let frame = r#"{"sig":"DATA","subscription_id":"s1","payload":{"data":{"n":1}}}"#;
/// let parts = split_data(frame, &DecodeLimits::new()).expect("a plain DATA frame");
/// assert_eq!(parts.subscription_id, "s1");
/// assert_eq!(parts.payload, r#"{"data":{"n":1}}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataParts<'a> {
    /// The subscription the event belongs to.
    pub subscription_id: &'a str,
    /// The payload object's text, brackets included. Only its outline was checked: parse it
    /// (which validates it) before trusting it.
    pub payload: &'a str,
}

/// Splits a plain DATA frame into its subscription id and payload text, or `None` when the
/// frame is anything else (or over the size cap): decode those with
/// [`ServerFrame::decode_with`](super::ServerFrame::decode_with).
#[must_use]
pub fn split_data<'a>(text: &'a str, limits: &DecodeLimits) -> Option<DataParts<'a>> {
    limits.check(text).ok()?;
    let bytes = text.as_bytes();
    let mut sig = false;
    let mut subscription = None;
    let mut payload = None;
    let end = walk_object(bytes, 0, |key, at| match key {
        b"sig" if !sig => {
            let (value, next) = plain_string(bytes, at)?;
            sig = value == b"DATA";
            sig.then_some(next)
        }
        b"subscription_id" if subscription.is_none() => {
            let (_, next) = plain_string(bytes, at)?;
            // Without its quotes; no escapes inside, so the text is the id.
            subscription = Some((at + 1, next - 1));
            Some(next)
        }
        b"payload" if payload.is_none() => {
            let end = object_end(bytes, at)?;
            payload = Some((at, end));
            Some(end)
        }
        _ => None,
    })?;
    if !sig || skip_ws(bytes, end) != bytes.len() {
        return None;
    }
    let (sub_start, sub_end) = subscription?;
    let (payload_start, payload_end) = payload?;
    // Every boundary sits next to an ASCII delimiter, so these are char boundaries.
    Some(DataParts {
        subscription_id: text.get(sub_start..sub_end)?,
        payload: text.get(payload_start..payload_end)?,
    })
}

#[cfg(test)]
mod tests {
    use super::{DataParts, split_data};
    use crate::DecodeLimits;
    use crate::chat::scan::fixtures::count_server_frames;
    use crate::chat::{ServerFrame, frame_gen};

    fn split(text: &str) -> Option<DataParts<'_>> {
        split_data(text, &DecodeLimits::new())
    }

    /// Whatever the splitter accepts, the full decoder reads as the same DATA frame, with the
    /// same subscription id and payload; gives whether the splitter accepted.
    fn agrees_with_decoder(text: &str) -> bool {
        let Some(parts) = split(text) else {
            return false;
        };
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Data(data)) => {
                assert_eq!(data.subscription_id, parts.subscription_id, "{text}");
                // Some valid JSON (a number past f64's range) reads only raw: both sides
                // then read as `None`, and the text comparison below still holds them equal.
                let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
                assert_eq!(json(data.payload.get()), json(parts.payload), "{text}");
                assert_eq!(data.payload.get(), parts.payload, "{text}");
            }
            Ok(other) => panic!("split a {} frame as DATA: {text}", other.kind()),
            Err(_) => assert!(
                serde_json::from_str::<serde_json::Value>(parts.payload).is_err(),
                "the decoder refused a frame whose payload is valid: {text}"
            ),
        }
        true
    }

    #[test]
    fn splits_the_real_message_frame() {
        let text = include_str!("../../../../fixtures/chat/server/data_message_f1.json");
        let parts = split(text).expect("plain DATA");
        assert_eq!(parts.subscription_id, "a1gf13bjz13");
        assert!(parts.payload.starts_with(r#"{"data":{"message""#));
        assert!(parts.payload.ends_with("}}}}}"));
        agrees_with_decoder(text);
    }

    #[test]
    fn agrees_with_the_decoder_on_every_server_fixture() {
        let split_some = count_server_frames(|text| {
            agrees_with_decoder(text);
            split(text).is_some()
        });
        assert!(split_some >= 2, "the DATA fixtures split");
    }

    #[test]
    fn handles_any_key_order_whitespace_and_tricky_strings() {
        let text = " {\n \"payload\" : {\"data\":{\"t\":\"} ] { [ \\\" \\\\\"}} ,\"subscription_id\":\"s-9\", \"sig\":\"DATA\"}\r\n";
        let parts = split(text).expect("plain DATA");
        assert_eq!(parts.subscription_id, "s-9");
        assert_eq!(parts.payload, r#"{"data":{"t":"} ] { [ \" \\"}}"#);
        agrees_with_decoder(text);
    }

    #[test]
    fn leaves_every_other_shape_to_the_decoder() {
        for text in [
            r#"{"sig":"DATA","subscription_id":"s","payload":{},"error_code":400}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":{},"errorCode":400}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":{},"errorCode":null}"#,
            r#"{"sig":"PONG","payload":{}}"#,
            r#"{"sig":"DATA","payload":{}}"#,
            r#"{"sig":"DATA","subscription_id":"s"}"#,
            r#"{"subscription_id":"s","payload":{}}"#,
            r#"{"sig":"DATA","subscription_id":"s\u0031","payload":{}}"#,
            r#"{"sig":"DATA","subscription_id":"s","subscription_id":"t","payload":{}}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":[]}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":null}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":{"a":"}"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":{}} x"#,
            r#"{"sig":"DATA","subscription_id":"s","payload":{},}"#,
            r#"{"sig":"DATA","subscription_id":7,"payload":{}}"#,
            r#"[{"sig":"DATA","subscription_id":"s","payload":{}}]"#,
            "",
            "{",
        ] {
            assert_eq!(split(text), None, "{text}");
        }
    }

    #[test]
    fn leaves_an_invalid_payload_to_the_parse_that_follows() {
        let text = r#"{"sig":"DATA","subscription_id":"s","payload":{"a":tru}}"#;
        let parts = split(text).expect("outline is fine");
        assert_eq!(parts.payload, r#"{"a":tru}"#);
        assert!(ServerFrame::decode(text).is_err());
        agrees_with_decoder(text);
    }

    #[test]
    fn refuses_frames_over_the_cap_and_runaway_nesting() {
        let frame = r#"{"sig":"DATA","subscription_id":"s","payload":{}}"#;
        assert_eq!(
            split_data(frame, &DecodeLimits::new().with_max_frame_bytes(10)),
            None
        );
        let deep = format!(
            r#"{{"sig":"DATA","subscription_id":"s","payload":{}{}}}"#,
            "{\"a\":".repeat(200),
            "}".repeat(201)
        );
        assert_eq!(split(&deep), None);
    }

    #[test]
    fn agrees_with_the_decoder_on_generated_frames() {
        frame_gen::run(frame_gen::data_frames(), agrees_with_decoder);
    }
}

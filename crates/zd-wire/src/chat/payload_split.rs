//! The subscriber's hot path after [`split_data`](super::split_data): find the `data` object of
//! an event's payload without parsing it, so the subscriber's own type is the one parse.
//!
//! Almost every payload is `{"data":{…}}`. Reading it through an envelope type
//! (`{"data": Option<T>, "errors": …}`) costs a visitor over the payload's keys around the parse
//! of `T`; [`payload_data`] finds the same `data` with an outline scan. It accepts only that
//! plain shape and answers `None` for anything else (errors, extensions, a null or non-object
//! `data`, repeated or escaped keys, trailing text), which the caller then reads through its
//! envelope as before.

use super::scan::{data_member, skip_ws};

/// The `data` object of a plain payload `{"data":{…}}`, brackets included and still unparsed
/// (parse it, which validates it, before trusting it); `None` for any other payload.
///
/// ```
/// use zd_wire::chat::payload_data;
///
/// assert_eq!(payload_data(r#"{"data":{"n":1}}"#), Some(r#"{"n":1}"#));
/// assert_eq!(payload_data(r#"{"data":null,"errors":[{"message":"no"}]}"#), None);
/// ```
#[must_use]
pub fn payload_data(payload: &str) -> Option<&str> {
    let bytes = payload.as_bytes();
    let (end, (start, data_end)) = data_member(bytes, 0)?;
    if skip_ws(bytes, end) != bytes.len() {
        return None;
    }
    // Both boundaries sit on ASCII brackets, so they are char boundaries.
    payload.get(start..data_end)
}

#[cfg(test)]
mod tests {
    use super::payload_data;
    use crate::DecodeLimits;
    use crate::chat::scan::fixtures::count_server_frames;
    use crate::chat::{ServerFrame, frame_gen, split_data};

    /// Whatever the scan accepts is a JSON object whose only member is `data`, holding the same
    /// value, or not JSON at all (left for the parse that follows to refuse).
    fn agrees_with_a_parse(payload: &str) {
        let Some(data) = payload_data(payload) else {
            return;
        };
        match serde_json::from_str::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Object(members)) => {
                assert_eq!(members.len(), 1, "{payload}");
                let parsed: serde_json::Value = serde_json::from_str(data).expect("valid data");
                assert!(parsed.is_object(), "{payload}");
                assert_eq!(members.get("data"), Some(&parsed), "{payload}");
            }
            Ok(other) => panic!("not an object: {other} from {payload}"),
            Err(_) => assert!(
                serde_json::from_str::<serde_json::Value>(data).is_err(),
                "the payload is invalid but its data parses: {payload}"
            ),
        }
    }

    #[test]
    fn finds_the_data_of_every_recorded_event() {
        let events = count_server_frames(|text| {
            let Some(parts) = split_data(text, &DecodeLimits::new()) else {
                return false;
            };
            agrees_with_a_parse(parts.payload);
            let data = payload_data(parts.payload).expect("recorded events are plain");
            assert!(data.starts_with('{') && data.ends_with('}'), "{data}");
            true
        });
        assert!(events >= 1, "the recorded message event");
    }

    #[test]
    fn handles_whitespace_and_tricky_strings() {
        let payload = " { \"data\" :\t{\"t\":\"} ] { [ \\\" \\\\\"}}\r\n";
        assert_eq!(payload_data(payload), Some(r#"{"t":"} ] { [ \" \\"}"#));
        agrees_with_a_parse(payload);
    }

    #[test]
    fn leaves_every_other_shape_to_the_envelope() {
        for payload in [
            r#"{"data":{},"errors":[]}"#,
            r#"{"errors":[{"message":"x"}]}"#,
            r#"{"data":null,"errors":[{"message":"x"}]}"#,
            r#"{"data":{},"extensions":{}}"#,
            r#"{"data":null}"#,
            r#"{"data":[]}"#,
            r#"{"data":"x"}"#,
            r#"{"data":{},"data":{}}"#,
            r#"{"d\u0061ta":{}}"#,
            r#"{"data":{}} x"#,
            r#"{"data":{},}"#,
            r#"{"data":{"a":"}}"#,
            "{}",
            "[]",
            "",
            "{",
        ] {
            assert_eq!(payload_data(payload), None, "{payload}");
        }
    }

    #[test]
    fn leaves_invalid_data_to_the_parse_that_follows() {
        let payload = r#"{"data":{"a":tru}}"#;
        assert_eq!(payload_data(payload), Some(r#"{"a":tru}"#));
        agrees_with_a_parse(payload);
    }

    /// Whatever the scan accepts, the full decoder reads, in a DATA frame, as a response with
    /// that `data` and nothing else; gives whether the scan accepted.
    fn agrees_with_the_decoder(payload: &str) -> bool {
        agrees_with_a_parse(payload);
        let Some(data) = payload_data(payload) else {
            return false;
        };
        let frame = format!(r#"{{"sig":"DATA","subscription_id":"s","payload":{payload}}}"#);
        let response = match ServerFrame::decode(&frame) {
            Ok(ServerFrame::Data(event)) => event.response(),
            Ok(other) => panic!("read a {} frame: {frame}", other.kind()),
            Err(e) => Err(e),
        };
        match response {
            Ok(response) => {
                assert!(response.errors.is_none(), "{payload}");
                assert!(response.extensions.is_none(), "{payload}");
                let decoded = response.data.map(|d| d.get());
                // Some valid JSON (a number past f64's range) reads only raw: both sides
                // then read as `None`, and the text comparison below still holds them equal.
                let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
                assert_eq!(decoded.map(json), Some(json(data)), "{payload}");
                assert_eq!(decoded, Some(data), "{payload}");
            }
            Err(_) => assert!(
                serde_json::from_str::<serde_json::Value>(data).is_err(),
                "the decoder refused a payload whose data is valid: {payload}"
            ),
        }
        true
    }

    #[test]
    fn agrees_with_the_decoder_on_generated_payloads() {
        frame_gen::run(frame_gen::payloads(), agrees_with_the_decoder);
    }
}

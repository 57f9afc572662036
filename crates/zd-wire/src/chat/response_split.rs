//! The client's hot path for answers: find a response's request id and the span of its `data`
//! without parsing `data`.
//!
//! Every query and mutation is answered by `{"id":<n>,"payload":{"data":{…}}}`. The full
//! decoder validates the whole frame, and then the caller parses `data` into its own type: two
//! passes, plus the envelope's own machinery, for the second busiest frame a bot receives.
//! [`split_response`] only scans the outline (as [`split_data`](super::split_data) does for DATA
//! frames) and leaves validating `data` to the caller's parse.
//!
//! It accepts only that plain shape, in any key order: `id` a non-negative integer that fits a
//! `u64`, `payload` an object whose only member is `data`, itself an object. Everything else
//! (errors, extensions, a `body`, `errorCode` or `error_code`, `sig`, string ids, a null
//! `data`, escapes in keys, repeated keys, trailing text) answers `None` and is left to the
//! full decoder. A subscription ack has this shape too (its `data` is
//! `{"subscription_id":"…"}`); telling the two apart is up to the caller, which knows what it
//! asked.

use super::scan::{data_member, skip_ws, walk_object};
use crate::DecodeLimits;

/// The parts of a plain response, its `data` still unparsed.
///
/// ```
/// use zd_wire::DecodeLimits;
/// use zd_wire::chat::split_response;
///
/// let frame = r#"{"id":7,"payload":{"data":{"sendMessage":{"success":true}}}}"#;
/// let parts = split_response(frame, &DecodeLimits::new()).expect("a plain response");
/// assert_eq!(parts.id, 7);
/// assert_eq!(parts.data, r#"{"sendMessage":{"success":true}}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseParts<'a> {
    /// The id of the request this answers.
    pub id: u64,
    /// The `data` object's text, brackets included. Only its outline was checked: parse it
    /// (which validates it) before trusting it.
    pub data: &'a str,
}

/// Splits a plain response into its request id and `data` text, or `None` when the frame is
/// anything else (or over the size cap): decode those with
/// [`ServerFrame::decode_with`](super::ServerFrame::decode_with).
#[must_use]
pub fn split_response<'a>(text: &'a str, limits: &DecodeLimits) -> Option<ResponseParts<'a>> {
    limits.check(text).ok()?;
    let bytes = text.as_bytes();
    let mut id = None;
    let mut data = None;
    let end = walk_object(bytes, 0, |key, at| match key {
        b"id" if id.is_none() => {
            let (value, next) = plain_u64(bytes, at)?;
            id = Some(value);
            Some(next)
        }
        b"payload" if data.is_none() => {
            let (end, span) = data_member(bytes, at)?;
            data = Some(span);
            Some(end)
        }
        _ => None,
    })?;
    if skip_ws(bytes, end) != bytes.len() {
        return None;
    }
    let (data_start, data_end) = data?;
    // Both boundaries sit on ASCII brackets, so they are char boundaries.
    Some(ResponseParts {
        id: id?,
        data: text.get(data_start..data_end)?,
    })
}

/// An integer written as JSON writes one (no sign, fraction, exponent or leading zero) that
/// fits a `u64`, and the position after it.
fn plain_u64(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let digits = bytes
        .get(at..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let end = at + digits;
    if digits == 0 || (digits > 1 && bytes[at] == b'0') {
        return None;
    }
    if matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    let value = bytes[at..end].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some((value, end))
}

#[cfg(test)]
mod tests {
    use super::{ResponseParts, split_response};
    use crate::DecodeLimits;
    use crate::chat::scan::fixtures::{count_server_frames, server_frame};
    use crate::chat::{ServerFrame, frame_gen};

    fn split(text: &str) -> Option<ResponseParts<'_>> {
        split_response(text, &DecodeLimits::new())
    }

    /// Whatever the splitter accepts, the full decoder reads as an answer to the same id with
    /// the same `data` (a response, or an ack when `data` holds only a subscription id).
    /// Gives whether the splitter accepted.
    fn agrees_with_decoder(text: &str) -> bool {
        let Some(parts) = split(text) else {
            return false;
        };
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Response(resp)) => {
                assert_eq!(resp.id.as_u64(), Some(parts.id), "{text}");
                assert!(resp.payload.errors.is_none(), "{text}");
                assert!(resp.payload.extensions.is_none(), "{text}");
                let data = resp.payload.data.map(|d| d.get());
                // Some valid JSON (a number past f64's range) reads only raw: both sides
                // then read as `None`, and the text comparison below still holds them equal.
                let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
                assert_eq!(data.map(json), Some(json(parts.data)), "{text}");
                assert_eq!(data, Some(parts.data), "{text}");
            }
            Ok(ServerFrame::SubscriptionAck(ack)) => {
                assert_eq!(ack.id.as_u64(), Some(parts.id), "{text}");
                let data: serde_json::Value = serde_json::from_str(parts.data).expect("valid");
                assert_eq!(data["subscription_id"], *ack.subscription_id, "{text}");
            }
            Ok(other) => panic!("split a {} frame as a response: {text}", other.kind()),
            Err(_) => assert!(
                serde_json::from_str::<serde_json::Value>(parts.data).is_err(),
                "the decoder refused a frame whose data is valid: {text}"
            ),
        }
        true
    }

    #[test]
    fn splits_the_recorded_responses() {
        let departments = server_frame("response_departments.json");
        let parts = split(&departments).expect("plain response");
        assert_eq!(parts.id, 5);
        assert!(parts.data.starts_with(r#"{"departments""#));
        let ack = server_frame("subscription_ack.json");
        let ack = split(&ack).expect("an ack has the plain shape");
        assert_eq!(ack.id, 456);
        // A string id (the samples' own requests use them) goes to the full decoder.
        assert_eq!(
            split(&server_frame("response_update_agent_status.json")),
            None
        );
        assert_eq!(split(&server_frame("response_errors_all_names.json")), None);
    }

    #[test]
    fn agrees_with_the_decoder_on_every_server_fixture() {
        let split_some = count_server_frames(|text| {
            agrees_with_decoder(text);
            split(text).is_some()
        });
        assert!(split_some >= 2, "the numbered response and the ack split");
    }

    #[test]
    fn handles_any_key_order_whitespace_and_tricky_strings() {
        let text = " {\n \"payload\" : { \"data\" :{\"t\":\"} ] { [ \\\" \\\\\"}} ,\"id\": 18446744073709551615 }\r\n";
        let parts = split(text).expect("plain response");
        assert_eq!(parts.id, u64::MAX);
        assert_eq!(parts.data, r#"{"t":"} ] { [ \" \\"}"#);
        agrees_with_decoder(text);
    }

    #[test]
    fn leaves_every_other_shape_to_the_decoder() {
        for text in [
            r#"{"id":1,"payload":{"data":{},"errors":[]}}"#,
            r#"{"id":1,"payload":{"errors":[{"message":"x"}]}}"#,
            r#"{"id":1,"payload":{"data":{},"extensions":{}}}"#,
            r#"{"id":1,"payload":{"data":null}}"#,
            r#"{"id":1,"payload":{"data":[]}}"#,
            r#"{"id":1,"payload":{}}"#,
            r#"{"id":1,"payload":{"data":{},"data":{}}}"#,
            r#"{"id":1,"errorCode":400,"payload":{"data":{}}}"#,
            r#"{"id":1,"error_code":400,"payload":{"data":{}}}"#,
            r#"{"id":1,"error_code":null,"payload":{"data":{}}}"#,
            r#"{"id":1,"payload":{"body":"unavailable"}}"#,
            r#"{"sig":"DATA","id":1,"payload":{"data":{}}}"#,
            r#"{"id":"1","payload":{"data":{}}}"#,
            r#"{"id":01,"payload":{"data":{}}}"#,
            r#"{"id":-1,"payload":{"data":{}}}"#,
            r#"{"id":1.0,"payload":{"data":{}}}"#,
            r#"{"id":1e2,"payload":{"data":{}}}"#,
            r#"{"id":18446744073709551616,"payload":{"data":{}}}"#,
            r#"{"id":1,"id":2,"payload":{"data":{}}}"#,
            r#"{"id":1}"#,
            r#"{"payload":{"data":{}}}"#,
            r#"{"id":1,"payload":{"data":{}}} x"#,
            r#"{"id":1,"payload":{"data":{}},}"#,
            r#"{"i\u0064":1,"payload":{"data":{}}}"#,
            r#"{"id":1,"payload":{"data":{"a":"}}}"#,
            "",
            "{",
        ] {
            assert_eq!(split(text), None, "{text}");
        }
    }

    #[test]
    fn leaves_invalid_data_to_the_parse_that_follows() {
        let text = r#"{"id":3,"payload":{"data":{"a":tru}}}"#;
        let parts = split(text).expect("outline is fine");
        assert_eq!(parts.data, r#"{"a":tru}"#);
        assert!(ServerFrame::decode(text).is_err());
        agrees_with_decoder(text);
    }

    #[test]
    fn refuses_frames_over_the_cap() {
        let frame = r#"{"id":1,"payload":{"data":{}}}"#;
        assert_eq!(
            split_response(frame, &DecodeLimits::new().with_max_frame_bytes(10)),
            None
        );
    }

    #[test]
    fn agrees_with_the_decoder_on_generated_frames() {
        frame_gen::run(frame_gen::responses(), agrees_with_decoder);
    }
}

use super::inbound::payload_error;
use super::outbox::{batch_more, encode_request};
use super::*;
use zd_wire::chat::{ErrorName, GraphQlRequest, Request, ServerFrame};

fn wire(id: u64, payload: &Payload) -> String {
    let vars = payload.variables.as_deref();
    let mut request = GraphQlRequest::new(&*payload.query.text);
    if let Some(vars) = vars {
        request = request.variables(vars);
    }
    if let Some(name) = &payload.operation_json {
        let name: String = serde_json::from_str(name).unwrap();
        request = request.operation_name(name);
    }
    Request {
        id: id.into(),
        payload: request,
    }
    .encode()
    .unwrap()
}

/// The error an error or DATA error frame reports, as the driver builds it.
fn frame_error(text: &str) -> Error {
    match ServerFrame::decode(text) {
        Ok(ServerFrame::Error(e)) => payload_error(e.error_code, &e.payload),
        Ok(ServerFrame::DataError(e)) => payload_error(e.error_code, &e.payload),
        other => panic!("not an error frame: {other:?}: {text}"),
    }
}

#[test]
fn an_error_frame_with_an_unusable_code_is_a_retryable_failure() {
    for code in [
        r#""503 Service Unavailable""#,
        "true",
        r#"{"code":503}"#,
        r#"" 429""#,
        r#""E503""#,
        r#""-1""#,
        "-1",
        "70000",
    ] {
        for payload in [
            r#"{"body":"unavailable"}"#,
            r#"{"errors":["upstream unavailable"]}"#,
            r#"{"errors":[{"message":"m","name":"SOMETHING_NEW"}]}"#,
            r#"{"what":1}"#,
        ] {
            let request = format!(r#"{{"errorCode":{code},"id":5,"payload":{payload}}}"#);
            let data = format!(
                r#"{{"sig":"DATA","subscription_id":"s","payload":{payload},"error_code":{code}}}"#
            );
            for text in [request, data] {
                let e = frame_error(&text);
                assert!(
                    matches!(e.kind(), ErrorKind::Protocol { status: 0, .. }),
                    "{text}: {e:?}"
                );
                assert!(e.is_retryable(), "{text}: {e:?}");
            }
        }
    }
    // A documented name still decides, whatever the code.
    let e = frame_error(
        r#"{"errorCode":"x","id":5,"payload":{"errors":[{"name":"UNAUTHORIZED","message":"m"}]}}"#,
    );
    assert!(matches!(e.kind(), ErrorKind::Service(_)), "{e:?}");
    assert!(!e.is_retryable());
}

#[test]
fn errors_without_a_documented_name_are_retried_by_the_frame_status() {
    for errors in [
        r#"["upstream unavailable"]"#,
        r#"[{"message":null}]"#,
        "[null]",
        r#"[{"message":"busy"}]"#,
        r#"[{"name":"NOT_DOCUMENTED","message":"busy"}]"#,
        r#"[{"name":7}]"#,
    ] {
        for status in [503, 500, 429] {
            let text =
                format!(r#"{{"errorCode":{status},"id":4,"payload":{{"errors":{errors}}}}}"#);
            let e = frame_error(&text);
            assert!(
                matches!(e.kind(), ErrorKind::Protocol { status: s, .. } if *s == status),
                "{text}: {e:?}"
            );
            assert!(e.is_retryable(), "{text}: {e:?}");
        }
        let text = format!(r#"{{"errorCode":400,"id":4,"payload":{{"errors":{errors}}}}}"#);
        let e = frame_error(&text);
        assert!(matches!(e.kind(), ErrorKind::Service(_)), "{text}: {e:?}");
        assert!(!e.is_retryable(), "{text}: {e:?}");
    }
    let e =
        frame_error(r#"{"errorCode":503,"id":4,"payload":{"errors":["upstream unavailable"]}}"#);
    assert!(e.to_string().contains("upstream unavailable"), "{e}");
    // A documented name decides, as the API says.
    let named = |name: &str| {
        frame_error(&format!(
            r#"{{"errorCode":503,"id":4,"payload":{{"errors":[null,{{"name":"{name}","message":"m"}}]}}}}"#
        ))
    };
    let e = named("UNAUTHORIZED");
    assert_eq!(e.error_name(), Some(&ErrorName::Unauthorized));
    assert!(!e.is_retryable());
    let e = named("RATE_LIMITED");
    assert_eq!(e.error_name(), Some(&ErrorName::RateLimited));
    assert!(e.is_retryable());
}

/// `send_next` as the loop runs it for requests that come one at a time: the select takes
/// the first slot, the batch takes one per further frame waiting.
async fn send_lone_requests(limiter: &RequestLimiter, n: usize) {
    let mut outbox = VecDeque::new();
    for id in 0..n {
        outbox.push_back(id as u64);
        limiter.acquire().await;
        outbox.pop_front();
        assert!(!batch_more(&outbox, Some(limiter)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_lone_requests_after_idle_goes_out_at_once() {
    // 100 a second: a burst of 10.
    let limiter = RequestLimiter::default();
    let t0 = Instant::now();
    send_lone_requests(&limiter, 10).await;
    assert_eq!(Instant::now(), t0, "a lone request spent a second slot");
    // The burst is spent: the next one waits for the steady rate.
    send_lone_requests(&limiter, 1).await;
    assert!(Instant::now() > t0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_takes_a_slot_per_frame_it_sends() {
    let limiter = RequestLimiter::default();
    let mut outbox: VecDeque<u64> = (0..20).collect();
    limiter.acquire().await;
    outbox.pop_front();
    let mut sent = 1;
    while batch_more(&outbox, Some(&limiter)) {
        outbox.pop_front();
        sent += 1;
    }
    assert_eq!(sent, 10, "the burst, no more");
    assert!(batch_more(&outbox, None), "no limiter, no limit");
    assert!(!batch_more(&VecDeque::new(), None));
}

#[test]
fn request_frames_match_the_wire_encoding() {
    let query =
        QueryText::new("mutation ($m: String!) {\n  sendMessage(msg: $m) { success }\n}\t\"\u{1}é");
    let vars: Arc<RawValue> = Arc::from(RawValue::from_string(r#"{"m":"a\"b"}"#.into()).unwrap());
    let name = Some(Arc::from(r#""Op\"1""#));
    for (variables, operation_json) in [(None, None), (Some(vars), None), (None, name)] {
        let payload = Payload {
            query: query.clone(),
            variables: variables.clone(),
            operation_json,
        };
        for id in [0, 1, 42, u64::MAX] {
            assert_eq!(encode_request(id, &payload), wire(id, &payload));
        }
    }
}

#[test]
fn an_error_payload_of_an_unknown_shape_is_reported_by_its_message_or_its_shape() {
    let body = |text: &str| match frame_error(text).kind() {
        ErrorKind::Protocol { status: 500, body } => body.clone(),
        other => panic!("{other:?}"),
    };
    let said = body(r#"{"errorCode":500,"id":5,"payload":{"message":"upstream gone","n":1}}"#);
    assert_eq!(said, "upstream gone");
    // Anything else it holds may be an echo of what was sent or delivered.
    let echoed = body(
        r#"{"error_code":500,"sig":"DATA","subscription_id":"s","payload":{"data":{"token":"SECRET"}}}"#,
    );
    assert!(!echoed.contains("SECRET"), "{echoed}");
    assert!(echoed.contains("Unknown"), "{echoed}");
    // An array is no object with a `message`, whatever serde would make of it.
    let listed = body(r#"{"errorCode":500,"id":6,"payload":["SECRET"]}"#);
    assert!(!listed.contains("SECRET"), "{listed}");
}

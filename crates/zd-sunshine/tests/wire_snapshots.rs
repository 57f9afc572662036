//! The wire request of every operation (method, path and query, whether the client's
//! credentials go with it, how many values it sends that an error answer must not show, body),
//! built with placeholder arguments, and the decode of a webhook envelope, snapshotted so any
//! change to what goes on the wire shows up in review.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fmt::Write as _;

use serde_json::json;
use zd_sunshine::spec_index;

#[test]
fn every_operation_wire_request() {
    let samples = spec_index::sample_requests().unwrap();
    assert_eq!(samples.len(), 68);
    assert_eq!(samples.len(), zd_sunshine::operations::ALL.len());
    let mut out = String::new();
    for (id, req) in &samples {
        let query = req.query_string();
        let target = if query.is_empty() {
            req.path().to_owned()
        } else {
            format!("{}?{query}", req.path())
        };
        let body = match req.json_body() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None if *id == "UploadAttachment" => "<multipart: a.png, image/png>".to_owned(),
            None => "<no body>".to_owned(),
        };
        assert_eq!(req.operation(), *id);
        let auth = if req.sends_credentials() {
            ""
        } else {
            "<without credentials>\n"
        };
        let hidden = match req.hidden_count() {
            0 => String::new(),
            n => format!("<hides {n} sent values in an error answer>\n"),
        };
        let _ = writeln!(
            out,
            "{id}\n{} {target}\n{auth}{hidden}{body}\n",
            req.method()
        );
    }
    insta::assert_snapshot!(out);
}

#[test]
fn webhook_envelope_decode() {
    let body = json!({
        "app": {"id": "app1"},
        "webhook": {"id": "wh1", "version": "v2"},
        "events": [
            {
                "id": "ev1",
                "createdAt": "2026-01-02T03:04:05.000Z",
                "type": "conversation:message",
                "payload": {
                    "conversation": {"id": "c1", "type": "personal"},
                    "message": {
                        "id": "m1",
                        "received": "2026-01-02T03:04:05.000Z",
                        "author": {"type": "user", "userId": "u1", "displayName": "Ann"},
                        "content": {"type": "text", "text": "hello"},
                        "source": {"type": "web"}
                    }
                }
            },
            {
                "id": "ev2",
                "createdAt": "2026-01-02T03:04:06.000Z",
                "type": "conversation:read",
                "payload": {
                    "conversation": {"id": "c1"},
                    "activity": {"type": "conversation:read", "author": {"type": "business"}}
                }
            },
            {"id": "ev3", "type": "conversation:fromTheFuture", "payload": {"x": 1}}
        ]
    });
    let envelope = zd_sunshine::webhooks::parse(body.to_string().as_bytes()).unwrap();
    insta::assert_debug_snapshot!(envelope);
}

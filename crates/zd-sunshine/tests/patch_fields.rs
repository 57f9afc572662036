//! Nullable fields of request bodies are three-state: left out keeps the value, `null` unsets
//! it, a value sets it. The wire shapes are snapshotted.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use zd_sunshine::Patch;
use zd_sunshine::models::{ConversationUpdateBody, CustomUpdate, IntegrationUpdate};
use zd_sunshine::operations::{UpdateConversation, UpdateIntegration};

fn wire(req: &zd_sunshine::ApiRequest) -> String {
    format!(
        "{} {}\n{}",
        req.method(),
        req.path(),
        String::from_utf8_lossy(req.json_body().unwrap_or_default())
    )
}

#[test]
fn update_bodies_send_null_to_unset_and_leave_out_unset_fields() {
    let body = ConversationUpdateBody::default()
        .display_name(Patch::Null)
        .description("Billing".to_owned())
        .metadata(Patch::Null);
    assert!(body.icon_url.is_unset());
    let conv = UpdateConversation::new("app", "c1", body)
        .to_request()
        .unwrap();

    let custom = CustomUpdate::default().display_name(Patch::Null);
    let integration = IntegrationUpdate::default()
        .display_name(Patch::Null)
        .default_responder_id("resp1".to_owned());
    let integ = UpdateIntegration::new("app", "i1", integration)
        .to_request()
        .unwrap();

    insta::assert_snapshot!(format!(
        "{}\n\n{}\n\nCustomUpdate {}\n\nnothing set {}",
        wire(&conv),
        wire(&integ),
        serde_json::to_string(&custom).unwrap(),
        serde_json::to_string(&ConversationUpdateBody::default()).unwrap(),
    ));
}

#[test]
fn patch_fields_decode_all_three_states() {
    let body: ConversationUpdateBody =
        serde_json::from_value(json!({"displayName": null, "description": "d"})).unwrap();
    assert_eq!(body.display_name, Patch::Null);
    assert_eq!(body.description, Patch::Value("d".to_owned()));
    assert_eq!(body.icon_url, Patch::Unset);
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"displayName": null, "description": "d"})
    );
}

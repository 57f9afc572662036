use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};

use super::*;

fn id() -> cynic::Id {
    cynic::Id::new("c1")
}

#[test]
fn query_texts() {
    insta::assert_snapshot!("agents", AgentsQuery::build(PageVariables::default()).query);
    insta::assert_snapshot!(
        "departments",
        DepartmentsQuery::build(PageVariables::default()).query
    );
    insta::assert_snapshot!(
        "channels",
        ChannelsQuery::build(PageVariables::default()).query
    );
}

#[test]
fn subscription_texts() {
    insta::assert_snapshot!("message", MessageSubscription::build(()).query());
    insta::assert_snapshot!(
        "chat_activity",
        ChatActivitySubscription::build(ChatActivityVariables::default()).query()
    );
}

#[test]
fn mutation_texts() {
    let start = StartAgentSession::build(StartAgentSessionVariables {
        access_token: "t".into(),
    });
    insta::assert_snapshot!("start_agent_session", start.query);
    insta::assert_snapshot!("stop_agent_session", StopAgentSession::build(()).query);
    let tags = AddTags::build(AddTagsVariables {
        channel_id: id(),
        tags: vec![],
    });
    insta::assert_snapshot!("add_tags", tags.query);
    let invite = InviteAgent::build(InviteAgentVariables {
        agent_id: id(),
        channel_id: id(),
        leave: None,
    });
    insta::assert_snapshot!("invite_agent", invite.query);
    insta::assert_snapshot!(
        "leave_channel",
        LeaveChannel::build(ChannelVariables { channel_id: id() }).query
    );
    insta::assert_snapshot!(
        "listen_visitor_channel",
        ListenVisitorChannel::build(ChannelVariables { channel_id: id() }).query
    );
    let send = SendMessage::build(SendMessageVariables {
        backoff: None,
        channel_id: id(),
        msg: "m".into(),
        msg_id: None,
        options: None,
    });
    insta::assert_snapshot!("send_message", send.query);
    let transfer = TransferToDepartment::build(TransferToDepartmentVariables {
        channel_id: id(),
        department_id: id(),
        leave: None,
    });
    insta::assert_snapshot!("transfer_to_department", transfer.query);
    let status = UpdateAgentStatus::build(UpdateAgentStatusVariables {
        status: AgentStatus::Online,
    });
    insta::assert_snapshot!("update_agent_status", status.query);
    let typing = SetTypingIndicator::build(SetTypingIndicatorVariables {
        backoff: None,
        channel_id: id(),
        typing: true,
    });
    insta::assert_snapshot!("set_typing_indicator", typing.query);
    let qr = SendQuickReplies::build(SendQuickRepliesVariables {
        channel_id: id(),
        msg: "m".into(),
        quick_replies: vec![],
        fallback: None,
    });
    insta::assert_snapshot!("send_quick_replies", qr.query);
    let bt = SendButtonTemplate::build(SendButtonTemplateVariables {
        channel_id: id(),
        msg: "m".into(),
        buttons: vec![],
        fallback: None,
    });
    insta::assert_snapshot!("send_button_template", bt.query);
    let panel = SendPanelTemplate::build(SendPanelTemplateVariables {
        channel_id: id(),
        panel: crate::structured::Panel::new("h"),
        buttons: None,
        fallback: None,
    });
    insta::assert_snapshot!("send_panel_template", panel.query);
    let carousel = SendPanelTemplateCarousel::build(SendPanelTemplateCarouselVariables {
        channel_id: id(),
        items: vec![],
        fallback: None,
    });
    insta::assert_snapshot!("send_panel_template_carousel", carousel.query);
    let list = SendListTemplate::build(SendListTemplateVariables {
        channel_id: id(),
        items: vec![],
        buttons: None,
        fallback: None,
    });
    insta::assert_snapshot!("send_list_template", list.query);
}

#[test]
fn structured_variables_serialize_as_the_service_expects() {
    use crate::structured::{Button, Fallback};
    let vars = SendButtonTemplateVariables {
        channel_id: id(),
        msg: "m".into(),
        buttons: vec![
            Button::reply("Yes", "yes"),
            Button::link("Docs", "https://example.com"),
        ],
        fallback: Some(Fallback::new("m").option("Yes")),
    };
    insta::assert_json_snapshot!(
        "button_template_variables",
        serde_json::to_value(&vars).unwrap()
    );
}

#[test]
fn catch_up_text() {
    let op = CatchUpQuery::build(CatchUpVariables {
        channels: Some(50),
        logs: Some(50),
    });
    insta::assert_snapshot!("catch_up", op.query);
}

#[test]
fn graphql_subscriptions_text() {
    insta::assert_snapshot!(
        "graphql_subscriptions",
        GraphQlSubscriptionsQuery::build(()).query
    );
}

#[test]
fn an_unknown_agent_status_decodes_and_known_ones_are_sent_as_before() {
    let page = r#"{"agents":{"edges":[
        {"node":{"id":"a1","display_name":null,"name":"A","status":"BUSY"},"cursor":"1"},
        {"node":{"id":"a2","display_name":null,"name":"B","status":"AWAY"},"cursor":"2"}],
        "pageInfo":{"hasNextPage":false,"endCursor":null}}}"#;
    let page: AgentsQuery = serde_json::from_str(page).expect("an unknown status decodes");
    let (agents, _) = page.agents.expect("a page").into_page();
    let statuses: Vec<_> = agents.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [Some(AgentStatus::Unknown), Some(AgentStatus::Away)]
    );
    for (status, wire) in [
        (AgentStatus::Online, "ONLINE"),
        (AgentStatus::Away, "AWAY"),
        (AgentStatus::Invisible, "INVISIBLE"),
        (AgentStatus::Offline, "OFFLINE"),
    ] {
        assert_eq!(serde_json::to_value(status).expect("known"), wire);
    }
    // Its name on the wire is not kept, so it cannot be sent back.
    assert!(serde_json::to_value(AgentStatus::Unknown).is_err());
}

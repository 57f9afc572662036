//! Chat state through the GraphQL mutations: structured messages and their limits, tags,
//! msg_id, transfers, invitations, listening, leaving, typing.

use serde_json::{Value, json};

use crate::common::*;

fn quick_replies(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{ action: {{ value: \"value {i}\" }}, text: \"Option {i}\" }}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn buttons(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{ action: {{ type: QUICK_REPLY_ACTION, value: \"b{i}\" }}, text: \"Button {i}\" }}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn panel(i: usize) -> String {
    format!(
        "{{ heading: \"Item {i}\", paragraph: \"About {i}\", image_url: \"https://example.com/{i}.png\", action: {{ value: \"https://example.com/{i}\" }} }}"
    )
}

async fn mutate(bot: &mut Agent, m: &str) -> Value {
    bot.request(&format!("mutation {{ {m} }}")).await
}

#[tokio::test]
async fn structured_messages_are_validated_and_delivered_with_fallback() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let ch = served_channel(&emu, &mut bot).await;

    let ok = [
        format!("sendQuickReplies(channel_id: \"{ch}\", msg: \"Pick one\", quick_replies: [{}], fallback: {{ msg: \"Pick one\", options: [\"Option 0\"] }}) {{ success }}", quick_replies(11)),
        format!("sendButtonTemplate(channel_id: \"{ch}\", msg: \"Buttons\", buttons: [{}]) {{ success }}", buttons(3)),
        format!("sendPanelTemplate(channel_id: \"{ch}\", panel: {}, buttons: [{}]) {{ success }}", panel(0), buttons(1)),
        format!("sendPanelTemplateCarousel(channel_id: \"{ch}\", items: [{}]) {{ success }}",
            (0..10).map(|i| format!("{{ panel: {}, buttons: [{}] }}", panel(i), buttons(1))).collect::<Vec<_>>().join(", ")),
        format!("sendListTemplate(channel_id: \"{ch}\", items: [{}], buttons: [{{ text: \"More\", action: {{ type: LINK_ACTION, value: \"https://example.com\" }} }}]) {{ success }}",
            (0..4).map(|i| format!("{{ heading: \"L{i}\", paragraph: \"P{i}\", action: {{ value: \"https://example.com/l{i}\" }} }}")).collect::<Vec<_>>().join(", ")),
    ];
    for m in &ok {
        let resp = mutate(&mut bot, m).await;
        let data = resp["payload"]["data"]
            .as_object()
            .unwrap_or_else(|| panic!("{resp}"));
        assert_eq!(data.values().next().unwrap()["success"], true, "{resp}");
    }

    let too_many = [
        format!(
            "sendQuickReplies(channel_id: \"{ch}\", msg: \"x\", quick_replies: [{}]) {{ success }}",
            quick_replies(12)
        ),
        format!(
            "sendButtonTemplate(channel_id: \"{ch}\", msg: \"x\", buttons: [{}]) {{ success }}",
            buttons(4)
        ),
        format!("sendButtonTemplate(channel_id: \"{ch}\", msg: \"x\", buttons: []) {{ success }}"),
        format!(
            "sendPanelTemplateCarousel(channel_id: \"{ch}\", items: [{{ panel: {} }}]) {{ success }}",
            panel(0)
        ),
        format!(
            "sendPanelTemplateCarousel(channel_id: \"{ch}\", items: [{}]) {{ success }}",
            (0..11)
                .map(|i| format!("{{ panel: {} }}", panel(i)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "sendListTemplate(channel_id: \"{ch}\", items: [{{ heading: \"a\", paragraph: \"b\", action: {{ value: \"https://e\" }} }}]) {{ success }}"
        ),
        format!(
            "sendListTemplate(channel_id: \"{ch}\", items: [{}]) {{ success }}",
            (0..5)
                .map(|i| format!(
                    "{{ heading: \"L{i}\", paragraph: \"P\", action: {{ value: \"https://e\" }} }}"
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "sendListTemplate(channel_id: \"{ch}\", items: [{}], buttons: [{}]) {{ success }}",
            (0..2)
                .map(|i| format!(
                    "{{ heading: \"L{i}\", paragraph: \"P\", action: {{ value: \"https://e\" }} }}"
                ))
                .collect::<Vec<_>>()
                .join(", "),
            buttons(2)
        ),
    ];
    for m in &too_many {
        let resp = mutate(&mut bot, m).await;
        assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR", "{m} -> {resp}");
    }

    let t = transcript(&emu, &ch).await;
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["structured"]["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "QUICK_REPLIES",
            "BUTTON_TEMPLATE",
            "PANEL_TEMPLATE",
            "PANEL_TEMPLATE_CAROUSEL",
            "LIST_TEMPLATE"
        ]
    );
    let qr = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["structured"]["type"] == "QUICK_REPLIES")
        .unwrap();
    assert_eq!(
        qr["fallback"],
        json!({ "msg": "Pick one", "options": ["Option 0"] })
    );
    let buttons_entry = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["structured"]["type"] == "BUTTON_TEMPLATE")
        .unwrap();
    insta::assert_json_snapshot!("button_template_entry", buttons_entry, {
        ".id" => "[id]", ".timestamp" => "[ts]", ".from.key" => "[agent]"
    });

    // The visitor clicks a quick reply: its value comes back as a visitor message.
    let chosen = control(
        &emu,
        "/visitors/choose",
        json!({ "channel_id": ch, "label": "Option 3" }),
    )
    .await;
    assert_eq!(chosen["sent"], true);
    let link = control(
        &emu,
        "/visitors/choose",
        json!({ "channel_id": ch, "label": "More" }),
    )
    .await;
    assert_eq!(link["opened"], "https://example.com");
    let t = transcript(&emu, &ch).await;
    let last = t["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], "value 3");
    assert_eq!(last["from"]["kind"], "visitor");
}

#[tokio::test]
async fn tags_msg_id_typing_and_visitor_fields() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let ch = served_channel(&emu, &mut bot).await;
    let resp = mutate(
        &mut bot,
        &format!(
            "addTags(channel_id: \"{ch}\", tags: [\"vip\", \"order-42\", \"a_b\"]) {{ success }}"
        ),
    )
    .await;
    assert_eq!(
        resp["payload"]["data"]["addTags"]["success"], true,
        "{resp}"
    );
    let resp = mutate(
        &mut bot,
        &format!("addTags(channel_id: \"{ch}\", tags: [\"bad tag!\"]) {{ success }}"),
    )
    .await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");

    for _ in 0..2 {
        let resp = mutate(
            &mut bot,
            &format!(
                "sendMessage(channel_id: \"{ch}\", msg: \"once\", msg_id: \"same\") {{ success }}"
            ),
        )
        .await;
        assert_eq!(resp["payload"]["data"]["sendMessage"]["success"], true);
    }
    let resp = mutate(
        &mut bot,
        &format!("setTypingIndicator(channel_id: \"{ch}\", typing: true) {{ success }}"),
    )
    .await;
    assert_eq!(
        resp["payload"]["data"]["setTypingIndicator"]["success"],
        true
    );

    let t = transcript(&emu, &ch).await;
    let once = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"] == "once")
        .count();
    assert_eq!(once, 1, "a repeated msg_id creates one message");
    assert_eq!(t["agents_typing"], json!(["Support Bot"]));
    assert_eq!(t["tags"], json!(["vip", "order-42", "a_b"]));
    assert_eq!(t["state"], "ONGOING");

    let resp = bot
        .request("{ channels { edges { node { id ... on VisitorChannel { state visitor { display_name current_tags } agents { edges { node { name } } } logs(last: 1) { edges { node { __typename ... on Message { content } } } } } } } } }")
        .await;
    insta::assert_json_snapshot!("channels_query", resp, { ".payload.data.channels.edges[].node.id" => "[channel]" });
}

#[tokio::test]
async fn transfer_invite_listen_and_leave() {
    let emu = zd_emulator::Emulator::builder()
        .limits(relaxed_starts())
        .start()
        .await
        .unwrap();
    let account = emu.account();
    let sales = account
        .departments
        .iter()
        .find(|d| d.name == "Sales")
        .unwrap()
        .id
        .clone();
    let alice = account
        .agents
        .iter()
        .find(|a| a.name == "Alice")
        .unwrap()
        .id
        .clone();
    let mut bot = Agent::connect(&emu, "Bot").await;
    let mut bob = Agent::connect(&emu, "Bob").await;
    bob.go_online().await;
    let bob_sub = bob.subscribe(MESSAGE_SUB).await;
    let ch = served_channel(&emu, &mut bot).await;

    let resp = mutate(&mut bot, &format!("transferToDepartment(channel_id: \"{ch}\", department_id: \"{sales}\", leave: true) {{ success }}")).await;
    assert_eq!(
        resp["payload"]["data"]["transferToDepartment"]["success"], true,
        "{resp}"
    );
    let t = transcript(&emu, &ch).await;
    assert_eq!(t["department"], "Sales");
    assert_eq!(t["state"], "INCOMING");
    // Alice (Support only) does not see the unserved Sales chat, so she cannot move it.
    let mut alice_bot = Agent::connect(&emu, "Alice").await;
    let support = account
        .departments
        .iter()
        .find(|d| d.name == "Support")
        .unwrap()
        .id
        .clone();
    let resp = mutate(
        &mut alice_bot,
        &format!(
            "transferToDepartment(channel_id: \"{ch}\", department_id: \"{support}\") {{ success }}"
        ),
    )
    .await;
    assert_ne!(
        resp["payload"]["data"]["transferToDepartment"]["success"], true,
        "{resp}"
    );
    assert!(
        resp.to_string()
            .contains("agent is not serving this channel"),
        "{resp}"
    );
    assert_eq!(transcript(&emu, &ch).await["department"], "Sales");
    // Bob (Sales, online) now sees the unserved chat.
    visitor_says(&emu, &ch, "anyone in sales?").await;
    let data = bob.data(&bob_sub).await;
    assert_eq!(
        data["payload"]["data"]["message"]["node"]["content"],
        "anyone in sales?"
    );

    // Bob serves it and invites Alice, leaving.
    let resp = mutate(
        &mut bob,
        &format!("sendMessage(channel_id: \"{ch}\", msg: \"Bob here\") {{ success }}"),
    )
    .await;
    assert_eq!(resp["payload"]["data"]["sendMessage"]["success"], true);
    let resp = mutate(
        &mut bot,
        &format!("sendMessage(backoff: true, channel_id: \"{ch}\", msg: \"me too\") {{ success }}"),
    )
    .await;
    assert_eq!(
        resp["payload"]["data"]["sendMessage"]["success"], false,
        "backoff keeps the bot out"
    );
    let resp = mutate(
        &mut bob,
        &format!(
            "inviteAgent(agent_id: \"{alice}\", channel_id: \"{ch}\", leave: true) {{ success }}"
        ),
    )
    .await;
    assert_eq!(
        resp["payload"]["data"]["inviteAgent"]["success"], true,
        "{resp}"
    );
    let channel = emu.control().state().channels().pop().unwrap();
    let alice_raw = account
        .agents
        .iter()
        .find(|a| a.name == "Alice")
        .unwrap()
        .raw_id
        .clone();
    assert_eq!(channel.members, vec![alice_raw]);

    // The bot listens without joining, then stops listening.
    let resp = mutate(
        &mut bot,
        &format!("listenVisitorChannel(channel_id: \"{ch}\") {{ success }}"),
    )
    .await;
    assert_eq!(
        resp["payload"]["data"]["listenVisitorChannel"]["success"],
        true
    );
    let resp = bot.request("{ channels { edges { node { id } } } }").await;
    assert_eq!(
        resp["payload"]["data"]["channels"]["edges"][0]["node"]["id"],
        json!(ch)
    );
    let resp = mutate(
        &mut bot,
        &format!("leaveChannel(channel_id: \"{ch}\") {{ success }}"),
    )
    .await;
    assert_eq!(resp["payload"]["data"]["leaveChannel"]["success"], true);
    let resp = mutate(
        &mut bot,
        &format!("leaveChannel(channel_id: \"{ch}\") {{ success }}"),
    )
    .await;
    assert_eq!(error_name(&resp), "GRAPHQL_EXEC_ERROR");

    // The visitor leaves while Alice serves: CLOSING; Alice leaves: CLOSED.
    control(&emu, "/visitors/leave", json!({ "channel_id": ch })).await;
    assert_eq!(transcript(&emu, &ch).await["state"], "CLOSING");
    emu.control()
        .state()
        .leave_channel(&channel.members[0], &channel.key)
        .unwrap();
    assert_eq!(transcript(&emu, &ch).await["state"], "CLOSED");
    let ch_state = emu.control().state().channel(&channel.key).unwrap();
    assert!(ch_state.served_at.is_some() && ch_state.first_reply_at.is_some());
    assert!(ch_state.left_at.is_some() && ch_state.closed_at.is_some());
}

#[tokio::test]
async fn ids_are_opaque_base64_pairs() {
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    let resp = bot
        .request("{ agents { edges { node { id raw_id } } } }")
        .await;
    let node = &resp["payload"]["data"]["agents"]["edges"][0]["node"];
    let id = node["id"].as_str().unwrap();
    assert!(id.parse::<u64>().is_err());
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(id)
        .unwrap();
    let pairs: Vec<(String, String)> = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        pairs,
        vec![
            (
                "localId".to_owned(),
                node["raw_id"].as_str().unwrap().to_owned()
            ),
            ("type".to_owned(), "AGENT".to_owned())
        ]
    );
}

/// Assigned routing with a bot on the Conversations API: the documents say it "only works if
/// the agent using the Conversations API is the only agent in the department".
#[tokio::test]
async fn assigned_routing_gives_an_api_agent_only_the_chats_of_a_department_it_is_alone_in() {
    use zd_emulator::account::{AccountConfig, AgentConfig, DepartmentConfig, Routing};
    use zd_emulator::state::{AgentStatus, Arrival, ChannelState};

    let mut account = AccountConfig {
        routing: Routing::Assigned,
        ..AccountConfig::demo()
    };
    // A department whose only agent is the Bot.
    account.departments.push(DepartmentConfig {
        name: "Bots".into(),
        status: zd_emulator::state::DepartmentStatus::Online,
    });
    let bot_config: &mut AgentConfig = account.agents.iter_mut().find(|a| a.name == "Bot").unwrap();
    bot_config.departments.push("Bots".into());
    let emu = zd_emulator::Emulator::builder()
        .account(account)
        .limits(relaxed_starts())
        .start()
        .await
        .unwrap();
    let state = emu.control().state().clone();
    let raw = |name: &str| {
        let info = emu.account();
        info.agents
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .raw_id
            .clone()
    };
    let (bot, alice) = (raw("Bot"), raw("Alice"));
    let arrive = |department: &str| {
        state
            .visitor_arrive(Arrival {
                department: Some(department.into()),
                ..Arrival::default()
            })
            .unwrap()
            .key
    };
    let routed = |channel: &str| {
        let c = state.channel_meta(channel).unwrap();
        (c.state, c.assigned_to)
    };

    // Before the Bot uses the API it is an agent like any other, and is given a Support chat.
    state.set_agent_status(&bot, AgentStatus::Online).unwrap();
    let first = arrive("Support");
    assert_eq!(routed(&first), (ChannelState::Assigned, Some(bot.clone())));

    // With a Conversations API session it shares Support with Alice: that chat is taken back,
    // and with Alice offline it waits; new Support chats wait too. A Bots chat is its own.
    let (status, body) = start_session(&emu, &token(&emu, "Bot")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(routed(&first), (ChannelState::Incoming, None));
    let second = arrive("Support");
    assert_eq!(routed(&second), (ChannelState::Incoming, None));
    let own = arrive("Bots");
    assert_eq!(routed(&own), (ChannelState::Assigned, Some(bot.clone())));

    // Alice comes online: the Support chats go to her.
    state.set_agent_status(&alice, AgentStatus::Online).unwrap();
    assert_eq!(
        routed(&first),
        (ChannelState::Assigned, Some(alice.clone()))
    );
    assert_eq!(
        routed(&second),
        (ChannelState::Assigned, Some(alice.clone()))
    );

    // The Bot may still serve a waiting Support chat itself, by joining it.
    state
        .set_agent_status(&alice, AgentStatus::Offline)
        .unwrap();
    let mut agent = Agent::connect(&emu, "Bot").await;
    let third = emu
        .control()
        .visitor_arrive(Arrival {
            department: Some("Support".into()),
            ..Arrival::default()
        })
        .unwrap()
        .channel_id;
    let newest = || state.channels().last().unwrap().clone();
    assert_eq!(
        (newest().state, newest().assigned_to),
        (ChannelState::Incoming, None)
    );
    let resp = agent
        .request(&format!(
            "mutation {{ sendMessage(channel_id: \"{third}\", msg: \"Hi\") {{ success }} }}"
        ))
        .await;
    assert_eq!(
        resp["payload"]["data"]["sendMessage"]["success"], true,
        "{resp}"
    );
    assert_eq!(newest().state, ChannelState::Ongoing);
    assert_eq!(newest().members, [bot]);
}

/// A chat past its retained length keeps the cursors of its whole log, so a client paging with
/// `after` sees every new entry.
#[tokio::test]
async fn log_cursors_stay_put_when_old_entries_fall_out() {
    use zd_emulator::state::Retention;

    let emu = zd_emulator::Emulator::builder()
        .retention(Retention {
            log_entries_per_chat: 3,
            ..Retention::default()
        })
        .start()
        .await
        .unwrap();
    let mut bot = Agent::connect(&emu, "Bot").await;
    let channel = served_channel(&emu, &mut bot).await;
    let page = |after: Option<&str>| {
        let after = after.map_or(String::new(), |c| format!("after: \"{c}\", "));
        format!(
            "{{ channels {{ edges {{ node {{ ... on VisitorChannel {{ logs({after}first: 10) {{ edges {{ cursor node {{ __typename ... on Message {{ content }} }} }} }} }} }} }} }} }}"
        )
    };
    let entries = |resp: &Value| -> Vec<(String, Value)> {
        resp["payload"]["data"]["channels"]["edges"][0]["node"]["logs"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{resp}"))
            .iter()
            .map(|e| {
                (
                    e["cursor"].as_str().unwrap().to_owned(),
                    e["node"]["content"].clone(),
                )
            })
            .collect()
    };
    // The visitor's join, the Bot's join and "Hi Ann": all three kept.
    let first = entries(&bot.request(&page(None)).await);
    assert_eq!(first.len(), 3);
    let last_cursor = first[2].0.clone();
    for text in ["one", "two"] {
        visitor_says(&emu, &channel, text).await;
    }
    // Two entries fell out; the cursor of "Hi Ann" still leads to exactly what came after it.
    let next = entries(&bot.request(&page(Some(&last_cursor))).await);
    let texts: Vec<&Value> = next.iter().map(|(_, t)| t).collect();
    assert_eq!(texts, [&json!("one"), &json!("two")]);
    let whole = entries(&bot.request(&page(None)).await);
    assert_eq!(whole[0], first[2]);
}

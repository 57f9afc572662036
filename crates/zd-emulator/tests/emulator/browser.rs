//! The visitor page in a real headless browser.

use std::process::Command;

use serde_json::json;

use crate::common::*;

fn chromium() -> Option<String> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(str::to_owned)
}

#[tokio::test]
async fn page_serves_without_a_browser() {
    let emu = emulator().await;
    let (status, html) = get_text(&format!("{}/", emu.base_url())).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("\"departments\":[\"Support\",\"Sales\"]")
            && html.contains("\"transcript\":null"),
        "{html}"
    );
}

/// Framed by another site, the page's buttons could be clicked through an overlay (its
/// requests come from its own origin): browsers are told not to frame it elsewhere.
#[tokio::test]
async fn the_page_may_not_be_framed_by_other_sites() {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let emu = emulator().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let page = client
        .get(format!("{}/", emu.base_url()).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some("frame-ancestors 'self'")
    );
    assert_eq!(header("x-frame-options").as_deref(), Some("SAMEORIGIN"));
}

#[tokio::test]
async fn headless_browser_renders_structured_messages() {
    let Some(browser) = chromium() else {
        println!(
            "SKIPPED headless_browser_renders_structured_messages: no chromium binary on PATH (install Debian's chromium)"
        );
        return;
    };
    let emu = emulator().await;
    let mut bot = Agent::connect(&emu, "Bot").await;
    bot.go_online().await;
    let ch = visitor(&emu, "Browser Visitor").await;
    let mutations = [
        format!("sendMessage(channel_id: \"{ch}\", msg: \"Plain <b>hello</b>\") {{ success }}"),
        format!(
            "sendQuickReplies(channel_id: \"{ch}\", msg: \"Favourite flavour?\", quick_replies: [{{ action: {{ value: \"choc\" }}, text: \"Chocolate\" }}, {{ action: {{ value: \"van\" }}, text: \"Vanilla\" }}]) {{ success }}"
        ),
        format!(
            "sendButtonTemplate(channel_id: \"{ch}\", msg: \"Need help?\", buttons: [{{ action: {{ type: LINK_ACTION, value: \"https://example.com/help\" }}, text: \"Help centre\" }}]) {{ success }}"
        ),
        format!(
            "sendPanelTemplate(channel_id: \"{ch}\", panel: {{ heading: \"Solo panel\", paragraph: \"One card\" }}) {{ success }}"
        ),
        format!(
            "sendPanelTemplateCarousel(channel_id: \"{ch}\", items: [{{ panel: {{ heading: \"Card A\" }} }}, {{ panel: {{ heading: \"Card B\" }}, buttons: [{{ action: {{ value: \"b\" }}, text: \"Pick B\" }}] }}]) {{ success }}"
        ),
        format!(
            "sendListTemplate(channel_id: \"{ch}\", items: [{{ heading: \"Row 1\", paragraph: \"First\", action: {{ value: \"https://example.com/1\" }} }}, {{ heading: \"Row 2\", paragraph: \"Second\", action: {{ value: \"https://example.com/2\" }} }}]) {{ success }}"
        ),
    ];
    for m in &mutations {
        let resp = bot.request(&format!("mutation {{ {m} }}")).await;
        let data = resp["payload"]["data"]
            .as_object()
            .unwrap_or_else(|| panic!("{resp}"));
        assert_eq!(data.values().next().unwrap()["success"], true, "{resp}");
    }
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/?channel_id={}", emu.base_url(), urlencode(&ch));
    let output = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "Plain &lt;b&gt;hello&lt;/b&gt;",
        "class=\"structured quick-replies\"",
        "<button class=\"quick-reply\" type=\"button\">Chocolate</button>",
        "<button class=\"quick-reply\" type=\"button\">Vanilla</button>",
        "data-href=\"https://example.com/help\"",
        "Help centre",
        "class=\"structured panel-template\"",
        "Solo panel",
        "class=\"carousel\"",
        "Card A",
        "Pick B",
        "class=\"list-item\"",
        "Row 2",
        "Fallback: Favourite flavour? [Chocolate / Vanilla]",
    ] {
        assert!(
            dom.contains(needle),
            "rendered page lacks {needle:?}:\n{dom}"
        );
    }
    // Clicking a quick reply goes through the same control endpoint the page uses.
    control(
        &emu,
        "/visitors/choose",
        json!({ "channel_id": ch, "label": "Vanilla" }),
    )
    .await;
    let t = transcript(&emu, &ch).await;
    assert_eq!(
        t["entries"].as_array().unwrap().last().unwrap()["text"],
        "van"
    );
}

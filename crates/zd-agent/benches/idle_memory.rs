//! Resident memory per idle session with 1,000 sessions open, beside 1,000 bare WebSocket
//! clients on the same server (the difference is what zd-agent adds per session).
//!
//! `cargo bench -p zd-agent --bench idle_memory` prints both figures; each runs in a fresh
//! process (`ZD_MEM_MODE=bare|agent`) so freed memory of one cannot hide the other's, and the
//! server runs in a third process (`ZD_MEM_MODE=server`), so the figures are the client's alone.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;

use zd_agent::{AgentSession, Config, StaticToken};

const SESSIONS: usize = 1000;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn measure(mode: &str) -> usize {
    let endpoint = std::env::var("ZD_MEM_ENDPOINT").unwrap();
    let ws_url = std::env::var("ZD_MEM_WS").unwrap();
    let before = rss_bytes();
    let mut keep_agents = Vec::new();
    let mut keep_bare = Vec::new();
    for _ in 0..SESSIONS {
        if mode == "bare" {
            let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
                .await
                .unwrap();
            keep_bare.push(ws);
        } else {
            let mut config = Config::with_endpoint(endpoint.parse().unwrap());
            config.keepalive_interval = std::time::Duration::from_secs(60);
            // Each session its own start limiter: these are 1,000 agents as far as the memory
            // goes, not one agent starting 1,000 times (which the shared limits refuse).
            config.start_limiter = Some(Arc::new(zd_agent::rate_limit::StartLimiter::default()));
            let creds = Arc::new(StaticToken::bearer("bench").unwrap());
            let (session, driver) = AgentSession::connect(config, creds).await.unwrap();
            tokio::spawn(driver);
            keep_agents.push(session);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = rss_bytes();
    (after.saturating_sub(before)) / SESSIONS
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::var("ZD_MEM_MODE").as_deref() == Ok("server") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = rt.block_on(support::start());
        println!("{}\n{}", fake.endpoint, fake.ws_url);
        // Serve until the parent closes our stdin.
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }
    if let Ok(mode) = std::env::var("ZD_MEM_MODE") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let per = rt.block_on(measure(&mode));
        println!("{per}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut server = std::process::Command::new(&exe)
        .arg("--bench")
        .env("ZD_MEM_MODE", "server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(server.stdout.take().unwrap()));
    let endpoint = lines.next().unwrap().unwrap();
    let ws_url = lines.next().unwrap().unwrap();
    let run = |mode: &str| -> usize {
        let out = std::process::Command::new(&exe)
            .arg("--bench")
            .env("ZD_MEM_MODE", mode)
            .env("ZD_MEM_ENDPOINT", &endpoint)
            .env("ZD_MEM_WS", &ws_url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let bare = run("bare");
    let agent = run("agent");
    drop(server.stdin.take());
    let _ = server.wait();
    println!(
        "idle memory with {SESSIONS} open: zd-agent session {} KiB each (client process RSS growth; server in another process); bare tokio-tungstenite client {} KiB each; zd-agent adds {} KiB per session",
        agent / 1024,
        bare / 1024,
        agent.saturating_sub(bare) / 1024
    );
}

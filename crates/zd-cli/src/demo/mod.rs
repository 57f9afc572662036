//! `zd demo`: the emulator, an agent bot, simulated visitors, live metrics and a summary.
//!
//! Everything runs in this process over real loopback sockets: the bot talks to the emulator
//! through zd-agent exactly as it would talk to Zendesk, and the visitors act through the
//! emulator's control API. The summary is counted from both ends, so "nothing lost" is a
//! measured fact, not a claim.

mod bot;
mod dashboard;
mod faults;
mod stats;
mod summary;
mod view;
mod visitors;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zd_emulator::Emulator;
use zd_metrics::{MetricsClient, StaticToken, Window};

use crate::cli::{DemoArgs, DemoOutput};
use crate::error::{CliError, Context, Kind, Result, agent_kind};
use crate::out;
use stats::Stats;

/// How long the demo waits, after the end, for visitors to get their last replies.
const DRAIN: Duration = Duration::from_secs(30);

// The finishing wait covers the recovery check of a fault injected just before the end.
const _: () = assert!(DRAIN.as_secs() > faults::RECOVERY.as_secs());

/// Runs the demo; the exit code says whether the summary's checks held.
pub(crate) async fn run(args: DemoArgs) -> Result<ExitCode> {
    // The flag has no upper bound of its own (clap takes any u32), so it is checked here,
    // before anything starts.
    if args.visitors > visitors::MAX_VISITORS {
        return Err(CliError::new(
            Kind::Usage,
            format!(
                "--visitors {} is too many: at most {}",
                args.visitors,
                visitors::MAX_VISITORS
            ),
        ));
    }
    // Listening before anything starts: SIGTERM or SIGHUP (`kill`, a closing terminal) then
    // ends the run as Ctrl-C does, with the summary and the terminal restored, where their
    // default action would kill the process with the dashboard's raw mode left on.
    let mut stop = std::pin::pin!(crate::interrupt::stop_requested()?);
    let emulator = Emulator::builder()
        .port(args.port)
        .start()
        .await
        .context(Kind::Io, "cannot start the emulator")?;
    let account = emulator.account();
    let control = emulator.control().clone();
    let bot_agent = account
        .agents
        .first()
        .ok_or_else(|| CliError::new(Kind::Config, "the demo account has no agent"))?;
    let token = bot_agent.access_token.clone();
    // Public ids, for arrivals as for transfers: the bot can then tell where a chat is.
    let department_ids: Vec<String> = account.departments.iter().map(|d| d.id.clone()).collect();

    let endpoint = url::Url::parse(&account.graphql_url)
        .context(Kind::Io, "the emulator gave an invalid URL")?;
    let credentials =
        StaticToken::bearer(token.clone()).context(Kind::Config, "empty bot token")?;
    let mut config = zd_agent::Config::with_endpoint(endpoint);
    // The embedded emulator is new and so is its start history: the bot's starts count
    // against it alone, not against other demos this process ran on a reused port.
    config.start_limiter = Some(Arc::new(zd_agent::rate_limit::StartLimiter::new(
        config.start_limits,
    )));
    let (session, driver) = zd_agent::AgentSession::connect(config, Arc::new(credentials))
        .await
        .map_err(|e| CliError::with(agent_kind(&e), "the bot cannot connect", e))?;
    tokio::spawn(driver);
    let stats = Arc::new(Stats::default());
    let channels = Arc::new(visitors::Channels::default());
    let subscription = bot::start(&session).await?;
    tokio::spawn(bot::run(
        session.clone(),
        subscription,
        department_ids.clone(),
        Arc::clone(&stats),
        Arc::clone(&channels),
    ));

    let feed = metrics_feed(emulator.base_url(), token).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let replies = visitors::watch_replies(&control);
    let duration = (args.duration > 0).then(|| Duration::from_secs(args.duration));
    let plan = visitors::Plan {
        visitors: args.visitors,
        seed: args.seed,
        arrival_window: duration.map(|d| d.mul_f64(0.6)),
        departments: department_ids,
    };
    let mut visitors_task = tokio::spawn(visitors::run(
        control.clone(),
        plan,
        Arc::clone(&stats),
        replies,
        Arc::clone(&channels),
        stop_rx.clone(),
    ));
    let last_fault = Arc::default();
    // Kept so the end of the run can wait for the last fault's recovery check.
    let mut faults_task = None;
    if args.faults {
        let every = duration.map_or(Duration::from_secs(3), |d| {
            (d / 8).clamp(Duration::from_millis(800), Duration::from_secs(4))
        });
        faults_task = Some(tokio::spawn(faults::run(
            control.clone(),
            session.clone(),
            every,
            args.seed,
            Arc::clone(&stats),
            Arc::clone(&last_fault),
            stop_rx,
        )));
    }

    let dashboard_mode = match args.output {
        DemoOutput::Auto => std::io::stdout().is_terminal(),
        DemoOutput::Dashboard => true,
        DemoOutput::Plain => false,
    };
    let mut viewer = view::Viewer::new(
        control.clone(),
        Arc::clone(&stats),
        session.clone(),
        last_fault,
        feed.as_ref().map(zd_metrics::Feed::snapshot),
    );
    let widget_url = account.widget_url.clone();
    // Every failure from here on (a closed stdout above all: `zd demo | head -3`) still closes
    // the feed and stops the bot's session before it is reported.
    let outcome = async {
        let mut screen = if dashboard_mode {
            Some(dashboard::Dashboard::enter(widget_url.clone())?)
        } else {
            None
        };
        if screen.is_none() {
            out::line(format_args!(
                "zd demo: emulator at {} - chat as a visitor at {widget_url}",
                emulator.base_url()
            ))?;
            out::line(format_args!(
                "zd demo: bot \"{}\" online; {} visitors (seed {}) over {}{}",
                bot_agent.display_name,
                args.visitors,
                args.seed,
                duration.map_or_else(
                    || "until Ctrl-C".to_owned(),
                    |d| format!("{} s", d.as_secs())
                ),
                if args.faults { ", with faults" } else { "" }
            ))?;
        }

        let start = Instant::now();
        let tick = if dashboard_mode {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        };
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut visitors_done = false;
        let mut interrupted = false;
        // Run until the duration is over (or a stop signal / q).
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = &mut stop => {
                    interrupted = true;
                    break;
                }
                _ = &mut visitors_task, if !visitors_done => { visitors_done = true; }
            }
            let frame = viewer.frame();
            match &mut screen {
                Some(d) => {
                    d.draw(&frame, false)?;
                    if d.quit_requested() {
                        break;
                    }
                }
                None => out::line(view::plain_line(&frame))?,
            }
            if duration.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
        }
        // No new messages or faults; visitors wait for their pending replies, rate, and leave.
        let _ = stop_tx.send(true);
        if interrupted {
            // The first stop signal was used up; a second one stops the finishing wait.
            stop.set(crate::interrupt::stop_requested()?);
        }
        if screen.is_none() {
            out::line(format_args!(
                "zd demo: finishing: waiting up to {} s for the last replies{} (Ctrl-C to stop waiting)",
                DRAIN.as_secs(),
                if faults_task.is_some() {
                    " and the last fault check"
                } else {
                    ""
                }
            ))?;
        }
        let drain_until = Instant::now() + DRAIN;
        // The fault task ends within RECOVERY (< DRAIN) of the stop: awaiting it means every
        // fault counted injected is also counted survived or failed, unless the user cuts this
        // short.
        let mut faults_done = faults_task.is_none();
        let mut cut_short = false;
        // Until the visitors have left, the fault check is over and the bot answered every
        // message it received (replies it is still sending count too), or DRAIN is over.
        while !(visitors_done && faults_done && stats.bot_caught_up())
            && Instant::now() < drain_until
        {
            tokio::select! {
                _ = interval.tick() => {}
                () = &mut stop => {
                    cut_short = true;
                    break;
                }
                _ = &mut visitors_task, if !visitors_done => { visitors_done = true; }
                _ = async {
                    if let Some(task) = faults_task.as_mut() {
                        let _ = task.await;
                    }
                }, if !faults_done => { faults_done = true; }
            }
            let frame = viewer.frame();
            match &mut screen {
                Some(d) => {
                    d.draw(&frame, true)?;
                    if d.quit_requested() {
                        cut_short = true;
                        break;
                    }
                }
                None => out::line(view::plain_line(&frame))?,
            }
        }
        if let Some(task) = faults_task.as_ref().filter(|_| !faults_done) {
            // Its check did not finish: leave it unchecked rather than let it count after the
            // summary was taken.
            task.abort();
        }
        if cut_short && screen.is_none() {
            out::line("zd demo: stopped waiting; summarising what is known")?;
        }
        drop(screen);
        let frame = viewer.frame();
        if !dashboard_mode {
            out::line(view::plain_line(&frame))?;
        }
        let report = summary::collect(
            &control,
            &channels,
            &stats,
            &frame,
            cut_short,
            u64::from(args.visitors),
        );
        out::bytes(summary::render(&report, &args).as_bytes())?;
        Ok::<_, CliError>(report)
    }
    .await;
    // A failure may have left the visitors and the faults going, mid-run.
    let _ = stop_tx.send(true);
    if let Some(task) = &faults_task {
        task.abort();
    }
    if let Some(feed) = feed {
        feed.handle().close().await;
    }
    if let Err(error) = session.stop().await {
        tracing::debug!(%error, "stopAgentSession failed");
    }
    let report = outcome?;
    if report.ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(Kind::Check, summary::failure(&report)))
    }
}

/// Subscribes to the emulator's Real Time Chat feed through zd-metrics, when it serves one.
async fn metrics_feed(base_url: &str, token: zd_auth::Secret) -> Option<zd_metrics::Feed> {
    let credentials = StaticToken::bearer(token).ok()?;
    let client = MetricsClient::builder(credentials)
        .base_url(base_url.to_owned())
        .build()
        .ok()?;
    let feed = match tokio::time::timeout(Duration::from_secs(3), client.connect()).await {
        Ok(Ok(feed)) => feed,
        Ok(Err(error)) => {
            tracing::info!(%error, "no Real Time Chat feed on this emulator; the dashboard uses the chat state");
            return None;
        }
        Err(_) => return None,
    };
    for series in crate::commands::metrics::all_series(Window::Minutes30, None) {
        if let Err(error) = feed.subscribe(series).await {
            tracing::info!(%error, "metrics subscription refused");
        }
    }
    Some(feed)
}

//! Fault injection through the control API, and proof that the bot survived each fault.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use zd_agent::{AgentSession, AgentStatus};
use zd_emulator::Control;

use super::stats::Stats;

/// How long the bot has to come back after a fault.
const RECOVERY: Duration = Duration::from_secs(20);

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The TCP connection drops without a close frame.
    Drop,
    /// The socket closes with 1011.
    Close,
    /// The session ends with EOS.
    Eos,
    /// The socket sends nothing for a while.
    Stall,
    /// The socket reads nothing for a while.
    Deaf,
    /// The next requests fail with RATE_LIMITED.
    RateLimited,
}

impl Fault {
    const ALL: [Self; 6] = [
        Self::Drop,
        Self::Close,
        Self::Eos,
        Self::Stall,
        Self::Deaf,
        Self::RateLimited,
    ];

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Drop => "dropped socket",
            Self::Close => "close 1011",
            Self::Eos => "EOS",
            Self::Stall => "stall 400 ms",
            Self::Deaf => "deaf 400 ms",
            Self::RateLimited => "RATE_LIMITED x3",
        }
    }
}

/// Injects a fault every `every` until `stop`, each on the bot's current session.
pub(crate) async fn run(
    control: Control,
    session: AgentSession,
    every: Duration,
    seed: u64,
    stats: Arc<Stats>,
    last: Arc<std::sync::Mutex<Option<Fault>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa17);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(session_id) = session.resumable().session_id else {
            continue;
        };
        let fault = Fault::ALL[rng.random_range(0..Fault::ALL.len())];
        let injected = match fault {
            Fault::Drop => control.fault_drop(&session_id).await,
            Fault::Close => control.fault_close(&session_id, 1011, "demo fault").await,
            Fault::Eos => control.fault_eos(&session_id, "demo fault"),
            Fault::Stall => control.fault_stall(&session_id, 400).await,
            Fault::Deaf => control.fault_deaf(&session_id, 400),
            Fault::RateLimited => control.fault_fail(&session_id, 3, "RATE_LIMITED"),
        };
        if let Err(error) = injected {
            tracing::debug!(%error, fault = fault.label(), "fault not injected");
            continue;
        }
        Stats::add(&stats.faults_injected);
        *last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fault);
        // A real request through the session proves it is back: it succeeds only once the
        // session reconnected or restarted and the service answered.
        let probe =
            tokio::time::timeout(RECOVERY, session.update_agent_status(AgentStatus::Online)).await;
        match probe {
            Ok(Ok(_)) => Stats::add(&stats.faults_survived),
            Ok(Err(error)) => {
                tracing::warn!(%error, fault = fault.label(), "the bot did not recover")
            }
            Err(_) => tracing::warn!(fault = fault.label(), "the bot did not recover in time"),
        }
    }
}

//! Fault injection through the control API, and proof that the bot survived each fault.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;
use zd_agent::{AgentSession, AgentStatus};
use zd_emulator::Control;

use super::stats::Stats;

/// How long the bot has to come back after a fault.
pub(crate) const RECOVERY: Duration = Duration::from_secs(20);

/// At most one EOS fault per this long. Each EOS makes the bot start a new session, and the
/// service allows 50 `startAgentSession` per agent per hour: with a fault every few seconds and
/// EOS drawn one time in six, a long run would need ~170 starts an hour and, after about
/// twenty minutes, the bot would wait for a start slot. One EOS per three minutes is at most
/// 20 starts an hour, which leaves more than half of the budget for the first start and for
/// the restarts other faults may cause (a resume that fails after a drop or a close).
pub(crate) const EOS_SPACING: Duration = Duration::from_secs(180);

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

    /// Every fault but EOS, for when an EOS would come too soon after the last one.
    const WITHOUT_EOS: [Self; 5] = [
        Self::Drop,
        Self::Close,
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

/// Draws the faults: any of them, but EOS only [`EOS_SPACING`] after the last EOS injected.
#[derive(Debug)]
struct Mix {
    rng: StdRng,
    last_eos: Option<Instant>,
}

impl Mix {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
            last_eos: None,
        }
    }

    fn draw(&mut self, now: Instant) -> Fault {
        let eos_allowed = self
            .last_eos
            .is_none_or(|at| now.saturating_duration_since(at) >= EOS_SPACING);
        let from: &[Fault] = if eos_allowed {
            &Fault::ALL
        } else {
            &Fault::WITHOUT_EOS
        };
        from[self.rng.random_range(0..from.len())]
    }

    /// Notes a fault that was injected (one the emulator refused started no new session).
    fn injected(&mut self, fault: Fault, now: Instant) {
        if fault == Fault::Eos {
            self.last_eos = Some(now);
        }
    }
}

/// Injects a fault every `every` until `stop`, each on the bot's current session. After
/// `stop` it still finishes the recovery check of the last fault (at most [`RECOVERY`]), so
/// the caller should await it: every fault it counts injected is then counted survived or
/// failed.
pub(crate) async fn run(
    control: Control,
    session: AgentSession,
    every: Duration,
    seed: u64,
    stats: Arc<Stats>,
    last: Arc<std::sync::Mutex<Option<Fault>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut mix = Mix::new(seed);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(session_id) = session.resumable().session_id else {
            continue;
        };
        let fault = mix.draw(Instant::now());
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
        mix.injected(fault, Instant::now());
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
                Stats::add(&stats.faults_failed);
                tracing::warn!(%error, fault = fault.label(), "the bot did not recover");
            }
            Err(_) => {
                Stats::add(&stats.faults_failed);
                tracing::warn!(fault = fault.label(), "the bot did not recover in time");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_faults_keep_session_starts_under_fifty_an_hour() {
        // A long run at the fastest pace the demo uses (a fault every 800 ms).
        let start = Instant::now();
        let mut mix = Mix::new(7);
        let mut eos = 0;
        let every = Duration::from_millis(800);
        let mut at = start;
        while at.duration_since(start) < Duration::from_secs(3600) {
            let fault = mix.draw(at);
            mix.injected(fault, at);
            if fault == Fault::Eos {
                eos += 1;
            }
            at += every;
        }
        // One EOS per spacing, and the first one comes early as before.
        assert!(eos <= 3600 / EOS_SPACING.as_secs(), "{eos} EOS in an hour");
        // That leaves more than half the documented 50 starts for the first one and other
        // restarts.
        assert!(eos >= 1);
    }

    #[test]
    fn a_short_run_still_sees_eos() {
        let start = Instant::now();
        let mut mix = Mix::new(5);
        let first_eos = (0..200u32)
            .map(|i| start + Duration::from_millis(800) * i)
            .find(|at| mix.draw(*at) == Fault::Eos);
        assert!(first_eos.is_some());
    }
}

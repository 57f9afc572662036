//! The signals that ask a command which runs until stopped to stop: Ctrl-C, and on unix
//! SIGTERM (`docker stop`, systemd, `kill`) and SIGHUP (the terminal closed).
//!
//! Ctrl-C and SIGHUP are heard only when whoever started zd did not leave them ignored:
//! `nohup zd agent echo &` ignores SIGHUP so that closing the terminal leaves the bot running,
//! and a shell ignores SIGINT for what a script starts with `&`. Listening would replace that
//! choice with a handler, so the bot would stop after all.

use futures_util::FutureExt as _;

use crate::error::{CliError, Kind, Result};

/// A future that completes when the command is asked to stop, already listening when this
/// returns.
///
/// `tokio::signal::ctrl_c()` installs its handler only when first polled: a Ctrl-C before that
/// kills the process outright, session and all, and once the handler is installed a Ctrl-C
/// that no future is waiting for is lost. Polling it once here, before the command says it is
/// ready, and keeping the one future for the whole command closes both gaps. The unix signals
/// are registered as their listeners are made, here too: a bot run by a service manager or a
/// container is stopped with SIGTERM, and must stop its session as it would on Ctrl-C.
pub(crate) fn stop_requested() -> Result<impl Future<Output = ()> + Send> {
    let ctrl_c = ctrl_c_listening()?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind, name: &str| {
            signal(kind)
                .map_err(|e| CliError::with(Kind::Io, format!("cannot listen for {name}"), e))
        };
        let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
        let hup = if inherited::ignored(libc::SIGHUP) {
            None
        } else {
            Some(listen(SignalKind::hangup(), "SIGHUP")?)
        };
        let hangup = async move {
            match hup {
                Some(mut hup) => {
                    hup.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        Ok(async move {
            tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
                () = hangup => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(ctrl_c)
}

/// A Ctrl-C from now on; never, when whoever started zd left SIGINT ignored or the handler
/// cannot be installed (a second Ctrl-C that cuts a wait short, or `zd emulator`'s stop).
pub(crate) async fn ctrl_c() {
    if ctrl_c_ignored() || tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A Ctrl-C, with its handler installed before this returns (see [`stop_requested`]).
fn ctrl_c_listening() -> Result<impl Future<Output = ()> + Send> {
    let mut signal = (!ctrl_c_ignored()).then(|| Box::pin(tokio::signal::ctrl_c()));
    let pressed = match signal.as_mut().and_then(|s| s.as_mut().now_or_never()) {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => return Err(CliError::with(Kind::Io, "cannot listen for Ctrl-C", e)),
    };
    Ok(async move {
        if pressed {
            return;
        }
        // Only installing the handler can fail, and that was the first poll.
        let heard = match signal {
            Some(signal) => signal.await.is_ok(),
            None => false,
        };
        if !heard {
            std::future::pending::<()>().await;
        }
    })
}

fn ctrl_c_ignored() -> bool {
    #[cfg(unix)]
    return inherited::ignored(libc::SIGINT);
    #[cfg(not(unix))]
    false
}

/// How zd found a signal handled when it started. The workspace forbids unsafe code; this
/// crate denies it, and allows it here alone: no safe interface reads a signal's disposition.
#[cfg(unix)]
#[allow(unsafe_code)]
mod inherited {
    /// True when `signal` is ignored (`SIG_IGN`). Read before zd listens for it, this is how
    /// the process that started zd left it: an ignored disposition survives `exec`, a handler
    /// does not. False when it cannot be read.
    pub(super) fn ignored(signal: libc::c_int) -> bool {
        // SAFETY: `libc::sigaction` is plain data (integers and a signal set), for which all
        // zeroes is a valid value. With a null new action, sigaction(2) changes nothing and
        // only writes the current action into `current`, a live local for the whole call.
        let (status, current) = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            let status = libc::sigaction(signal, std::ptr::null(), &raw mut current);
            (status, current)
        };
        status == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

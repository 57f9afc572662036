//! The signals that ask a command which runs until stopped to stop: Ctrl-C, and on unix
//! SIGTERM (`docker stop`, systemd, `kill`) and SIGHUP (the terminal closed).

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
    let mut signal = Box::pin(tokio::signal::ctrl_c());
    let pressed = match signal.as_mut().now_or_never() {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => return Err(CliError::with(Kind::Io, "cannot listen for Ctrl-C", e)),
    };
    let ctrl_c = async move {
        // Only installing the handler can fail, and that was the first poll.
        if !pressed && signal.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind, name: &str| {
            signal(kind)
                .map_err(|e| CliError::with(Kind::Io, format!("cannot listen for {name}"), e))
        };
        let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
        let mut hup = listen(SignalKind::hangup(), "SIGHUP")?;
        Ok(async move {
            tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(ctrl_c)
}

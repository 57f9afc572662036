//! Ctrl-C for the commands that run until stopped.

use futures_util::FutureExt as _;

use crate::error::{CliError, Kind, Result};

/// A future that completes on Ctrl-C, already listening when this returns.
///
/// `tokio::signal::ctrl_c()` installs its handler only when first polled: a Ctrl-C before that
/// kills the process outright, session and all, and once the handler is installed a Ctrl-C
/// that no future is waiting for is lost. Polling it once here, before the command says it is
/// ready, and keeping the one future for the whole command closes both gaps.
pub(crate) fn ctrl_c() -> Result<impl Future<Output = ()> + Send> {
    let mut signal = Box::pin(tokio::signal::ctrl_c());
    let pressed = match signal.as_mut().now_or_never() {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => return Err(CliError::with(Kind::Io, "cannot listen for Ctrl-C", e)),
    };
    Ok(async move {
        // Only installing the handler can fail, and that was the first poll.
        if !pressed && signal.await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

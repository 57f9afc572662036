//! `zd completions <shell>`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Result;

/// Writes the completion script for `shell` to stdout. The script is built in memory first:
/// `clap_complete::generate` panics when its writer fails, as stdout does once closed.
pub(crate) fn print(shell: clap_complete::Shell) -> Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "zd", &mut script);
    crate::out::bytes(&script)
}

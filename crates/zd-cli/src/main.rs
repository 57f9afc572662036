//! The `zd` command-line tool.

fn main() {}

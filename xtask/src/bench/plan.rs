//! Workload sizes: the numbers for a full run; for `--quick`, a smaller echo load and
//! fewer rounds.

use serde::Serialize;

/// Sizes of every workload.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Plan {
    /// Rounds; each round runs ours and every peer once, the order alternating.
    pub(crate) rounds: usize,
    /// Rounds of the echo workload: its CPU per message is the figure that moves most from run
    /// to run (wake-ups from idle on a shared VM), and its rounds are short, so it gets more.
    pub(crate) echo_rounds: usize,
    /// Echo: visitors.
    pub(crate) echo_visitors: u64,
    /// Echo: messages per visitor.
    pub(crate) echo_messages: u64,
    /// Echo: visitor messages per second (under the 100 requests/s a session may make).
    pub(crate) echo_rate: u32,
    /// Sunshine: messages listed through pagination.
    pub(crate) sunshine_list: u64,
    /// Sunshine: users created.
    pub(crate) sunshine_users: u64,
    /// Sunshine: messages posted.
    pub(crate) sunshine_posts: u64,
    /// Sunshine: requests in flight, the same for every client.
    pub(crate) sunshine_concurrency: usize,
    /// Metrics: concurrent feeds per client process.
    pub(crate) metrics_feeds: usize,
    /// Whether to run `cargo bench` for the micro section.
    pub(crate) run_criterion: bool,
}

impl Plan {
    /// The sizes.
    pub(crate) const FULL: Self = Self {
        rounds: 3,
        echo_rounds: 5,
        echo_visitors: 20,
        echo_messages: 50,
        echo_rate: 80,
        sunshine_list: 10_000,
        sunshine_users: 2_000,
        sunshine_posts: 5_000,
        sunshine_concurrency: 8,
        // The account's cap; the emulator runs with its minute budget lifted for this.
        metrics_feeds: 1_000,
        run_criterion: true,
    };

    /// A few minutes in all on a 2-core machine.
    pub(crate) const QUICK: Self = Self {
        rounds: 2,
        echo_rounds: 2,
        echo_visitors: 10,
        echo_messages: 60,
        echo_rate: 80,
        // The full sizes: even the slowest peer needs only seconds for them.
        sunshine_list: 10_000,
        sunshine_users: 2_000,
        sunshine_posts: 5_000,
        sunshine_concurrency: 8,
        // Memory per feed depends on the count (fixed costs amortise): the size.
        metrics_feeds: 1_000,
        run_criterion: false,
    };
}

//! A progress counter on stderr for long listings (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts items as they stream in.
#[derive(Debug)]
pub(crate) struct Counter {
    bar: ProgressBar,
}

impl Counter {
    pub(crate) fn new(what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template(&format!("{{spinner}} {{pos}} {what} ({{per_sec}})"))
        {
            bar.set_style(style);
        }
        Self { bar }
    }

    pub(crate) fn tick(&self, count: u64) {
        self.bar.set_position(count);
    }

    pub(crate) fn finish(&self, count: u64) {
        self.bar.set_position(count);
        self.bar.finish_and_clear();
    }
}

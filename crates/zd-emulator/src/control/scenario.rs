//! Scenarios: timed visitor actions, for demos and load.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Control, ControlError};
use crate::state::{Arrival, Rating};

/// A scenario: steps run in order, each at its offset from the start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The steps.
    pub steps: Vec<Step>,
}

/// One timed visitor action. (`deny_unknown_fields` does not combine with the flattened
/// action, so unknown keys are ignored here.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Milliseconds from the start of the scenario.
    #[serde(default)]
    pub at_ms: u64,
    /// A label naming the visitor within the scenario.
    pub visitor: String,
    /// What the visitor does.
    #[serde(flatten)]
    pub action: StepAction,
}

/// A visitor action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StepAction {
    /// Arrive (must come first for a visitor).
    Arrive {
        /// Display name.
        #[serde(default)]
        name: Option<String>,
        /// Email.
        #[serde(default)]
        email: Option<String>,
        /// Department: public id, raw id or name.
        #[serde(default)]
        department: Option<String>,
    },
    /// Send a message.
    Message {
        /// The text.
        text: String,
    },
    /// Click a quick reply or button.
    Choose {
        /// Its label.
        label: String,
    },
    /// Start or stop typing.
    Typing {
        /// Typing or not.
        typing: bool,
    },
    /// Leave.
    Leave,
    /// Rate the chat.
    Rate {
        /// The rating.
        rating: Rating,
    },
}

impl Scenario {
    /// Parses a scenario from JSON, or TOML when `toml` is set.
    ///
    /// # Errors
    /// When the text does not describe a scenario.
    pub fn parse(text: &str, toml: bool) -> Result<Self, ControlError> {
        let scenario: Self = if toml {
            toml::from_str(text).map_err(|e| ControlError::BadRequest(e.to_string()))?
        } else {
            serde_json::from_str(text).map_err(|e| ControlError::BadRequest(e.to_string()))?
        };
        scenario.check()?;
        Ok(scenario)
    }

    /// Checks that every visitor arrives before acting.
    ///
    /// # Errors
    /// [`ControlError::BadRequest`] naming the first step that acts before arriving.
    pub fn check(&self) -> Result<(), ControlError> {
        let mut arrived = std::collections::HashSet::new();
        let mut steps: Vec<&Step> = self.steps.iter().collect();
        steps.sort_by_key(|s| s.at_ms);
        for step in steps {
            match step.action {
                StepAction::Arrive { .. } => {
                    arrived.insert(step.visitor.as_str());
                }
                _ if !arrived.contains(step.visitor.as_str()) => {
                    return Err(ControlError::BadRequest(format!(
                        "visitor {:?} acts at {} ms before arriving",
                        step.visitor, step.at_ms
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Control {
    /// Runs a scenario on tokio time; failed steps are logged and skipped. It stops at the
    /// first [`Control::reset`] after it starts running.
    pub async fn run_scenario(&self, scenario: Scenario) {
        self.scenario_task(scenario, std::future::pending()).await;
    }

    /// [`Control::run_scenario`] as a task to spawn, which also stops when `shutdown`
    /// completes. Its clock and its resets count from this call, not from the task's first
    /// poll: a reset right after `POST /scenario` answers stops a task that has not run yet.
    pub(crate) fn scenario_task(
        &self,
        scenario: Scenario,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let control = self.clone();
        let mut resets = self.core.resets.subscribe();
        // Read now, not when the task first runs: a reset between the two must stop it.
        let generation = *resets.borrow_and_update();
        let start = tokio::time::Instant::now();
        async move {
            control
                .play(scenario, start, (resets, generation), shutdown)
                .await;
        }
    }

    async fn play(
        &self,
        scenario: Scenario,
        start: tokio::time::Instant,
        (mut resets, generation): (watch::Receiver<u64>, u64),
        shutdown: impl Future<Output = ()>,
    ) {
        let mut steps = scenario.steps;
        steps.sort_by_key(|s| s.at_ms);
        let mut channels: HashMap<String, String> = HashMap::new();
        let mut shutdown = std::pin::pin!(shutdown);
        for step in steps {
            tokio::select! {
                // A stop wins over a step due at the same moment.
                biased;
                () = &mut shutdown => return,
                // A change is a reset; an error, an emulator that is gone.
                _ = resets.changed() => return,
                () = tokio::time::sleep_until(start + Duration::from_millis(step.at_ms)) => {}
            }
            // The count stays borrowed (read-locked) while the step acts: a reset bumps it
            // first, so it waits for the step and then clears what the step did.
            let current = resets.borrow();
            if *current != generation {
                return;
            }
            let visitor = step.visitor.clone();
            if let Err(error) = self.take_step(step, &mut channels) {
                tracing::warn!(%visitor, %error, "scenario step failed");
            }
        }
    }

    /// Acts out one step; `channels` maps the scenario's visitor labels to their channels.
    fn take_step(
        &self,
        step: Step,
        channels: &mut HashMap<String, String>,
    ) -> Result<(), ControlError> {
        let channel = channels.get(&step.visitor).cloned().unwrap_or_default();
        match step.action {
            StepAction::Arrive {
                name,
                email,
                department,
            } => self
                .visitor_arrive(Arrival {
                    name,
                    email,
                    department,
                    ..Arrival::default()
                })
                .map(|v| {
                    channels.insert(step.visitor, v.channel_id);
                }),
            StepAction::Message { text } => self.visitor_message(&channel, &text).map(drop),
            StepAction::Choose { label } => self.visitor_choose(&channel, &label).map(drop),
            StepAction::Typing { typing } => self.visitor_typing(&channel, typing),
            StepAction::Leave => self.visitor_leave(&channel),
            StepAction::Rate { rating } => self.visitor_rate(&channel, rating),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[tokio::test]
    async fn a_reset_before_the_task_first_runs_stops_it() {
        let emu = crate::Emulator::builder()
            .start()
            .await
            .expect("the emulator starts");
        let control = emu.control().clone();
        let scenario = Scenario::parse(
            r#"{"steps":[{"at_ms":0,"visitor":"a","action":"arrive"}]}"#,
            false,
        )
        .expect("a valid scenario");
        // As `POST /scenario` does: the task is made, answered 202, and runs later.
        let task = control.scenario_task(scenario, std::future::pending());
        control.reset();
        task.await;
        assert!(control.state().channels().is_empty());
    }
}

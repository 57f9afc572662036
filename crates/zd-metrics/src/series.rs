//! [`Series`]: one metric, in one window, for one department (or the whole account).

use std::fmt;

use zd_wire::realtime::{Metric, Subscription, Window};

use crate::{Error, ErrorKind};

/// What a feed subscribes to and what a snapshot holds a value for: a metric, its time window
/// (windowed metrics only) and an optional department (`None` = the whole account).
///
/// Build one with [`Series::new`] (checks the window against the catalogue) or the shorthand
/// constructors.
///
/// ```
/// use zd_metrics::{Metric, Series, Window};
///
/// let missed = Series::windowed(Metric::MissedChats, Window::Minutes30).department(5);
/// assert_eq!(missed.to_string(), "chats.missed_chats[30m]@5");
/// assert!(Series::new(Metric::MissedChats, None, None).is_err());
/// assert!(Series::new(Metric::ActiveChats, Some(Window::Minutes60), None).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    metric: Metric,
    window: Option<Window>,
    department_id: Option<u64>,
}

impl Series {
    /// A series, checked against the catalogue: windowed metrics (missed chats, satisfaction)
    /// need a window of 30 or 60 minutes, other known metrics take none. Metrics unknown to
    /// this crate are accepted as they are.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSubscription`] when the window does not fit the metric.
    pub fn new(
        metric: Metric,
        window: Option<Window>,
        department_id: Option<u64>,
    ) -> Result<Self, Error> {
        let known = !matches!(metric, Metric::Unknown(_));
        if let Some(w) = window
            && !w.is_known()
        {
            return Err(Error::new(
                ErrorKind::InvalidSubscription,
                format!(
                    "{metric}: windows are 30 or 60 minutes, not {}",
                    w.minutes()
                ),
            ));
        }
        if known && metric.is_windowed() && window.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidSubscription,
                format!("{metric} needs a window of 30 or 60 minutes"),
            ));
        }
        if known && !metric.is_windowed() && window.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidSubscription,
                format!("{metric} has no time window"),
            ));
        }
        Ok(Self {
            metric,
            window,
            department_id,
        })
    }

    /// An account-wide series of a metric without a window. For a windowed metric use
    /// [`Series::windowed`]; passing one here gives a series [`Series::new`] would refuse, and
    /// subscribing to it fails with [`ErrorKind::InvalidSubscription`].
    #[must_use]
    pub fn metric(metric: Metric) -> Self {
        Self {
            metric,
            window: None,
            department_id: None,
        }
    }

    /// An account-wide series of a windowed metric.
    #[must_use]
    pub fn windowed(metric: Metric, window: Window) -> Self {
        Self {
            metric,
            window: Some(window),
            department_id: None,
        }
    }

    /// The same series restricted to one department.
    #[must_use]
    pub fn department(mut self, department_id: u64) -> Self {
        self.department_id = Some(department_id);
        self
    }

    pub(crate) fn from_parts(
        metric: Metric,
        window: Option<Window>,
        department_id: Option<u64>,
    ) -> Self {
        Self {
            metric,
            window,
            department_id,
        }
    }

    /// Checks the series as [`Series::new`] would.
    ///
    /// # Errors
    /// As [`Series::new`].
    pub fn validate(&self) -> Result<(), Error> {
        Self::new(self.metric.clone(), self.window, self.department_id).map(|_| ())
    }

    /// The metric.
    pub fn metric_key(&self) -> &Metric {
        &self.metric
    }

    /// The time window, for windowed metrics.
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// The department, or `None` for the whole account.
    pub fn department_id(&self) -> Option<u64> {
        self.department_id
    }

    /// The subscribe frame for this series.
    pub(crate) fn subscribe_frame(&self) -> Subscription {
        self.frame(Subscription::subscribe(self.metric.clone()))
    }

    /// The unsubscribe frame for this series.
    pub(crate) fn unsubscribe_frame(&self) -> Subscription {
        self.frame(Subscription::unsubscribe(self.metric.clone()))
    }

    fn frame(&self, mut frame: Subscription) -> Subscription {
        frame.window = self.window;
        frame.department_id = self.department_id;
        frame
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.metric.family() {
            Some(family) => write!(f, "{family}.{}", self.metric)?,
            None => write!(f, "{}", self.metric)?,
        }
        if let Some(w) = self.window {
            write!(f, "[{}m]", w.minutes())?;
        }
        if let Some(d) = self.department_id {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_window_and_department() {
        let s = Series::windowed(Metric::SatisfactionGood, Window::Minutes60).department(7);
        insta::assert_snapshot!(s.subscribe_frame().encode().unwrap(), @r#"{"topic":"chats.satisfaction_good","action":"subscribe","window":60,"department_id":7}"#);
        insta::assert_snapshot!(Series::metric(Metric::AgentsOnline).unsubscribe_frame().encode().unwrap(), @r#"{"topic":"agents.agents_online","action":"unsubscribe"}"#);
    }

    #[test]
    fn catalogue_rules() {
        assert!(Series::new(Metric::MissedChats, Some(Window::Minutes30), None).is_ok());
        let err = Series::new(Metric::MissedChats, Some(Window::Unknown(45)), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSubscription);
        assert!(Series::new(Metric::Unknown("new_metric".into()), None, Some(3)).is_ok());
        assert!(Series::metric(Metric::SatisfactionBad).validate().is_err());
    }
}

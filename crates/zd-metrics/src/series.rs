//! [`Series`]: one metric, in one window, for one department (or the whole account).

use std::fmt;

use zd_wire::realtime::{Family, Metric, Subscription, Window};

use crate::{Error, ErrorKind};

/// What a feed subscribes to and what a snapshot holds a value for: a metric, its time window
/// (windowed metrics only) and an optional department (`None` = the whole account).
///
/// Build one with [`Series::new`] (checks the window against the catalogue) or the shorthand
/// constructors. A metric unknown to this crate is subscribed under the `chats` family unless
/// [`Series::agent_metric`] or [`Series::with_family`] names another.
///
/// ```
/// use zd_metrics::{Metric, Series, Window};
///
/// let missed = Series::windowed(Metric::MissedChats, Window::Minutes30).department(5);
/// assert_eq!(missed.to_string(), "chats.missed_chats[30m]@5");
/// assert!(Series::new(Metric::MissedChats, None, None).is_err());
/// assert!(Series::new(Metric::ActiveChats, Some(Window::Minutes60), None).is_err());
/// let queue = Series::agent_metric(Metric::Unknown("agents_queued".into()));
/// assert_eq!(queue.to_string(), "agents.agents_queued");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    metric: Metric,
    /// A family other than the default one (the catalogue's, or `chats` for a metric the
    /// catalogue does not know). Kept only when it differs, so equal series compare equal
    /// however they were built; boxed because it is rare and a `Series` sits in every event.
    family: Option<Box<Family>>,
    window: Option<Window>,
    department_id: Option<u64>,
}

impl Series {
    /// A series, checked against the catalogue: windowed metrics (missed chats, satisfaction)
    /// need a window of 30 or 60 minutes, other known metrics take none. Metrics unknown to
    /// this crate are accepted as they are, in the `chats` family (see
    /// [`Series::with_family`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSubscription`] when the window does not fit the metric.
    pub fn new(
        metric: Metric,
        window: Option<Window>,
        department_id: Option<u64>,
    ) -> Result<Self, Error> {
        Self::checked(metric, None, window, department_id)
    }

    fn checked(
        metric: Metric,
        family: Option<Box<Family>>,
        window: Option<Window>,
        department_id: Option<u64>,
    ) -> Result<Self, Error> {
        let known = !matches!(metric, Metric::Unknown(_));
        if known && let Some(family) = &family {
            return Err(Error::new(
                ErrorKind::InvalidSubscription,
                format!("{metric} is not a {family} metric"),
            ));
        }
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
            family,
            window,
            department_id,
        })
    }

    /// An account-wide series of a metric without a window. For a windowed metric use
    /// [`Series::windowed`]; passing one here gives a series [`Series::new`] would refuse, and
    /// subscribing to it fails with [`ErrorKind::InvalidSubscription`].
    #[must_use]
    pub fn metric(metric: Metric) -> Self {
        Self::from_parts(metric, None, None)
    }

    /// An account-wide series of an agent metric: [`Series::metric`] in the `agents` family,
    /// for agent metrics this crate does not know yet (as [`MetricsClient::agent_metric`]
    /// pulls them). A known chat metric here gives a series [`Series::new`] would refuse.
    ///
    /// [`MetricsClient::agent_metric`]: crate::MetricsClient::agent_metric
    #[must_use]
    pub fn agent_metric(metric: Metric) -> Self {
        Self::metric(metric).with_family(Family::Agents)
    }

    /// An account-wide series of a windowed metric.
    #[must_use]
    pub fn windowed(metric: Metric, window: Window) -> Self {
        Self::from_parts(metric, Some(window), None)
    }

    /// The same series in another family: the topic a metric unknown to this crate is
    /// subscribed under (`agents.<key>` for [`Family::Agents`]). A known metric belongs to
    /// its catalogue family; naming another gives a series [`Series::new`] would refuse.
    #[must_use]
    pub fn with_family(mut self, family: Family) -> Self {
        let default = self.metric.family().unwrap_or(Family::Chats);
        self.family = (family != default).then(|| Box::new(family));
        self
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
            family: None,
            window,
            department_id,
        }
    }

    /// The series of a value in an update of `family`: an unknown metric takes the update's
    /// family, so it equals the series subscribed under that topic; a known one keeps its own.
    pub(crate) fn from_update(
        family: &Family,
        metric: Metric,
        window: Option<Window>,
        department_id: Option<u64>,
    ) -> Self {
        let series = Self::from_parts(metric, window, department_id);
        if matches!(series.metric, Metric::Unknown(_)) {
            series.with_family(family.clone())
        } else {
            series
        }
    }

    /// Checks the series as [`Series::new`] would, and that a known metric is in its own
    /// family.
    ///
    /// # Errors
    /// As [`Series::new`].
    pub fn validate(&self) -> Result<(), Error> {
        Self::checked(
            self.metric.clone(),
            self.family.clone(),
            self.window,
            self.department_id,
        )
        .map(|_| ())
    }

    /// The metric.
    pub fn metric_key(&self) -> &Metric {
        &self.metric
    }

    /// The family the series is subscribed under: the catalogue's for a known metric,
    /// `chats` for an unknown one unless [`Series::with_family`] set another.
    pub fn family(&self) -> Family {
        match &self.family {
            Some(family) => (**family).clone(),
            None => self.metric.family().unwrap_or(Family::Chats),
        }
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
        // The frame's topic already names the metric; only the family may differ.
        frame.topic.family = self.family();
        frame.window = self.window;
        frame.department_id = self.department_id;
        frame
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.family(), self.metric)?;
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
        let err = Series::metric(Metric::ActiveChats)
            .with_family(Family::Agents)
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSubscription);
    }

    #[test]
    fn an_unknown_metric_keeps_the_family_it_is_given() {
        let queued = Metric::Unknown("agents_queued".into());
        let agents = Series::agent_metric(queued.clone()).department(3);
        assert!(agents.validate().is_ok());
        assert_eq!(agents.family(), Family::Agents);
        insta::assert_snapshot!(agents.subscribe_frame().encode().unwrap(), @r#"{"topic":"agents.agents_queued","action":"subscribe","department_id":3}"#);
        insta::assert_snapshot!(agents.unsubscribe_frame().encode().unwrap(), @r#"{"topic":"agents.agents_queued","action":"unsubscribe","department_id":3}"#);
        assert_eq!(agents.to_string(), "agents.agents_queued@3");
        // The default family is not stored: however it was named, the series is the same.
        let chats = Series::metric(queued.clone());
        assert_eq!(chats, Series::metric(queued).with_family(Family::Chats));
        assert_eq!(chats.family(), Family::Chats);
        assert_ne!(
            chats,
            Series::agent_metric(Metric::Unknown("agents_queued".into()))
        );
        assert_eq!(
            Series::agent_metric(Metric::AgentsAway),
            Series::metric(Metric::AgentsAway)
        );
    }
}

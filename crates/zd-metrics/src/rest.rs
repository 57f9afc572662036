//! The REST pull: `GET /stream/chats[/{key}]` and `GET /stream/agents[/{key}]`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use zd_wire::realtime::{Family, Metric, ServerFrame, Window};

use crate::transport::{BoxedSource, USER_AGENT_VALUE, status_error};
use crate::update::flatten;
use crate::{Error, ErrorKind, MetricUpdate, MetricsClient, Series};

/// What a REST pull returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The department the values are for, `None` for the whole account: always the one
    /// requested (a body with `"department_id":null` for a department's pull is that
    /// department's; one naming another department is an error).
    pub department_id: Option<u64>,
    /// `false` when the service answered "Not Computed!" (no data yet, or after a long
    /// inactivity): every value is then absent.
    pub computed: bool,
    /// The values, one per series (windowed metrics give one per window).
    pub values: Vec<MetricUpdate>,
}

impl Report {
    /// The value of a series: `None` when absent, not computed, or `null`.
    pub fn get(&self, series: &Series) -> Option<i64> {
        self.values
            .iter()
            .find(|u| u.series == *series)
            .and_then(|u| u.value)
    }

    /// Whether the report has an entry (possibly `null`) for the series.
    pub fn contains(&self, series: &Series) -> bool {
        self.values.iter().any(|u| u.series == *series)
    }
}

impl MetricsClient {
    /// `GET /stream/chats`: every chat metric.
    pub fn chats(&self) -> Pull<'_> {
        Pull::new(self, Family::Chats, None)
    }

    /// `GET /stream/chats/{metric}`: one chat metric.
    pub fn chat_metric(&self, metric: Metric) -> Pull<'_> {
        Pull::new(self, Family::Chats, Some(metric))
    }

    /// `GET /stream/agents`: every agent metric.
    pub fn agents(&self) -> Pull<'_> {
        Pull::new(self, Family::Agents, None)
    }

    /// `GET /stream/agents/{metric}`: one agent metric.
    pub fn agent_metric(&self, metric: Metric) -> Pull<'_> {
        Pull::new(self, Family::Agents, Some(metric))
    }
}

/// A REST pull being built: add a window or a department, then `.await` it (or call
/// [`Pull::send`]).
///
/// Each pull spends one request of the account's 200/minute budget.
///
/// # Errors
/// [`ErrorKind::LocalRateLimited`] without sending; [`ErrorKind::Unauthorized`] (401,
/// as the HTTP status or as the `status_code` of a 200 body; either invalidates the
/// credentials), [`ErrorKind::RateLimited`] (429, with [`Error::retry_after`]),
/// [`ErrorKind::HttpStatus`], [`ErrorKind::ServerStatus`] (another `status_code` in the body,
/// an update's included, as the feed refuses it), [`ErrorKind::Decode`] (also for values of
/// another department than the one requested), [`ErrorKind::TooLarge`], [`ErrorKind::Timeout`],
/// [`ErrorKind::Transport`]; [`ErrorKind::InvalidSubscription`] for a window on agent
/// metrics or a metric of the other family. "Not Computed!" is not an error: see
/// [`Report::computed`].
#[derive(Debug)]
#[must_use = "a pull does nothing until awaited"]
pub struct Pull<'c> {
    client: &'c MetricsClient,
    family: Family,
    metric: Option<Metric>,
    window: Option<Window>,
    department_id: Option<u64>,
}

impl<'c> Pull<'c> {
    fn new(client: &'c MetricsClient, family: Family, metric: Option<Metric>) -> Self {
        Self {
            client,
            family,
            metric,
            window: None,
            department_id: None,
        }
    }

    /// Only this window of the windowed chat metrics (30 or 60 minutes).
    pub fn window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Only this department.
    pub fn department(mut self, department_id: u64) -> Self {
        self.department_id = Some(department_id);
        self
    }

    fn path_and_query(&self) -> Result<String, Error> {
        if let Some(metric) = &self.metric
            && metric.family().is_some_and(|f| f != self.family)
        {
            return Err(Error::new(
                ErrorKind::InvalidSubscription,
                format!("{metric} is not a {} metric", self.family),
            ));
        }
        if let Some(window) = self.window {
            if self.family == Family::Agents {
                return Err(Error::new(
                    ErrorKind::InvalidSubscription,
                    "agent metrics have no time window",
                ));
            }
            if !window.is_known() {
                return Err(Error::new(
                    ErrorKind::InvalidSubscription,
                    format!("windows are 30 or 60 minutes, not {}", window.minutes()),
                ));
            }
        }
        let mut path = self.family.as_str().to_owned();
        if let Some(metric) = &self.metric {
            path.push('/');
            path.extend(url::form_urlencoded::byte_serialize(
                metric.key().as_bytes(),
            ));
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(window) = self.window {
            query.append_pair("window", &window.minutes().to_string());
        }
        if let Some(department_id) = self.department_id {
            query.append_pair("department_id", &department_id.to_string());
        }
        let query = query.finish();
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query);
        }
        Ok(path)
    }

    /// Sends the request.
    ///
    /// # Errors
    /// See [`Pull`].
    pub async fn send(self) -> Result<Report, Error> {
        let inner = &self.client.inner;
        let path = self.path_and_query()?;
        let url = inner
            .rest_base
            .join(&path)
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, path.clone()).with_source(e))?;
        inner.limits.take_request()?;
        let secret = self.client.authorization().await?;
        let mut auth = HeaderValue::from_str(secret.expose_secret()).map_err(|e| {
            Error::new(
                ErrorKind::Credentials,
                "authorization value is not a valid header",
            )
            .with_source(e)
        })?;
        auth.set_sensitive(true);
        // With the origin: a failure must say which endpoint it could not reach.
        let what = format!("GET {}{}", url.origin().ascii_serialization(), url.path());
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, what.clone()).with_source(e))?;
        let max_body = inner.max_body_bytes;
        let exchange = async {
            let response = inner
                .http
                .request(request)
                .await
                .map_err(|e| Error::new(ErrorKind::Transport, what.clone()).with_source(e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        Error::new(
                            ErrorKind::TooLarge,
                            format!("{what}: over {max_body} bytes"),
                        )
                    } else {
                        Error::new(ErrorKind::Transport, what.clone()).with_source(BoxedSource(e))
                    }
                    .with_status(parts.status.as_u16())
                })?
                .to_bytes();
            Ok::<_, Error>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(inner.rest_timeout, exchange)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, what.clone()))??;
        if !parts.status.is_success() {
            if parts.status.as_u16() == 401 {
                inner.credentials.invalidate_if_current(&secret);
            }
            return Err(status_error(
                parts.status.as_u16(),
                &parts.headers,
                &body,
                &what,
            ));
        }
        let report = decode_report(&body, self.department_id, &what);
        // A refusal in a 200 body is the same refusal as an HTTP 401, and as the feed's 401
        // frame: refreshable credentials must renew before the next request.
        if let Err(e) = &report
            && e.kind() == ErrorKind::Unauthorized
        {
            inner.credentials.invalidate_if_current(&secret);
        }
        report
    }
}

fn decode_report(body: &[u8], department_id: Option<u64>, what: &str) -> Result<Report, Error> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Error::new(ErrorKind::Decode, what.to_owned())
            .with_body(body)
            .with_source(e)
    })?;
    let frame = ServerFrame::decode(text).map_err(|e| {
        let kind = if matches!(e.kind(), zd_wire::ErrorKind::FrameTooLarge { .. }) {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Decode
        };
        Error::new(kind, what.to_owned())
            .with_body(body)
            .with_source(e)
    })?;
    match frame {
        // As on the feed: an update whose status is not 200 carries values nobody vouches
        // for, and its status is read as a status frame's.
        ServerFrame::Update(update) if update.status_code != 200 => {
            Err(refusal(update.status_code, "", what))
        }
        ServerFrame::Update(mut update) => {
            update.department_id = department(update.department_id, department_id, body, what)?;
            Ok(Report {
                department_id: update.department_id,
                computed: true,
                values: flatten(&update).collect(),
            })
        }
        ServerFrame::NotComputed => Ok(Report {
            department_id,
            computed: false,
            values: Vec::new(),
        }),
        ServerFrame::Status(status) => {
            let message = status
                .message
                .as_ref()
                .and_then(|m| m.as_text())
                .unwrap_or_default();
            Err(refusal(status.status_code, message, what))
        }
        _ => Err(
            Error::new(ErrorKind::Decode, format!("{what}: not a metrics body")).with_body(body),
        ),
    }
}

/// The department a body's values are for: the one requested. A body that names none (`null`)
/// for a department's pull is taken to be that department's: its values seed that
/// department's series, not the account's. A body that names another department (or one for
/// an account-wide pull) contradicts the request and is refused rather than reported as what
/// was asked for.
fn department(
    answered: Option<u64>,
    requested: Option<u64>,
    body: &[u8],
    what: &str,
) -> Result<Option<u64>, Error> {
    match (requested, answered) {
        (Some(requested), None) => Ok(Some(requested)),
        (requested, answered) if requested == answered => Ok(answered),
        (requested, answered) => {
            let name = |d: Option<u64>| {
                d.map_or_else(
                    || "the whole account".to_owned(),
                    |d| format!("department {d}"),
                )
            };
            Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "{what}: values for {} in answer to a pull for {}",
                    name(answered),
                    name(requested)
                ),
            )
            .with_body(body))
        }
    }
}

/// The error of a status code in a body, classified as the feed classifies a status frame.
fn refusal(status_code: u16, message: &str, what: &str) -> Error {
    let kind = match status_code {
        401 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::ServerStatus,
    };
    Error::new(kind, what.to_owned())
        .with_status(status_code)
        .with_body(message.as_bytes())
}

impl<'c> IntoFuture for Pull<'c> {
    type Output = Result<Report, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use zd_auth::StaticToken;

    use super::*;

    #[tokio::test]
    async fn paths_and_validation() {
        let client = MetricsClient::new(StaticToken::bearer("t").unwrap()).unwrap();
        assert_eq!(client.chats().path_and_query().unwrap(), "chats");
        assert_eq!(
            client
                .chat_metric(Metric::MissedChats)
                .window(Window::Minutes30)
                .department(5)
                .path_and_query()
                .unwrap(),
            "chats/missed_chats?window=30&department_id=5"
        );
        assert_eq!(
            client
                .agent_metric(Metric::AgentsOnline)
                .department(2)
                .path_and_query()
                .unwrap(),
            "agents/agents_online?department_id=2"
        );
        let err = client
            .agents()
            .window(Window::Minutes60)
            .path_and_query()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSubscription);
        let err = client
            .chat_metric(Metric::AgentsAway)
            .path_and_query()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSubscription);
    }

    #[test]
    fn not_computed_is_absent_not_an_error() {
        let report = decode_report(
            br#"{"status_code":200,"message":"Not Computed!"}"#,
            Some(4),
            "GET",
        )
        .unwrap();
        assert!(!report.computed);
        assert_eq!(report.department_id, Some(4));
        assert_eq!(
            report.get(&Series::metric(Metric::IncomingChats).department(4)),
            None
        );
    }

    #[test]
    fn windowed_report() {
        let report = decode_report(
            br#"{"content":{"topic":"chats","data":{"missed_chats":{"30":1,"60":2}},"type":"update","department_id":null},"status_code":200}"#,
            None,
            "GET",
        )
        .unwrap();
        assert!(report.computed);
        assert_eq!(
            report.get(&Series::windowed(Metric::MissedChats, Window::Minutes60)),
            Some(2)
        );
        let err = decode_report(
            br#"{"status_code":401,"message":"Unable to verify"}"#,
            None,
            "GET",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn an_update_whose_status_is_not_200_is_refused_as_the_feed_refuses_it() {
        let body = |status: u16| {
            format!(
                r#"{{"content":{{"topic":"chats","data":{{"active_chats":7}},"type":"update","department_id":null}},"status_code":{status}}}"#
            )
        };
        let err = decode_report(body(500).as_bytes(), None, "GET").unwrap_err();
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::ServerStatus, Some(500))
        );
        let err = decode_report(body(401).as_bytes(), None, "GET").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        let err = decode_report(body(429).as_bytes(), None, "GET").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        let report = decode_report(body(200).as_bytes(), None, "GET").unwrap();
        assert_eq!(report.get(&Series::metric(Metric::ActiveChats)), Some(7));
    }
}

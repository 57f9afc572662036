//! The emulator answers programs and its own page, not other websites.
//!
//! A page on any site a developer visits can send a plain cross-site POST to
//! `http://127.0.0.1:{port}/_emulator/...` or `/graphql/request` (no preflight for a
//! body-less or `text/plain` request), which would reset the emulator, play visitors, or
//! start a session with the documented demo token (ending the running bot's session) on a
//! running `zd emulator` or `zd demo`. Browsers name the page's origin on such requests;
//! programs (tests, curl, the bench harness) send none, and the emulator's own visitor page is
//! of the same origin.
//!
//! A site can also point its own name at 127.0.0.1 once its page has loaded (DNS rebinding):
//! the page's requests then reach the emulator as of the page's own origin, and may read the
//! answers, tokens and key secrets among them. Only the `Host` header tells those apart, so
//! every route refuses a `Host` that is not a name the emulator goes by.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::json;

/// Refuses, with 403, a request that changes something and comes from another site's page.
pub(crate) async fn same_origin_only(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || !cross_site(request.headers())
    {
        return next.run(request).await;
    }
    forbidden(
        "cross-site requests to the emulator are refused: use it from a program, or from the \
         emulator's own page",
    )
}

/// As [`same_origin_only`], except that a request whose body is declared JSON passes: a page
/// of another site cannot send one without a CORS preflight, which the emulator does not
/// answer, while a GraphQL IDE extension can (the getting-started guide suggests ChromiQL for
/// schema completion), and names its own origin.
pub(crate) async fn same_origin_or_json(request: Request, next: Next) -> Response {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return next.run(request).await;
    }
    same_origin_only(request, next).await
}

fn forbidden(error: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "error": error }))).into_response()
}

/// The names a request may give in its `Host`: `localhost`, loopback addresses, the bound
/// address, and the names (or addresses) the embedder allowed.
#[derive(Debug, Clone)]
pub(crate) struct LocalHosts {
    bound: IpAddr,
    allowed_names: Arc<[String]>,
    allowed_addresses: Arc<[IpAddr]>,
}

impl LocalHosts {
    /// `allowed` as the embedder wrote them: read once here in the forms a `Host` could give
    /// (`[v6]`, a port, a trailing dot, any case), so that none silently never matches.
    pub(crate) fn new(bound: IpAddr, allowed: &[String]) -> Self {
        let mut names = Vec::new();
        let mut addresses = Vec::new();
        for entry in allowed {
            match allowed_entry(entry) {
                Allowed::Address(ip) => addresses.push(ip.to_canonical()),
                Allowed::Name(name) => names.push(name),
                Allowed::Nothing => {
                    tracing::warn!(entry = %entry, "an allowed host name that no Host can give is ignored");
                }
            }
        }
        Self {
            bound,
            allowed_names: names.into(),
            allowed_addresses: addresses.into(),
        }
    }

    /// Whether `host` (a `Host` header's value: a name or address, and maybe a port) is one
    /// the emulator goes by.
    fn allows(&self, host: &[u8]) -> bool {
        let Some((name, bracketed)) = std::str::from_utf8(host).ok().and_then(host_part) else {
            return false;
        };
        let ip = name.parse::<IpAddr>().ok();
        // Brackets hold an IPv6 address and nothing else, and an IPv6 address comes in them
        // (RFC 3986 section 3.2.2): `[localhost]` or a bare `::1:8090` names nothing a URL
        // could be made of (the emulator builds URLs from the `Host` it was sent).
        if bracketed != matches!(ip, Some(IpAddr::V6(_))) {
            return false;
        }
        if let Some(ip) = ip {
            let ip = ip.to_canonical();
            // Bound to every interface, the emulator is reached at whichever of the machine's
            // addresses, which it does not know; a rebinding page names itself, never an
            // address, so any address is safe to answer.
            return ip.is_loopback()
                || ip == self.bound
                || self.bound.is_unspecified()
                || self.allowed_addresses.contains(&ip);
        }
        // A name may be given fully qualified, with the root's empty label last (`localhost.`):
        // it is the same name, and no page can own it that could not own it without the dot.
        // One dot only: `localhost..` is no name at all.
        let name = name.strip_suffix('.').unwrap_or(name);
        name.eq_ignore_ascii_case("localhost")
            || self
                .allowed_names
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// An entry of the embedder's allowed hosts, read.
#[derive(Debug, PartialEq, Eq)]
enum Allowed {
    Address(IpAddr),
    Name(String),
    /// Empty, or a name no `Host` header can carry.
    Nothing,
}

/// Reads an allowed host as a `Host` would give it: an address (`[v6]` brackets and a port
/// dropped) or a name (a port and one trailing dot dropped).
fn allowed_entry(entry: &str) -> Allowed {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Allowed::Address(ip);
    }
    let Some((host, bracketed)) = host_part(entry) else {
        return Allowed::Nothing;
    };
    if bracketed {
        return host.parse().map_or(Allowed::Nothing, Allowed::Address);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Allowed::Address(ip);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    // What `allows` compares a Host's name with: no empty label, nothing but a DNS name's
    // letters, digits, hyphens and dots (an underscore is seen in container names).
    let valid = !name.is_empty()
        && !name.split('.').any(str::is_empty)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if valid {
        Allowed::Name(name.to_ascii_lowercase())
    } else {
        Allowed::Nothing
    }
}

/// The name or address of a `Host` value without its port, and whether it was in brackets
/// (`[v6]`, `[v6]:port`); `None` when what follows it is no port.
pub(crate) fn host_part(host: &str) -> Option<(&str, bool)> {
    match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => Some((v6, true)),
            Some((v6, port)) if port.strip_prefix(':').is_some_and(is_port) => Some((v6, true)),
            _ => None,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => Some((name, false)),
            Some(_) => None,
            None => Some((host, false)),
        },
    }
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

/// The `Host` a request was sent to. Every route sits behind [`local_hosts_only`],
/// so it is a name or address the emulator goes by, with its port: URLs built from it reach
/// the emulator the way the client did (a container's service name, a published port), where
/// the bound address (`0.0.0.0`) would not.
pub(crate) fn host_of(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
}

/// Refuses, with 403, a request whose `Host` is not a name the emulator goes by (see the
/// module docs). A request without one (HTTP/1.0) names nothing a page could have chosen. A
/// request line with a whole URL names the host there too, and that one counts over the
/// header (RFC 9112 section 3.2.2), so both are checked.
pub(crate) async fn local_hosts_only(
    State(hosts): State<LocalHosts>,
    request: Request,
    next: Next,
) -> Response {
    let header = request.headers().get(header::HOST);
    let authority = request.uri().authority();
    if header.is_none_or(|h| hosts.allows(h.as_bytes()))
        && authority.is_none_or(|a| hosts.allows(a.host().as_bytes()))
    {
        return next.run(request).await;
    }
    forbidden(
        "requests for this host name are refused: the emulator answers to localhost, loopback \
         addresses and the address it is bound to (a page of another site can point its own \
         name at this address); use one of those, or allow the name with \
         EmulatorBuilder::allow_host (SunshineConfig::allow_host for the Sunshine router alone)",
    )
}

/// Whether the browser says the request comes from a page of another origin.
fn cross_site(headers: &http::HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(http::HeaderValue::as_bytes);
    // `Origin: scheme://host[:port]` (or `null` for an opaque origin, which is never ours).
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    match (authority, host) {
        (Some(a), Some(h)) => !a.eq_ignore_ascii_case(h),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_pages_of_other_origins_are_cross_site() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8090")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://127.0.0.1:8090"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "null"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8090"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }

    #[test]
    fn only_the_names_the_emulator_goes_by_are_local() {
        let hosts = LocalHosts::new([127, 0, 0, 1].into(), &["emulator".into()]);
        for host in [
            "127.0.0.1:8090",
            "127.0.0.1",
            "127.1.2.3:8090",
            "localhost:8090",
            "LOCALHOST",
            "[::1]:8090",
            "[::1]",
            "[::ffff:127.0.0.1]:8090",
            "emulator:8090",
            "localhost.",
            "localhost.:8090",
            "LOCALHOST.:8090",
            "emulator.:8090",
        ] {
            assert!(hosts.allows(host.as_bytes()), "{host}");
        }
        for host in [
            "rebind.example:8090",
            "rebind.example",
            "localhost.rebind.example:8090",
            "localhost.rebind.example",
            "localhost.rebind.example.:8090",
            "localhost..:8090",
            "localhost..",
            ".:8090",
            ".",
            "127.0.0.1.:8090",
            "127.0.0.1.nip.io:8090",
            "192.168.1.5:8090",
            "localhost:80x",
            "localhost:",
            "[::1]x",
            "[::1",
            "[localhost]:8090",
            "[127.0.0.1]:8090",
            "[emulator]",
            "",
        ] {
            assert!(!hosts.allows(host.as_bytes()), "{host}");
        }
        assert!(!hosts.allows(b"local\xffhost"));

        let everywhere = LocalHosts::new([0, 0, 0, 0].into(), &[]);
        assert!(everywhere.allows(b"192.168.1.5:8090"));
        assert!(everywhere.allows(b"[fe80::1]:8090"));
        // An IPv6 address outside brackets: its last group reads as a port.
        assert!(!everywhere.allows(b"fe80::1:8090"));
        assert!(!everywhere.allows(b"::1:8090"));
        assert!(!everywhere.allows(b"rebind.example:8090"));
        let lan = LocalHosts::new([192, 168, 1, 5].into(), &[]);
        assert!(lan.allows(b"192.168.1.5:8090"));
        assert!(!lan.allows(b"192.168.1.6:8090"));

        // An allowed address, as an embedder of the Sunshine router alone (which does not
        // know the address it is served at) names it.
        let allowed = LocalHosts::new([127, 0, 0, 1].into(), &["192.168.1.5".into()]);
        assert!(allowed.allows(b"192.168.1.5:8090"));
        assert!(allowed.allows(b"[::ffff:192.168.1.5]:8090"));
        assert!(!allowed.allows(b"192.168.1.6:8090"));
        // An address is compared as one: with a dot after it, it is no name either.
        assert!(!allowed.allows(b"192.168.1.5.:8090"));
    }

    #[test]
    fn allowed_hosts_are_read_in_the_forms_a_host_header_gives() {
        let hosts = LocalHosts::new(
            [127, 0, 0, 1].into(),
            &[
                "[fd00::1]".into(),
                "[fd00::2]:8090".into(),
                "10.0.0.7:8090".into(),
                "Emulator:8090".into(),
                "svc.internal.".into(),
                " spaced ".into(),
            ],
        );
        for host in [
            "[fd00::1]:8090",
            "[fd00::2]",
            "10.0.0.7:9000",
            "emulator:8090",
            "EMULATOR",
            "svc.internal:8090",
            "svc.internal.",
            "spaced:8090",
        ] {
            assert!(hosts.allows(host.as_bytes()), "{host}");
        }
        assert!(!hosts.allows(b"fd00::1.example"));
        for nothing in ["", "[fd00::1", "emulator:80x", "a..b", "bad host", "."] {
            assert_eq!(allowed_entry(nothing), Allowed::Nothing, "{nothing:?}");
        }
    }
}

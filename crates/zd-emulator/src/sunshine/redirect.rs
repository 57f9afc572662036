//! Where an OAuth authorize sends the browser back.
//!
//! Both authorize endpoints approve at once, so a link anyone can craft would otherwise make
//! the emulator hand a code, or an agent's token in the fragment, to a site of the link's
//! choosing. The services send the browser only to a URI the client is configured with: the
//! bridge's `redirect_uri` "must be contained in the list configured by your integration", and
//! a Chat OAuth client is created with its `redirect_uris`. RFC 6749 section 4.1.2.1: a
//! request naming another gets an error and no redirect.
//!
//! The emulator's clients are configured with [`SunshineConfig::allow_redirect_uri`]'s list
//! and, so that a native app or a test can use any port (RFC 8252 section 7.3), any `http` or
//! `https` URI on a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) or on the origin the
//! request itself came to (the emulator's own page).

use axum::http::HeaderMap;

use super::SunshineConfig;
use crate::control::origin::host_part;

/// Whether the browser may be sent to `uri` by an authorize request with `headers`.
pub(crate) fn allowed(config: &SunshineConfig, headers: &HeaderMap, uri: &str) -> bool {
    if config.allowed_redirect_uris().iter().any(|u| u == uri) {
        return true;
    }
    let Some((scheme, authority)) = origin(uri) else {
        return false;
    };
    let own = crate::control::origin::host_of(headers)
        .is_some_and(|host| scheme == "http" && authority.eq_ignore_ascii_case(host));
    own || loopback(authority)
}

/// The scheme (lower case) and authority of an absolute `http(s)` URI, read the way a browser
/// would read it, or `None` for anything a browser could read differently: the URI is sent as
/// given in `Location`, so a userinfo (`http://localhost@evil.example/`), a backslash (a path
/// separator to a browser), whitespace or control characters (which browsers drop), a
/// non-ASCII character or a fragment (forbidden in a redirect URI by RFC 6749 section 3.1.2)
/// could make the host checked here differ from the host the browser goes to.
fn origin(uri: &str) -> Option<(&'static str, &str)> {
    if !uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#')
    {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        return None;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((scheme, authority))
}

/// Whether `authority` names a loopback host as a browser reads it (the WHATWG URL parser): an
/// empty port (`localhost:`) is the scheme's default, and one trailing dot ends a name
/// (`localhost.`) or, dropped by the IPv4 parser, an address (`127.0.0.1.`).
fn loopback(authority: &str) -> bool {
    let authority = match authority.strip_suffix(':') {
        // An empty port after a host, not after a port (`localhost:80:` is no URL).
        Some(host) if host.ends_with(']') || !host.contains(':') => host,
        Some(_) => return false,
        None => authority,
    };
    let Some((host, bracketed)) = host_part(authority) else {
        return false;
    };
    let host = match host.strip_suffix('.') {
        Some(name) if !bracketed => name,
        _ => host,
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.to_canonical().is_loopback();
    }
    host.eq_ignore_ascii_case("localhost")
}

/// Where an approved authorize sends the browser: `pairs` in the query of `redirect` (a code)
/// or in the fragment (the implicit grant's token, which a fragment keeps out of server logs).
pub(crate) fn location(redirect: &str, pairs: &[(&str, &str)], in_fragment: bool) -> String {
    let encoded = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let sep = match (in_fragment, redirect.contains('?')) {
        (true, _) => '#',
        (false, true) => '&',
        (false, false) => '?',
    };
    format!("{redirect}{sep}{encoded}")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{allowed, location};
    use crate::sunshine::SunshineConfig;

    fn check(uri: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4000"));
        allowed(&SunshineConfig::default(), &headers, uri)
    }

    #[test]
    fn loopback_hosts_on_any_port_and_the_own_origin_are_allowed() {
        for uri in [
            "http://localhost/cb",
            "http://localhost:8123/cb?x=1",
            "http://LOCALHOST./",
            "http://127.0.0.1:9/",
            "http://127.8.9.10/cb",
            "https://[::1]:443/cb",
            "http://127.0.0.1:4000/page",
            "http://localhost:/",
            "http://127.0.0.1./",
            "http://127.0.0.1.:8080/cb",
            "http://[::1]:/cb",
        ] {
            assert!(check(uri), "{uri}");
        }
    }

    #[test]
    fn other_hosts_and_ambiguous_uris_are_refused() {
        for uri in [
            "https://evil.example/",
            "http://localhost@evil.example/",
            "http://evil.example\\@localhost/",
            "http://evil.example#@localhost/",
            "http://localhost/cb#frag",
            "http:///evil.example",
            "http://localhost.evil.example/",
            "http://127.0.0.1.evil.example/",
            "http://localhost::/",
            "http://localhost:80:/",
            "http://[::1]:8080:/",
            "http://localhost../",
            "http://127.0.0.1../",
            "http://evil.example:/",
            "http://[::1.]/",
            "javascript://localhost/%0aalert(1)",
            "http://local host/",
            "http://localhöst/",
            "//localhost/cb",
            "localhost/cb",
            "",
        ] {
            assert!(!check(uri), "{uri}");
        }
    }

    #[test]
    fn a_configured_uri_is_allowed_as_written() {
        let config = SunshineConfig::default().allow_redirect_uri("https://app.example/cb");
        let headers = HeaderMap::new();
        assert!(allowed(&config, &headers, "https://app.example/cb"));
        assert!(!allowed(&config, &headers, "https://app.example/cb2"));
    }

    #[test]
    fn parameters_go_in_the_query_or_the_fragment() {
        let pairs = [("code", "a b"), ("state", "s&1")];
        assert_eq!(
            location("http://localhost/cb", &pairs, false),
            "http://localhost/cb?code=a+b&state=s%261"
        );
        assert_eq!(
            location("http://localhost/cb?x=1", &pairs, false),
            "http://localhost/cb?x=1&code=a+b&state=s%261"
        );
        assert_eq!(
            location("http://localhost/cb?x=1", &pairs, true),
            "http://localhost/cb?x=1#code=a+b&state=s%261"
        );
    }
}

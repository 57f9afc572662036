//! The body of a refused upgrade: read as far as its framing, a size limit and a short wait
//! allow, because it often says why (a rate limit's reason, a maintenance notice).

use std::time::Duration;

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of a refused upgrade's body kept.
pub const MAX_REFUSAL_BODY: usize = 8 * 1024;
/// The most raw bytes read for it, chunk framing included.
const MAX_REFUSAL_RAW: usize = 2 * MAX_REFUSAL_BODY;
/// How long a refused upgrade's body may take to follow its head: the refusal (status,
/// `Retry-After`) is already known, the body only explains it.
pub(crate) const REFUSAL_BODY_WAIT: Duration = Duration::from_secs(2);

/// How a refused upgrade's body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

impl Framing {
    /// The framing of a response with `status` and `headers`.
    fn of(status: StatusCode, headers: &HeaderMap) -> Self {
        // These have no body whatever their headers say (RFC 9112 section 6.3, rule 1): a
        // `Content-Length` on a 304 is the length of the body a 200 would have had.
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Self::Length(0);
        }
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            return Self::Chunked;
        }
        headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map_or(Self::UntilClose, Self::Length)
    }

    /// The body in `raw` (what followed the head), at most [`MAX_REFUSAL_BODY`] bytes, and
    /// whether reading more cannot change it.
    fn decode(self, raw: &[u8]) -> (Vec<u8>, bool) {
        match self {
            Self::Length(length) => {
                let wanted = length.min(MAX_REFUSAL_BODY);
                let body = raw.get(..wanted).unwrap_or(raw).to_vec();
                let done = body.len() == wanted;
                (body, done)
            }
            Self::UntilClose => {
                let body = raw.get(..MAX_REFUSAL_BODY).unwrap_or(raw).to_vec();
                let done = body.len() == MAX_REFUSAL_BODY;
                (body, done)
            }
            Self::Chunked => dechunk(raw),
        }
    }
}

/// Reads the body of a refused upgrade as far as its framing, [`MAX_REFUSAL_BODY`] and
/// [`REFUSAL_BODY_WAIT`] allow. `raw` is what arrived with the head; a server may flush the
/// head and write the body later, in segments of its own.
pub(crate) async fn refusal_body<S>(
    socket: &mut S,
    status: StatusCode,
    headers: &HeaderMap,
    mut raw: Vec<u8>,
) -> Vec<u8>
where
    S: AsyncRead + Unpin,
{
    let framing = Framing::of(status, headers);
    let read = async {
        let mut chunk = [0_u8; 1024];
        while !framing.decode(&raw).1 && raw.len() < MAX_REFUSAL_RAW {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    };
    // A body that never completes keeps what came; the refusal stands either way.
    let _ = tokio::time::timeout(REFUSAL_BODY_WAIT, read).await;
    framing.decode(&raw).0
}

/// Decodes chunked transfer coding from the start of `raw`: the data so far (at most
/// [`MAX_REFUSAL_BODY`] bytes) and whether it is complete (the last chunk, the limit, or
/// framing that cannot be read further).
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut rest = raw;
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let (line, after) = rest.split_at(line_end);
        let size = std::str::from_utf8(line)
            .ok()
            .and_then(|line| line.split(';').next())
            .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok());
        let Some(size) = size else {
            return (body, true);
        };
        rest = after.get(2..).unwrap_or_default();
        if size == 0 {
            return (body, true);
        }
        let data = rest.get(..size).unwrap_or(rest);
        let room = MAX_REFUSAL_BODY.saturating_sub(body.len());
        body.extend_from_slice(data.get(..room).unwrap_or(data));
        if body.len() >= MAX_REFUSAL_BODY {
            return (body, true);
        }
        // The size is the server's: `ffffffffffffffff` must not overflow the arithmetic.
        match size.checked_add(2).and_then(|end| rest.get(end..)) {
            Some(next) => rest = next,
            None => return (body, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn chunk_framing_is_decoded_as_far_as_it_goes() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), (b"abc".to_vec(), true));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd"), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b"3\r\nab"), (b"ab".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\nabc"), (Vec::new(), true));
        assert_eq!(
            dechunk(b"ffffffffffffffff\r\nabc"),
            (b"abc".to_vec(), false)
        );
        let huge = format!(
            "{:x}\r\n{}",
            MAX_REFUSAL_BODY + 10,
            "x".repeat(MAX_REFUSAL_BODY + 10)
        );
        let (body, done) = dechunk(huge.as_bytes());
        assert_eq!((body.len(), done), (MAX_REFUSAL_BODY, true));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let status = StatusCode::FORBIDDEN;
        let mut headers = HeaderMap::new();
        assert_eq!(Framing::of(status, &headers), Framing::UntilClose);
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static(" 12 "));
        assert_eq!(Framing::of(status, &headers), Framing::Length(12));
        // Transfer-Encoding wins over Content-Length.
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("gzip, chunked"));
        assert_eq!(Framing::of(status, &headers), Framing::Chunked);
        assert_eq!(
            Framing::Length(3).decode(b"abcdef"),
            (b"abc".to_vec(), true)
        );
        assert_eq!(Framing::Length(9).decode(b"abc"), (b"abc".to_vec(), false));
        assert_eq!(Framing::UntilClose.decode(b"abc"), (b"abc".to_vec(), false));
    }

    #[test]
    fn informational_no_content_and_not_modified_have_no_body() {
        for status in [100, 102, 103, 204, 304] {
            let status = StatusCode::from_u16(status).unwrap();
            // Without framing headers, or with ones that would ask for a body.
            let mut headers = HeaderMap::new();
            assert_eq!(
                Framing::of(status, &headers),
                Framing::Length(0),
                "{status}"
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            assert_eq!(
                Framing::of(status, &headers),
                Framing::Length(0),
                "{status}"
            );
        }
        // Complete at once: nothing is waited for.
        assert_eq!(Framing::Length(0).decode(b""), (Vec::new(), true));
    }
}

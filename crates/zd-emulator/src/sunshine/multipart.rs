//! Just enough `multipart/form-data` to take the `source` file of an attachment upload.

use bytes::Bytes;

/// A file part: its bytes, content type and file name.
#[derive(Debug)]
pub(crate) struct FilePart {
    pub(crate) bytes: Bytes,
    pub(crate) content_type: String,
    pub(crate) filename: String,
}

/// RFC 2046: a boundary has 1 to 70 characters. Longer ones are refused, which also bounds
/// the work of each search below.
const MAX_BOUNDARY: usize = 70;

/// Where `needle` first occurs in `hay` at or after `from`: linear time whatever the input
/// (a naive scan of a crafted body costs its length times the needle's).
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = hay.get(from..)?;
    memchr::memmem::find(rest, needle).map(|at| from + at)
}

/// The part named `name` in `body`, given the request's `Content-Type`.
pub(crate) fn part(content_type: &str, body: &Bytes, name: &str) -> Option<FilePart> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)?;
    loop {
        let start = at + delimiter.len();
        if body.get(start..start + 2) == Some(b"--") {
            return None;
        }
        let headers_start = start + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        let content_start = headers_end + 4;
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), content_start)?;
        let mut part_name = None;
        let mut filename = String::from("file");
        let mut ctype = String::from("application/octet-stream");
        for line in headers.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for param in line.split(';').map(str::trim) {
                    if let Some(v) = param.strip_prefix("name=") {
                        part_name = Some(v.trim_matches('"').to_owned());
                    } else if let Some(v) = param.strip_prefix("filename=") {
                        filename = v.trim_matches('"').to_owned();
                    }
                }
            } else if lower.starts_with("content-type:") {
                ctype = line["content-type:".len()..].trim().to_owned();
            }
        }
        if part_name.as_deref() == Some(name) {
            return Some(FilePart {
                bytes: body.slice(content_start..next),
                content_type: ctype,
                filename,
            });
        }
        at = next + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_source_part() {
        let body = Bytes::from_static(
            b"--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XX--\r\n",
        );
        let p = part("multipart/form-data; boundary=XX", &body, "source").unwrap();
        assert_eq!(&p.bytes[..], b"PNGDATA");
        assert_eq!(p.content_type, "image/png");
        assert_eq!(p.filename, "a.png");
        assert!(part("multipart/form-data; boundary=XX", &body, "nope").is_none());
        let long = format!("multipart/form-data; boundary={}", "-".repeat(71));
        assert!(part(&long, &body, "source").is_none(), "71 characters");
    }
}

//! Streaming multipart attachment uploads.

use std::fmt;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;

use crate::error::{Error, ErrorKind};

/// The API's limit on uploaded files (50 MB).
pub const UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// A file to upload as the `source` part of a `multipart/form-data` body, streamed rather
/// than held in memory.
pub struct Upload {
    file_name: String,
    content_type: String,
    length: Option<u64>,
    stream: ByteStream,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// An in-memory file.
    ///
    /// # Errors
    /// [`ErrorKind::UploadTooLarge`] over [`UPLOAD_LIMIT`].
    pub fn from_bytes(
        file_name: impl Into<String>,
        content_type: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let data = data.into();
        let len = data.len() as u64;
        Self::checked(
            file_name.into(),
            content_type.into(),
            Some(len),
            Box::pin(futures_util::stream::once(async move { Ok(data) })),
        )
    }

    /// A file on disk, read in chunks while sending.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be opened, [`ErrorKind::UploadTooLarge`] when it
    /// is over [`UPLOAD_LIMIT`].
    pub async fn from_file(
        path: impl AsRef<std::path::Path>,
        content_type: impl Into<String>,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            Error::with_source(ErrorKind::Io, format!("opening {}", path.display()), e)
        })?;
        let len = file
            .metadata()
            .await
            .map_err(|e| Error::with_source(ErrorKind::Io, "reading file metadata", e))?
            .len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        let stream = futures_util::stream::unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        Self::checked(name, content_type.into(), Some(len), Box::pin(stream))
    }

    /// Any stream of chunks; `length` (when known) lets an oversized file fail before sending,
    /// and the limit is enforced while streaming either way.
    ///
    /// # Errors
    /// [`ErrorKind::UploadTooLarge`] when `length` is over [`UPLOAD_LIMIT`].
    pub fn from_stream<S>(
        file_name: impl Into<String>,
        content_type: impl Into<String>,
        length: Option<u64>,
        stream: S,
    ) -> Result<Self, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    {
        Self::checked(
            file_name.into(),
            content_type.into(),
            length,
            Box::pin(stream),
        )
    }

    fn checked(
        file_name: String,
        content_type: String,
        length: Option<u64>,
        stream: ByteStream,
    ) -> Result<Self, Error> {
        if let Some(len) = length
            && len > UPLOAD_LIMIT
        {
            return Err(Error::new(
                ErrorKind::UploadTooLarge,
                format!("file is {len} bytes; the API accepts at most {UPLOAD_LIMIT}"),
            ));
        }
        Ok(Self {
            file_name,
            content_type,
            length,
            stream,
        })
    }

    /// The file name sent in the part's `Content-Disposition`.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Turns the upload into the multipart body stream and its `Content-Type` header value.
    pub(crate) fn into_multipart(self) -> (String, ByteStream) {
        let boundary = format!("zd-sunshine-{}", uuid::Uuid::new_v4().simple());
        // Quotes and line breaks would end the header early; replace them.
        let safe_name: String = self
            .file_name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let safe_type: String = self
            .content_type
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"source\"; filename=\"{safe_name}\"\r\nContent-Type: {safe_type}\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let mut sent: u64 = 0;
        let body = self.stream.map(move |chunk| {
            let chunk = chunk?;
            sent += chunk.len() as u64;
            if sent > UPLOAD_LIMIT {
                return Err(io::Error::other(LimitExceeded));
            }
            Ok(chunk)
        });
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(body)
            .chain(futures_util::stream::once(
                async move { Ok(Bytes::from(tail)) },
            ));
        (
            format!("multipart/form-data; boundary={boundary}"),
            Box::pin(stream),
        )
    }
}

/// The body-stream error when an upload of unknown length passes [`UPLOAD_LIMIT`] mid-stream;
/// the client finds it in the transport error's chain and reports
/// [`ErrorKind::UploadTooLarge`] instead of a (retryable) transport failure.
#[derive(Debug)]
pub(crate) struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attachment exceeds the 50 MB upload limit ({UPLOAD_LIMIT} bytes)"
        )
    }
}

impl std::error::Error for LimitExceeded {}

/// Whether `err` was caused by an upload passing [`UPLOAD_LIMIT`] mid-stream. `io::Error`
/// hides its payload from `source()`, so each link is also opened as an `io::Error`.
pub(crate) fn limit_exceeded_in(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<LimitExceeded>() {
            return true;
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref)
            && inner.is::<LimitExceeded>()
        {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn limit_is_enforced_while_streaming_when_length_is_unknown() {
        let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
        let chunks = futures_util::stream::iter((0..51).map(move |_| Ok(chunk.clone())));
        let upload =
            Upload::from_stream("big.bin", "application/octet-stream", None, chunks).unwrap();
        let (content_type, mut body) = upload.into_multipart();
        assert!(content_type.starts_with("multipart/form-data; boundary=zd-sunshine-"));
        let mut total = 0usize;
        let mut failed = false;
        while let Some(part) = body.next().await {
            match part {
                Ok(b) => total += b.len(),
                Err(e) => {
                    assert!(e.to_string().contains("50 MB"));
                    assert!(limit_exceeded_in(&e));
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "a 51 MB stream must fail");
        assert!(total as u64 <= UPLOAD_LIMIT + 1024);
    }
}

//! Loading the shared fixtures and re-encoding them through the right decoder.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zd_wire::{Error, chat, realtime};

/// One fixture as listed in a protocol's `manifest.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    pub(crate) file: String,
    pub(crate) decoder: String,
    pub(crate) kind: String,
    #[allow(dead_code)] // documentation for people, checked to be present
    pub(crate) source: String,
}

/// A loaded fixture.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) protocol: &'static str,
    pub(crate) entry: Entry,
    pub(crate) text: String,
}

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

pub(crate) fn load(protocol: &'static str) -> Vec<Fixture> {
    let dir = fixtures_dir().join(protocol);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let entries: Vec<Entry> = serde_json::from_str(&manifest).unwrap();
    entries
        .into_iter()
        .map(|entry| {
            let text = std::fs::read_to_string(dir.join(&entry.file))
                .unwrap_or_else(|e| panic!("{protocol}/{}: {e}", entry.file));
            Fixture {
                protocol,
                entry,
                text,
            }
        })
        .collect()
}

pub(crate) fn all() -> Vec<Fixture> {
    let mut all = load("chat");
    all.extend(load("realtime"));
    all
}

/// Decodes `text` with the named decoder and returns the frame kind and its re-encoding.
pub(crate) fn decode_and_encode(
    protocol: &str,
    decoder: &str,
    text: &str,
) -> Result<(&'static str, String), Error> {
    match (protocol, decoder) {
        ("chat", "client") => {
            let frame = chat::ClientFrame::decode(text)?;
            Ok((frame.kind(), frame.encode()?))
        }
        ("chat", "server") => {
            let frame = chat::ServerFrame::decode(text)?;
            Ok((frame.kind(), frame.encode()?))
        }
        ("chat", "graphql_response") => {
            let raw: &serde_json::value::RawValue =
                serde_json::from_str(text.trim()).map_err(|_| bad())?;
            let response = chat::GraphQlResponse::from_raw(raw)?;
            Ok((
                "graphql_response",
                serde_json::to_string(&response).map_err(|_| bad())?,
            ))
        }
        ("realtime", "client") => {
            let frame = realtime::ClientFrame::decode(text)?;
            Ok((frame.kind(), frame.encode()?))
        }
        ("realtime", "server") => {
            let frame = realtime::ServerFrame::decode(text)?;
            Ok((frame.kind(), frame.encode()?))
        }
        other => panic!("unknown decoder {other:?}"),
    }
}

fn bad() -> Error {
    // Any real decode failure will do as a stand-in error for the test-only HTTP path.
    chat::ServerFrame::decode("{").unwrap_err()
}

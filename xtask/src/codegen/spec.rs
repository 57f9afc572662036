//! Loading the OpenAPI document and checking it against `schemas/sunshine/SPEC.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The pinned identity of the spec the generator was written against.
#[derive(Debug, Deserialize)]
struct Pin {
    version: String,
    sha256: String,
}

/// The default spec location: `<workspace root>/../shared/reference/sunshine/openapi.json`.
pub(crate) fn default_path(root: &Path) -> PathBuf {
    root.join("..")
        .join("shared")
        .join("reference")
        .join("sunshine")
        .join("openapi.json")
}

/// Reads the spec, verifies its sha256 and `info.version` against the pin, and parses it.
pub(crate) fn load(root: &Path, spec: &Path) -> Result<Value, String> {
    let pin_path = root.join("schemas").join("sunshine").join("SPEC.toml");
    let pin_text = std::fs::read_to_string(&pin_path)
        .map_err(|e| format!("cannot read {}: {e}", pin_path.display()))?;
    let pin: Pin = toml::from_str(&pin_text)
        .map_err(|e| format!("{} is not valid: {e}", pin_path.display()))?;
    let bytes = std::fs::read(spec).map_err(|e| {
        format!(
            "cannot read the Sunshine spec at {} ({e}); pass --spec PATH",
            spec.display()
        )
    })?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if !digest.eq_ignore_ascii_case(&pin.sha256) {
        return Err(format!(
            "spec sha256 mismatch: {} has {digest}, {} pins {}; if the spec changed on purpose, \
             update SPEC.toml and rerun `cargo xtask codegen`",
            spec.display(),
            pin_path.display(),
            pin.sha256
        ));
    }
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", spec.display()))?;
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    if version != pin.version {
        return Err(format!(
            "spec version mismatch: {} is `{version}`, {} pins `{}`",
            spec.display(),
            pin_path.display(),
            pin.version
        ));
    }
    Ok(doc)
}

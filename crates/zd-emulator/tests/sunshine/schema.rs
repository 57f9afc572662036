//! A JSON-schema subset (OpenAPI 3.0 flavour) over `serde_json::Value`: type, required,
//! properties, additionalProperties, enum, items, oneOf/anyOf/allOf (with discriminators),
//! `$ref`, nullable, min/max length and items, minimum/maximum, and the string formats
//! `date-time` (RFC 3339), `uri` (absolute, with a scheme) and `email`.
#![allow(
    dead_code,
    clippy::collapsible_if,
    reason = "shared by several test binaries; flat checks read best"
)]

use serde_json::Value;

pub(crate) struct Spec {
    pub(crate) doc: Value,
}

impl Spec {
    /// The official document, or `None` (said loudly) when it is not there. In CI (`CI` set,
    /// and not to `false` or `0`) a missing document fails instead: CI always has `../shared`
    /// beside the repo, so a check that skipped there would pass without checking anything.
    /// `ZD_SUNSHINE_OPENAPI` names another file to read.
    pub(crate) fn load() -> Option<Self> {
        let path = std::env::var_os("ZD_SUNSHINE_OPENAPI").map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/reference/sunshine/openapi.json")
            },
            std::path::PathBuf::from,
        );
        match std::fs::read(&path) {
            Ok(bytes) => Some(Self {
                doc: serde_json::from_slice(&bytes).unwrap(),
            }),
            Err(e) if in_ci() => panic!(
                "the Sunshine OpenAPI document is absent at {}: {e}; CI must have it, so the \
                 schema checks are not skipped there",
                path.display()
            ),
            Err(e) => {
                // Straight to stderr, past the test harness's capture, so a skipped check is
                // seen even when the tests pass.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!(
                        "\n*** SKIPPED: the Sunshine OpenAPI document is absent at {}: {e}; \
                         the schema checks did not run (set CI=1 to make this fail) ***\n",
                        path.display()
                    )
                    .as_bytes(),
                );
                None
            }
        }
    }

    fn resolve<'a>(&'a self, r: &str) -> &'a Value {
        let mut v = &self.doc;
        for part in r.trim_start_matches("#/").split('/') {
            v = &v[part];
        }
        v
    }

    /// The response schema of `operationId` for `status`; `errorResponse` for error statuses
    /// the operation does not list (401, 403, 413, ...).
    pub(crate) fn response_schema(&self, op: &str, status: u16) -> Option<Value> {
        for (_, methods) in self.doc["paths"].as_object().unwrap() {
            for (_, o) in methods.as_object().unwrap() {
                if o["operationId"] == op {
                    let r = &o["responses"][status.to_string()];
                    if r.is_object() {
                        return r["content"]["application/json"]["schema"]
                            .as_object()
                            .map(|s| Value::Object(s.clone()));
                    }
                    if status >= 400 {
                        return Some(
                            serde_json::json!({"$ref": "#/components/schemas/errorResponse"}),
                        );
                    }
                    return None;
                }
            }
        }
        panic!("no operation {op}");
    }

    /// The scopes (`account`, `app`, `integration`) whose credentials may call `op`.
    pub(crate) fn scopes(&self, op: &str) -> Vec<String> {
        for (_, methods) in self.doc["paths"].as_object().unwrap() {
            for (_, o) in methods.as_object().unwrap() {
                if o["operationId"] == op {
                    let security = o.get("security").unwrap_or(&self.doc["security"]);
                    let mut scopes: Vec<String> = security
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|scheme| scheme.as_object().unwrap().values())
                        .flat_map(|list| list.as_array().unwrap())
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect();
                    scopes.sort();
                    scopes.dedup();
                    return scopes;
                }
            }
        }
        panic!("no operation {op}");
    }

    pub(crate) fn operation_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, methods) in self.doc["paths"].as_object().unwrap() {
            for (m, o) in methods.as_object().unwrap() {
                if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                    out.push(o["operationId"].as_str().unwrap().to_owned());
                }
            }
        }
        out
    }

    /// Errors found validating `v` against `schema`, with JSON paths.
    pub(crate) fn validate(&self, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.resolve(r).clone();
            return self.validate(&target, v, path, errors);
        }
        if v.is_null() {
            let nullable = schema
                .get("nullable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || schema.get("allOf").is_some_and(|a| {
                    a.as_array().unwrap().iter().any(|s| {
                        let s = s
                            .get("$ref")
                            .and_then(Value::as_str)
                            .map_or(s, |r| self.resolve(r));
                        s.get("nullable") == Some(&Value::Bool(true))
                    })
                }) && schema.get("nullable") != Some(&Value::Bool(false));
            if nullable || schema.as_object().is_some_and(|o| o.is_empty()) {
                return;
            }
            if schema.get("type").is_some()
                || schema.get("allOf").is_some()
                || schema.get("properties").is_some()
            {
                errors.push(format!("{path}: null where not nullable"));
                return;
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.validate(s, v, path, errors);
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(|s| self.errors(s, v, path).is_empty()) {
                errors.push(format!("{path}: matches none of anyOf"));
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let disc = schema.get("discriminator");
            let by_disc = disc.and_then(|d| {
                let prop = d["propertyName"].as_str()?;
                let value = v.get(prop)?.as_str()?;
                if let Some(m) = d.get("mapping").and_then(|m| m.get(value)) {
                    return Some(serde_json::json!({"$ref": m}));
                }
                one.iter()
                    .find(|s| {
                        s["$ref"]
                            .as_str()
                            .is_some_and(|r| r.rsplit('/').next() == Some(value))
                    })
                    .cloned()
            });
            match by_disc {
                Some(s) => self.validate(&s, v, path, errors),
                None => {
                    let n = one
                        .iter()
                        .filter(|s| self.errors(s, v, path).is_empty())
                        .count();
                    if n != 1 {
                        errors.push(format!("{path}: matches {n} of oneOf"));
                    }
                }
            }
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errors.push(format!("{path}: {v} not in enum"));
            }
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let fine = match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !fine {
                errors.push(format!("{path}: expected {t}, got {v}"));
                return;
            }
        }
        if let (Some(s), Some(f)) = (v.as_str(), schema.get("format").and_then(Value::as_str)) {
            if !format_ok(f, s) {
                errors.push(format!("{path}: {s:?} is not a valid {f}"));
            }
        }
        if let Some(s) = v.as_str() {
            let n = s.chars().count() as u64;
            if schema
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
                || schema
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| n > m)
            {
                errors.push(format!("{path}: length {n} out of bounds"));
            }
        }
        if let Some(x) = v.as_f64() {
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x < m)
                || schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| x > m)
            {
                errors.push(format!("{path}: {x} out of range"));
            }
        }
        if let Some(a) = v.as_array() {
            let n = a.len() as u64;
            if schema
                .get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
                || schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| n > m)
            {
                errors.push(format!("{path}: {n} items out of bounds"));
            }
            if let Some(items) = schema.get("items") {
                for (i, item) in a.iter().enumerate() {
                    self.validate(items, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        if let Some(o) = v.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req {
                    let r = r.as_str().unwrap();
                    if !o.contains_key(r) {
                        errors.push(format!("{path}: missing required {r}"));
                    }
                }
            }
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => self.validate(ps, val, &format!("{path}.{k}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{path}: unexpected {k}")),
                        Some(ap @ Value::Object(_)) => {
                            self.validate(ap, val, &format!("{path}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
    }

    /// Errors in a webhook body: the whole against the spec's webhook request schema, and each
    /// event against the event schema titled with its `type` (stricter than the `anyOf`).
    pub(crate) fn webhook_errors(&self, body: &Value) -> Vec<String> {
        let whole = &self.doc["x-webhooks"]["Webhook Event"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(whole.is_object(), "the spec has no webhook schema");
        let mut errors = self.errors(whole, body, "$");
        let schemas = self.doc["components"]["schemas"].as_object().unwrap();
        for (i, event) in body["events"].as_array().into_iter().flatten().enumerate() {
            let path = format!("$.events[{i}]");
            let kind = event["type"].as_str().unwrap_or_default();
            match schemas.iter().find(|(_, s)| s["title"] == kind) {
                Some((name, _)) => {
                    let s = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
                    self.validate(&s, event, &path, &mut errors);
                }
                None => errors.push(format!("{path}: no event schema for type {kind:?}")),
            }
        }
        errors
    }

    pub(crate) fn errors(&self, schema: &Value, v: &Value, path: &str) -> Vec<String> {
        let mut e = Vec::new();
        self.validate(schema, v, path, &mut e);
        e
    }
}

/// Whether `s` fits the string `format` (unknown formats, like `binary`, pass).
/// Whether the tests run in CI: `CI` set to anything but empty, `false` or `0`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

pub(crate) fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => date_time_ok(s),
        "uri" => uri_ok(s),
        "email" => {
            s.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !s.chars().any(char::is_whitespace)
        }
        _ => true,
    }
}

/// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)` with fields in range.
fn date_time_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| std::str::from_utf8(d).unwrap().parse::<u32>().unwrap())
    };
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return false;
    }
    let (Some(_), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if !((1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && sec <= 60) {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if rest.len() == 6 => {
            let o = rest.as_bytes();
            o[3] == b':' && o[1..3].iter().chain(&o[4..6]).all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// An absolute URI: a scheme (`ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")`), `:`, then no spaces.
fn uri_ok(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

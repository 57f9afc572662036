//! Rust source for the models, one file per area.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::ir::{Def, Field, Kind, Models, Ty};
use super::names::{bare, lit};
use super::{HEADER, REFERENCE};

/// Where the generated models live, as the prefix [`rust_ty`] takes from the operations
/// and the index.
pub(crate) const MODELS: &str = "crate::models::";

/// The Rust spelling of a type; `prefix` qualifies named models (empty inside the models).
pub(crate) fn rust_ty(ty: &Ty, prefix: &str) -> String {
    match ty {
        Ty::Str => "String".to_owned(),
        Ty::I64 => "i64".to_owned(),
        Ty::F64 => "f64".to_owned(),
        Ty::Bool => "bool".to_owned(),
        Ty::Json => "serde_json::Value".to_owned(),
        Ty::Map => "serde_json::Map<String, serde_json::Value>".to_owned(),
        Ty::Vec(inner) => format!("Vec<{}>", rust_ty(inner, prefix)),
        Ty::Named(n) => format!("{prefix}{n}"),
    }
}

fn origin_doc(def: &Def) -> String {
    if def.origin.contains(|c: char| c.is_ascii_uppercase()) && def.area == "operations" {
        format!("/// Inline schema of operation `{}`.\n", def.origin)
    } else {
        format!(
            "/// Schema `{}` of the Sunshine Conversations API.\n",
            def.origin
        )
    }
}

fn field_ty(f: &Field, patch: bool) -> String {
    let mut t = rust_ty(&f.ty, "");
    if f.boxed {
        t = format!("Box<{t}>");
    }
    if patch {
        t = format!("crate::Patch<{t}>");
    } else if f.option {
        t = format!("Option<{t}>");
    }
    t
}

/// Whether `f` of struct `def` is a three-state `Patch`: optional and nullable in a struct only
/// ever sent, where leaving a field out (keep) and sending `null` (unset) differ.
fn is_patch(def: &str, f: &Field, models: &Models) -> bool {
    f.nullable && f.skip_none && models.request_only.contains(def)
}

/// `field(value)` setters for the `Patch` fields: a value, or `Patch::Null` to unset.
fn emit_patch_setters(out: &mut String, name: &str, fields: &[&Field]) {
    if fields.is_empty() {
        return;
    }
    let _ = writeln!(out, "impl {name} {{");
    for f in fields {
        let mut t = rust_ty(&f.ty, "");
        if f.boxed {
            t = format!("Box<{t}>");
        }
        let _ = writeln!(
            out,
            "/// Sets `{}`: a value, or [`crate::Patch::Null`] to send `null` (which unsets it).\n\
             pub fn {}(mut self, value: impl Into<crate::Patch<{t}>>) -> Self {{\n\
             self.{} = value.into();\nself\n}}\n",
            f.json, f.rust, f.rust
        );
    }
    out.push_str("}\n\n");
}

/// Credential-bearing string fields of struct `owner` (key secrets, tokens, passwords,
/// private keys, and those [`super::overrides::secret_field`] names), which the generated
/// `Debug` prints as `[REDACTED]` and an error answer echoing them does not show.
pub(crate) fn sensitive(owner: &str, f: &Field) -> bool {
    let n = f.json.to_ascii_lowercase();
    f.ty == Ty::Str
        && (n.ends_with("secret")
            || n.ends_with("token")
            || n.ends_with("password")
            || n.ends_with("key")
            || n == "certificate"
            || super::overrides::secret_field(owner, &f.json))
}

fn emit_redacted_debug(out: &mut String, name: &str, fields: &[Field], models: &Models) {
    let _ = writeln!(
        out,
        "impl std::fmt::Debug for {name} {{\n\
         fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n\
         f.debug_struct({})",
        lit(name)
    );
    for fl in fields {
        let label = lit(bare(&fl.rust));
        let sensitive = sensitive(name, fl);
        if sensitive && is_patch(name, fl, models) {
            let _ = writeln!(
                out,
                ".field({label}, &self.{}.as_option().map(|_| \"[REDACTED]\"))",
                fl.rust
            );
        } else if sensitive && fl.option {
            let _ = writeln!(
                out,
                ".field({label}, &self.{}.as_ref().map(|_| \"[REDACTED]\"))",
                fl.rust
            );
        } else if sensitive {
            let _ = writeln!(out, ".field({label}, &\"[REDACTED]\")");
        } else {
            let _ = writeln!(out, ".field({label}, &self.{})", fl.rust);
        }
    }
    out.push_str(".finish()\n}\n}\n\n");
}

/// `new(required fields...)` for structs that cannot derive `Default`. A write-only field a
/// request must send is an argument too, taken as a value even when the spec says it may be
/// `null`: in a struct that responses decode as well it is an `Option` whose `None` is left
/// out (responses never carry it), and a request-only struct holds it as a `Patch`, whose
/// `Patch::Null` (through its setter) sends `null`.
fn emit_constructor(out: &mut String, name: &str, fields: &[Field], models: &Models) {
    let required: Vec<&Field> = fields
        .iter()
        .filter(|f| !f.option || f.sent_required)
        .collect();
    let params: Vec<String> = required
        .iter()
        .map(|f| {
            let t = rust_ty(&f.ty, "");
            if f.boxed || f.sent_required {
                format!("{}: {t}", f.rust)
            } else {
                format!("{}: {}", f.rust, field_ty(f, false))
            }
        })
        .collect();
    let inits: Vec<String> = fields
        .iter()
        .map(|f| match (f.option, f.boxed) {
            (true, boxed) if f.sent_required => {
                let value = if boxed {
                    format!("Box::new({})", f.rust)
                } else {
                    f.rust.clone()
                };
                if is_patch(name, f, models) {
                    format!("{}: crate::Patch::Value({value})", f.rust)
                } else {
                    format!("{}: Some({value})", f.rust)
                }
            }
            (true, _) if is_patch(name, f, models) => format!("{}: crate::Patch::Unset", f.rust),
            (true, _) => format!("{}: None", f.rust),
            (false, true) => format!("{0}: Box::new({0})", f.rust),
            (false, false) => f.rust.clone(),
        })
        .collect();
    let allow = if params.len() > 7 {
        "#[allow(clippy::too_many_arguments)]\n"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "impl {name} {{\n/// A value with the required fields set and every optional one `None`.\n\
         {allow}pub fn new({}) -> Self {{\nSelf {{ {} }}\n}}\n}}\n",
        params.join(", "),
        inits.join(", ")
    );
}

fn emit_def(out: &mut String, def: &Def, models: &Models) {
    out.push_str(&origin_doc(def));
    let _ = writeln!(out, "///\n/// Reference: <{REFERENCE}>");
    match &def.kind {
        Kind::Struct(fields) => {
            let default = if def.default { "Default, " } else { "" };
            let redact = fields.iter().any(|f| sensitive(&def.name, f));
            let debug = if redact { "" } else { "Debug, " };
            let _ = writeln!(
                out,
                "#[derive({debug}Clone, PartialEq, {default}Serialize, Deserialize)]"
            );
            let _ = writeln!(out, "pub struct {} {{", def.name);
            for f in fields {
                if f.sent_required {
                    let _ = writeln!(
                        out,
                        "/// Wire field `{}`: required when sent, never returned (write-only).",
                        f.json
                    );
                } else {
                    let _ = writeln!(out, "/// Wire field `{}`.", f.json);
                }
                let mut attrs = Vec::new();
                if bare(&f.rust) != f.json {
                    attrs.push(format!("rename = {}", lit(&f.json)));
                }
                let patch = is_patch(&def.name, f, models);
                if patch {
                    attrs.push("default".to_owned());
                    attrs.push("skip_serializing_if = \"crate::Patch::is_unset\"".to_owned());
                } else if f.skip_none {
                    attrs.push("default".to_owned());
                    attrs.push("skip_serializing_if = \"Option::is_none\"".to_owned());
                } else if f.option {
                    attrs.push("default".to_owned());
                }
                if !attrs.is_empty() {
                    let _ = writeln!(out, "#[serde({})]", attrs.join(", "));
                }
                let _ = writeln!(out, "pub {}: {},", f.rust, field_ty(f, patch));
            }
            out.push_str("}\n\n");
            if redact {
                emit_redacted_debug(out, &def.name, fields, models);
            }
            if !def.default {
                emit_constructor(out, &def.name, fields, models);
            }
            let patches: Vec<&Field> = fields
                .iter()
                .filter(|f| is_patch(&def.name, f, models))
                .collect();
            emit_patch_setters(out, &def.name, &patches);
        }
        Kind::Tagged { tag, variants } => {
            let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Serialize)]");
            let _ = writeln!(out, "#[serde(tag = {})]\n#[non_exhaustive]", lit(tag));
            let _ = writeln!(out, "pub enum {} {{", def.name);
            for v in variants {
                let _ = writeln!(out, "/// `{tag}: {}`.", v.tag);
                let _ = writeln!(out, "#[serde(rename = {})]", lit(&v.tag));
                let _ = writeln!(out, "{}({}),", v.rust, v.ty);
            }
            let _ = writeln!(
                out,
                "/// A `{tag}` this version does not know; the JSON is kept as it came.\n\
                 #[serde(untagged)]\nUnknown(serde_json::Value),"
            );
            out.push_str("}\n\n");
            emit_tagged_deserialize(out, def, tag, variants);
            emit_tagged_impl(out, def, tag, variants, models);
        }
        Kind::StrEnum(values) => {
            let _ = writeln!(out, "pub enum {} {{", def.name);
            for (wire, rust) in values {
                let _ = writeln!(out, "/// `{wire}`.\n{rust} = {},", lit(wire));
            }
            out.push_str("}\n}\n\n");
            // Re-open with the macro call: rewrite the opening.
        }
        Kind::Alias(ty) => {
            let _ = writeln!(out, "pub type {} = {};\n", def.name, rust_ty(ty, ""));
        }
    }
}

/// Tag first, then the arm: a known tag whose payload does not decode is an error (with the
/// path inside the arm), never the `Unknown` catch-all, which only takes tags we do not know.
fn emit_tagged_deserialize(
    out: &mut String,
    def: &Def,
    tag: &str,
    variants: &[super::ir::Variant],
) {
    let _ = writeln!(
        out,
        "impl<'de> Deserialize<'de> for {} {{
         fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
         let value = serde_json::Value::deserialize(deserializer)?;
         match crate::tagged::tag_of(&value, {}).as_deref() {{",
        def.name,
        lit(tag)
    );
    for v in variants {
        let _ = writeln!(
            out,
            "Some({0}) => crate::tagged::arm({1}, {0}, value).map(Self::{2}),",
            lit(&v.tag),
            lit(tag),
            v.rust
        );
    }
    out.push_str("_ => Ok(Self::Unknown(value)),\n}\n}\n}\n\n");
}

/// `type_name()`, `TAGS`, `is_unknown()`, and `id()`/`created_at()` when every arm has them.
fn emit_tagged_impl(
    out: &mut String,
    def: &Def,
    tag: &str,
    variants: &[super::ir::Variant],
    models: &Models,
) {
    let _ = writeln!(out, "impl {} {{", def.name);
    let tags: Vec<String> = variants.iter().map(|v| lit(&v.tag)).collect();
    let _ = writeln!(
        out,
        "/// Every `{tag}` this version decodes into a typed arm.\n\
         pub const TAGS: &'static [&'static str] = &[{}];\n\n\
         /// Whether this is the catch-all for a `{tag}` this version does not know.\n\
         pub fn is_unknown(&self) -> bool {{\nmatches!(self, Self::Unknown(_))\n}}\n",
        tags.join(", ")
    );
    let _ = writeln!(
        out,
        "/// The `{tag}` value on the wire.\npub fn type_name(&self) -> &str {{\nmatch self {{"
    );
    for v in variants {
        let _ = writeln!(out, "Self::{}(_) => {},", v.rust, lit(&v.tag));
    }
    let _ = writeln!(
        out,
        "Self::Unknown(v) => v.get({}).and_then(serde_json::Value::as_str).unwrap_or(\"\"),\n}}\n}}",
        lit(tag)
    );
    for (json, rust) in [("id", "id"), ("createdAt", "created_at")] {
        let all = variants.iter().all(|v| {
            models.get(&v.ty).is_some_and(|d| match &d.kind {
                Kind::Struct(fs) => fs
                    .iter()
                    .any(|f| f.json == json && f.ty == Ty::Str && f.option && !f.boxed),
                _ => false,
            })
        });
        if !all || variants.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "/// The `{json}` of whichever arm this is.\npub fn {rust}(&self) -> Option<&str> {{\nmatch self {{"
        );
        for v in variants {
            let _ = writeln!(out, "Self::{}(v) => v.{rust}.as_deref(),", v.rust);
        }
        let _ = writeln!(
            out,
            "Self::Unknown(v) => v.get({}).and_then(serde_json::Value::as_str),\n}}\n}}",
            lit(json)
        );
    }
    out.push_str("}\n\n");
}

/// `(file name, source)` for every area plus the `mod.rs` that re-exports them.
pub(crate) fn emit(models: &Models) -> Vec<(String, String)> {
    let mut areas: BTreeMap<&str, Vec<&Def>> = BTreeMap::new();
    for d in &models.defs {
        areas.entry(d.area).or_default().push(d);
    }
    let mut files = Vec::new();
    let mut root = format!(
        "{HEADER}\n//! Models for every schema of the Sunshine Conversations API, by area.\n\n"
    );
    for (area, defs) in &areas {
        let _ = writeln!(root, "mod {area};\npub use {area}::*;");
        let mut out = format!(
            "{HEADER}\n//! Models: {}.\n\n#[allow(unused_imports)]\nuse super::*;\nuse serde::{{Deserialize, Serialize}};\n\n",
            area.replace('_', " ")
        );
        let mut sorted = defs.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for d in sorted {
            if let Kind::StrEnum(_) = d.kind {
                out.push_str("crate::string_enum! {\n");
                emit_def(&mut out, d, models);
            } else {
                emit_def(&mut out, d, models);
            }
        }
        files.push((format!("models/{area}.rs"), out));
    }
    files.push(("models/mod.rs".to_owned(), root));
    files
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::ir::Models;

    /// The models file of `schemas`, with `Bot` only ever sent when `request_only`.
    fn emitted(request_only: bool) -> String {
        let schemas = json!({ "Bot": {
            "type": "object",
            "required": ["token", "name"],
            "properties": {
                "token": { "type": "string", "writeOnly": true, "nullable": true },
                "name": { "type": "string" },
            },
        } });
        let schemas = schemas.as_object().cloned().unwrap_or_default();
        let mut models = Models::new(&schemas).unwrap_or_default();
        assert_eq!(models.lower_all(&schemas), Ok(()));
        models.finish();
        if request_only {
            models.request_only.insert("Bot".to_owned());
        }
        super::emit(&models)
            .into_iter()
            .map(|(_, text)| text)
            .collect()
    }

    #[test]
    fn a_nullable_write_only_field_a_request_must_send_is_an_argument_of_new() {
        // Decoded from responses as well: an `Option`, set by `new`, left out only when `None`.
        let shared = emitted(false);
        assert!(
            shared.contains("pub fn new(name: String, token: String) -> Self")
                && shared.contains("token: Some(token)")
                && !shared.contains("Default,"),
            "{shared}"
        );
        // Only ever sent: a `Patch`, set by `new`, whose setter can still send `null`.
        let sent = emitted(true);
        assert!(
            sent.contains("pub fn new(name: String, token: String) -> Self")
                && sent.contains("token: crate::Patch::Value(token)")
                && sent.contains("pub token: crate::Patch<String>")
                && sent.contains("pub fn token(mut self, value: impl Into<crate::Patch<String>>)"),
            "{sent}"
        );
    }
}

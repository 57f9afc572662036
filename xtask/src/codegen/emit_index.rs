//! A name-indexed round trip through every model, for the test that feeds the spec's own
//! examples through the generated types.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::HEADER;
use super::emit_models::{MODELS, rust_ty};
use super::ir::{Kind, Models, Ty};
use super::names::lit;
use super::ops::{Arg, Body, Op};

fn arm(out: &mut String, key: &str, ty: &Ty) {
    let _ = writeln!(
        out,
        "{} => round_trip::<{}>(value),",
        lit(key),
        rust_ty(ty, MODELS)
    );
}

/// A placeholder JSON value of `ty` with every required field filled, for the wire snapshot
/// of each operation (strings are the field's wire name, so the snapshot shows where each
/// lands).
fn placeholder(ty: &Ty, name: &str, models: &Models, depth: usize) -> Value {
    match ty {
        Ty::Str => Value::String(format!("<{name}>")),
        Ty::I64 => Value::from(1),
        Ty::F64 => Value::from(1.5),
        Ty::Bool => Value::Bool(true),
        Ty::Json | Ty::Map => Value::Object(Map::new()),
        // Empty: keeps the snapshot short, and no required field is an array of something
        // that must be present for the body to decode.
        Ty::Vec(_) => Value::Array(Vec::new()),
        Ty::Named(n) => match models.get(n).map(|d| &d.kind) {
            Some(Kind::Struct(fields)) => Value::Object(
                fields
                    .iter()
                    .filter(|f| !f.option && depth < 12)
                    .map(|f| {
                        (
                            f.json.clone(),
                            placeholder(&f.ty, &f.json, models, depth + 1),
                        )
                    })
                    .collect(),
            ),
            Some(Kind::Tagged { tag, variants }) => {
                let Some(first) = variants.first() else {
                    return Value::Object(Map::new());
                };
                let mut v = placeholder(&Ty::Named(first.ty.clone()), name, models, depth + 1);
                if let Value::Object(m) = &mut v {
                    m.insert(tag.clone(), Value::String(first.tag.clone()));
                }
                v
            }
            Some(Kind::StrEnum(values)) => values
                .first()
                .map_or(Value::Null, |(wire, _)| Value::String(wire.clone())),
            Some(Kind::Alias(inner)) => placeholder(inner, name, models, depth + 1),
            None => Value::Null,
        },
    }
}

fn arg_value(a: &Arg) -> String {
    match &a.ty {
        Ty::Str => lit(&format!("<{}>", a.wire)),
        Ty::I64 => "1".to_owned(),
        Ty::F64 => "1.5".to_owned(),
        Ty::Bool => "true".to_owned(),
        other => format!(
            "serde_json::from_value::<{}>(serde_json::json!({})).map_err(|e| e.to_string())?",
            rust_ty(other, MODELS),
            lit(&format!("<{}>", a.wire))
        ),
    }
}

/// `sample_requests()`: every operation built with placeholder arguments, in spec order.
fn emit_samples(out: &mut String, models: &Models, ops: &[Op]) {
    out.push_str(
        "\n/// Every operation built with placeholder arguments (required ones only), for the \
         wire snapshot of each request: `(operationId, request)`.\n\
         ///\n/// # Errors\n///\n/// A placeholder that does not decode or a request that does not build.\n\
         pub fn sample_requests() -> Result<Vec<(&'static str, crate::ApiRequest)>, String> {\n\
         let mut out = Vec::new();\n",
    );
    for op in ops {
        let mut args: Vec<String> = op.path_args.iter().map(arg_value).collect();
        args.extend(op.query.iter().filter(|a| a.required).map(arg_value));
        match &op.body {
            Body::Json { ty, required: true } => {
                let sample = placeholder(ty, "body", models, 0);
                args.push(format!(
                    "serde_json::from_value::<{}>(serde_json::from_str({}).map_err(|e| e.to_string())?).map_err(|e| format!(\"{}: {{e}}\"))?",
                    rust_ty(ty, MODELS),
                    lit(&sample.to_string()),
                    op.id
                ));
            }
            Body::Multipart => args.push(
                "crate::Upload::from_bytes(\"a.png\", \"image/png\", &b\"png\"[..]).map_err(|e| e.to_string())?"
                    .to_owned(),
            ),
            _ => {}
        }
        let build = if matches!(op.body, Body::Multipart) {
            "into_request"
        } else {
            "to_request"
        };
        // A request that needs one member of a query object set gets the first.
        let setters: String = op
            .one_of
            .iter()
            .filter_map(|g| g.members.first())
            .map(|m| format!(".{}({})", m.rust, arg_value(m)))
            .collect();
        let _ = writeln!(
            out,
            "out.push(({}, crate::operations::{}::new({}){setters}.{build}().map_err(|e| e.to_string())?));",
            lit(&op.id),
            op.rust,
            args.join(", ")
        );
    }
    out.push_str("Ok(out)\n}\n");
}

/// The source of `spec_index.rs`.
pub(crate) fn emit(schemas: &Map<String, Value>, models: &Models, ops: &[Op]) -> String {
    let mut out = format!(
        "{HEADER}\n//! Decode-then-encode by schema name or operation id, used by the tests that check \
         the spec's examples against these models.\n\n\
         use serde::{{Serialize, de::DeserializeOwned}};\nuse serde_json::Value;\n\n\
         fn round_trip<T: Serialize + DeserializeOwned>(value: Value) -> Result<Value, serde_json::Error> {{\n\
         let typed: T = serde_json::from_value(value)?;\nserde_json::to_value(&typed)\n}}\n\n"
    );
    out.push_str(
        "/// Decodes `value` as the model of component schema `name` (a tagged arm goes through its \
         enum) and encodes it again; `None` for an unknown name.\n\
         pub fn schema(name: &str, value: Value) -> Option<Result<Value, serde_json::Error>> {\nSome(match name {\n",
    );
    for name in schemas.keys() {
        let ty = models
            .arm_of
            .get(name)
            .unwrap_or(&models.schema_types[name]);
        arm(&mut out, name, &Ty::Named(ty.clone()));
    }
    out.push_str("_ => return None,\n})\n}\n\n");
    out.push_str(
        "/// Round trip of operation `operation_id`'s JSON request body.\n\
         pub fn request(operation_id: &str, value: Value) -> Option<Result<Value, serde_json::Error>> {\nSome(match operation_id {\n",
    );
    for op in ops {
        if let Body::Json { ty, .. } = &op.body {
            arm(&mut out, &op.id, ty);
        }
    }
    out.push_str("_ => return None,\n})\n}\n\n");
    out.push_str(
        "/// Round trip of operation `operation_id`'s success response body.\n\
         pub fn response(operation_id: &str, value: Value) -> Option<Result<Value, serde_json::Error>> {\nSome(match operation_id {\n",
    );
    for op in ops {
        arm(&mut out, &op.id, &op.response);
    }
    out.push_str("_ => return None,\n})\n}\n\n");
    out.push_str(
        "/// Round trip of a webhook request body.\n\
         pub fn webhook(value: Value) -> Result<Value, serde_json::Error> {\n\
         round_trip::<crate::models::WebhookEnvelope>(value)\n}\n",
    );
    emit_samples(&mut out, models, ops);
    out
}

//! A name-indexed round trip through every model, for the test that feeds the spec's own
//! examples through the generated types.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::HEADER;
use super::emit_models::rust_ty;
use super::ir::{Models, Ty};
use super::names::lit;
use super::ops::{Body, Op};

const MODELS: &str = "crate::models::";

fn arm(out: &mut String, key: &str, ty: &Ty) {
    let _ = writeln!(
        out,
        "{} => round_trip::<{}>(value),",
        lit(key),
        rust_ty(ty, MODELS)
    );
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
    out
}

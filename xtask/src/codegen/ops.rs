//! The operation IR: each of the spec's operations with its path, query and body arguments and
//! its typed response.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::ir::{Kind, Models, Ty, collect, ref_name, referred};
use super::names::{snake, upper_camel};

/// A path or query argument.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    /// The name on the wire (`appId`, `page[after]`).
    pub(crate) wire: String,
    pub(crate) rust: String,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
}

/// A required query object none of whose members is required on its own (`filter` of
/// ListConversations): at least one member must be set, or exactly one when `exclusive`. The
/// builder cannot show that in `new`'s arguments, so `to_request` checks it before sending.
#[derive(Debug, Clone)]
pub(crate) struct OneOf {
    /// The query argument (`filter`).
    pub(crate) param: String,
    /// The members as generated arguments, in `query` order.
    pub(crate) members: Vec<Arg>,
    /// At most one member may be set as well.
    pub(crate) exclusive: bool,
}

/// The request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json { ty: Ty, required: bool },
    Multipart,
}

/// Pagination facts for list operations.
#[derive(Debug, Clone)]
pub(crate) struct Paging {
    pub(crate) items_field: String,
    pub(crate) items_option: bool,
    pub(crate) item: Ty,
    pub(crate) meta_option: bool,
    pub(crate) has_more_option: bool,
    pub(crate) after_option: bool,
    /// `Some(wrapped in Option)` when `meta` carries `beforeCursor`.
    pub(crate) before_option: Option<bool>,
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) id: String,
    pub(crate) rust: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) tag: String,
    pub(crate) path_args: Vec<Arg>,
    pub(crate) query: Vec<Arg>,
    /// Required query objects whose members are each optional.
    pub(crate) one_of: Vec<OneOf>,
    pub(crate) body: Body,
    pub(crate) response: Ty,
    pub(crate) paging: Option<Paging>,
    /// Answered with a 3xx and no 2xx (a browser redirect such as `Authorize`).
    pub(crate) redirect: bool,
    /// Sent with the client's `Authorization` header: false when the operation's security
    /// requirement is empty (`security: []`), as for GetToken, whose answer is the credential.
    pub(crate) credentials: bool,
}

fn deref_param<'a>(doc: &'a Value, p: &'a Value) -> Option<&'a Value> {
    match p.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#')?),
        None => Some(p),
    }
}

/// The parameters of an operation: those of its path item, each replaced by the operation's
/// own of the same name and location (OpenAPI's rule), then the operation's others. The same
/// parameter twice at one level is an error, as the spec's own rules make it.
fn parameters<'a>(
    doc: &'a Value,
    item: &'a Value,
    op: &'a Value,
    id: &str,
) -> Result<Vec<&'a Value>, String> {
    let level = |holder: &'a Value, what: &str| -> Result<Vec<&'a Value>, String> {
        let mut out: Vec<&'a Value> = Vec::new();
        for p in holder
            .get("parameters")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let p = deref_param(doc, p).ok_or_else(|| format!("{id}: bad parameter ref"))?;
            if out.iter().any(|q| same_param(p, q)) {
                return Err(format!(
                    "{id}: the {what} parameters list `{}` in {} twice",
                    name_of(p),
                    location_of(p)
                ));
            }
            out.push(p);
        }
        Ok(out)
    };
    let own = level(op, "operation's")?;
    let mut params: Vec<&Value> = level(item, "path's")?
        .into_iter()
        .filter(|p| !own.iter().any(|q| same_param(p, q)))
        .collect();
    params.extend(own);
    Ok(params)
}

fn name_of(p: &Value) -> &str {
    p.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn location_of(p: &Value) -> &str {
    p.get("in").and_then(Value::as_str).unwrap_or("no location")
}

/// Whether two parameters are the same one: same name, same location.
fn same_param(a: &Value, b: &Value) -> bool {
    name_of(a) == name_of(b) && location_of(a) == location_of(b)
}

/// The type of a query argument. Arrays and objects are refused rather than sent as one
/// string: the generator does not know how the API wants them spelled (`a=1&a=2`, `a=1,2`).
/// A reference is followed first, since what it names may be either; a schema that still
/// declares no type (alternatives, a bare `{}`) is refused too, unless it lists strings.
fn scalar(
    schemas: &Map<String, Value>,
    schema: &Value,
    id: &str,
    name: &str,
) -> Result<Ty, String> {
    let schema =
        target(schemas, schema).map_err(|why| format!("{id}: query parameter `{name}` {why}"))?;
    let strings = schema
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|values| values.iter().all(Value::is_string));
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => Ok(Ty::I64),
        Some("boolean") => Ok(Ty::Bool),
        Some("number") => Ok(Ty::F64),
        Some("string") => Ok(Ty::Str),
        None if strings => Ok(Ty::Str),
        Some(other) => Err(format!(
            "{id}: query parameter `{name}` is of type {other}, which the generator cannot send"
        )),
        None => Err(format!(
            "{id}: query parameter `{name}` declares no type, which the generator cannot send"
        )),
    }
}

/// The schema `schema` stands for, after its references (`$ref`, or an `allOf` of one) to
/// component schemas; what is wrong with them as the error.
fn target<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> Result<&'a Value, String> {
    let mut schema = schema;
    // Bounded: a cycle of references would otherwise never end.
    for _ in 0..16 {
        let Some(reference) = referred(schema) else {
            return Ok(schema);
        };
        schema = ref_name(reference)
            .and_then(|n| schemas.get(n))
            .ok_or_else(|| format!("refers to unknown schema {}", reference["$ref"]))?;
    }
    Err("refers to schemas that refer on without end".to_owned())
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Collects every operation, registering inline bodies and responses as models.
pub(crate) fn build(doc: &Value, models: &mut Models) -> Result<Vec<Op>, String> {
    let empty = Map::new();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("spec has no paths")?;
    let mut ops = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{method} {path}: no operationId"))?;
            if !seen.insert(id.to_owned()) {
                return Err(format!("duplicate operationId {id}"));
            }
            let rust = upper_camel(id);
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("Other")
                .to_owned();
            let params = parameters(doc, item, op, id)?;
            let mut path_args = Vec::new();
            let mut query = Vec::new();
            let mut one_of = Vec::new();
            for p in params {
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                let schema = p.get("schema").cloned().unwrap_or(Value::Null);
                match p.get("in").and_then(Value::as_str) {
                    Some("path") => path_args.push(Arg {
                        wire: name.to_owned(),
                        rust: snake(name),
                        ty: Ty::Str,
                        required: true,
                    }),
                    Some("query") => {
                        let deep = p.get("style").and_then(Value::as_str) == Some("deepObject");
                        if deep {
                            let mut props = Vec::new();
                            let mut req = BTreeSet::new();
                            collect(schemas, &schema, &mut props, &mut req, false, 0)
                                .map_err(|e| format!("{id}: query parameter `{name}`: {e}"))?;
                            let mut members = Vec::new();
                            for (k, v) in props {
                                let wire = format!("{name}[{k}]");
                                if super::overrides::query_param_ignored(id, &wire) {
                                    continue;
                                }
                                let ty = scalar(schemas, &v, id, &wire)?;
                                let arg = Arg {
                                    wire,
                                    rust: snake(&format!("{name}_{k}")),
                                    ty,
                                    required: required && req.contains(&k),
                                };
                                members.push(arg.clone());
                                query.push(arg);
                            }
                            // The object is required but none of its members is: the API
                            // refuses a request that sets none of them.
                            if required && req.is_empty() && !members.is_empty() {
                                one_of.push(OneOf {
                                    param: name.to_owned(),
                                    members,
                                    exclusive: super::overrides::query_members_exclusive(id, name),
                                });
                            }
                        } else {
                            query.push(Arg {
                                wire: name.to_owned(),
                                rust: snake(name),
                                ty: scalar(schemas, &schema, id, name)?,
                                required,
                            });
                        }
                    }
                    other => {
                        return Err(format!(
                            "{id}: parameter `{name}` in {}: the generator sends only path and \
                             query parameters",
                            other.unwrap_or("no location")
                        ));
                    }
                }
            }
            // Two parameters of one Rust name would be two fields (and arguments) of one name.
            let args: Vec<&Arg> = path_args.iter().chain(&query).collect();
            for (i, a) in args.iter().enumerate() {
                if let Some(b) = args[..i].iter().find(|b| b.rust == a.rust) {
                    return Err(format!(
                        "{id}: the parameters `{}` and `{}` both map to the Rust name `{}`",
                        b.wire, a.wire, a.rust
                    ));
                }
            }
            // Path arguments in the order they appear in the path.
            path_args.sort_by_key(|a| path.find(&format!("{{{}}}", a.wire)).unwrap_or(usize::MAX));
            let body = match op.get("requestBody") {
                None => Body::None,
                Some(rb) => {
                    let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                    let content = rb
                        .get("content")
                        .and_then(Value::as_object)
                        .ok_or_else(|| format!("{id}: body without content"))?;
                    if content.contains_key("multipart/form-data") {
                        Body::Multipart
                    } else {
                        let schema = content
                            .get("application/json")
                            .and_then(|c| c.get("schema"))
                            .ok_or_else(|| format!("{id}: body is not JSON"))?;
                        let ty = schema_ty(schemas, models, schema, &format!("{rust}Body"), id)?;
                        Body::Json { ty, required }
                    }
                }
            };
            let mut response = None;
            if let Some(resps) = op.get("responses").and_then(Value::as_object) {
                for (code, r) in resps {
                    if !code.starts_with('2') {
                        continue;
                    }
                    if let Some(schema) = r.pointer("/content/application~1json/schema") {
                        response = Some(schema_ty(
                            schemas,
                            models,
                            schema,
                            &format!("{rust}Response"),
                            id,
                        )?);
                    }
                    break;
                }
            }
            let codes: Vec<&String> = op
                .get("responses")
                .and_then(Value::as_object)
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            let redirect = !codes.iter().any(|c| c.starts_with('2'))
                && codes.iter().any(|c| c.starts_with('3'));
            let response = response.unwrap_or(Ty::Map);
            let paging = paging(models, &query, &response);
            let credentials = super::overrides::sends_credentials(id)
                .unwrap_or_else(|| requires_credentials(doc, op));
            ops.push(Op {
                id: id.to_owned(),
                rust,
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                tag,
                path_args,
                query,
                one_of,
                body,
                response,
                paging,
                redirect,
                credentials,
            });
        }
    }
    Ok(ops)
}

/// Whether the operation's security requirement (its own `security`, else the document's)
/// names any scheme. An empty list, or none at all, requires nothing; a list holding `{}`
/// makes credentials optional, and they are sent.
fn requires_credentials(doc: &Value, op: &Value) -> bool {
    op.get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array)
        .is_some_and(|alternatives| !alternatives.is_empty())
}

/// The type of a body or response schema: a named model, a map, or a new inline model.
fn schema_ty(
    schemas: &Map<String, Value>,
    models: &mut Models,
    schema: &Value,
    name: &str,
    id: &str,
) -> Result<Ty, String> {
    if let Some(r) = ref_name(schema) {
        return models
            .schema_types
            .get(r)
            .map(|t| Ty::Named(t.clone()))
            .ok_or_else(|| format!("{id}: unknown $ref {r}"));
    }
    let mut props = Vec::new();
    let mut req = BTreeSet::new();
    collect(schemas, schema, &mut props, &mut req, false, 0).map_err(|e| format!("{id}: {e}"))?;
    if props.is_empty() {
        return Ok(Ty::Map);
    }
    let t = models.add_inline(schemas, name, id, "operations", schema)?;
    Ok(Ty::Named(t))
}

/// A list operation pages when it takes `page[after]` and returns `meta` plus one array.
fn paging(models: &Models, query: &[Arg], response: &Ty) -> Option<Paging> {
    if !query.iter().any(|a| a.wire == "page[after]") {
        return None;
    }
    let Ty::Named(resp) = response else {
        return None;
    };
    let Kind::Struct(fields) = &models.get(resp)?.kind else {
        return None;
    };
    let meta = fields.iter().find(|f| f.json == "meta")?;
    let Ty::Named(meta_ty) = &meta.ty else {
        return None;
    };
    let Kind::Struct(meta_fields) = &models.get(meta_ty)?.kind else {
        return None;
    };
    let has_more = meta_fields.iter().find(|f| f.json == "hasMore")?;
    let after = meta_fields.iter().find(|f| f.json == "afterCursor")?;
    let items = fields.iter().find(|f| matches!(f.ty, Ty::Vec(_)))?;
    let Ty::Vec(item) = &items.ty else {
        return None;
    };
    Some(Paging {
        items_field: items.rust.clone(),
        items_option: items.option,
        item: (**item).clone(),
        meta_option: meta.option,
        has_more_option: has_more.option,
        after_option: after.option,
        before_option: meta_fields
            .iter()
            .find(|f| f.json == "beforeCursor")
            .map(|f| f.option),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::ir::{Models, Ty};

    /// The operations of a spec with one GET taking `parameter`, or the generator's error.
    /// The spec's schemas: `Ids`, an array; `Kind`, a string; `Ref`, a reference to `Kind`.
    fn build_with(parameter: &Value) -> Result<usize, String> {
        let doc = json!({
            "paths": { "/things": { "get": {
                "operationId": "ListThings",
                "parameters": [parameter],
                "responses": { "200": { "description": "ok" } },
            } } },
            "components": { "schemas": {
                "Ids": { "type": "array", "items": { "type": "string" } },
                "Kind": { "type": "string", "enum": ["a", "b"] },
                "Ref": { "$ref": "#/components/schemas/Kind" },
            } },
        });
        let mut models = Models::default();
        super::build(&doc, &mut models).map(|ops| ops.len())
    }

    #[test]
    fn query_arrays_and_header_parameters_are_refused_not_mangled() {
        let array = json!({
            "name": "ids", "in": "query",
            "schema": { "type": "array", "items": { "type": "string" } },
        });
        let error = build_with(&array).err().unwrap_or_default();
        assert!(
            error.contains("ListThings") && error.contains("`ids`"),
            "{error}"
        );
        let header = json!({ "name": "X-Trace", "in": "header", "schema": { "type": "string" } });
        let error = build_with(&header).err().unwrap_or_default();
        assert!(error.contains("`X-Trace` in header"), "{error}");
        // Behind a reference, an array is refused as well; so is a schema of alternatives.
        let ids = json!({
            "name": "ids", "in": "query",
            "schema": { "$ref": "#/components/schemas/Ids" },
        });
        let error = build_with(&ids).err().unwrap_or_default();
        assert!(
            error.contains("ListThings") && error.contains("`ids`") && error.contains("array"),
            "{error}"
        );
        let either = json!({
            "name": "either", "in": "query",
            "schema": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
        });
        let error = build_with(&either).err().unwrap_or_default();
        assert!(error.contains("`either`"), "{error}");
        let plain = json!({ "name": "limit", "in": "query", "schema": { "type": "integer" } });
        assert_eq!(build_with(&plain), Ok(1));
        // A reference to a scalar, even through another reference, is followed.
        for schema in ["Kind", "Ref"] {
            let kind = json!({
                "name": "kind", "in": "query",
                "schema": { "$ref": format!("#/components/schemas/{schema}") },
            });
            assert_eq!(build_with(&kind), Ok(1), "{schema}");
        }
    }

    /// The query arguments `(wire, Rust name, type)` of a spec with one GET of a path item
    /// with `shared` parameters, the operation having `own`; or the generator's error.
    fn query_of(shared: &Value, own: &Value) -> Result<Vec<(String, String, Ty)>, String> {
        let doc = json!({
            "paths": { "/things": {
                "parameters": shared,
                "get": {
                    "operationId": "ListThings",
                    "parameters": own,
                    "responses": { "200": { "description": "ok" } },
                },
            } },
        });
        let mut models = Models::default();
        let ops = super::build(&doc, &mut models)?;
        Ok(ops
            .iter()
            .flat_map(|op| &op.query)
            .map(|a| (a.wire.clone(), a.rust.clone(), a.ty.clone()))
            .collect())
    }

    #[test]
    fn an_operations_parameter_overrides_the_path_items_of_the_same_name() {
        let query =
            |name: &str, ty: &str| json!({ "name": name, "in": "query", "schema": { "type": ty } });
        let s = |v: &str| v.to_owned();
        let args = query_of(
            &json!([query("limit", "string"), query("q", "string")]),
            &json!([query("limit", "integer")]),
        );
        assert_eq!(
            args,
            Ok(vec![
                (s("q"), s("q"), Ty::Str),
                (s("limit"), s("limit"), Ty::I64),
            ])
        );
        // A name in another location is another parameter, and is kept.
        let path = json!({ "name": "limit", "in": "path", "required": true,
                           "schema": { "type": "string" } });
        let error = query_of(&json!([path]), &json!([query("limit", "integer")]))
            .err()
            .unwrap_or_default();
        assert!(error.contains("`limit`"), "{error}");
        // The same parameter twice at one level is refused.
        let error = query_of(
            &json!([]),
            &json!([query("limit", "integer"), query("limit", "string")]),
        )
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("ListThings") && error.contains("`limit` in query twice"),
            "{error}"
        );
        // So are two parameters of one Rust name.
        let error = query_of(
            &json!([]),
            &json!([query("pageSize", "integer"), query("page_size", "integer")]),
        )
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("`pageSize`") && error.contains("`page_size`"),
            "{error}"
        );
    }
}

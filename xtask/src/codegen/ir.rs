//! The model IR: every schema in `components/schemas` (and every inline object, enum, body and
//! response) lowered to a struct, a tagged enum, a string enum or an alias.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::names::{snake, upper_camel};

/// A field or alias type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Str,
    I64,
    F64,
    Bool,
    Json,
    Map,
    Vec(Box<Ty>),
    Named(String),
}

/// One struct field.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) json: String,
    pub(crate) rust: String,
    pub(crate) ty: Ty,
    /// Wrapped in `Option`.
    pub(crate) option: bool,
    /// Left out of the JSON when `None` (the field is not required).
    pub(crate) skip_none: bool,
    /// Boxed to break a recursive containment cycle.
    pub(crate) boxed: bool,
    /// Declared `nullable`: in a request-only struct it becomes a three-state `Patch`.
    pub(crate) nullable: bool,
    /// Required and write-only: optional in the type (responses never carry it), but a
    /// parameter of `new`, since a request must.
    pub(crate) sent_required: bool,
}

/// One arm of an internally tagged enum.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) tag: String,
    pub(crate) rust: String,
    pub(crate) ty: String,
}

/// What a definition lowers to.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Struct(Vec<Field>),
    Tagged { tag: String, variants: Vec<Variant> },
    StrEnum(Vec<(String, String)>),
    Alias(Ty),
}

/// One generated type.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub(crate) name: String,
    /// Where it comes from: a schema name, or `schema.field` for inline ones.
    pub(crate) origin: String,
    pub(crate) area: &'static str,
    pub(crate) kind: Kind,
    pub(crate) default: bool,
}

/// All definitions, in a stable order.
#[derive(Debug, Default)]
pub(crate) struct Models {
    pub(crate) defs: Vec<Def>,
    names: BTreeSet<String>,
    /// schema name -> Rust type name.
    pub(crate) schema_types: BTreeMap<String, String>,
    /// schema name -> discriminator property stripped from it (it is a tagged-enum arm).
    stripped: BTreeMap<String, String>,
    /// schema name -> the tagged enum it is first an arm of.
    pub(crate) arm_of: BTreeMap<String, String>,
    /// Structs only ever sent (reachable from request bodies, never from a response or a
    /// webhook): their optional nullable fields become `Patch`, so `null` can be sent.
    pub(crate) request_only: BTreeSet<String>,
}

/// The area (file) a component schema belongs to, from its name.
pub(crate) fn area_of(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let has = |s: &str| n.contains(s);
    if n.ends_with("event") && !has("conversionevent")
        || has("webhook") && !n.starts_with("webhook")
        || n.starts_with("switchboard") && (has("control"))
        || matches!(
            name,
            "eventSubSchema" | "appSubSchema" | "conversationMessageDeliveryPayload"
        )
    {
        "webhook_events"
    } else if has("message") && !has("messagebird") && !has("messenger")
        || matches!(
            name,
            "action"
                | "actionSubset"
                | "buy"
                | "link"
                | "locationRequest"
                | "postback"
                | "reply"
                | "webview"
                | "content"
                | "item"
                | "field"
                | "formOptions"
                | "author"
                | "source"
                | "reference"
                | "activity"
                | "activityPost"
                | "activityTypes"
                | "ticketClosed"
                | "transferToEmail"
                | "endedByUser"
                | "htmlText"
                | "markdownText"
                | "downloadMessageRefBody"
                | "destination"
                | "campaign"
                | "referral"
        )
    {
        "messages"
    } else if has("integration") && !n.starts_with("switchboard")
        || has("update") && !n.starts_with("user") && !n.starts_with("conversation")
        || matches!(
            name,
            "android"
                | "apple"
                | "custom"
                | "instagram"
                | "ios"
                | "line"
                | "mailgun"
                | "messagebird"
                | "messenger"
                | "telegram"
                | "twilio"
                | "twitter"
                | "unity"
                | "viber"
                | "web"
                | "whatsapp"
                | "status"
                | "defaultResponder"
                | "defaultResponderId"
                | "prechatCapture"
                | "extraChannelOptions"
                | "conversionEvents"
                | "conversionEventsBody"
                | "conversionEventsResponse"
                | "metaConversionEvent"
                | "matchCriteria"
                | "matchCriteriaBase"
                | "matchCriteriaMailgun"
                | "matchCriteriaMessagebird"
                | "matchCriteriaTwilio"
                | "matchCriteriaWhatsapp"
        )
    {
        "integrations"
    } else if n.starts_with("user")
        || n.starts_with("client")
        || n.starts_with("device")
        || matches!(
            name,
            "identity" | "profile" | "signedUpAt" | "toBeRetained" | "syncUserBody"
        )
    {
        "users"
    } else if n.starts_with("conversation") || n.starts_with("participant") {
        "conversations"
    } else if n.starts_with("switchboard")
        || n.starts_with("webhook")
        || matches!(
            name,
            "target"
                | "triggers"
                | "includeFullUser"
                | "includeFullSource"
                | "deliverStandbyEvents"
                | "nextSwitchboardIntegrationId"
                | "messageHistoryCount"
                | "name"
                | "enabled"
                | "defaultSwitchboardIntegrationId"
                | "passControlBody"
                | "releaseControlBody"
                | "offerControlBody"
                | "acceptControlBody"
        )
    {
        "switchboards"
    } else {
        "apps"
    }
}

/// Follows a local `$ref` to its name.
pub(crate) fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
}

/// The node carrying the reference a schema stands for: its own `$ref`, or that of an `allOf`
/// of one part (the spec's way to put `nullable` or a description beside a reference).
pub(crate) fn referred(v: &Value) -> Option<&Value> {
    if v.get("$ref").is_some() {
        return Some(v);
    }
    match v.get("allOf").and_then(Value::as_array)?.as_slice() {
        [only] if only.get("$ref").is_some() => Some(only),
        _ => None,
    }
}

fn is_true(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool) == Some(true)
}

/// The tag value a variant schema declares for `tag`: its `default` or single `enum` value.
fn declared_tag(
    schemas: &Map<String, Value>,
    schema: &Value,
    tag: &str,
) -> Result<Option<String>, String> {
    let mut props = Vec::new();
    let mut req = BTreeSet::new();
    collect(schemas, schema, &mut props, &mut req, false, 0)?;
    let Some((_, p)) = props.into_iter().rev().find(|(k, _)| k == tag) else {
        return Ok(None);
    };
    if let Some(d) = p.get("default").and_then(Value::as_str) {
        return Ok(Some(d.to_owned()));
    }
    let Some(vals) = p.get("enum").and_then(Value::as_array) else {
        return Ok(None);
    };
    Ok(match vals.as_slice() {
        [one] => one.as_str().map(str::to_owned),
        _ => None,
    })
}

/// How deep [`collect`] follows references and parts before it gives up on a schema.
const MAX_DEPTH: usize = 16;

/// Flattens `$ref`, `allOf`, and untagged `oneOf`/`anyOf` into one property list. A reference
/// to a schema that is not among `schemas` (or not a local component schema at all), and
/// parts nested (or referring to each other) deeper than [`MAX_DEPTH`], are errors: the
/// properties they stand for would otherwise be lost without a word.
pub(crate) fn collect(
    schemas: &Map<String, Value>,
    schema: &Value,
    props: &mut Vec<(String, Value)>,
    required: &mut BTreeSet<String>,
    optional: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "schemas nest or refer to each other more than {MAX_DEPTH} levels deep (a cycle?) \
             at {}",
            schema.get("$ref").unwrap_or(schema)
        ));
    }
    if let Some(reference) = schema.get("$ref") {
        let target = ref_name(schema)
            .and_then(|name| schemas.get(name))
            .ok_or_else(|| format!("unknown $ref {reference}"))?;
        return collect(schemas, target, props, required, optional, depth + 1);
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for p in parts {
            collect(schemas, p, props, required, optional, depth + 1)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            for p in parts {
                collect(schemas, p, props, required, true, depth + 1)?;
            }
        }
    }
    if let Some(ps) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in ps {
            if let Some(slot) = props.iter_mut().find(|(name, _)| name == k) {
                slot.1 = v.clone();
            } else {
                props.push((k.clone(), v.clone()));
            }
        }
    }
    if !optional && let Some(rs) = schema.get("required").and_then(Value::as_array) {
        required.extend(rs.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    Ok(())
}

/// Arms of a discriminated union: `(tag property, [(tag value, variant schema name)])`.
type Arms = (String, Vec<(String, String)>);

/// The discriminated arms of a schema, `None` without a discriminator. A discriminator the
/// generator cannot follow (an arm that is not a component schema) is an error: the union
/// would otherwise become one flattened struct without a word. A `mapping` need not list every
/// `oneOf` arm: those it leaves out take the implicit value, as without a mapping.
pub(crate) fn discriminated(
    schemas: &Map<String, Value>,
    schema: &Value,
) -> Result<Option<Arms>, String> {
    let Some(disc) = schema.get("discriminator") else {
        return Ok(None);
    };
    let tag = disc
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or("a discriminator without propertyName")?
        .to_owned();
    let mut arms = Vec::new();
    if let Some(mapping) = disc.get("mapping").and_then(Value::as_object) {
        for (value, target) in mapping {
            let name = target
                .as_str()
                .and_then(|t| t.strip_prefix("#/components/schemas/"))
                .filter(|name| schemas.contains_key(*name))
                .ok_or_else(|| {
                    format!(
                        "discriminator `{tag}`: `{value}` maps to {target}, not a component schema"
                    )
                })?;
            arms.push((value.clone(), name.to_owned()));
        }
    }
    let alternatives = schema.get("oneOf").and_then(Value::as_array);
    if arms.is_empty() && alternatives.is_none() {
        return Err(format!("discriminator `{tag}` without a mapping or oneOf"));
    }
    for alt in alternatives.into_iter().flatten() {
        let (name, arm) = ref_name(alt)
            .and_then(|name| Some((name, schemas.get(name)?)))
            .ok_or_else(|| {
                format!("discriminator `{tag}`: an arm that is not a component schema: {alt}")
            })?;
        if arms.iter().any(|(_, mapped)| mapped == name) {
            continue;
        }
        // OpenAPI's implicit mapping is the schema name; a declared default wins.
        let value = declared_tag(schemas, arm, &tag)
            .map_err(|e| format!("discriminator `{tag}`: arm {name}: {e}"))?
            .unwrap_or_else(|| name.to_owned());
        if let Some((_, other)) = arms.iter().find(|(v, _)| *v == value) {
            return Err(format!(
                "discriminator `{tag}`: arm {name} takes the value `{value}` implicitly, which \
                 the mapping gives {other}"
            ));
        }
        arms.push((value, name.to_owned()));
    }
    Ok(Some((tag, arms)))
}

/// The Rust name of a tagged-enum arm: `Unknown` is the catch-all's.
fn variant_name(tag: &str) -> String {
    let rust = upper_camel(tag);
    if rust == "Unknown" {
        "UnknownValue".to_owned()
    } else {
        rust
    }
}

/// Refuses a tagged enum two of whose tags map to the same Rust variant name.
fn distinct_variants(origin: &str, variants: &[Variant]) -> Result<(), String> {
    for (i, v) in variants.iter().enumerate() {
        if let Some(earlier) = variants[..i].iter().find(|e| e.rust == v.rust) {
            return Err(format!(
                "{origin}: the tags `{}` and `{}` both map to the variant name `{}`",
                earlier.tag, v.tag, v.rust
            ));
        }
    }
    Ok(())
}

impl Models {
    /// Names every component schema and records which are tagged-enum arms.
    pub(crate) fn new(schemas: &Map<String, Value>) -> Result<Self, String> {
        let mut m = Models::default();
        for name in schemas.keys() {
            let rust = upper_camel(name);
            if !m.names.insert(rust.clone()) {
                return Err(format!("two schemas map to the Rust name `{rust}`"));
            }
            m.schema_types.insert(name.clone(), rust);
        }
        for (name, schema) in schemas {
            let arms = discriminated(schemas, schema).map_err(|e| format!("{name}: {e}"))?;
            if let Some((tag, arms)) = arms {
                for (_, arm) in arms {
                    m.stripped.insert(arm.clone(), tag.clone());
                    let union = m.schema_types[name].clone();
                    m.arm_of.entry(arm).or_insert(union);
                }
            }
        }
        Ok(m)
    }

    /// Lowers every component schema.
    pub(crate) fn lower_all(&mut self, schemas: &Map<String, Value>) -> Result<(), String> {
        for (name, schema) in schemas {
            let rust = self.schema_types[name].clone();
            let kind = self.lower_top(schemas, name, &rust, schema)?;
            self.defs.push(Def {
                name: rust,
                origin: name.clone(),
                area: area_of(name),
                kind,
                default: false,
            });
        }
        Ok(())
    }

    /// Registers a definition for an inline schema (a body, a response, a webhook envelope).
    pub(crate) fn add_inline(
        &mut self,
        schemas: &Map<String, Value>,
        name: &str,
        origin: &str,
        area: &'static str,
        schema: &Value,
    ) -> Result<String, String> {
        let rust = self.fresh(name);
        let kind = self.lower_top(schemas, origin, &rust, schema)?;
        self.defs.push(Def {
            name: rust.clone(),
            origin: origin.to_owned(),
            area,
            kind,
            default: false,
        });
        Ok(rust)
    }

    /// A webhook-event style enum over schemas tagged by their `title`.
    pub(crate) fn add_titled_union(
        &mut self,
        schemas: &Map<String, Value>,
        name: &str,
        origin: &str,
        alts: &[Value],
    ) -> Result<String, String> {
        let mut variants = Vec::new();
        for alt in alts {
            let s = ref_name(alt).ok_or_else(|| format!("{origin}: expected $ref arms"))?;
            let title = schemas
                .get(s)
                .and_then(|v| v.get("title"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{origin}: arm {s} has no title"))?;
            let ty = self
                .schema_types
                .get(s)
                .ok_or_else(|| format!("{origin}: unknown $ref {s}"))?
                .clone();
            variants.push(Variant {
                tag: title.to_owned(),
                rust: variant_name(title),
                ty,
            });
        }
        distinct_variants(origin, &variants)?;
        let rust = self.fresh(name);
        self.defs.push(Def {
            name: rust.clone(),
            origin: origin.to_owned(),
            area: "webhook_events",
            kind: Kind::Tagged {
                tag: "type".to_owned(),
                variants,
            },
            default: false,
        });
        Ok(rust)
    }

    /// Marks these schemas as arms tagged by `tag` (their tag field goes to the enum `union`).
    /// Call before [`Models::lower_all`].
    pub(crate) fn strip_tag(&mut self, arms: &[Value], tag: &str, union: &str) {
        for alt in arms {
            if let Some(s) = ref_name(alt) {
                self.stripped.insert(s.to_owned(), tag.to_owned());
                self.arm_of
                    .entry(s.to_owned())
                    .or_insert_with(|| union.to_owned());
            }
        }
    }

    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut n = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }

    fn lower_top(
        &mut self,
        schemas: &Map<String, Value>,
        origin: &str,
        rust: &str,
        schema: &Value,
    ) -> Result<Kind, String> {
        if let Some((tag, arms)) =
            discriminated(schemas, schema).map_err(|e| format!("{origin}: {e}"))?
        {
            let mut variants = Vec::new();
            for (value, arm) in arms {
                let ty = self
                    .schema_types
                    .get(&arm)
                    .ok_or_else(|| format!("{origin}: unknown $ref {arm}"))?
                    .clone();
                variants.push(Variant {
                    rust: variant_name(&value),
                    tag: value,
                    ty,
                });
            }
            distinct_variants(origin, &variants)?;
            return Ok(Kind::Tagged { tag, variants });
        }
        if let Some(vals) = schema.get("enum").and_then(Value::as_array) {
            return Ok(Kind::StrEnum(enum_values(vals, origin)?));
        }
        if let Some(reference) = schema.get("$ref") {
            let t = ref_name(schema)
                .and_then(|target| self.schema_types.get(target))
                .ok_or_else(|| format!("{origin}: unknown $ref {reference}"))?;
            return Ok(Kind::Alias(Ty::Named(t.clone())));
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let objecty = ty == Some("object")
            || ["allOf", "oneOf", "anyOf", "properties"]
                .iter()
                .any(|k| schema.get(*k).is_some());
        if objecty {
            let mut props = Vec::new();
            let mut required = BTreeSet::new();
            collect(schemas, schema, &mut props, &mut required, false, 0)
                .map_err(|e| format!("{origin}: {e}"))?;
            for (json, p) in super::overrides::extra_fields(rust) {
                if !props.iter().any(|(k, _)| k == json) {
                    props.push((json.to_owned(), p));
                }
            }
            if props.is_empty() {
                return Ok(Kind::Alias(Ty::Map));
            }
            // Only the arm's own struct loses the tag, not structs nested inside it.
            let strip = self
                .stripped
                .get(origin)
                .filter(|_| self.schema_types.get(origin).is_some_and(|t| t == rust))
                .cloned();
            let mut fields = Vec::new();
            for (json, p) in props {
                if strip.as_deref() == Some(json.as_str()) {
                    continue;
                }
                let field_rust = snake(&json);
                let ctx = format!("{rust}{}", upper_camel(&json));
                let (mut ty, nullable) = self.prop_ty(schemas, origin, &ctx, &p)?;
                if super::overrides::loose_field(rust, &json) {
                    ty = Ty::Json;
                }
                // A write-only field is required when sent but never comes back, and the
                // same type decodes responses: it must be optional there. Nullable or not, it
                // is an argument of `new`, so a request built with `new` carries it.
                let write_only = is_true(&p, "writeOnly");
                let sent_required = required.contains(&json) && write_only;
                let req = required.contains(&json) && !write_only;
                let nullable_here = declared_nullable(schemas, &p);
                fields.push(Field {
                    sent_required,
                    // Nullable here or where a referenced schema is defined.
                    option: !req || nullable || nullable_here,
                    skip_none: !req,
                    boxed: false,
                    nullable: nullable_here,
                    json,
                    rust: field_rust,
                    ty,
                });
            }
            return Ok(Kind::Struct(fields));
        }
        let (ty, _) = self.prop_ty(schemas, origin, &format!("{rust}Item"), schema)?;
        Ok(Kind::Alias(ty))
    }

    /// The type of a property, registering inline objects and enums under `ctx`.
    fn prop_ty(
        &mut self,
        schemas: &Map<String, Value>,
        origin: &str,
        ctx: &str,
        p: &Value,
    ) -> Result<(Ty, bool), String> {
        let nullable = is_true(p, "nullable");
        if let Some(node) = referred(p) {
            let t = ref_name(node)
                .and_then(|target| self.schema_types.get(target))
                .ok_or_else(|| format!("{origin}: unknown $ref {}", node["$ref"]))?;
            return Ok((Ty::Named(t.clone()), nullable || is_true(node, "nullable")));
        }
        if let Some(vals) = p.get("enum").and_then(Value::as_array)
            && p.get("type").and_then(Value::as_str).unwrap_or("string") == "string"
        {
            let name = self.fresh(ctx);
            self.defs.push(Def {
                name: name.clone(),
                origin: origin.to_owned(),
                area: area_of(origin),
                kind: Kind::StrEnum(enum_values(vals, origin)?),
                default: false,
            });
            return Ok((Ty::Named(name), nullable));
        }
        let ty = p.get("type").and_then(Value::as_str);
        let objecty = ty == Some("object")
            || ["allOf", "oneOf", "anyOf", "properties"]
                .iter()
                .any(|k| p.get(*k).is_some());
        if objecty {
            let mut props = Vec::new();
            let mut req = BTreeSet::new();
            collect(schemas, p, &mut props, &mut req, false, 0)
                .map_err(|e| format!("{origin}: {e}"))?;
            if props.is_empty() {
                return Ok((Ty::Map, nullable));
            }
            let name = self.fresh(ctx);
            let kind = self.lower_top(schemas, origin, &name, p)?;
            self.defs.push(Def {
                name: name.clone(),
                origin: origin.to_owned(),
                area: area_of(origin),
                kind,
                default: false,
            });
            return Ok((Ty::Named(name), nullable));
        }
        let t = match ty {
            Some("string") => Ty::Str,
            Some("integer") => Ty::I64,
            Some("number") => Ty::F64,
            Some("boolean") => Ty::Bool,
            Some("array") => {
                let items = p.get("items").cloned().unwrap_or(Value::Null);
                let (inner, _) = self.prop_ty(schemas, origin, &format!("{ctx}Item"), &items)?;
                Ty::Vec(Box::new(inner))
            }
            // No type at all: any JSON value.
            None if p.get("type").is_none() => Ty::Json,
            // A type this generator does not know (`null`, `file`), or one it cannot spell
            // (OpenAPI 3.1's list of types): refused rather than loosened to any JSON.
            _ => {
                return Err(format!(
                    "{origin}: `{ctx}` is of type {}, which the generator does not support",
                    p["type"]
                ));
            }
        };
        Ok((t, nullable))
    }

    /// Boxes fields that close a containment cycle, and marks which structs can derive Default.
    pub(crate) fn finish(&mut self) {
        let index: BTreeMap<String, usize> = self
            .defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        // Direct containment edges (not through Vec or Map, which already indirect).
        let edges = |d: &Def| -> Vec<String> {
            match &d.kind {
                Kind::Struct(fs) => fs
                    .iter()
                    .filter_map(|f| match &f.ty {
                        Ty::Named(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect(),
                Kind::Tagged { variants, .. } => variants.iter().map(|v| v.ty.clone()).collect(),
                Kind::Alias(Ty::Named(n)) => vec![n.clone()],
                _ => Vec::new(),
            }
        };
        let graph: Vec<Vec<usize>> = self
            .defs
            .iter()
            .map(|d| {
                edges(d)
                    .iter()
                    .filter_map(|n| index.get(n).copied())
                    .collect()
            })
            .collect();
        let reaches = |from: usize, to: usize| -> bool {
            let mut seen = vec![false; graph.len()];
            let mut stack = vec![from];
            while let Some(n) = stack.pop() {
                if n == to {
                    return true;
                }
                if std::mem::replace(&mut seen[n], true) {
                    continue;
                }
                stack.extend(graph[n].iter().copied());
            }
            false
        };
        let mut to_box = Vec::new();
        for (i, d) in self.defs.iter().enumerate() {
            if let Kind::Struct(fs) = &d.kind {
                for (j, f) in fs.iter().enumerate() {
                    if let Ty::Named(n) = &f.ty
                        && let Some(&t) = index.get(n)
                        && reaches(t, i)
                    {
                        to_box.push((i, j));
                    }
                }
            }
        }
        for (i, j) in to_box {
            if let Kind::Struct(fs) = &mut self.defs[i].kind {
                fs[j].boxed = true;
            }
        }
        // Not with a field every request must send: `default()` would leave it out.
        for d in &mut self.defs {
            if let Kind::Struct(fs) = &d.kind {
                d.default = fs.iter().all(|f| f.option && !f.sent_required);
            }
        }
    }

    /// Every definition reachable from `roots` (through fields, `Vec`s, arms and aliases).
    pub(crate) fn reachable(&self, roots: &[String]) -> BTreeSet<String> {
        fn named(ty: &Ty, out: &mut Vec<String>) {
            match ty {
                Ty::Named(n) => out.push(n.clone()),
                Ty::Vec(inner) => named(inner, out),
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            match self.get(&n).map(|d| &d.kind) {
                Some(Kind::Struct(fs)) => fs.iter().for_each(|f| named(&f.ty, &mut stack)),
                Some(Kind::Tagged { variants, .. }) => {
                    stack.extend(variants.iter().map(|v| v.ty.clone()));
                }
                Some(Kind::Alias(ty)) => named(ty, &mut stack),
                _ => {}
            }
        }
        seen
    }

    /// The definition named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|d| d.name == name)
    }
}

/// Whether a property may be `null`: its own `nullable`, else that of the schema it refers to
/// (`metadata`, `displayName`, ... are declared nullable once, where they are defined).
fn declared_nullable(schemas: &Map<String, Value>, p: &Value) -> bool {
    if let Some(own) = p.get("nullable").and_then(Value::as_bool) {
        return own;
    }
    referred(p)
        .and_then(ref_name)
        .and_then(|t| schemas.get(t))
        .is_some_and(|t| is_true(t, "nullable"))
}

/// The variants of a string enum; a value that is not a string is refused rather than lost.
fn enum_values(vals: &[Value], origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in vals {
        let v = v
            .as_str()
            .ok_or_else(|| format!("{origin}: enum value {v} is not a string"))?;
        let mut rust = upper_camel(v);
        if rust == "Unknown" {
            rust.push_str("Value");
        }
        while out.iter().any(|(_, r)| *r == rust) {
            rust.push('_');
        }
        out.push((v.to_owned(), rust));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Models;

    /// Lowers `schemas` as the generator does; the error it stops with, if any.
    fn lower(schemas: &Value) -> Result<Models, String> {
        let schemas = schemas.as_object().cloned().unwrap_or_default();
        let mut models = Models::new(&schemas)?;
        models.lower_all(&schemas)?;
        Ok(models)
    }

    #[test]
    fn an_enum_of_other_values_than_strings_is_refused_not_emptied() {
        let error = lower(&json!({ "Level": { "type": "integer", "enum": [1, 2, 3] } }))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("Level") && error.contains("not a string"),
            "{error}"
        );
        assert!(lower(&json!({ "Kind": { "type": "string", "enum": ["a", "b"] } })).is_ok());
    }

    #[test]
    fn a_discriminator_the_generator_cannot_follow_is_refused() {
        let arm = json!({ "type": "object", "properties": { "type": { "type": "string" } } });
        let inline_arm = json!({
            "A": arm,
            "U": {
                "oneOf": [{ "$ref": "#/components/schemas/A" }, { "type": "object" }],
                "discriminator": { "propertyName": "type" },
            },
        });
        let error = lower(&inline_arm).err().unwrap_or_default();
        assert!(error.contains("not a component schema"), "{error}");
        let foreign_mapping = json!({
            "A": arm,
            "U": {
                "oneOf": [{ "$ref": "#/components/schemas/A" }],
                "discriminator": { "propertyName": "type", "mapping": { "a": "other.yaml#/A" } },
            },
        });
        let error = lower(&foreign_mapping).err().unwrap_or_default();
        assert!(error.contains("other.yaml#/A"), "{error}");
        let followed = json!({
            "A": arm,
            "U": {
                "oneOf": [{ "$ref": "#/components/schemas/A" }],
                "discriminator": { "propertyName": "type", "mapping": { "a": "#/components/schemas/A" } },
            },
        });
        assert!(lower(&followed).is_ok());
    }

    #[test]
    fn a_required_field_referring_to_a_nullable_schema_is_optional() {
        let models = lower(&json!({
            "Meta": { "type": "object", "nullable": true, "additionalProperties": true },
            "Holder": {
                "type": "object",
                "required": ["meta"],
                "properties": { "meta": { "$ref": "#/components/schemas/Meta" } },
            },
        }))
        .unwrap_or_default();
        let Some(super::Kind::Struct(fields)) = models.get("Holder").map(|d| &d.kind) else {
            panic!("Holder is a struct");
        };
        let meta = fields.iter().find(|f| f.json == "meta");
        assert!(meta.is_some_and(|f| f.option), "{fields:?}");
    }

    /// The fields of struct `name`, after `finish`.
    fn fields_of(schemas: &Value, name: &str) -> (Vec<super::Field>, bool) {
        let mut models = lower(schemas).unwrap_or_default();
        models.finish();
        match models.get(name) {
            Some(super::Def {
                kind: super::Kind::Struct(fields),
                default,
                ..
            }) => (fields.clone(), *default),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    #[test]
    fn a_required_write_only_field_is_an_argument_of_new_even_when_nullable() {
        for nullable in [false, true] {
            let (fields, default) = fields_of(
                &json!({ "Bot": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": { "type": "string", "writeOnly": true, "nullable": nullable },
                        "name": { "type": "string" },
                    },
                } }),
                "Bot",
            );
            let token = fields.iter().find(|f| f.json == "token");
            // Optional in the type (responses never carry it), yet sent by `new`, and no
            // `Default` that would leave it out.
            assert!(
                token.is_some_and(|f| f.sent_required && f.option && f.skip_none),
                "nullable: {nullable}: {fields:?}"
            );
            assert!(!default, "nullable: {nullable}: derives Default");
        }
    }

    #[test]
    fn a_reference_to_an_unknown_schema_is_refused() {
        // Through `allOf`, where its properties would be lost.
        let error = lower(&json!({
            "Holder": { "allOf": [
                { "$ref": "#/components/schemas/Missing" },
                { "type": "object", "properties": { "a": { "type": "string" } } },
            ] },
        }))
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("Holder") && error.contains("unknown $ref") && error.contains("Missing"),
            "{error}"
        );
        // As a whole schema: an alias to nothing (this used to panic).
        let error = lower(&json!({ "Alias": { "$ref": "#/components/schemas/Missing" } }))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("Alias") && error.contains("Missing"),
            "{error}"
        );
        // A reference outside the document's component schemas.
        let error = lower(&json!({ "Holder": { "allOf": [{ "$ref": "other.yaml#/Thing" }] } }))
            .err()
            .unwrap_or_default();
        assert!(error.contains("other.yaml#/Thing"), "{error}");
    }

    #[test]
    fn schemas_that_refer_to_each_other_without_end_are_refused() {
        let error = lower(&json!({
            "A": { "allOf": [{ "$ref": "#/components/schemas/B" }] },
            "B": { "allOf": [{ "$ref": "#/components/schemas/A" }] },
        }))
        .err()
        .unwrap_or_default();
        assert!(error.contains("16 levels"), "{error}");
    }

    #[test]
    fn a_type_the_generator_does_not_support_is_refused_not_loosened() {
        // OpenAPI 3.1's list of types, as a property and as a whole schema.
        let error = lower(&json!({
            "Holder": {
                "type": "object",
                "properties": { "note": { "type": ["string", "null"] } },
            },
        }))
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("HolderNote") && error.contains("does not support"),
            "{error}"
        );
        let error = lower(&json!({ "Nothing": { "type": "null" } }))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("Nothing") && error.contains("\"null\""),
            "{error}"
        );
        // No type at all still means any JSON.
        let (fields, _) = fields_of(
            &json!({ "Holder": { "type": "object", "properties": { "any": {} } } }),
            "Holder",
        );
        assert!(fields.iter().any(|f| f.ty == super::Ty::Json), "{fields:?}");
    }

    #[test]
    fn tags_that_map_to_one_variant_name_are_refused() {
        let arm = json!({ "type": "object", "properties": { "type": { "type": "string" } } });
        let error = lower(&json!({
            "A": arm,
            "B": arm,
            "U": {
                "oneOf": [{ "$ref": "#/components/schemas/A" }, { "$ref": "#/components/schemas/B" }],
                "discriminator": { "propertyName": "type", "mapping": {
                    "ticket:closed": "#/components/schemas/A",
                    "ticket-closed": "#/components/schemas/B",
                } },
            },
        }))
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("U") && error.contains("`TicketClosed`"),
            "{error}"
        );
        // The same in a union tagged by its arms' titles.
        let schemas = json!({
            "A": { "title": "ticket:closed", "type": "object" },
            "B": { "title": "ticket-closed", "type": "object" },
        });
        let schemas = schemas.as_object().cloned().unwrap_or_default();
        let mut models = Models::new(&schemas).unwrap_or_default();
        let arms = [
            json!({ "$ref": "#/components/schemas/A" }),
            json!({ "$ref": "#/components/schemas/B" }),
        ];
        let error = models
            .add_titled_union(&schemas, "Event", "events", &arms)
            .err()
            .unwrap_or_default();
        assert!(error.contains("`TicketClosed`"), "{error}");
    }

    /// The tagged variants of `name`: `(tag, Rust name, type)`.
    fn variants_of(models: &Models, name: &str) -> Vec<(String, String, String)> {
        match models.get(name).map(|d| &d.kind) {
            Some(super::Kind::Tagged { variants, .. }) => variants
                .iter()
                .map(|v| (v.tag.clone(), v.rust.clone(), v.ty.clone()))
                .collect(),
            other => panic!("{name} is not tagged: {other:?}"),
        }
    }

    #[test]
    fn a_mapping_that_leaves_arms_out_keeps_them_under_their_implicit_value() {
        let arm = json!({ "type": "object", "properties": { "type": { "type": "string" } } });
        let with_default = json!({
            "type": "object",
            "properties": { "type": { "type": "string", "default": "sea" } },
        });
        let union = |mapping: Value| {
            json!({
                "A": arm,
                "B": arm,
                "C": with_default,
                "U": {
                    "oneOf": [
                        { "$ref": "#/components/schemas/A" },
                        { "$ref": "#/components/schemas/B" },
                        { "$ref": "#/components/schemas/C" },
                    ],
                    "discriminator": { "propertyName": "type", "mapping": mapping },
                },
            })
        };
        let models = lower(&union(json!({ "a": "#/components/schemas/A" }))).unwrap_or_default();
        let s = |v: &str| v.to_owned();
        assert_eq!(
            variants_of(&models, "U"),
            [
                (s("a"), s("A"), s("A")),
                (s("B"), s("B"), s("B")),
                (s("sea"), s("Sea"), s("C")),
            ]
        );
        // An implicit value the mapping already gives another arm is refused.
        let error = lower(&union(json!({ "B": "#/components/schemas/A" })))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("U") && error.contains("`B`") && error.contains("implicitly"),
            "{error}"
        );
    }
}

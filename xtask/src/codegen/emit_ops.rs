//! Rust source for the operations, one file per tag.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::emit_models::{MODELS, rust_ty, sensitive};
use super::ir::{Kind, Models, Ty};
use super::names::{bare, lit, snake};
use super::ops::{Arg, Body, OneOf, Op};
use super::{HEADER, REFERENCE};

fn arg_param(a: &Arg) -> (String, String) {
    match a.ty {
        Ty::Str => ("impl Into<String>".to_owned(), format!("{}.into()", a.rust)),
        _ => (rust_ty(&a.ty, MODELS), a.rust.clone()),
    }
}

/// The wire names of the credential fields an operation's JSON body can carry, at any depth
/// and in any variant of a union: the request hides their values in an error answer.
fn hidden_fields(op: &Op, models: &Models) -> BTreeSet<String> {
    fn named(ty: &Ty) -> Vec<String> {
        match ty {
            Ty::Named(n) => vec![n.clone()],
            Ty::Vec(inner) => named(inner),
            _ => Vec::new(),
        }
    }
    let Body::Json { ty, .. } = &op.body else {
        return BTreeSet::new();
    };
    let mut fields = BTreeSet::new();
    for name in models.reachable(&named(ty)) {
        if let Some(Kind::Struct(fs)) = models.get(&name).map(|d| &d.kind) {
            fields.extend(
                fs.iter()
                    .filter(|f| sensitive(&name, f))
                    .map(|f| f.json.clone()),
            );
        }
    }
    fields
}

fn emit_op(out: &mut String, op: &Op, models: &Models) {
    let multipart = matches!(op.body, Body::Multipart);
    let hidden = hidden_fields(op, models);
    let resp = rust_ty(&op.response, MODELS);
    let _ = writeln!(
        out,
        "/// Operation `{}`: `{} {}`.\n///\n/// Reference: <{REFERENCE}#tag/{}/operation/{}>",
        op.id,
        op.method,
        op.path,
        op.tag.replace(' ', "-"),
        op.id
    );
    if !op.credentials {
        out.push_str(
            "///\n/// Sent without the client's credentials (no `Authorization` header): the \
             operation requires none.\n",
        );
    } else if super::overrides::sends_credentials(&op.id).is_some() {
        out.push_str(
            "///\n/// Sent with the client's credentials (the token it asks about), although \
             the spec lists no security requirement.\n",
        );
    }
    if !hidden.is_empty() {
        let names: Vec<String> = hidden.iter().map(|f| format!("`{f}`")).collect();
        let _ = writeln!(
            out,
            "///\n/// An error answer that echoes the credentials its body carries ({}) shows \
             `[REDACTED]` in their place.",
            names.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "#[derive(Debug{})]",
        if multipart { "" } else { ", Clone" }
    );
    let _ = writeln!(
        out,
        "#[must_use = \"a request does nothing until it is sent\"]"
    );
    let _ = writeln!(out, "pub struct {} {{", op.rust);
    for a in &op.path_args {
        let _ = writeln!(out, "{}: String,", a.rust);
    }
    for a in &op.query {
        let t = rust_ty(&a.ty, MODELS);
        if a.required {
            let _ = writeln!(out, "{}: {t},", a.rust);
        } else {
            let _ = writeln!(out, "{}: Option<{t}>,", a.rust);
        }
    }
    match &op.body {
        Body::None => {}
        Body::Json { ty, required: true } => {
            let _ = writeln!(out, "body: {},", rust_ty(ty, MODELS));
        }
        Body::Json {
            ty,
            required: false,
        } => {
            let _ = writeln!(out, "body: Option<{}>,", rust_ty(ty, MODELS));
        }
        Body::Multipart => out.push_str("upload: crate::Upload,\n"),
    }
    out.push_str("}\n\n");

    // new(), setters, to_request(), send()
    let _ = writeln!(out, "impl {} {{", op.rust);
    let mut params = Vec::new();
    let mut inits = Vec::new();
    for a in op
        .path_args
        .iter()
        .chain(op.query.iter().filter(|a| a.required))
    {
        let (t, e) = arg_param(a);
        params.push(format!("{}: {t}", a.rust));
        inits.push(format!("{}: {e}", a.rust));
    }
    for a in op.query.iter().filter(|a| !a.required) {
        inits.push(format!("{}: None", a.rust));
    }
    match &op.body {
        Body::None => {}
        Body::Json { ty, required: true } => {
            params.push(format!("body: {}", rust_ty(ty, MODELS)));
            inits.push("body".to_owned());
        }
        Body::Json { .. } => inits.push("body: None".to_owned()),
        Body::Multipart => {
            params.push("upload: crate::Upload".to_owned());
            inits.push("upload".to_owned());
        }
    }
    let mut new_doc = format!(
        "/// Starts a `{}` request with its required arguments.",
        op.id
    );
    for group in &op.one_of {
        let _ = write!(
            new_doc,
            "\n///\n/// Set {} before sending: the API refuses the request otherwise, and \
             [`Self::{}`] refuses it first ([`crate::ErrorKind::Encode`]).",
            group_rule(group, true),
            if multipart {
                "into_request"
            } else {
                "to_request"
            }
        );
    }
    let _ = writeln!(
        out,
        "{new_doc}\npub fn new({}) -> Self {{\nSelf {{ {} }}\n}}\n",
        params.join(", "),
        inits.join(", ")
    );
    let no_args = params.is_empty();
    for a in op.query.iter().filter(|a| !a.required) {
        let (t, e) = arg_param(a);
        let group = op
            .one_of
            .iter()
            .find(|g| g.members.iter().any(|m| m.rust == a.rust))
            .map(|g| format!(" Set {}.", group_rule(g, false)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "/// Sets the query parameter `{}`.{group}\npub fn {}(mut self, {}: {t}) -> Self {{\nself.{} = Some({e});\nself\n}}\n",
            a.wire, a.rust, a.rust, a.rust
        );
    }
    if let Body::Json {
        ty,
        required: false,
    } = &op.body
    {
        let _ = writeln!(
            out,
            "/// Sets the JSON body.\npub fn body(mut self, body: {}) -> Self {{\nself.body = Some(body);\nself\n}}\n",
            rust_ty(ty, MODELS)
        );
    }
    // The path, with each argument percent-encoded as one segment.
    let mut fmt = op.path.clone();
    let mut fmt_args = Vec::new();
    for a in &op.path_args {
        fmt = fmt.replace(&format!("{{{}}}", a.wire), "{}");
        fmt_args.push(format!(
            "crate::encode::path_segment(&self.{}, {}, {})?",
            a.rust,
            lit(&a.wire),
            lit(&op.id)
        ));
    }
    let (recv, build) = if multipart {
        ("self", "into_request")
    } else {
        ("&self", "to_request")
    };
    let body = if matches!(op.body, Body::Json { .. }) {
        "; or when the body cannot be encoded"
    } else {
        ""
    };
    // A page is asked for after one cursor or before one, never both (the spec's `page`).
    let page_pair = op
        .query
        .iter()
        .find(|a| a.wire == "page[after]")
        .zip(op.query.iter().find(|a| a.wire == "page[before]"));
    let body = match page_pair {
        Some(_) => format!("{body}; or when both `page[after]` and `page[before]` are set"),
        None => body.to_owned(),
    };
    let errors = if !op.one_of.is_empty() {
        let rules: Vec<String> = op.one_of.iter().map(|g| group_rule(g, true)).collect();
        format!(
            "\n///\n/// # Errors\n///\n/// [`crate::ErrorKind::Encode`] unless {} is set{}{body}.",
            rules.join(", and "),
            if op.path_args.is_empty() {
                ""
            } else {
                "; when a path parameter is empty, `.` or `..`"
            }
        )
    } else if !op.path_args.is_empty() {
        format!(
            "\n///\n/// # Errors\n///\n/// [`crate::ErrorKind::Encode`] when a path parameter is empty, `.` or \
             `..`{body}."
        )
    } else if page_pair.is_some() {
        "\n///\n/// # Errors\n///\n/// [`crate::ErrorKind::Encode`] when both `page[after]` and \
         `page[before]` are set."
            .to_owned()
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "/// Builds the wire request (path, query, body) without sending it.{errors}\n\
         pub fn {build}({recv}) -> Result<crate::ApiRequest, crate::Error> {{"
    );
    for group in &op.one_of {
        let count: Vec<String> = group
            .members
            .iter()
            .map(|m| format!("usize::from(self.{}.is_some())", m.rust))
            .collect();
        let (test, rule) = if group.exclusive {
            ("!= 1", "exactly one of")
        } else {
            ("== 0", "at least one of")
        };
        let wires: Vec<String> = group
            .members
            .iter()
            .map(|m| format!("`{}`", m.wire))
            .collect();
        let _ = writeln!(
            out,
            "if {} {test} {{\nreturn Err(crate::Error::new(crate::ErrorKind::Encode, {}).at({}));\n}}",
            count.join(" + "),
            lit(&format!(
                "`{}` needs {rule} {}",
                group.param,
                wires.join(if group.exclusive { " and " } else { " or " })
            )),
            lit(&op.id)
        );
    }
    if let Some((after, before)) = page_pair {
        let _ = writeln!(
            out,
            "if self.{}.is_some() && self.{}.is_some() {{\nreturn Err(crate::Error::new(crate::ErrorKind::Encode, {}).at({}));\n}}",
            after.rust,
            before.rust,
            lit("`page` takes `page[after]` or `page[before]`, not both"),
            lit(&op.id)
        );
    }
    if fmt_args.is_empty() {
        let _ = writeln!(out, "let path = String::from({});", lit(&fmt));
    } else {
        let _ = writeln!(
            out,
            "let path = format!({}, {});",
            lit(&fmt),
            fmt_args.join(", ")
        );
    }
    let mutable = !op.query.is_empty() || !matches!(op.body, Body::None);
    let _ = writeln!(
        out,
        "let {}req = crate::ApiRequest::new(http::Method::{}, path, {}){};",
        if mutable { "mut " } else { "" },
        op.method,
        lit(&op.id),
        if op.credentials {
            ""
        } else {
            ".without_credentials()"
        }
    );
    for a in &op.query {
        let value = match a.ty {
            Ty::Str => "v.clone()",
            _ => "v.to_string()",
        };
        if a.required {
            let _ = writeln!(
                out,
                "{{ let v = &self.{}; req.push_query({}, {value}); }}",
                a.rust,
                lit(&a.wire)
            );
        } else {
            let _ = writeln!(
                out,
                "if let Some(v) = &self.{} {{ req.push_query({}, {value}); }}",
                a.rust,
                lit(&a.wire)
            );
        }
    }
    match &op.body {
        Body::None => {}
        Body::Json { required: true, .. } => out.push_str("req.set_json(&self.body)?;\n"),
        Body::Json {
            required: false, ..
        } => out.push_str("if let Some(body) = &self.body { req.set_json(body)?; }\n"),
        Body::Multipart => out.push_str("req.set_upload(self.upload);\n"),
    }
    if !hidden.is_empty() {
        let names: Vec<String> = hidden.iter().map(|f| lit(f)).collect();
        let _ = writeln!(out, "req.hide_json_fields(&[{}]);", names.join(", "));
    }
    out.push_str("Ok(req)\n}\n\n");
    if op.redirect {
        let _ = writeln!(
            out,
            "/// The URL to send the user's browser to (the API answers it with a redirect, \
             which is meant for the browser, not for this client).\n\
             ///\n/// # Errors\n///\n/// Only when a request body cannot be encoded.\n\
             pub fn url(&self, client: &crate::Client) -> Result<String, crate::Error> {{\n\
             Ok(client.url_for(&self.to_request()?))\n}}\n\n\
             /// Sends the request and returns the redirect the API answers with, unfollowed.\n\
             ///\n/// # Errors\n///\n/// See [`crate::Client::execute_redirect`].\n\
             pub async fn send(&self, client: &crate::Client) -> Result<crate::Redirect, crate::Error> {{\n\
             client.execute_redirect(self.to_request()?).await\n}}"
        );
    } else {
        let _ = writeln!(
            out,
            "/// Sends the request and decodes the response.\n\
         ///\n/// # Errors\n///\n/// See [`crate::Error`]: transport failures, API error responses and decode failures.\n\
         pub async fn send({recv}, client: &crate::Client) -> Result<{resp}, crate::Error> {{\n\
         client.execute_json(self.{build}()?).await\n}}"
        );
    }
    if op.paging.is_some() {
        let _ = writeln!(
            out,
            "\n/// {} A page that cannot be fetched ends the stream with its error; \
             [`crate::pagination::Listing::resume`] then gives the request for that page.\n\
             pub fn paginate(self, client: &crate::Client) -> crate::pagination::Listing<Self> {{\n\
             crate::pagination::paginate(client.clone(), self)\n}}",
            if backward(op) {
                "Streams every item, newest page first (the spec pages this list backwards), \
                 following `meta.hasMore` and `meta.beforeCursor`; items keep their order within a page. \
                 Started with `page_after`, it pages forwards along `meta.afterCursor` instead."
            } else {
                "Streams every item across pages, following `meta.hasMore` and `meta.afterCursor` \
                 (or `meta.beforeCursor` when started with `page_before`)."
            }
        );
    }
    out.push_str("}\n\n");
    if no_args {
        let _ = writeln!(
            out,
            "impl Default for {0} {{\nfn default() -> Self {{\nSelf::new()\n}}\n}}\n",
            op.rust
        );
    }

    if let Some(p) = &op.paging {
        let item = rust_ty(&p.item, MODELS);
        let has = |wire: &str| op.query.iter().any(|a| a.wire == wire);
        // Backwards when the caller started with `page[before]`, or when the operation pages
        // backwards by default (overrides::pages_backward) and the caller did not start with
        // `page[after]`; forwards otherwise.
        let can_go_back = has("page[before]") && p.before_option.is_some();
        let backwards = match (can_go_back, super::overrides::pages_backward(&op.id)) {
            (false, _) => "false".to_owned(),
            (true, true) => "self.page_after.is_none()".to_owned(),
            (true, false) => "self.page_before.is_some()".to_owned(),
        };
        let clear_before = if has("page[before]") {
            "self.page_before = None;"
        } else {
            ""
        };
        let set = if can_go_back {
            format!(
                "if {backwards} {{\nself.page_before = Some(cursor);\nself.page_after = None;\n}} else {{\nself.page_after = Some(cursor);\n{clear_before}\n}}"
            )
        } else {
            format!("self.page_after = Some(cursor);\n{clear_before}")
        };
        let meta = if p.meta_option {
            "page.meta.as_ref()"
        } else {
            "Some(&page.meta)"
        };
        let more = if p.has_more_option {
            "m.has_more == Some(true)"
        } else {
            "m.has_more"
        };
        let cursor = |field: &str, option: bool| {
            if option {
                format!("m.{field}.clone()")
            } else {
                format!("Some(m.{field}.clone())")
            }
        };
        let after = cursor("after_cursor", p.after_option);
        let next = match p.before_option {
            Some(opt) if can_go_back => format!(
                "if backwards {{ {} }} else {{ {after} }}",
                cursor("before_cursor", opt)
            ),
            _ => after,
        };
        let backwards_let = if can_go_back {
            format!("let backwards = {backwards};\n")
        } else {
            String::new()
        };
        let items = if p.items_option {
            format!("page.{}.unwrap_or_default()", p.items_field)
        } else {
            format!("page.{}", p.items_field)
        };
        // The starting cursor, so the stream can count it as followed already.
        let start = if has("page[before]") {
            "self.page_after.as_deref().or(self.page_before.as_deref())"
        } else {
            "self.page_after.as_deref()"
        };
        let _ = writeln!(
            out,
            "impl crate::pagination::Paged for {} {{\n\
             type Item = {item};\n\
             fn set_cursor(&mut self, cursor: String) {{\n{set}\n}}\n\
             fn cursor(&self) -> Option<&str> {{\n{start}\n}}\n\
             async fn fetch_page(&self, client: &crate::Client) -> Result<crate::pagination::Page<Self::Item>, crate::Error> {{\n\
             {backwards_let}let page = self.send(client).await?;\n\
             let (has_more, next) = {meta}.map_or((false, None), |m| ({more}, {next}));\n\
             Ok(crate::pagination::Page {{ items: {items}, has_more, next }})\n\
             }}\n}}\n",
            op.rust
        );
    }
}

/// "exactly one of [`Self::a`] and [`Self::b`]" (or "at least one of"), for the docs; with
/// `wire`, each setter's query parameter follows it.
fn group_rule(group: &OneOf, wire: bool) -> String {
    let names: Vec<String> = group
        .members
        .iter()
        .map(|m| {
            if wire {
                format!("[`Self::{}`] (`{}`)", m.rust, m.wire)
            } else {
                format!("[`Self::{}`]", m.rust)
            }
        })
        .collect();
    let (rule, join) = if group.exclusive {
        ("exactly one of", " and ")
    } else {
        ("at least one of", " or ")
    };
    format!("{rule} {}", names.join(join))
}

/// Whether the operation pages backwards when the caller gives no cursor.
fn backward(op: &Op) -> bool {
    super::overrides::pages_backward(&op.id)
}

/// `(file name, source)` for every tag plus the `mod.rs` that re-exports them.
pub(crate) fn emit(ops: &[Op], models: &Models) -> Vec<(String, String)> {
    let mut tags: BTreeMap<String, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        tags.entry(bare(&snake(&op.tag)).to_owned())
            .or_default()
            .push(op);
    }
    let mut files = Vec::new();
    let mut root = format!(
        "{HEADER}\n//! One typed request per operation of the Sunshine Conversations API, by tag.\n\n"
    );
    for (tag, ops) in &tags {
        let _ = writeln!(root, "mod {tag};\npub use {tag}::*;");
        let mut out = format!("{HEADER}\n//! Operations tagged `{}`.\n\n", ops[0].tag);
        for op in ops {
            emit_op(&mut out, op, models);
        }
        files.push((format!("operations/{tag}.rs"), out));
    }
    let _ = writeln!(
        root,
        "\n/// Every operation: `(operationId, method, path)`.\npub const ALL: &[(&str, &str, &str)] = &["
    );
    for op in ops {
        let _ = writeln!(
            root,
            "({}, {}, {}),",
            lit(&op.id),
            lit(&op.method),
            lit(&op.path)
        );
    }
    root.push_str("];\n");
    files.push(("operations/mod.rs".to_owned(), root));
    files
}

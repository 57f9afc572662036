//! The engine serves exactly the schema in `schemas/chat/chat.graphql`.

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// A schema as sorted text lines: one per type, field (with args), input field, enum value and
/// union member, ignoring descriptions, comments and order.
fn canonical(sdl: &str) -> BTreeMap<String, Vec<String>> {
    let doc = parse_schema(sdl).unwrap();
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let name = ty.name.node.to_string();
        let mut lines = Vec::new();
        match ty.kind {
            TypeKind::Object(o) => {
                let mut imps: Vec<String> =
                    o.implements.iter().map(|i| i.node.to_string()).collect();
                imps.sort();
                lines.push(format!("object implements {}", imps.join(",")));
                for f in o.fields {
                    let f = f.node;
                    let mut args: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    args.sort();
                    lines.push(format!(
                        "{}({}): {}",
                        f.name.node,
                        args.join(", "),
                        f.ty.node
                    ));
                }
            }
            TypeKind::Interface(o) => {
                lines.push("interface".into());
                for f in o.fields {
                    let f = f.node;
                    let mut args: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    args.sort();
                    lines.push(format!(
                        "{}({}): {}",
                        f.name.node,
                        args.join(", "),
                        f.ty.node
                    ));
                }
            }
            TypeKind::Union(u) => {
                lines.push("union".into());
                lines.extend(u.members.iter().map(|m| format!("| {}", m.node)));
            }
            TypeKind::Enum(e) => {
                lines.push("enum".into());
                lines.extend(e.values.iter().map(|v| v.node.value.node.to_string()));
            }
            TypeKind::InputObject(i) => {
                lines.push("input".into());
                lines.extend(
                    i.fields
                        .iter()
                        .map(|f| format!("{}: {}", f.node.name.node, f.node.ty.node)),
                );
            }
            TypeKind::Scalar => lines.push("scalar".into()),
        }
        lines.sort();
        out.insert(name, lines);
    }
    out
}

#[test]
fn engine_schema_matches_the_project_sdl() {
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/chat/chat.graphql"
    ))
    .unwrap();
    let engine = zd_emulator::chat::engine_sdl();
    let expected = canonical(&file);
    let actual = canonical(&engine);
    for (name, lines) in &expected {
        assert_eq!(actual.get(name), Some(lines), "type {name} differs");
    }
    let extra: Vec<&String> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        extra.is_empty(),
        "engine has types the SDL lacks: {extra:?}"
    );
}

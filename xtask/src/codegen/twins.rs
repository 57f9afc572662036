//! Request twins of shared schemas.
//!
//! A schema that is both sent and received (a user's `profile`, say) is generated once, with
//! `Option` fields, which suits readers. But an update must be able to tell "leave this field
//! alone" from "unset it" (`null`), which only `Patch` can. So each such schema with optional
//! nullable fields that an update body (a `PATCH` request) holds gets a twin, `<Name>Patch`,
//! whose nullable fields are `Patch` like those of any request-only struct, and the update
//! body holds the twin instead. Create bodies keep the shared schema: there is nothing to unset.

use std::collections::{BTreeMap, BTreeSet};

use super::ir::{Def, Kind, Models, Ty};

/// Adds the twins for the fields of `update_bodies` and points those bodies at them.
pub(crate) fn add(models: &mut Models, update_bodies: &BTreeSet<String>) {
    let mut renames = BTreeMap::new();
    let mut twins = Vec::new();
    for body in update_bodies {
        let Some(Kind::Struct(fields)) = models.get(body).map(|d| d.kind.clone()) else {
            continue;
        };
        for f in fields {
            let Ty::Named(name) = f.ty else { continue };
            if renames.contains_key(&name) || models.request_only.contains(&name) {
                continue;
            }
            let Some(def) = models.get(&name) else {
                continue;
            };
            if !matches!(&def.kind, Kind::Struct(fs) if fs.iter().any(|f| f.nullable && f.skip_none))
            {
                continue;
            }
            let mut twin = def.clone();
            // Fields only the examples of responses carry (overrides::extra_fields) are
            // nothing a request sends.
            let observed = super::overrides::extra_fields(&def.name);
            if let Kind::Struct(fs) = &mut twin.kind {
                fs.retain(|f| !observed.iter().any(|(json, _)| *json == f.json));
            }
            twin.name = models.fresh(&format!("{name}Patch"));
            renames.insert(name, twin.name.clone());
            twins.push(twin);
        }
    }
    for def in models
        .defs
        .iter_mut()
        .filter(|d| update_bodies.contains(&d.name))
    {
        retarget(def, &renames);
    }
    for twin in twins {
        models.request_only.insert(twin.name.clone());
        models.defs.push(twin);
    }
}

/// Makes `def`'s fields name the twins instead of the shared schemas.
fn retarget(def: &mut Def, renames: &BTreeMap<String, String>) {
    if let Kind::Struct(fields) = &mut def.kind {
        for f in fields {
            if let Ty::Named(n) = &mut f.ty
                && let Some(twin) = renames.get(n)
            {
                n.clone_from(twin);
            }
        }
    }
}

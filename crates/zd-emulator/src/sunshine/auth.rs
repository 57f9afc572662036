//! Who is calling: Basic with a key id and secret, or an HS256 JWT whose `kid` names a key,
//! or an OAuth bridge token; and what that caller may reach.

use axum::http::HeaderMap;
use subtle_eq::ct_eq;
use zd_auth::Secret;
use zd_auth::sunshine::{KeyKind, Scope, Verifier};

use super::error::ApiError;
use super::store::Store;
use crate::credentials;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// An account key: every app.
    Account,
    /// An app key: one app.
    App(String),
    /// A custom integration key or an OAuth bridge token: one app, one integration.
    Integration {
        app_id: String,
        integration_id: String,
    },
}

impl Principal {
    /// Whether the caller reaches `app_id` at all.
    pub(crate) fn reaches(&self, app_id: &str) -> bool {
        match self {
            Self::Account => true,
            Self::App(id) | Self::Integration { app_id: id, .. } => id == app_id,
        }
    }
}

/// Where a key lives.
enum Owner {
    Account,
    App(String),
    Integration(String, String),
}

fn find_key(store: &Store, key_id: &str) -> Option<(Owner, String)> {
    if let Some(k) = store.account_keys.iter().find(|k| k.id == key_id) {
        return Some((Owner::Account, k.secret.clone()));
    }
    for app in store.apps.values() {
        if let Some(k) = app.keys.get(key_id) {
            return Some((Owner::App(app.id.clone()), k.secret.clone()));
        }
        for integration in app.integrations.values() {
            if let Some(k) = integration.keys.get(key_id) {
                return Some((
                    Owner::Integration(app.id.clone(), integration.id.clone()),
                    k.secret.clone(),
                ));
            }
        }
    }
    None
}

fn principal(owner: Owner) -> Principal {
    match owner {
        Owner::Account => Principal::Account,
        Owner::App(id) => Principal::App(id),
        Owner::Integration(app_id, integration_id) => Principal::Integration {
            app_id,
            integration_id,
        },
    }
}

/// Authenticates the `Authorization` header against the keys in `store`.
pub(crate) fn authenticate(store: &Store, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let value = credentials::header(headers).ok_or_else(ApiError::unauthorized)?;
    if let Some((id, secret)) = credentials::basic(value) {
        let (owner, expected) = find_key(store, &id).ok_or_else(ApiError::unauthorized)?;
        if !ct_eq(secret.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::unauthorized());
        }
        return Ok(principal(owner));
    }
    let rest = credentials::bearer(value).ok_or_else(ApiError::unauthorized)?;
    if let Some((app_id, integration_id)) = store.bridge_tokens.get(rest) {
        // Checked here as well as swept on deletion: whichever path removed the token's app
        // or integration, the token must not outlive them.
        let live = store
            .apps
            .get(app_id)
            .is_some_and(|app| app.integrations.contains_key(integration_id));
        if !live {
            return Err(ApiError::unauthorized());
        }
        return Ok(Principal::Integration {
            app_id: app_id.clone(),
            integration_id: integration_id.clone(),
        });
    }
    let lookup = |kid: &str| find_key(store, kid).map(|(_, secret)| Secret::new(secret));
    let verified = Verifier::new(lookup)
        .verify(rest)
        .map_err(|_| ApiError::unauthorized())?;
    let (owner, _) = find_key(store, &verified.key_id).ok_or_else(ApiError::unauthorized)?;
    // The JWT's scope must fit both the key's kind and where the key lives.
    let fits = match (&owner, verified.scope) {
        (Owner::Account, Scope::Account) | (Owner::App(_), Scope::App) => true,
        (Owner::Integration(..), Scope::Integration) => true,
        _ => false,
    };
    if !fits || !KeyKind::of(&verified.key_id).allows(verified.scope) {
        return Err(ApiError::unauthorized());
    }
    Ok(principal(owner))
}

/// Constant-time comparison of secrets.
mod subtle_eq {
    pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

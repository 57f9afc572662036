//! Sunshine Conversations credentials: API keys as Basic auth, app / account / integration
//! JWTs (cached), user-scope JWTs for SDK login, verification of all of these, and the OAuth
//! bridge for marketplace integrations.

mod api_key;
mod basic;
pub mod bridge;
mod cached;
mod jwt;
mod user;
mod verify;

pub use api_key::{ApiKey, KeyKind, Scope};
pub use basic::BasicAuth;
pub use cached::JwtCredentials;
pub use jwt::sign_jwt;
pub use user::{EXTERNAL_ID_MAX_CHARS, UserJwt};
pub use verify::{KeyLookup, UserClaims, Verified, Verifier};

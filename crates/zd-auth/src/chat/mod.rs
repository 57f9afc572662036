//! Zendesk Chat OAuth 2 (`https://www.zopim.com/oauth2/...`): the browser authorization URL,
//! the token endpoint's grants, and credentials that renew themselves.
//!
//! The same Chat token serves the Chat REST API, the Real Time Chat API and the Chat
//! Conversations API (which needs the `read write chat` scopes).

mod authorize;
mod client;
mod grants;
mod scope;
mod token;

pub use authorize::{AuthorizeUrl, ResponseType};
pub use client::{DEFAULT_BASE_URL, OAuthClient};
pub use grants::{ClientCredentialsGrant, RefreshGrant};
pub use scope::ChatScope;
pub use token::ChatToken;

//! Secrets in the emulator's account types: [`zd_auth::Secret`] fields that serialize in clear.
//!
//! The account JSON (`GET /_emulator/account`, the account file) exists to hand out the
//! made-up local credentials, so it writes them; `Debug` of the same types, which ends up in
//! logs and test output, shows `Secret([REDACTED])` like every other secret of the project.

use serde::Serializer;
use zd_auth::Secret;

/// `serialize_with` for a [`Secret`] field: the value as a JSON string.
pub(crate) fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

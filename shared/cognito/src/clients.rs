//! The pool's app clients and their secrets, and what the adapter hands out in Cognito's place:
//! refresh tokens and challenge sessions that also name the user.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An app client of the pool, and its secret when it has one. With a secret, every call that
/// names the client carries `SECRET_HASH`, so only holders of the secret (the platform's
/// functions) can make them: nobody can confirm a sign-up or a password reset against Cognito
/// directly, around the platform's cap on wrong codes.
#[derive(Clone, PartialEq, Eq)]
pub struct AppClient {
    pub id: String,
    secret: Option<String>,
}

impl std::fmt::Debug for AppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClient")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AppClient {
    /// An empty secret is none (template.yaml always sets one; a pool made by hand may not).
    pub fn new(id: impl Into<String>, secret: Option<String>) -> Self {
        Self {
            id: id.into(),
            secret: secret.filter(|s| !s.is_empty()),
        }
    }

    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// `Base64(HMAC-SHA256(secret, username + client id))`, Cognito's proof of the secret; none
    /// for a client without one.
    pub fn secret_hash(&self, username: &str) -> Option<String> {
        use hmac::{Hmac, Mac};
        let secret = self.secret.as_ref()?;
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(username.as_bytes());
        mac.update(self.id.as_bytes());
        Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The parameters of an auth call or a challenge answer for `username`, with the
    /// `SECRET_HASH` over that username when the client has a secret.
    pub(crate) fn parameters(
        &self,
        username: &str,
        others: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut parameters: HashMap<String, String> = others
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(hash) = self.secret_hash(username) {
            parameters.insert("SECRET_HASH".into(), hash);
        }
        parameters
    }
}

/// A user's pool username and an opaque value of Cognito's, as one opaque string: the refresh
/// tokens and TOTP challenge sessions the adapter hands out. A refresh needs the username for its
/// `SECRET_HASH`, and a challenge answer names the user; Cognito's own refresh tokens and
/// sessions reveal neither.
pub(crate) fn pack(username: &str, opaque: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{username}\n{opaque}"))
}

/// The username and Cognito's value of a [`pack`]ed string; `None` for anything else.
pub(crate) fn unpack(packed: &str) -> Option<(String, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(packed.trim()).ok()?).ok()?;
    let (username, opaque) = text.split_once('\n')?;
    (!username.is_empty() && !opaque.is_empty()).then(|| (username.to_owned(), opaque.to_owned()))
}

/// Whether Cognito refused the call because its `SECRET_HASH` was missing or wrong: the
/// platform's configuration is wrong (a secret missing or rotated), not the user's answer. It
/// comes as `NotAuthorizedException`, the same code as a wrong password, so the message tells.
pub(crate) fn secret_refused<E: ProvideErrorMetadata>(error: &E) -> bool {
    let message = error.message().unwrap_or_default().to_ascii_lowercase();
    message.contains("secret hash")
        || message.contains("secrethash")
        || message.contains("configured for secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_hash_is_cognitos_hmac_of_username_and_client_id() {
        // The value AWS's documented recipe (and moto's check) gives for these inputs.
        let app = AppClient::new("client123", Some("s3cr3t".into()));
        assert_eq!(
            app.secret_hash("user@example.com").as_deref(),
            Some("HUcyXOagzC8xPg5OF5Z6P1nV4llo7nnI7sDP2pYyq1k=")
        );
        assert_eq!(
            app.parameters("user@example.com", &[("USERNAME", "user@example.com")])["SECRET_HASH"],
            "HUcyXOagzC8xPg5OF5Z6P1nV4llo7nnI7sDP2pYyq1k="
        );
        let public = AppClient::new("public", None);
        assert_eq!(public.secret_hash("u"), None);
        assert!(!public.parameters("u", &[]).contains_key("SECRET_HASH"));
        assert_eq!(
            AppClient::new("public", Some(String::new())).secret_hash("u"),
            None
        );
        assert!(
            !format!("{app:?}").contains("s3cr3t"),
            "the secret is never printed"
        );
    }

    #[test]
    fn a_packed_value_gives_back_its_username_and_nothing_else_unpacks() {
        let packed = pack("0f1e-uuid", "cognito-refresh");
        assert_eq!(
            unpack(&packed),
            Some(("0f1e-uuid".to_owned(), "cognito-refresh".to_owned()))
        );
        assert_eq!(unpack("not base64 !"), None);
        assert_eq!(unpack(&URL_SAFE_NO_PAD.encode("no-newline")), None);
        assert_eq!(unpack(&URL_SAFE_NO_PAD.encode("\nno-username")), None);
        // Cognito's own refresh tokens (JWE, with dots) are not packed values.
        assert_eq!(
            unpack("eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIn0.x.y.z.w"),
            None
        );
    }

    #[test]
    fn a_refused_secret_hash_is_told_from_a_wrong_password() {
        use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
        let refusal = |message: &str| {
            ErrorMetadata::builder()
                .code("NotAuthorizedException")
                .message(message)
                .build()
        };
        assert!(secret_refused(&refusal(
            "Unable to verify secret hash for client 1abc"
        )));
        assert!(secret_refused(&refusal(
            "Client 1abc is configured for secret but secret was not received"
        )));
        assert!(!secret_refused(&refusal("Incorrect username or password.")));
    }
}

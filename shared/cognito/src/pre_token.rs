//! The user pool's pre-token-generation trigger (event version 2; `PreTokenFunction` in
//! template.yaml, the `cognito-pre-token` binary).
//!
//! Cognito writes the scope `aws.cognito.signin.user.admin` into every access token of the admin
//! password flow and of refreshes. That scope lets the token call Cognito's user-facing API
//! itself, outside the platform: turn MFA off without a code (`SetUserMFAPreference`), set up
//! another authenticator (`AssociateSoftwareToken`, `VerifySoftwareToken`), change attributes
//! such as the account type (`UpdateUserAttributes`) or delete the user. The platform's routes
//! ask for the password (and a code) for each of these, so the scope would be a way around
//! them with a stolen token.
//!
//! This trigger takes the scope out of every access token, except those of the pool's enrolment
//! client (named `<stack>-enrolment`), which the Cognito adapter signs in with, after checking
//! the password, for the one MFA call only such a token may make, and which it never hands out.
//! Anything it cannot decide (an unknown pool, a failed look-up) loses the scope: failing
//! closed costs an enrolment, never a hole.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::Client;
use serde_json::{Value, json};

/// The scope that lets an access token call Cognito's user-facing API.
pub const USER_ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
/// How the enrolment client's name ends (template.yaml's `EnrolmentClient`).
pub const ENROLMENT_CLIENT_SUFFIX: &str = "-enrolment";
/// How long a pool's list of enrolment clients is trusted before it is read again.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// Fills in the trigger's answer: the event with its `response`, keeping the scope only where
/// `keep_user_admin_scope` says so.
pub fn respond(mut event: Value, keep_user_admin_scope: bool) -> Value {
    if !event.is_object() {
        event = json!({});
    }
    event["response"] = if keep_user_admin_scope {
        json!({})
    } else {
        json!({
            "claimsAndScopeOverrideDetails": {
                "accessTokenGeneration": { "scopesToSuppress": [USER_ADMIN_SCOPE] }
            }
        })
    };
    event
}

/// The trigger: knows which clients of a pool are enrolment clients, by their names.
pub struct PreToken {
    client: Client,
    enrolment_clients: Mutex<HashMap<String, (Instant, HashSet<String>)>>,
}

impl PreToken {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            enrolment_clients: Mutex::new(HashMap::new()),
        }
    }

    /// Answers one event (see the module's documentation).
    pub async fn answer(&self, event: Value) -> Value {
        let pool = event["userPoolId"].as_str().unwrap_or_default().to_owned();
        let client_id = event["callerContext"]["clientId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let keep = !pool.is_empty()
            && !client_id.is_empty()
            && match self.enrolment_clients(&pool).await {
                Ok(clients) => clients.contains(&client_id),
                Err(error) => {
                    tracing::warn!(pool, %error, "cannot list the pool's app clients; the scope goes");
                    false
                }
            };
        respond(event, keep)
    }

    async fn enrolment_clients(&self, pool: &str) -> Result<HashSet<String>, String> {
        if let Some((read, clients)) = self.lock().get(pool)
            && read.elapsed() < CACHE_FOR
        {
            return Ok(clients.clone());
        }
        let mut clients = HashSet::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_user_pool_clients()
                .user_pool_id(pool)
                .max_results(60)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
                    format!(
                        "{}: {}",
                        e.code().unwrap_or("unknown"),
                        e.message().unwrap_or("")
                    )
                })?;
            clients.extend(
                page.user_pool_clients()
                    .iter()
                    .filter(|c| {
                        c.client_name()
                            .is_some_and(|n| n.ends_with(ENROLMENT_CLIENT_SUFFIX))
                    })
                    .filter_map(|c| c.client_id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        self.lock()
            .insert(pool.to_owned(), (Instant::now(), clients.clone()));
        Ok(clients)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, HashSet<String>)>> {
        self.enrolment_clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_suppresses_the_user_admin_scope_unless_told_to_keep_it() {
        let event = json!({"version": "2", "userPoolId": "p", "response": {"claimsAndScopeOverrideDetails": null}});
        let suppressed = respond(event.clone(), false);
        assert_eq!(
            suppressed["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["scopesToSuppress"],
            json!([USER_ADMIN_SCOPE])
        );
        assert_eq!(suppressed["version"], "2", "the rest of the event is kept");
        assert_eq!(respond(event, true)["response"], json!({}));
        assert!(respond(json!("junk"), false)["response"].is_object());
    }
}

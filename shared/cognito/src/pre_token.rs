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
//! client (template.yaml's `EnrolmentClient`, known by its exact name), which the Cognito adapter
//! signs in with, using the password the caller gave, for the MFA calls only such a token may
//! make, and which it never hands out. Anything it cannot decide (an unknown pool or client, a
//! failed or slow look-up, no name configured) loses the scope: failing closed costs an MFA
//! change, never a hole.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::Client;
use serde_json::{Value, json};

/// The scope that lets an access token call Cognito's user-facing API.
pub const USER_ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
/// The enrolment client's name (`<stack>-enrolment` in template.yaml).
pub const ENROLMENT_CLIENT_NAME: &str = "AMANAR_ENROLMENT_CLIENT_NAME";
/// How long a pool's enrolment client id is trusted before it is read again.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// How long a failed look-up is remembered: while the API refuses (throttling, say), sign-ins
/// go on without the scope instead of each waiting on another call.
const FAILURE_FOR: Duration = Duration::from_secs(30);

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

/// What is known of one pool: its enrolment client's id (if it has one by that name), or that
/// the look-up failed, and when.
type Known = (Instant, Result<Option<String>, String>);

/// The trigger: knows each pool's enrolment client by its name.
pub struct PreToken {
    client: Client,
    enrolment_client_name: Option<String>,
    pools: Mutex<HashMap<String, Known>>,
}

impl PreToken {
    /// `enrolment_client_name`: the one client whose tokens keep the scope; `None` keeps it for
    /// no client.
    pub fn new(client: Client, enrolment_client_name: Option<String>) -> Self {
        Self {
            client,
            enrolment_client_name: enrolment_client_name.filter(|n| !n.is_empty()),
            pools: Mutex::new(HashMap::new()),
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
            && match self.enrolment_client(&pool).await {
                Ok(enrolment) => enrolment.as_deref() == Some(client_id.as_str()),
                Err(error) => {
                    tracing::warn!(pool, %error, "cannot list the pool's app clients; the scope goes");
                    false
                }
            };
        respond(event, keep)
    }

    async fn enrolment_client(&self, pool: &str) -> Result<Option<String>, String> {
        let Some(name) = &self.enrolment_client_name else {
            return Ok(None);
        };
        if let Some((read, known)) = self.lock().get(pool) {
            let trusted = if known.is_ok() {
                CACHE_FOR
            } else {
                FAILURE_FOR
            };
            if read.elapsed() < trusted {
                return known.clone();
            }
        }
        let found = self.find(pool, name).await;
        self.lock()
            .insert(pool.to_owned(), (Instant::now(), found.clone()));
        found
    }

    /// The id of the pool's client with exactly this name.
    async fn find(&self, pool: &str, name: &str) -> Result<Option<String>, String> {
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
                .map_err(|e| super::unavailable(e).to_string())?;
            if let Some(id) = page
                .user_pool_clients()
                .iter()
                .find(|c| c.client_name() == Some(name))
                .and_then(|c| c.client_id())
            {
                return Ok(Some(id.to_owned()));
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.pools
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

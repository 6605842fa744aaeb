//! The identity-provider port on a Cognito user pool. Users sign in with their email (the pool's
//! username attribute); the account type is the custom attribute `account_type`; platform roles
//! are groups. Calls that name an app client (sign-up, codes, resets, refreshes) carry its
//! `SECRET_HASH`, so only holders of the client's secret can make them; sign-ins use the admin
//! flow, and admin calls (sign-ins, look-ups, global sign-out, groups, MFA) need the function's
//! role to allow them on the pool.
//!
//! Users' tokens come from the app client and lose Cognito's user-facing scope in the pool's
//! pre-token trigger ([`pre_token`]); the MFA calls that need that scope sign in through the
//! enrolment client instead, with the password the caller gave, and never hand its tokens out.
//!
//! Cognito sends its own mail, and its refresh tokens do not rotate through `InitiateAuth`: a
//! refresh returns the same refresh token, which stays valid until it expires or the user signs out.

use amanar_accounts::identity::{
    IdentityError, IdentityProvider, IdentityUser, NewIdentity, SignIn, TokenIssuer, TokenSet,
    unverified_claim,
};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::operation::admin_get_user::AdminGetUserOutput;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ChallengeNameType, MessageActionType,
    SoftwareTokenMfaSettingsType,
};
use jsonwebtoken::jwk::JwkSet;

mod clients;
mod pool;
pub mod pre_token;

pub use clients::AppClient;
use clients::{pack, secret_refused, unpack};
pub use pool::{CreatedPool, create_user_pool};

const ACCOUNT_TYPE: &str = "custom:account_type";
/// How long to wait before asking Cognito for another code after it refused for rate.
const COOLDOWN_SECS: u64 = 60;

/// What a password check through the admin flow led to: a session (no challenge), or the
/// TOTP challenge's session.
enum AdminSignIn {
    Tokens(AuthenticationResultType),
    Totp { username: String, session: String },
}

/// A Cognito user pool and its app clients.
#[derive(Clone)]
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    /// Issues the tokens users hold.
    app: AppClient,
    /// Issues tokens that never leave this adapter, for the MFA calls that only an access token
    /// with Cognito's user-facing scope may make (`AssociateSoftwareToken`,
    /// `VerifySoftwareToken`), and for turning MFA off. Without one (a pool set up by hand,
    /// without the trigger), the app client serves.
    enrolment: AppClient,
    /// The pool runs the pre-token trigger: an app-client token that still has the scope means
    /// the trigger is gone, and it is refused rather than handed out.
    requires_trigger: bool,
    keys: TokenKeys,
}

/// Where a user pool's tokens come from and the keys they are signed with. Needs no Cognito
/// client: a function that only verifies tokens builds this and not the SDK.
#[derive(Clone)]
pub struct TokenKeys {
    issuer: TokenIssuer,
    jwks_url: String,
    http: reqwest::Client,
}

impl TokenKeys {
    /// `endpoint` overrides `https://cognito-idp.<region>.amazonaws.com` (an emulator); the issuer
    /// stays the AWS one, as Cognito and emulators both sign with it.
    pub fn new(region: &str, user_pool_id: &str, client_id: &str, endpoint: Option<&str>) -> Self {
        let aws = format!("https://cognito-idp.{region}.amazonaws.com");
        let base = endpoint.unwrap_or(&aws).trim_end_matches('/');
        Self {
            issuer: TokenIssuer {
                issuer: format!("{aws}/{user_pool_id}"),
                client_id: client_id.to_owned(),
            },
            jwks_url: format!("{base}/{user_pool_id}/.well-known/jwks.json"),
            http: reqwest::Client::new(),
        }
    }

    pub fn issuer(&self) -> TokenIssuer {
        self.issuer.clone()
    }

    /// The pool's published signing keys.
    pub async fn jwks(&self) -> Result<JwkSet, IdentityError> {
        let response = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| IdentityError::Unavailable(format!("JWKS: {e}")))?;
        if !response.status().is_success() {
            return Err(IdentityError::Unavailable(format!(
                "JWKS: {} from {}",
                response.status(),
                self.jwks_url
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdentityError::Unavailable(format!("JWKS: {e}")))
    }
}

fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .expect("name is set")
}

/// An error Cognito answered that this adapter does not expect: "unavailable", with its context.
pub(crate) fn unavailable<E: ProvideErrorMetadata>(error: E) -> IdentityError {
    IdentityError::Unavailable(format!(
        "{}: {}",
        error.code().unwrap_or("unknown"),
        error.message().unwrap_or("no message")
    ))
}

/// A refusal of a call made with a username the caller handed back (packed in a refresh token or
/// an MFA session, and editable): a secret hash Cognito did not verify then most likely comes from
/// a changed username, so it is the caller's `forged` error, logged as a warning. A wrong secret
/// in the environment still shows as an outage at every sign-in, which uses the same hash.
fn refusal_of_handed_back<E: ProvideErrorMetadata>(
    error: E,
    forged: IdentityError,
    by_code: impl FnOnce(&str) -> Option<IdentityError>,
) -> IdentityError {
    if secret_refused(&error) {
        tracing::warn!("Cognito did not verify the secret hash of a handed-back username");
        return forged;
    }
    refusal(error, by_code)
}

/// A refusal of a call that names an app client: `by_code` names what the error code means for
/// the caller; a secret hash Cognito did not verify (the platform's configuration, not the
/// caller's answer) and any other code are "unavailable".
fn refusal<E: ProvideErrorMetadata>(
    error: E,
    by_code: impl FnOnce(&str) -> Option<IdentityError>,
) -> IdentityError {
    if secret_refused(&error) {
        tracing::error!(
            message = error.message().unwrap_or_default(),
            "Cognito did not verify the app client's secret hash: check the client secret in the environment"
        );
        return unavailable(error);
    }
    match error.code().and_then(by_code) {
        Some(meaning) => meaning,
        None => unavailable(error),
    }
}

impl CognitoIdentity {
    /// `endpoint` overrides `https://cognito-idp.<region>.amazonaws.com` (an emulator); the issuer
    /// stays the AWS one, as Cognito and emulators both sign with it.
    pub fn new(
        client: Client,
        region: &str,
        user_pool_id: impl Into<String>,
        app: AppClient,
        enrolment: Option<AppClient>,
        endpoint: Option<&str>,
    ) -> Self {
        let user_pool_id = user_pool_id.into();
        Self {
            keys: TokenKeys::new(region, &user_pool_id, &app.id, endpoint),
            client,
            enrolment: enrolment.unwrap_or_else(|| app.clone()),
            app,
            requires_trigger: false,
            user_pool_id,
        }
    }

    /// The pool runs template.yaml's pre-token trigger: refuse (and log) any app-client token
    /// that still carries Cognito's user-facing scope.
    pub fn requiring_trigger(mut self, required: bool) -> Self {
        self.requires_trigger = required;
        self
    }

    /// The session handed to the user for an app-client sign-in or refresh: its refresh token
    /// packed with the user's pool username (see [`clients::pack`]), or the one the user holds.
    fn tokens(
        &self,
        result: Option<&AuthenticationResultType>,
        held_refresh: Option<&str>,
    ) -> Result<TokenSet, IdentityError> {
        let result = result.ok_or_else(|| {
            IdentityError::Unavailable(
                "Cognito answered with a challenge this flow does not handle".into(),
            )
        })?;
        let access_token = result
            .access_token()
            .ok_or_else(|| IdentityError::Unavailable("no access token".into()))?;
        self.check_scope(access_token)?;
        let refresh_token = match (result.refresh_token(), held_refresh) {
            (Some(fresh), _) => pack(&username_claim(access_token)?, fresh),
            (None, Some(held)) => held.to_owned(),
            (None, None) => return Err(IdentityError::Unavailable("no refresh token".into())),
        };
        Ok(TokenSet {
            access_token: access_token.to_owned(),
            refresh_token,
            expires_in: result.expires_in().max(0) as u64,
        })
    }

    /// Refuses an app-client access token that can call Cognito's user-facing API, when the pool
    /// is meant to run the trigger that removes that scope.
    fn check_scope(&self, access_token: &str) -> Result<(), IdentityError> {
        let scoped = unverified_claim(access_token, "scope")
            .is_some_and(|scope| scope.split(' ').any(|s| s == pre_token::USER_ADMIN_SCOPE));
        if self.requires_trigger && scoped {
            tracing::error!(
                "Cognito issued an access token with aws.cognito.signin.user.admin: the pool's \
                 pre-token trigger is not running (LambdaConfig or the Essentials plan lost?)"
            );
            return Err(IdentityError::Unavailable(
                "the user pool's pre-token trigger is not running".into(),
            ));
        }
        Ok(())
    }

    /// The pool's record of a user, by id (the sub). Federated users (`Google_...`,
    /// `LinkedIn_...`) are not named by their sub, so they are found by it.
    async fn pool_user(&self, user_id: &str) -> Result<AdminGetUserOutput, IdentityError> {
        let result = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output),
            Err(e) if e.code() == Some("UserNotFoundException") => {
                let listed = self
                    .client
                    .list_users()
                    .user_pool_id(&self.user_pool_id)
                    .filter(format!("sub = \"{}\"", user_id.replace('"', "")))
                    .limit(1)
                    .send()
                    .await
                    .map_err(unavailable)?;
                match listed.users().first().and_then(|u| u.username()) {
                    Some(username) if username != user_id => {
                        Box::pin(self.pool_user(username)).await
                    }
                    _ => Err(IdentityError::NoSuchUser),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The pool's username of a user: what admin calls name them by. Not the email: a federated
    /// user may share theirs with a native account, which the email would name instead.
    async fn username_of(&self, user_id: &str) -> Result<String, IdentityError> {
        Ok(self.pool_user(user_id).await?.username().to_owned())
    }

    async fn groups_of(&self, username: &str) -> Result<Vec<String>, IdentityError> {
        let listed = self
            .client
            .admin_list_groups_for_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
            .map_err(unavailable)?;
        let mut groups: Vec<String> = listed
            .groups()
            .iter()
            .filter_map(|g| g.group_name().map(str::to_owned))
            .collect();
        groups.sort();
        Ok(groups)
    }

    /// Checks a password through the admin flow (`ADMIN_USER_PASSWORD_AUTH`) of `app`: a
    /// session, or the TOTP challenge's session. Neither client allows a user-side password
    /// flow, so nobody can sign in against Cognito directly and skip the platform's lockout;
    /// this call needs the function's role instead. `username` is the email a user signs in
    /// with, or the pool username.
    async fn admin_sign_in(
        &self,
        app: &AppClient,
        username: &str,
        password: &str,
    ) -> Result<AdminSignIn, IdentityError> {
        let started = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .set_auth_parameters(Some(
                app.parameters(username, &[("USERNAME", username), ("PASSWORD", password)]),
            ))
            .send()
            .await
            .map_err(|e| {
                refusal(e, |code| match code {
                    // An empty or malformed password is as wrong as any other.
                    "NotAuthorizedException"
                    | "UserNotFoundException"
                    | "PasswordResetRequiredException"
                    | "InvalidParameterException" => Some(IdentityError::BadCredentials),
                    "UserNotConfirmedException" => Some(IdentityError::NotConfirmed),
                    _ => None,
                })
            })?;
        if started.challenge_name() != Some(&ChallengeNameType::SoftwareTokenMfa) {
            return started
                .authentication_result()
                .cloned()
                .map(AdminSignIn::Tokens)
                .ok_or_else(|| {
                    IdentityError::Unavailable(
                        "Cognito answered with a challenge this flow does not handle".into(),
                    )
                });
        }
        match started.session() {
            // The answer names the user by the username the challenge gives (the pool's own, not
            // the email alias), which is what the answer's `SECRET_HASH` is computed over.
            Some(session) if !session.is_empty() => Ok(AdminSignIn::Totp {
                username: started
                    .challenge_parameters()
                    .and_then(|p| p.get("USER_ID_FOR_SRP"))
                    .cloned()
                    .unwrap_or_else(|| username.to_owned()),
                session: session.to_owned(),
            }),
            _ => Err(IdentityError::Unavailable(
                "Cognito asked for a TOTP code without a session".into(),
            )),
        }
    }

    /// Answers a TOTP challenge (`AdminRespondToAuthChallenge`). A wrong code is
    /// [`IdentityError::BadCode`]; a session Cognito no longer knows is
    /// [`IdentityError::BadMfaSession`].
    async fn admin_answer_totp(
        &self,
        app: &AppClient,
        username: &str,
        session: &str,
        code: &str,
    ) -> Result<AuthenticationResultType, IdentityError> {
        let answered = self
            .client
            .admin_respond_to_auth_challenge()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.id)
            .challenge_name(ChallengeNameType::SoftwareTokenMfa)
            .session(session)
            .set_challenge_responses(Some(app.parameters(
                username,
                &[
                    ("USERNAME", username),
                    ("SOFTWARE_TOKEN_MFA_CODE", code.trim()),
                ],
            )))
            .send()
            .await
            .map_err(|e| {
                // The username comes from the session the caller sent back; the sign-in that
                // made the session used the same client secret.
                refusal_of_handed_back(e, IdentityError::BadMfaSession, |code| match code {
                    "CodeMismatchException" => Some(IdentityError::BadCode),
                    "NotAuthorizedException"
                    | "ResourceNotFoundException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException" => Some(IdentityError::BadMfaSession),
                    _ => None,
                })
            })?;
        answered.authentication_result().cloned().ok_or_else(|| {
            IdentityError::Unavailable("Cognito answered the code with another challenge".into())
        })
    }

    /// Signs in through the enrolment client with the password the caller gave (that sign-in
    /// is the password check): an access token that may make Cognito's MFA setup calls, used
    /// for one call and never handed out. Its refresh token is revoked at once.
    async fn enrolment_token(
        &self,
        username: &str,
        password: &str,
    ) -> Result<String, IdentityError> {
        match self
            .admin_sign_in(&self.enrolment, username, password)
            .await?
        {
            AdminSignIn::Tokens(result) => {
                self.revoke(&self.enrolment, &result).await;
                result
                    .access_token()
                    .map(str::to_owned)
                    .ok_or_else(|| IdentityError::Unavailable("no access token".into()))
            }
            // The service sets up TOTP only where the pool says MFA is off.
            AdminSignIn::Totp { .. } => Err(IdentityError::Unavailable(
                "Cognito asked for a TOTP code while setting up TOTP: MFA is already on".into(),
            )),
        }
    }

    /// Revokes the refresh token of a sign-in whose tokens the adapter used itself. Best effort:
    /// if it fails, the token lives out its hour inside nothing the platform keeps (moto has no
    /// `RevokeToken`).
    async fn revoke(&self, app: &AppClient, result: &AuthenticationResultType) {
        let Some(refresh) = result.refresh_token() else {
            return;
        };
        let revoked = self
            .client
            .revoke_token()
            .token(refresh)
            .client_id(&app.id)
            .set_client_secret(app.secret().map(str::to_owned))
            .send()
            .await;
        if let Err(e) = revoked {
            tracing::debug!(error = %unavailable(e), "could not revoke the enrolment client's refresh token");
        }
    }

    /// Turns the user's TOTP on or off at the pool (an admin call: no user token can).
    async fn set_totp(&self, username: &str, enabled: bool) -> Result<(), IdentityError> {
        self.client
            .admin_set_user_mfa_preference()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .software_token_mfa_settings(
                SoftwareTokenMfaSettingsType::builder()
                    .enabled(enabled)
                    .preferred_mfa(enabled)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn global_sign_out(&self, username: &str) -> Result<(), IdentityError> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

/// The pool username an access token Cognito just issued names (the sub, for a native user of
/// this pool; `Google_...` for a federated one).
fn username_claim(access_token: &str) -> Result<String, IdentityError> {
    unverified_claim(access_token, "username")
        .ok_or_else(|| IdentityError::Unavailable("an access token without a username".into()))
}

#[async_trait]
impl IdentityProvider for CognitoIdentity {
    async fn sign_up(&self, new: &NewIdentity) -> Result<String, IdentityError> {
        self.client
            .sign_up()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(&new.email))
            .username(&new.email)
            .password(&new.password)
            .user_attributes(attribute("email", &new.email))
            .user_attributes(attribute("name", &new.name))
            .user_attributes(attribute(ACCOUNT_TYPE, &new.account_type))
            .send()
            .await
            .map(|output| output.user_sub().to_owned())
            .map_err(|e| {
                let message = e.message().unwrap_or_default().to_owned();
                refusal(e, |code| match code {
                    "UsernameExistsException" | "AliasExistsException" => {
                        Some(IdentityError::EmailTaken)
                    }
                    "InvalidPasswordException" => Some(IdentityError::WeakPassword(message)),
                    _ => None,
                })
            })
    }

    async fn confirm_sign_up(&self, email: &str, code: &str) -> Result<(), IdentityError> {
        self.client
            .confirm_sign_up()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .confirmation_code(code.trim())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                refusal(e, |code| match code {
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "TooManyFailedAttemptsException"
                    // Already confirmed: the same answer as a wrong code.
                    | "NotAuthorizedException" => Some(IdentityError::BadCode),
                    _ => None,
                })
            })
    }

    async fn resend_code(&self, email: &str) -> Result<(), IdentityError> {
        let result = self
            .client
            .resend_confirmation_code()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Unknown or already confirmed: nothing to send, and nothing to tell.
            Err(e)
                if !secret_refused(&e)
                    && matches!(
                        e.code(),
                        Some("UserNotFoundException" | "InvalidParameterException")
                    ) =>
            {
                Ok(())
            }
            Err(e) => Err(refusal(e, |code| match code {
                "LimitExceededException" | "TooManyRequestsException" => {
                    Some(IdentityError::Cooldown {
                        retry_after_secs: COOLDOWN_SECS,
                    })
                }
                _ => None,
            })),
        }
    }

    async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, IdentityError> {
        Ok(
            match self.admin_sign_in(&self.app, email, password).await? {
                AdminSignIn::Tokens(result) => SignIn::Tokens(self.tokens(Some(&result), None)?),
                // The challenge answer must name the user: the opaque session carries the username.
                AdminSignIn::Totp { username, session } => SignIn::Totp {
                    session: pack(&username, &session),
                },
            },
        )
    }

    async fn respond_totp(&self, session: &str, code: &str) -> Result<TokenSet, IdentityError> {
        let (username, cognito_session) = unpack(session).ok_or(IdentityError::BadMfaSession)?;
        let result = self
            .admin_answer_totp(&self.app, &username, &cognito_session, code)
            .await?;
        self.tokens(Some(&result), None)
    }

    async fn totp_enrol(&self, user_id: &str, password: &str) -> Result<String, IdentityError> {
        let username = self.username_of(user_id).await?;
        let token = self.enrolment_token(&username, password).await?;
        let output = self
            .client
            .associate_software_token()
            .access_token(token)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .secret_code()
            .map(str::to_owned)
            .ok_or_else(|| IdentityError::Unavailable("no TOTP secret".into()))
    }

    async fn totp_confirm(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let username = self.username_of(user_id).await?;
        let token = self.enrolment_token(&username, password).await?;
        self.client
            .verify_software_token()
            .access_token(token)
            .user_code(code.trim())
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("CodeMismatchException" | "EnableSoftwareTokenMFAException") => {
                    IdentityError::BadCode
                }
                Some("InvalidParameterException") => IdentityError::NoTotpEnrolment,
                _ => unavailable(e),
            })?;
        self.set_totp(&username, true).await
    }

    async fn totp_disable(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        // Cognito checks a TOTP code only inside a sign-in, so the proof is one: the password
        // through an admin sign-in of the enrolment client, then the code through its challenge
        // (which real Cognito also refuses to accept twice). The tokens it yields are not used,
        // and their refresh token is revoked.
        let username = self.username_of(user_id).await?;
        match self
            .admin_sign_in(&self.enrolment, &username, password)
            .await?
        {
            AdminSignIn::Tokens(result) => {
                self.revoke(&self.enrolment, &result).await;
                // The service turns MFA off only where the pool says it is on, so a sign-in
                // without the TOTP challenge is not proof of anything: refuse, change nothing.
                return Err(IdentityError::Unavailable(
                    "Cognito signed in without the TOTP challenge the user's MFA should ask for"
                        .into(),
                ));
            }
            AdminSignIn::Totp {
                username: challenged,
                session,
            } => {
                match self
                    .admin_answer_totp(&self.enrolment, &challenged, &session, code)
                    .await
                {
                    Ok(result) => self.revoke(&self.enrolment, &result).await,
                    // The session was made a moment ago: a refusal here is about the code.
                    Err(IdentityError::BadMfaSession) => return Err(IdentityError::BadCode),
                    Err(e) => return Err(e),
                }
            }
        }
        self.set_totp(&username, false).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError> {
        let (username, cognito_refresh) =
            unpack(refresh_token).ok_or(IdentityError::BadRefreshToken)?;
        let refreshed = self
            .client
            .initiate_auth()
            .client_id(&self.app.id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .set_auth_parameters(Some(
                self.app
                    .parameters(&username, &[("REFRESH_TOKEN", &cognito_refresh)]),
            ))
            .send()
            .await
            .map_err(|e| {
                refusal_of_handed_back(e, IdentityError::BadRefreshToken, |code| match code {
                    "NotAuthorizedException" | "UserNotFoundException" => {
                        Some(IdentityError::BadRefreshToken)
                    }
                    _ => None,
                })
            })?;
        // Cognito answers a refresh without a new refresh token: the one held stays.
        self.tokens(
            refreshed.authentication_result(),
            Some(refresh_token.trim()),
        )
    }

    async fn sign_out(&self, user_id: &str) -> Result<(), IdentityError> {
        let username = self.username_of(user_id).await?;
        self.global_sign_out(&username).await
    }

    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError> {
        let result = self
            .client
            .forgot_password()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Nothing to send, and nothing to tell.
            Err(e)
                if !secret_refused(&e)
                    && matches!(
                        e.code(),
                        Some(
                            "UserNotFoundException"
                                | "InvalidParameterException"
                                | "NotAuthorizedException"
                        )
                    ) =>
            {
                Ok(())
            }
            Err(e) => Err(refusal(e, |code| match code {
                "LimitExceededException" | "TooManyRequestsException" => {
                    Some(IdentityError::Cooldown {
                        retry_after_secs: COOLDOWN_SECS,
                    })
                }
                _ => None,
            })),
        }
    }

    async fn confirm_forgot_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), IdentityError> {
        self.client
            .confirm_forgot_password()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .confirmation_code(code.trim())
            .password(new_password)
            .send()
            .await
            .map_err(|e| {
                let message = e.message().unwrap_or_default().to_owned();
                refusal(e, |code| match code {
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "ResourceNotFoundException"
                    | "TooManyFailedAttemptsException" => Some(IdentityError::BadCode),
                    "InvalidPasswordException" => Some(IdentityError::WeakPassword(message)),
                    _ => None,
                })
            })?;
        // Cognito keeps existing sessions across a reset; the platform ends them. The email
        // names the native account whose password was reset.
        self.global_sign_out(email).await
    }

    async fn user(&self, user_id: &str) -> Result<IdentityUser, IdentityError> {
        let output = self.pool_user(user_id).await?;
        let get = |name: &str| {
            output
                .user_attributes()
                .iter()
                .find(|a| a.name() == name)
                .and_then(|a| a.value())
                .unwrap_or_default()
                .to_owned()
        };
        let sub = get("sub");
        let mfa_enabled = output
            .user_mfa_setting_list()
            .iter()
            .any(|m| m == "SOFTWARE_TOKEN_MFA")
            || output.preferred_mfa_setting() == Some("SOFTWARE_TOKEN_MFA");
        Ok(IdentityUser {
            mfa_enabled,
            user_id: if sub.is_empty() {
                user_id.to_owned()
            } else {
                sub
            },
            groups: self.groups_of(output.username()).await?,
            name: get("name"),
            account_type: get(ACCOUNT_TYPE),
            confirmed: output
                .user_status()
                .is_some_and(|s| s.as_str() == "CONFIRMED"),
            email: get("email"),
        })
    }

    async fn user_by_email(&self, email: &str) -> Result<IdentityUser, IdentityError> {
        // The email is the pool's username attribute, so admin calls accept it as the username.
        self.user(email).await
    }

    async fn create_confirmed(&self, new: &NewIdentity) -> Result<String, IdentityError> {
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.user_pool_id)
            .username(&new.email)
            .message_action(MessageActionType::Suppress)
            .user_attributes(attribute("email", &new.email))
            .user_attributes(attribute("email_verified", "true"))
            .user_attributes(attribute("name", &new.name))
            .user_attributes(attribute(ACCOUNT_TYPE, &new.account_type))
            .send()
            .await;
        let user = match created {
            Ok(output) => output.user().cloned(),
            Err(e) => {
                return Err(match e.code() {
                    Some("UsernameExistsException" | "AliasExistsException") => {
                        IdentityError::EmailTaken
                    }
                    _ => unavailable(e),
                });
            }
        };
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.user_pool_id)
            .username(&new.email)
            .password(&new.password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("InvalidPasswordException") => {
                    IdentityError::WeakPassword(e.message().unwrap_or_default().to_owned())
                }
                _ => unavailable(e),
            })?;
        let sub = user
            .as_ref()
            .and_then(|u| u.attributes().iter().find(|a| a.name() == "sub"))
            .and_then(|a| a.value())
            .map(str::to_owned);
        match sub {
            Some(sub) => Ok(sub),
            None => Ok(self.user(&new.email).await?.user_id),
        }
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<(), IdentityError> {
        let username = self.username_of(user_id).await?;
        let current = self.groups_of(&username).await?;
        for group in groups.iter().filter(|g| !current.contains(g)) {
            self.client
                .admin_add_user_to_group()
                .user_pool_id(&self.user_pool_id)
                .username(&username)
                .group_name(group)
                .send()
                .await
                .map_err(unavailable)?;
        }
        for group in current.iter().filter(|g| !groups.contains(g)) {
            self.client
                .admin_remove_user_from_group()
                .user_pool_id(&self.user_pool_id)
                .username(&username)
                .group_name(group)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn federated_session(
        &self,
        _provider: &str,
        _subject: &str,
        _email: &str,
        _name: &str,
    ) -> Result<(String, SignIn, bool), IdentityError> {
        Err(IdentityError::Unavailable(
            "Cognito federates social logins through its hosted UI".into(),
        ))
    }

    fn adopt_tokens(&self, tokens: TokenSet) -> Result<TokenSet, IdentityError> {
        self.check_scope(&tokens.access_token)?;
        Ok(TokenSet {
            refresh_token: pack(
                &username_claim(&tokens.access_token)?,
                &tokens.refresh_token,
            ),
            ..tokens
        })
    }

    fn issuer(&self) -> TokenIssuer {
        self.keys.issuer()
    }

    async fn jwks(&self) -> Result<JwkSet, IdentityError> {
        self.keys.jwks().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(claims: &str) -> String {
        format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn a_refused_hash_over_a_handed_back_username_is_the_callers_not_an_outage() {
        use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
        let refused = || {
            ErrorMetadata::builder()
                .code("NotAuthorizedException")
                .message("Unable to verify secret hash for client 1abc")
                .build()
        };
        let no_meaning = |_: &str| None;
        // A refresh token or MFA session edited to name someone else: the caller's error.
        assert_eq!(
            refusal_of_handed_back(refused(), IdentityError::BadRefreshToken, no_meaning),
            IdentityError::BadRefreshToken
        );
        // Where the platform chose the username, the same refusal is its configuration.
        assert!(matches!(
            refusal(refused(), no_meaning),
            IdentityError::Unavailable(_)
        ));
    }

    async fn identity(requires_trigger: bool) -> CognitoIdentity {
        let sdk = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(aws_sdk_cognitoidentityprovider::config::BehaviorVersion::latest())
            .region(aws_sdk_cognitoidentityprovider::config::Region::new(
                "eu-west-1",
            ))
            .build();
        CognitoIdentity::new(
            Client::from_conf(sdk),
            "eu-west-1",
            "eu-west-1_x",
            AppClient::new("app", Some("secret".into())),
            None,
            None,
        )
        .requiring_trigger(requires_trigger)
    }

    #[tokio::test]
    async fn a_token_with_the_user_admin_scope_is_refused_where_the_trigger_should_have_run() {
        let scoped = TokenSet {
            access_token: token(r#"{"username":"u-1","scope":"aws.cognito.signin.user.admin"}"#),
            refresh_token: "cognito-refresh".into(),
            expires_in: 900,
        };
        assert!(matches!(
            identity(true).await.adopt_tokens(scoped.clone()),
            Err(IdentityError::Unavailable(_))
        ));
        // Without the trigger (a pool made by hand, moto), the same token passes, packed.
        let adopted = identity(false).await.adopt_tokens(scoped).unwrap();
        assert_eq!(
            unpack(&adopted.refresh_token),
            Some(("u-1".to_owned(), "cognito-refresh".to_owned()))
        );
        // The hosted UI's tokens carry OAuth scopes only: they pass either way.
        let hosted = TokenSet {
            access_token: token(r#"{"username":"Google_1","scope":"openid email profile"}"#),
            refresh_token: "r".into(),
            expires_in: 900,
        };
        assert!(identity(true).await.adopt_tokens(hosted).is_ok());
    }
}

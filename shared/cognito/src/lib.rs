//! The identity-provider port on a Cognito user pool. Users sign in with their email (the pool's
//! username attribute); the account type is the custom attribute `account_type`; platform roles
//! are groups. Public calls (sign-up, sign-in, codes) need no IAM; admin calls (look-ups, global
//! sign-out, groups, the first admin) need the function's role to allow them on the pool.
//!
//! Cognito sends its own mail, and its refresh tokens do not rotate through `InitiateAuth`: a
//! refresh returns the same refresh token, which stays valid until it expires or the user signs out.

use amanar_accounts::identity::{
    IdentityError, IdentityProvider, IdentityUser, NewIdentity, SignIn, TokenIssuer, TokenSet,
};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ChallengeNameType, MessageActionType,
    SoftwareTokenMfaSettingsType,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;

pub mod pre_token;

const ACCOUNT_TYPE: &str = "custom:account_type";
/// How long to wait before asking Cognito for another code after it refused for rate.
const COOLDOWN_SECS: u64 = 60;

/// What a password check through the admin flow led to: a session (no challenge), or the
/// TOTP challenge's session.
enum AdminSignIn {
    Tokens(TokenSet),
    Totp { username: String, session: String },
}

/// A Cognito user pool and its app clients.
#[derive(Clone)]
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    /// Issues the tokens users hold. Its tokens lose Cognito's user-facing scope in the
    /// pre-token trigger ([`pre_token`]), so they cannot call Cognito's own MFA or attribute API.
    app: AppClient,
    /// Issues tokens that never leave this adapter, for the MFA calls that only an access token
    /// with that scope may make (`AssociateSoftwareToken`, `VerifySoftwareToken`). Without one
    /// (a pool set up by hand without the trigger), the app client serves.
    enrolment: AppClient,
    keys: TokenKeys,
}

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
    pub fn new(id: impl Into<String>, secret: Option<String>) -> Self {
        // An empty secret is none (template.yaml always sets one; a hand-made pool may not).
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

/// The refresh token users hold: the user's pool username and Cognito's refresh token, so a
/// refresh can carry the `SECRET_HASH` that a client with a secret needs (computed over the
/// username, which Cognito's opaque refresh token does not reveal). The username comes from the
/// access token Cognito issued beside it.
fn wrap_refresh(access_token: &str, refresh_token: &str) -> Result<String, IdentityError> {
    let username = access_token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|claims| serde_json::from_slice::<serde_json::Value>(&claims).ok())
        .and_then(|claims| claims["username"].as_str().map(str::to_owned))
        .ok_or_else(|| IdentityError::Unavailable("an access token without a username".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(format!("{username}\n{refresh_token}")))
}

/// The username and Cognito's refresh token of a wrapped refresh token.
fn unwrap_refresh(token: &str) -> Result<(String, String), IdentityError> {
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once('\n')
                .map(|(username, refresh)| (username.to_owned(), refresh.to_owned()))
        })
        .filter(|(username, refresh)| !username.is_empty() && !refresh.is_empty())
        .ok_or(IdentityError::BadRefreshToken)
}

/// Maps the error codes Cognito answers with; anything else is "unavailable" with its context.
fn unavailable<E: ProvideErrorMetadata + std::fmt::Debug>(error: E) -> IdentityError {
    IdentityError::Unavailable(format!(
        "{}: {}",
        error.code().unwrap_or("unknown"),
        error.message().unwrap_or("no message")
    ))
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
            user_pool_id,
        }
    }

    fn tokens(
        result: Option<&AuthenticationResultType>,
        previous_refresh: Option<&str>,
    ) -> Result<TokenSet, IdentityError> {
        let result = result.ok_or_else(|| {
            IdentityError::Unavailable(
                "Cognito answered with a challenge this flow does not handle".into(),
            )
        })?;
        let access_token = result
            .access_token()
            .ok_or_else(|| IdentityError::Unavailable("no access token".into()))?;
        let refresh_token = match (result.refresh_token(), previous_refresh) {
            (Some(fresh), _) => wrap_refresh(access_token, fresh)?,
            (None, Some(previous)) => previous.to_owned(),
            (None, None) => return Err(IdentityError::Unavailable("no refresh token".into())),
        };
        Ok(TokenSet {
            access_token: access_token.to_owned(),
            refresh_token,
            expires_in: result.expires_in().max(0) as u64,
        })
    }

    /// The email a user signs in with (admin calls and global sign-out take it as the username).
    async fn email_of(&self, user_id: &str) -> Result<String, IdentityError> {
        Ok(self.user(user_id).await?.email)
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

    /// Checks a password through the admin flow (`ADMIN_USER_PASSWORD_AUTH`): a session, or the
    /// TOTP challenge's session. The app client allows no user-side password flow, so nobody can
    /// sign in against Cognito directly and skip the platform's lockout; this call needs the
    /// function's role instead.
    async fn admin_sign_in(
        &self,
        app: &AppClient,
        email: &str,
        password: &str,
    ) -> Result<AdminSignIn, IdentityError> {
        let mut started = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password);
        if let Some(hash) = app.secret_hash(email) {
            started = started.auth_parameters("SECRET_HASH", hash);
        }
        let started = started.send().await.map_err(|e| match e.code() {
            Some(
                "NotAuthorizedException"
                | "UserNotFoundException"
                | "PasswordResetRequiredException",
            ) => IdentityError::BadCredentials,
            Some("UserNotConfirmedException") => IdentityError::NotConfirmed,
            _ => unavailable(e),
        })?;
        if started.challenge_name() != Some(&ChallengeNameType::SoftwareTokenMfa) {
            return Ok(AdminSignIn::Tokens(Self::tokens(
                started.authentication_result(),
                None,
            )?));
        }
        match started.session() {
            // The answer names the user by the username the challenge gives (the pool's own, not
            // the email alias), which is what the answer's `SECRET_HASH` is computed over.
            Some(session) if !session.is_empty() => Ok(AdminSignIn::Totp {
                username: started
                    .challenge_parameters()
                    .and_then(|p| p.get("USER_ID_FOR_SRP"))
                    .cloned()
                    .unwrap_or_else(|| email.to_owned()),
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
    ) -> Result<TokenSet, IdentityError> {
        let mut answer = self
            .client
            .admin_respond_to_auth_challenge()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.id)
            .challenge_name(ChallengeNameType::SoftwareTokenMfa)
            .session(session)
            .challenge_responses("USERNAME", username)
            .challenge_responses("SOFTWARE_TOKEN_MFA_CODE", code.trim());
        if let Some(hash) = app.secret_hash(username) {
            answer = answer.challenge_responses("SECRET_HASH", hash);
        }
        let answered = answer.send().await;
        match answered {
            Ok(output) => Self::tokens(output.authentication_result(), None),
            Err(e) => Err(match e.code() {
                Some("CodeMismatchException") => IdentityError::BadCode,
                Some(
                    "NotAuthorizedException"
                    | "ResourceNotFoundException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException",
                ) => IdentityError::BadMfaSession,
                _ => unavailable(e),
            }),
        }
    }

    /// An access token of the enrolment client for the user, after checking the password: the
    /// only kind of token that may call Cognito's MFA setup. It is used for one call and dropped,
    /// never handed out.
    async fn enrolment_token(
        &self,
        user_id: &str,
        password: &str,
    ) -> Result<String, IdentityError> {
        let email = self.email_of(user_id).await?;
        match self
            .admin_sign_in(&self.enrolment, &email, password)
            .await?
        {
            AdminSignIn::Tokens(tokens) => Ok(tokens.access_token),
            // The service enrols only where the pool says MFA is off.
            AdminSignIn::Totp { .. } => Err(IdentityError::Unavailable(
                "Cognito asked for a TOTP code while setting up TOTP: MFA is already on".into(),
            )),
        }
    }

    /// Turns the user's TOTP on or off at the pool (an admin call: no user token can).
    async fn set_totp(&self, email: &str, enabled: bool) -> Result<(), IdentityError> {
        self.client
            .admin_set_user_mfa_preference()
            .user_pool_id(&self.user_pool_id)
            .username(email)
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

    async fn global_sign_out(&self, email: &str) -> Result<(), IdentityError> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(email)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[async_trait]
impl IdentityProvider for CognitoIdentity {
    async fn sign_up(&self, new: &NewIdentity) -> Result<String, IdentityError> {
        let result = self
            .client
            .sign_up()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(&new.email))
            .username(&new.email)
            .password(&new.password)
            .user_attributes(attribute("email", &new.email))
            .user_attributes(attribute("name", &new.name))
            .user_attributes(attribute(ACCOUNT_TYPE, &new.account_type))
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.user_sub().to_owned()),
            Err(e) => Err(match e.code() {
                Some("UsernameExistsException" | "AliasExistsException") => {
                    IdentityError::EmailTaken
                }
                Some("InvalidPasswordException") => {
                    IdentityError::WeakPassword(e.message().unwrap_or_default().to_owned())
                }
                _ => unavailable(e),
            }),
        }
    }

    async fn confirm_sign_up(&self, email: &str, code: &str) -> Result<(), IdentityError> {
        let result = self
            .client
            .confirm_sign_up()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .confirmation_code(code.trim())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.code() {
                Some(
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "TooManyFailedAttemptsException",
                ) => IdentityError::BadCode,
                // Already confirmed: the same answer as a wrong code.
                Some("NotAuthorizedException") => IdentityError::BadCode,
                _ => unavailable(e),
            }),
        }
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
            Err(e) => match e.code() {
                // Unknown or already confirmed: nothing to send, and nothing to tell.
                Some("UserNotFoundException" | "InvalidParameterException") => Ok(()),
                Some("LimitExceededException" | "TooManyRequestsException") => {
                    Err(IdentityError::Cooldown {
                        retry_after_secs: COOLDOWN_SECS,
                    })
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, IdentityError> {
        Ok(
            match self.admin_sign_in(&self.app, email, password).await? {
                AdminSignIn::Tokens(tokens) => SignIn::Tokens(tokens),
                // The challenge answer must name the user: the opaque session carries the username.
                AdminSignIn::Totp { username, session } => SignIn::Totp {
                    session: URL_SAFE_NO_PAD.encode(format!("{username}\n{session}")),
                },
            },
        )
    }

    async fn respond_totp(&self, session: &str, code: &str) -> Result<TokenSet, IdentityError> {
        let decoded = URL_SAFE_NO_PAD
            .decode(session.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(IdentityError::BadMfaSession)?;
        let (username, cognito_session) = decoded
            .split_once('\n')
            .ok_or(IdentityError::BadMfaSession)?;
        self.admin_answer_totp(&self.app, username, cognito_session, code)
            .await
    }

    async fn totp_enrol(&self, user_id: &str, password: &str) -> Result<String, IdentityError> {
        let token = self.enrolment_token(user_id, password).await?;
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
        let token = self.enrolment_token(user_id, password).await?;
        let verified = self
            .client
            .verify_software_token()
            .access_token(token)
            .user_code(code.trim())
            .send()
            .await;
        if let Err(e) = verified {
            return Err(match e.code() {
                Some("CodeMismatchException" | "EnableSoftwareTokenMFAException") => {
                    IdentityError::BadCode
                }
                Some("InvalidParameterException") => IdentityError::NoTotpEnrolment,
                _ => unavailable(e),
            });
        }
        self.set_totp(&self.email_of(user_id).await?, true).await
    }

    async fn totp_disable(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        // Cognito checks a TOTP code only inside a sign-in, so the proof is one: the password
        // through an admin sign-in, then the code through its challenge (which real Cognito also
        // refuses to accept twice). The session it would issue is dropped unused.
        let email = self.email_of(user_id).await?;
        match self
            .admin_sign_in(&self.enrolment, &email, password)
            .await?
        {
            AdminSignIn::Tokens(_) => {
                // The service turns MFA off only where the pool says it is on, so a sign-in
                // without the TOTP challenge is not proof of anything: refuse, change nothing.
                return Err(IdentityError::Unavailable(
                    "Cognito signed in without the TOTP challenge the user's MFA should ask for"
                        .into(),
                ));
            }
            AdminSignIn::Totp { username, session } => {
                match self
                    .admin_answer_totp(&self.enrolment, &username, &session, code)
                    .await
                {
                    Ok(_) => {}
                    // The session was made a moment ago: a refusal here is about the code.
                    Err(IdentityError::BadMfaSession) => return Err(IdentityError::BadCode),
                    Err(e) => return Err(e),
                }
            }
        }
        self.set_totp(&email, false).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError> {
        let (username, cognito_refresh) = unwrap_refresh(refresh_token)?;
        let mut refresh = self
            .client
            .initiate_auth()
            .client_id(&self.app.id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", &cognito_refresh);
        if let Some(hash) = self.app.secret_hash(&username) {
            refresh = refresh.auth_parameters("SECRET_HASH", hash);
        }
        match refresh.send().await {
            // Cognito answers a refresh without a new refresh token: the one held stays.
            Ok(output) => Self::tokens(output.authentication_result(), Some(refresh_token.trim())),
            Err(e) => Err(match e.code() {
                Some("NotAuthorizedException" | "UserNotFoundException") => {
                    IdentityError::BadRefreshToken
                }
                _ => unavailable(e),
            }),
        }
    }

    async fn sign_out(&self, user_id: &str) -> Result<(), IdentityError> {
        let email = self.email_of(user_id).await?;
        self.global_sign_out(&email).await
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
            Err(e) => match e.code() {
                Some(
                    "UserNotFoundException"
                    | "InvalidParameterException"
                    | "NotAuthorizedException",
                ) => Ok(()),
                Some("LimitExceededException" | "TooManyRequestsException") => {
                    Err(IdentityError::Cooldown {
                        retry_after_secs: COOLDOWN_SECS,
                    })
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn confirm_forgot_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), IdentityError> {
        let result = self
            .client
            .confirm_forgot_password()
            .client_id(&self.app.id)
            .set_secret_hash(self.app.secret_hash(email))
            .username(email)
            .confirmation_code(code.trim())
            .password(new_password)
            .send()
            .await;
        if let Err(e) = result {
            return Err(match e.code() {
                Some(
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "ResourceNotFoundException"
                    | "TooManyFailedAttemptsException",
                ) => IdentityError::BadCode,
                Some("InvalidPasswordException") => {
                    IdentityError::WeakPassword(e.message().unwrap_or_default().to_owned())
                }
                _ => unavailable(e),
            });
        }
        // Cognito keeps existing sessions across a reset; the platform ends them.
        self.global_sign_out(email).await
    }

    async fn user(&self, user_id: &str) -> Result<IdentityUser, IdentityError> {
        let result = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.code() == Some("UserNotFoundException") => {
                // Federated users (Google_..., LinkedIn_...) are not named by their sub.
                let listed = self
                    .client
                    .list_users()
                    .user_pool_id(&self.user_pool_id)
                    .filter(format!("sub = \"{}\"", user_id.replace('"', "")))
                    .limit(1)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let Some(username) = listed.users().first().and_then(|u| u.username()) else {
                    return Err(IdentityError::NoSuchUser);
                };
                if username == user_id {
                    return Err(IdentityError::NoSuchUser);
                }
                return Box::pin(self.user(username)).await;
            }
            Err(e) => return Err(unavailable(e)),
        };
        let get = |name: &str| {
            output
                .user_attributes()
                .iter()
                .find(|a| a.name() == name)
                .and_then(|a| a.value())
                .unwrap_or_default()
                .to_owned()
        };
        let email = get("email");
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
            groups: self.groups_of(&email).await?,
            name: get("name"),
            account_type: get(ACCOUNT_TYPE),
            confirmed: output
                .user_status()
                .is_some_and(|s| s.as_str() == "CONFIRMED"),
            email,
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
        let email = self.email_of(user_id).await?;
        let current = self.groups_of(&email).await?;
        for group in groups.iter().filter(|g| !current.contains(g)) {
            self.client
                .admin_add_user_to_group()
                .user_pool_id(&self.user_pool_id)
                .username(&email)
                .group_name(group)
                .send()
                .await
                .map_err(unavailable)?;
        }
        for group in current.iter().filter(|g| !groups.contains(g)) {
            self.client
                .admin_remove_user_from_group()
                .user_pool_id(&self.user_pool_id)
                .username(&email)
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
        Ok(TokenSet {
            refresh_token: wrap_refresh(&tokens.access_token, &tokens.refresh_token)?,
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

/// A user pool made by [`create_user_pool`].
#[derive(Debug, Clone)]
pub struct CreatedPool {
    pub pool_id: String,
    pub app: AppClient,
    pub enrolment: AppClient,
}

impl CreatedPool {
    /// The configuration a function reads for this pool (as template.yaml sets it).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AMANAR_USER_POOL_ID", self.pool_id.clone()),
            ("AMANAR_USER_POOL_CLIENT_ID", self.app.id.clone()),
            (
                "AMANAR_USER_POOL_CLIENT_SECRET",
                self.app.secret.clone().unwrap_or_default(),
            ),
            ("AMANAR_ENROLMENT_CLIENT_ID", self.enrolment.id.clone()),
            (
                "AMANAR_ENROLMENT_CLIENT_SECRET",
                self.enrolment.secret.clone().unwrap_or_default(),
            ),
        ]
    }
}

/// Creates a user pool and its app clients shaped like the ones in template.yaml (email
/// usernames, the same password policy, the `account_type` attribute, the platform-role groups;
/// an app client and an enrolment client, both with a secret, the admin password flow and
/// refresh only). For tests against an emulator, and the README's manual setup. The pre-token
/// trigger is template.yaml's.
pub async fn create_user_pool(client: &Client, name: &str) -> Result<CreatedPool, IdentityError> {
    use aws_sdk_cognitoidentityprovider::types::{
        AttributeDataType, ExplicitAuthFlowsType, PasswordPolicyType, SchemaAttributeType,
        UserPoolPolicyType, UsernameAttributeType,
    };
    let pool = client
        .create_user_pool()
        .pool_name(name)
        .username_attributes(UsernameAttributeType::Email)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(12)
                        .require_uppercase(true)
                        .require_lowercase(true)
                        .require_numbers(true)
                        .require_symbols(false)
                        .build(),
                )
                .build(),
        )
        .schema(
            SchemaAttributeType::builder()
                .name("account_type")
                .attribute_data_type(AttributeDataType::String)
                .mutable(true)
                .build(),
        )
        .send()
        .await
        .map_err(unavailable)?;
    let pool_id = pool
        .user_pool()
        .and_then(|p| p.id())
        .ok_or_else(|| IdentityError::Unavailable("no pool id".into()))?
        .to_owned();
    for group in ["admin", "verifier"] {
        client
            .create_group()
            .user_pool_id(&pool_id)
            .group_name(group)
            .send()
            .await
            .map_err(unavailable)?;
    }
    let mut clients = Vec::new();
    for suffix in ["-app", pre_token::ENROLMENT_CLIENT_SUFFIX] {
        let created = client
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name(format!("{name}{suffix}"))
            .generate_secret(true)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .map_err(unavailable)?;
        let made = created
            .user_pool_client()
            .ok_or_else(|| IdentityError::Unavailable("no app client".into()))?;
        clients.push(AppClient::new(
            made.client_id().unwrap_or_default(),
            made.client_secret().map(str::to_owned),
        ));
    }
    let enrolment = clients.pop().expect("two clients");
    let app = clients.pop().expect("two clients");
    Ok(CreatedPool {
        pool_id,
        app,
        enrolment,
    })
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
        assert_eq!(AppClient::new("public", None).secret_hash("u"), None);
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
    fn a_refresh_token_carries_the_username_of_its_access_token() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"username":"0f1e-uuid","sub":"0f1e-uuid"}"#);
        let access = format!("h.{claims}.s");
        let wrapped = wrap_refresh(&access, "cognito-refresh").unwrap();
        assert_eq!(
            unwrap_refresh(&wrapped).unwrap(),
            ("0f1e-uuid".to_owned(), "cognito-refresh".to_owned())
        );
        assert_eq!(
            unwrap_refresh("not base64 !"),
            Err(IdentityError::BadRefreshToken)
        );
        assert_eq!(
            unwrap_refresh(&URL_SAFE_NO_PAD.encode("no-newline")),
            Err(IdentityError::BadRefreshToken)
        );
    }
}

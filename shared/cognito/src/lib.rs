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

const ACCOUNT_TYPE: &str = "custom:account_type";
/// How long to wait before asking Cognito for another code after it refused for rate.
const COOLDOWN_SECS: u64 = 60;

/// What a password check through the admin flow led to: a session (no challenge), or the
/// TOTP challenge's session.
enum AdminSignIn {
    Tokens(TokenSet),
    Totp(String),
}

/// A Cognito user pool and its app client.
#[derive(Clone)]
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    client_id: String,
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
        client_id: impl Into<String>,
        endpoint: Option<&str>,
    ) -> Self {
        let user_pool_id = user_pool_id.into();
        let client_id = client_id.into();
        Self {
            keys: TokenKeys::new(region, &user_pool_id, &client_id, endpoint),
            client,
            client_id,
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
        let refresh_token = result
            .refresh_token()
            .or(previous_refresh)
            .ok_or_else(|| IdentityError::Unavailable("no refresh token".into()))?;
        Ok(TokenSet {
            access_token: access_token.to_owned(),
            refresh_token: refresh_token.to_owned(),
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
        email: &str,
        password: &str,
    ) -> Result<AdminSignIn, IdentityError> {
        let started = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.user_pool_id)
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| match e.code() {
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
            Some(session) if !session.is_empty() => Ok(AdminSignIn::Totp(session.to_owned())),
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
        email: &str,
        session: &str,
        code: &str,
    ) -> Result<TokenSet, IdentityError> {
        let answered = self
            .client
            .admin_respond_to_auth_challenge()
            .user_pool_id(&self.user_pool_id)
            .client_id(&self.client_id)
            .challenge_name(ChallengeNameType::SoftwareTokenMfa)
            .session(session)
            .challenge_responses("USERNAME", email)
            .challenge_responses("SOFTWARE_TOKEN_MFA_CODE", code.trim())
            .send()
            .await;
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
            .client_id(&self.client_id)
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
            .client_id(&self.client_id)
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
            .client_id(&self.client_id)
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
        Ok(match self.admin_sign_in(email, password).await? {
            AdminSignIn::Tokens(tokens) => SignIn::Tokens(tokens),
            // The challenge answer must name the user: the opaque session carries the email.
            AdminSignIn::Totp(session) => SignIn::Totp {
                session: URL_SAFE_NO_PAD.encode(format!("{email}\n{session}")),
            },
        })
    }

    async fn respond_totp(&self, session: &str, code: &str) -> Result<TokenSet, IdentityError> {
        let decoded = URL_SAFE_NO_PAD
            .decode(session.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(IdentityError::BadMfaSession)?;
        let (email, cognito_session) = decoded
            .split_once('\n')
            .ok_or(IdentityError::BadMfaSession)?;
        self.admin_answer_totp(email, cognito_session, code).await
    }

    async fn totp_enrol(
        &self,
        _user_id: &str,
        access_token: &str,
    ) -> Result<String, IdentityError> {
        let output = self
            .client
            .associate_software_token()
            .access_token(access_token)
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
        _user_id: &str,
        access_token: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let verified = self
            .client
            .verify_software_token()
            .access_token(access_token)
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
        self.client
            .set_user_mfa_preference()
            .access_token(access_token)
            .software_token_mfa_settings(
                SoftwareTokenMfaSettingsType::builder()
                    .enabled(true)
                    .preferred_mfa(true)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
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
        match self.admin_sign_in(&email, password).await? {
            AdminSignIn::Tokens(_) => {
                // The service turns MFA off only where the pool says it is on, so a sign-in
                // without the TOTP challenge is not proof of anything: refuse, change nothing.
                return Err(IdentityError::Unavailable(
                    "Cognito signed in without the TOTP challenge the user's MFA should ask for"
                        .into(),
                ));
            }
            AdminSignIn::Totp(session) => {
                // The tokens of this proof's session are dropped unused.
                match self.admin_answer_totp(&email, &session, code).await {
                    Ok(_) => {}
                    // The session was made a moment ago: a refusal here is about the code.
                    Err(IdentityError::BadMfaSession) => return Err(IdentityError::BadCode),
                    Err(e) => return Err(e),
                }
            }
        }
        self.client
            .admin_set_user_mfa_preference()
            .user_pool_id(&self.user_pool_id)
            .username(email)
            .software_token_mfa_settings(
                SoftwareTokenMfaSettingsType::builder()
                    .enabled(false)
                    .preferred_mfa(false)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError> {
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token.trim())
            .send()
            .await;
        match result {
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
            .client_id(&self.client_id)
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
            .client_id(&self.client_id)
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

    fn issuer(&self) -> TokenIssuer {
        self.keys.issuer()
    }

    async fn jwks(&self) -> Result<JwkSet, IdentityError> {
        self.keys.jwks().await
    }
}

/// Creates a user pool and app client shaped like the ones in template.yaml (email usernames, the
/// same password policy, the `account_type` attribute, the platform-role groups, an app client
/// with the admin password flow and refresh only). For tests against an emulator, and the README's manual setup.
pub async fn create_user_pool(
    client: &Client,
    name: &str,
) -> Result<(String, String), IdentityError> {
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
    let app = client
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name(format!("{name}-app"))
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .map_err(unavailable)?;
    let client_id = app
        .user_pool_client()
        .and_then(|c| c.client_id())
        .ok_or_else(|| IdentityError::Unavailable("no client id".into()))?
        .to_owned();
    Ok((pool_id, client_id))
}

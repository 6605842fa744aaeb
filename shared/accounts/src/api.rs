//! HTTP routes of accounts: `/v1/auth/*`, `/v1/me` and `/v1/admin/users/{userId}/roles`.

use std::sync::Arc;

use amanar_http::carrying_secret;
use amanar_http::{ApiError, Caller, FieldError, Json, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::identity::{IdentityError, SignIn, TokenSet};
use crate::profile::{Profile, ProfilePatch};
use crate::service::{Accounts, AccountsError, Registration};

/// Routes of the `api-auth` function.
pub(crate) fn auth_router() -> OpenApiRouter<crate::AccountsState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_code))
        .routes(routes!(login))
        .routes(routes!(complete_mfa))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(social_start))
        .routes(routes!(social_callback))
}

/// Routes of the `api-me` function.
pub(crate) fn me_router() -> OpenApiRouter<crate::AccountsState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, patch_me))
        .routes(routes!(enrol_totp))
        .routes(routes!(verify_totp))
        .routes(routes!(disable_mfa))
}

/// Routes of the `api-admin-users` function.
pub(crate) fn admin_router() -> OpenApiRouter<crate::AccountsState> {
    OpenApiRouter::new().routes(routes!(put_roles))
}

type AccountsExt = State<Arc<Accounts>>;

impl From<AccountsError> for ApiError {
    fn from(error: AccountsError) -> Self {
        match error {
            AccountsError::Invalid { field, message } => ApiError::validation(field, message),
            AccountsError::Locked { retry_after_secs } => ApiError::Refused {
                status: StatusCode::LOCKED,
                slug: "account-locked",
                title: "Account locked",
                detail: format!("Too many failed attempts. Retry in {retry_after_secs} seconds."),
                retry_after_secs: Some(retry_after_secs),
            },
            AccountsError::Conflict => ApiError::Conflict {
                slug: "edit-conflict",
                detail: "The resource changed meanwhile; read it again and retry.".into(),
            },
            AccountsError::Storage(error) => error.into(),
            AccountsError::ConflictWith { slug, detail } => ApiError::Conflict { slug, detail },
            AccountsError::NotFound => ApiError::NotFound,
            AccountsError::Forbidden { slug, detail } => ApiError::Forbidden { slug, detail },
            AccountsError::Identity(error) => match error {
                IdentityError::EmailTaken => ApiError::Conflict {
                    slug: "email-taken",
                    detail: "An account with this email already exists.".into(),
                },
                IdentityError::WeakPassword(message) => ApiError::validation("password", message),
                IdentityError::BadCredentials => ApiError::Refused {
                    status: StatusCode::UNAUTHORIZED,
                    slug: "invalid-credentials",
                    title: "Invalid credentials",
                    detail: "The email or password is wrong.".into(),
                    retry_after_secs: None,
                },
                IdentityError::NotConfirmed => ApiError::Refused {
                    status: StatusCode::FORBIDDEN,
                    slug: "email-not-verified",
                    title: "Email not verified",
                    detail: "Verify the email address with the code we sent before logging in."
                        .into(),
                    retry_after_secs: None,
                },
                IdentityError::BadCode => ApiError::validation("code", "is wrong or has expired"),
                IdentityError::Cooldown { retry_after_secs } => {
                    ApiError::RateLimited { retry_after_secs }
                }
                IdentityError::BadRefreshToken => ApiError::Refused {
                    status: StatusCode::UNAUTHORIZED,
                    slug: "invalid-refresh-token",
                    title: "Invalid refresh token",
                    detail: "The refresh token is invalid, expired or revoked; log in again."
                        .into(),
                    retry_after_secs: None,
                },
                IdentityError::NoSuchUser => ApiError::NotFound,
                IdentityError::BadMfaSession => ApiError::Refused {
                    status: StatusCode::UNAUTHORIZED,
                    slug: "invalid-mfa-session",
                    title: "Invalid MFA session",
                    detail: "The MFA session is invalid or has expired; log in again.".into(),
                    retry_after_secs: None,
                },
                IdentityError::NoTotpEnrolment => ApiError::Conflict {
                    slug: "no-totp-enrolment",
                    detail: "Start TOTP enrolment with POST /v1/me/mfa/totp first.".into(),
                },
                IdentityError::Unavailable(context) => ApiError::Unavailable(context),
                IdentityError::Storage(error) => error.into(),
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 12 to 256 characters, with an upper-case letter, a lower-case letter and a digit.
    pub password: String,
    pub name: String,
    /// `individual`, `business`, `enterprise` or `project_developer`.
    pub account_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub user_id: String,
    /// `pending_verification` until the emailed code is confirmed.
    pub status: &'static str,
}

/// Registers an account; a verification code is emailed.
#[utoipa::path(post, path = "/v1/auth/register", tag = "accounts", summary = "Register",
    request_body = RegisterRequest,
    responses((status = 201, description = "Registered; verify the email next", body = Registered),
        (status = 409, description = "An account with this email exists (emails compare case-insensitively)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid email, weak password, bad name or account type", body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(accounts): AccountsExt,
    Json(request): Json<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let user_id = accounts
        .register(&Registration {
            email: request.email,
            password: request.password,
            name: request.name,
            account_type: request.account_type,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user_id,
            status: "pending_verification",
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub email: String,
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub status: &'static str,
}

/// Confirms the email address with the emailed code.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "accounts", summary = "Verify email",
    request_body = VerifyEmailRequest,
    responses((status = 200, description = "Verified", body = Status),
        (status = 422, description = "The code is wrong or has expired", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Too many wrong codes for this email (10 in an hour); `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn verify_email(
    State(accounts): AccountsExt,
    Json(request): Json<VerifyEmailRequest>,
) -> Result<Json<Status>, ApiError> {
    accounts.verify_email(&request.email, &request.code).await?;
    Ok(Json(Status { status: "verified" }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

/// Sends a new verification code (at most one a minute). The answer is the same whether or not
/// the address has an account.
#[utoipa::path(post, path = "/v1/auth/resend-code", tag = "accounts", summary = "Resend the verification code",
    request_body = EmailRequest,
    responses((status = 202, description = "A code is on its way if the address has an unverified account", body = Status),
        (status = 429, description = "A code was sent less than a minute ago", body = Problem, content_type = "application/problem+json")))]
pub async fn resend_code(
    State(accounts): AccountsExt,
    Json(request): Json<EmailRequest>,
) -> Result<impl IntoResponse, ApiError> {
    accounts.resend_code(&request.email).await?;
    Ok((StatusCode::ACCEPTED, Json(Status { status: "sent" })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A session's tokens.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange at `POST /v1/auth/refresh`.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub token_type: &'static str,
}

impl From<TokenSet> for Tokens {
    fn from(t: TokenSet) -> Self {
        Tokens {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            token_type: "Bearer",
        }
    }
}

/// A login's answer: tokens, or a TOTP challenge to answer at `POST /v1/auth/mfa`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Tokens(Tokens),
    Challenge(Challenge),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// `totp`: send a code from the authenticator app.
    pub challenge: &'static str,
    /// Opaque; valid for 3 minutes.
    pub session: String,
}

impl From<SignIn> for LoginAnswer {
    fn from(outcome: SignIn) -> Self {
        match outcome {
            SignIn::Tokens(tokens) => LoginAnswer::Tokens(tokens.into()),
            SignIn::Totp { session } => LoginAnswer::Challenge(Challenge {
                challenge: "totp",
                session,
            }),
        }
    }
}

/// Logs in with email and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "accounts", summary = "Log in",
    request_body = LoginRequest,
    responses((status = 200, description = "Tokens, or `{challenge: \"totp\", session}` when MFA is on", body = LoginAnswer),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The email is not verified yet", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Locked after 5 failed logins in 15 minutes; `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(accounts): AccountsExt,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let answer: LoginAnswer = accounts
        .login(&request.email, &request.password)
        .await?
        .into();
    Ok(carrying_secret(Json(answer)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MfaRequest {
    pub session: String,
    /// Six digits from the authenticator app.
    pub code: String,
}

/// Completes a login with the TOTP code.
#[utoipa::path(post, path = "/v1/auth/mfa", tag = "accounts", summary = "Answer the TOTP challenge",
    request_body = MfaRequest,
    responses((status = 200, description = "Tokens", body = Tokens),
        (status = 401, description = "The session is invalid, used or expired, or the code is wrong (a code works once)", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Locked for an hour after 5 wrong codes in 15 minutes (a right password does not lift it); `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn complete_mfa(
    State(accounts): AccountsExt,
    Json(request): Json<MfaRequest>,
) -> Result<Response, ApiError> {
    let tokens: Tokens = accounts
        .complete_mfa(&request.session, &request.code)
        .await
        .map_err(code_is_a_credential)?
        .into();
    Ok(carrying_secret(Json(tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// New tokens for a refresh token. The local provider rotates refresh tokens and revokes the
/// session when a used one comes back.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "accounts", summary = "Refresh tokens",
    request_body = RefreshRequest,
    responses((status = 200, description = "Tokens", body = Tokens),
        (status = 401, description = "Invalid, expired or revoked refresh token", body = Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    State(accounts): AccountsExt,
    Json(request): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens: Tokens = accounts.refresh(&request.refresh_token).await?.into();
    Ok(carrying_secret(Json(tokens)))
}

/// Revokes every refresh token of the caller.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "accounts", summary = "Log out",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out everywhere"),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json")))]
pub async fn logout(State(accounts): AccountsExt, caller: Caller) -> Result<StatusCode, ApiError> {
    accounts.logout(&caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Emails a password-reset code. The answer is the same whether or not the address has an
/// account.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "accounts", summary = "Forgot password",
    request_body = EmailRequest,
    responses((status = 202, description = "A code is on its way if the address has an account", body = Status)))]
pub async fn forgot_password(
    State(accounts): AccountsExt,
    Json(request): Json<EmailRequest>,
) -> Result<impl IntoResponse, ApiError> {
    accounts.forgot_password(&request.email).await?;
    Ok((StatusCode::ACCEPTED, Json(Status { status: "sent" })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
    pub code: String,
    pub new_password: String,
}

/// Sets a new password with the emailed code; every existing session ends.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "accounts", summary = "Reset password",
    request_body = ResetRequest,
    responses((status = 200, description = "Password changed; log in again", body = Status),
        (status = 422, description = "Wrong or expired code, or a weak password", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Too many wrong codes for this email (10 in an hour); `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn reset_password(
    State(accounts): AccountsExt,
    Json(request): Json<ResetRequest>,
) -> Result<Json<Status>, ApiError> {
    accounts
        .reset_password(&request.email, &request.code, &request.new_password)
        .await?;
    Ok(Json(Status {
        status: "password_reset",
    }))
}

/// The caller's profile and platform roles.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    #[serde(flatten)]
    pub profile: Profile,
    /// Platform roles (`verifier`, `admin`) from the access token.
    pub roles: Vec<String>,
}

/// Reads the caller's profile and preferences.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", summary = "My profile", security(("bearer" = [])),
    responses((status = 200, description = "The profile", body = Me),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json")))]
pub async fn get_me(State(accounts): AccountsExt, caller: Caller) -> Result<Json<Me>, ApiError> {
    let profile = accounts.profile(&caller.user_id).await?;
    Ok(Json(Me {
        profile,
        roles: caller.groups,
    }))
}

/// Changes the caller's name or preferences; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/me", tag = "accounts", summary = "Update my profile", security(("bearer" = [])),
    request_body = ProfilePatch,
    responses((status = 200, description = "The updated profile", body = Me),
        (status = 409, description = "Changed concurrently; retry", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid value, named by its field", body = Problem, content_type = "application/problem+json")))]
pub async fn patch_me(
    State(accounts): AccountsExt,
    caller: Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<Me>, ApiError> {
    let profile = accounts.update_profile(&caller.user_id, patch).await?;
    Ok(Json(Me {
        profile,
        roles: caller.groups,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolesRequest {
    /// The complete set of platform roles: any of `verifier`, `admin`.
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Roles {
    pub user_id: String,
    pub roles: Vec<String>,
}

/// Replaces a user's platform roles. Admins only; takes effect at the user's next token.
#[utoipa::path(put, path = "/v1/admin/users/{userId}/roles", tag = "accounts", summary = "Set platform roles",
    security(("bearer" = [])), params(("userId" = String, Path, description = "User id")),
    request_body = RolesRequest,
    responses((status = 200, description = "The user's roles now", body = Roles),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")))]
pub async fn put_roles(
    State(accounts): AccountsExt,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(request): Json<RolesRequest>,
) -> Result<Json<Roles>, ApiError> {
    if !caller.has_role("admin") {
        return Err(ApiError::Forbidden {
            slug: "admin-only",
            detail: "Only platform admins can change roles.".into(),
        });
    }
    if request.roles.len() > 10 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "roles",
            "holds at most the two platform roles",
        )]));
    }
    let roles = accounts
        .set_roles(&caller.user_id, &user_id, &request.roles)
        .await?;
    Ok(Json(Roles { user_id, roles }))
}

/// A new TOTP secret for the caller's authenticator app.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// Base32; shown once.
    pub secret: String,
    /// `otpauth://totp/...` for a QR code.
    pub otpauth_uri: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrolTotpRequest {
    /// The account's password: an access token alone cannot add a second factor.
    pub password: String,
}

/// Starts TOTP enrolment. MFA is on only after `POST /v1/me/mfa/totp/verify`.
#[utoipa::path(post, path = "/v1/me/mfa/totp", tag = "accounts", summary = "Enrol a TOTP app", security(("bearer" = [])),
    request_body = EnrolTotpRequest,
    responses((status = 200, description = "The secret and its otpauth URI", body = TotpEnrolment),
        (status = 401, description = "No valid access token, or a wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is already on (`mfa-already-enabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body lacks the password", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Too many wrong passwords; `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn enrol_totp(
    State(accounts): AccountsExt,
    caller: Caller,
    Json(request): Json<EnrolTotpRequest>,
) -> Result<Response, ApiError> {
    let (secret, otpauth_uri) = accounts
        .mfa_enrol(&caller.user_id, &request.password)
        .await?;
    Ok(carrying_secret(Json(TotpEnrolment {
        secret,
        otpauth_uri,
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyTotpRequest {
    /// A current code from the authenticator app.
    pub code: String,
    /// The account's password, again.
    pub password: String,
}

/// Confirms TOTP enrolment with a code from the app; from then on login asks for a code.
#[utoipa::path(post, path = "/v1/me/mfa/totp/verify", tag = "accounts", summary = "Confirm the TOTP app", security(("bearer" = [])),
    request_body = VerifyTotpRequest,
    responses((status = 200, description = "MFA is on; every refresh token of the user is revoked, so the next login asks for a code", body = Me),
        (status = 401, description = "No valid access token, or a wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment is waiting (`no-totp-enrolment`), or MFA is already on (`mfa-already-enabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A wrong code, or a body without the code (six digits) and the password", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Too many wrong passwords; `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn verify_totp(
    State(accounts): AccountsExt,
    caller: Caller,
    Json(request): Json<VerifyTotpRequest>,
) -> Result<Json<Me>, ApiError> {
    let profile = accounts
        .mfa_confirm(&caller.user_id, &request.password, &request.code)
        .await?;
    Ok(Json(Me {
        profile,
        roles: caller.groups,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableMfaRequest {
    /// The account's password.
    pub password: String,
    /// A current code from the authenticator app, not used before.
    pub code: String,
}

/// Turns MFA off. Needs the password and a current code in the body, so a stolen access token
/// alone cannot; wrong answers count towards the login and second-factor limits.
#[utoipa::path(delete, path = "/v1/me/mfa", tag = "accounts", summary = "Disable MFA", security(("bearer" = [])),
    request_body = DisableMfaRequest,
    responses((status = 204, description = "MFA is off; every refresh token of the user is revoked"),
        (status = 401, description = "No valid access token, or a wrong password or code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is not on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body lacks the password or the code", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Too many wrong answers; `Retry-After` says for how long", body = Problem, content_type = "application/problem+json")))]
pub async fn disable_mfa(
    State(accounts): AccountsExt,
    caller: Caller,
    Json(request): Json<DisableMfaRequest>,
) -> Result<StatusCode, ApiError> {
    accounts
        .mfa_disable(&caller.user_id, &request.password, &request.code)
        .await
        .map_err(code_is_a_credential)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a TOTP code is a credential (answering a login challenge, proving the second factor), a
/// wrong one is a 401 like a wrong password, so clients treat both alike.
fn code_is_a_credential(error: AccountsError) -> ApiError {
    match error {
        AccountsError::Identity(IdentityError::BadCode) => ApiError::Refused {
            status: StatusCode::UNAUTHORIZED,
            slug: "invalid-mfa-code",
            title: "Invalid MFA code",
            detail: "The code is wrong, expired or already used.".into(),
            retry_after_secs: None,
        },
        other => other.into(),
    }
}

impl From<crate::social::SocialError> for ApiError {
    fn from(error: crate::social::SocialError) -> Self {
        use crate::social::SocialError;
        let refused = |status, slug, title, detail: String| ApiError::Refused {
            status,
            slug,
            title,
            detail,
            retry_after_secs: None,
        };
        match error {
            SocialError::UnknownProvider(configured) => refused(
                StatusCode::NOT_FOUND,
                "unknown-provider",
                "Unknown provider",
                format!("No social login provider has this name here; configured: {configured}."),
            ),
            SocialError::BadState => refused(
                StatusCode::BAD_REQUEST,
                "invalid-state",
                "Invalid login state",
                "The login state is unknown, used or expired; start the login again.".into(),
            ),
            SocialError::Refused(detail) => refused(
                StatusCode::UNAUTHORIZED,
                "social-login-failed",
                "Social login failed",
                detail,
            ),
            SocialError::EmailNotVerified => refused(
                StatusCode::FORBIDDEN,
                "email-not-verified",
                "Email not verified",
                "The provider did not confirm an email address for this account.".into(),
            ),
            SocialError::Accounts(e) => e.into(),
            SocialError::Unavailable(context) => ApiError::Unavailable(context),
        }
    }
}

/// Where the browser goes to log in with the provider.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SocialStart {
    pub authorization_url: String,
}

/// Starts a social login: redirects to the provider (authorization code with PKCE and `state`).
#[utoipa::path(get, path = "/v1/auth/social/{provider}/start", tag = "accounts", summary = "Start a social login",
    params(("provider" = String, Path, description = "`google` or `linkedin`")),
    responses((status = 302, description = "Redirect to the provider; the body also gives the URL", body = SocialStart),
        (status = 404, description = "The provider is not configured", body = Problem, content_type = "application/problem+json")))]
pub async fn social_start(
    State(social): State<Arc<crate::social::Social>>,
    Path(provider): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (url, browser_secret) = social.start(&provider).await?;
    Ok((
        StatusCode::FOUND,
        [
            (axum::http::header::LOCATION, url.clone()),
            (
                axum::http::header::SET_COOKIE,
                social.cookie(&browser_secret, crate::social::STATE_SECS),
            ),
        ],
        Json(SocialStart {
            authorization_url: url,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when the user refused or the request was bad.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 issuer identification, when the provider sends it.
    pub iss: Option<String>,
}

/// The provider's redirect back: exchanges the code and answers with a session. The browser must
/// bring back the cookie set at the start.
#[utoipa::path(get, path = "/v1/auth/social/callback", tag = "accounts", summary = "Finish a social login",
    params(CallbackQuery),
    responses((status = 200, description = "Tokens, or a TOTP challenge when the account has MFA on", body = LoginAnswer),
        (status = 400, description = "Unknown, used or expired state", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The provider refused, or its ID token did not verify", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The provider did not verify an email", body = Problem, content_type = "application/problem+json")))]
pub async fn social_callback(
    State(social): State<Arc<crate::social::Social>>,
    headers: axum::http::HeaderMap,
    amanar_http::Query(query): amanar_http::Query<CallbackQuery>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(error) = query.error {
        return Err(
            // What the provider sent is echoed, bounded: the query is anyone's to write.
            crate::social::SocialError::Refused(match query.error_description {
                Some(description) => format!(
                    "{}: {}",
                    amanar_http::bounded(&error, 100),
                    amanar_http::bounded(&description, 200)
                ),
                None => amanar_http::bounded(&error, 100),
            })
            .into(),
        );
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return Err(ApiError::validation(
            "code",
            "the provider's redirect carries code and state",
        ));
    };
    let browser_secret = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == crate::social::COOKIE)
        .map(|(_, value)| value.to_owned());
    let answer: LoginAnswer = social
        .callback(&code, &state, browser_secret.as_deref())
        .await?
        .into();
    Ok(carrying_secret((
        [(axum::http::header::SET_COOKIE, social.cookie("", 0))],
        Json(answer),
    )))
}

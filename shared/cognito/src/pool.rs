//! A user pool shaped like template.yaml's, for tests against an emulator.

use amanar_accounts::identity::IdentityError;
use aws_sdk_cognitoidentityprovider::Client;

use crate::{AppClient, unavailable};

/// A user pool made by [`create_user_pool`].
#[derive(Debug, Clone)]
pub struct CreatedPool {
    pub pool_id: String,
    pub app: AppClient,
    pub enrolment: AppClient,
}

/// Creates a user pool and its app clients shaped like the ones in template.yaml (email
/// usernames, the same password policy, the `account_type` attribute, the platform-role groups;
/// an app client and an enrolment client, both with a secret, the admin password flow and
/// refresh only), for tests against an emulator. No pre-token trigger: moto runs none, so these
/// clients' tokens keep Cognito's user-facing scope.
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
    for suffix in ["-app", "-enrolment"] {
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
        let id = made
            .client_id()
            .ok_or_else(|| IdentityError::Unavailable("no client id".into()))?;
        clients.push(AppClient::new(id, made.client_secret().map(str::to_owned)));
    }
    let enrolment = clients.pop().expect("two clients");
    let app = clients.pop().expect("two clients");
    Ok(CreatedPool {
        pool_id,
        app,
        enrolment,
    })
}

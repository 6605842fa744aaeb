//! Input rules shared by both faces: email normalisation, the password policy (the same as the
//! Cognito user pool's in template.yaml) and account types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 256;

/// The kind of account, chosen at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    Individual,
    Business,
    Enterprise,
    ProjectDeveloper,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Individual => "individual",
            AccountType::Business => "business",
            AccountType::Enterprise => "enterprise",
            AccountType::ProjectDeveloper => "project_developer",
        }
    }

    pub fn parse(text: &str) -> Option<AccountType> {
        [
            AccountType::Individual,
            AccountType::Business,
            AccountType::Enterprise,
            AccountType::ProjectDeveloper,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// The email as the platform keys it: trimmed and lower-case, or why it is not an address.
pub fn normalise_email(email: &str) -> Result<String, &'static str> {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an email address");
    };
    let valid = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err("must be an email address")
    }
}

/// Checks a password against the policy: 12 to 256 characters with an upper-case letter, a
/// lower-case letter and a digit (Cognito's `RequireUppercase`, `RequireLowercase`,
/// `RequireNumbers`).
pub fn check_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    let mut missing = Vec::new();
    if !password.chars().any(char::is_uppercase) {
        missing.push("an upper-case letter");
    }
    if !password.chars().any(char::is_lowercase) {
        missing.push("a lower-case letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        missing.push("a digit");
    }
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&length) {
        return Err(format!(
            "must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        ));
    }
    if !missing.is_empty() {
        return Err(format!("must contain {}", missing.join(", ")));
    }
    Ok(())
}

/// A display name: 1 to 100 characters, no control characters.
pub fn check_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("must be 1 to 100 characters without control characters");
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased_and_nonsense_is_refused() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_the_user_pool_policy() {
        assert!(check_password("Correct horse 7").is_ok());
        assert!(check_password("Short1A").unwrap_err().contains("12 to 256"));
        assert!(
            check_password("alllowercase123")
                .unwrap_err()
                .contains("upper-case")
        );
        assert!(
            check_password("NoDigitsHereAtAll")
                .unwrap_err()
                .contains("a digit")
        );
    }
}

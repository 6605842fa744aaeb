//! Tokens of the local provider: its ES256 signing key (made on first start and kept in the table)
//! with its JWKS, access tokens shaped like Cognito's, and refresh tokens stored only as hashes.

use std::sync::Arc;

use amanar_accounts::identity::{IdentityError, TokenSet};
use amanar_core::table::{Condition, Table, TableError, Update, WriteOp, items};
use amanar_core::{keys, new_id};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};

use crate::provider::{Credentials, LocalIdentity};
use crate::secrets::{random_bytes, sha256_hex, unavailable};

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECS: i64 = 15 * 60;
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_SECS: i64 = 30 * 24 * 3600;
/// The app client the local provider issues tokens to.
pub const LOCAL_CLIENT_ID: &str = "amanar-local";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshRecord {
    pub(crate) user_id: String,
    pub(crate) email: String,
    pub(crate) epoch: i64,
    pub(crate) expires_at: i64,
    pub(crate) rotated: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningKeyRecord {
    kid: String,
    /// PKCS#8 DER of the P-256 private key, base64.
    pkcs8: String,
    x: String,
    y: String,
}

#[derive(Debug, Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    token_use: &'static str,
    iat: i64,
    exp: i64,
    jti: String,
    username: &'a str,
    #[serde(rename = "cognito:groups")]
    groups: &'a [String],
}

pub(crate) struct Signer {
    kid: String,
    key: EncodingKey,
    pub(crate) jwks: JwkSet,
}

impl Signer {
    /// The provider's signing key from the table, made and stored the first time.
    pub(crate) async fn load(table: &Arc<dyn Table>) -> Result<Self, IdentityError> {
        let key = keys::idp_signing_key();
        let record = match table.get(&key).await? {
            Some(item) => items::parse::<SigningKeyRecord>(item)?,
            None => {
                let fresh = Signer::generate()?;
                let item = items::with_key(&key, &fresh)?;
                match table
                    .write(vec![WriteOp::put(item).when(Condition::NotExists)])
                    .await
                {
                    Ok(()) => fresh,
                    // Another process made one first: use theirs.
                    Err(TableError::ConditionFailed { .. }) => {
                        let item = table.get(&key).await?;
                        items::parse(item.ok_or_else(|| unavailable("signing key vanished"))?)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Self::from_record(&record)
    }

    fn from_record(record: &SigningKeyRecord) -> Result<Self, IdentityError> {
        let der = STANDARD.decode(&record.pkcs8).map_err(unavailable)?;
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(record.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: record.x.clone(),
                y: record.y.clone(),
            }),
        };
        Ok(Signer {
            kid: record.kid.clone(),
            key: EncodingKey::from_ec_der(&der),
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    fn generate() -> Result<SigningKeyRecord, IdentityError> {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&random_bytes::<32>()) {
                break key;
            }
        };
        let der = secret.to_pkcs8_der().map_err(unavailable)?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let x = URL_SAFE_NO_PAD.encode(point.x().ok_or_else(|| unavailable("no x"))?);
        let y = URL_SAFE_NO_PAD.encode(point.y().ok_or_else(|| unavailable("no y"))?);
        let kid = sha256_hex(&[&x, &y])[..16].to_owned();
        Ok(SigningKeyRecord {
            kid,
            pkcs8: STANDARD.encode(der.as_bytes()),
            x,
            y,
        })
    }
}

impl LocalIdentity {
    pub(crate) fn access_token(&self, credentials: &Credentials) -> Result<String, IdentityError> {
        let now = self.now();
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: &credentials.user_id,
            client_id: LOCAL_CLIENT_ID,
            token_use: "access",
            iat: now,
            exp: now + ACCESS_TOKEN_SECS,
            jti: new_id("at"),
            username: &credentials.user_id,
            groups: &credentials.groups,
        };
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.signer.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signer.key).map_err(unavailable)
    }

    /// A new refresh token record, and the token itself (only its hash is stored).
    pub(crate) fn refresh_token(
        &self,
        credentials: &Credentials,
    ) -> Result<(String, WriteOp), IdentityError> {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let record = RefreshRecord {
            user_id: credentials.user_id.clone(),
            email: credentials.email.clone(),
            epoch: credentials.epoch,
            expires_at: self.now() + REFRESH_TOKEN_SECS,
            rotated: false,
        };
        let item = items::with_key(&keys::idp_refresh_token(&sha256_hex(&[&token])), &record)?;
        Ok((token, WriteOp::put(item).when(Condition::NotExists)))
    }

    pub(crate) fn tokens(
        &self,
        credentials: &Credentials,
        refresh_token: String,
    ) -> Result<TokenSet, IdentityError> {
        Ok(TokenSet {
            access_token: self.access_token(credentials)?,
            refresh_token,
            expires_in: ACCESS_TOKEN_SECS as u64,
        })
    }

    /// Stores a new refresh token and returns the session's tokens.
    pub(crate) async fn session(
        &self,
        credentials: &Credentials,
    ) -> Result<TokenSet, IdentityError> {
        let (refresh_token, store) = self.refresh_token(credentials)?;
        self.table.write(vec![store]).await?;
        self.tokens(credentials, refresh_token)
    }

    pub(crate) async fn bump_epoch(&self, email: &str) -> Result<(), IdentityError> {
        self.table
            .write(vec![
                WriteOp::update(keys::idp_credentials(email), Update::new().add("epoch", 1))
                    .when(Condition::Exists),
            ])
            .await
            .map_err(IdentityError::from)
    }
}

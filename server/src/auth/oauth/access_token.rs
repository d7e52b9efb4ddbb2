//! Access tokens of the built-in authorization server: JWTs (RFC 9068 claims) signed with HS256
//! under a key derived from the session key (`keys::Purpose::AccessToken`).
//!
//! HS256 rather than a published asymmetric key: the only party that verifies these tokens is this
//! server (any instance of it), which holds the shared key anyway; a JWKS endpoint would publish a
//! key nobody else needs. The token is still a standard JWT, so operators can read its claims.
//!
//! Like a session token, an access token names the user's password version (`ver`): each request
//! checks it against the current users.yaml, so removing, disabling or re-passwording a user
//! revokes their OAuth access at the next reload, not at the token's expiry.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::keys::{Purpose, PurposeKeys};
use crate::auth::principal::AuthFailure;
use crate::auth::session::SessionKeys;

/// The claims of a built-in access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    /// The user name.
    pub sub: String,
    /// The resource the token is for (RFC 8707), checked on every request.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Space-separated granted scopes (RFC 9068 §2.2.3).
    pub scope: String,
    /// The client the token was issued to (RFC 9068 §2.2): a digest of its client id.
    pub client_id: String,
    /// The user's password version at sign-in (`users::password_version`).
    pub ver: String,
    pub jti: String,
}

/// Signs access tokens with the current derived key.
pub fn mint(session_keys: &SessionKeys, claims: &AccessClaims) -> String {
    let keys = PurposeKeys::new(session_keys, Purpose::AccessToken);
    let mut header = Header::new(Algorithm::HS256);
    // RFC 9068 §2.1.
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&keys.all()[0]))
        .expect("HS256 signs any claims that serialize")
}

/// Checks signature (every derived key: rotation), `iss`, `aud`, `exp` with `leeway_secs`.
pub fn verify(
    session_keys: &SessionKeys,
    token: &str,
    issuer: &str,
    resource: &str,
    leeway_secs: u64,
) -> Result<AccessClaims, AuthFailure> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
    if header.alg != Algorithm::HS256 {
        // Not ours (an asymmetric token from elsewhere, or `none`).
        return Err(AuthFailure::BadSignature);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = leeway_secs;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[resource]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let keys = PurposeKeys::new(session_keys, Purpose::AccessToken);
    let mut failure = AuthFailure::BadSignature;
    for key in keys.all() {
        match jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(key), &validation) {
            Ok(data) => return Ok(data.claims),
            Err(error) => {
                failure = failure_of(error.kind());
                if failure != AuthFailure::BadSignature {
                    // The signature held: another key will not change the verdict.
                    return Err(failure);
                }
            }
        }
    }
    Err(failure)
}

/// What a JWT validation error means to a client (RFC 6750 §3.1 `invalid_token` in every case;
/// the reason goes to logs and metrics).
pub fn failure_of(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => AuthFailure::Expired,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthFailure::BadSignature
        }
        _ => AuthFailure::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::generate_key_file;

    fn claims(exp_in: i64, aud: &str) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: "https://mcp.example.com".into(),
            sub: "alice".into(),
            aud: aud.into(),
            exp: now + exp_in,
            iat: now,
            scope: "mcp".into(),
            client_id: "c".into(),
            ver: "v".into(),
            jti: "j".into(),
        }
    }

    const ISS: &str = "https://mcp.example.com";
    const RES: &str = "https://mcp.example.com/mcp";

    #[test]
    fn a_minted_token_verifies_on_any_instance_with_the_same_key_file() {
        let file = generate_key_file();
        let token = mint(&SessionKeys::parse(&file).unwrap(), &claims(60, RES));
        let again = SessionKeys::parse(&file).unwrap();
        assert_eq!(verify(&again, &token, ISS, RES, 0).unwrap().sub, "alice");
    }

    #[test]
    fn expiry_audience_issuer_and_key_are_each_checked() {
        let keys = SessionKeys::parse(&generate_key_file()).unwrap();
        let expired = mint(&keys, &claims(-120, RES));
        assert_eq!(verify(&keys, &expired, ISS, RES, 60), Err(AuthFailure::Expired));
        // Within the leeway it passes.
        let just = mint(&keys, &claims(-30, RES));
        assert!(verify(&keys, &just, ISS, RES, 60).is_ok());
        let other = mint(&keys, &claims(60, "https://other.example.com/mcp"));
        assert_eq!(verify(&keys, &other, ISS, RES, 0), Err(AuthFailure::WrongAudience));
        let token = mint(&keys, &claims(60, RES));
        assert_eq!(
            verify(&keys, &token, "https://evil.example.com", RES, 0),
            Err(AuthFailure::WrongIssuer)
        );
        let stranger = SessionKeys::parse(&generate_key_file()).unwrap();
        assert_eq!(verify(&stranger, &token, ISS, RES, 0), Err(AuthFailure::BadSignature));
    }

    #[test]
    fn a_token_signed_with_the_session_key_itself_is_not_an_access_token() {
        // The derived key, not the raw session key, signs: a value HMAC'd elsewhere never passes.
        let file = generate_key_file();
        let keys = SessionKeys::parse(&file).unwrap();
        let raw = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(60, RES),
            &EncodingKey::from_secret(&keys.raw_keys()[0]),
        )
        .unwrap();
        assert_eq!(verify(&keys, &raw, ISS, RES, 0), Err(AuthFailure::BadSignature));
    }
}

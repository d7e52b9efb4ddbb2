//! Session tokens issued by `POST /api/login`, valid on every instance without shared state.
//!
//! `pgmcs_` + base64url(payload JSON) + `.` + base64url(HMAC-SHA256(key, payload)), payload
//! `{sub, iat, exp, ver}`. Any instance holding the same key file validates it alone, so logins
//! need no writable shared store and no sticky routing. `ver` ties the session to the user's current
//! password hash: a password change or removal revokes exactly that user's sessions at the next
//! reload of users.yaml.
//!
//! The key file may hold several keys, one per line: the first signs, all verify. Rotating is then
//! "prepend a new key, wait a session TTL, drop the old one", with no forced logout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::principal::AuthFailure;

pub const SESSION_PREFIX: &str = "pgmcs_";
const MIN_KEY_BYTES: usize = 32;

/// The signing keys, from `auth.session_secret_file`.
#[derive(Debug)]
pub struct SessionKeys {
    keys: Vec<Vec<u8>>,
}

/// What a session token asserts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub ver: String,
}

/// Content for a new key file: 64 hex characters (256 bits).
pub fn generate_key_file() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{}\n", hex::encode(key))
}

impl SessionKeys {
    /// One key per non-empty, non-comment line; each at least 32 bytes.
    pub fn parse(text: &str) -> Result<SessionKeys, String> {
        let keys: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.as_bytes().to_vec())
            .collect();
        if keys.is_empty() {
            return Err("session key file holds no key".into());
        }
        if let Some(index) = keys.iter().position(|k| k.len() < MIN_KEY_BYTES) {
            return Err(format!(
                "session key on line {} is shorter than {MIN_KEY_BYTES} characters",
                index + 1
            ));
        }
        Ok(SessionKeys { keys })
    }

    /// The raw keys, current first: OAuth derives its own keys from them (`oauth::keys`), so one
    /// shared file and one rotation procedure cover every signature this server makes.
    pub(crate) fn raw_keys(&self) -> &[Vec<u8>] {
        &self.keys
    }

    fn mac(key: &[u8]) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
    }

    /// Issues a token for `claims` with the first (current) key.
    pub fn mint(&self, claims: &SessionClaims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = Self::mac(&self.keys[0]);
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{SESSION_PREFIX}{payload}.{signature}")
    }

    /// Checks signature (constant-time, against every key) and expiry. The caller still checks the
    /// user exists, is enabled and `ver` matches.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<SessionClaims, AuthFailure> {
        let body = token.strip_prefix(SESSION_PREFIX).ok_or(AuthFailure::Malformed)?;
        let (payload, signature) = body.split_once('.').ok_or(AuthFailure::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthFailure::Malformed)?;
        let signed_by_us = self.keys.iter().any(|key| {
            let mut mac = Self::mac(key);
            mac.update(payload.as_bytes());
            mac.verify_slice(&signature).is_ok()
        });
        if !signed_by_us {
            return Err(AuthFailure::BadSignature);
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthFailure::Malformed)?;
        let claims: SessionClaims = serde_json::from_slice(&json).map_err(|_| AuthFailure::Malformed)?;
        if claims.exp <= now.timestamp() {
            return Err(AuthFailure::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> SessionClaims {
        let now = Utc::now().timestamp();
        SessionClaims {
            sub: "alice".into(),
            iat: now,
            exp: now + exp_in,
            ver: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn a_minted_token_verifies_with_the_same_key_file() {
        let file = generate_key_file();
        let minted = SessionKeys::parse(&file).unwrap().mint(&claims(60));
        // A second instance reading the same file.
        assert_eq!(
            SessionKeys::parse(&file).unwrap().verify(&minted, Utc::now()).unwrap(),
            claims(60)
        );
    }

    #[test]
    fn a_flipped_byte_anywhere_is_rejected() {
        let keys = SessionKeys::parse(&generate_key_file()).unwrap();
        let token = keys.mint(&claims(60));
        for position in SESSION_PREFIX.len()..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                keys.verify(&tampered, Utc::now()).is_err(),
                "tampering at {position} accepted"
            );
        }
    }

    #[test]
    fn another_key_or_expiry_is_rejected() {
        let keys = SessionKeys::parse(&generate_key_file()).unwrap();
        let other = SessionKeys::parse(&generate_key_file()).unwrap();
        assert_eq!(
            other.verify(&keys.mint(&claims(60)), Utc::now()).unwrap_err(),
            AuthFailure::BadSignature
        );
        assert_eq!(
            keys.verify(&keys.mint(&claims(-1)), Utc::now()).unwrap_err(),
            AuthFailure::Expired
        );
        assert_eq!(
            keys.verify("pgmcs_nodot", Utc::now()).unwrap_err(),
            AuthFailure::Malformed
        );
    }

    #[test]
    fn rotation_keeps_old_sessions_valid() {
        let old = generate_key_file();
        let token = SessionKeys::parse(&old).unwrap().mint(&claims(60));
        let rotated = SessionKeys::parse(&format!("{}{old}", generate_key_file())).unwrap();
        assert!(rotated.verify(&token, Utc::now()).is_ok());
        assert_ne!(rotated.mint(&claims(60)), token);
    }

    #[test]
    fn short_or_empty_key_files_are_rejected() {
        assert!(SessionKeys::parse("").unwrap_err().contains("no key"));
        assert!(SessionKeys::parse("short\n").unwrap_err().contains("shorter"));
    }
}

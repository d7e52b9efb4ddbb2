//! The keys of the built-in authorization server, all derived from the shared session key file.
//!
//! The built-in server keeps no state: a registered client, an authorization code, a refresh token
//! and an access token are each carried by the client and checked by whichever instance receives
//! it. That only works if every instance holds the same keys, and the session key file is already
//! the one secret every instance shares. Each use gets its own key, derived with HKDF-SHA256
//! (RFC 5869) under a distinct label ([`Purpose`]), so a value minted for one use can never be
//! accepted as another (a client id replayed as a code, a code as a refresh token) even if its
//! layout happened to parse.
//!
//! The key file may hold several keys (first signs, all verify: `session.rs`); the derived keys
//! follow it, so rotating the session key rotates everything OAuth signs, with the same "prepend,
//! wait, drop" procedure and no forced sign-out.
//!
//! Sealed values are AES-256-GCM (ring): confidentiality for what codes and refresh tokens hold
//! (user names, PKCE challenges) and integrity for all of them. Layout: base64url(nonce(12) ||
//! ciphertext || tag(16)), the purpose label as associated data.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use serde::{Serialize, de::DeserializeOwned};

use crate::auth::session::SessionKeys;

/// What a derived key is for; the label is the HKDF `info` and the AEAD associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// RFC 7591 client ids (the registered redirect URIs).
    ClientId,
    /// The authorization request carried through the login form, with its CSRF nonce.
    LoginRequest,
    /// Authorization codes.
    Code,
    /// Refresh tokens.
    RefreshToken,
    /// HS256 signatures of access tokens.
    AccessToken,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::ClientId => b"postgres-mcp oauth client-id v1",
            Purpose::LoginRequest => b"postgres-mcp oauth login-request v1",
            Purpose::Code => b"postgres-mcp oauth code v1",
            Purpose::RefreshToken => b"postgres-mcp oauth refresh-token v1",
            Purpose::AccessToken => b"postgres-mcp oauth access-token v1",
        }
    }
}

/// HKDF salt: fixed and public (RFC 5869 §3.1 allows it; the input key is already uniformly random).
const SALT: &[u8] = b"postgres-mcp oauth";

/// 32 bytes for `purpose` from one session key.
pub fn derive(session_key: &[u8], purpose: Purpose) -> [u8; 32] {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(session_key);
    let info = [purpose.label()];
    let okm = prk
        .expand(&info, HKDF_SHA256)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut out = [0u8; 32];
    okm.fill(&mut out).expect("the output buffer has the length asked for");
    out
}

/// The derived keys of one purpose: the first seals, all open.
pub struct PurposeKeys {
    purpose: Purpose,
    keys: Vec<[u8; 32]>,
}

/// A sealed value that did not open with any key, or whose content is not what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsealable;

impl PurposeKeys {
    pub fn new(session_keys: &SessionKeys, purpose: Purpose) -> PurposeKeys {
        PurposeKeys {
            purpose,
            keys: session_keys.raw_keys().iter().map(|k| derive(k, purpose)).collect(),
        }
    }

    /// Every derived key, current first (HS256 verification tries each).
    pub fn all(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// `value` as JSON, encrypted and authenticated with the current key: base64url text.
    pub fn seal<T: Serialize>(&self, value: &T) -> String {
        let mut data = serde_json::to_vec(value).expect("sealed values serialize");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let key = aead_key(&self.keys[0]);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(self.purpose.label()),
            &mut data,
        )
        .expect("AES-GCM seals any message shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens what [`seal`](Self::seal) made with any of the keys. Errors: not base64url, no key
    /// opens it (tampered, another server's, another purpose's), or not the JSON of `T`.
    pub fn open<T: DeserializeOwned>(&self, sealed: &str) -> Result<T, Unsealable> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Unsealable)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unsealable)?;
        for key in &self.keys {
            let mut buffer = ciphertext.to_vec();
            if let Ok(plain) = aead_key(key).open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.purpose.label()),
                &mut buffer,
            ) {
                return serde_json::from_slice(plain).map_err(|_| Unsealable);
            }
        }
        Err(Unsealable)
    }
}

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::generate_key_file;

    fn keys(file: &str, purpose: Purpose) -> PurposeKeys {
        PurposeKeys::new(&SessionKeys::parse(file).unwrap(), purpose)
    }

    #[test]
    fn a_sealed_value_opens_on_another_instance_with_the_same_file() {
        let file = generate_key_file();
        let sealed = keys(&file, Purpose::Code).seal(&("alice", 42));
        assert_eq!(
            keys(&file, Purpose::Code).open::<(String, i32)>(&sealed).unwrap(),
            ("alice".to_string(), 42)
        );
        assert!(!sealed.contains("alice"), "sealed values are encrypted");
    }

    #[test]
    fn another_purpose_another_key_file_or_a_flipped_byte_never_opens() {
        let file = generate_key_file();
        let sealed = keys(&file, Purpose::Code).seal(&"x");
        assert_eq!(
            keys(&file, Purpose::RefreshToken).open::<String>(&sealed),
            Err(Unsealable)
        );
        assert_eq!(
            keys(&generate_key_file(), Purpose::Code).open::<String>(&sealed),
            Err(Unsealable)
        );
        let code = keys(&file, Purpose::Code);
        for position in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                code.open::<String>(&tampered).is_err(),
                "tampering at {position} accepted"
            );
        }
    }

    #[test]
    fn rotation_keeps_values_sealed_with_the_old_key_open() {
        let old = generate_key_file();
        let sealed = keys(&old, Purpose::ClientId).seal(&"client");
        let rotated = format!("{}{old}", generate_key_file());
        assert_eq!(
            keys(&rotated, Purpose::ClientId).open::<String>(&sealed).unwrap(),
            "client"
        );
    }

    #[test]
    fn purposes_derive_distinct_keys() {
        let key = b"0123456789abcdef0123456789abcdef";
        assert_ne!(derive(key, Purpose::Code), derive(key, Purpose::AccessToken));
        assert_eq!(derive(key, Purpose::Code), derive(key, Purpose::Code));
    }
}

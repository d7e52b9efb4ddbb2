//! Who is calling ([`Principal`]) and why a credential was refused ([`AuthFailure`]): the two
//! values every other part of auth produces, and the only ones the rest of the server sees.

use std::sync::Arc;

use serde::Serialize;

use super::scope::ToolScope;

/// Who is calling; handed to every tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The token's name or the user's name: safe to log, never the secret.
    pub name: Arc<str>,
    /// The tools this credential may use.
    pub tools: ToolScope,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    ApiToken,
    User,
    /// An OAuth access token (issued by the built-in authorization server or the external IdP).
    OAuth,
}

impl PrincipalKind {
    pub fn label(self) -> &'static str {
        match self {
            PrincipalKind::ApiToken => "api_token",
            PrincipalKind::User => "user",
            PrincipalKind::OAuth => "oauth",
        }
    }
}

/// Why a credential was refused. The label goes to logs and metrics; clients get a generic 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no bearer token")]
    Missing,
    #[error("malformed credential")]
    Malformed,
    #[error("unknown token")]
    UnknownToken,
    #[error("credential expired")]
    Expired,
    #[error("bad session signature")]
    BadSignature,
    #[error("session revoked")]
    Revoked,
    #[error("user disabled")]
    Disabled,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("this kind of credential is not configured on this server")]
    NotConfigured,
    /// An OAuth access token issued for another resource (RFC 8707 audience).
    #[error("token issued for another resource")]
    WrongAudience,
    /// An OAuth access token from an issuer this server does not trust.
    #[error("token from another issuer")]
    WrongIssuer,
    /// An OAuth access token signed with a key the issuer does not (or no longer) publish.
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// A valid OAuth access token that grants none of this server's scopes (RFC 6750 §3.1: 403).
    #[error("token grants no scope of this server")]
    InsufficientScope,
    /// Not the credential's fault: every password-check slot stayed busy (`password_checks`).
    #[error("too many password checks in progress")]
    Busy,
}

impl AuthFailure {
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::Expired => "expired",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Disabled => "disabled",
            AuthFailure::BadCredentials => "bad_credentials",
            AuthFailure::NotConfigured => "not_configured",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::Busy => "busy",
        }
    }
}

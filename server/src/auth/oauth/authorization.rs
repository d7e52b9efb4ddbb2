//! `/oauth/authorize`: the authorization endpoint (OAuth 2.1 §4.1.1–4.1.2), code + PKCE S256 only.
//!
//! `GET` checks the request and shows the sign-in page; `POST` is that page's form. The request
//! is checked in the order that keeps the endpoint from being an open redirector (OAuth 2.1
//! §7.12.1): until the client id opens and the redirect URI matches one it registered, every error
//! is a page *here*, never a redirect; only after that are errors sent back to the client
//! (`error`, `state`, `iss`). What the POST needs from the GET is sealed into the form
//! (`keys::Purpose::LoginRequest`, ten minutes), so the two may be served by different instances.
//!
//! A successful sign-in redirects with a code (RFC 9207 `iss` included) that seals the client,
//! redirect URI, PKCE challenge, user, password version and granted scope (`tokens.rs`).

use std::sync::Arc;

use chrono::Utc;
use poem::{Endpoint, IntoResponse, Request, Response, http::Method, http::StatusCode};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use super::{
    authorization_server::AuthorizationServer,
    client_registration::Client,
    keys::{Purpose, PurposeKeys},
    login::{LoginPage, csrf_cookie, csrf_from_cookies, error_page, html},
    params::Params,
    tokens::CodeGrant,
};
use crate::{auth::principal::AuthFailure, http_error::read_body_limited};

/// How long the sign-in form stays valid, in seconds.
const FORM_TTL_SECS: i64 = 600;

/// The authorization request, carried sealed through the sign-in form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// Client digest.
    c: String,
    /// The redirect URI the request named (or the only registered one).
    r: String,
    /// Whether the request named it: the token request must then name it too (OAuth 2.1 §4.1.3).
    #[serde(default)]
    rq: bool,
    /// PKCE S256 challenge.
    ch: String,
    /// The client's `state`, returned as given.
    st: Option<String>,
    /// The requested scope.
    sc: String,
    /// CSRF nonce, equal to the cookie's.
    n: String,
    /// Form expiry, Unix seconds.
    exp: i64,
}

/// `GET` and `POST /oauth/authorize`.
pub struct Authorize {
    pub server: Arc<AuthorizationServer>,
}

impl Endpoint for Authorize {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        Ok(if request.method() == Method::POST {
            self.sign_in(&mut request).await
        } else {
            self.start(&request)
        })
    }
}

/// A redirect to the client with `params` added to its redirect URI's query (OAuth 2.1 §4.1.2).
fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        // Registered URIs were parsed at registration: this cannot happen, and must not redirect.
        return error_page(StatusCode::BAD_REQUEST, "The application's redirect URI is not valid.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = url.as_str().parse() {
        headers.insert("location", location);
    }
    headers.insert("cache-control", "no-store".parse().expect("static header"));
    headers.insert("referrer-policy", "no-referrer".parse().expect("static header"));
    response
}

/// A PKCE S256 challenge is base64url of a SHA-256: 43 characters of the unreserved set (RFC 7636 §4.2).
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Authorize {
    /// `GET`: check the request; show the sign-in page.
    fn start(&self, request: &Request) -> Response {
        let server = &self.server;
        let params = match Params::parse(request.uri().query().unwrap_or_default().as_bytes()) {
            Ok(params) => params,
            Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.0),
        };
        let Ok(keys) = server.session_keys() else {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is not configured on this server.",
            );
        };
        // 1. Who asks, and where the answer may go: errors stay on this page.
        let Some(client) = params.get("client_id").and_then(|id| Client::open(&keys, id)) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The application is not registered with this server (unknown client_id). Remove the server from the application and add it again.",
            );
        };
        let Some(redirect_uri) = client.redirect_uri(params.get("redirect_uri")) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The redirect_uri is not one the application registered; nothing is sent to it.",
            );
        };
        // 2. Everything else: errors go back to the client.
        let state = params.get("state");
        let fail = |error: &str, description: &str| {
            let mut answer = vec![("error", error), ("error_description", description)];
            if let Some(state) = state {
                answer.push(("state", state));
            }
            answer.push(("iss", server.issuer()));
            redirect(&redirect_uri, &answer)
        };
        if params.get("response_type") != Some("code") {
            return fail("unsupported_response_type", "only response_type=code is supported");
        }
        let Some(challenge) = params.get("code_challenge") else {
            return fail("invalid_request", "code_challenge is required (PKCE, OAuth 2.1 §4.1.1)");
        };
        if params.get("code_challenge_method") != Some("S256") {
            return fail("invalid_request", "code_challenge_method must be S256");
        }
        if !is_s256_challenge(challenge) {
            return fail(
                "invalid_request",
                "code_challenge is not an S256 challenge (43 base64url characters)",
            );
        }
        if let Some(resource) = params.get("resource")
            && resource != server.resource()
        {
            return fail("invalid_target", "this server issues tokens only for its own resource");
        }
        let scope = params
            .get("scope")
            .map(str::to_string)
            .unwrap_or_else(|| server.scopes().default_scope());
        if server.scopes().tools(scope.split_ascii_whitespace()).is_none() {
            return fail(
                "invalid_scope",
                "none of the requested scopes is offered by this server",
            );
        }
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let pending = PendingAuthorization {
            c: client.digest(),
            r: redirect_uri.clone(),
            rq: params.get("redirect_uri").is_some(),
            ch: challenge.to_string(),
            st: state.map(str::to_string),
            sc: scope,
            n: nonce.clone(),
            exp: Utc::now().timestamp() + FORM_TTL_SECS,
        };
        let sealed = PurposeKeys::new(&keys, Purpose::LoginRequest).seal(&pending);
        let mut response = self.page(&pending, &sealed, None, StatusCode::OK);
        if let Ok(cookie) = csrf_cookie(&nonce, server.secure_cookies()).parse() {
            response.headers_mut().insert("set-cookie", cookie);
        }
        response
    }

    fn page(
        &self,
        pending: &PendingAuthorization,
        sealed: &str,
        notice: Option<&'static str>,
        status: StatusCode,
    ) -> Response {
        let destination = Url::parse(&pending.r)
            .ok()
            .map(|url| match url.host_str() {
                Some(host) => host.to_string(),
                None => format!("{}:", url.scheme()),
            })
            .unwrap_or_default();
        html(
            status,
            LoginPage {
                title: self.server.login_title(),
                destination: &destination,
                request: sealed,
                notice,
            }
            .render(),
        )
    }

    /// `POST`: the sign-in form.
    async fn sign_in(&self, request: &mut Request) -> Response {
        let server = self.server.clone();
        let form_type = request
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if form_type != Some(true) {
            return error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The sign-in form must be posted as a form.",
            );
        }
        let body = match read_body_limited(request, server.max_body()).await {
            Ok(body) => body,
            Err(error) => return error.into_response(),
        };
        let params = match Params::parse(&body) {
            Ok(params) => params,
            Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.0),
        };
        let Ok(keys) = server.session_keys() else {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is not configured on this server.",
            );
        };
        let expired = "This sign-in form expired or was altered. Start again from your application.";
        let Some(sealed) = params.get("request") else {
            return error_page(StatusCode::BAD_REQUEST, expired);
        };
        let Ok(pending) = PurposeKeys::new(&keys, Purpose::LoginRequest).open::<PendingAuthorization>(sealed) else {
            return error_page(StatusCode::BAD_REQUEST, expired);
        };
        if pending.exp <= Utc::now().timestamp() {
            return error_page(StatusCode::BAD_REQUEST, expired);
        }
        let cookie_matches = csrf_from_cookies(request.header("cookie"))
            .is_some_and(|cookie| bool::from(cookie.as_bytes().ct_eq(pending.n.as_bytes())));
        if !cookie_matches {
            tracing::warn!("oauth sign-in form posted without the cookie of the page that showed it");
            return error_page(
                StatusCode::FORBIDDEN,
                "This form was not sent from the sign-in page this browser opened (the sign-in cookie is missing or different). Start again from your application.",
            );
        }
        let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
            return self.page(
                &pending,
                sealed,
                Some("Enter your username and password."),
                StatusCode::BAD_REQUEST,
            );
        };
        let (username, password) = (username.to_string(), password.to_string());
        let ip = server.gate().client_address(request);
        let attempt = match server.gate().limiter().begin_login(ip) {
            Ok(attempt) => attempt,
            Err(retry_after) => {
                let mut response = self.page(
                    &pending,
                    sealed,
                    Some("Too many failed sign-ins from your address. Wait a few minutes and try again."),
                    StatusCode::TOO_MANY_REQUESTS,
                );
                if let Ok(value) = retry_after.as_secs().max(1).to_string().parse() {
                    response.headers_mut().insert("retry-after", value);
                }
                return response;
            }
        };
        let users = match server.users() {
            Ok(users) => users,
            Err(error) => return error.into_response(),
        };
        let checked = server
            .gate()
            .password_checks()
            .run(move || {
                users
                    .verify_password(&username, &password)
                    .map(|u| (u.username.clone(), u.version.clone(), u.tools.clone()))
            })
            .await;
        let (user, version, tools) = match checked {
            Ok(user) => {
                attempt.passed();
                user
            }
            Err(AuthFailure::Busy) => {
                attempt.passed();
                metrics::counter!("pgmcp_logins_total", "outcome" => "busy").increment(1);
                return self.page(
                    &pending,
                    sealed,
                    Some("The server is busy signing others in. Try again in a moment."),
                    StatusCode::SERVICE_UNAVAILABLE,
                );
            }
            Err(failure) => {
                // A lockout that starts now shows at the next attempt, as 429.
                let _verdict = attempt.failed();
                metrics::counter!("pgmcp_logins_total", "outcome" => "failure").increment(1);
                tracing::warn!(client.address = %ip, error.r#type = failure.label(), "oauth sign-in refused");
                return self.page(
                    &pending,
                    sealed,
                    Some("Wrong username or password."),
                    StatusCode::UNAUTHORIZED,
                );
            }
        };
        let state = pending.st.as_deref();
        let mut answer: Vec<(&str, &str)> = Vec::new();
        let Some(scope) = server.scopes().grant(&pending.sc, &tools) else {
            answer.push(("error", "access_denied"));
            answer.push(("error_description", "this user may use none of the requested tools"));
            if let Some(state) = state {
                answer.push(("state", state));
            }
            answer.push(("iss", server.issuer()));
            return redirect(&pending.r, &answer);
        };
        let code = CodeGrant::new(&server, &pending.c, &pending.r, &pending.ch, &user, &version, scope)
            .redirect_uri_named(pending.rq)
            .seal(&keys);
        metrics::counter!("pgmcp_logins_total", "outcome" => "success").increment(1);
        tracing::info!(user.name = %user, "oauth sign-in");
        answer.push(("code", code.as_str()));
        if let Some(state) = state {
            answer.push(("state", state));
        }
        answer.push(("iss", server.issuer()));
        let mut response = redirect(&pending.r, &answer);
        if let Ok(cookie) = format!(
            "{}=; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=0",
            super::login::CSRF_COOKIE
        )
        .parse()
        {
            response.headers_mut().insert("set-cookie", cookie);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_s256_challenges_pass() {
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("short"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }

    #[test]
    fn a_redirect_adds_parameters_to_the_registered_query() {
        let response = redirect("https://app.example.com/cb?x=1", &[("code", "a b"), ("state", "s&t")]);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()["location"],
            "https://app.example.com/cb?x=1&code=a+b&state=s%26t"
        );
    }
}

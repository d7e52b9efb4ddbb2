//! The built-in authorization server, step by step over plain HTTP, with every step sent to the
//! *other* of two instances that share nothing but the auth files — as a round-robin balancer
//! would — and each negative case the issue lists: PKCE mismatch, code replay, an unregistered
//! redirect URI, open-redirect attempts, CSRF on the sign-in form, refresh after a password change,
//! a token for another resource.

mod common;
mod oauth_support;

use common::{Fixture, PASSWORD};
use oauth_support::*;
use postgres_mcp::auth::admin;
use reqwest::StatusCode;
use serde_json::Value;

const BUILTIN: &str = "auth:\n  oauth:\n    mode: builtin\n";

/// Two instances behind one public URL (A's address): what one issues, the other redeems.
struct Pair {
    a: postgres_mcp::server::RunningServer,
    b: postgres_mcp::server::RunningServer,
    base_a: String,
    base_b: String,
    /// The issuer: A's address.
    public: String,
    resource: String,
}

async fn pair(fixture: &Fixture) -> Pair {
    pair_for(fixture, "as", None, None).await
}

/// Two instances; `public` overrides the public URL (default: A's address), `resource` the
/// resource identifier (default: public URL + /mcp).
async fn pair_for(fixture: &Fixture, name: &str, public: Option<&str>, resource: Option<&str>) -> Pair {
    let (port_a, port_b) = (free_port(), free_port());
    let public = public.map_or_else(|| format!("http://127.0.0.1:{port_a}"), str::to_string);
    let extra = match resource {
        Some(resource) => format!("{BUILTIN}    resource: {resource}\n"),
        None => BUILTIN.to_string(),
    };
    let a = start_at(fixture, &format!("{name}-a"), port_a, &public, &extra).await;
    let b = start_at(fixture, &format!("{name}-b"), port_b, &public, &extra).await;
    Pair {
        a,
        b,
        base_a: format!("http://127.0.0.1:{port_a}"),
        base_b: format!("http://127.0.0.1:{port_b}"),
        resource: resource.map_or_else(|| format!("{public}/mcp"), str::to_string),
        public,
    }
}

/// Register on A, show the page on B, sign in on A, redeem on B: `(client_id, verifier, code)`.
async fn code_via_both(pair: &Pair, seed: &str) -> (String, String, String) {
    let client_id = register(&pair.base_a, &[REDIRECT]).await;
    let (verifier, challenge) = pkce(seed);
    let page = authorize(
        &pair.base_b,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:49152/callback"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
            ("scope", "mcp"),
            ("resource", &pair.resource),
        ],
    )
    .await;
    let (request, cookie) = page_and_cookie(page).await;
    let signed_in = sign_in(&pair.base_a, &request, Some(&cookie), "alice", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let location = signed_in.headers()["location"].to_str().unwrap().to_string();
    // RFC 8252 §7.3: the loopback port of the request, not the registered one.
    assert!(location.starts_with("http://127.0.0.1:49152/callback?"), "{location}");
    let params = location_params(&signed_in);
    assert_eq!(param(&params, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&params, "iss").as_deref(), Some(pair.public.as_str()), "RFC 9207");
    (client_id, verifier, param(&params, "code").unwrap())
}

async fn redeem(base: &str, client_id: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:49152/callback"),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn every_step_is_served_by_whichever_instance_gets_it() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;

    // Discovery: the 401 names the metadata, the metadata names the server.
    let refused = tools_list(&pair.base_b, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", pair.base_a);
    assert!(
        challenge(&refused).contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{}",
        challenge(&refused)
    );
    let prm: Value = http()
        .get(format!("{}/.well-known/oauth-protected-resource/mcp", pair.base_b))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], format!("{}/mcp", pair.base_a));
    assert_eq!(prm["authorization_servers"][0], pair.base_a);
    let asm: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", pair.base_a))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], pair.base_a);
    assert_eq!(asm["code_challenge_methods_supported"], serde_json::json!(["S256"]));

    let (client_id, verifier, code) = code_via_both(&pair, "every-step").await;
    let (status, tokens) = redeem(&pair.base_b, &client_id, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp");
    let access = tokens["access_token"].as_str().unwrap();
    for base in [&pair.base_a, &pair.base_b] {
        let listed = tools_list(base, Some(access)).await;
        assert_eq!(listed.status(), StatusCode::OK);
    }

    // Refresh on A, rotation: the new refresh token works (on B), the old one is refused on A,
    // which saw it used.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = token(
        &pair.base_a,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let rotated = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh);
    let (status, again) = token(
        &pair.base_a,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    let (status, _) = token(
        &pair.base_b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // API tokens keep working beside OAuth.
    assert_eq!(
        tools_list(&pair.base_b, Some(&fixture.token)).await.status(),
        StatusCode::OK
    );
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

#[tokio::test]
async fn a_code_needs_its_pkce_verifier_and_is_redeemed_once_per_instance() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    let (client_id, verifier, code) = code_via_both(&pair, "pkce-replay").await;
    let (wrong, _) = pkce("another-verifier");
    let (status, body) = redeem(&pair.base_a, &client_id, &code, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body["error_description"].as_str().unwrap().contains("PKCE"), "{body}");
    // The right verifier on A works once; a replay on A is refused.
    assert_eq!(
        redeem(&pair.base_a, &client_id, &code, &verifier).await.0,
        StatusCode::OK
    );
    let (status, body) = redeem(&pair.base_a, &client_id, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    // Another client cannot redeem it even with the verifier.
    let other_client = register(&pair.base_b, &[REDIRECT]).await;
    let (status, body) = redeem(&pair.base_b, &other_client, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

/// A refused token request consumes nothing: the grant still works for a correct retry (and is
/// consumed then).
#[tokio::test]
async fn a_refused_token_request_leaves_the_code_or_refresh_token_usable() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    let (client_id, verifier, code) = code_via_both(&pair, "refusals").await;
    let code_request = |redirect_uri: Option<&'static str>, verifier: String| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("client_id", client_id.clone()),
            ("code_verifier", verifier),
        ];
        if let Some(redirect_uri) = redirect_uri {
            form.push(("redirect_uri", redirect_uri.to_string()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>, base: String| async move {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token(&base, &form).await
    };
    // OAuth 2.1 §4.1.3: the authorization request named redirect_uri, so the token request must.
    let (status, body) = send(code_request(None, verifier.clone()), pair.base_a.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri is required"),
        "{body}"
    );
    let (status, body) = send(
        code_request(Some("http://127.0.0.1:49152/other"), verifier.clone()),
        pair.base_a.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (wrong, _) = pkce("not-the-verifier");
    let (status, _) = send(
        code_request(Some("http://127.0.0.1:49152/callback"), wrong),
        pair.base_a.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // None of those consumed the code.
    let (status, tokens) = redeem(&pair.base_a, &client_id, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh_with = |scope: Option<&'static str>, refresh: String| {
        let mut form = vec![("grant_type", "refresh_token"), ("client_id", client_id.as_str())];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let form: Vec<(&str, String)> = form
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .chain([("refresh_token", refresh)])
            .collect();
        form
    };
    // A wider scope is refused (OAuth 2.1 §4.3.1) without consuming the refresh token.
    let (status, body) = send(refresh_with(Some("mcp admin"), refresh.clone()), pair.base_a.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = send(refresh_with(None, refresh.clone()), pair.base_a.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp");
    // Once accepted, it is rotated: a reuse is refused.
    let (status, body) = send(refresh_with(None, refresh), pair.base_a.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

#[tokio::test]
async fn unregistered_and_open_redirect_uris_get_a_page_never_a_redirect() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    let client_id = register(&pair.base_a, &["https://app.example.com/cb"]).await;
    let (_, challenge) = pkce("redirects");
    for redirect_uri in [
        "https://evil.example.com/cb",
        "https://app.example.com/cb/../../evil",
        "https://app.example.com/cb?next=https://evil.example.com",
        "https://app.example.com.evil.example.com/cb",
        "https://app.example.com@evil.example.com/cb",
        "https://app.example.com/cb#x",
        "//evil.example.com/cb",
        "javascript:alert(1)",
    ] {
        let response = authorize(
            &pair.base_b,
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", redirect_uri),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect_uri}");
        assert!(
            response.headers().get("location").is_none(),
            "{redirect_uri} was redirected to"
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains("evil"), "the page must not reflect the request: {body}");
    }
    // A forged client id is not a registration either.
    let response = authorize(
        &pair.base_a,
        &[
            ("response_type", "code"),
            ("client_id", "pgmcc_forged"),
            ("redirect_uri", "https://evil.example.com/"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    // Registration refuses what can never be a safe redirect.
    for bad in [
        "http://evil.example.com/cb",
        "javascript:alert(1)",
        "https://a.example.com/#frag",
    ] {
        let response = http()
            .post(format!("{}/oauth/register", pair.base_a))
            .json(&serde_json::json!({"redirect_uris": [bad]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_redirect_uri");
    }
    // With a registered redirect URI, protocol errors go back to it (PKCE is required).
    let response = authorize(
        &pair.base_a,
        &[("response_type", "code"), ("client_id", &client_id), ("state", "s")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let params = location_params(&response);
    assert_eq!(param(&params, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&params, "state").as_deref(), Some("s"));
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

#[tokio::test]
async fn the_sign_in_form_needs_the_cookie_of_the_page_that_showed_it() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    let client_id = register(&pair.base_a, &[REDIRECT]).await;
    let (_, challenge) = pkce("csrf");
    let params = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (request, cookie) = page_and_cookie(authorize(&pair.base_a, &params).await).await;
    // A cross-site POST carries no cookie (SameSite=Strict), or another page's.
    let no_cookie = sign_in(&pair.base_b, &request, None, "alice", PASSWORD).await;
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);
    assert!(no_cookie.headers().get("location").is_none());
    let (_, other_cookie) = page_and_cookie(authorize(&pair.base_a, &params).await).await;
    assert_ne!(other_cookie, cookie);
    let wrong_cookie = sign_in(&pair.base_b, &request, Some(&other_cookie), "alice", PASSWORD).await;
    assert_eq!(wrong_cookie.status(), StatusCode::FORBIDDEN);
    // A foreign Origin is refused before the form is read.
    let foreign = http()
        .post(format!("{}/oauth/authorize", pair.base_a))
        .header("origin", "https://evil.example.com")
        .header("cookie", &cookie)
        .form(&[
            ("request", request.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    // A wrong password re-shows the form without echoing what was typed.
    let wrong = sign_in(&pair.base_b, &request, Some(&cookie), "alice", "not-the-password-xyz").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body = wrong.text().await.unwrap();
    assert!(body.contains("Wrong username or password"));
    assert!(!body.contains("not-the-password-xyz") && !body.contains("value=\"alice\""));
    // The right cookie and password pass.
    let ok = sign_in(&pair.base_b, &request, Some(&cookie), "alice", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

#[tokio::test]
async fn a_password_change_ends_access_and_refresh_tokens_on_every_instance() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    let (client_id, verifier, code) = code_via_both(&pair, "password-change").await;
    let (_, tokens) = redeem(&pair.base_b, &client_id, &code, &verifier).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(tools_list(&pair.base_a, Some(&access)).await.status(), StatusCode::OK);

    admin::user_passwd(&fixture.path("users.yaml"), "alice", "a brand new password", 4).unwrap();
    for base in [&pair.base_a, &pair.base_b] {
        let revoked = common::eventually(10, || async {
            tools_list(base, Some(&access)).await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(
            revoked,
            "{base} still accepts the access token after the password change"
        );
    }
    let refused = tools_list(&pair.base_a, Some(&access)).await;
    assert!(challenge(&refused).contains("error=\"invalid_token\""));
    let (status, body) = token(
        &pair.base_b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    pair.a.stop().await.unwrap();
    pair.b.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_are_only_for_this_resource() {
    let fixture = Fixture::new();
    let pair = pair(&fixture).await;
    // Asking for another resource is refused at the token endpoint (RFC 8707 invalid_target)...
    let (client_id, verifier, code) = code_via_both(&pair, "other-resource").await;
    let (status, body) = token(
        &pair.base_a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
            ("resource", "https://other.example.com/mcp"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );

    // ...and a token that the same issuer, with the same key, made for another resource is refused
    // here: the audience is checked, not just the signature.
    let elsewhere = pair_for(
        &fixture,
        "elsewhere",
        Some(&pair.public),
        Some("https://other.example.com/mcp"),
    )
    .await;
    let (client_id, verifier, code) = code_via_both(&elsewhere, "elsewhere").await;
    let (status, tokens) = redeem(&elsewhere.base_a, &client_id, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let foreign = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        tools_list(&elsewhere.base_a, Some(foreign)).await.status(),
        StatusCode::OK
    );
    let refused = tools_list(&pair.base_a, Some(foreign)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&refused).contains("error=\"invalid_token\", error_description=\"wrong_audience\""),
        "{}",
        challenge(&refused)
    );
    for server in [pair.a, pair.b, elsewhere.a, elsewhere.b] {
        server.stop().await.unwrap();
    }
}

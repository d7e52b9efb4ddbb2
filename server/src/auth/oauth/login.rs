//! The sign-in page of the built-in authorization server: HTML, its headers, and the CSRF cookie.
//!
//! The page is a plain form, no script. What it shows is this server's own text (the configured
//! title, fixed messages) and the host the result will be sent to, HTML-escaped; nothing a request
//! sent is echoed back, and a failed sign-in never repeats the username or password.
//!
//! CSRF (OAuth 2.1 §7.7, RFC 6749 §10.12), without server state: the authorization request travels
//! through the form sealed (`keys::Purpose::LoginRequest`) together with a random nonce, and the same
//! nonce is set in a `SameSite=Strict; HttpOnly` cookie scoped to `/oauth`. A POST is accepted only if
//! the cookie and the sealed nonce agree (constant-time). A cross-site page can make a browser POST
//! the form, but cannot read or set our cookie, and a Strict cookie is not sent with its POST at all.
//! Whichever instance renders the page and whichever checks the POST, both hold the same key.

use poem::{IntoResponse, Response, http::StatusCode};

/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "pgmcp_oauth_csrf";

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the sign-in page shows besides the form.
pub struct LoginPage<'a> {
    pub title: &'a str,
    /// The host the result goes to (from the registered redirect URI), so the user can see which
    /// application asks.
    pub destination: &'a str,
    /// The sealed authorization request.
    pub request: &'a str,
    /// A fixed message after a failed attempt.
    pub notice: Option<&'static str>,
}

impl LoginPage<'_> {
    pub fn render(&self) -> String {
        let notice = self
            .notice
            .map(|n| format!("<p class=\"notice\" role=\"alert\">{}</p>", escape(n)))
            .unwrap_or_default();
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin-top:1rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1.5rem;padding:.6rem 1.2rem}}.notice{{color:#a00}}.dest{{color:#555;font-size:.9rem}}</style>
</head><body>
<h1>{title}</h1>
<p class="dest">An application at <strong>{destination}</strong> asks to use postgres-mcp as you.</p>
{notice}<form method="post" action="{action}" autocomplete="on">
<input type="hidden" name="request" value="{request}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>
"#,
            title = escape(self.title),
            destination = escape(self.destination),
            action = super::authorization_server::AUTHORIZE_PATH,
            request = escape(self.request),
        )
    }
}

/// An HTML page with the headers every page of the sign-in flow carries: no caching, no framing
/// (clickjacking), no referrer (the URL holds the authorization request), no script at all.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = body.with_status(status).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, value.parse().expect("static header value"));
    }
    response
}

/// A page that explains a request that cannot continue; `message` is this server's own text.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in problem</title></head><body>\n<h1>This sign-in cannot continue</h1>\n<p>{}</p>\n</body></html>\n",
            escape(message)
        ),
    )
}

/// The `Set-Cookie` value carrying the CSRF nonce.
pub fn csrf_cookie(nonce: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{CSRF_COOKIE}={nonce}; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=900{secure}")
}

/// The CSRF nonce from a `Cookie` header, if present.
pub fn csrf_from_cookies(header: Option<&str>) -> Option<&str> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        let page = LoginPage {
            title: "<script>x</script>",
            destination: "a\"b.example.com",
            request: "abc\"><img>",
            notice: Some("wrong username or password"),
        }
        .render();
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a&quot;b.example.com"));
        assert!(!page.contains("\"><img>"));
    }

    #[test]
    fn the_cookie_is_read_back_among_others() {
        assert_eq!(
            csrf_from_cookies(Some("a=1; pgmcp_oauth_csrf=n0nce; b=2")),
            Some("n0nce")
        );
        assert_eq!(csrf_from_cookies(Some("a=1")), None);
        assert_eq!(csrf_from_cookies(None), None);
        assert!(csrf_cookie("n", true).ends_with("; Secure"));
        assert!(csrf_cookie("n", false).contains("SameSite=Strict"));
    }
}

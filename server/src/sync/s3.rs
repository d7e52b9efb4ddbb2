//! `s3://bucket/key` sources: where the object lives, and SigV4-signed GETs with the credentials an
//! AWS SDK would find.
//!
//! Signing is reqsign's (Apache OpenDAL), a maintained SigV4 implementation that signs headers
//! (`Authorization`), not query strings: header-signed requests are what S3-compatible servers
//! (MinIO, R2, Ceph, moto in the tests) verify most consistently, and no signature can leak through
//! a logged URL. No AWS SDK: it would add hundreds of crates for one GET.
//!
//! Credentials, in the order the AWS SDKs use (each from the standard environment variables):
//! 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. the shared profile files (`AWS_PROFILE`, `~/.aws/credentials`), static keys only;
//! 3. web identity: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` -> STS
//!    `AssumeRoleWithWebIdentity` (EKS IRSA); our own small provider, because it must honour
//!    `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` like the SDKs do (MinIO has its own STS);
//! 4. container credentials: `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI` (EKS Pod
//!    Identity, ECS task roles);
//! 5. EC2 instance metadata (IMDSv2, the instance profile's role: Compose on EC2), last and with
//!    1 s connect / 2 s request timeouts, so that outside EC2 finding nothing costs at most about
//!    a second ([`super::imds`]). `AWS_EC2_METADATA_DISABLED=true` skips it.
//!
//! Temporary credentials are refreshed by reqsign's signer before they expire. S3 requests
//! themselves use a 10 s connect and a 60 s read timeout (per read, not per body).
//!
//! Addressing: with `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (MinIO, R2, Ceph, moto), path style
//! `ENDPOINT/bucket/key`; on AWS, virtual-hosted style `https://bucket.s3.REGION.amazonaws.com/key`
//! (path style for bucket names that cannot be host names, such as names with dots over TLS).
//! Region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.

use std::{collections::HashMap, fmt, path::PathBuf};

use bytes::Bytes;
use reqsign_aws_v4::{
    Credential, ECSCredentialProvider, EnvCredentialProvider, ProfileCredentialProvider, RequestSigner,
};
use reqsign_core::{Context, ProvideCredential, ProvideCredentialDyn, Signer, StaticEnv};

use super::{
    error::{InvalidItem, describe_reqwest_error, error_chain},
    reqsign_io::{ReqwestSend, TokioFileRead},
};

/// An object in a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/key` (the key may contain `/`).
    pub fn parse(url: &str) -> Result<S3Location, InvalidItem> {
        let invalid = |problem: &str| InvalidItem(format!("{url}: {problem}"));
        let rest = url.strip_prefix("s3://").ok_or_else(|| invalid("not an s3:// URL"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| invalid("expected s3://bucket/key"))?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid("expected s3://bucket/key"));
        }
        if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(invalid(&format!("`{bucket}` is not a valid bucket name")));
        }
        // URLs resolve `.` and `..` segments, which would address another key (or bucket).
        if key.split('/').any(|segment| segment == "." || segment == "..") {
            return Err(invalid("keys with `.` or `..` path segments are not supported"));
        }
        if key.contains('?') || key.contains('#') {
            // Legal in S3, but almost always a pasted presigned URL: use it as https:// instead.
            return Err(invalid(
                "`?` or `#` in a key is not supported (for a pre-signed URL use the https:// URL itself)",
            ));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Region, endpoint and signer for every S3 item of a run.
pub struct S3Access {
    region: String,
    /// A custom endpoint (S3-compatible storage): path-style addressing.
    endpoint: Option<String>,
    signer: Signer<Credential>,
}

impl fmt::Debug for S3Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Access")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
     (plus AWS_SESSION_TOKEN for temporary keys), or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE \
     (IRSA), or provide container credentials (EKS Pod Identity, ECS), or run on EC2 with an \
     instance profile (the metadata service did not answer within 1 s; in a container on a bridge \
     network set the instance's metadata hop limit to 2). A public or pre-signed object can be \
     fetched by its https:// URL instead";

fn non_empty<'a>(env: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl S3Access {
    /// Reads the standard AWS variables from `env` (the process environment in the CLI; tests pass
    /// their own). Credentials are only looked up when the first request is signed.
    pub fn from_env(env: &HashMap<String, String>, client: reqwest::Client) -> S3Access {
        // `AWS_ACCESS_KEY_ID=` (Compose's `${VAR:-}`, an empty Secret key) means "not set", as in
        // the SDKs; passed on, it would sign with an empty key instead of trying the next source.
        let env: HashMap<String, String> = env
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(key, value)| (key.clone(), value.trim().to_string()))
            .collect();
        let env = &env;
        let region = non_empty(env, "AWS_REGION")
            .or_else(|| non_empty(env, "AWS_DEFAULT_REGION"))
            .unwrap_or("us-east-1")
            .to_string();
        let endpoint = non_empty(env, "AWS_ENDPOINT_URL_S3")
            .or_else(|| non_empty(env, "AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_string());
        let sts_endpoint = non_empty(env, "AWS_ENDPOINT_URL_STS")
            .or_else(|| non_empty(env, "AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://sts.{region}.{}", aws_domain(&region)));
        let context = Context::new()
            .with_file_read(TokioFileRead)
            .with_http_send(ReqwestSend(client.clone()))
            .with_env(StaticEnv {
                home_dir: non_empty(env, "HOME").map(PathBuf::from),
                envs: env.clone(),
            });
        let chain = Chain(vec![
            Box::new(EnvCredentialProvider::new()),
            Box::new(ProfileCredentialProvider::new()),
            Box::new(WebIdentity {
                sts_endpoint,
                client: client.clone(),
            }),
            Box::new(ECSCredentialProvider::new()),
            Box::new(super::imds::InstanceMetadata::new(env)),
        ]);
        let signer = Signer::new(context, chain, RequestSigner::new("s3", &region));
        S3Access {
            region,
            endpoint,
            signer,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The HTTP(S) URL of an object.
    pub fn object_url(&self, location: &S3Location) -> String {
        let key = encode_key(&location.key);
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", location.bucket),
            None => {
                let domain = aws_domain(&self.region);
                if is_dns_compatible(&location.bucket) {
                    format!("https://{}.s3.{}.{domain}/{key}", location.bucket, self.region)
                } else {
                    format!("https://s3.{}.{domain}/{}/{key}", self.region, location.bucket)
                }
            }
        }
    }

    /// Signs a request in place (adds `Authorization`, `x-amz-date`, `x-amz-content-sha256` and,
    /// for temporary credentials, `x-amz-security-token`).
    pub async fn sign(&self, parts: &mut http::request::Parts) -> Result<(), reqsign_core::Error> {
        self.signer.sign(parts, None).await
    }

    /// A signed request ready to send with `client`: used by `sync` for GETs, and by the tests to
    /// create buckets and upload objects with the same signing code.
    pub async fn signed_request(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<reqwest::Request, String> {
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder
            .body(())
            .map_err(|e| format!("invalid request: {e}"))?
            .into_parts();
        self.sign(&mut parts).await.map_err(|e| describe_signing_error(&e))?;
        reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| format!("invalid request: {}", e.without_url()))
    }
}

/// A signing failure as one line: reqsign's message plus its causes (never credentials: reqsign
/// redacts them and our providers do not put them in errors).
pub fn describe_signing_error(error: &reqsign_core::Error) -> String {
    format!("cannot sign the S3 request: {}", error_chain(error))
}

fn aws_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Whether a bucket name can be the first label of a TLS host name.
fn is_dns_compatible(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// URI-encodes an object key the way SigV4 canonicalises S3 paths: everything but unreserved
/// characters and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Turns an S3 (or STS) error response into one line: status, error code, message, and a hint for
/// the mistakes operators make (wrong region, wrong keys).
pub fn describe_error(status: reqwest::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let code = xml_text(&text, "Code");
    let message = xml_text(&text, "Message");
    let mut line = format!("HTTP {status}");
    if let Some(code) = &code {
        line.push_str(&format!(": {code}"));
    }
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        line.push_str(&format!(": {message}"));
    }
    let region = headers
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| xml_text(&text, "Region"));
    match code.as_deref() {
        Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException") => {
            if let Some(region) = region {
                line.push_str(&format!(" (the bucket is in {region}: set AWS_REGION={region})"));
            }
        }
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken") => {
            line.push_str(" (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)");
        }
        _ => {}
    }
    line
}

/// The text of the first `<tag>…</tag>` in a small XML document, entities decoded. S3 and STS
/// responses are flat enough that this is all the XML we need.
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The credential sources in order. Unlike reqsign's own chain, a source that is configured but
/// fails (an unreadable token file, STS refusing the role) stops the search with its error, as
/// the AWS SDKs do: falling through would turn "your IRSA setup is broken" into "no credentials".
/// Finding nothing at all is an error that says where credentials may come from.
#[derive(Debug)]
struct Chain(Vec<Box<dyn ProvideCredentialDyn<Credential = Credential>>>);

impl ProvideCredential for Chain {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        for provider in &self.0 {
            if let Some(credential) = provider.provide_credential_dyn(ctx).await? {
                return Ok(Some(credential));
            }
        }
        Err(reqsign_core::Error::credential_invalid(NO_CREDENTIALS))
    }
}

/// STS `AssumeRoleWithWebIdentity` with the token file Kubernetes projects (IRSA). The call is
/// unsigned: the token is the credential.
struct WebIdentity {
    sts_endpoint: String,
    client: reqwest::Client,
}

impl fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebIdentity")
            .field("sts_endpoint", &self.sts_endpoint)
            .finish()
    }
}

impl ProvideCredential for WebIdentity {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        use reqsign_core::Error;
        let role = ctx.env_var("AWS_ROLE_ARN").filter(|v| !v.is_empty());
        let token_file = ctx.env_var("AWS_WEB_IDENTITY_TOKEN_FILE").filter(|v| !v.is_empty());
        let (role, token_file) = match (role, token_file) {
            (None, None) => return Ok(None),
            (Some(role), Some(file)) => (role, file),
            (None, Some(_)) => {
                return Err(Error::config_invalid(
                    "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
                ));
            }
            (Some(_), None) => {
                return Err(Error::config_invalid(
                    "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not (assuming a role with other credentials is not supported)",
                ));
            }
        };
        let token = tokio::fs::read_to_string(&token_file)
            .await
            .map_err(|e| Error::config_invalid(format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}")))?;
        let session = ctx
            .env_var("AWS_ROLE_SESSION_NAME")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "postgres-mcp-sync".into());
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role.as_str()),
            ("RoleSessionName", session.as_str()),
            ("WebIdentityToken", token.trim()),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let failed =
            |what: String| Error::credential_invalid(format!("STS AssumeRoleWithWebIdentity for {role}: {what}"));
        let response = self
            .client
            .post(format!("{}/", self.sts_endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(describe_reqwest_error(e)).set_retryable(true))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| failed(describe_reqwest_error(e)))?;
        if !status.is_success() {
            return Err(failed(describe_error(status, &headers, text.as_bytes())));
        }
        let field = |name: &str| xml_text(&text, name).ok_or_else(|| failed(format!("no {name} in the response")));
        let expires_in = match xml_text(&text, "Expiration") {
            Some(when) => Some(
                when.parse()
                    .map_err(|_| failed(format!("cannot parse Expiration `{when}`")))?,
            ),
            None => None,
        };
        Ok(Some(Credential {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expires_in,
        }))
    }
}

/// application/x-www-form-urlencoded value encoding.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(env: &[(&str, &str)]) -> S3Access {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Access::from_env(&env, reqwest::Client::new())
    }

    #[test]
    fn locations_parse_and_reject_ambiguous_keys() {
        let loc = S3Location::parse("s3://my-bucket/a/b c.db").unwrap();
        assert_eq!((loc.bucket.as_str(), loc.key.as_str()), ("my-bucket", "a/b c.db"));
        assert!(S3Location::parse("s3://bucket").is_err());
        assert!(S3Location::parse("s3://bucket/").is_err());
        assert!(S3Location::parse("s3://b/a/../c").is_err());
        assert!(S3Location::parse("s3://evil.com:80@x/k").is_err());
        assert!(S3Location::parse("s3://b/k?X-Amz-Signature=1").is_err());
    }

    #[test]
    fn aws_uses_virtual_hosts_and_custom_endpoints_use_paths() {
        crate::tls::install_crypto_provider();
        let loc = S3Location::parse("s3://my-bucket/dir/kb v2.db").unwrap();
        let aws = access(&[("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(
            aws.object_url(&loc),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/dir/kb%20v2.db"
        );
        let dotted = S3Location::parse("s3://my.bucket/k").unwrap();
        assert_eq!(
            aws.object_url(&dotted),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/k"
        );
        let minio = access(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"), ("AWS_REGION", "x")]);
        assert_eq!(minio.object_url(&loc), "http://127.0.0.1:9000/my-bucket/dir/kb%20v2.db");
        assert_eq!(minio.region(), "x");
    }

    #[test]
    fn errors_name_the_s3_code_and_hint_at_the_fix() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
        let line = describe_error(reqwest::StatusCode::FORBIDDEN, &http::HeaderMap::new(), body);
        assert!(
            line.starts_with("HTTP 403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id"),
            "{line}"
        );
        assert!(line.contains("AWS_SECRET_ACCESS_KEY"), "{line}");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-amz-bucket-region", "eu-central-1".parse().unwrap());
        let moved = describe_error(
            reqwest::StatusCode::MOVED_PERMANENTLY,
            &headers,
            b"<Error><Code>PermanentRedirect</Code><Message>use the endpoint</Message></Error>",
        );
        assert!(moved.contains("AWS_REGION=eu-central-1"), "{moved}");
        assert_eq!(
            describe_error(reqwest::StatusCode::BAD_GATEWAY, &http::HeaderMap::new(), b"<html>"),
            "HTTP 502 Bad Gateway"
        );
    }
}

//! EC2 instance metadata (IMDSv2) credentials: the instance profile's role, which is what
//! Compose on an EC2 host has and nothing else.
//!
//! reqsign's `IMDSv2CredentialProvider` does the protocol (a `PUT /latest/api/token` session token,
//! then the role name and its temporary keys; `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the
//! address, `AWS_EC2_METADATA_DISABLED=true` turns it off). This wrapper adds what a last link in
//! the chain needs:
//!
//! - its own HTTP client with short timeouts ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`]) and no
//!   proxy: the metadata address is link-local, and the S3 client's 10 s / 60 s would make every
//!   start outside EC2 wait that long before saying "no credentials";
//! - "unreachable" is "not on EC2": the chain goes on to its final "no credentials found" error
//!   (which mentions the metadata service and the hop limit) instead of failing with a transport
//!   error. An answer from the metadata service that is an error (no role attached, a role EC2
//!   may not assume) is reported as such.
//!
//! In a container on a bridge network the token `PUT` needs two hops: instances whose metadata
//! hop limit is 1 (the default before Amazon Linux 2023) drop the answer, which looks exactly like
//! "unreachable"; the final error names the fix (`--http-put-response-hop-limit 2`).

use std::{collections::HashMap, fmt, path::PathBuf, time::Duration};

use reqsign_aws_v4::{Credential, IMDSv2CredentialProvider};
use reqsign_core::{Context, ProvideCredential, StaticEnv};

use super::reqsign_io::ReqwestSend;

/// Connecting to the metadata service (a link-local address: it answers in milliseconds on EC2).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One metadata request, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The instance profile's credentials, or nothing when there is no metadata service.
pub struct InstanceMetadata {
    provider: IMDSv2CredentialProvider,
    context: Option<Context>,
}

impl fmt::Debug for InstanceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceMetadata").finish_non_exhaustive()
    }
}

impl InstanceMetadata {
    /// `env`: the AWS variables (already without empty values).
    pub fn new(env: &HashMap<String, String>) -> InstanceMetadata {
        let client = reqwest::Client::builder()
            .user_agent(concat!("postgres-mcp-sync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build();
        let context = match client {
            Ok(client) => Some(Context::new().with_http_send(ReqwestSend(client)).with_env(StaticEnv {
                home_dir: env.get("HOME").map(PathBuf::from),
                envs: env.clone(),
            })),
            Err(error) => {
                tracing::warn!(error = %error, "cannot create the instance metadata client; IMDS not used");
                None
            }
        };
        InstanceMetadata {
            provider: IMDSv2CredentialProvider::new(),
            context,
        }
    }
}

impl ProvideCredential for InstanceMetadata {
    type Credential = Credential;

    async fn provide_credential(&self, _: &Context) -> reqsign_core::Result<Option<Credential>> {
        let Some(context) = &self.context else {
            return Ok(None);
        };
        match self.provider.provide_credential(context).await {
            Ok(credential) => {
                if credential.is_some() {
                    tracing::debug!("using the EC2 instance profile's credentials (IMDSv2)");
                }
                Ok(credential)
            }
            // reqsign marks transport failures retryable; answers (403, no role) are not.
            Err(error) if error.is_retryable() => {
                tracing::debug!(
                    error = %super::error::error_chain(&error),
                    "no EC2 instance metadata service reachable; not on EC2"
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

//! The process's one TLS crypto provider.
//!
//! rustls needs a crypto provider chosen once per process. We use `ring`: it builds in seconds
//! on a 2-core machine, where the default `aws-lc-rs` compiles a large C library. Every TLS user in
//! the process (reqwest for object-storage sync, the Postgres client, the tests' HTTPS clients)
//! picks up the provider installed here, so call [`install_crypto_provider`] before creating any of
//! them. Installing twice is harmless.

/// Installs ring as the process-wide rustls provider (no-op if one is already installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

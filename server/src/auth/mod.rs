//! Authentication and everything around it, in one place and below the routes: no module here
//! imports `mcp`, `app` or a route.
//!
//! Two kinds of bearer credential reach `/mcp`: API tokens (`pgmcp_…`, listed in tokens.yaml) and
//! session tokens (`pgmcs_…`, minted by `POST /api/login` for a user in users.yaml). Both are checked
//! against the *current* snapshot of the files, so a revocation or password change takes effect on
//! every instance at its next reload, with nothing shared but the files.
//!
//! - `principal`: who is calling ([`Principal`]) and why a credential was refused ([`AuthFailure`]);
//! - `authenticator`: the [`Authenticator`] over the watched files;
//! - [`tokens`], [`users`], [`session`]: the file formats and their checks; [`scope`]: which tools a
//!   credential may use;
//! - [`limiter`]: the per-address failed-auth limiter; [`proxies`]: which address that is;
//!   `password_checks`: the bound on concurrent bcrypt checks ([`PasswordChecks`]);
//! - [`http`]: the HTTP side — the [`Gate`] in front of `/mcp` and `POST /api/login`;
//! - [`oauth`]: OAuth 2.1 — the protected resource (always, when configured), an external IdP's
//!   tokens, and the built-in authorization server, all stateless across instances;
//! - [`admin`]: the file edits behind the `token`, `user` and `session-key` commands.

pub mod admin;
mod authenticator;
pub mod http;
pub mod limiter;
pub mod oauth;
mod password_checks;
mod principal;
pub mod proxies;
pub mod scope;
pub mod session;
pub mod tokens;
mod tokens_layout;
pub mod users;

pub use authenticator::{AuthHealth, Authenticator, IssuedSession, SessionKeyFile, TokensFile, UsersFile};
pub use http::{Gate, Login};
pub use password_checks::PasswordChecks;
pub use principal::{AuthFailure, Principal, PrincipalKind};
pub use scope::ToolScope;

//! The audit of the role the pool connects as: what it could do beyond a call (issue #13 §C.12).
//!
//! The check of each statement ([`super::sql_check`]) cannot see calls hidden in views or
//! user-defined functions, so what the *role* may do is the real boundary: a role that can signal
//! backends, read the server's files or run programs lets any caller reach other callers or the
//! host. Every new connection — at start-up (the first health check connects) and each reconnect,
//! including a pool rebuilt for a rotated `url_file` — runs one catalog query before it is handed
//! out (a deadpool `post_create` hook), so a role changed by an operator is seen at the next
//! connection. The latest audit shows in `/health` under `database.role`, in metrics as
//! `pgmcp_database_role_finding{finding=…}` (one series per [`FindingKind`], a fixed set) and
//! `pgmcp_database_role_safe`, and each finding is logged once as a warning when it appears. With
//! `database.require_safe_role`, the database tools refuse to run while the role is unsafe or not
//! yet audited.
//!
//! Not audited, because every call runs in a read-only transaction that rolls back: ownership of
//! objects, `CREATE` on schemas, `default_transaction_read_only` (the pool sets it on every session).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{error::DbError, sql_policy};

/// What an audit found: a role is safe when the list is empty.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RoleAudit {
    /// The role the pool's connections run as (`current_user`).
    pub role: String,
    pub safe: bool,
    pub findings: Vec<Finding>,
    pub checked_at: DateTime<Utc>,
}

/// One thing the role may do beyond a call.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub detail: String,
}

/// The kinds of finding: the metric's label values, a fixed set.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// `rolsuper`: every check in PostgreSQL passes.
    Superuser,
    /// `rolreplication`: may create and consume replication slots.
    Replication,
    /// `rolcreaterole`: may grant itself any non-superuser role, `pg_signal_backend` included
    /// (PostgreSQL 15, CREATE ROLE); found missing by a red-team review of #13.
    CreateRole,
    /// Member of `pg_signal_backend`: may cancel or terminate other roles' backends.
    SignalBackend,
    /// Member of `pg_read_server_files`: `pg_read_file`, `COPY FROM` a server file.
    ReadServerFiles,
    /// Member of `pg_write_server_files`: `COPY TO` a server file.
    WriteServerFiles,
    /// Member of `pg_execute_server_program`: `COPY … PROGRAM`.
    ExecuteServerProgram,
    /// `EXECUTE` on a signalling, server-administration, file or remote-connection function, in any
    /// schema (`pg_terminate_backend` and `pg_cancel_backend` are open to `PUBLIC` by default, and so
    /// are dblink's functions once the extension is created).
    ExecuteAdminFunction,
}

impl FindingKind {
    pub const ALL: [FindingKind; 8] = [
        FindingKind::Superuser,
        FindingKind::Replication,
        FindingKind::CreateRole,
        FindingKind::SignalBackend,
        FindingKind::ReadServerFiles,
        FindingKind::WriteServerFiles,
        FindingKind::ExecuteServerProgram,
        FindingKind::ExecuteAdminFunction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Superuser => "superuser",
            FindingKind::Replication => "replication",
            FindingKind::CreateRole => "create_role",
            FindingKind::SignalBackend => "signal_backend",
            FindingKind::ReadServerFiles => "read_server_files",
            FindingKind::WriteServerFiles => "write_server_files",
            FindingKind::ExecuteServerProgram => "execute_server_program",
            FindingKind::ExecuteAdminFunction => "execute_admin_function",
        }
    }
}

/// One round trip: the role's attributes, memberships of the predefined roles, and which audited
/// functions (any schema: extensions install theirs where they like) it may execute.
const AUDIT_SQL: &str = "\
SELECT r.rolname::text, r.rolsuper, r.rolreplication,
       pg_has_role(r.oid, 'pg_signal_backend', 'MEMBER'),
       pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER'),
       pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER'),
       pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER'),
       ARRAY(SELECT DISTINCT p.proname::text FROM pg_catalog.pg_proc p
             WHERE p.proname = ANY($1::text[]) AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
             ORDER BY 1),
       r.rolcreaterole
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user";

/// Runs the audit on `client`.
pub async fn audit(client: &tokio_postgres::Client) -> Result<RoleAudit, tokio_postgres::Error> {
    let row = client.query_one(AUDIT_SQL, &[&sql_policy::audited_names()]).await?;
    let role: String = row.get(0);
    let flags = [
        (FindingKind::Superuser, row.get::<_, bool>(1), "the role is a superuser"),
        (
            FindingKind::Replication,
            row.get(2),
            "the role has the REPLICATION attribute",
        ),
        (
            FindingKind::CreateRole,
            row.get(8),
            "the role has the CREATEROLE attribute (it may grant itself pg_signal_backend)",
        ),
        (FindingKind::SignalBackend, row.get(3), "member of pg_signal_backend"),
        (
            FindingKind::ReadServerFiles,
            row.get(4),
            "member of pg_read_server_files",
        ),
        (
            FindingKind::WriteServerFiles,
            row.get(5),
            "member of pg_write_server_files",
        ),
        (
            FindingKind::ExecuteServerProgram,
            row.get(6),
            "member of pg_execute_server_program",
        ),
    ];
    let mut findings: Vec<Finding> = flags
        .into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(kind, _, detail)| Finding {
            kind,
            detail: detail.to_string(),
        })
        .collect();
    let functions: Vec<String> = row.get(7);
    if !functions.is_empty() {
        findings.push(Finding {
            kind: FindingKind::ExecuteAdminFunction,
            detail: format!("may execute {}", functions.join(", ")),
        });
    }
    Ok(RoleAudit {
        role,
        safe: findings.is_empty(),
        findings,
        checked_at: Utc::now(),
    })
}

/// The latest audit of the pool's role and what follows from it; shared by the pool's connection
/// hook (which writes it) and the tools and `/health` (which read it).
#[derive(Debug)]
pub struct RoleWatch {
    latest: Mutex<Option<RoleAudit>>,
    /// `database.require_safe_role`.
    require_safe: bool,
}

/// What `/health` shows under `database.role`.
#[derive(Clone, Debug, Serialize)]
pub struct RoleStatus {
    /// `null` until the first connection was audited.
    #[serde(flatten)]
    pub audit: Option<RoleAudit>,
    /// True when `database.require_safe_role` makes the database tools refuse to run now.
    pub tools_refused: bool,
}

impl RoleWatch {
    pub fn new(require_safe: bool) -> RoleWatch {
        RoleWatch {
            latest: Mutex::new(None),
            require_safe,
        }
    }

    /// Audits a new connection and records the result; a failed audit is logged and leaves the
    /// previous one in place (the connection is still usable for the tools).
    pub async fn audit_connection(&self, client: &tokio_postgres::Client) {
        match audit(client).await {
            Ok(audit) => self.record(audit),
            Err(error) => tracing::warn!(%error, "could not audit the database role"),
        }
    }

    /// Records `audit`: warns once for each finding that was not in the previous audit, and sets
    /// the gauges.
    pub fn record(&self, audit: RoleAudit) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let before: &[Finding] = latest.as_ref().map(|a| a.findings.as_slice()).unwrap_or(&[]);
        for finding in &audit.findings {
            if !before.contains(finding) {
                tracing::warn!(
                    role = %audit.role,
                    finding = finding.kind.as_str(),
                    detail = %finding.detail,
                    "the database role can act beyond a single call (see README: a safe reader role)"
                );
            }
        }
        for kind in FindingKind::ALL {
            let present = audit.findings.iter().any(|f| f.kind == kind);
            metrics::gauge!("pgmcp_database_role_finding", "finding" => kind.as_str())
                .set(f64::from(u8::from(present)));
        }
        metrics::gauge!("pgmcp_database_role_safe").set(f64::from(u8::from(audit.safe)));
        *latest = Some(audit);
    }

    pub fn status(&self) -> RoleStatus {
        let audit = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        RoleStatus {
            audit,
            tools_refused: self.refusal().is_some(),
        }
    }

    /// With `require_safe_role`, why the tools may not run now; `None` when they may.
    pub fn refusal(&self) -> Option<DbError> {
        if !self.require_safe {
            return None;
        }
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        match latest.as_ref() {
            Some(audit) if audit.safe => None,
            Some(audit) => {
                let kinds: Vec<&str> = audit.findings.iter().map(|f| f.kind.as_str()).collect();
                Some(DbError::UnsafeRole(format!(
                    "the database role `{}` is unsafe ({}) and database.require_safe_role is set; \
                     the operator must use a reader role (README: a safe reader role)",
                    audit.role,
                    kinds.join(", ")
                )))
            }
            None => Some(DbError::UnsafeRole(
                "the database role has not been audited yet and database.require_safe_role is set".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(findings: Vec<Finding>) -> RoleAudit {
        RoleAudit {
            role: "r".into(),
            safe: findings.is_empty(),
            findings,
            checked_at: Utc::now(),
        }
    }

    #[test]
    fn require_safe_refuses_until_a_safe_audit_and_after_an_unsafe_one() {
        let watch = RoleWatch::new(true);
        assert!(watch.refusal().is_some(), "not audited yet");
        watch.record(audit(vec![]));
        assert!(watch.refusal().is_none());
        watch.record(audit(vec![Finding {
            kind: FindingKind::Superuser,
            detail: "the role is a superuser".into(),
        }]));
        let message = watch.refusal().unwrap().to_string();
        assert!(message.contains("`r` is unsafe (superuser)"), "{message}");
        assert!(watch.status().tools_refused);
        assert!(RoleWatch::new(false).refusal().is_none());
    }

    #[test]
    fn finding_kinds_serialize_as_their_metric_labels() {
        for kind in FindingKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}

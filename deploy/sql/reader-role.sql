-- A safe reader role for postgres-mcp (issue #13 §C.12): it can read every table of the database,
-- and cannot act beyond a single call — no signalling of other backends (its own included: every
-- credential of the server shares this role), no server files or programs, no replication. With it
-- /health reports "database": {"role": {"safe": true, "findings": []}} and
-- database.require_safe_role: true lets the tools run.
--
-- Run with psql as a superuser, connected to the database the server will query (the EXECUTE
-- revokes are per database: run it in each database the server queries):
--
--   psql "postgres://postgres@db.internal:5432/app" -v password='…' -f deploy/sql/reader-role.sql
--
-- Variables: `reader` (role name, default mcp_reader), `password` (required). Re-running it is safe.
-- Tested on PostgreSQL 15 by server/tests/postgres_tools.rs
-- (the_reader_role_script_makes_a_safe_role_that_cannot_signal).
\set ON_ERROR_STOP on
\if :{?reader}
\else
  \set reader mcp_reader
\endif
\if :{?password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'set the password: psql -v password=... -f reader-role.sql'; END $$;
\endif

-- A login role with no attribute beyond LOGIN.
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') \gexec
ALTER ROLE :"reader" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
-- Read-only by default even outside postgres-mcp (which runs every call READ ONLY anyway).
ALTER ROLE :"reader" SET default_transaction_read_only = on;

-- No predefined role that reaches other backends, the server's files or programs (a warning, not an
-- error, when it was not a member).
REVOKE pg_signal_backend, pg_read_server_files, pg_write_server_files, pg_execute_server_program
  FROM :"reader";

-- pg_cancel_backend and pg_terminate_backend are executable by PUBLIC: any role may signal its own
-- backends, i.e. every other caller of the server. EXECUTE cannot be revoked from one role while
-- PUBLIC has it, so it is revoked from PUBLIC in this database; superusers are unaffected, and roles
-- that cancel their own queries get it back explicitly:
--   GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) TO app_role;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;

-- Reading: connect, use every non-system schema, select from its tables, views and sequences, now
-- and (for objects the role running this script creates later) by default. Add
-- `FOR ROLE owner_role` to the ALTER DEFAULT PRIVILEGES lines when another role owns the tables.
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'reader'),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'reader'),
       format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', nspname, :'reader'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', nspname, :'reader'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON SEQUENCES TO %I', nspname, :'reader')
  FROM pg_namespace
 WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' \gexec

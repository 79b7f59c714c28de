-- The dashboard and its JSON API: tenant isolation in PostgreSQL itself (row-level security), a
-- role the dashboard's queries run as, login sessions and API tokens.
--
-- How it holds together (README, "Dashboard and API"):
-- * Every tenant table gets a policy that shows only the rows of the installation named by the
--   transaction-local setting `app.installation_id` (set with `set_config(..., true)`). Without
--   the setting, no row is visible.
-- * The dashboard runs every query inside a transaction as the role `tollgate_dashboard`:
--   neither superuser, nor owner of a table, nor BYPASSRLS, so the policies always apply to it.
-- * The workers keep using the owner's connection. Row-level security is ENABLEd, not FORCEd, on
--   the tables they use: the job queue and the evaluations legitimately span tenants, and a table
--   owner is exempt from policies unless FORCE is set. The two tables only the dashboard uses
--   (sessions and API tokens) are FORCEd, so even the owner sees their rows only through a policy.

-- The role. Roles belong to the whole server, so several databases (and concurrent test runs)
-- may try to create it at once: whoever loses the race finds it there.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_dashboard') THEN
        CREATE ROLE tollgate_dashboard NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;

-- The migrating (owner) role switches to it per transaction with `SET LOCAL ROLE`, which needs
-- membership; a superuser needs none.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'tollgate_dashboard', 'MEMBER') THEN
        EXECUTE 'GRANT tollgate_dashboard TO ' || quote_ident(current_user);
    END IF;
END;
$$;

-- The installation a dashboard transaction is about, or NULL when none was set.
CREATE FUNCTION tollgate_current_installation() RETURNS BIGINT
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.installation_id', true), '')::bigint $$;

-- Tenant tables: one policy each, for every command.
ALTER TABLE installations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON installations USING (id = tollgate_current_installation());

ALTER TABLE repositories ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON repositories
    USING (installation_id = tollgate_current_installation());
ALTER TABLE pull_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON pull_requests
    USING (installation_id = tollgate_current_installation());
ALTER TABLE evaluations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON evaluations
    USING (installation_id = tollgate_current_installation());
ALTER TABLE violations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON violations
    USING (installation_id = tollgate_current_installation());
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhook_deliveries
    USING (installation_id = tollgate_current_installation());
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON jobs
    USING (installation_id = tollgate_current_installation());
ALTER TABLE override_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON override_requests
    USING (installation_id = tollgate_current_installation());
ALTER TABLE override_approvals ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON override_approvals
    USING (installation_id = tollgate_current_installation());
ALTER TABLE command_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON command_results
    USING (installation_id = tollgate_current_installation());
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON alerts
    USING (installation_id = tollgate_current_installation());
ALTER TABLE slack_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON slack_messages
    USING (installation_id = tollgate_current_installation());
ALTER TABLE slack_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON slack_attempts
    USING (installation_id = tollgate_current_installation());
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON audit_log
    USING (installation_id = tollgate_current_installation());
ALTER TABLE installation_configs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON installation_configs
    USING (installation_id = tollgate_current_installation());
ALTER TABLE digests ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON digests
    USING (installation_id = tollgate_current_installation());
ALTER TABLE email_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON email_messages
    USING (installation_id = tollgate_current_installation());
ALTER TABLE pagerduty_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON pagerduty_events
    USING (installation_id = tollgate_current_installation());
ALTER TABLE notification_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON notification_attempts
    USING (installation_id = tollgate_current_installation());

-- Dashboard login sessions. The cookie holds a random id; only its SHA-256 is stored, so a copy
-- of the table logs nobody in. Not a tenant table (one person may see several installations):
-- a session row is visible only to the transaction that names its hash in `app.session_hash`.
CREATE TABLE dashboard_sessions (
    id_hash      TEXT PRIMARY KEY,             -- hex SHA-256 of the session id
    user_id      BIGINT      NOT NULL,         -- GitHub user id
    login        TEXT        NOT NULL,
    -- [{installation_id, account, role}]: what the user may see, decided at login.
    access       JSONB       NOT NULL,
    csrf_token   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
ALTER TABLE dashboard_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY own_session ON dashboard_sessions
    USING (id_hash = current_setting('app.session_hash', true));
-- Expired sessions are anyone's to delete (logins prune them).
CREATE POLICY prune_expired ON dashboard_sessions FOR DELETE USING (expires_at < now());

-- Personal API tokens of installation admins (`Authorization: Bearer`): shown once, stored as a
-- SHA-256. Visible to the tenant's transactions, and to the one lookup that names the hash.
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    user_id         BIGINT      NOT NULL,
    login           TEXT        NOT NULL,
    name            TEXT        NOT NULL,
    token_hash      TEXT        NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX api_tokens_installation ON api_tokens (installation_id, created_at);
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_tokens
    USING (installation_id = tollgate_current_installation());
CREATE POLICY token_lookup ON api_tokens FOR SELECT
    USING (token_hash = current_setting('app.api_token_hash', true));

-- What the dashboard may do. Reads of the tenant tables it shows, writes of its own actions
-- (audit entries, acknowledged alerts, queued re-evaluations), its sessions and tokens.
GRANT USAGE ON SCHEMA public TO tollgate_dashboard;
GRANT EXECUTE ON FUNCTION tollgate_current_installation() TO tollgate_dashboard;
GRANT SELECT ON installations, repositories, pull_requests, evaluations, violations,
    rule_definitions, override_requests, override_approvals, alerts, audit_log,
    webhook_deliveries, jobs, slack_messages, installation_configs
    TO tollgate_dashboard;
GRANT INSERT ON audit_log TO tollgate_dashboard;
GRANT UPDATE ON alerts TO tollgate_dashboard;
GRANT INSERT, UPDATE ON jobs TO tollgate_dashboard;
GRANT SELECT, INSERT, DELETE ON dashboard_sessions TO tollgate_dashboard;
GRANT SELECT, INSERT, UPDATE ON api_tokens TO tollgate_dashboard;
GRANT USAGE ON SEQUENCE audit_log_id_seq, jobs_id_seq, api_tokens_id_seq TO tollgate_dashboard;

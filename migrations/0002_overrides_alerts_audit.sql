-- The enforcement loop: override requests and their approvals, Tier 1 alerts, the Slack
-- messages sent for both, command results, and the append-only audit log.

-- An `/override` request. It covers the fingerprints of the violations it was granted for (rule,
-- path and offending text, not the line), so it survives pushes that leave them as they are.
CREATE TABLE override_requests (
    id                 BIGSERIAL PRIMARY KEY,
    installation_id    BIGINT      NOT NULL REFERENCES installations (id),
    repository_id      BIGINT      NOT NULL,
    pr_number          INTEGER     NOT NULL,
    head_sha           TEXT        NOT NULL,   -- the head when requested
    status             TEXT        NOT NULL
                       CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    requested_by       TEXT        NOT NULL,
    reason             TEXT        NOT NULL,
    scope_rules        TEXT[]      NOT NULL DEFAULT '{}',  -- empty: every overridable rule
    fingerprints       TEXT[]      NOT NULL,
    violations         JSONB       NOT NULL,   -- the covered violations, as shown to approvers
    needs_approval     BOOLEAN     NOT NULL,   -- a BLOCK violation is in scope
    required_approvals INTEGER     NOT NULL DEFAULT 1,
    settings           JSONB       NOT NULL,   -- the `overrides` config in force when requested
    command_comment_id BIGINT,
    decided_by         TEXT,
    decision_note      TEXT,
    decided_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX override_requests_pr ON override_requests (repository_id, pr_number, status);
CREATE INDEX override_requests_installation_time ON override_requests (installation_id, created_at);

CREATE TABLE override_approvals (
    request_id      BIGINT      NOT NULL REFERENCES override_requests (id),
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    approver        TEXT        NOT NULL,      -- GitHub login
    via             TEXT        NOT NULL CHECK (via IN ('github', 'slack')),
    note            TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, approver)
);

-- One row per command comment handled: the decision is taken once, and a retried job only
-- finishes posting the reply.
CREATE TABLE command_results (
    repository_id    BIGINT      NOT NULL,
    comment_id       BIGINT      NOT NULL,
    installation_id  BIGINT      NOT NULL REFERENCES installations (id),
    pr_number        INTEGER     NOT NULL,
    author           TEXT        NOT NULL,
    outcome          TEXT        NOT NULL,     -- accepted | pending | denied | invalid | ...
    reaction         TEXT        NOT NULL,     -- GitHub reaction content: +1 or -1
    reply            TEXT,                     -- Markdown reply, when the outcome needs one
    reply_comment_id BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, comment_id)
);

-- Tier 1 alerts: at most one per pull request and rule an hour.
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    repository_id   BIGINT      NOT NULL,
    pr_number       INTEGER     NOT NULL,
    rule_id         TEXT        NOT NULL,
    head_sha        TEXT        NOT NULL,
    fingerprints    TEXT[]      NOT NULL,
    violations      JSONB       NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ,
    escalate_at     TIMESTAMPTZ NOT NULL,
    escalated_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alerts_dedup ON alerts (repository_id, pr_number, rule_id, created_at DESC);
CREATE INDEX alerts_installation_time ON alerts (installation_id, created_at);

-- Every Slack message the app sends, kept so that a retry edits instead of posting again and a
-- decision updates the message in place. `subject` ties it to what it shows.
CREATE TABLE slack_messages (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    repository_id   BIGINT      NOT NULL,
    pr_number       INTEGER     NOT NULL,
    subject         TEXT        NOT NULL
                    CHECK (subject IN ('override_request', 'alert', 'escalation', 'note', 'ephemeral')),
    subject_id      BIGINT,                    -- override request or alert id
    channel         TEXT        NOT NULL,
    thread_ts       TEXT,
    user_id         TEXT,                      -- ephemeral messages: who sees it
    body            JSONB,                     -- notes and ephemerals: what to send
    ts              TEXT,                      -- Slack's id of the message, once posted
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX slack_messages_subject ON slack_messages (subject, subject_id)
    WHERE subject IN ('override_request', 'alert', 'escalation');
CREATE INDEX slack_messages_pr ON slack_messages (repository_id, pr_number, created_at);

-- Every attempt at a Slack call: sent, failed (with the error) or acknowledged.
CREATE TABLE slack_attempts (
    id              BIGSERIAL PRIMARY KEY,
    message_id      BIGINT      NOT NULL REFERENCES slack_messages (id),
    installation_id BIGINT      NOT NULL,
    method          TEXT        NOT NULL,
    outcome         TEXT        NOT NULL CHECK (outcome IN ('sent', 'failed', 'acknowledged')),
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX slack_attempts_message ON slack_attempts (message_id);

-- The first Slack message about a pull request; later ones go in its thread.
ALTER TABLE pull_requests
    ADD COLUMN slack_channel   TEXT,
    ADD COLUMN slack_thread_ts TEXT;

-- Who did what, written in the transaction of the change it records. Append-only: updates and
-- deletes are refused by a trigger.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL,
    actor           TEXT        NOT NULL,      -- GitHub login, `slack:<user id>` or `tollgate`
    action          TEXT        NOT NULL,      -- e.g. override.requested, override.approved
    target          TEXT        NOT NULL,      -- e.g. override_request:12, alert:3
    before_state    JSONB,
    after_state     JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_installation_time ON audit_log (installation_id, created_at);
CREATE INDEX audit_log_target ON audit_log (target, created_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- Tollgate's schema: tenants, repositories, pull requests, evaluations and their violations, the
-- rule catalog, webhook deliveries and the job queue. Every tenant-owned row carries its
-- installation id so that data can be queried, exported and deleted per tenant.

-- An installation of the GitHub App: the tenant.
CREATE TABLE installations (
    id            BIGINT PRIMARY KEY,          -- GitHub's installation id
    account_login TEXT        NOT NULL,
    account_type  TEXT,
    active        BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at    TIMESTAMPTZ
);

CREATE TABLE repositories (
    id              BIGINT PRIMARY KEY,        -- GitHub's repository id
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    full_name       TEXT        NOT NULL,
    active          BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX repositories_installation ON repositories (installation_id);

CREATE TABLE pull_requests (
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    repository_id   BIGINT      NOT NULL,
    number          INTEGER     NOT NULL,
    title           TEXT        NOT NULL DEFAULT '',
    author          TEXT,
    head_sha        TEXT,
    -- The sticky comment, once created: edited in place on every evaluation.
    comment_id      BIGINT,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, number)
);

-- One evaluation per pull request head SHA. Created when work on the SHA starts (with its check
-- run), completed with the result; a retried job finds it and edits instead of posting again.
CREATE TABLE evaluations (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    repository_id   BIGINT      NOT NULL,
    pr_number       INTEGER     NOT NULL,
    head_sha        TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'in_progress'
                    CHECK (status IN ('in_progress', 'completed', 'error', 'superseded')),
    score           SMALLINT,
    verdict         TEXT CHECK (verdict IN ('pass', 'fail')),
    threshold       SMALLINT,
    block_count     INTEGER,
    override_count  INTEGER,
    warning_count   INTEGER,
    policy_digest   TEXT        NOT NULL,
    config_digest   TEXT,
    error           TEXT,
    not_evaluated   JSONB       NOT NULL DEFAULT '[]',
    duration_ms     INTEGER,
    check_run_id    BIGINT,
    comment_id      BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    UNIQUE (repository_id, pr_number, head_sha)
);
-- "Latest evaluation of a PR".
CREATE INDEX evaluations_latest ON evaluations (repository_id, pr_number, created_at DESC);
CREATE INDEX evaluations_installation_time ON evaluations (installation_id, created_at);

CREATE TABLE violations (
    id              BIGSERIAL PRIMARY KEY,
    evaluation_id   BIGINT      NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    rule_id         TEXT        NOT NULL,
    tier            TEXT        NOT NULL CHECK (tier IN ('BLOCK', 'OVERRIDE', 'WARNING')),
    path            TEXT,
    line            INTEGER,
    message         TEXT        NOT NULL,
    fingerprint     TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX violations_evaluation ON violations (evaluation_id);
-- "Open violations by rule" (joined with each PR's latest evaluation).
CREATE INDEX violations_rule ON violations (rule_id, evaluation_id);
-- "Violations of an installation over time".
CREATE INDEX violations_installation_time ON violations (installation_id, created_at);

-- The rule catalog of the running policy pack, refreshed at start-up. Global: the pack is the
-- same for every tenant (repositories tune it through their own config file).
CREATE TABLE rule_definitions (
    rule_id       TEXT PRIMARY KEY,
    name          TEXT        NOT NULL,
    tier          TEXT        NOT NULL,
    category      TEXT        NOT NULL,
    description   TEXT        NOT NULL,
    remediation   TEXT        NOT NULL,
    override_when TEXT        NOT NULL,
    pack_digest   TEXT        NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,          -- X-GitHub-Delivery
    event           TEXT        NOT NULL,
    action          TEXT,
    installation_id BIGINT,                    -- absent on ping
    status          TEXT        NOT NULL CHECK (status IN ('queued', 'ignored', 'processed')),
    ignored_reason  TEXT,
    payload         JSONB       NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_installation ON webhook_deliveries (installation_id, received_at);

-- The job queue (see README, "Architecture"): claimed with FOR UPDATE SKIP LOCKED under a lease.
-- At most one pending and one running job per dedup key, so a burst of deliveries for one pull
-- request coalesces into one pending job, and jobs for one pull request never run concurrently.
CREATE TABLE jobs (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT        NOT NULL,
    payload         JSONB       NOT NULL,
    installation_id BIGINT,
    dedup_key       TEXT        NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    max_attempts    INTEGER     NOT NULL DEFAULT 8,
    run_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by       TEXT,
    locked_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX jobs_one_pending_per_key ON jobs (dedup_key) WHERE state = 'pending';
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (dedup_key) WHERE state = 'running';
CREATE INDEX jobs_ready ON jobs (run_at) WHERE state IN ('pending', 'running');

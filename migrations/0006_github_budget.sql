-- GitHub traffic shared by every Tollgate process: the write budget per installation, the
-- repository configs read per base commit, and the redeliveries Tollgate asked GitHub for.

-- When each content-creating request of the last hour was sent, per installation (oldest first;
-- at most the hourly limit of entries). One row per installation, updated by one statement that
-- takes a slot only while both the minute and the hour window have room, so concurrent writers
-- in any process serialize on the row.
CREATE TABLE github_write_budget (
    installation_id BIGINT PRIMARY KEY,
    sent_at         TIMESTAMPTZ[] NOT NULL,
    -- The caller's token of the last grant: tells a caller whether its statement took the slot.
    last_grant      UUID          NOT NULL
);

-- `.github/tollgate.yml` as it is at a base commit. Commits never change, so an entry never goes
-- stale; `content` is NULL when the commit has no such file.
CREATE TABLE repo_config_cache (
    repository_id BIGINT      NOT NULL,
    base_sha      TEXT        NOT NULL,
    content       TEXT,
    fetched_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, base_sha)
);
CREATE INDEX repo_config_cache_fetched ON repo_config_cache (fetched_at);

-- Failed deliveries Tollgate asked GitHub to send again: at most one request per delivery (a
-- redelivery keeps the delivery's guid).
CREATE TABLE webhook_redeliveries (
    guid             TEXT PRIMARY KEY,         -- X-GitHub-Delivery
    hook_delivery_id BIGINT      NOT NULL,     -- GitHub's id of the failed attempt
    event            TEXT        NOT NULL,
    action           TEXT,
    status_code      INTEGER     NOT NULL,     -- what Tollgate answered (0: no answer)
    delivered_at     TIMESTAMPTZ NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL until GitHub accepted the request; the error when it refused it.
    outcome          TEXT
);
CREATE INDEX webhook_redeliveries_requested ON webhook_redeliveries (requested_at);

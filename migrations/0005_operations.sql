-- Operations: marks the health check reads (last successful GitHub call), the once-a-day claim of
-- the retention job, and the indexes its age-based deletes scan.

-- Named points in time, e.g. `github_success`: written by workers, read by every replica's
-- deep health check.
CREATE TABLE service_marks (
    name TEXT PRIMARY KEY,
    at   TIMESTAMPTZ NOT NULL
);

-- One row per day: the replica that inserts it runs that day's retention job, no other does.
CREATE TABLE retention_runs (
    day         DATE PRIMARY KEY,
    claimed_by  TEXT        NOT NULL,
    dry_run     BOOLEAN     NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    counts      JSONB                              -- rows deleted (or, dry run, found) by category
);

CREATE INDEX violations_created ON violations (created_at);
CREATE INDEX evaluations_created ON evaluations (created_at);
CREATE INDEX alerts_created ON alerts (created_at) WHERE status <> 'open';
CREATE INDEX slack_messages_created ON slack_messages (created_at);
CREATE INDEX slack_attempts_created ON slack_attempts (created_at);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'failed');

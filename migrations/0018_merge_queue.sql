-- Merge queues (README, "Merge queues"). GitHub asks every required check to report on a merge
-- group's temporary merge commit; Tollgate evaluates the combined change and stores the result
-- here, apart from pull-request evaluations (a group is not a pull request).

-- The pull requests waiting in a queue, from `pull_request` `enqueued` / `dequeued`: which pull
-- requests a merge group holds (those of its base branch enqueued up to its last one).
CREATE TABLE merge_queue_entries (
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    repository_id   BIGINT      NOT NULL,
    number          INTEGER     NOT NULL,
    base_ref        TEXT        NOT NULL,
    enqueued_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, number)
);

-- One evaluation per merge group (its head SHA). The check run is marked requested before it is
-- sent, as for pull requests (0015), so a retry finds it by its external_id.
CREATE TABLE queue_evaluations (
    id                     BIGSERIAL PRIMARY KEY,
    installation_id        BIGINT      NOT NULL REFERENCES installations (id),
    repository_id          BIGINT      NOT NULL,
    head_sha               TEXT        NOT NULL,
    head_ref               TEXT        NOT NULL,
    base_sha               TEXT        NOT NULL,
    base_ref               TEXT        NOT NULL,
    pr_numbers             INTEGER[]   NOT NULL,
    mode                   TEXT        NOT NULL
                           CHECK (mode IN ('reevaluate', 'trust_pull_requests')),
    status                 TEXT        NOT NULL DEFAULT 'in_progress'
                           CHECK (status IN ('in_progress', 'completed', 'error')),
    verdict                TEXT CHECK (verdict IN ('pass', 'fail')),
    score                  SMALLINT,
    threshold              SMALLINT,
    block_count            INTEGER,
    override_count         INTEGER,
    warning_count          INTEGER,
    -- What the combination introduced: violations no pull request's own latest evaluation had.
    introduced             JSONB       NOT NULL DEFAULT '[]',
    policy_digest          TEXT        NOT NULL,
    config_digest          TEXT,
    error                  TEXT,
    check_run_id           BIGINT,
    check_run_requested_at TIMESTAMPTZ,
    -- `merge_group.destroyed`: merged, dequeued or invalidated.
    destroyed_at           TIMESTAMPTZ,
    destroyed_reason       TEXT,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at           TIMESTAMPTZ,
    UNIQUE (repository_id, head_sha)
);
CREATE INDEX queue_evaluations_installation_time ON queue_evaluations (installation_id, created_at);

-- The comment a failed group leaves on each pull request it holds, marked requested before it
-- is posted (a retry looks for its hidden key instead of posting again).
CREATE TABLE queue_comments (
    queue_evaluation_id BIGINT      NOT NULL REFERENCES queue_evaluations (id) ON DELETE CASCADE,
    installation_id     BIGINT      NOT NULL REFERENCES installations (id),
    pr_number           INTEGER     NOT NULL,
    comment_id          BIGINT,
    requested_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_evaluation_id, pr_number)
);

ALTER TABLE merge_queue_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON merge_queue_entries
    USING (installation_id = tollgate_current_installation());
ALTER TABLE queue_evaluations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON queue_evaluations
    USING (installation_id = tollgate_current_installation());
ALTER TABLE queue_comments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON queue_comments
    USING (installation_id = tollgate_current_installation());
GRANT SELECT ON merge_queue_entries, queue_evaluations, queue_comments TO tollgate_dashboard;

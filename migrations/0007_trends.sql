-- Trend rollups: one row per installation, repository and UTC day (and rule and tier) of what the
-- evaluations completed that day found. Retention deletes old evaluations and violations; these
-- small rows are what keeps a year of trends (`RETENTION_TRENDS_DAYS`). Written by the workers'
-- daily run (`operations::trends`), read by the dashboard under row-level security like 0004's
-- tenant tables.

-- Violations found per day: distinct (pull request, fingerprint) in the evaluations completed that
-- day, and how many of them no earlier completed evaluation of the pull request had.
CREATE TABLE trend_rule_days (
    installation_id BIGINT  NOT NULL REFERENCES installations (id),
    repository_id   BIGINT  NOT NULL,
    day             DATE    NOT NULL,
    rule_id         TEXT    NOT NULL,
    tier            TEXT    NOT NULL CHECK (tier IN ('BLOCK', 'OVERRIDE', 'WARNING')),
    found           INTEGER NOT NULL,
    new             INTEGER NOT NULL,
    PRIMARY KEY (installation_id, day, repository_id, rule_id, tier)
);
-- A day's replacement and the retention's age scan.
CREATE INDEX trend_rule_days_day ON trend_rule_days (day);

-- Scores per day of the evaluations completed that day (a completed evaluation always has one).
CREATE TABLE trend_score_days (
    installation_id BIGINT           NOT NULL REFERENCES installations (id),
    repository_id   BIGINT           NOT NULL,
    day             DATE             NOT NULL,
    evaluations     INTEGER          NOT NULL,
    passed          INTEGER          NOT NULL,
    failed          INTEGER          NOT NULL,
    average_score   DOUBLE PRECISION NOT NULL,
    min_score       SMALLINT         NOT NULL,
    PRIMARY KEY (installation_id, day, repository_id)
);
CREATE INDEX trend_score_days_day ON trend_score_days (day);

-- The rollup reads one day of completed evaluations.
CREATE INDEX evaluations_completed ON evaluations (completed_at) WHERE status = 'completed';

-- One row per rolled-up day: the replica that inserts it rolls that day up, no other does.
CREATE TABLE trend_runs (
    day         DATE PRIMARY KEY,
    claimed_by  TEXT        NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    counts      JSONB                              -- rows written per table
);

ALTER TABLE trend_rule_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON trend_rule_days
    USING (installation_id = tollgate_current_installation());
ALTER TABLE trend_score_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON trend_score_days
    USING (installation_id = tollgate_current_installation());

GRANT SELECT ON trend_rule_days, trend_score_days TO tollgate_dashboard;

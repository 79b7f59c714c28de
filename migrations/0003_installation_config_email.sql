-- The installation config (the account's `.github` repository, `tollgate.yml`), email and
-- PagerDuty delivery, and the Tier 2 / Tier 3 digests.

-- The installation config as last read from GitHub: the text as written, or the error that
-- made it unusable. Refreshed when older than the cache lifetime (see README, "Email alerts").
CREATE TABLE installation_configs (
    installation_id BIGINT PRIMARY KEY REFERENCES installations (id),
    content         TEXT,                      -- NULL: no file (all defaults)
    error           TEXT,                      -- why the file cannot be used
    fetched_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Digests: one row per installation, tier and period, claimed before anything is sent, so a
-- period is decided once across any number of replicas and restarts.
CREATE TABLE digests (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    tier            TEXT        NOT NULL CHECK (tier IN ('OVERRIDE', 'WARNING')),
    period_start    TIMESTAMPTZ NOT NULL,
    period_end      TIMESTAMPTZ NOT NULL,
    item_count      INTEGER     NOT NULL,
    status          TEXT        NOT NULL
                    CHECK (status IN ('sending', 'below_threshold', 'no_recipients', 'capped')),
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ,
    escalated_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (installation_id, tier, period_start)
);

-- Every email the app sends: rendered from its subject's state when the job runs, under a
-- Message-ID chosen once, so a retry after a crash re-sends the same message (relays that
-- deduplicate by Message-ID drop it) and a sent message is never sent again.
CREATE TABLE email_messages (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    kind            TEXT        NOT NULL
                    CHECK (kind IN ('alert', 'alert_escalation', 'digest', 'digest_escalation')),
    subject_id      BIGINT      NOT NULL,      -- alert or digest id
    recipients      TEXT[]      NOT NULL,
    message_id      TEXT        NOT NULL UNIQUE,
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT,
    smtp_response   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    UNIQUE (kind, subject_id)
);
CREATE INDEX email_messages_installation_time ON email_messages (installation_id, created_at);

-- PagerDuty events (Events API v2) for escalated alerts: one per alert and action, keyed by a
-- dedup key so a retry never opens a second incident.
CREATE TABLE pagerduty_events (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL REFERENCES installations (id),
    alert_id        BIGINT      NOT NULL REFERENCES alerts (id),
    action          TEXT        NOT NULL CHECK (action IN ('trigger', 'acknowledge', 'resolve')),
    dedup_key       TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    UNIQUE (alert_id, action)
);

-- Every attempt at an email or PagerDuty delivery (Slack's are in slack_attempts).
CREATE TABLE notification_attempts (
    id              BIGSERIAL PRIMARY KEY,
    installation_id BIGINT      NOT NULL,
    channel         TEXT        NOT NULL CHECK (channel IN ('email', 'pagerduty')),
    target          TEXT        NOT NULL,      -- email_message:12, pagerduty_event:3
    outcome         TEXT        NOT NULL CHECK (outcome IN ('sent', 'failed')),
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notification_attempts_time ON notification_attempts (created_at);

-- Acknowledge links already used: each works once.
CREATE TABLE used_ack_links (
    nonce   TEXT PRIMARY KEY,
    used_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

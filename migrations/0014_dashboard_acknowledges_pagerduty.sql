-- The dashboard acknowledges alerts by the path Slack and email links take, which also queues
-- the PagerDuty acknowledge of an escalated alert: it reads whether an incident was triggered
-- and records the acknowledge event (row-level security keeps it to its installation).
GRANT SELECT, INSERT ON pagerduty_events TO tollgate_dashboard;
GRANT USAGE ON SEQUENCE pagerduty_events_id_seq TO tollgate_dashboard;

-- Closed alerts go after RETENTION_ALERT_HISTORY_DAYS, but the PagerDuty events of an escalated
-- alert referenced it without a delete rule: deleting such an alert failed, and with it every
-- retention batch that held one. The events are part of the alert's history: they go with it.
ALTER TABLE pagerduty_events DROP CONSTRAINT pagerduty_events_alert_id_fkey;
ALTER TABLE pagerduty_events ADD CONSTRAINT pagerduty_events_alert_id_fkey
    FOREIGN KEY (alert_id) REFERENCES alerts (id) ON DELETE CASCADE;

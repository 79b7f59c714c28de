-- Live updates of the dashboard, and approvals given in it.

-- Live updates of the dashboard: a completed evaluation, an alert that opens or changes, and an
-- override request that changes send a NOTIFY on `tollgate_dashboard` (delivered at commit).
-- Each web process LISTENs once and fans the events out to its Server-Sent Events streams,
-- each stream forwarding only its own installation's events. The payload names no data beyond
-- ids: pages fetch what changed through their usual, tenant-scoped queries.
CREATE FUNCTION notify_dashboard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_dashboard', json_build_object(
        'installation_id', NEW.installation_id,
        'kind', TG_ARGV[0],
        'repository_id', NEW.repository_id,
        'pr_number', NEW.pr_number)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER evaluations_notify_dashboard
    AFTER INSERT OR UPDATE OF status ON evaluations
    FOR EACH ROW WHEN (NEW.status = 'completed')
    EXECUTE FUNCTION notify_dashboard('evaluation');

CREATE TRIGGER alerts_notify_dashboard
    AFTER INSERT OR UPDATE OF status, escalated_at ON alerts
    FOR EACH ROW EXECUTE FUNCTION notify_dashboard('alert');

CREATE TRIGGER override_requests_notify_dashboard
    AFTER INSERT OR UPDATE OF status ON override_requests
    FOR EACH ROW EXECUTE FUNCTION notify_dashboard('override');

-- Approvals can also come from the dashboard.
ALTER TABLE override_approvals DROP CONSTRAINT override_approvals_via_check;
ALTER TABLE override_approvals ADD CONSTRAINT override_approvals_via_check
    CHECK (via IN ('github', 'slack', 'dashboard'));

-- Indexes for the dashboard at size (a year of history, a million violations; see the README's
-- "Benchmark"). The dashboard reads as `tollgate_dashboard` under row-level security, whose
-- policies add `installation_id = tollgate_current_installation()` to every table: indexes lead
-- with `installation_id` where a list is scanned in keyset order, so that the policy's condition
-- bounds the scan instead of filtering it.

-- Keyset pages, newest first (`id < cursor ORDER BY id DESC`).
CREATE INDEX violations_installation_id ON violations (installation_id, id);
CREATE INDEX evaluations_installation_id ON evaluations (installation_id, id);
CREATE INDEX alerts_installation_id ON alerts (installation_id, id);
CREATE INDEX audit_log_installation_id ON audit_log (installation_id, id);

-- The violations of one rule, newest first, and when a rule was last seen.
CREATE INDEX violations_installation_rule ON violations (installation_id, rule_id, id);
CREATE INDEX violations_installation_rule_time
    ON violations (installation_id, rule_id, created_at);

-- The latest completed evaluation of a pull request, looked up per row (`ORDER BY created_at
-- DESC, id DESC LIMIT 1`, or "no later completed evaluation").
CREATE INDEX evaluations_completed_pr ON evaluations (repository_id, pr_number, created_at, id)
    WHERE status = 'completed';

-- Exactly-once effects across crashes: a write to GitHub is marked as requested before it is
-- sent. A retry of a job that died between the call and recording its answer then looks the
-- object up (a check run by its external_id, a reply by its hidden key) instead of creating
-- it again; a job that never sent it skips the lookup.
ALTER TABLE evaluations ADD COLUMN check_run_requested_at TIMESTAMPTZ;
ALTER TABLE command_results ADD COLUMN reply_requested_at TIMESTAMPTZ;

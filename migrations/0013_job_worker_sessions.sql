-- A claimed job names the PostgreSQL session of the worker process that runs it: each worker
-- process holds a session-level advisory lock (class 7011, its own key) on a connection kept open
-- for its life. When the process dies, PostgreSQL ends the session and drops the lock at once, so
-- other workers (or the restarted process) take the job over without waiting for its lease.
ALTER TABLE jobs ADD COLUMN worker_key INTEGER;

-- Stored webhook payloads are kept for the record and never queried inside PostgreSQL, yet each
-- one cost the database a parse into `jsonb`'s binary tree and a pglz compression before the
-- 2xx. Keep them as `json` (checked, stored as the text received; `->` and `->>` still work for
-- ad hoc queries) and compress them with lz4, which is several times cheaper than pglz. The type
-- change rewrites the table once; retention keeps it small (30 days by default).
ALTER TABLE webhook_deliveries ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4;

-- The keys of imported legacy decisions, one row per (tenant, dedup_key): what a decision import
-- checks each row against (a repeat, a conflict, or new).
--
-- Until now the import looked each key up in `decision_logs` through its (tenant_id, dedup_key)
-- index, one probe per row into every monthly partition (the key says nothing of the month), and
-- then wrote the key into that index again. Here a batch's keys are inserted with
-- `ON CONFLICT DO NOTHING` into one unpartitioned table whose primary key is the lookup itself:
-- the keys it did not add are the ones imported before. The key compares bytewise (COLLATE "C":
-- it is a hex digest), not through the database's locale. The key and its content digest stay on
-- the decision row too (`decision_logs.dedup_key`, `content_sha256`).
CREATE TABLE IF NOT EXISTS decision_import_keys (
    tenant_id       UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    dedup_key       CHAR(64) COLLATE "C" NOT NULL,
    content_sha256  CHAR(64) NOT NULL,
    PRIMARY KEY (tenant_id, dedup_key)
);

-- The keys of the decisions imported before this migration (the first decision of a key wins,
-- as it did in the log).
INSERT INTO decision_import_keys (tenant_id, dedup_key, content_sha256)
SELECT DISTINCT ON (tenant_id, dedup_key COLLATE "C") tenant_id, dedup_key, content_sha256
FROM decision_logs
WHERE dedup_key IS NOT NULL AND content_sha256 IS NOT NULL
ORDER BY tenant_id, dedup_key COLLATE "C", decided_at, decision_id
ON CONFLICT DO NOTHING;

-- Nothing reads the log by dedup_key any more.
DROP INDEX IF EXISTS idx_decision_logs_dedup;

-- Only live decisions have a policy key: an imported row (policy_key NULL) no longer pays for an
-- entry in this index. A query for a policy key (`policy_key = ...`) implies the predicate, so it
-- still uses the index.
DROP INDEX IF EXISTS idx_decision_logs_policy;
CREATE INDEX IF NOT EXISTS idx_decision_logs_policy ON decision_logs (tenant_id, policy_key)
    WHERE policy_key IS NOT NULL;

-- Scoped to the job's tenant like the progress rows: the importer (acgs2_projector) may read and
-- add keys of the tenant its transaction is scoped to, never change or remove one.
ALTER TABLE decision_import_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE decision_import_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON decision_import_keys;
CREATE POLICY tenant_isolation_policy ON decision_import_keys
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS admin_read_access ON decision_import_keys;
CREATE POLICY admin_read_access ON decision_import_keys FOR SELECT TO acgs2_admin USING (true);
GRANT SELECT, INSERT ON decision_import_keys TO acgs2_projector;
GRANT SELECT ON decision_import_keys TO acgs2_app, acgs2_admin;

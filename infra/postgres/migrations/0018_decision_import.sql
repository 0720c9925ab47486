-- Legacy decisions imported into the decision log (the `decision_log_import` migration job).
--
-- An imported row is marked `origin = 'imported'` and keeps what the legacy engine logged: the
-- request (`principal`, `action`, `resource`, `context`), its outcome (`allow`, `reason`,
-- `legacy_policy_id`, `latency_ms`) and time (`decided_at`), the legacy decision id, the job that
-- imported it, and two digests: `dedup_key` (the legacy decision id, else the request and its
-- outcome) finds a duplicate per tenant, `content_sha256` tells a repeat from a conflict. Live
-- rows keep `origin = 'live'` and need none of these; imported rows have no policy version of
-- ours and may have no latency, so those columns become nullable (a live row still carries
-- them: checked).
ALTER TABLE decision_logs
    ADD COLUMN IF NOT EXISTS origin             VARCHAR(10) NOT NULL DEFAULT 'live'
        CHECK (origin IN ('live', 'imported')),
    ADD COLUMN IF NOT EXISTS action             TEXT,
    ADD COLUMN IF NOT EXISTS resource           TEXT,
    ADD COLUMN IF NOT EXISTS context            JSONB,
    ADD COLUMN IF NOT EXISTS reason             TEXT,
    ADD COLUMN IF NOT EXISTS legacy_policy_id   TEXT,
    ADD COLUMN IF NOT EXISTS legacy_decision_id TEXT,
    ADD COLUMN IF NOT EXISTS import_job_id      UUID,
    ADD COLUMN IF NOT EXISTS dedup_key          CHAR(64),
    ADD COLUMN IF NOT EXISTS content_sha256     CHAR(64);
ALTER TABLE decision_logs ALTER COLUMN policy_id DROP NOT NULL;
ALTER TABLE decision_logs ALTER COLUMN policy_key DROP NOT NULL;
ALTER TABLE decision_logs ALTER COLUMN policy_version DROP NOT NULL;
ALTER TABLE decision_logs ALTER COLUMN latency_ms DROP NOT NULL;
ALTER TABLE decision_logs DROP CONSTRAINT IF EXISTS decision_logs_origin_columns;
ALTER TABLE decision_logs ADD CONSTRAINT decision_logs_origin_columns CHECK (
    origin = 'imported' OR (policy_id IS NOT NULL AND policy_key IS NOT NULL
                            AND policy_version IS NOT NULL AND latency_ms IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS idx_decision_logs_dedup ON decision_logs (tenant_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_decision_logs_import_job ON decision_logs (tenant_id, import_job_id)
    WHERE import_job_id IS NOT NULL;

-- Where each import job stands: the source rows it has consumed and its cumulative counts,
-- written in the transaction that copies the batch's rows, so a job resumes exactly after a crash.
CREATE TABLE IF NOT EXISTS decision_import_progress (
    job_id              UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    rows_through        BIGINT NOT NULL CHECK (rows_through >= 0),
    summary             JSONB NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_decision_import_progress_tenant
    ON decision_import_progress (tenant_id);

-- The importer works as the decision-log writer (acgs2_projector) inside a transaction scoped to
-- the job's tenant: unlike the live writer's, its progress rows have no projector bypass.
ALTER TABLE decision_import_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE decision_import_progress FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON decision_import_progress;
CREATE POLICY tenant_isolation_policy ON decision_import_progress
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS admin_read_access ON decision_import_progress;
CREATE POLICY admin_read_access ON decision_import_progress FOR SELECT TO acgs2_admin
    USING (true);
GRANT SELECT, INSERT, UPDATE ON decision_import_progress TO acgs2_projector;
GRANT SELECT ON decision_import_progress TO acgs2_app, acgs2_admin;

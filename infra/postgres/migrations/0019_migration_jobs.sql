-- Migration jobs: `migration_jobs` becomes the read model of the MigrationJob aggregate (its
-- baseline columns, plus the worker's lease, the number of claims, the source's file name and
-- the aggregate version), and `migration_job_failures` keeps every item a job could not process,
-- with what to do about it (one row per job and item: a batch run again after a crash adds none).
-- The projector role writes both; the API reads them as acgs2_app in a session scoped to the
-- tenant.
ALTER TABLE migration_jobs
    ADD COLUMN IF NOT EXISTS lease_owner      VARCHAR(255),
    ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS claims           INT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS source_filename  VARCHAR(255),
    ADD COLUMN IF NOT EXISTS version          BIGINT NOT NULL DEFAULT 0;
-- The workers look for pending jobs and for running ones whose lease has expired.
CREATE INDEX IF NOT EXISTS idx_migration_jobs_claimable ON migration_jobs (job_status, created_at)
    WHERE job_status IN ('pending', 'running');

CREATE TABLE IF NOT EXISTS migration_job_failures (
    tenant_id       UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    job_id          UUID NOT NULL,
    seq             INT NOT NULL,
    item            VARCHAR(1000) NOT NULL,
    error           TEXT NOT NULL,
    recommendation  TEXT NOT NULL DEFAULT '',
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, item)
);
CREATE INDEX IF NOT EXISTS idx_migration_job_failures_order
    ON migration_job_failures (tenant_id, job_id, seq);

ALTER TABLE migration_job_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE migration_job_failures FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON migration_job_failures;
CREATE POLICY tenant_isolation_policy ON migration_job_failures
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS admin_read_access ON migration_job_failures;
CREATE POLICY admin_read_access ON migration_job_failures FOR SELECT TO acgs2_admin USING (true);
DROP POLICY IF EXISTS projector_access ON migration_job_failures;
CREATE POLICY projector_access ON migration_job_failures TO acgs2_projector
    USING (true) WITH CHECK (true);

GRANT SELECT ON migration_job_failures TO acgs2_app, acgs2_admin;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON migration_job_failures TO acgs2_projector;

-- Gap analysis over time. A `gap_analysis` job (its id is the run's id) runs the gap catalogue
-- over a tenant's registered policies and records, per run, every gap it found
-- (`gap_run_findings`) and its score and counts (`gap_runs`). When a run completes, `gaps` (one
-- row per gap identity: rule + policy key + location) takes the run's findings and marks the
-- tenant's gaps the run no longer found as fixed. `gap_reviews` is a read model of the audit
-- entries by which a tenant admin accepts a gap or reopens it (rebuilt by replaying the log).
-- The job writes as acgs2_app inside a session scoped to the tenant; the projector keeps
-- `gap_reviews` and removes a purged tenant's rows.
-- Every policy of one submission keeps the whole submitted source as its version's source; the
-- digest lets a run read a source that many versions share once per batch, not once per version.
ALTER TABLE policy_versions
    ADD COLUMN IF NOT EXISTS source_md5 CHAR(32) GENERATED ALWAYS AS (md5(source)) STORED;

CREATE TABLE IF NOT EXISTS gap_runs (
    run_id              UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    scope               VARCHAR(10) NOT NULL CHECK (scope IN ('active', 'latest')),
    status              VARCHAR(10) NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed')),
    policies_total      INT NOT NULL DEFAULT 0,
    policies_analysed   INT NOT NULL DEFAULT 0,
    gaps_found          INT NOT NULL DEFAULT 0,
    score               INT NOT NULL DEFAULT 0,
    gap_severities      JSONB NOT NULL DEFAULT '{}'::jsonb,
    gap_rules           JSONB NOT NULL DEFAULT '{}'::jsonb,
    open_count          INT NOT NULL DEFAULT 0,
    accepted_count      INT NOT NULL DEFAULT 0,
    new_count           INT NOT NULL DEFAULT 0,
    fixed_count         INT NOT NULL DEFAULT 0,
    requested_by        VARCHAR(255) NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_gap_runs_tenant ON gap_runs (tenant_id, completed_at);

CREATE TABLE IF NOT EXISTS gap_run_findings (
    run_id              UUID NOT NULL REFERENCES gap_runs (run_id) ON DELETE CASCADE,
    gap_id              UUID NOT NULL,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    rule_id             VARCHAR(20) NOT NULL,
    severity            VARCHAR(10) NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    policy_key          VARCHAR(255) NOT NULL,
    policy_version      INT NOT NULL,
    location            TEXT NOT NULL,
    detail              TEXT NOT NULL,
    opened              BOOLEAN NOT NULL DEFAULT false,  -- not open before this run completed
    PRIMARY KEY (run_id, gap_id)
);
CREATE INDEX IF NOT EXISTS idx_gap_run_findings_tenant ON gap_run_findings (tenant_id);

CREATE TABLE IF NOT EXISTS gaps (
    gap_id              UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    rule_id             VARCHAR(20) NOT NULL,
    severity            VARCHAR(10) NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    policy_key          VARCHAR(255) NOT NULL,
    policy_version      INT NOT NULL,
    location            TEXT NOT NULL,
    detail              TEXT NOT NULL,
    first_seen_run      UUID NOT NULL,
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_run       UUID NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    fixed_in_run        UUID,
    fixed_at            TIMESTAMPTZ  -- NULL while the latest completed run still finds it
);
CREATE INDEX IF NOT EXISTS idx_gaps_tenant ON gaps (tenant_id, severity, policy_key);

CREATE TABLE IF NOT EXISTS gap_reviews (
    gap_id              UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    status              VARCHAR(10) NOT NULL CHECK (status IN ('open', 'accepted')),
    reason              TEXT NOT NULL,
    reviewed_by         VARCHAR(255) NOT NULL,
    reviewed_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_gap_reviews_tenant ON gap_reviews (tenant_id);

DO $$
DECLARE
    t TEXT;
    cur CONSTANT TEXT := 'nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid';
BEGIN
    FOREACH t IN ARRAY ARRAY['gap_runs', 'gap_run_findings', 'gaps', 'gap_reviews'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format('CREATE POLICY tenant_isolation_policy ON %I USING (tenant_id = %s) '
                       'WITH CHECK (tenant_id = %s)', t, cur, cur);
        EXECUTE format('DROP POLICY IF EXISTS admin_read_access ON %I', t);
        EXECUTE format('CREATE POLICY admin_read_access ON %I FOR SELECT TO acgs2_admin '
                       'USING (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS projector_access ON %I', t);
        EXECUTE format('CREATE POLICY projector_access ON %I TO acgs2_projector '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_admin', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON gap_runs, gap_run_findings, gaps TO acgs2_app;
GRANT SELECT ON gap_reviews TO acgs2_app;
GRANT SELECT, DELETE ON gap_runs, gap_run_findings, gaps TO acgs2_projector;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON gap_reviews TO acgs2_projector;

-- The policy registry's read models and the decision log.
--
-- `policies` becomes the read model of the TenantPolicy aggregate: one row per registered policy,
-- its active version and status. A system-wide policy (system_wide, tenant_id NULL) is readable by
-- every tenant and written only by platform principals; the baseline's policies_tenant_required
-- check is widened accordingly (a new row needs a tenant unless it is system-wide).
-- `policy_versions` holds every immutable version (source, Rego, conversion report, hash).
-- `decision_logs` records every decision: append-only, range-partitioned by month on decided_at,
-- written in batches by the service's decision-log writer (the projector role).
ALTER TABLE policies
    ADD COLUMN IF NOT EXISTS policy_key          VARCHAR(255),
    ADD COLUMN IF NOT EXISTS system_wide         BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS status              VARCHAR(20) NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'active', 'retired')),
    ADD COLUMN IF NOT EXISTS active_version      INT,
    ADD COLUMN IF NOT EXISTS latest_version      INT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS source_format       VARCHAR(10),
    ADD COLUMN IF NOT EXISTS package             TEXT,
    ADD COLUMN IF NOT EXISTS updated_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    ADD COLUMN IF NOT EXISTS version             BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS constitutional_hash VARCHAR(16);

ALTER TABLE policies DROP CONSTRAINT IF EXISTS policies_tenant_required;
ALTER TABLE policies ADD CONSTRAINT policies_tenant_required
    CHECK (created_at < '2026-01-07' OR tenant_id IS NOT NULL OR system_wide) NOT VALID;
ALTER TABLE policies ADD CONSTRAINT policies_system_wide_has_no_tenant
    CHECK (NOT system_wide OR tenant_id IS NULL);
CREATE UNIQUE INDEX IF NOT EXISTS idx_policies_key ON policies
    ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), policy_key)
    WHERE policy_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_policies_status ON policies (tenant_id, status);

CREATE TABLE IF NOT EXISTS policy_versions (
    policy_id           UUID NOT NULL,
    version             INT NOT NULL CHECK (version >= 1),
    tenant_id           UUID
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    system_wide         BOOLEAN NOT NULL DEFAULT false,
    policy_key          VARCHAR(255) NOT NULL,
    source              TEXT NOT NULL,
    source_format       VARCHAR(10) NOT NULL,
    rego                TEXT NOT NULL,
    package             TEXT NOT NULL,
    conversion_status   VARCHAR(20) NOT NULL,
    report              JSONB NOT NULL,
    sha256              CHAR(64) NOT NULL,
    created_by          VARCHAR(255) NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    constitutional_hash VARCHAR(16) NOT NULL,
    PRIMARY KEY (policy_id, version),
    CHECK (NOT system_wide OR tenant_id IS NULL),
    CHECK (system_wide OR tenant_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS idx_policy_versions_tenant ON policy_versions (tenant_id);

CREATE TABLE IF NOT EXISTS decision_logs (
    decision_id         UUID NOT NULL,
    tenant_id           UUID NOT NULL,
    policy_id           UUID NOT NULL,
    policy_key          VARCHAR(255) NOT NULL,
    policy_version      INT NOT NULL,
    system_wide         BOOLEAN NOT NULL DEFAULT false,
    input_sha256        CHAR(64) NOT NULL,
    input               JSONB,
    allow               BOOLEAN NOT NULL,
    deny                JSONB NOT NULL,
    obligations         JSONB NOT NULL,
    latency_ms          DOUBLE PRECISION NOT NULL,
    principal           VARCHAR(255) NOT NULL,
    constitutional_hash VARCHAR(16) NOT NULL,
    decided_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (decision_id, decided_at)
) PARTITION BY RANGE (decided_at);
CREATE TABLE IF NOT EXISTS decision_logs_default PARTITION OF decision_logs DEFAULT;
CREATE INDEX IF NOT EXISTS idx_decision_logs_tenant ON decision_logs (tenant_id, decided_at DESC);
CREATE INDEX IF NOT EXISTS idx_decision_logs_policy ON decision_logs (tenant_id, policy_key);

-- Whether a tenant's decision logs keep the input itself, and which fields are masked in it.
CREATE TABLE IF NOT EXISTS decision_log_settings (
    tenant_id           UUID PRIMARY KEY
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    log_input           BOOLEAN NOT NULL DEFAULT false,
    mask_fields         JSONB NOT NULL DEFAULT '[]'::jsonb,
    updated_at          TIMESTAMPTZ NOT NULL,
    version             BIGINT NOT NULL
);

-- The decision log's monthly partitions, created ahead like the audit log's (same rules: rows
-- outside them land in the default partition and are moved in when their month is created).
CREATE OR REPLACE FUNCTION ensure_decision_log_partitions(months_back INT, months_ahead INT)
RETURNS INT LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m DATE;
    upper DATE;
    part TEXT;
    created INT := 0;
BEGIN
    FOR i IN -months_back..months_ahead LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        upper := (m + INTERVAL '1 month')::date;
        part := format('decision_logs_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TEMP TABLE decision_logs_moving ON COMMIT DROP AS '
                           'SELECT * FROM decision_logs_default '
                           'WHERE decided_at >= %L AND decided_at < %L', m, upper);
            EXECUTE format('DELETE FROM decision_logs_default '
                           'WHERE decided_at >= %L AND decided_at < %L', m, upper);
            EXECUTE format('CREATE TABLE %I PARTITION OF decision_logs '
                           'FOR VALUES FROM (%L) TO (%L)', part, m, upper);
            EXECUTE format('INSERT INTO %I SELECT * FROM decision_logs_moving', part);
            DROP TABLE decision_logs_moving;
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
SELECT ensure_decision_log_partitions(1, 3);
REVOKE ALL ON FUNCTION ensure_decision_log_partitions(INT, INT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_decision_log_partitions(INT, INT) TO acgs2_app, acgs2_projector;

DO $$
DECLARE
    t TEXT;
    cur CONSTANT TEXT := 'nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid';
BEGIN
    FOREACH t IN ARRAY ARRAY['policy_versions', 'decision_logs', 'decision_log_settings'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format('CREATE POLICY tenant_isolation_policy ON %I USING (tenant_id = %s) '
                       'WITH CHECK (tenant_id = %s)', t, cur, cur);
        EXECUTE format('DROP POLICY IF EXISTS admin_read_access ON %I', t);
        EXECUTE format('CREATE POLICY admin_read_access ON %I FOR SELECT TO acgs2_admin '
                       'USING (true)', t);
    END LOOP;
    -- Read models maintained by the projector from the whole log.
    FOREACH t IN ARRAY ARRAY['policies', 'policy_versions', 'decision_log_settings'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS projector_access ON %I', t);
        EXECUTE format('CREATE POLICY projector_access ON %I TO acgs2_projector '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO acgs2_projector', t);
    END LOOP;
END
$$;

-- System-wide versions, like system-wide policies, are readable by every tenant.
DROP POLICY IF EXISTS system_wide_read ON policy_versions;
CREATE POLICY system_wide_read ON policy_versions FOR SELECT USING (tenant_id IS NULL);

-- The decision log is append-only: the writer may only insert, readers only select; nobody of
-- the service may update or delete a row (old months go with their partition).
DROP POLICY IF EXISTS decision_log_writer ON decision_logs;
CREATE POLICY decision_log_writer ON decision_logs FOR INSERT TO acgs2_projector
    WITH CHECK (true);
DROP POLICY IF EXISTS decision_log_counter ON decision_logs;
CREATE POLICY decision_log_counter ON decision_logs FOR SELECT TO acgs2_projector USING (true);
GRANT SELECT ON policy_versions, decision_log_settings, decision_logs TO acgs2_app, acgs2_admin;
GRANT INSERT, SELECT ON decision_logs TO acgs2_projector;
GRANT SELECT ON policies TO acgs2_projector;

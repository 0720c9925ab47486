-- Shadow mode: the metrics of each tenant's comparisons of legacy decisions with its Rego,
-- counted per rollout epoch (a step of the rollout; a new one starts at every step change) and
-- per minute, so they add up across API processes and survive restarts. Latencies are
-- histograms over fixed logarithmic buckets (domain/shadow/metrics.py), added element-wise.
-- The replay of imported decisions (a `shadow_mode` job) keeps its checkpoint in
-- `shadow_replay_progress`, written in the transaction of the counts it adds, so a batch run
-- twice never counts twice.
CREATE OR REPLACE FUNCTION shadow_add_counts(a BIGINT[], b BIGINT[])
RETURNS BIGINT[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i), '{}')
    FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)
$$;
CREATE OR REPLACE AGGREGATE shadow_sum_counts(BIGINT[]) (
    SFUNC = shadow_add_counts, STYPE = BIGINT[], INITCOND = '{}'
);

CREATE TABLE IF NOT EXISTS shadow_metrics (
    tenant_id              UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    epoch                  INT NOT NULL,
    minute                 TIMESTAMPTZ NOT NULL,
    agree                  BIGINT NOT NULL DEFAULT 0,
    legacy_allow_rego_deny BIGINT NOT NULL DEFAULT 0,
    legacy_deny_rego_allow BIGINT NOT NULL DEFAULT 0,
    rego_error             BIGINT NOT NULL DEFAULT 0,
    legacy_latency         BIGINT[] NOT NULL,
    rego_latency           BIGINT[] NOT NULL,
    PRIMARY KEY (tenant_id, epoch, minute)
);
CREATE INDEX IF NOT EXISTS idx_shadow_metrics_minute ON shadow_metrics (tenant_id, minute);

CREATE TABLE IF NOT EXISTS shadow_replay_progress (
    tenant_id    UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    job_id       UUID NOT NULL,
    checkpoint   JSONB NOT NULL,
    processed    BIGINT NOT NULL,
    summary      JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (tenant_id, job_id)
);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['shadow_metrics', 'shadow_replay_progress'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation_policy ON %I '
            'USING (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid)',
            t);
        EXECUTE format('DROP POLICY IF EXISTS admin_read_access ON %I', t);
        EXECUTE format('CREATE POLICY admin_read_access ON %I FOR SELECT TO acgs2_admin USING (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO acgs2_app', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_admin', t);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION shadow_add_counts(BIGINT[], BIGINT[]) TO acgs2_app;
GRANT EXECUTE ON FUNCTION shadow_sum_counts(BIGINT[]) TO acgs2_app;

-- Webhooks: the `webhooks` read model (one row per live webhook, written by its projection from
-- the `webhook.*` events; no secret, not even sealed) and the delivery log (one row per webhook
-- and event: its status, attempts, last response code and latency), written by the webhook
-- workers (acgs2_projector) for every tenant and read by the API as acgs2_app inside a session
-- scoped to the tenant. Undeliverable events are kept with the sinks' dead letters.
CREATE TABLE IF NOT EXISTS webhooks (
    webhook_id            UUID PRIMARY KEY,
    tenant_id             UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    webhook_url           TEXT NOT NULL,
    events                TEXT[] NOT NULL,
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT,
    version               INT NOT NULL,
    constitutional_hash   VARCHAR(64) NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_webhooks_tenant ON webhooks (tenant_id, created_at, webhook_id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    webhook_id        UUID NOT NULL,
    event_id          UUID NOT NULL,
    position          BIGINT NOT NULL,
    event_type        VARCHAR(200) NOT NULL,
    status            VARCHAR(20) NOT NULL
        CHECK (status IN ('delivered', 'failed', 'dead_lettered')),
    attempts          INT NOT NULL,
    response_code     INT,
    latency_ms        DOUBLE PRECISION,
    error             TEXT,
    first_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_tenant
    ON webhook_deliveries (tenant_id, webhook_id, last_attempt_at DESC);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhooks', 'webhook_deliveries'] LOOP
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
        EXECUTE format('DROP POLICY IF EXISTS projector_access ON %I', t);
        EXECUTE format('CREATE POLICY projector_access ON %I TO acgs2_projector '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO acgs2_projector', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_admin', t);
    END LOOP;
END
$$;
GRANT SELECT ON webhooks TO acgs2_app;
GRANT SELECT ON webhook_deliveries TO acgs2_app;

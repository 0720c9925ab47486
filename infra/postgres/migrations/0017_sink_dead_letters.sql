-- SIEM sinks: the records a sink could not deliver after its attempts ran out (dead letters).
-- A row belongs to the tenant that owns the sink (a platform sink's rows belong to the system
-- tenant), so a tenant admin sees and re-drives only their own sinks' dead letters. The sink
-- workers (acgs2_projector) write them for every tenant; the API reads and drains them as
-- acgs2_app inside a session scoped to the tenant. A record is kept once per sink and event
-- (the stable event id): failing again only counts another attempt.
CREATE TABLE IF NOT EXISTS sink_dead_letters (
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    integration_id    UUID NOT NULL,
    event_id          UUID NOT NULL,
    position          BIGINT NOT NULL,
    event_tenant_id   UUID NOT NULL,
    event_type        VARCHAR(200) NOT NULL,
    record            JSONB NOT NULL,
    error             TEXT NOT NULL,
    attempts          INT NOT NULL,
    first_failed_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_failed_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (integration_id, event_id)
);
CREATE INDEX IF NOT EXISTS idx_sink_dead_letters_tenant
    ON sink_dead_letters (tenant_id, integration_id, position);

ALTER TABLE sink_dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE sink_dead_letters FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON sink_dead_letters;
CREATE POLICY tenant_isolation_policy ON sink_dead_letters
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS admin_read_access ON sink_dead_letters;
CREATE POLICY admin_read_access ON sink_dead_letters FOR SELECT TO acgs2_admin USING (true);
DROP POLICY IF EXISTS projector_access ON sink_dead_letters;
CREATE POLICY projector_access ON sink_dead_letters TO acgs2_projector
    USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON sink_dead_letters TO acgs2_app, acgs2_projector;
GRANT SELECT ON sink_dead_letters TO acgs2_admin;

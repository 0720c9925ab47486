-- Idempotency keys of POST requests: the first response to (principal, key) is kept
-- for 24 hours with a hash of the request, so a retry with the same body gets the same response
-- and a reuse with another body is refused. A row with a NULL status is a request in flight.
-- Tenant-scoped like every table with a tenant_id: RLS enabled and forced, USING = WITH CHECK.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant_id            UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    principal_sub        VARCHAR(255) NOT NULL,
    idempotency_key      VARCHAR(255) NOT NULL,
    request_hash         CHAR(64) NOT NULL,
    status_code          INT,
    response_body        BYTEA,
    constitutional_hash  VARCHAR(16) NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (tenant_id, principal_sub, idempotency_key)
);
CREATE INDEX IF NOT EXISTS idx_idempotency_keys_created ON idempotency_keys (tenant_id, created_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON idempotency_keys;
CREATE POLICY tenant_isolation_policy ON idempotency_keys
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO acgs2_app;

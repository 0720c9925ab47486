-- One-time sign-in requests of the browser flows (a SAML AuthnRequest, an OIDC authorization
-- request): what the service sent, kept server-side until the identity provider's answer comes
-- back, used once, never after `expires_at`. Only the SHA-256 of the request id is stored; the
-- id starts with its tenant's id, so the answer is read inside that tenant (Row-Level Security).

CREATE TABLE IF NOT EXISTS auth_sign_in_requests (
    request_hash      BYTEA PRIMARY KEY,
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    integration_id    UUID NOT NULL,
    kind              VARCHAR(20) NOT NULL,
    payload           JSONB NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_auth_sign_in_requests_expiry
    ON auth_sign_in_requests (tenant_id, expires_at);

ALTER TABLE auth_sign_in_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth_sign_in_requests FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON auth_sign_in_requests;
CREATE POLICY tenant_isolation_policy ON auth_sign_in_requests
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, DELETE ON auth_sign_in_requests TO acgs2_app;
GRANT SELECT ON auth_sign_in_requests TO acgs2_admin;

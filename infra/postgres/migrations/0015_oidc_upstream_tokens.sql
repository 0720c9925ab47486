-- The identity provider's refresh token of each OpenID Connect / OAuth session, sealed with the
-- integration's data key (never stored in clear): exchanged when the session is refreshed,
-- revoked at the provider and deleted at logout, gone with the session.

CREATE TABLE IF NOT EXISTS auth_upstream_tokens (
    sid               TEXT PRIMARY KEY REFERENCES auth_sessions (sid) ON DELETE CASCADE,
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    integration_id    UUID NOT NULL,
    key_id            TEXT NOT NULL,
    refresh_token     TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

ALTER TABLE auth_upstream_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth_upstream_tokens FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON auth_upstream_tokens;
CREATE POLICY tenant_isolation_policy ON auth_upstream_tokens
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_upstream_tokens TO acgs2_app;
GRANT SELECT ON auth_upstream_tokens TO acgs2_admin;

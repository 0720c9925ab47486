-- Sign-in sessions: one row per session (the family of its refresh tokens), the refresh tokens
-- (only their SHA-256 is stored), and the feed of revocations every API process polls so that
-- a logout holds across processes within a second. Role mappings keep their baseline table
-- (the projection writes it); their sources are claimed like integration names.

CREATE TABLE IF NOT EXISTS auth_sessions (
    sid               TEXT PRIMARY KEY,
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    sub               VARCHAR(255) NOT NULL,
    auth_method       VARCHAR(20) NOT NULL,
    integration_id    UUID,
    user_dn           TEXT,
    maci_roles        TEXT[] NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    refreshed_at      TIMESTAMPTZ,
    expires_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ,
    revoked_reason    VARCHAR(40)
);
CREATE INDEX IF NOT EXISTS idx_auth_sessions_tenant_sub ON auth_sessions (tenant_id, sub);

CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
    token_hash        BYTEA PRIMARY KEY,
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    sid               TEXT NOT NULL REFERENCES auth_sessions (sid) ON DELETE CASCADE,
    issued_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at        TIMESTAMPTZ NOT NULL,
    used_at           TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_auth_refresh_tokens_sid ON auth_refresh_tokens (sid);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['auth_sessions', 'auth_refresh_tokens'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation_policy ON %I '
            'USING (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid)',
            t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO acgs2_app', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_admin', t);
    END LOOP;
END
$$;

-- The revocation feed: ids only (a session id or an access token's jti, both random), no tenant
-- column, so every process can poll it whatever the tenant. A row is kept until the longest
-- access token it could refuse has expired.
CREATE TABLE IF NOT EXISTS auth_revocations (
    seq               BIGSERIAL PRIMARY KEY,
    kind              VARCHAR(3) NOT NULL CHECK (kind IN ('sid', 'jti')),
    value             TEXT NOT NULL,
    revoked_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    keep_until        TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_auth_revocations_keep_until ON auth_revocations (keep_until);
GRANT SELECT, INSERT, DELETE ON auth_revocations TO acgs2_app;
GRANT USAGE ON SEQUENCE auth_revocations_seq_seq TO acgs2_app;

-- A role mapping's source (integration, type, normalised value) is claimed per tenant in the
-- same transaction as the event that takes it (the value is "<integration>:<type>:<sha256>").
ALTER TABLE tenant_claims DROP CONSTRAINT IF EXISTS tenant_claims_kind_check;
ALTER TABLE tenant_claims ADD CONSTRAINT tenant_claims_kind_check
    CHECK (kind IN ('tenant_slug', 'tenant_name', 'integration_name', 'role_mapping'));
CREATE UNIQUE INDEX IF NOT EXISTS tenant_claims_role_mapping ON tenant_claims (tenant_id, value)
    WHERE kind = 'role_mapping';

-- SAML sign-in: the per-tenant replay cache (an assertion id accepted once, remembered until its
-- NotOnOrAfter) and what single logout needs of each SAML session (the IdP's NameID and
-- SessionIndex, to build a LogoutRequest or to find the sessions an IdP's LogoutRequest ends).

CREATE TABLE IF NOT EXISTS auth_saml_assertions (
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    assertion_hash    BYTEA NOT NULL,
    integration_id    UUID NOT NULL,
    seen_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    keep_until        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, assertion_hash)
);
CREATE INDEX IF NOT EXISTS idx_auth_saml_assertions_keep_until
    ON auth_saml_assertions (tenant_id, keep_until);

CREATE TABLE IF NOT EXISTS auth_saml_sessions (
    sid               TEXT PRIMARY KEY REFERENCES auth_sessions (sid) ON DELETE CASCADE,
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    integration_id    UUID NOT NULL,
    name_id           TEXT NOT NULL,
    name_id_format    TEXT,
    session_index     TEXT
);
CREATE INDEX IF NOT EXISTS idx_auth_saml_sessions_name_id
    ON auth_saml_sessions (tenant_id, integration_id, name_id);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['auth_saml_assertions', 'auth_saml_sessions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation_policy ON %I '
            'USING (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid)',
            t);
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I TO acgs2_app', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_admin', t);
    END LOOP;
END
$$;

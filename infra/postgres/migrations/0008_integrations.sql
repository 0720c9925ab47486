-- Enterprise integrations: the read model's lifecycle columns, the uniqueness claim of an
-- integration's name, and the wrapped data keys that encrypt integrations' secrets.

-- The read model keeps archived integrations (for audit) until their tenant is purged, so
-- uniqueness holds among live ones only; the claim below enforces it when the event is saved.
DO $$
DECLARE
    c TEXT;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'enterprise_integrations'::regclass AND contype = 'u' LOOP
        EXECUTE format('ALTER TABLE enterprise_integrations DROP CONSTRAINT %I', c);
    END LOOP;
END
$$;
ALTER TABLE enterprise_integrations
    ADD COLUMN IF NOT EXISTS archived_at TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS purge_after TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS secrets_shredded BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX IF NOT EXISTS enterprise_integrations_live_name
    ON enterprise_integrations (tenant_id, integration_type, integration_name)
    WHERE archived_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_enterprise_integrations_enabled
    ON enterprise_integrations (enabled) WHERE archived_at IS NULL;

-- An integration's name is claimed per tenant and type (the value is "<type>:<casefolded name>"),
-- in the same transaction as the event that takes it, like tenant slugs.
ALTER TABLE tenant_claims DROP CONSTRAINT IF EXISTS tenant_claims_kind_check;
ALTER TABLE tenant_claims ADD CONSTRAINT tenant_claims_kind_check
    CHECK (kind IN ('tenant_slug', 'tenant_name', 'integration_name'));
CREATE UNIQUE INDEX IF NOT EXISTS tenant_claims_integration_name ON tenant_claims (tenant_id, value)
    WHERE kind = 'integration_name';

-- One data key per integration, wrapped by its tenant's key-encryption key (held by the key
-- provider: a local key file or Vault/OpenBao transit). Deleting a row crypto-shreds the
-- secrets it encrypted; destroying the tenant's key-encryption key makes every row unreadable.
CREATE TABLE IF NOT EXISTS integration_data_keys (
    key_id        UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    provider      VARCHAR(20) NOT NULL,
    wrapped_key   TEXT NOT NULL,
    kek_version   INT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    rewrapped_at  TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_integration_data_keys_tenant ON integration_data_keys (tenant_id);

ALTER TABLE integration_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_data_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON integration_data_keys;
CREATE POLICY tenant_isolation_policy ON integration_data_keys
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON integration_data_keys TO acgs2_app;

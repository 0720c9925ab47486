-- tenant_id on the baseline tables; legacy rows belong to the system tenant. policies keeps a
-- nullable tenant_id: NULL marks a system-wide policy, readable by every tenant.
ALTER TABLE policies ADD COLUMN IF NOT EXISTS tenant_id UUID;
ALTER TABLE agent_messages ADD COLUMN IF NOT EXISTS tenant_id UUID;
ALTER TABLE deliberation_tasks ADD COLUMN IF NOT EXISTS tenant_id UUID;

UPDATE agent_messages SET tenant_id = '00000000-0000-0000-0000-000000000000' WHERE tenant_id IS NULL;
UPDATE deliberation_tasks SET tenant_id = '00000000-0000-0000-0000-000000000000' WHERE tenant_id IS NULL;
UPDATE policies SET tenant_id = '00000000-0000-0000-0000-000000000000'
    WHERE tenant_id IS NULL AND created_at >= '2026-01-07';

ALTER TABLE agent_messages
    ALTER COLUMN tenant_id SET DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE deliberation_tasks
    ALTER COLUMN tenant_id SET DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE policies
    ALTER COLUMN tenant_id SET DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'policies_tenant_required') THEN
        ALTER TABLE policies ADD CONSTRAINT policies_tenant_required
            CHECK (created_at < '2026-01-07' OR tenant_id IS NOT NULL) NOT VALID;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS idx_policies_tenant ON policies (tenant_id);
CREATE INDEX IF NOT EXISTS idx_agent_messages_tenant ON agent_messages (tenant_id);
CREATE INDEX IF NOT EXISTS idx_deliberation_tasks_tenant ON deliberation_tasks (tenant_id);

-- The multi-tenant tables of the specification (database-schema.md), with the project's fixes
-- (decisions.md section 4). Read models carry no foreign keys to `tenants`: each is rebuilt by its
-- own projection from the event store, in its own order, and may be truncated for a replay.

CREATE TABLE IF NOT EXISTS tenants (
    tenant_id                   UUID PRIMARY KEY,
    tenant_name                 VARCHAR(255) NOT NULL,
    tenant_slug                 VARCHAR(100) NOT NULL,
    status                      VARCHAR(50)  NOT NULL DEFAULT 'active',
    max_requests_per_minute     INT          NOT NULL DEFAULT 1000,
    max_storage_gb              INT          NOT NULL DEFAULT 10,
    max_concurrent_connections  INT          NOT NULL DEFAULT 100,
    constitutional_hash         VARCHAR(16)  NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    created_at                  TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    updated_at                  TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    deactivated_at              TIMESTAMPTZ,
    data_purge_scheduled        TIMESTAMPTZ,
    admin_email                 VARCHAR(255) NOT NULL,
    billing_plan                VARCHAR(50)  NOT NULL DEFAULT 'standard',
    version                     BIGINT       NOT NULL DEFAULT 1,
    CONSTRAINT tenants_tenant_name_key UNIQUE (tenant_name),
    CONSTRAINT tenants_tenant_slug_key UNIQUE (tenant_slug),
    CONSTRAINT valid_tenant_name CHECK (LENGTH(tenant_name) >= 3),
    CONSTRAINT valid_tenant_slug CHECK (tenant_slug ~ '^[a-z0-9-]+$'),
    CONSTRAINT valid_tenant_status CHECK (status IN ('active', 'suspended', 'deactivated'))
);
CREATE INDEX IF NOT EXISTS idx_tenants_status ON tenants (status);
CREATE INDEX IF NOT EXISTS idx_tenants_created ON tenants (created_at DESC, tenant_id);

INSERT INTO tenants (tenant_id, tenant_name, tenant_slug, admin_email)
VALUES ('00000000-0000-0000-0000-000000000000', 'System', 'system', 'admin@acgs2.local')
ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS enterprise_integrations (
    integration_id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                 UUID NOT NULL,
    integration_type          VARCHAR(50) NOT NULL
        CHECK (integration_type IN ('ldap', 'saml', 'oauth', 'oidc', 'kafka', 'siem', 'data_warehouse')),
    integration_name          VARCHAR(255) NOT NULL,
    config_encrypted          TEXT NOT NULL,
    config_encryption_key_id  VARCHAR(255) NOT NULL,
    enabled                   BOOLEAN NOT NULL DEFAULT true,
    health_status             VARCHAR(50) NOT NULL DEFAULT 'unknown'
        CHECK (health_status IN ('healthy', 'degraded', 'unhealthy', 'unknown')),
    last_health_check         TIMESTAMPTZ,
    constitutional_hash       VARCHAR(16) NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    created_at                TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_by                VARCHAR(255),
    UNIQUE (tenant_id, integration_type, integration_name)
);
CREATE INDEX IF NOT EXISTS idx_enterprise_integrations_tenant ON enterprise_integrations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_enterprise_integrations_type
    ON enterprise_integrations (tenant_id, integration_type);
CREATE INDEX IF NOT EXISTS idx_enterprise_integrations_health ON enterprise_integrations (health_status);

CREATE TABLE IF NOT EXISTS tenant_role_mappings (
    mapping_id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            UUID NOT NULL,
    integration_id       UUID NOT NULL,
    source_type          VARCHAR(50) NOT NULL
        CHECK (source_type IN ('ldap_group', 'saml_attribute', 'oauth_scope', 'oidc_claim')),
    source_value         VARCHAR(500) NOT NULL,
    maci_role            VARCHAR(50) NOT NULL
        CHECK (maci_role IN ('EXECUTIVE', 'LEGISLATIVE', 'JUDICIAL', 'MONITOR', 'AUDITOR',
                             'CONTROLLER', 'IMPLEMENTER')),
    constitutional_hash  VARCHAR(16) NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    priority             INT NOT NULL DEFAULT 100,
    UNIQUE (tenant_id, integration_id, source_type, source_value)
);
CREATE INDEX IF NOT EXISTS idx_tenant_role_mappings_tenant ON tenant_role_mappings (tenant_id);
CREATE INDEX IF NOT EXISTS idx_tenant_role_mappings_integration ON tenant_role_mappings (integration_id);
CREATE INDEX IF NOT EXISTS idx_tenant_role_mappings_priority
    ON tenant_role_mappings (tenant_id, priority DESC);

CREATE TABLE IF NOT EXISTS migration_jobs (
    job_id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             UUID NOT NULL,
    job_type              VARCHAR(50) NOT NULL
        CHECK (job_type IN ('policy_conversion', 'decision_log_import', 'shadow_mode', 'gap_analysis')),
    job_status            VARCHAR(50) NOT NULL DEFAULT 'pending'
        CHECK (job_status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    source_system         VARCHAR(255) NOT NULL,
    source_config         JSONB NOT NULL,
    total_items           INT,
    processed_items       INT NOT NULL DEFAULT 0,
    successful_items      INT NOT NULL DEFAULT 0,
    failed_items          INT NOT NULL DEFAULT 0,
    result_summary        JSONB,
    error_details         TEXT,
    started_at            TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    cancelled_at          TIMESTAMPTZ,
    estimated_completion  TIMESTAMPTZ,
    constitutional_hash   VARCHAR(16) NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    created_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_by            VARCHAR(255) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_tenant ON migration_jobs (tenant_id);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_status ON migration_jobs (tenant_id, job_status);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_type ON migration_jobs (job_type);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_created ON migration_jobs (created_at DESC);

-- Range-partitioned by month; the primary key must include the partition key.
CREATE TABLE IF NOT EXISTS tenant_audit_log (
    audit_id                          UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id                         UUID NOT NULL,
    event_type                        VARCHAR(100) NOT NULL,
    event_category                    VARCHAR(50) NOT NULL
        CHECK (event_category IN ('authentication', 'authorization', 'governance', 'integration',
                                  'migration', 'admin')),
    actor_id                          VARCHAR(255),
    actor_type                        VARCHAR(50) CHECK (actor_type IN ('user', 'agent', 'system')),
    target_resource                   VARCHAR(500),
    target_id                         VARCHAR(255),
    action                            VARCHAR(100) NOT NULL,
    result                            VARCHAR(50) NOT NULL
        CHECK (result IN ('success', 'failure', 'denied')),
    details                           JSONB,
    error_message                     TEXT,
    ip_address                        INET,
    user_agent                        TEXT,
    session_id                        VARCHAR(255),
    constitutional_hash               VARCHAR(16) NOT NULL DEFAULT 'cdd01ef066bc6cf2',
    constitutional_validation_passed  BOOLEAN NOT NULL DEFAULT true,
    timestamp                         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (audit_id, timestamp)
) PARTITION BY RANGE (timestamp);
CREATE TABLE IF NOT EXISTS tenant_audit_log_default PARTITION OF tenant_audit_log DEFAULT;
CREATE INDEX IF NOT EXISTS idx_tenant_audit_tenant ON tenant_audit_log (tenant_id);
CREATE INDEX IF NOT EXISTS idx_tenant_audit_timestamp ON tenant_audit_log (tenant_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_tenant_audit_category ON tenant_audit_log (event_category);
CREATE INDEX IF NOT EXISTS idx_tenant_audit_actor ON tenant_audit_log (actor_id);
CREATE INDEX IF NOT EXISTS idx_tenant_audit_result ON tenant_audit_log (result);

-- Creates the monthly partitions from `months_back` before to `months_ahead` after now. Rows that
-- fall outside them (a replay of old events) land in the default partition, never lost. A new
-- partition cannot be attached while the default holds rows of its range, so those are moved in.
CREATE OR REPLACE FUNCTION ensure_audit_partitions(months_back INT, months_ahead INT)
RETURNS INT LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m DATE;
    upper DATE;
    part TEXT;
    created INT := 0;
BEGIN
    FOR i IN -months_back..months_ahead LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        upper := (m + INTERVAL '1 month')::date;
        part := format('tenant_audit_log_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TEMP TABLE audit_moving ON COMMIT DROP AS '
                           'SELECT * FROM tenant_audit_log_default '
                           'WHERE timestamp >= %L AND timestamp < %L', m, upper);
            EXECUTE format('DELETE FROM tenant_audit_log_default '
                           'WHERE timestamp >= %L AND timestamp < %L', m, upper);
            EXECUTE format('CREATE TABLE %I PARTITION OF tenant_audit_log '
                           'FOR VALUES FROM (%L) TO (%L)', part, m, upper);
            EXECUTE format('INSERT INTO %I SELECT * FROM audit_moving', part);
            DROP TABLE audit_moving;
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
SELECT ensure_audit_partitions(1, 3);

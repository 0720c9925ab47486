-- The audit log as users read it: a per-tenant hash chain over its rows, the keyset index of
-- its pages, per-tenant retention with legal hold, and export jobs.

-- Each row's hash covers its content and the previous row's hash of the same tenant, in log
-- order (chain_seq 1, 2, ...); the first row's previous hash is 64 zeros.
ALTER TABLE tenant_audit_log ADD COLUMN IF NOT EXISTS chain_seq BIGINT;
ALTER TABLE tenant_audit_log ADD COLUMN IF NOT EXISTS prev_hash CHAR(64);
ALTER TABLE tenant_audit_log ADD COLUMN IF NOT EXISTS row_hash CHAR(64);
-- Pages are newest first, keyed on (timestamp, audit_id) so a deep page costs what the first does;
-- the filter columns ride along so a filtered count reads the index alone.
CREATE INDEX IF NOT EXISTS idx_tenant_audit_keyset
    ON tenant_audit_log (tenant_id, timestamp DESC, audit_id DESC)
    INCLUDE (event_category, result, actor_id, event_type);
CREATE INDEX IF NOT EXISTS idx_tenant_audit_chain ON tenant_audit_log (tenant_id, chain_seq);

-- The head of each tenant's chain (its last row), and the anchor where the retained part of the
-- chain starts: the sequence number and hash of the last row removed by retention (0 and 64
-- zeros while nothing was removed). Deleting the newest row shows as a head the rows lack.
CREATE TABLE IF NOT EXISTS audit_chain_heads (
    tenant_id    UUID PRIMARY KEY,
    seq          BIGINT NOT NULL,
    hash         CHAR(64) NOT NULL,
    anchor_seq   BIGINT NOT NULL DEFAULT 0,
    anchor_hash  CHAR(64) NOT NULL DEFAULT repeat('0', 64),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per-tenant retention (days; 90 unless set) and legal hold, maintained from the tenant's
-- AuditRetention events; a tenant without a row keeps the default and has no hold.
CREATE TABLE IF NOT EXISTS audit_settings (
    tenant_id          UUID PRIMARY KEY,
    retention_days     INT NOT NULL DEFAULT 90 CHECK (retention_days BETWEEN 1 AND 36500),
    legal_hold         BOOLEAN NOT NULL DEFAULT false,
    legal_hold_reason  TEXT,
    updated_by         VARCHAR(255),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Export jobs: queued by the API, run by the audit_exports worker, the file kept until expiry.
CREATE TABLE IF NOT EXISTS audit_exports (
    export_id     VARCHAR(40) PRIMARY KEY,
    tenant_id     UUID NOT NULL,
    requested_by  VARCHAR(255) NOT NULL,
    format        VARCHAR(10) NOT NULL CHECK (format IN ('json', 'jsonl', 'csv', 'pdf')),
    filters       JSONB NOT NULL,
    status        VARCHAR(20) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'expired')),
    progress      INT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    total_rows    BIGINT,
    rows_written  BIGINT NOT NULL DEFAULT 0,
    sha256        CHAR(64),
    size_bytes    BIGINT,
    chain_head    JSONB,
    content       BYTEA,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    completed_at  TIMESTAMPTZ,
    expires_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_audit_exports_tenant ON audit_exports (tenant_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_audit_exports_queue ON audit_exports (created_at)
    WHERE status = 'queued';

DO $$
DECLARE
    t TEXT;
    cur CONSTANT TEXT := 'nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid';
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_chain_heads', 'audit_settings', 'audit_exports'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format('CREATE POLICY tenant_isolation_policy ON %I USING (tenant_id = %s) '
                       'WITH CHECK (tenant_id = %s)', t, cur, cur);
        EXECUTE format('DROP POLICY IF EXISTS admin_read_access ON %I', t);
        EXECUTE format('CREATE POLICY admin_read_access ON %I FOR SELECT TO acgs2_admin '
                       'USING (true)', t);
        EXECUTE format('DROP POLICY IF EXISTS projector_access ON %I', t);
        EXECUTE format('CREATE POLICY projector_access ON %I TO acgs2_projector '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_app, acgs2_admin', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO acgs2_projector',
                       t);
    END LOOP;
END
$$;
-- The API queues exports in the requesting tenant's session (RLS checks the tenant).
GRANT INSERT ON audit_exports TO acgs2_app;

-- Retention drops a monthly partition once every row in it has expired: detached, then dropped.
-- Only a monthly partition of tenant_audit_log qualifies (never the default one, never any
-- other table); the caller (the retention worker) has checked that it is wholly expired.
CREATE OR REPLACE FUNCTION drop_audit_partition(part TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF part !~ '^tenant_audit_log_y[0-9]{4}m[0-9]{2}$' OR NOT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'tenant_audit_log'::regclass AND c.relname = part
    ) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE tenant_audit_log DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION drop_audit_partition(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_audit_partition(TEXT) TO acgs2_projector;

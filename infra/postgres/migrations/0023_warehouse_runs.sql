-- Data-warehouse integrations: the last run of each one's sync (for `acgs warehouse status` and
-- GET .../integrations/{id}/sync). The watermark itself lives in the warehouse, committed with
-- the rows it loaded; this row repeats the last one seen, with the time and error of the last
-- run. A row belongs to the tenant that owns the integration; the warehouse workers
-- (acgs2_projector) write them for every tenant; the API reads them as acgs2_app inside a
-- session scoped to the tenant.
CREATE TABLE IF NOT EXISTS warehouse_runs (
    tenant_id         UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    integration_id    UUID PRIMARY KEY,
    watermark         BIGINT NOT NULL DEFAULT 0,
    rows_loaded       BIGINT NOT NULL DEFAULT 0,
    runs              BIGINT NOT NULL DEFAULT 0,
    last_run_at       TIMESTAMPTZ,
    last_success_at   TIMESTAMPTZ,
    last_error        TEXT,
    last_error_at     TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_warehouse_runs_tenant ON warehouse_runs (tenant_id);

ALTER TABLE warehouse_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE warehouse_runs FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON warehouse_runs;
CREATE POLICY tenant_isolation_policy ON warehouse_runs
    USING (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS admin_read_access ON warehouse_runs;
CREATE POLICY admin_read_access ON warehouse_runs FOR SELECT TO acgs2_admin USING (true);
DROP POLICY IF EXISTS projector_access ON warehouse_runs;
CREATE POLICY projector_access ON warehouse_runs TO acgs2_projector
    USING (true) WITH CHECK (true);

GRANT SELECT ON warehouse_runs TO acgs2_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON warehouse_runs TO acgs2_projector;
GRANT SELECT ON warehouse_runs TO acgs2_admin;

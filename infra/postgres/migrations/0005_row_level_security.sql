-- Row-level security on every table that has a tenant_id: ENABLE and FORCE, with a
-- tenant policy whose USING and WITH CHECK read the transaction-local app.current_tenant_id.
-- An unset variable matches no row: fail closed, never an error and never a leak.
-- acgs2_admin reads across tenants (platform principals only, via SET LOCAL ROLE);
-- acgs2_projector maintains the read models from the whole event log.
DO $$
DECLARE
    t TEXT;
    cur CONSTANT TEXT := 'nullif(current_setting(''app.current_tenant_id'', true), '''')::uuid';
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'enterprise_integrations', 'tenant_role_mappings',
                             'migration_jobs', 'tenant_audit_log', 'agent_messages',
                             'deliberation_tasks', 'governance_events', 'tenant_claims'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_policy ON %I', t);
        EXECUTE format('CREATE POLICY tenant_isolation_policy ON %I USING (tenant_id = %s) '
                       'WITH CHECK (tenant_id = %s)', t, cur, cur);
        EXECUTE format('DROP POLICY IF EXISTS admin_read_access ON %I', t);
        EXECUTE format('CREATE POLICY admin_read_access ON %I FOR SELECT TO acgs2_admin '
                       'USING (true)', t);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['tenants', 'enterprise_integrations', 'tenant_role_mappings',
                             'migration_jobs', 'tenant_audit_log'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS projector_access ON %I', t);
        EXECUTE format('CREATE POLICY projector_access ON %I TO acgs2_projector '
                       'USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %I TO acgs2_app, acgs2_admin', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO acgs2_projector', t);
    END LOOP;

    -- System-wide policies (tenant_id IS NULL) are readable by every tenant, writable only by
    -- platform principals.
    ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
    ALTER TABLE policies FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS tenant_isolation_policy ON policies;
    EXECUTE format('CREATE POLICY tenant_isolation_policy ON policies USING (tenant_id = %s) '
                   'WITH CHECK (tenant_id = %s)', cur, cur);
    DROP POLICY IF EXISTS system_wide_read ON policies;
    CREATE POLICY system_wide_read ON policies FOR SELECT USING (tenant_id IS NULL);
    DROP POLICY IF EXISTS admin_full_access ON policies;
    CREATE POLICY admin_full_access ON policies TO acgs2_admin USING (true) WITH CHECK (true);

    DROP POLICY IF EXISTS projector_read ON governance_events;
    CREATE POLICY projector_read ON governance_events FOR SELECT TO acgs2_projector USING (true);
END
$$;

GRANT USAGE ON SCHEMA public TO acgs2_app, acgs2_admin, acgs2_projector;
-- UPDATE is needed only for the library's LOCK TABLE ... IN EXCLUSIVE MODE, which keeps
-- notification order equal to commit order; a trigger refuses any actual UPDATE or DELETE.
GRANT SELECT, INSERT, UPDATE ON governance_events TO acgs2_app;
GRANT USAGE ON SEQUENCE governance_events_notification_id_seq TO acgs2_app;
GRANT SELECT ON governance_events TO acgs2_projector, acgs2_admin;
GRANT SELECT, INSERT, DELETE ON tenant_claims TO acgs2_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON policies, agent_messages, deliberation_tasks TO acgs2_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON policies TO acgs2_admin;
GRANT SELECT ON projection_positions TO acgs2_app, acgs2_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_positions TO acgs2_projector;
REVOKE ALL ON FUNCTION acgs_insert_events(TEXT, VARCHAR[], VARCHAR[], VARCHAR[], VARCHAR[],
                                           stored_event_uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acgs_insert_events(TEXT, VARCHAR[], VARCHAR[], VARCHAR[], VARCHAR[],
                                             stored_event_uuid[]) TO acgs2_app;
REVOKE ALL ON FUNCTION ensure_audit_partitions(INT, INT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_audit_partitions(INT, INT) TO acgs2_app, acgs2_projector;

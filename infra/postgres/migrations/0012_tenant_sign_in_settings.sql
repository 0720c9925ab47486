-- A tenant's sign-in settings in the tenants read model (from tenant.sign_in_settings_changed):
-- the role of a user no role mapping matches ('none' refuses the sign-in) and the lifetimes of
-- access and refresh tokens. A sign-in reads them with the tenant's status in one query, a refresh
-- with its rotation (below).

ALTER TABLE tenants
    ADD COLUMN IF NOT EXISTS default_role VARCHAR(20) NOT NULL DEFAULT 'MONITOR',
    ADD COLUMN IF NOT EXISTS access_token_ttl_seconds INT NOT NULL DEFAULT 900,
    ADD COLUMN IF NOT EXISTS refresh_token_ttl_seconds INT NOT NULL DEFAULT 28800;

-- A refresh in one statement (one round trip): scope the transaction to the tenant, lock the
-- presented refresh token and its session, then either
--   'rotated'  (the token is marked used, a new one (`p_new_hash`) issued until the session's end,
--               and the tenant's status and sign-in settings returned with the session),
--   'reused'   (the token was used before: the session is revoked and put on the revocation
--               feed, committed, and the caller refuses the refresh), or
--   'rejected' (unknown or expired token, or a revoked session; nothing written).
-- It runs as the caller (row-level security applies) in the caller's implicit transaction.
CREATE OR REPLACE FUNCTION acgs_rotate_refresh_token(
    p_tenant TEXT, p_presented BYTEA, p_new_hash BYTEA, p_at TIMESTAMPTZ, p_keep_seconds INT,
    OUT outcome TEXT, OUT r_sid TEXT, OUT r_tenant_id UUID, OUT r_sub TEXT,
    OUT r_auth_method TEXT, OUT r_integration_id UUID, OUT r_user_dn TEXT,
    OUT r_maci_roles TEXT[], OUT r_expires_at TIMESTAMPTZ, OUT r_tenant_status TEXT,
    OUT r_default_role TEXT, OUT r_access_token_ttl_seconds INT,
    OUT r_refresh_token_ttl_seconds INT
) LANGUAGE plpgsql AS $$
DECLARE
    v_token RECORD;
    v_session RECORD;
BEGIN
    PERFORM set_config('app.current_tenant_id', p_tenant, true);
    outcome := 'rejected';
    SELECT t.sid, t.expires_at, t.used_at INTO v_token
    FROM auth_refresh_tokens t WHERE t.token_hash = p_presented FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT s.* INTO v_session FROM auth_sessions s WHERE s.sid = v_token.sid FOR UPDATE;
    IF NOT FOUND OR v_session.revoked_at IS NOT NULL THEN
        RETURN;
    END IF;
    r_sid := v_session.sid;
    r_tenant_id := v_session.tenant_id;
    r_sub := v_session.sub;
    r_auth_method := v_session.auth_method;
    r_integration_id := v_session.integration_id;
    r_user_dn := v_session.user_dn;
    r_maci_roles := v_session.maci_roles;
    r_expires_at := v_session.expires_at;
    IF v_token.used_at IS NOT NULL THEN
        UPDATE auth_sessions SET revoked_at = p_at, revoked_reason = 'refresh_token_reused'
        WHERE sid = v_session.sid;
        INSERT INTO auth_revocations (kind, value, revoked_at, keep_until)
        VALUES ('sid', v_session.sid, p_at, p_at + make_interval(secs => p_keep_seconds));
        outcome := 'reused';
        RETURN;
    END IF;
    IF v_token.expires_at <= p_at OR v_session.expires_at <= p_at THEN
        RETURN;
    END IF;
    UPDATE auth_refresh_tokens SET used_at = p_at WHERE token_hash = p_presented;
    UPDATE auth_sessions SET refreshed_at = p_at WHERE sid = v_session.sid;
    INSERT INTO auth_refresh_tokens (token_hash, tenant_id, sid, issued_at, expires_at)
    VALUES (p_new_hash, v_session.tenant_id, v_session.sid, p_at, v_session.expires_at);
    SELECT status, default_role, access_token_ttl_seconds, refresh_token_ttl_seconds
    INTO r_tenant_status, r_default_role, r_access_token_ttl_seconds, r_refresh_token_ttl_seconds
    FROM tenants WHERE tenants.tenant_id = v_session.tenant_id;
    outcome := 'rotated';
END
$$;
GRANT EXECUTE ON FUNCTION acgs_rotate_refresh_token(TEXT, BYTEA, BYTEA, TIMESTAMPTZ, INT)
    TO acgs2_app;

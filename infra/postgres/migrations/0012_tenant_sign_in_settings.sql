-- A tenant's sign-in settings in the tenants read model (from tenant.sign_in_settings_changed):
-- the role of a user no role mapping matches ('none' refuses the sign-in) and the lifetimes of
-- access and refresh tokens. Sign-in reads them with the tenant's status in one query.

ALTER TABLE tenants
    ADD COLUMN IF NOT EXISTS default_role VARCHAR(20) NOT NULL DEFAULT 'MONITOR',
    ADD COLUMN IF NOT EXISTS access_token_ttl_seconds INT NOT NULL DEFAULT 900,
    ADD COLUMN IF NOT EXISTS refresh_token_ttl_seconds INT NOT NULL DEFAULT 28800;

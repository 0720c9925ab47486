-- Roles of the service and the pre-existing ("baseline") tables that multi-tenancy is added to.
-- acgs2_app: the service's queries and commands; never superuser, never BYPASSRLS, owns nothing.
-- acgs2_admin: platform-wide reads, entered with SET LOCAL ROLE by platform principals only.
-- acgs2_projector: projection runners; reads the whole event log, writes read models.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acgs2_app') THEN
        CREATE ROLE acgs2_app LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acgs2_admin') THEN
        CREATE ROLE acgs2_admin NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acgs2_projector') THEN
        CREATE ROLE acgs2_projector LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- NOINHERIT: acgs2_app holds acgs2_admin's rights (and its RLS policies) only after an explicit
-- SET LOCAL ROLE acgs2_admin, never implicitly through membership.
ALTER ROLE acgs2_app NOINHERIT;
GRANT acgs2_admin TO acgs2_app;

CREATE TABLE IF NOT EXISTS policies (
    policy_id   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        VARCHAR(255) NOT NULL,
    rego        TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS agent_messages (
    message_id  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    payload     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS deliberation_tasks (
    task_id     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    subject     TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- The event store (the eventsourcing library's application-recorder table, created here so that
-- the service role does not own it) plus tenant scoping. Every stored event carries tenant_id,
-- taken from the transaction's app.current_tenant_id; the row-level policies hide other tenants'
-- events, and a trigger pins each aggregate to the tenant of its first event, because RLS does not
-- hide primary-key conflicts: without the pin a tenant that learned another tenant's aggregate id
-- could append version N+1 to it and break the owner's next write.
DO $$
BEGIN
    IF to_regtype('stored_event_uuid') IS NULL THEN
        CREATE TYPE stored_event_uuid AS (
            originator_id UUID, originator_version BIGINT, topic TEXT, state BYTEA);
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS governance_events (
    originator_id       UUID NOT NULL,
    originator_version  BIGINT NOT NULL,
    topic               TEXT,
    state               BYTEA,
    notification_id     BIGSERIAL,
    tenant_id           UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid,
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX IF NOT EXISTS governance_events_notification_id_idx
    ON governance_events (notification_id ASC);

CREATE TABLE IF NOT EXISTS aggregate_tenants (
    originator_id  UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL
);

-- SECURITY DEFINER so the pin is visible and writable whatever the caller; every name in it is
-- schema-qualified instead of a per-call SET search_path, which costs a GUC save and restore on
-- every inserted event.
CREATE OR REPLACE FUNCTION pin_aggregate_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    owner UUID;
BEGIN
    IF NEW.originator_version = 1 THEN
        INSERT INTO public.aggregate_tenants (originator_id, tenant_id)
        VALUES (NEW.originator_id, NEW.tenant_id)
        ON CONFLICT (originator_id) DO NOTHING;
        IF FOUND THEN
            RETURN NEW;
        END IF;
    END IF;
    SELECT a.tenant_id INTO owner FROM public.aggregate_tenants a
        WHERE a.originator_id = NEW.originator_id;
    IF owner IS DISTINCT FROM NEW.tenant_id THEN
        RAISE EXCEPTION 'aggregate % belongs to another tenant', NEW.originator_id
            USING ERRCODE = '42501', CONSTRAINT = 'aggregate_tenant_pin';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stored events are immutable' USING ERRCODE = '42501';
END
$$;

DROP TRIGGER IF EXISTS governance_events_pin_tenant ON governance_events;
CREATE TRIGGER governance_events_pin_tenant BEFORE INSERT ON governance_events
    FOR EACH ROW EXECUTE FUNCTION pin_aggregate_tenant();
DROP TRIGGER IF EXISTS governance_events_immutable ON governance_events;
CREATE TRIGGER governance_events_immutable BEFORE UPDATE OR DELETE ON governance_events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_change();

-- Uniqueness claims (tenant slug, tenant name) written in the same transaction as the events
-- that make them, so two concurrent creates of one slug cannot both commit.
CREATE TABLE IF NOT EXISTS tenant_claims (
    kind       VARCHAR(50) NOT NULL CHECK (kind IN ('tenant_slug', 'tenant_name')),
    value      VARCHAR(255) NOT NULL,
    tenant_id  UUID NOT NULL
        DEFAULT nullif(current_setting('app.current_tenant_id', true), '')::uuid
);
-- One unique index per kind, so a violation names what was taken.
CREATE UNIQUE INDEX IF NOT EXISTS tenant_claims_tenant_slug ON tenant_claims (value)
    WHERE kind = 'tenant_slug';
CREATE UNIQUE INDEX IF NOT EXISTS tenant_claims_tenant_name ON tenant_claims (value)
    WHERE kind = 'tenant_name';
CREATE INDEX IF NOT EXISTS idx_tenant_claims_tenant ON tenant_claims (tenant_id);

-- Where each projection runner (and the Kafka relay) has got to in the notification log.
CREATE TABLE IF NOT EXISTS projection_positions (
    name        VARCHAR(100) PRIMARY KEY,
    position    BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

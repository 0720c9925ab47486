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

-- The pin: an event after the first may be appended only by a transaction that can see the
-- aggregate's first event. The function runs as the caller, so row-level security hides another
-- tenant's first event and the append is refused, whatever the caller knows of the id. (Rows
-- inserted earlier by the same statement are visible to a row-level BEFORE trigger, so a new
-- aggregate saved with several events at once passes.) First events need no check: the primary
-- key already makes (id, version 1) unique.
CREATE OR REPLACE FUNCTION pin_aggregate_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM governance_events
                   WHERE originator_id = NEW.originator_id AND originator_version = 1) THEN
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
    FOR EACH ROW WHEN (NEW.originator_version > 1) EXECUTE FUNCTION pin_aggregate_tenant();
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

-- One save in one statement: scope the transaction to the tenant, release and take uniqueness
-- claims, then append the events the way the eventsourcing library does (an EXCLUSIVE table lock,
-- so notification order equals commit order, and a NOTIFY for the projection runners). It runs as
-- the caller (row-level security applies) in the caller's implicit transaction, so the
-- transaction-local tenant setting lasts exactly as long as the save. One round trip per save.
CREATE OR REPLACE FUNCTION acgs_insert_events(
    tenant TEXT,
    claim_kinds VARCHAR[], claim_values VARCHAR[],
    release_kinds VARCHAR[], release_values VARCHAR[],
    events stored_event_uuid[]
) RETURNS SETOF BIGINT LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.current_tenant_id', tenant, true);
    IF cardinality(release_kinds) > 0 THEN
        DELETE FROM tenant_claims
        WHERE (kind, value) IN (SELECT * FROM unnest(release_kinds, release_values));
    END IF;
    IF cardinality(claim_kinds) > 0 THEN
        INSERT INTO tenant_claims (kind, value) SELECT * FROM unnest(claim_kinds, claim_values);
    END IF;
    LOCK TABLE governance_events IN EXCLUSIVE MODE;
    NOTIFY governance_events;
    RETURN QUERY
        INSERT INTO governance_events (originator_id, originator_version, topic, state)
        SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(events) AS e
        RETURNING notification_id;
END
$$;

-- Where each projection runner (and the Kafka relay) has got to in the notification log.
CREATE TABLE IF NOT EXISTS projection_positions (
    name        VARCHAR(100) PRIMARY KEY,
    position    BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

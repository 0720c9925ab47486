-- Kafka consumers deduplicate on event_id: each consumer records the ids it has
-- applied, in the same transaction as its work, so a redelivered message is skipped, not applied
-- twice. Platform-wide (not tenant data), so no tenant_id and no row-level security.
CREATE TABLE IF NOT EXISTS consumed_events (
    consumer     VARCHAR(100) NOT NULL,
    event_id     UUID NOT NULL,
    consumed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS idx_consumed_events_consumed_at ON consumed_events (consumed_at);

GRANT SELECT, INSERT, DELETE ON consumed_events TO acgs2_projector;
GRANT SELECT ON consumed_events TO acgs2_admin;

"""The sink record of each event of the log: its audit record (what SIEMs receive is the audit
stream, `projections.audit_log.audit_record`) enriched with the tenant's slug, the actor's roles,
the constitutional hash, the stable event id and the position (`domain.sinks.enrich`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from domain.events import event_id, event_type, event_type_of
from domain.sinks import EventFacts, FailedSignIns, SinkRecord, enrich
from projections.audit_log import audit_record, audit_record_of

TenantSlug = Callable[[UUID], str | None]  # the slug of a tenant (None once it is purged)
_TAGGED = b'"_type_"'  # how the stored JSON marks a value JSON cannot hold (a time, a UUID)
_decode_json = msgspec.json.Decoder().decode


class RecordMaker:
    """Turns rows of the notification log into sink records (cached per event: a runner may
    look at a short round twice while it waits for more), raising the alert of repeated failed
    sign-ins on the way (`domain.sinks.FailedSignIns`)."""

    def __init__(self, mapper: Mapper[Any], tenant_slug: TenantSlug) -> None:
        self._mapper = mapper
        self._tenant_slug = tenant_slug
        self._last: dict[int, SinkRecord] = {}
        self._sign_ins = FailedSignIns()
        self._types: dict[str, str] = {}
        self._slugs: dict[str, str] = {}

    def __call__(self, rows: Sequence[Sequence[Any]]) -> list[SinkRecord]:
        made = {}
        for row in rows:
            position = int(row[0])
            record = self._last.get(position) or self.record(row)
            made[position] = record
        self._last = made
        return list(made.values())

    def record(self, row: Sequence[Any]) -> SinkRecord:
        position, originator_id, version, topic, state = row[:5]
        aggregate = str(originator_id)
        found = self.plain_parts(topic, bytes(state))
        if found is None:  # a state only the application's mapper reads (an upcast, a UUID...)
            event = self._mapper.to_domain_event(
                StoredEvent(originator_id, version, topic, bytes(state))
            )
            kind, meta = event_type(event), getattr(event, "meta")  # noqa: B009
            audit = audit_record(event)
        else:
            kind, at, fields = found
            meta = fields["meta"]
            audit = audit_record_of(
                audit_id="",
                event_type=kind,
                aggregate_id=aggregate,
                timestamp=at,
                meta=meta,
                fields=fields,
            )
        tenant = str(meta["tenant_id"])
        facts = EventFacts(
            event_id=str(event_id(aggregate, version)),
            position=int(position),
            tenant_id=tenant,
            tenant_slug=self.slug(tenant) or own_slug(kind, audit),
            actor_roles=tuple(meta["actor"].get("roles", ())),
            constitutional_hash=str(meta["constitutional_hash"]),
            event_type=kind,
        )
        return self._sign_ins.observe(enrich(audit, facts, plain=found is not None))

    def slug(self, tenant: str) -> str | None:
        """The tenant's slug, kept once found (slugs never change; a missing one is asked
        again)."""
        slug = self._slugs.get(tenant)
        if slug is None:
            slug = self._tenant_slug(UUID(tenant))
            if slug is not None:
                self._slugs[tenant] = slug
        return slug

    def plain_parts(
        self, topic: str, state: bytes
    ) -> tuple[str, datetime, Mapping[str, Any]] | None:
        """(event type, time, fields) read straight from a stored state whose only tagged value
        is its time (most events): no domain object in between, as the Kafka relay does."""
        if state.count(_TAGGED) != 1:
            return None
        kind = self._types.get(topic)
        if kind is None:
            kind = self._types[topic] = event_type_of(resolve_topic(topic))
        try:
            fields = _decode_json(state)
        except msgspec.DecodeError:
            return None
        stamp = fields.get("timestamp") if type(fields) is dict else None
        if type(stamp) is not dict or stamp.get("_type_") != "datetime_iso":
            return None
        if "class_version" in fields:
            return None
        return kind, datetime.fromisoformat(stamp["_data_"]), fields


def own_slug(kind: str, audit: Mapping[str, Any]) -> str | None:
    """A tenant's slug from its own event (its creation), before the tenants read model has it."""
    details = audit.get("details")
    if kind.startswith("tenant.") and isinstance(details, Mapping):
        slug = details.get("tenant_slug")
        return str(slug) if slug else None
    return None

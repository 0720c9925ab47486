"""The sink record of each event of the log: its audit record (what SIEMs receive is the audit
stream, `projections.audit_log.audit_record`) enriched with the tenant's slug, the actor's roles,
the constitutional hash, the stable event id and the position (`domain.sinks.enrich`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain.events import event_id, event_type
from domain.sinks import EventFacts, FailedSignIns, SinkRecord, enrich
from projections.audit_log import audit_record

TenantSlug = Callable[[UUID], str | None]  # the slug of a tenant (None once it is purged)


class RecordMaker:
    """Turns rows of the notification log into sink records (cached per event: a runner may
    look at a short round twice while it waits for more), raising the alert of repeated failed
    sign-ins on the way (`domain.sinks.FailedSignIns`)."""

    def __init__(self, mapper: Mapper[Any], tenant_slug: TenantSlug) -> None:
        self._mapper = mapper
        self._tenant_slug = tenant_slug
        self._last: dict[int, SinkRecord] = {}
        self._sign_ins = FailedSignIns()

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
        event = self._mapper.to_domain_event(
            StoredEvent(originator_id, version, topic, bytes(state))
        )
        meta: dict[str, Any] = getattr(event, "meta")  # noqa: B009 - every event has meta
        tenant_id = UUID(str(meta["tenant_id"]))
        facts = EventFacts(
            event_id=str(event_id(originator_id, version)),
            position=int(position),
            tenant_id=str(tenant_id),
            tenant_slug=self._tenant_slug(tenant_id),
            actor_roles=tuple(meta["actor"].get("roles", ())),
            constitutional_hash=str(meta["constitutional_hash"]),
            event_type=event_type(event),
        )
        return self._sign_ins.observe(enrich(audit_record(event), facts))

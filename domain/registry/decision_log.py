"""What a decision log keeps: a digest of every input, the input itself only when the tenant
enables it (with its masked fields replaced), and the tenant's setting as an aggregate."""

from __future__ import annotations

import json
import re
import time
from hashlib import sha256
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.entropy import random_bytes
from domain.errors import ValidationFailed
from domain.events import EventMeta

MASK = "***"
MAX_MASK_FIELDS = 100
FIELD_PATH = re.compile(r"^[A-Za-z0-9_-]{1,100}(\.[A-Za-z0-9_-]{1,100}){0,15}$")
_SETTINGS_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:decision-log-settings")
_canonical = msgspec.json.Encoder(order="sorted").encode


def canonical_input(document: Any) -> bytes:
    """The input's canonical JSON (UTF-8, sorted keys, no spaces): equal inputs, equal bytes."""
    return _canonical(document)


def input_digest(document: Any) -> str:
    """SHA-256 of the input's canonical JSON: equal inputs, equal digests."""
    return digest_of(canonical_input(document))


def digest_of(canonical: bytes) -> str:
    """The digest of an input already in canonical JSON (`canonical_input`)."""
    return sha256(canonical).hexdigest()


def new_decision_id() -> UUID:
    """A UUID version 7: the time in milliseconds, then 74 random bits. Time-ordered, so the
    decision log's key grows at its end."""
    millis = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(random_bytes(10)) >> 6  # 74 bits
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76 | (random_bits >> 62) << 64  # version 7, then 12 random bits
    value |= 0b10 << 62 | (random_bits & (2**62 - 1))  # RFC 4122 variant, 62 random bits
    return UUID(int=value)


def masked(document: Any, fields: tuple[str, ...]) -> Any:
    """A copy of `document` whose values at the dotted paths `fields` are replaced by `***`."""
    if not fields or not isinstance(document, dict):
        return document
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for path in fields:
        *parents, last = path.split(".")
        node: Any = copy
        for segment in parents:
            node = node.get(segment) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = MASK
    return copy


def mask_fields(value: object) -> tuple[str, ...]:
    """The validated list of field paths to mask (`user.ssn`, `resource.owner.email`)."""
    if not isinstance(value, list) or len(value) > MAX_MASK_FIELDS:
        raise ValidationFailed.field(
            "mask_fields", f"must be a list of at most {MAX_MASK_FIELDS} dotted field paths"
        )
    bad = [item for item in value if not isinstance(item, str) or not FIELD_PATH.match(item)]
    if bad:
        raise ValidationFailed.field(
            "mask_fields", "each entry must be a dotted field path such as user.email"
        )
    return tuple(dict.fromkeys(value))


def settings_aggregate_id(tenant_id: UUID) -> UUID:
    return uuid5(_SETTINGS_NAMESPACE, str(tenant_id))


class DecisionLogSettings(Aggregate):
    """A tenant's decision-log setting: keep the input (masked) or only its digest."""

    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        log_input: bool
        mask_fields: list[str]

    class Changed(Event):
        log_input: bool
        mask_fields: list[str]

    @classmethod
    def create(
        cls, *, tenant_id: UUID, log_input: bool, fields: tuple[str, ...], meta: EventMeta
    ) -> DecisionLogSettings:
        return cls(
            id=settings_aggregate_id(tenant_id),
            log_input=log_input,
            mask_fields=list(fields),
            meta=meta.as_dict(),
        )

    @event(Created)
    def __init__(self, id: UUID, log_input: bool, mask_fields: list[str], meta: dict[str, Any]):
        del id, meta
        self.log_input = log_input
        self.mask_fields = tuple(mask_fields)

    def change(self, *, log_input: bool, fields: tuple[str, ...], meta: EventMeta) -> bool:
        """Change the setting; False (and no event) when nothing changes."""
        if (log_input, fields) == (self.log_input, self.mask_fields):
            return False
        self._changed(log_input=log_input, mask_fields=list(fields), meta=meta.as_dict())
        return True

    @event(Changed)
    def _changed(self, log_input: bool, mask_fields: list[str], meta: dict[str, Any]) -> None:
        del meta
        self.log_input = log_input
        self.mask_fields = tuple(mask_fields)

"""The Avro schemas of `schemas/avro/`: one `.avsc` per domain event type, the audit
record, the external-event reader schema, and their released versions under `released/`.

A record's full name is also its registry subject (record-name strategy). Compatibility is judged
with Apache Avro's own reader/writer checker, the same rules a Confluent registry applies.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from eventsourcing.domain import Aggregate, DomainEvent

import domain
from domain.events import event_type_of

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
RELEASED_DIR = "released"
AUDIT_RECORD = "acgs.audit.AuditRecord"
EXTERNAL_EVENT = "acgs.events.external.ExternalEvent"
ENVELOPE = "acgs.events.Envelope"
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
_RELEASED_NAME = re.compile(r"^(?P<name>.+)\.v(?P<version>\d+)\.avsc$")


class SchemaNotFound(LookupError):
    """No schema in the catalogue for a record name (an event type added without its schema)."""


@dataclass(frozen=True)
class AvroSchema:
    path: Path
    text: str

    @cached_property
    def definition(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed

    @cached_property
    def full_name(self) -> str:
        namespace = self.definition.get("namespace")
        name = str(self.definition["name"])
        return f"{namespace}.{name}" if namespace and "." not in name else name

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.definition["fields"])

    @cached_property
    def json_fields(self) -> frozenset[str]:
        """Fields that carry a JSON document as text (marked `"acgs.encoding": "json"`)."""
        return frozenset(
            f["name"] for f in self.definition["fields"] if f.get("acgs.encoding") == "json"
        )


def record_name(event_class: type) -> str:
    """`acgs.events.tenant.Created` for `Tenant.Created`: the namespace is the event type's
    aggregate part, the name the event class's own name."""
    aggregate_part = event_type_of(event_class).rsplit(".", 1)[0]
    return f"acgs.events.{aggregate_part}.{event_class.__name__}"


def domain_event_classes() -> list[type[DomainEvent]]:
    """Every event class the domain can emit, found by walking `domain/` (so an event added later
    is found without being listed anywhere)."""
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        importlib.import_module(module.name)
    found: dict[str, type[DomainEvent]] = {}
    for cls in _subclasses(Aggregate.Event):
        if not cls.__module__.startswith("domain.") or cls.__name__ == "Event":
            continue
        found[f"{cls.__module__}:{cls.__qualname__}"] = cls
    classes = list(found.values())
    # The library makes a `Created` class for every aggregate; one whose creation event is named
    # otherwise (AuditEntry.Recorded) never emits it.
    return sorted(
        (c for c in classes if not _unused_created_class(c, classes)),
        key=lambda c: (c.__module__, c.__qualname__),
    )


def _subclasses(cls: type) -> list[type]:
    result: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        result.append(sub)
        result.extend(_subclasses(sub))
    return result


def _unused_created_class(cls: type, classes: list[type]) -> bool:
    if cls.__name__ != "Created":
        return False
    owner = cls.__qualname__.split(".")[0]
    return any(
        c is not cls
        and issubclass(c, Aggregate.Created)
        and c.__qualname__.split(".")[0] == owner
        and c.__module__ == cls.__module__
        for c in classes
    )


class SchemaCatalog:
    """The schemas of one folder (default `schemas/avro/`), by full record name."""

    def __init__(self, root: Path = SCHEMA_DIR) -> None:
        self.root = root
        self._schemas: dict[str, AvroSchema] = {}
        for path in sorted(root.rglob("*.avsc")):
            if RELEASED_DIR in path.relative_to(root).parts:
                continue
            schema = AvroSchema(path, path.read_text())
            self._schemas[schema.full_name] = schema

    def __contains__(self, full_name: str) -> bool:
        return full_name in self._schemas

    def get(self, full_name: str) -> AvroSchema:
        try:
            return self._schemas[full_name]
        except KeyError:
            msg = f"no Avro schema for {full_name} in {self.root}"
            raise SchemaNotFound(msg) from None

    def names(self) -> list[str]:
        return sorted(self._schemas)

    def streamed(self) -> list[AvroSchema]:
        """The schemas we publish (every one but the envelope and the ingestion reader)."""
        return [s for n, s in sorted(self._schemas.items()) if n not in (ENVELOPE, EXTERNAL_EVENT)]

    def released(self, full_name: str) -> list[tuple[int, AvroSchema]]:
        """The released versions of a schema, oldest first (`released/<path>.v<N>.avsc`)."""
        current = self.get(full_name)
        folder = self.root / RELEASED_DIR / current.path.parent.relative_to(self.root)
        versions = []
        for path in folder.glob(f"{current.path.stem}.v*.avsc"):
            match = _RELEASED_NAME.match(path.name)
            if match and match["name"] == current.path.stem:
                versions.append((int(match["version"]), AvroSchema(path, path.read_text())))
        return sorted(versions, key=lambda v: v[0])


def parse(text: str) -> avro.schema.Schema:
    """Parse and validate a schema with Apache Avro (raises avro.errors.SchemaParseException)."""
    return avro.schema.parse(text)


def can_read(reader: str, writer: str) -> bool:
    """Whether data written with `writer` can be read with `reader`."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(parse(reader), parse(writer))
    return bool(result.compatibility is SchemaCompatibilityType.compatible)


def incompatibilities(new: str, existing: list[str], level: str) -> list[str]:
    """Why `new` may not follow `existing` (oldest first) under a registry compatibility level;
    empty when it may."""
    level = level.upper()
    if level not in LEVELS:
        msg = f"unknown compatibility level {level!r}"
        raise ValueError(msg)
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    problems = []
    for index, old in enumerate(against):
        version = len(existing) - len(against) + index + 1
        if level.startswith(("BACKWARD", "FULL")) and not can_read(new, old):
            problems.append(f"the new schema cannot read data written with version {version}")
        if level.startswith(("FORWARD", "FULL")) and not can_read(old, new):
            problems.append(f"version {version} cannot read data written with the new schema")
    return problems

"""What a data warehouse is loaded with: the tables (their columns and logical types), the
watermark, and the one rule of schema evolution.

Two tables are written, each keyed by the stable event id:

- `governance_events`, the fact table: one row per event of the log.
- `audit_log`: the audit record of each event (what the SIEM sinks receive), flattened.

The watermark is the log position (notification id) of the last event loaded; a warehouse keeps
it in its own `_acgs_watermark` table, one row per table prefix. Schema evolution: a column this
release defines and the warehouse table lacks is added (nullable, so older rows hold NULL);
any other difference (a column of another type, a column the warehouse has and this release does
not define) is refused with `SchemaRefused` naming the table and the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import ValidationFailed

WATERMARK_TABLE = "_acgs_watermark"
CONTINUOUS = "continuous"  # the schedule that follows the log instead of a cron expression


class ColumnType(StrEnum):
    """The logical types; each warehouse maps them to its own (`infra/warehouses`)."""

    STRING = "string"
    INT = "int64"
    TIMESTAMP = "timestamp"  # with time zone, UTC
    JSON = "json"  # JSON text (a JSON type where the warehouse has one)
    BOOL = "bool"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


S, N, T, J = ColumnType.STRING, ColumnType.INT, ColumnType.TIMESTAMP, ColumnType.JSON


def _required(name: str, kind: ColumnType, description: str) -> Column:
    return Column(name, kind, nullable=False, description=description)


def _optional(name: str, kind: ColumnType, description: str) -> Column:
    return Column(name, kind, nullable=True, description=description)


GOVERNANCE_EVENTS = Table(
    "governance_events",
    (
        _required("event_id", S, "The stable event id (a UUID; the same across replays)"),
        _required("position", N, "The event's position in the log (its notification id)"),
        _optional("tenant_id", S, "The tenant the event belongs to"),
        _required("event_type", S, "The event's type, e.g. tenant.created"),
        _required("occurred_at", T, "When the event store recorded it (UTC)"),
        _optional("actor_id", S, "Who caused it (a user's subject, or system)"),
        _optional("actor_type", S, "user, service or system"),
        _required("aggregate_id", S, "The aggregate the event belongs to"),
        _required("aggregate_version", N, "The aggregate's version after the event"),
        _required("payload", J, "The event's stored fields, as JSON"),
        _optional("constitutional_hash", S, "The constitutional hash the event carries"),
    ),
    "One row per event of the log (the fact table).",
)

AUDIT_LOG = Table(
    "audit_log",
    (
        _required("event_id", S, "The stable event id (as in governance_events)"),
        _required("position", N, "The event's position in the log"),
        _optional("tenant_id", S, "The tenant"),
        _optional("tenant_slug", S, "The tenant's slug"),
        _required("event_type", S, "The audit event type (category.action for entries)"),
        _optional("event_category", S, "authentication, policy, integration, ..."),
        _optional("action", S, "The action"),
        _optional("result", S, "success, failure or denied"),
        _optional("actor_id", S, "Who"),
        _optional("actor_type", S, "user, service or system"),
        _optional("target_resource", S, "What it acted on"),
        _optional("severity", S, "informational, low, medium, high or critical"),
        _optional("alert", S, "The real-time alert it raised, if any"),
        _required("occurred_at", T, "When it happened (UTC)"),
        _optional("constitutional_hash", S, "The constitutional hash"),
        _optional("details", J, "The record's details, as JSON"),
    ),
    "The audit record of every event, as the SIEM sinks receive it.",
)

TABLES: tuple[Table, ...] = (GOVERNANCE_EVENTS, AUDIT_LOG)


class SchemaRefused(ValidationFailed):
    """A warehouse table differs from this release's definition in a way that is not a new
    nullable column."""


def evolution(table: Table, found: Mapping[str, str], *, prefix: str = "") -> list[Column]:
    """The columns to add to the warehouse table `prefix + table.name`, whose columns and their
    logical types are `found` (column name -> ColumnType value, as the warehouse adapter reads
    them back); raises SchemaRefused for any other difference, naming the column."""
    name = prefix + table.name
    for column in table.columns:
        kind = found.get(column.name)
        if kind is not None and kind != column.type.value:
            msg = (
                f"warehouse table {name}: column {column.name} is {kind}, "
                f"expected {column.type.value}; only new nullable columns are applied "
                "automatically"
            )
            raise SchemaRefused(msg, {"table": name, "column": column.name})
    extra = [c for c in found if c not in table.names]
    if extra:
        msg = (
            f"warehouse table {name}: column {extra[0]} is not defined by this release "
            "(dropped or foreign); only new nullable columns are applied automatically"
        )
        raise SchemaRefused(msg, {"table": name, "column": extra[0]})
    return [c for c in table.columns if c.name not in found]


def without(table: Table, *names: str) -> Table:
    """`table` without the named columns (an older release's definition, for tests and docs)."""
    return Table(table.name, tuple(c for c in table.columns if c.name not in names))


def column_type(columns: Sequence[Column], name: str) -> ColumnType:
    for column in columns:
        if column.name == name:
            return column.type
    raise KeyError(name)

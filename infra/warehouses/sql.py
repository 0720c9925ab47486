"""What the SQL warehouses share: quoting, their types of each logical column type, and the
watermark table's statements."""

from __future__ import annotations

from collections.abc import Mapping

from domain.warehouse import WATERMARK_TABLE, ColumnType, Table


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def create_table_sql(
    qualified: str, table: Table, types: Mapping[ColumnType, str], *, keyed: bool = True
) -> str:
    """`keyed`: with the primary key `event_id` (a warehouse whose load cannot otherwise keep
    an event from going in twice)."""
    columns = ", ".join(
        f"{quote(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    key = f", PRIMARY KEY ({quote('event_id')})" if keyed else ""
    return f"CREATE TABLE {qualified} ({columns}{key})"


def logical_types(found: Mapping[str, str], types: Mapping[ColumnType, str]) -> dict[str, str]:
    """The warehouse's column types read back as logical types (an unknown type stays as the
    warehouse names it, so the schema check names it)."""
    back = {sql.upper(): kind.value for kind, sql in types.items()}
    return {name: back.get(sql.upper(), sql.lower()) for name, sql in found.items()}


WATERMARK_COLUMNS = (
    "(name VARCHAR(200) PRIMARY KEY, position BIGINT NOT NULL, "
    "updated_at TIMESTAMP WITH TIME ZONE NOT NULL)"
)
WATERMARK = WATERMARK_TABLE


def watermark_key(prefix: str) -> str:
    """The watermark's row: one per table prefix (two integrations may share a warehouse)."""
    return prefix or "default"

"""Legacy decisions read by a query over a PostgreSQL connection (the import's `postgresql`
format).

The query runs in a read-only transaction, wrapped as `SELECT * FROM (<query>) AS legacy` with
a bound parameter (so it is one statement), read through a server-side cursor; a resumed import
starts at an OFFSET, which is exact when the query orders its rows (ORDER BY a unique column).
The connection string may carry a password: no message built here contains it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from domain.decision_import.errors import SourceUnreadable
from domain.decision_import.fields import renamed_record

CONNECT_TIMEOUT_SECONDS = 10
ROWS_PER_FETCH = 2000


class PostgresQuerySource:
    def __init__(self, conninfo: str, query: str, mapping: Mapping[str, str]) -> None:
        self._conninfo = conninfo
        self._query = sql.SQL(query)  # the operator's own query, by design
        self._mapping = mapping
        self._conn: psycopg.Connection[Any] | None = None

    def __repr__(self) -> str:
        return "PostgresQuerySource(conninfo=***)"

    def columns(self) -> Sequence[str]:
        with self._reading() as cur:
            cur.execute(self._wrapped(sql.SQL("LIMIT %s")), [0])
            return [column.name for column in cur.description or ()]

    def count(self) -> int:
        with self._reading() as cur:
            cur.execute(
                sql.SQL("SELECT count(*) FROM ({}) AS legacy WHERE %s").format(self._query),
                [True],
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def records(self, skip: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
        with self._reading() as plain, plain.connection.cursor(name="legacy_decisions") as cur:
            cur.itersize = ROWS_PER_FETCH
            cur.execute(self._wrapped(sql.SQL("OFFSET %s")), [skip])
            names = [column.name for column in cur.description or ()]
            for number, row in enumerate(cur, start=skip + 1):
                yield number, renamed_record(dict(zip(names, row, strict=True)), self._mapping)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _wrapped(self, tail: sql.SQL) -> sql.Composed:
        """The query as one statement: `SELECT * FROM (<query>) AS legacy <tail>`."""
        return sql.SQL("SELECT * FROM ({}) AS legacy {}").format(self._query, tail)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                conninfo_to_dict(self._conninfo)
            except psycopg.ProgrammingError:
                raise SourceUnreadable(
                    "conninfo is not a PostgreSQL connection string", {"field": "conninfo"}
                ) from None
            try:
                self._conn = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            except psycopg.Error as failure:
                raise SourceUnreadable(
                    f"cannot connect to the legacy database: {self._safe(failure)}",
                    {"field": "conninfo"},
                ) from None
            self._conn.read_only = True
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Cursor[Any]]:
        """A read-only transaction's cursor; a failing query is `SourceUnreadable`."""
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as failure:
            if isinstance(failure, psycopg.OperationalError):
                self.close()
            raise self._unreadable(failure) from None

    def _unreadable(self, failure: psycopg.Error) -> SourceUnreadable:
        return SourceUnreadable(
            f"the legacy query failed: {self._safe(failure)}", {"field": "query"}
        )

    def _safe(self, failure: psycopg.Error) -> str:
        """The failure's first line, without the password if the server or driver echoed it."""
        diag = getattr(failure, "diag", None)
        text = (diag.message_primary if diag is not None else None) or str(failure)
        text = text.strip().splitlines()[0] if text.strip() else type(failure).__name__
        password = conninfo_to_dict(self._conninfo).get("password")
        if password:
            text = text.replace(str(password), "***")
        return text[:300]

"""Where legacy decisions come from: a CSV file, a JSON Lines file, or a query over a PostgreSQL
connection (the port `QuerySource`, implemented in infra).

Every source yields its records in a stable order as `(row number, fields | problem)`: the
fields already renamed by the schema mapping, or why the record could not even be read. A CSV
row number counts the data records (the header is row 0); a JSON Lines row number is the line
number; a query's is the row's position in its result. Resuming skips the records consumed.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from domain.decision_import.errors import SourceUnreadable
from domain.decision_import.fields import renamed, renamed_record

Record = tuple[int, Mapping[str, Any] | str]
_Item = TypeVar("_Item")
_decode_json = msgspec.json.decode
CSV_FIELD_LIMIT = 1_048_576  # bytes of one CSV field (csv's default is 128 KiB)


class RecordSource(Protocol):
    def columns(self) -> Sequence[str]:
        """The source's column names as they are (before the mapping); empty when each record
        names its own (JSON Lines)."""
        ...

    def count(self) -> int:
        """How many records the source has."""
        ...

    def records(self, skip: int) -> Iterator[Record]:
        """The records after the first `skip`."""
        ...

    def close(self) -> None: ...


class QuerySource(RecordSource, Protocol):
    """Port: a read-only query over a PostgreSQL connection (infra.postgres.legacy_decisions);
    its records are the rows as `{column: value}`, renamed by the kind."""


class CsvSource:
    def __init__(self, path: Path, mapping: Mapping[str, str], delimiter: str = ",") -> None:
        self.path = path
        self.mapping = mapping
        self.delimiter = delimiter

    def columns(self) -> Sequence[str]:
        with self._open() as file:
            return next((row for row in self._reader(file) if row), [])

    def count(self) -> int:
        with self._open() as file:
            return max(0, sum(1 for row in self._reader(file) if row) - 1)  # not the header

    def records(self, skip: int) -> Iterator[Record]:
        with self._open() as file:
            reader = self._reader(file)
            header = next((row for row in reader if row), None)  # the first line that is not blank
            if header is None:
                return
            positions = list(renamed(header, self.mapping).items())
            width = len(header)
            rows = (row for row in reader if row)  # a blank line is no record
            for number, row in enumerate(itertools.islice(rows, skip, None), start=skip + 1):
                if len(row) != width:
                    yield number, f"has {len(row)} fields where the header has {width}"
                else:
                    yield number, {field: row[index] for field, index in positions}

    def close(self) -> None:
        return None

    def _open(self) -> Any:
        return _opened(self.path)

    def _reader(self, file: Any) -> Iterator[list[str]]:
        csv.field_size_limit(CSV_FIELD_LIMIT)
        return _read_errors(csv.reader(file, delimiter=self.delimiter))


class JsonLinesSource:
    def __init__(self, path: Path, mapping: Mapping[str, str]) -> None:
        self.path = path
        self.mapping = mapping

    def columns(self) -> Sequence[str]:
        with _opened(self.path):  # each record names its own fields, but the file must open
            return ()

    def count(self) -> int:
        with _opened(self.path) as file:
            return sum(1 for line in _read_errors(file) if line.strip())

    def records(self, skip: int) -> Iterator[Record]:
        with _opened(self.path) as file:
            numbered = enumerate(_read_errors(file), start=1)
            lines = ((n, line) for n, line in numbered if line.strip())
            for number, line in itertools.islice(lines, skip, None):
                try:
                    document = _decode_json(line)
                except msgspec.DecodeError:
                    yield number, "is not valid JSON"
                    continue
                if isinstance(document, dict):
                    yield number, renamed_record(document, self.mapping)
                else:
                    yield number, "is not a JSON object"

    def close(self) -> None:
        return None


def _opened(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as failure:
        raise SourceUnreadable(
            f"cannot open the source: {failure.strerror}", {"field": "source"}
        ) from None


def _read_errors(items: Iterator[_Item]) -> Iterator[_Item]:
    """The items, with what breaks the reading itself (not UTF-8, a field over the limit) as
    one clear error saying where it happened."""
    read = 0
    try:
        for item in items:
            read += 1
            yield item
    except UnicodeDecodeError:
        raise SourceUnreadable(
            f"the source is not UTF-8 text (after record {read})", {"field": "source"}
        ) from None
    except csv.Error as failure:
        raise SourceUnreadable(
            f"the CSV cannot be read after record {read}: {failure}", {"field": "source"}
        ) from None

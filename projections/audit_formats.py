"""The file formats of audit-log exports: JSON (one document), JSON Lines, CSV and PDF.

Each writer takes the export's header (tenant, filters, totals, the chain head, when it was
made) and the rows, oldest first, and writes UTF-8 bytes to a binary file; `progress(n)` is
called every `PROGRESS_EVERY` rows.

- CSV follows RFC 4180 (comma, CRLF line ends, fields quoted when they hold a comma, quote or
  line break, quotes doubled) with a header line. A cell that a spreadsheet would run as a
  formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`.
- JSON is `{"export": header, "rows": [...]}`; JSON Lines is the header as
  `{"export": header}` on the first line, then one row per line.
- PDF is a readable report: the filters, the totals by category and by result, the chain head
  and one line per row. Its built-in fonts cover Latin-1; other characters print as `?` (the
  other formats keep them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, Any

import msgspec

FORMATS = ("json", "jsonl", "csv", "pdf")
MEDIA_TYPES = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
PROGRESS_EVERY = 500
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "audit_id",
    "timestamp",
    "event_type",
    "event_category",
    "actor_id",
    "actor_type",
    "action",
    "result",
    "target_resource",
    "target_id",
    "details",
    "ip_address",
    "user_agent",
    "session_id",
    "error_message",
    "constitutional_validation_passed",
    "constitutional_hash",
    "chain_seq",
    "row_hash",
)
Progress = Callable[[int], None]
_JSON = msgspec.json.Encoder(enc_hook=str, order="sorted")  # ids, addresses: as text


_FORMULA_FIRST = frozenset(_FORMULA_STARTS)


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + cell if cell[:1] in _FORMULA_FIRST else cell


def _csv_cell(value: Any) -> str:
    if value.__class__ is str:  # most cells: no conversion
        return "'" + value if value[:1] in _FORMULA_FIRST else value
    return "" if value is None else neutralise(_text(value))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _JSON.encode(value).decode()
    return str(value)


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON values (ids and addresses as text, times as ISO 8601)."""
    out = {}
    for key, value in row.items():
        if value is None or isinstance(value, bool | int | float | str | dict | list):
            out[key] = value
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)
    return out


def write_csv(
    rows: Iterable[dict[str, Any]], out: IO[bytes], header: dict[str, Any], progress: Progress
) -> int:
    del header  # the header lives in the job's status and the JSON/PDF reports
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in CSV_COLUMNS])
        n += 1
        if n % PROGRESS_EVERY == 0:
            progress(n)
    text.flush()
    text.detach()
    return n


def write_json(
    rows: Iterable[dict[str, Any]], out: IO[bytes], header: dict[str, Any], progress: Progress
) -> int:
    out.write(b'{"export": ' + json.dumps(header, default=str).encode() + b', "rows": [')
    n = 0
    for row in rows:
        out.write((b",\n" if n else b"\n") + _json_bytes(row))
        n += 1
        if n % PROGRESS_EVERY == 0:
            progress(n)
    out.write(b"\n]}\n")
    return n


def write_jsonl(
    rows: Iterable[dict[str, Any]], out: IO[bytes], header: dict[str, Any], progress: Progress
) -> int:
    out.write(json.dumps({"export": header}, default=str).encode() + b"\n")
    n = 0
    for row in rows:
        out.write(_json_bytes(row) + b"\n")
        n += 1
        if n % PROGRESS_EVERY == 0:
            progress(n)
    return n


def _json_bytes(row: dict[str, Any]) -> bytes:
    details = row["details"]
    if details.__class__ is str:  # the stored JSON text (export_rows): embedded as it is
        row = {**row, "details": msgspec.Raw(details.encode())}
    return _JSON.encode(row)


# (heading, key, characters) on an A4 landscape page in 7 pt Courier (1.48 mm a character)
_PDF_COLUMNS = (
    ("Time (UTC)", "timestamp", 27),
    ("Category", "event_category", 15),
    ("Event type", "event_type", 30),
    ("Actor", "actor_id", 22),
    ("Action", "action", 26),
    ("Result", "result", 8),
    ("Target", "target_resource", 56),
)


def _pdf_line(values: list[str]) -> str:
    cells = []
    for value, (_, _, width) in zip(values, _PDF_COLUMNS, strict=True):
        fitted = value if len(value) < width else value[: width - 2] + "~"
        cells.append(fitted.ljust(width))
    return "".join(cells).rstrip()


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def write_pdf(
    rows: Iterable[dict[str, Any]], out: IO[bytes], header: dict[str, Any], progress: Progress
) -> int:
    from fpdf import FPDF  # noqa: PLC0415 - imported by the one format that needs it (slow import)

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title("Audit log export")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(
        0,
        8,
        _latin1(f"Audit log export - tenant {header['tenant_id']}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 9)
    lines = [f"Generated at: {header['generated_at']}", f"Export id: {header['export_id']}"]
    lines += [f"Filter {k}: {v}" for k, v in header["filters"].items()]
    lines.append(f"Rows: {header['total_rows']}")
    totals = header.get("totals", {})
    for kind in ("by_category", "by_result"):
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(totals.get(kind, {}).items()))
        lines.append(f"Totals {kind.replace('_', ' ')}: {counts or 'none'}")
    head = header["chain_head"]
    lines.append(f"Chain head: seq {head['seq']} hash {head['hash']}")
    for line in lines:
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    left = pdf.l_margin

    def table_heading() -> float:
        pdf.set_font("Courier", "B", 7)
        y = pdf.get_y() + 3
        pdf.text(left, y, _pdf_line([title for title, _, _ in _PDF_COLUMNS]))
        pdf.set_font("Courier", "", 7)
        return y + 4

    y = table_heading()
    n = 0
    bottom = pdf.h - 14
    for row in rows:
        if y > bottom:  # one text() per line: much faster than laid-out cells
            pdf.add_page()
            y = table_heading()
        values = [_text(row[key]) for _, key, _ in _PDF_COLUMNS]
        values[0] = values[0][:26]
        pdf.text(left, y, _latin1(_pdf_line(values)))
        y += 3.2
        n += 1
        if n % PROGRESS_EVERY == 0:
            progress(n)
    out.write(bytes(pdf.output()))
    return n


WRITERS: dict[
    str, Callable[[Iterable[dict[str, Any]], IO[bytes], dict[str, Any], Progress], int]
] = {
    "json": write_json,
    "jsonl": write_jsonl,
    "csv": write_csv,
    "pdf": write_pdf,
}

"""A strict local double of BigQuery's REST API (no Google here), reached by the client through
`client_options.api_endpoint`, with the OAuth token endpoint a service account's key names
(`token_uri`).

- `POST /token`: the JWT-bearer grant; the assertion must be an RS256 JWT signed by the
  service account's key, `iss` its email, `aud` Google's token endpoint (as google-auth signs
  it) or this one, `scope` holding BigQuery's. Answers a bearer token; every other request
  must carry it (401 otherwise).
- `POST /bigquery/v2/projects/{p}/datasets` (409 when it exists), `GET .../datasets/{d}`,
  `GET|PATCH /bigquery/v2/projects/{p}/datasets/{d}/tables/{t}` (404 when missing; PATCH may
  only add NULLABLE fields, 400 otherwise), `POST .../tables` (409 when it exists),
  `POST .../tables/{t}/insertAll` (each row `{"insertId", "json"}`; an unknown field, a missing
  REQUIRED field or a value of the wrong type is an `insertErrors` entry for its row and no row
  of the request is stored; at most 50,000 rows; rows deduplicated by `insertId`),
  `GET .../tables/{t}/data` (`tabledata.list`, values as strings in schema order).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from joserfc import jwt

from tests.peers.http_double import Answer, Request, serve_double

MAX_ROWS = 50_000
SCOPE = "https://www.googleapis.com/auth/bigquery"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth signs as `aud`
_PREFIX = "/bigquery/v2/projects/"


def _error(status: int, reason: str, message: str) -> Answer:
    return Answer(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"reason": reason, "message": message}],
            }
        },
    )


def _valid(kind: str, value: Any) -> bool:  # noqa: PLR0911 - one per type
    if value is None:
        return True
    if kind == "STRING":
        return isinstance(value, str)
    if kind == "INTEGER":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit()
        )
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if kind == "JSON":
        if not isinstance(value, str):
            return False
        try:
            json.loads(value)
        except ValueError:
            return False
        return True
    if kind == "TIMESTAMP":
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return False


@dataclass
class BigQueryDouble:
    url: str = ""
    public_key: Any = None  # the service account's key (joserfc RSAKey), set by the test
    client_email: str = ""
    tokens: set[str] = field(default_factory=set)
    datasets: set[tuple[str, str]] = field(default_factory=set)
    tables: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rows: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    insert_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def route(self, request: Request) -> Answer:  # noqa: PLR0911
        if (request.method, request.path) == ("POST", "/token"):
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _error(401, "unauthorized", "Request had invalid authentication credentials.")
        if not request.path.startswith(_PREFIX):
            return _error(404, "notFound", f"Not found: URL {request.path}")
        parts = request.path[len(_PREFIX) :].split("/")
        with self.lock:
            if len(parts) == 2 and parts[1] == "datasets" and request.method == "POST":
                return self._dataset(parts[0], json.loads(request.body))
            if len(parts) == 3 and parts[1] == "datasets" and request.method == "GET":
                if (parts[0], parts[2]) not in self.datasets:
                    return _error(404, "notFound", f"Not found: Dataset {parts[0]}:{parts[2]}")
                ref = {"projectId": parts[0], "datasetId": parts[2]}
                return Answer(200, {"kind": "bigquery#dataset", "datasetReference": ref})
            if len(parts) >= 4 and parts[1] == "datasets" and parts[3] == "tables":
                return self._tables(request, parts)
        return _error(404, "notFound", f"Not found: URL {request.path}")

    def _token(self, request: Request) -> Answer:
        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return Answer(400, {"error": "unsupported_grant_type"})
        try:
            token = jwt.decode(form["assertion"][0], self.public_key, algorithms=["RS256"])
        except Exception as exc:  # noqa: BLE001 - any bad assertion is the same refusal
            return Answer(400, {"error": "invalid_grant", "error_description": repr(exc)})
        claims = token.claims
        if (
            claims.get("iss") != self.client_email
            or claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri)
            or SCOPE not in str(claims.get("scope", "")).split()
            or float(claims.get("exp", 0)) < time.time()
        ):
            return Answer(400, {"error": "invalid_grant", "error_description": "claims refused"})
        access = f"ya29.fake-{len(self.tokens)}-{time.time_ns()}"
        self.tokens.add(access)
        return Answer(200, {"access_token": access, "expires_in": 3600, "token_type": "Bearer"})

    def _dataset(self, project: str, body: dict[str, Any]) -> Answer:
        ref = body.get("datasetReference", {})
        if ref.get("projectId") != project or not ref.get("datasetId"):
            return _error(400, "invalid", "Invalid dataset reference")
        key = (project, ref["datasetId"])
        if key in self.datasets:
            return _error(409, "duplicate", f"Already Exists: Dataset {project}:{key[1]}")
        self.datasets.add(key)
        return Answer(
            200, {"kind": "bigquery#dataset", "datasetReference": ref, "id": f"{project}:{key[1]}"}
        )

    def _tables(self, request: Request, parts: list[str]) -> Answer:  # noqa: PLR0911
        project, dataset = parts[0], parts[2]
        if (project, dataset) not in self.datasets:
            return _error(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        if len(parts) == 4 and request.method == "POST":
            body = json.loads(request.body)
            key = (project, dataset, body["tableReference"]["tableId"])
            if key in self.tables:
                return _error(409, "duplicate", f"Already Exists: Table {key}")
            self.tables[key] = body
            self.rows[key] = {}
            return Answer(200, self._resource(key))
        key = (project, dataset, parts[4])
        if key not in self.tables:
            return _error(404, "notFound", f"Not found: Table {project}:{dataset}.{parts[4]}")
        if len(parts) == 5 and request.method == "GET":
            return Answer(200, self._resource(key))
        if len(parts) == 5 and request.method == "PATCH":
            return self._patch(key, json.loads(request.body))
        if len(parts) == 6 and parts[5] == "insertAll" and request.method == "POST":
            return self._insert(key, json.loads(request.body))
        if len(parts) == 6 and parts[5] == "data" and request.method == "GET":
            return self._list(key, parse_qs(request.query))
        return _error(404, "notFound", f"Not found: URL {request.path}")

    def _resource(self, key: tuple[str, str, str]) -> dict[str, Any]:
        body = self.tables[key]
        return {
            "kind": "bigquery#table",
            "id": f"{key[0]}:{key[1]}.{key[2]}",
            "tableReference": {"projectId": key[0], "datasetId": key[1], "tableId": key[2]},
            "schema": body["schema"],
            "numRows": str(len(self.rows[key])),
            "type": "TABLE",
        }

    def fields(self, key: tuple[str, str, str]) -> list[dict[str, Any]]:
        return list(self.tables[key]["schema"]["fields"])

    def _patch(self, key: tuple[str, str, str], body: dict[str, Any]) -> Answer:
        old = {f["name"]: f for f in self.fields(key)}
        new = body.get("schema", {}).get("fields", [])
        names = [f["name"] for f in new]
        if names[: len(old)] != list(old) or any(
            {k: v for k, v in f.items() if k in ("type", "mode")}
            != {k: v for k, v in old[f["name"]].items() if k in ("type", "mode")}
            for f in new
            if f["name"] in old
        ):
            return _error(400, "invalid", "Provided Schema does not match Table: fields changed")
        added = [f for f in new if f["name"] not in old]
        if any(f.get("mode", "NULLABLE") != "NULLABLE" for f in added):
            return _error(400, "invalid", "Cannot add required fields to an existing schema")
        self.tables[key]["schema"] = {"fields": new}
        return Answer(200, self._resource(key))

    def _insert(self, key: tuple[str, str, str], body: dict[str, Any]) -> Answer:
        rows = body.get("rows")
        if not isinstance(rows, list) or not rows:
            return _error(400, "invalid", "No rows present in the request.")
        if len(rows) > MAX_ROWS:
            return _error(400, "invalid", "too many rows present in the request")
        fields = {f["name"]: f for f in self.fields(key)}
        errors = []
        for index, row in enumerate(rows):
            data = row.get("json") if isinstance(row, dict) else None
            problem = None
            if not isinstance(data, dict) or not isinstance(row.get("insertId"), str):
                problem = "each row needs insertId and json"
            else:
                unknown = [k for k in data if k not in fields]
                missing = [
                    n
                    for n, f in fields.items()
                    if f.get("mode") == "REQUIRED" and data.get(n) is None
                ]
                wrong = [
                    k for k, v in data.items() if k in fields and not _valid(fields[k]["type"], v)
                ]
                if unknown:
                    problem = f"no such field: {unknown[0]}."
                elif missing:
                    problem = f"Missing required field: {missing[0]}."
                elif wrong:
                    problem = f"Cannot convert value to {fields[wrong[0]]['type']}: {wrong[0]}"
            if problem:
                errors.append(
                    {"index": index, "errors": [{"reason": "invalid", "message": problem}]}
                )
        if errors:
            return Answer(
                200, {"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors}
            )
        self.insert_requests += 1
        stored = self.rows[key]
        for row in rows:
            stored.setdefault(row["insertId"], row["json"])
        return Answer(200, {"kind": "bigquery#tableDataInsertAllResponse"})

    def _list(self, key: tuple[str, str, str], query: dict[str, list[str]]) -> Answer:
        micros = [v.lower() for v in query.get("formatOptions.useInt64Timestamp", [])] == ["true"]
        kinds = {f["name"]: f["type"] for f in self.fields(key)}

        def cell(kind: str, value: Any) -> str | None:
            if value is None:
                return None
            if kind == "TIMESTAMP":
                seconds = datetime.fromisoformat(str(value)).timestamp()
                return str(round(seconds * 1_000_000)) if micros else repr(seconds)
            return str(value)

        rows = [
            {"f": [{"v": cell(kind, r.get(n))} for n, kind in kinds.items()]}
            for r in self.rows[key].values()
        ]
        return Answer(
            200, {"kind": "bigquery#tableDataList", "totalRows": str(len(rows)), "rows": rows}
        )

    def table_rows(self, dataset: str, table: str) -> list[dict[str, Any]]:
        for key, rows in self.rows.items():
            if key[1:] == (dataset, table):
                return list(rows.values())
        return []


@pytest.fixture
def bigquery_double() -> Iterator[BigQueryDouble]:
    double = BigQueryDouble()
    double.url, server = serve_double(double.route)
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()

"""A strict, in-memory implementation of the Confluent Schema Registry REST API, served over HTTP.

For development (`acgs serve --kafka-local`) and tests only: production points at Confluent
Schema Registry, Karapace, Apicurio or Redpanda. It implements what the confluent-kafka clients
use — subjects, versions, global schema ids, lookups, per-subject and global compatibility levels
(checked with Apache Avro's reader/writer rules), compatibility tests, deletes — and answers the
rest as the real registry does for a missing resource (404, e.g. `/associations`). It is strict:
invalid Avro is refused with 422, an incompatible schema with 409, unknown subjects, versions and
ids with 404, and only the AVRO schema type is accepted.

Run standalone: `python -m infra.kafka.schema_registry_server --port 8081`.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from avro.errors import AvroException

from infra.kafka.schemas import LEVELS, incompatibilities, parse

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(Exception):
    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


@dataclass
class _Subject:
    versions: list[int] = field(default_factory=list)  # schema ids, version = index + 1
    deleted: bool = False
    compatibility: str | None = None


class SchemaRegistryState:
    """The registry's data; every method is one atomic operation."""

    def __init__(self, default_compatibility: str = "BACKWARD") -> None:
        self._lock = threading.Lock()
        self._schemas: dict[int, str] = {}
        self._ids_by_canonical: dict[str, int] = {}
        self._subjects: dict[str, _Subject] = {}
        self.compatibility = default_compatibility

    @staticmethod
    def _canonical(text: str) -> str:
        try:
            parse(text)
        except (AvroException, ValueError, TypeError) as exc:
            raise RegistryError(422, 42201, f"Invalid schema: {exc}") from None
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))

    def _live(self, subject: str) -> _Subject:
        entry = self._subjects.get(subject)
        if entry is None or entry.deleted or not entry.versions:
            raise _subject_not_found(subject)
        return entry

    def _level(self, subject: str) -> str:
        entry = self._subjects.get(subject)
        return entry.compatibility if entry and entry.compatibility else self.compatibility

    def register(self, subject: str, text: str) -> dict[str, Any]:
        canonical = self._canonical(text)
        with self._lock:
            entry = self._subjects.setdefault(subject, _Subject())
            if entry.deleted:
                entry.versions, entry.deleted = [], False
            existing_id = self._ids_by_canonical.get(canonical)
            if existing_id is not None and existing_id in entry.versions:
                return {
                    "id": existing_id,
                    "version": entry.versions.index(existing_id) + 1,
                    "subject": subject,
                }
            problems = incompatibilities(
                text, [self._schemas[i] for i in entry.versions], self._level(subject)
            )
            if problems:
                raise RegistryError(
                    409,
                    409,
                    f"Schema being registered is incompatible with an earlier schema "
                    f"for subject '{subject}' ({self._level(subject)}): {'; '.join(problems)}",
                )
            if existing_id is None:
                existing_id = len(self._schemas) + 1
                self._schemas[existing_id] = text
                self._ids_by_canonical[canonical] = existing_id
            entry.versions.append(existing_id)
            return {"id": existing_id, "version": len(entry.versions), "subject": subject}

    def lookup(self, subject: str, text: str) -> dict[str, Any]:
        canonical = self._canonical(text)
        with self._lock:
            entry = self._live(subject)
            schema_id = self._ids_by_canonical.get(canonical)
            if schema_id is None or schema_id not in entry.versions:
                raise RegistryError(404, 40403, "Schema not found")
            return self._version_body(subject, entry, entry.versions.index(schema_id) + 1)

    def _version_body(self, subject: str, entry: _Subject, version: int) -> dict[str, Any]:
        schema_id = entry.versions[version - 1]
        return {
            "subject": subject,
            "version": version,
            "id": schema_id,
            "schema": self._schemas[schema_id],
        }

    def _version_number(self, entry: _Subject, version: str) -> int:
        if version in ("latest", "-1"):
            return len(entry.versions)
        if not version.isdigit() or not 1 <= int(version) <= len(entry.versions):
            raise RegistryError(404, 40402, f"Version {version} not found.")
        return int(version)

    def version(self, subject: str, version: str) -> dict[str, Any]:
        with self._lock:
            entry = self._live(subject)
            return self._version_body(subject, entry, self._version_number(entry, version))

    def versions(self, subject: str) -> list[int]:
        with self._lock:
            return list(range(1, len(self._live(subject).versions) + 1))

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(s for s, e in self._subjects.items() if not e.deleted and e.versions)

    def schema(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, "Schema not found")
            return {"schema": self._schemas[schema_id]}

    def schema_subjects(self, schema_id: int) -> list[str]:
        with self._lock:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, "Schema not found")
            return sorted(
                s for s, e in self._subjects.items() if not e.deleted and schema_id in e.versions
            )

    def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        with self._lock:
            entry = self._subjects.get(subject)
            if entry is None or (entry.deleted and not permanent) or not entry.versions:
                raise _subject_not_found(subject)
            numbers = list(range(1, len(entry.versions) + 1))
            if permanent:
                del self._subjects[subject]
            else:
                entry.deleted = True
            return numbers

    def test_compatibility(self, subject: str, version: str | None, text: str) -> bool:
        self._canonical(text)
        with self._lock:
            entry = self._live(subject)
            level = self._level(subject)
            if version is None:
                existing = [self._schemas[i] for i in entry.versions]
                if not level.endswith("_TRANSITIVE") and level != "NONE":
                    level += "_TRANSITIVE"
            else:
                number = self._version_number(entry, version)
                existing = [self._schemas[entry.versions[number - 1]]]
                level = level.removesuffix("_TRANSITIVE")
            return not incompatibilities(text, existing, level)

    def get_level(self, subject: str | None, *, default_to_global: bool) -> str:
        with self._lock:
            if subject is None:
                return self.compatibility
            entry = self._subjects.get(subject)
            if entry and entry.compatibility:
                return entry.compatibility
            if default_to_global:
                return self.compatibility
            raise RegistryError(
                404,
                40408,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )

    def set_level(self, subject: str | None, level: str) -> str:
        level = str(level).upper()
        if level not in LEVELS:
            raise RegistryError(422, 42203, f"Invalid compatibility level {level!r}")
        with self._lock:
            if subject is None:
                self.compatibility = level
            else:
                self._subjects.setdefault(subject, _Subject()).compatibility = level
            return level


_SUBJECT = r"(?P<subject>[^/]+)"
_VERSION = r"(?P<version>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/subjects/?$"), "subjects"),
    ("GET", re.compile(rf"^/subjects/{_SUBJECT}/versions/?$"), "versions"),
    ("POST", re.compile(rf"^/subjects/{_SUBJECT}/versions/?$"), "register"),
    ("GET", re.compile(rf"^/subjects/{_SUBJECT}/versions/{_VERSION}/?$"), "version"),
    ("GET", re.compile(rf"^/subjects/{_SUBJECT}/versions/{_VERSION}/schema/?$"), "raw_schema"),
    ("POST", re.compile(rf"^/subjects/{_SUBJECT}/?$"), "lookup"),
    ("DELETE", re.compile(rf"^/subjects/{_SUBJECT}/?$"), "delete_subject"),
    ("GET", re.compile(r"^/schemas/ids/(?P<id>\d+)/?$"), "schema"),
    ("GET", re.compile(r"^/schemas/ids/(?P<id>\d+)/subjects/?$"), "schema_subjects"),
    ("GET", re.compile(r"^/schemas/types/?$"), "types"),
    (
        "POST",
        re.compile(rf"^/compatibility/subjects/{_SUBJECT}/versions/{_VERSION}/?$"),
        "compat_version",
    ),
    ("POST", re.compile(rf"^/compatibility/subjects/{_SUBJECT}/versions/?$"), "compat_all"),
    ("GET", re.compile(r"^/config/?$"), "get_config"),
    ("PUT", re.compile(r"^/config/?$"), "put_config"),
    ("GET", re.compile(rf"^/config/{_SUBJECT}/?$"), "get_config"),
    ("PUT", re.compile(rf"^/config/{_SUBJECT}/?$"), "put_config"),
]


@dataclass(frozen=True)
class _Request:
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]


class _Handler(BaseHTTPRequestHandler):
    server: SchemaRegistryHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            body = self._body()
            for route_method, pattern, action in _ROUTES:
                match = pattern.match(url.path)
                if match and route_method == method:
                    params = {k: unquote(v) for k, v in match.groupdict().items()}
                    self._reply(200, getattr(self, f"_{action}")(_Request(params, query, body)))
                    return
            raise RegistryError(404, 404, "HTTP 404 Not Found")
        except RegistryError as exc:
            self._reply(exc.status, {"error_code": exc.error_code, "message": exc.message})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            raise RegistryError(400, 400, "Malformed JSON") from None
        if not isinstance(body, dict):
            raise RegistryError(422, 422, "Unrecognized request body")
        return body

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _schema_text(body: dict[str, Any]) -> str:
        schema_type = body.get("schemaType", "AVRO") or "AVRO"
        if schema_type != "AVRO":
            raise RegistryError(422, 42201, f"Schema type {schema_type} is not supported")
        if body.get("references"):
            raise RegistryError(422, 42201, "Schema references are not supported")
        text = body.get("schema")
        if not isinstance(text, str):
            raise RegistryError(422, 42201, "Either schema or schemaType must be provided")
        return text

    @property
    def state(self) -> SchemaRegistryState:
        return self.server.state

    def _subjects(self, r: _Request) -> Any:
        del r
        return self.state.subjects()

    def _versions(self, r: _Request) -> Any:
        return self.state.versions(r.params["subject"])

    def _register(self, r: _Request) -> Any:
        return self.state.register(r.params["subject"], self._schema_text(r.body))

    def _version(self, r: _Request) -> Any:
        return self.state.version(r.params["subject"], r.params["version"])

    def _raw_schema(self, r: _Request) -> Any:
        return json.loads(self.state.version(r.params["subject"], r.params["version"])["schema"])

    def _lookup(self, r: _Request) -> Any:
        return self.state.lookup(r.params["subject"], self._schema_text(r.body))

    def _delete_subject(self, r: _Request) -> Any:
        return self.state.delete_subject(
            r.params["subject"], permanent=r.query.get("permanent") == "true"
        )

    def _schema(self, r: _Request) -> Any:
        return self.state.schema(int(r.params["id"]))

    def _schema_subjects(self, r: _Request) -> Any:
        return self.state.schema_subjects(int(r.params["id"]))

    def _types(self, r: _Request) -> Any:
        del r
        return ["AVRO"]

    def _compat_version(self, r: _Request) -> Any:
        ok = self.state.test_compatibility(
            r.params["subject"], r.params["version"], self._schema_text(r.body)
        )
        return {"is_compatible": ok}

    def _compat_all(self, r: _Request) -> Any:
        return {
            "is_compatible": self.state.test_compatibility(
                r.params["subject"], None, self._schema_text(r.body)
            )
        }

    def _get_config(self, r: _Request) -> Any:
        level = self.state.get_level(
            r.params.get("subject"), default_to_global=r.query.get("defaultToGlobal") == "true"
        )
        return {"compatibilityLevel": level}

    def _put_config(self, r: _Request) -> Any:
        level = r.body.get("compatibility")
        if not isinstance(level, str):
            raise RegistryError(422, 42203, "compatibility is required")
        return {"compatibility": self.state.set_level(r.params.get("subject"), level)}


class SchemaRegistryHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, state: SchemaRegistryState | None = None
    ) -> None:
        super().__init__((host, port), _Handler)
        self.state = state or SchemaRegistryState()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="schema-registry", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    server = SchemaRegistryHTTPServer(args.host, args.port)
    print(f"schema registry listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

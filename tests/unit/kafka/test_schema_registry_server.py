"""The strict registry double over HTTP: the REST paths the Confluent clients use beyond
registration (deletes, lookups, compatibility levels, raw schemas) and the requests it refuses."""

from __future__ import annotations

import json
import signal
import subprocess  # nosec B404 - starts the module's own entry point
import sys
from collections.abc import Iterator

import httpx
import pytest

from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer

A1 = json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "int"}]})
A2 = json.dumps(
    {
        "type": "record",
        "name": "A",
        "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}],
    }
)
A3 = json.dumps(
    {
        "type": "record",
        "name": "A",
        "fields": [{"name": "a", "type": "int"}, {"name": "c", "type": "string"}],
    }
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    server = SchemaRegistryHTTPServer()
    server.start_in_thread()
    with httpx.Client(base_url=server.url) as client:
        yield client
    server.stop()


def error(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["error_code"]


def test_versions_lookups_and_schema_ids(http: httpx.Client) -> None:
    assert http.post("/subjects/s/versions", json={"schema": A1}).json()["id"] == 1
    assert http.post("/subjects/s/versions", json={"schema": A2}).json()["version"] == 2
    assert http.get("/subjects/s/versions/1").json() == {
        "subject": "s",
        "version": 1,
        "id": 1,
        "schema": A1,
    }
    assert http.get("/subjects/s/versions/-1").json()["id"] == 2
    assert http.get("/subjects/s/versions/2/schema").json() == json.loads(A2)
    assert error(http.get("/subjects/s/versions/x")) == (404, 40402)
    assert error(http.post("/subjects/s", json={"schema": A3})) == (404, 40403)
    assert http.get("/schemas/ids/2/subjects").json() == ["s"]
    assert error(http.get("/schemas/ids/9/subjects")) == (404, 40403)
    assert http.get("/schemas/types").json() == ["AVRO"]
    assert error(http.put("/subjects")) == (404, 404)


def test_soft_and_permanent_deletes(http: httpx.Client) -> None:
    http.post("/subjects/s/versions", json={"schema": A1})
    assert http.delete("/subjects/s").json() == [1]
    assert error(http.delete("/subjects/s")) == (404, 40401)
    assert http.get("/schemas/ids/1/subjects").json() == []
    again = http.post("/subjects/s/versions", json={"schema": A2}).json()
    assert (again["id"], again["version"]) == (2, 1)  # a soft-deleted subject starts afresh
    assert http.delete("/subjects/s", params={"permanent": "true"}).json() == [1]
    assert http.get("/subjects").json() == []
    assert error(http.delete("/subjects/s", params={"permanent": "true"})) == (404, 40401)
    assert error(http.get("/subjects/s/versions")) == (404, 40401)


def test_compatibility_levels_per_subject_and_global(http: httpx.Client) -> None:
    http.post("/subjects/s/versions", json={"schema": A1})
    assert http.get("/config/s", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": "BACKWARD"
    }
    assert http.put("/config", json={"compatibility": "none"}).json() == {"compatibility": "NONE"}
    assert http.get("/config").json() == {"compatibilityLevel": "NONE"}
    # NONE accepts anything, against every version or one
    assert http.post("/compatibility/subjects/s/versions", json={"schema": A3}).json() == {
        "is_compatible": True
    }
    assert http.put("/config/s", json={"compatibility": "BACKWARD"}).status_code == 200
    assert http.get("/config/s").json() == {"compatibilityLevel": "BACKWARD"}
    http.post("/subjects/s/versions", json={"schema": A2})
    # against all versions: a required field without a default breaks backward reading
    assert http.post("/compatibility/subjects/s/versions", json={"schema": A3}).json() == {
        "is_compatible": False
    }
    compatible_with_all = http.post("/compatibility/subjects/s/versions", json={"schema": A2})
    assert compatible_with_all.json() == {"is_compatible": True}
    assert error(http.put("/config/s", json={"compatibility": "SOMETIMES"})) == (422, 42203)
    assert error(http.put("/config", json={})) == (422, 42203)
    assert http.get("/config").json() == {"compatibilityLevel": "NONE"}


def test_malformed_requests_are_refused(http: httpx.Client) -> None:
    malformed = http.post(
        "/subjects/s/versions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error(malformed) == (400, 400)
    assert error(http.post("/subjects/s/versions", json=[A1])) == (422, 422)
    references = {"schema": A1, "references": [{"name": "B", "subject": "b", "version": 1}]}
    assert error(http.post("/subjects/s/versions", json=references)) == (422, 42201)
    assert error(http.post("/subjects/s/versions", json={"schemaType": "AVRO"})) == (422, 42201)
    assert http.get("/subjects").json() == []


def test_the_module_runs_standalone_until_interrupted() -> None:
    with subprocess.Popen(  # nosec B603 - fixed argv, this interpreter
        [sys.executable, "-m", "infra.kafka.schema_registry_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("schema registry listening on http://127.0.0.1:")
        assert httpx.get(f"{line.split()[-1]}/subjects").json() == []
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0

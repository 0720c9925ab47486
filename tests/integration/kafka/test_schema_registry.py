"""Schema evolution at registration, against the registry served over HTTP (the strict double of
the Confluent REST API that `acgs serve --kafka-local` also runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer
from infra.kafka.schemas import SchemaCatalog

pytestmark = pytest.mark.kafka


@pytest.fixture
def registry(kafka_config: KafkaConfig) -> Iterator[SchemaRegistryClient]:
    client = SchemaRegistryClient(kafka_config.registry_conf())
    yield client
    client.close()


def evolve(
    schema: dict[str, Any], namespace: str, add: list[dict[str, Any]] = (), drop: str = ""
) -> str:  # type: ignore[assignment]
    fields = [f for f in schema["fields"] if f["name"] != drop] + list(add)
    return json.dumps({**schema, "namespace": namespace, "fields": fields})


def test_adding_a_field_with_a_default_passes_and_removing_a_required_field_is_refused(
    registry: SchemaRegistryClient, unique: str
) -> None:
    created = SchemaCatalog().get("acgs.events.tenant.Created").definition
    namespace = f"acgs.events.evolution{unique}"
    subject = f"{namespace}.Created"
    registry.set_compatibility(subject_name=subject, level="FULL")
    v1 = registry.register_schema(subject, Schema(evolve(created, namespace), "AVRO"))

    with_region = evolve(
        created, namespace, add=[{"name": "region", "type": "string", "default": "eu"}]
    )
    v2 = registry.register_schema(subject, Schema(with_region, "AVRO"))
    assert v2 != v1
    assert registry.get_latest_version(subject).version == 2

    without_slug = evolve(created, namespace, drop="tenant_slug")
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, Schema(without_slug, "AVRO"))
    assert refused.value.http_status_code == 409
    required_without_default = evolve(created, namespace, add=[{"name": "x", "type": "int"}])
    with pytest.raises(SchemaRegistryError):
        registry.register_schema(subject, Schema(required_without_default, "AVRO"))
    assert registry.get_versions(subject) == [1, 2]


def test_our_schemas_register_under_their_record_names(registry: SchemaRegistryClient) -> None:
    codec = EventCodec(registry)
    ids = codec.register("FULL")
    assert set(ids) == {s.full_name for s in SchemaCatalog().streamed()}
    assert set(ids) <= set(registry.get_subjects())
    assert codec.register("FULL") == ids  # registering again changes nothing


@pytest.fixture
def server() -> Iterator[SchemaRegistryHTTPServer]:
    server = SchemaRegistryHTTPServer()
    server.start_in_thread()
    yield server
    server.stop()


def test_the_registry_is_strict(server: SchemaRegistryHTTPServer) -> None:
    schema = json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "int"}]})
    with httpx.Client(base_url=server.url) as http:
        first = http.post("/subjects/s1/versions", json={"schema": schema})
        again = http.post("/subjects/s1/versions", json={"schema": schema})
        other_subject = http.post("/subjects/s2/versions", json={"schema": schema})
        assert first.status_code == 200
        assert first.json()["id"] == again.json()["id"] == other_subject.json()["id"]
        assert http.get("/subjects/s1/versions").json() == [1]
        assert http.get("/schemas/ids/1").json() == {"schema": schema}
        assert http.post("/subjects/s1", json={"schema": schema}).json()["version"] == 1

        bad = http.post("/subjects/s1/versions", json={"schema": '{"type": "record"}'})
        assert (bad.status_code, bad.json()["error_code"]) == (422, 42201)
        protobuf = http.post(
            "/subjects/s1/versions", json={"schema": "syntax", "schemaType": "PROTOBUF"}
        )
        assert protobuf.status_code == 422
        assert http.get("/subjects/nope/versions").json()["error_code"] == 40401
        assert http.get("/subjects/s1/versions/7").json()["error_code"] == 40402
        assert http.get("/schemas/ids/99").json()["error_code"] == 40403
        assert http.get("/associations/resources/-/topic").status_code == 404
        assert http.get("/config/s1").status_code == 404
        assert http.get("/config").json() == {"compatibilityLevel": "BACKWARD"}

        required = json.dumps(
            {
                "type": "record",
                "name": "A",
                "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "int"}],
            }
        )
        check = http.post("/compatibility/subjects/s1/versions/latest", json={"schema": required})
        assert check.json() == {"is_compatible": False}
        refused = http.post("/subjects/s1/versions", json={"schema": required})
        assert (refused.status_code, refused.json()["error_code"]) == (409, 409)
        assert http.put("/config/s1", json={"compatibility": "NONE"}).status_code == 200
        assert http.post("/subjects/s1/versions", json={"schema": required}).status_code == 200
        assert http.delete("/subjects/s1").json() == [1, 2]
        assert http.get("/subjects").json() == ["s2"]

"""The operations of the served OpenAPI document, for the security tests that visit every one:
their parameters and JSON body fields, and concrete paths to send them to."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from tests.peers.http import Api

# Operations that end the tenant or its sessions go last, so the others run against a live one.
_LAST = ("DELETE", "/logout", "/sessions", "/purge", "/deactivate")


def operations(api: Api) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(method, path template, operation, components) of every operation in /schema."""
    with api.client() as anonymous:
        document = anonymous.get("/schema").json()
    components = document.get("components", {}).get("schemas", {})
    found = [
        (method.upper(), path, operation, components)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(found, key=lambda o: (any(m in f"{o[0]} {o[1]}" for m in _LAST), o[1], o[0]))


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    for option in schema.get("oneOf", schema.get("anyOf", [])):
        resolved = resolve(option, components)
        if resolved.get("properties"):
            return resolved
    return schema


def body_fields(operation: dict[str, Any], components: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return []
    schema = resolve(content["application/json"].get("schema", {}), components)
    return sorted(schema.get("properties", {}))


def parameters(operation: dict[str, Any], where: str) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == where]


def fill(path: str, ids: dict[str, str], injected: tuple[str, str] | None = None) -> str:
    def value(name: str) -> str:
        if injected and injected[0] == name:
            return quote(injected[1], safe="")
        return ids.get(name, str(uuid.uuid4()))

    for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
        path = path.replace("{" + name + "}", value(name))
    return path

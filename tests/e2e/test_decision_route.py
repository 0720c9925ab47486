"""The decision route served by the edge (api/http/decision_route.py) answers exactly as the
framework's route does: every request is sent to `/decisions`, which the edge serves when it
accepts the request, and to `/decisions/`, which the framework always serves (the same route);
status, headers and body must match, the decision id and per-request headers aside."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from api.http import decision_route
from domain.maci import MaciRole
from tests.e2e.policy_support import SAMPLES, activate, submitted
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FINANCE = (SAMPLES / "json_00_finance.json").read_text()
ALLOWED = {"user": {"kind": "service", "scopes": ["finance:read"]}, "context": {"mtls": True}}
DENIED = {"context": {"requests_per_minute": 900}}
PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "date"}
OTHER_HASH = "0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> UUID:
    tenant_id = UUID(api.create_tenant(platform, f"route-{unique}")["tenant_id"])
    with api.client(api.token(MaciRole.LEGISLATIVE, tenant_id=tenant_id)) as author:
        [added] = submitted(author, tenant_id, FINANCE, "json")["policies"]
        response = activate(author, tenant_id, added["policy_id"], added["version"])
        assert response.status_code == 200, response.text
    return tenant_id


@pytest.fixture
def served_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests the edge answered itself."""
    calls: list[int] = []
    real = decision_route.decision_answer

    async def counted(*args: Any) -> bytes:
        calls.append(1)
        return await real(*args)

    monkeypatch.setattr(decision_route, "decision_answer", counted)
    return calls


def _one(key: str, document: Any, **extra: Any) -> bytes:
    return json.dumps({"policy_id": key, "input": document, **extra}).encode()


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in PER_REQUEST}
    if response.headers.get("content-type") != "application/json":
        return response.status_code, headers, response.content
    body = response.json()
    for result in [body, *body.get("results", [])] if isinstance(body, dict) else []:
        if "decision_id" in result:
            UUID(result.pop("decision_id"))
    if "content-length" in headers:  # the decision ids have one length
        headers["content-length"] = str(len(response.content))
    return response.status_code, headers, body


def _same_answer(
    client: httpx.Client, tenant: UUID, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    here = client.post(f"/v1/tenants/{tenant}/decisions", content=body, headers=headers)
    framework = client.post(f"/v1/tenants/{tenant}/decisions/", content=body, headers=headers)
    assert _comparable(here) == _comparable(framework), body
    return here.status_code, _comparable(here)[2]


# (body, headers, expected status, served by the edge)
CASES: list[tuple[bytes, dict[str, str], int, bool]] = [
    (_one("finance-api", ALLOWED), JSON, 200, True),
    (_one("finance-api", DENIED), JSON, 200, True),
    (_one("finance-api", ALLOWED, constitutional_hash=HASH), JSON, 200, True),
    (_one("finance-api", ALLOWED), {**JSON, "X-Constitutional-Hash": HASH}, 200, True),
    (_one("finance-api", ALLOWED), {}, 200, True),  # no Content-Type is read as JSON
    (
        json.dumps({"requests": [{"policy_id": "finance-api", "input": ALLOWED}] * 3}).encode(),
        JSON,
        200,
        True,
    ),
    (_one("no-such-policy", ALLOWED), JSON, 404, True),
    (_one("finance-api", ALLOWED, constitutional_hash=OTHER_HASH), JSON, 409, True),
    (_one("finance-api", ALLOWED), {**JSON, "X-Constitutional-Hash": OTHER_HASH}, 409, True),
    (_one("finance-api", ALLOWED), {**JSON, "X-Constitutional-Hash": "not-a-hash"}, 422, True),
    (
        json.dumps({"policy_id": "finance-api", "input": {}, "requests": []}).encode(),
        JSON,
        422,
        True,
    ),
    (json.dumps({"requests": []}).encode(), JSON, 422, True),
    (json.dumps({"input": ALLOWED}).encode(), JSON, 422, True),
    # left to the framework
    (_one("finance-api", ALLOWED), {"Content-Type": "text/plain"}, 415, False),
    (b'{"policy_id": "finance-api", "input": ', JSON, 422, False),
    (_one("finance-api", ALLOWED, extra=1), JSON, 422, False),
    (b'{"policy_id": "finance-api", "policy_id": "x", "input": {}}', JSON, 422, False),
    (_one("finance-api", "not an object"), JSON, 422, False),
    (b"", JSON, 422, False),
]


@pytest.mark.parametrize(("body", "headers", "status", "here"), CASES)
def test_the_edge_answers_as_the_framework_route_does(
    api: Api,
    tenant: UUID,
    served_here: list[int],
    body: bytes,
    headers: dict[str, str],
    status: int,
    here: bool,
) -> None:
    with api.client(api.token(MaciRole.MONITOR, tenant_id=tenant, sub="monitor")) as client:
        answered, _ = _same_answer(client, tenant, body, headers)
    assert answered == status
    assert len(served_here) == (1 if here else 0)


def test_another_tenants_principal_is_refused_alike(
    api: Api, platform: httpx.Client, unique: str, tenant: UUID, served_here: list[int]
) -> None:
    other = UUID(api.create_tenant(platform, f"route-other-{unique}")["tenant_id"])
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=other, sub="stranger")) as client:
        status, body = _same_answer(client, tenant, _one("finance-api", ALLOWED), JSON)
    assert status == 404, body  # another tenant's resources are not shown to exist
    assert len(served_here) == 1


def test_a_decision_made_here_is_logged_like_any_other(
    api: Api, tenant: UUID, served_here: list[int]
) -> None:
    recorder = api.system.decision_log
    assert recorder is not None
    made: Callable[[], int] = lambda: recorder.made  # noqa: E731
    before = made()
    with api.client(api.token(MaciRole.MONITOR, tenant_id=tenant, sub="monitor")) as client:
        status, body = _same_answer(client, tenant, _one("finance-api", ALLOWED), JSON)
    assert (status, body["allow"], body["obligations"]) == (200, True, [{"type": "audit"}])
    assert made() == before + 2
    assert len(served_here) == 1

"""Every operation of the served OpenAPI document (/schema), fuzzed with Schemathesis against
the real app on the real database, as three real principals: a platform EXECUTIVE, a tenant's
EXECUTIVE (its admin) and a tenant's MONITOR (the lowest role).

The test iterates over the document: a route added later is fuzzed the moment it is documented,
with no code here. Checks on every response: never a 5xx; status code, headers, content type
and body as documented; every error in the one envelope, its code mapped to the status and the
constitutional hash inside; nothing of another tenant (id, slug, name, admin email) reaches a
tenant's principals; no bearer token is ever echoed. Where the document declares links, a
stateful run follows them (create a tenant, then read, update, deactivate, reactivate it).

Positive and negative cases both run. Writes carry the deployment's constitutional hash in
most cases (as a client holds its token, it holds the hash), so generated requests reach past
the hash check; the rest keep whatever the fuzzer generated.

Each generated request is sent as each principal in turn (generating it is most of the cost).
Bounded for `make test` (ACGS_FUZZ_EXAMPLES examples per operation, default 10); `make fuzz`
runs many more.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import CheckFunction
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.http.errors import STATUS_BY_CODE
from tests.fuzz.world import MAX_EXAMPLES, STATEFUL_EXAMPLES, World
from tests.peers.http import HASH

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.security, pytest.mark.slow]

SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PRINCIPALS = ("platform", "tenant_admin", "low_role")
# Which tenant a {tenant_id} in the path names: the principal's own, another one, the system
# tenant, or whatever the fuzzer generated.
TARGETS = ("own", "other", "system", "generated")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bodies a schema cannot fully describe: a policy source (it must also convert), free-form
# decision inputs (JSON of any shape, in which a NUL is refused), shadow mode's legacy decisions
# and commands, and a migration job's request. There a schema-valid body may be refused with
# 422; every other check (no 5xx, the envelope, isolation, invalid data rejected) still applies.
SEMANTIC_BODIES = frozenset(
    {
        ("POST", "/v1/tenants/{tenant_id}/policies"),
        ("POST", "/v1/tenants/{tenant_id}/policies/upload"),
        ("POST", "/v1/tenants/{tenant_id}/decisions"),
        ("POST", "/v1/tenants/{tenant_id}/shadow/decisions"),  # each item checked in the handler
        ("POST", "/v1/tenants/{tenant_id}/shadow"),  # the fields an action takes
        # a migration job's source_config is checked by its kind, its source must exist
        ("POST", "/v1/tenants/{tenant_id}/migrations"),
        ("POST", "/v1/tenants/{tenant_id}/migrations/upload"),
        # a webhook's URL must pass the SSRF guard; its events are a fixed list
        ("POST", "/v1/tenants/{tenant_id}/webhooks"),
        ("PATCH", "/v1/tenants/{tenant_id}/webhooks/{webhook_id}"),
    }
)


def _local_names_only(host: str, port: object, **options: Any) -> list[tuple[Any, ...]]:
    """The webhooks' resolver for the fuzz run: generated host names are never looked up (no
    query may leave 127.0.0.1); `localhost` is, as the guard must still refuse it."""
    if host != "localhost":
        raise socket.gaierror(socket.EAI_NONAME, "not resolved in tests")
    return socket.getaddrinfo(host, port, **options)


@pytest.fixture(scope="module")
def served_schema(world: World, projections_following: None) -> Iterator[BaseSchema]:
    guard = world.api.system.webhook_guard
    assert guard is not None
    resolve, guard.resolve = guard.resolve, _local_names_only
    loaded = schemathesis.openapi.from_url(f"{world.url}/schema")
    loaded.config.update(base_url=world.url)
    yield loaded
    guard.resolve = resolve


def envelope_check(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every response carries the hash; every error is the one envelope, code mapped to status
    (unless the document gives that status a body of its own, as /readyz does for 503)."""
    assert response.headers.get("x-constitutional-hash") == [HASH], response.headers
    if response.status_code < 400 or not _documented_as_envelope(case, response.status_code):
        return None
    body = json.loads(response.content)
    assert list(body) == ["error"], body
    error = body["error"]
    assert sorted(error) == ["code", "constitutional_hash", "details", "message"], error
    assert error["constitutional_hash"] == HASH, error
    assert isinstance(error["details"], dict), error
    assert STATUS_BY_CODE.get(error["code"]) == response.status_code, error
    return None


def _documented_as_envelope(case: Case, status: int) -> bool:
    documented = case.operation.definition.raw.get("responses", {}).get(str(status))
    if documented is None:
        return True  # undocumented: the status check reports it; it must still be the envelope
    schemas = [m.get("schema", {}) for m in documented.get("content", {}).values()]
    return any(s.get("$ref", "").endswith("/ErrorEnvelope") for s in schemas)


def isolation_check(world: World, principal: str) -> CheckFunction:
    def no_leak(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        text = response.content.decode("utf-8", "replace")
        for token in world.secrets:
            assert token not in text, "a bearer token was echoed"
        if principal != "platform":
            sent = _sent(case)
            for mark in world.other_tenant_marks():
                if mark not in sent:  # an id the caller sent may come back in a 404's details
                    assert mark not in text, f"another tenant's {mark!r} reached {principal}"
        return None

    return no_leak


def _sent(case: Case) -> str:
    return json.dumps(
        [case.path_parameters, case.query, case.body if isinstance(case.body, dict | list) else ""],
        default=str,
    )


def _negative(case: Case, location: str | None = None) -> bool:
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.NEGATIVE:
        return False
    if location is None:
        return True
    return any(
        str(getattr(where, "value", where)) == location and info.mode == GenerationMode.NEGATIVE
        for where, info in meta.components.items()
    )


def _aim(case: Case, world: World, principal: str, target: str) -> None:
    """Point a {tenant_id} at a tenant that exists (the fuzzer's own UUIDs never do)."""
    if "tenant_id" not in (case.path_parameters or {}) or target == "generated":
        return
    if _negative(case, "path") or (principal == "platform" and target == "system"):
        return  # keep invalid ids; the fuzzer does not get to deactivate the platform's tenant
    case.path_parameters["tenant_id"] = {
        "own": str(world.principals[principal].tenant_id),
        "other": world.other_tenant["tenant_id"],
        "system": "00000000-0000-0000-0000-000000000000",
    }[target]


def _call(
    case: Case, world: World, principal: str, *, with_hash: bool
) -> tuple[dict[str, str], list[CheckFunction], list[CheckFunction]]:
    """Headers, extra checks and excluded checks of one call.

    The principal's real token replaces whatever Authorization the fuzzer made; when the
    fuzzer made the headers the invalid part of a negative case, that may make the request
    valid again, so such a case is not held to "invalid data is rejected"."""
    headers = dict(world.principals[principal].headers)
    excluded: list[CheckFunction] = []
    if _carries_integration_config(case):
        # An integration's `config` is a free-form object in the document: its rules are each
        # type's schema in the domain (docs/integrations.md), with rules across fields that JSON
        # Schema cannot state, so a schema-valid config may rightly be refused with 422.
        excluded.append(positive_data_acceptance)
    if _negative(case, "header"):
        excluded.append(negative_data_rejection)
    if (case.method.upper(), case.operation.path) in SEMANTIC_BODIES:
        excluded.append(positive_data_acceptance)
    if any(
        p.get("name") == "start_time" for p in case.operation.definition.raw.get("parameters", [])
    ):
        # The audit log's time range: end after start and at most a configured span, rules
        # across two parameters that the document cannot state; a range that breaks them is
        # refused (422) although each parameter alone is valid.
        excluded.append(positive_data_acceptance)
    if any(
        p.get("name") == "return_to" for p in case.operation.definition.raw.get("parameters", [])
    ):
        # A sign-in's return path: a path of the web console with no `..`, `//`, backslash,
        # control character or fragment (api/console/landing.py), rules a pattern would only
        # approximate; another string is refused (422).
        excluded.append(positive_data_acceptance)
    if case.method.upper() in WRITES:
        if with_hash:
            headers["X-Constitutional-Hash"] = HASH
        else:
            excluded.append(positive_data_acceptance)  # a generated hash is refused, rightly
    return headers, [envelope_check, isolation_check(world, principal)], excluded


def _carries_integration_config(case: Case) -> bool:
    return (
        case.method.upper() in {"POST", "PATCH"}
        and case.path.endswith(("/integrations", "/integrations/{integration_id}"))
        and isinstance(case.body, dict)
        and "config" in case.body
    )


def _fuzz(operation: APIOperation, world: World) -> None:
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.given(case=cases, target=st.sampled_from(TARGETS), with_hash=st.booleans())
    @SETTINGS
    def fuzz(case: Case, target: str, with_hash: bool) -> None:
        generated = dict(case.path_parameters) if case.path_parameters is not None else None
        for principal in PRINCIPALS:
            if generated is not None:
                case.path_parameters = dict(generated)  # as generated, aimed for this principal
            _aim(case, world, principal, target)
            headers, extra, excluded = _call(case, world, principal, with_hash=with_hash)
            try:
                case.call_and_validate(
                    headers=headers, additional_checks=extra, excluded_checks=excluded
                )
            except (Exception, BaseExceptionGroup) as exc:
                exc.add_note(f"as {principal}")
                raise

    fuzz()


def _each(run: Callable[[], None], label: str, failures: list[str]) -> None:
    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all failures listed at the end
        failures.append(" ".join([f"{label}: {exc}", *getattr(exc, "__notes__", [])]))


def test_no_input_gets_a_5xx_or_leaves_the_document(
    world: World, served_schema: BaseSchema
) -> None:
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) >= 10, "the document lost operations"
    failures: list[str] = []
    for operation in operations:
        _each(lambda op=operation: _fuzz(op, world), operation.label, failures)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_linked_operations_hold_up_in_sequence(
    principal: str, world: World, served_schema: BaseSchema
) -> None:
    """Stateful: the fuzzer follows the document's links (create, then act on what it created)."""
    linked = [
        op.label
        for op in (result.ok() for result in served_schema.get_all_operations())
        if any("links" in r for r in op.definition.raw.get("responses", {}).values())
    ]
    assert linked, "the document declares no links to follow"
    machine: type[APIStateMachine] = served_schema.as_state_machine()
    found: list[str] = []

    class Workflow(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Case) -> dict[str, object]:
            headers, _, _ = _call(case, world, principal, with_hash=True)
            return {"headers": headers}

        def validate_response(  # type: ignore[override]
            self, response: Response, case: Case, **kwargs: object
        ) -> None:
            _, extra, excluded = _call(case, world, principal, with_hash=True)
            try:
                case.validate_response(response, additional_checks=extra, excluded_checks=excluded)
            except (Exception, BaseExceptionGroup) as exc:
                found.append(f"{case.method} {case.formatted_path}: {exc}")
                raise

    # Which links can be followed depends on what the server answered before, so Hypothesis may
    # see a scenario draw differently on replay (Flaky); the failures seen are kept in `found`.
    with contextlib.suppress(hypothesis.errors.Flaky):
        Workflow.run(
            settings=hypothesis.settings(
                SETTINGS,
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=6,
                phases=[hypothesis.Phase.generate],
            )
        )
    assert not found, "\n\n".join(found)

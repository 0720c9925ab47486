"""The registry of warm per-integration adapters, on a stand-in for the integration commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

from api.bootstrap import System
from api.integration_adapters import IntegrationAdapters
from domain.errors import NotFound

TENANT = uuid4()


@dataclass
class Stored:
    id: UUID
    kind: str = "ldap"
    version: int = 1
    enabled: bool = True
    config: dict[str, Any] = field(default_factory=lambda: {"url": "ldap://one"})

    @property
    def integration_type(self) -> SimpleNamespace:
        return SimpleNamespace(value=self.kind)

    def clear_config(self, _sealer: object) -> dict[str, Any]:
        return dict(self.config)


class Commands:
    sealer = None

    def __init__(self) -> None:
        self.stored: dict[UUID, Stored] = {}
        self.loads = 0

    def load(self, tenant_id: UUID, integration_id: UUID) -> Stored:
        self.loads += 1
        if tenant_id != TENANT or integration_id not in self.stored:
            raise NotFound("no such integration")
        return self.stored[integration_id]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _registry(commands: Commands, clock: Clock, closed: list[str]) -> IntegrationAdapters[str]:
    system = cast("System", SimpleNamespace(integrations=commands))
    return IntegrationAdapters(
        system,
        ("ldap",),
        lambda _integration, config, variant: f"{config['url']}@{variant}",
        close=closed.append,
        clock=clock,
    )


def test_an_adapter_is_kept_per_version_and_the_replaced_one_closed() -> None:
    commands, clock, closed = Commands(), Clock(), []
    one = Stored(uuid4())
    commands.stored[one.id] = one
    registry = _registry(commands, clock, closed)
    found = registry.get(TENANT, one.id, "a")
    assert found is not None
    assert found[1] == "ldap://one@a"
    one.version, one.config = 2, {"url": "ldap://two"}
    assert registry.get(TENANT, one.id, "a") == found  # within the recheck interval
    assert commands.loads == 1
    clock.now += 5
    found = registry.get(TENANT, one.id, "a")
    assert found is not None
    assert found[1] == "ldap://two@a"
    assert closed == ["ldap://one@a"]
    clock.now += 5
    assert registry.get(TENANT, one.id, "a") == found  # same version: the same adapter
    assert closed == ["ldap://one@a"]
    registry.close()
    assert closed == ["ldap://one@a", "ldap://two@a"]


def test_disabled_unknown_and_other_kinds_find_nothing_and_are_remembered_as_such() -> None:
    commands, clock, closed = Commands(), Clock(), []
    disabled, saml = Stored(uuid4(), enabled=False), Stored(uuid4(), kind="saml")
    commands.stored.update({disabled.id: disabled, saml.id: saml})
    registry = _registry(commands, clock, closed)
    for integration_id in (disabled.id, saml.id, uuid4()):
        assert registry.get(TENANT, integration_id) is None
        assert registry.get(uuid4(), integration_id) is None
    loads = commands.loads
    assert registry.get(TENANT, disabled.id) is None
    assert commands.loads == loads  # a miss is remembered for the recheck interval too
    disabled.enabled = True
    clock.now += 5
    assert registry.get(TENANT, disabled.id) is not None


def test_a_build_that_failed_is_tried_again_at_the_next_check() -> None:
    commands, clock, closed = Commands(), Clock(), []
    one = Stored(uuid4())
    commands.stored[one.id] = one
    outcomes = [None, "built"]  # the IdP's metadata unreachable once, then back
    system = cast("System", SimpleNamespace(integrations=commands))
    registry: IntegrationAdapters[str] = IntegrationAdapters(
        system, ("ldap",), lambda *_: outcomes.pop(0), close=closed.append, clock=clock
    )
    assert registry.get(TENANT, one.id) is None
    assert registry.get(TENANT, one.id) is None  # remembered for the recheck interval
    assert outcomes == ["built"]
    clock.now += 5
    found = registry.get(TENANT, one.id)  # the same version, built again
    assert found is not None
    assert found[1] == "built"
    assert closed == []

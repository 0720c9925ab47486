"""Plain helpers of the spine's integration tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from api.bootstrap import System
from commands.context import CommandContext, Principal
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)


def catch_up(system: System) -> None:
    for runner in system.runners:
        runner.catch_up()

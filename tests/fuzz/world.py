"""What the fuzz tests share: the example budgets, the principals and the world they fuzz, and
putting the platform tenant back (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from uuid import UUID

from commands.context import CommandContext
from commands.context import Principal as Principal_
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from tests.peers.http import HASH, Api

MAX_EXAMPLES = int(os.environ.get("ACGS_FUZZ_EXAMPLES", "10"))
STATEFUL_EXAMPLES = int(os.environ.get("ACGS_FUZZ_STATEFUL_EXAMPLES", "15"))


GENEROUS_QUOTA = 1_000_000


@dataclass
class Principal:
    name: str
    token: str
    tenant_id: UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    url: str
    api: Api
    principals: dict[str, Principal]
    own_tenant: dict[str, str]  # the tenant of the tenant admin and the low role
    other_tenant: dict[str, str]  # another tenant, never to be seen by them
    secrets: list[str] = field(default_factory=list)  # tokens, never to be echoed

    def other_tenant_marks(self) -> list[str]:
        t = self.other_tenant
        return [t["tenant_id"], t["tenant_slug"], t["tenant_name"], t["admin_email"]]


SYSTEM_FIELDS = (
    "tenant_name",
    "admin_email",
    "billing_plan",
    "max_requests_per_minute",
    "max_storage_gb",
    "max_concurrent_connections",
)


def as_operator() -> CommandContext:
    """A platform EXECUTIVE acting through the commands, as the CLI does (no HTTP, no quotas)."""
    operator = Principal_(
        sub="pytest-fuzz", tenant_id=SYSTEM_TENANT_ID, roles=(MaciRole.EXECUTIVE,)
    )
    return CommandContext(operator, HASH)


def restore_the_platform(api: Api, fields: dict[str, object]) -> None:
    """Put the system tenant back as it was: the platform fuzzer may change its profile and
    quotas (it is a tenant like any other), which the suites after this one must not see."""
    tenants = api.system.tenants
    tenant = api.system.app.load(SYSTEM_TENANT_ID, SYSTEM_TENANT_ID, Tenant)
    if tenant.status.value != "active":
        tenant = tenants.reactivate(as_operator(), SYSTEM_TENANT_ID)
    current = {
        **tenant.quotas.as_dict(),
        "tenant_name": tenant.tenant_name,
        "admin_email": tenant.admin_email,
        "billing_plan": tenant.billing_plan,
    }
    changes = {k: v for k, v in fields.items() if current.get(k) != v}
    if changes:
        tenant = tenants.update(as_operator(), SYSTEM_TENANT_ID, changes).tenant
    api.services.directory.remember(tenant)

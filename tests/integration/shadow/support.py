"""Helpers of the shadow-mode tests: a tenant with an active Rego policy that errs on demand,
principals, and corpora of legacy decisions with known (dis)agreements."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from api.bootstrap import System
from commands.context import CommandContext, Principal
from commands.policy_intake import SubmitPolicy
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.shadow.comparison import LegacyDecision
from domain.tenancy import SYSTEM_TENANT_ID

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)

# Owners are allowed; a request whose context asks for it fails to evaluate (divide by zero):
# how these tests inject Rego errors (docs/migration-playbook.md does it with a faulty version).
SHADOW_REGO = f"""package acgs.custom.documents

constitutional_hash := "{HASH}"

default allow := false

# the role of the principal, else (imported decisions name the principal only) of the context
role := r if {{
\tr := input.user.role
}}

role := r if {{
\tnot input.user.role
\tr := input.context.role
}}

allow if {{
\tinput.constitutional_hash == constitutional_hash
\trole == "owner"
\tnot input.context.fail
}}

allow if {{
\tinput.context.fail
\t1 / 0 == 1
}}

deny contains "constitutional hash mismatch" if input.constitutional_hash != constitutional_hash

deny contains "not an owner" if {{
\tinput.constitutional_hash == constitutional_hash
\trole != "owner"
}}

obligations := set()
"""


@dataclass(frozen=True)
class ShadowTenant:
    id: UUID

    def ctx(self, sub: str, *roles: MaciRole) -> CommandContext:
        return CommandContext(Principal(sub, self.id, roles), HASH)

    def principal(self, sub: str, *roles: MaciRole) -> Principal:
        return Principal(sub, self.id, roles)


def shadow_tenant(system: System, slug: str) -> ShadowTenant:
    tenant = system.tenants.create(
        PLATFORM,
        CreateTenant(tenant_name=f"Shadow {slug}", tenant_slug=slug, admin_email="a@example.com"),
    )
    made = ShadowTenant(tenant.id)
    author = made.ctx("lee", MaciRole.LEGISLATIVE)
    assert system.policies is not None
    system.policies.submit(author, made.id, SubmitPolicy(SHADOW_REGO, "rego"))
    system.policies.activate(author, made.id, "documents", 1)
    return made


def decision(
    role: str, n: int, *, legacy_allow: bool, fail: bool = False, prefix: str = "d"
) -> LegacyDecision:
    context: dict[str, object] = {"n": n}
    if fail:
        context["fail"] = True
    return LegacyDecision(
        principal={"id": f"user-{n}", "role": role},
        action="read",
        resource=f"doc-{n}",
        context=context,
        allow=legacy_allow,
        latency_ms=2.0 + (n % 10),
        decision_id=f"{prefix}-{n}",
    )


def corpus(
    agree: int, missed: int = 0, extra: int = 0, errors: int = 0, *, prefix: str = "d"
) -> list[LegacyDecision]:
    """`agree` agreements (owners allowed, guests denied, alternately), `missed` violations the
    legacy engine missed, `extra` legacy denials Rego allows, `errors` Rego errors."""
    made: list[LegacyDecision] = []
    n = 0
    for i in range(agree):
        made.append(
            decision("owner", n, legacy_allow=True, prefix=prefix)
            if i % 2
            else decision("guest", n, legacy_allow=False, prefix=prefix)
        )
        n += 1
    for _ in range(missed):
        made.append(decision("guest", n, legacy_allow=True, prefix=prefix))
        n += 1
    for _ in range(extra):
        made.append(decision("owner", n, legacy_allow=False, prefix=prefix))
        n += 1
    for _ in range(errors):
        made.append(decision("owner", n, legacy_allow=True, fail=True, prefix=prefix))
        n += 1
    return made

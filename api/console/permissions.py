"""What the signed-in principal may do, asked before a page shows a control: a button the
principal may not use is left out (the command refuses it anyway, with the same rule)."""

from __future__ import annotations

from uuid import UUID

from commands.authorization import Permission, authorize
from commands.context import Principal
from domain.errors import DomainError


def may(principal: Principal, permission: Permission, tenant_id: UUID | None = None) -> bool:
    """True when `authorize` would let `principal` use `permission` on `tenant_id`."""
    try:
        authorize(principal, permission, tenant_id)
    except DomainError:
        return False
    return True

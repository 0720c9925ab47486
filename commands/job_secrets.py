"""Secrets in a migration job's parameters (a source database's connection string, which may hold
a password): sealed under a data key of the job's own before the job's first event is recorded,
so events, read models and responses hold only the sealed value (and `source_config` shows
`***` in its place); opened only when a worker hands the parameters to the job's kind.

A kind names its secret parameters in `secret_parameters` (none by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from commands.migration_kinds import JobKind
from domain.errors import ValidationFailed
from domain.secrets import SecretSealer, is_sealed

KEY_ID = "sealed_key_id"  # the parameter holding the data key's id
MASK = "***"


def secret_names(kind: JobKind) -> frozenset[str]:
    names: frozenset[str] = getattr(kind, "secret_parameters", frozenset())
    return names


def seal(
    sealer: SecretSealer | None,
    tenant_id: UUID,
    kind: JobKind,
    parameters: Mapping[str, Any],
    source_config: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters with their secrets sealed, and the source_config with them masked."""
    present = [n for n in sorted(secret_names(kind)) if parameters.get(n) is not None]
    kept, shown = dict(parameters), dict(source_config)
    if not present:
        return kept, shown
    if sealer is None:
        raise ValidationFailed.listing(
            [
                {"field": name, "message": "cannot be kept safely: no key provider is configured"}
                for name in present
            ]
        )
    key_id = sealer.new_key(tenant_id)
    for name in present:
        kept[name] = sealer.seal(tenant_id, key_id, _path(kind.name, name), str(kept[name]))
        if name in shown:
            shown[name] = MASK
    kept[KEY_ID] = key_id
    return kept, shown


def opened(
    sealer: SecretSealer | None, tenant_id: UUID, kind: JobKind, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters as the kind validated them, secrets in clear (for the worker only)."""
    clear = {k: v for k, v in parameters.items() if k != KEY_ID}
    key_id = parameters.get(KEY_ID)
    for name in secret_names(kind):
        value = clear.get(name)
        if is_sealed(value) and sealer is not None and isinstance(key_id, str):
            clear[name] = sealer.open(tenant_id, key_id, _path(kind.name, name), str(value))
    return clear


def _path(kind: str, name: str) -> str:
    return f"migration.{kind}.{name}"

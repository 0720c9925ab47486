"""Wrapped data keys in memory (`infra.keys.envelope.DataKeyStore`), for tests and benchmarks
that exercise the envelope without SQL. Nothing survives the process."""

from __future__ import annotations

from uuid import UUID

from infra.keys.envelope import StoredKey


class InMemoryDataKeys:
    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[UUID, StoredKey]] = {}

    def insert(
        self, tenant_id: UUID, key_id: UUID, provider: str, wrapped: str, kek_version: int
    ) -> None:
        del provider
        self.rows[key_id] = (tenant_id, StoredKey(key_id, wrapped, kek_version))

    def wrapped(self, tenant_id: UUID, key_id: UUID) -> str | None:
        row = self.rows.get(key_id)
        return row[1].wrapped_key if row is not None and row[0] == tenant_id else None

    def of_tenant(self, tenant_id: UUID) -> list[StoredKey]:
        return [key for tenant, key in self.rows.values() if tenant == tenant_id]

    def rewrapped(self, tenant_id: UUID, key_id: UUID, wrapped: str, kek_version: int) -> None:
        if self.wrapped(tenant_id, key_id) is not None:
            self.rows[key_id] = (tenant_id, StoredKey(key_id, wrapped, kek_version))

    def delete(self, tenant_id: UUID, key_id: UUID) -> None:
        if self.wrapped(tenant_id, key_id) is not None:
            del self.rows[key_id]

    def delete_tenant(self, tenant_id: UUID) -> int:
        doomed = [k for k, (t, _) in self.rows.items() if t == tenant_id]
        for key_id in doomed:
            del self.rows[key_id]
        return len(doomed)

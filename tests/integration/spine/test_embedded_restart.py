"""The embedded profile: stop and start again on the same data directory keeps the data, and a
second process on the same data reuses the running server instead of starting another."""

from __future__ import annotations

import pytest

from api.bootstrap import build
from api.settings import Settings
from commands.tenants import CreateTenant
from domain.tenant.aggregate import Tenant
from infra.postgres.embedded import EmbeddedPostgres
from tests.integration.spine.support import PLATFORM
from tests.peers.scratch import scratch_dir

pytestmark = pytest.mark.postgres


def test_restart_keeps_data_and_cli_reuses_the_running_server() -> None:
    with scratch_dir("acgs-restart-") as data_dir:
        settings = Settings.from_env({"ACGS_DATA_DIR": str(data_dir)})
        first = build(settings)
        assert first.embedded is not None
        tenant = first.tenants.create(PLATFORM, CreateTenant("Kept Corp", "kept-corp", "a@k.io"))
        second = EmbeddedPostgres(data_dir)
        assert second.start() == first.admin_url
        assert not second.started_here
        first.close()
        assert not (data_dir / "pg" / "postmaster.pid").exists()

        again = build(settings)
        try:
            assert again.app.load(tenant.id, tenant.id, Tenant).tenant_slug == "kept-corp"
        finally:
            again.close()

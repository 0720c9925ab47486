"""The BigQuery adapter against a strict local double of its REST API (tests/peers/bigquery.py),
reached through `api_endpoint`, with a real service-account key: the client signs its JWT-bearer
grant and the double verifies it. Every event arrives once (insert ids are the event ids); a
load interrupted before its watermark is sent again and adds nothing twice; a new nullable
column is added to the table's schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from api.bootstrap import System
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, without
from infra.warehouses import open_warehouse
from infra.warehouses.bigquery import BigQueryWarehouse
from tests.integration.warehouse.test_loads import _loader, _log, _tenant
from tests.peers.bigquery import BigQueryDouble

pytestmark = [pytest.mark.postgres]


def _config(double: BigQueryDouble) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    double.client_email = "loader@acme-analytics.iam.gserviceaccount.com"
    double.public_key = RSAKey.import_key(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    credentials = {
        "type": "service_account",
        "project_id": "acme-analytics",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": double.client_email,
        "client_id": "1",
        "token_uri": double.token_uri,
    }
    return {
        "provider": "bigquery",
        "project": "acme-analytics",
        "dataset": "acgs",
        "credentials_json": json.dumps(credentials),
        "api_endpoint": double.url,
    }


class CrashBeforeWatermark(BigQueryWarehouse):
    def __init__(self, config: Mapping[str, Any], after: int) -> None:
        super().__init__(config)
        self.after = after

    def _insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> None:
        if table == "_acgs_watermark" and rows[0]["position"] > self.after:
            self.after = 1 << 62
            raise RuntimeError("crash before the watermark")
        super()._insert(table, rows, ids)


def _ids(double: BigQueryDouble, table: str) -> list[str]:
    rows = sorted(double.table_rows("acgs", table), key=lambda r: int(r["position"]))
    return [r["event_id"] for r in rows]


def test_bigquery_insert_api_loads_every_event_once_across_an_interrupted_load(
    bigquery_double: BigQueryDouble,
    system: System,
    admin_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    _tenant(system, unique)
    config = _config(bigquery_double)
    head = len(_log(admin_conn, 1 << 62))
    old = (without(GOVERNANCE_EVENTS, "constitutional_hash"), AUDIT_LOG)
    crashing = CrashBeforeWatermark(config, after=head // 2)
    loader = _loader(system, crashing, chunk=max(1, head // 4), tables=old)
    with pytest.raises(RuntimeError, match="crash before the watermark"):
        loader.sync()
    partial = crashing.watermark()
    assert 0 < partial <= head // 2
    assert len(_ids(bigquery_double, "governance_events")) > len(_log(admin_conn, partial))
    loader.close()
    # this release: one column more
    loader = _loader(system, open_warehouse(config, Path("unused.duckdb")))
    done = loader.sync()
    for table in ("governance_events", "audit_log"):
        assert _ids(bigquery_double, table) == _log(admin_conn, done.watermark), table
    _tenant(system, unique, 1)
    again = loader.sync()  # only the new events, now with the new column
    loader.close()
    added = len(_log(admin_conn, again.watermark)) - len(_log(admin_conn, done.watermark))
    assert again.rows_loaded == added > 0
    assert _ids(bigquery_double, "governance_events") == _log(admin_conn, again.watermark)
    fields = bigquery_double.fields(("acme-analytics", "acgs", "governance_events"))
    assert fields[-1] == {"name": "constitutional_hash", "type": "STRING", "mode": "NULLABLE"}
    newest = max(
        bigquery_double.table_rows("acgs", "governance_events"), key=lambda r: int(r["position"])
    )
    assert json.loads(newest["payload"])["meta"]["tenant_id"] == newest["tenant_id"]
    assert newest["constitutional_hash"]

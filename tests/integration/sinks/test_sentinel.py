"""Microsoft Sentinel (Azure Monitor Logs Ingestion API) against the strict Entra and ingestion
double: the sink contract, the token cached until it expires, a token revoked early replaced
once, and rows in the DCR stream's columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.sinks import DeliveryFailed, Sink
from infra.sinks.sentinel import SentinelLogs
from tests.integration.sinks.contract import RemoteSinkContract, records
from tests.peers.sentinel import (
    CLIENT_ID,
    CLIENT_SECRET,
    DCR,
    DIRECTORY,
    STREAM,
    SentinelDouble,
    start_sentinel,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class TestSentinel(RemoteSinkContract):
    @pytest.fixture(autouse=True)
    def receiver(self) -> Iterator[SentinelDouble]:
        double, server = start_sentinel()
        self.double = double
        yield double
        server.shutdown()
        server.server_close()

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "kind": "sentinel",
            "url": self.double.url,
            "authority_url": self.double.authority,
            "tenant_directory_id": DIRECTORY,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "dcr_immutable_id": DCR,
            "stream_name": STREAM,
            "timeout_seconds": 2,
        } | overrides

    def open(self, **overrides: Any) -> Sink:
        return SentinelLogs(self.config(**overrides))

    def received(self) -> list[str]:
        return list(self.double.order)

    def received_bodies(self) -> list[dict[str, Any]]:
        rows = [self.double.rows[i] for i in self.double.order]
        return [
            {
                "event_id": r["EventId"],
                "tenant_id": r["TenantId"],
                "tenant_slug": r["TenantSlug"],
                "constitutional_hash": r["ConstitutionalHash"],
                "actor_roles": r["ActorRoles"],
            }
            for r in rows
        ]

    def refuse_next(self, status: int, retry_after: float | None = None) -> None:
        self.double.fail_next(1, status, retry_after)

    def wrong_credentials(self) -> dict[str, Any]:
        return {"client_secret": "not-the-secret-1f1f"}

    def test_the_token_is_cached_until_a_minute_before_it_expires(self) -> None:
        clock = Clock()
        sink = SentinelLogs(self.config(), clock=clock)
        try:
            sink.deliver(records(1))
            clock.now += 3600 - 61
            sink.deliver(records(1, start=2))
            assert self.double.tokens_issued == 1
            clock.now += 1
            sink.deliver(records(1, start=3))
            assert self.double.tokens_issued == 2
        finally:
            sink.close()
        assert len(self.received()) == 3

    def test_a_token_revoked_early_is_replaced_once(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1))
            self.double.expire_tokens()
            sink.deliver(records(1, start=2))
        finally:
            sink.close()
        assert self.double.tokens_issued == 2
        assert len(self.received()) == 2

    def test_rows_have_the_streams_columns(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1, result="denied"))
        finally:
            sink.close()
        row = next(iter(self.double.rows.values()))
        assert row["TimeGenerated"].startswith("2026-12-01T12:00:01")
        assert row["Severity"] == "medium"
        assert row["Result"] == "denied"
        assert row["Details"]["n"] == 1

    def test_an_unknown_stream_is_a_batch_failure(self) -> None:
        sink = self.open(stream_name="Custom-Other_CL")
        try:
            with pytest.raises(DeliveryFailed, match="404"):
                sink.deliver(records(1))
        finally:
            sink.close()

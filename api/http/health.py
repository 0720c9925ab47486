"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

READY_LAG_SECONDS = 5.0


class HealthController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get("/healthz", summary="Liveness: the process answers", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        summary="Readiness: database reachable, projections within 5 s of the log, the audit log "
        "within ACGS_AUDIT_LAG_EVENTS events (else 'degraded'), no background worker being "
        "restarted, and the shared quota store (Redis, when set) reachable: unreachable is "
        "'degraded' when quotas fail open, not ready when they fail closed. `quotas` says which "
        "store counts the tenants' requests and what happens when it is unreachable",
        responses={503: ResponseSpec(dict[str, Any], description="Not ready, with the checks")},
    )
    async def readyz(self, state: State) -> Response[dict[str, Any]]:
        system = state.system
        checks: dict[str, Any] = {}
        failing = [
            {"name": w.name, "restarts": w.restarts, "last_error": w.last_error}
            for w in system.worker_status()
            if w.state == "restarting"
        ]
        checks["workers"] = "ok" if not failing else {"restarting": failing}
        ready = not failing
        try:
            async with system.database.tenant_session(None) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = "ok"
            status = await _status(system)
            lagging = [p for p in status if p["seconds_behind"] > READY_LAG_SECONDS]
            checks["projections"] = "ok" if not lagging else {"lagging": lagging}
            checks["audit"] = _audit_check(status, system.settings.audit_lag_events)
            ready = ready and not lagging and checks["audit"] == "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            checks["database"] = f"unavailable: {type(exc).__name__}"
            ready = False
        quotas, ready = await _quota_check(state.api, checks, ready)
        code = HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE
        word = "ready" if ready and _all_ok(checks) else ("degraded" if ready else "not_ready")
        if not ready and _only_audit(checks):
            word = "degraded"
        return Response({"status": word, "checks": checks, "quotas": quotas}, status_code=code)


async def _quota_check(
    api: Any, checks: dict[str, Any], ready: bool
) -> tuple[dict[str, Any], bool]:
    """The quota store in `checks` (only when shared); what it is; readiness after it."""
    shared = api.shared_quotas
    if shared is None:
        return {"store": "memory", "shared": False}, ready
    info = {"store": "redis", "shared": True, "on_failure": shared.on_failure}
    if await shared.ping():
        checks["quotas"] = "ok"
        return info, ready
    if shared.on_failure == "open":
        checks["quotas"] = "unreachable: admitting requests, quotas not enforced"
        return info, ready
    checks["quotas"] = "unreachable: refusing requests (503)"
    return info, False


def _all_ok(checks: dict[str, Any]) -> bool:
    return all(v == "ok" for v in checks.values())


def _audit_check(status: list[dict[str, Any]], threshold: int) -> Any:
    """'ok', or how far the audit log is behind the event store when past `threshold` events."""
    audit = next((p for p in status if p["name"] == "audit_log"), None)
    if audit is None or audit["events_behind"] <= threshold:
        return "ok"
    return {"events_behind": audit["events_behind"], "threshold": threshold}


def _only_audit(checks: dict[str, Any]) -> bool:
    """Only the audit log's completeness fails: the service answers, its audit trail lags."""
    return checks.get("audit", "ok") != "ok" and all(
        v == "ok" for k, v in checks.items() if k != "audit"
    )


async def _status(system: Any) -> list[dict[str, Any]]:
    import anyio.to_thread  # noqa: PLC0415

    def own() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = system.projection_status(own_only=True)
        return result

    return await anyio.to_thread.run_sync(own)

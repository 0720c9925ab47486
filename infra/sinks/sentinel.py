"""Microsoft Sentinel through the Azure Monitor Logs Ingestion API: a batch is `POST
<dce url>/dataCollectionRules/<dcr immutable id>/streams/<stream name>?api-version=2023-01-01`
with a gzip-compressed JSON array of rows (at most 1 MB per call: a larger batch goes in several
calls), authorized by an Entra ID token for `https://monitor.azure.com//.default` obtained with
the client-credentials grant (`<authority>/<directory id>/oauth2/v2.0/token`) and cached until a
minute before it expires. A 401 drops the token and tries once more with a fresh one; a second
401 (or a refused client secret) is refused credentials. 204 means accepted.

Each row has the columns a DCR stream declares: `TimeGenerated`, `EventId`, `TenantId`,
`TenantSlug`, `EventType`, `Category`, `Action`, `Result`, `ActorId`, `ActorRoles`,
`Severity` (informational to critical), `Alert`, `ConstitutionalHash`, `Position`, `Details`.

`azure-monitor-ingestion` needs `azure-identity`, whose authority must be an https Entra
endpoint; both wrap this one call, and the runner owns retries, so plain httpx it is.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from domain.sinks import DELIVERED, NAMED_SEVERITY, Delivery, DeliveryFailed, SinkRecord
from infra.sinks import http

API_VERSION = "2023-01-01"
SCOPE = "https://monitor.azure.com//.default"
AUTHORITY = "https://login.microsoftonline.com"
MAX_CALL_BYTES = 1024 * 1024
EXPIRY_MARGIN_SECONDS = 60
_UNAUTHORIZED = 401


class SentinelLogs:
    def __init__(self, config: dict[str, Any], *, clock: Callable[[], float] = time.time) -> None:
        dce = str(config["url"]).rstrip("/")
        self._url = (
            f"{dce}/dataCollectionRules/{config['dcr_immutable_id']}"
            f"/streams/{config['stream_name']}"
        )
        authority = str(config.get("authority_url") or AUTHORITY).rstrip("/")
        self._token_url = f"{authority}/{config['tenant_directory_id']}/oauth2/v2.0/token"
        self._form = {
            "client_id": str(config["client_id"]),
            "client_secret": str(config["client_secret"]),
            "grant_type": "client_credentials",
            "scope": SCOPE,
        }
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (access token, expires at)
        self._lock = threading.Lock()
        self._http = http.client(config)

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def row(record: SinkRecord) -> dict[str, Any]:
        body = record.body
        return {
            "TimeGenerated": record.timestamp,
            "EventId": record.event_id,
            "TenantId": record.tenant_id,
            "TenantSlug": body.get("tenant_slug"),
            "EventType": record.event_type,
            "Category": body.get("event_category"),
            "Action": body.get("action"),
            "Result": body.get("result"),
            "ActorId": body.get("actor_id"),
            "ActorRoles": body.get("actor_roles", []),
            "Severity": NAMED_SEVERITY[record.severity],
            "Alert": record.alert,
            "ConstitutionalHash": body.get("constitutional_hash"),
            "Position": record.position,
            "Details": body.get("details", {}),
        }

    def calls(self, records: Sequence[SinkRecord]) -> list[bytes]:
        """The JSON arrays of rows, each at most 1 MB."""
        out: list[bytes] = []
        current: list[str] = []
        size = 2
        for record in records:
            text = json.dumps(self.row(record), separators=(",", ":"))
            if current and size + len(text) + 1 > MAX_CALL_BYTES:
                out.append(("[" + ",".join(current) + "]").encode())
                current, size = [], 2
            current.append(text)
            size += len(text) + 1
        if current:
            out.append(("[" + ",".join(current) + "]").encode())
        return out

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._token[1]:
                return self._token[0]
            response = http.post(self._http, self._token_url, data=self._form)
            if response.status_code in (400, 401):  # AADSTS: unknown client or wrong secret
                msg = f"Entra ID refused the client credentials ({response.status_code})"
                raise DeliveryFailed(msg, credentials_refused=True)
            http.raise_for_batch(response, "Entra ID")
            try:
                answer = response.json()
                token, lifetime = str(answer["access_token"]), float(answer["expires_in"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DeliveryFailed("Entra ID answered without an access token") from exc
            self._token = (token, self._clock() + lifetime - EXPIRY_MARGIN_SECONDS)
            return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        for rows in self.calls(records):
            payload = gzip.compress(rows, 6)
            for attempt in (1, 2):
                token = self.token()
                response = http.post(
                    self._http,
                    self._url,
                    params={"api-version": API_VERSION},
                    content=payload,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Content-Encoding": "gzip",
                    },
                )
                if response.status_code == _UNAUTHORIZED and attempt == 1:
                    self._forget(token)  # expired or revoked early: once more, freshly signed
                    continue
                http.raise_for_batch(response, "Azure Monitor")
                break
        return DELIVERED

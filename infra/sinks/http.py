"""What the HTTP sinks share: one httpx client per sink (TLS verified against the configured CA
when one is given), and the reading of a receiver's answer as the sink port wants it (429 and
5xx are a failure of the whole batch, with the receiver's Retry-After; 401/403 are refused
credentials). Plain httpx rather than a vendor library: the wire contracts are small, and one
HTTP client library serves every sink (see docs/sinks.md for each vendor's reasons)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from domain.sinks import DeliveryFailed


def client(config: dict[str, Any]) -> httpx.Client:
    timeout = float(config.get("timeout_seconds", 5))
    verify: ssl.SSLContext | bool = True
    if config.get("ca_cert_pem"):
        verify = ssl.create_default_context(cadata=str(config["ca_cert_pem"]))
    return httpx.Client(timeout=timeout, verify=verify, follow_redirects=False)


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def post(http: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    """POST, turning a transport error into DeliveryFailed (never showing a header: they carry
    credentials)."""
    try:
        return http.post(url, **kw)
    except httpx.HTTPError as exc:
        msg = f"cannot reach {httpx.URL(url).host} ({type(exc).__name__})"
        raise DeliveryFailed(msg) from exc


def raise_for_batch(response: httpx.Response, receiver: str) -> None:
    """DeliveryFailed for an answer refusing the whole batch; nothing for a 2xx. The message
    names the status only: a receiver's body is never repeated (it may echo what was sent)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (401, 403):
        msg = f"{receiver} refused the credentials ({status})"
    elif status == 429:
        msg = f"{receiver} is throttling ({status})"
    else:
        msg = f"{receiver} answered {status}"
    raise DeliveryFailed(
        msg, retry_after=retry_after(response), credentials_refused=status in (401, 403)
    )

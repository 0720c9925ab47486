"""POSTs signed webhook deliveries, and the webhook sink (`domain.sinks.Sink`) a sink runner
feeds from the log.

Every POST resolves the target again and checks every address (`TargetGuard`), then connects to
the checked address itself (the `Host` header and, for https, the TLS server name stay the
URL's host, so certificates are verified against the name). Redirects are not followed: a 3xx
is a failed delivery, so a receiver cannot bounce a delivery to an address the guard refuses.
A receiver's body is never repeated in an error (it may echo what was sent)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

import httpx

from domain.sinks import Delivery, SinkRecord
from domain.webhooks.aggregate import public_event
from domain.webhooks.delivery import Attempt, payload
from domain.webhooks.signature import SIGNATURE_HEADER, signature
from domain.webhooks.targets import Target, TargetRefused, parse_target
from infra.webhooks.resolver import TargetGuard

log = logging.getLogger(__name__)
USER_AGENT = "ACGS-Webhooks/1"
MAX_KEPT = 1000  # parsed URLs kept per sender


class WebhookSender:
    def __init__(
        self,
        guard: TargetGuard,
        constitutional_hash: str,
        *,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._guard = guard
        self._hash = constitutional_hash
        self._clock = clock
        self._http = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._urls: dict[str, tuple[Target, httpx.URL]] = {}
        self._addressed: dict[tuple[str, str], httpx.URL] = {}

    def close(self) -> None:
        self._http.close()

    def send(self, url: str, secret: str, body: bytes, event_id: str) -> Attempt:
        """One signed POST of `body` to `url`'s checked address."""
        started = time.perf_counter()
        try:
            target, parsed = self._parsed(url)
            address = self._guard.address(target)
        except TargetRefused as exc:
            return Attempt.failed(f"target refused: {exc}")
        headers = {
            "Host": parsed.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(secret, int(self._clock()), body),
            "X-ACGS-Event-Id": event_id,
            "X-Constitutional-Hash": self._hash,
        }
        extensions: dict[str, Any] = {}
        if target.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.host
        try:
            response = self._http.post(
                self._connect_url(parsed, str(address)),
                content=body,
                headers=headers,
                extensions=extensions,
            )
        except httpx.HTTPError as exc:
            error = f"cannot reach {target.host} ({type(exc).__name__})"
            return Attempt.failed(error, None, _ms(started))
        code = response.status_code
        if 200 <= code < 300:
            return Attempt.ok(code, _ms(started))
        if 300 <= code < 400:
            error = f"answered {code}; redirects are not followed"
            return Attempt.failed(error, code, _ms(started))
        return Attempt.failed(f"answered {code}", code, _ms(started))

    def _parsed(self, url: str) -> tuple[Target, httpx.URL]:
        """The URL checked for form and parsed (kept: a sink posts to one URL)."""
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) > MAX_KEPT:
                self._urls.clear()
            found = self._urls[url] = (parse_target(url), httpx.URL(url))
        return found

    def _connect_url(self, parsed: httpx.URL, address: str) -> httpx.URL:
        """The URL with its host replaced by the checked address (kept per address)."""
        key = (str(parsed), address)
        found = self._addressed.get(key)
        if found is None:
            if len(self._addressed) > MAX_KEPT:
                self._addressed.clear()
            found = self._addressed[key] = parsed.copy_with(host=address)
        return found


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class DeliveryLog(Protocol):
    def record(
        self, owner: UUID, webhook_id: UUID, attempts: Sequence[tuple[SinkRecord, Attempt]]
    ) -> None: ...

    def close(self) -> None: ...


OnDisable = Callable[[int, str], None]  # (consecutive failures, the last error)


class WebhookSink:
    """Delivers each record of a batch as its own signed POST, in order, and logs every attempt.
    Records a POST failed are returned as refused one by one (the runner retries them with
    backoff, then dead-letters them). After `disable_after` failed attempts in a row it calls
    `on_disable` once and POSTs nothing more (its worker is stopped once the webhook's disabled
    state is seen)."""

    def __init__(
        self,
        *,
        webhook_id: UUID,
        owner: UUID,
        url: str,
        events: list[str],
        secret: str,
        sender: WebhookSender,
        delivery_log: DeliveryLog,
        constitutional_hash: str,
        disable_after: int,
        on_disable: OnDisable,
    ) -> None:
        self._id = webhook_id
        self._owner = owner
        self._url = url
        self._events = events
        self._secret = secret
        self._sender = sender
        self._log = delivery_log
        self._hash = constitutional_hash
        self._disable_after = disable_after
        self._on_disable = on_disable
        self.consecutive_failures = 0
        self.disabled = False

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        failed: dict[str, str] = {}
        attempts: list[tuple[SinkRecord, Attempt]] = []
        try:
            for record in records:
                attempt = self._send(record)
                attempts.append((record, attempt))
                if attempt.delivered:
                    self.consecutive_failures = 0
                    continue
                failed[record.event_id] = attempt.error or "failed"
                self._failed(attempt.error or "failed")
        finally:
            self._log.record(self._owner, self._id, attempts)
        return Delivery(failed)

    def _send(self, record: SinkRecord) -> Attempt:
        if self.disabled:
            return Attempt.failed("webhook disabled after repeated failures")
        event_type = str(record.body.get("source_event_type", record.event_type))
        body = payload(self._id, public_event(event_type, self._events), record, self._hash)
        return self._sender.send(self._url, self._secret, body, record.event_id)

    def _failed(self, error: str) -> None:
        if self.disabled:
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self._disable_after:
            self.disabled = True
            log.warning(
                "webhook %s: disabled after %d consecutive failed deliveries",
                self._id,
                self.consecutive_failures,
            )
            self._on_disable(self.consecutive_failures, error)

    def close(self) -> None:
        self._sender.close()
        self._log.close()

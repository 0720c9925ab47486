"""How a route calls a command: the command context of a request (its principal, the
constitutional hash it supplied, its trace), the command run in a worker thread in a span of the
request's trace, and the request headers that go with commands (the hash, an idempotency key)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from litestar import Request
from litestar.params import Parameter
from msgspec import UNSET

from api.http.dto import HASH_PATTERN
from api.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.http.idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from commands.context import CommandContext, Principal
from domain.constitution import CONSTITUTIONAL_HASH_PATTERN
from domain.errors import ValidationFailed
from infra import tracing

T = TypeVar("T")
HASH_HEADER = "X-Constitutional-Hash"

HashHeader = Annotated[
    str | None,
    Parameter(
        header=HASH_HEADER,
        required=False,
        description="The deployment's constitutional hash (or the body field constitutional_hash)",
        schema_extra={"pattern": HASH_PATTERN},
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header=IDEMPOTENCY_HEADER,
        required=False,
        description="Replays the first response for 24 h; another body with the key is 409",
        schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]


def command_context(
    request: Request[Any, Any, Any], principal: Principal, in_body: Any, in_header: str | None
) -> CommandContext:
    supplied = supplied_hash(in_body, in_header)
    trace_parent = tracing.current_traceparent() or request.headers.get("traceparent")
    return CommandContext(principal, supplied, trace_parent)


def supplied_hash(in_body: Any, in_header: str | None) -> str | None:
    """The constitutional hash the caller gave (the body's wins over the header's), checked for
    its form; None when neither gives one."""
    supplied: str | None = in_header if in_body is UNSET else in_body
    if supplied and not CONSTITUTIONAL_HASH_PATTERN.fullmatch(supplied):
        where = HASH_HEADER if in_body is UNSET else "constitutional_hash"
        raise ValidationFailed.field(where, "must be 16 lowercase hexadecimal characters")
    return supplied


async def in_thread(call: partial[T]) -> T:
    """Run a command in a worker thread, in a span of the request's trace named after it."""
    with tracing.tracer().start_as_current_span(f"command {call.func.__name__}"):
        return await anyio.to_thread.run_sync(call)

"""Where one SAML ACS spends its time: `python -m tests.load.bench_saml_acs --steps`.

Wraps the steps of `SamlSignIn.consume` (the ports it calls, python3-saml's validation, the
session, the token, the audit entry) with timers, in this process only, and prints each step's
p50/p99 beside the whole of `consume`; what is left of the HTTP figure is the HTTP layer."""

from __future__ import annotations

import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api.identity import SystemSignInPorts
from api.saml import SystemSamlPorts
from commands.saml_sign_in import SamlSignIn
from commands.sign_in import SignIn
from infra.postgres.sign_in_requests import SignInRequestStore
from infra.saml.service_provider import ServiceProvider
from tests.load.stats import summary_ms

STEPS: list[tuple[type, str]] = [
    (SamlSignIn, "consume"),
    (SystemSamlPorts, "screen"),
    (SignInRequestStore, "consume"),
    (SystemSamlPorts, "provider"),
    (ServiceProvider, "validate"),
    (SignIn, "federated"),
    (SystemSignInPorts, "tenant_by_id"),
    (SystemSignInPorts, "mappings"),
    (SystemSignInPorts, "open_session"),
    (SignIn, "_issue"),
    (SignIn, "_save"),
]


def _timed(original: Any, samples: list[float]) -> Any:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                samples.append(time.perf_counter() - started)

        return timed_async

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - started)

    return timed


@contextmanager
def timing_steps() -> Iterator[dict[str, list[float]]]:
    """Each step's durations (seconds) while inside; the classes are restored on the way out."""
    samples: dict[str, list[float]] = defaultdict(list)
    originals = [(cls, name, cls.__dict__[name]) for cls, name in STEPS]
    try:
        for cls, name, original in originals:
            setattr(cls, name, _timed(original, samples[f"{cls.__name__}.{name}"]))
        yield samples
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def print_steps(samples: dict[str, list[float]], skip: int) -> None:
    """The steps by total time, each without its first `skip` samples (the warm-up)."""
    kept = {step: durations[skip:] for step, durations in samples.items() if durations[skip:]}
    for step, durations in sorted(kept.items(), key=lambda kv: -sum(kv[1])):
        print(f"   {step:34s} {summary_ms(durations)}")

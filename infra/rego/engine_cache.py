"""Compiled regorus engines for serving decisions: one per (policy, version) and per thread.

A regorus engine is unsendable (pyo3): it must be used and dropped on the thread that built it;
so every thread keeps its own engines, at most `per_thread` of them (least recently used goes
first). They live in one thread-local store for the whole process, not in a cache object: a
thread-local that is garbage collected drops every thread's values on the collecting thread,
which pyo3 refuses. The store lives as long as the process, and a thread's engines are dropped
by that thread (on eviction, or as it exits); a discarded cache's engines leave by the bound.
A version never changes, so a cached engine is never stale; `evict(policy_id)` drops a policy's
engines in every thread anyway (each thread on its next call), so engines of versions no longer
active do not stay in memory. The decision of a call is the module's `allow`, `deny` and
`obligations`, which every registered policy defines.

Rego the converter generated (`generated=True`) is executed on regorus's compiled virtual
machine (`compiled_program`), several times faster; what the machine does not answer with a
decision is evaluated on the interpreter's engine, built for the version then. A version whose
machine failed once is evaluated on the interpreter from then on (in that thread).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import msgspec
import regorus

from domain.policy.gate import RegoCompileError, RegoEvaluationError
from domain.policy.json_values import canonical_text
from domain.policy.reference_evaluator import Decision
from infra.rego.compiled_program import DECISION_MODULE, DECISION_RULE, compiled_machine, executed
from infra.rego.engine_messages import compile_error_position, error_summary
from infra.rego.regorus_engine import MAX_MODULE_BYTES, MAX_MODULE_LINES

DEFAULT_ENGINES_PER_THREAD = 256
MAX_REMEMBERED_RESULTS = 4096  # distinct raw results whose decision is kept (see `_decisions`)
CacheKey = tuple[Hashable, int]  # (policy id, version)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _Compiled:
    """A version's compiled forms in one thread: the virtual machine (for generated Rego; None
    when it does not compile or failed) and the interpreter's engine (built when needed)."""

    __slots__ = ("engine", "machine")

    def __init__(self, machine: Any | None) -> None:
        self.machine = machine
        self.engine: Any | None = None


class _ThreadEngines(threading.local):
    def __init__(self) -> None:
        # (cache token, policy id, version) -> compiled forms; evictions seen per cache token
        self.engines: OrderedDict[tuple[int, Hashable, int], _Compiled] = OrderedDict()
        self.evictions_seen: dict[int, int] = {}


_ENGINES = _ThreadEngines()  # the process's one store (see the module)
_tokens = itertools.count(1)


class EngineCache:
    """Evaluates registered policies on engines compiled once per thread (see the module)."""

    def __init__(self, per_thread: int = DEFAULT_ENGINES_PER_THREAD) -> None:
        self.per_thread = per_thread
        self._token = next(_tokens)
        self._evictions: list[Hashable] = []
        self._lock = threading.Lock()
        self.compiled = 0  # machines and engines built, over all threads (a cache miss each)
        self.machines = 0  # of which compiled machines
        self.machine_failures = 0  # versions whose machine left a call to the interpreter
        # A policy answers with few distinct results: the decision of a raw result (its text,
        # with the package it names) is built once and shared (a Decision is immutable).
        self._decisions: dict[tuple[str, str], Decision] = {}

    def evaluate(
        self,
        key: CacheKey,
        module: str,
        package: str,
        request: dict[str, Any],
        *,
        generated: bool = False,
    ) -> Decision:
        """The decision of version `key` (its Rego `module`, `package`) on `request`;
        `generated`: the converter generated the Rego (see the module).

        Raises RegoCompileError or RegoEvaluationError."""
        return self.evaluate_json(
            key, module, package, _encode(request).decode(), generated=generated
        )

    def evaluate_json(
        self, key: CacheKey, module: str, package: str, request: str, *, generated: bool = False
    ) -> Decision:
        """As `evaluate`, the input given as JSON text (a caller that encodes the input anyway
        for its own use, the decision log's digest, encodes it once)."""
        compiled = self._compiled(key, module, package, generated)
        machine = compiled.machine
        if machine is not None:
            raw = executed(machine, request)
            if raw is not None:
                remembered = self._decisions.get((raw, package))
                if remembered is not None:
                    return remembered
                try:
                    return self._remember(raw, package, _decision(_decode(raw), package))
                except RegoEvaluationError:
                    pass
            compiled.machine = None  # the interpreter decides this version from now on
            with self._lock:
                self.machine_failures += 1
        engine = compiled.engine
        if engine is None:
            engine = compiled.engine = _engine(key, module, package)
            with self._lock:
                self.compiled += 1
        engine.set_input_json(request)
        try:
            raw = engine.eval_rule_as_json(DECISION_RULE)
        except Exception as error:  # noqa: BLE001 - regorus raises bare exceptions, text is all
            raise RegoEvaluationError(error_summary(str(error))) from None
        remembered = self._decisions.get((raw, package))
        if remembered is not None:
            return remembered
        return self._remember(raw, package, _decision(_decode(raw), package))

    def _remember(self, raw: str, package: str, decision: Decision) -> Decision:
        if len(self._decisions) >= MAX_REMEMBERED_RESULTS:
            self._decisions.clear()  # a policy of unbounded distinct results: start again
        self._decisions[raw, package] = decision
        return decision

    def evict(self, policy_id: Hashable) -> None:
        """Drop every engine of `policy_id`, in each thread on its next call."""
        with self._lock:
            self._evictions.append(policy_id)

    def cached_here(self) -> int:
        """Engines of this cache held by the calling thread."""
        return sum(1 for k in _ENGINES.engines if k[0] == self._token)

    def _compiled(self, key: CacheKey, module: str, package: str, generated: bool) -> _Compiled:
        local, token = _ENGINES, self._token
        seen = local.evictions_seen.get(token, 0)
        if seen != len(self._evictions):
            with self._lock:
                fresh = set(self._evictions[seen:])
                local.evictions_seen[token] = len(self._evictions)
            for stale in [k for k in local.engines if k[0] == token and k[1] in fresh]:
                del local.engines[stale]
        slot = (token, key[0], key[1])
        compiled = local.engines.get(slot)
        if compiled is not None:
            local.engines.move_to_end(slot)
            return compiled
        machine = compiled_machine(_filename(key), module, package) if generated else None
        compiled = _Compiled(machine)
        if machine is not None:
            with self._lock:
                self.compiled += 1
                self.machines += 1
        local.engines[slot] = compiled
        while len(local.engines) > self.per_thread:
            local.engines.popitem(last=False)
        return compiled


def _filename(key: CacheKey) -> str:
    return f"{key[0]}-v{key[1]}.rego"


def _engine(key: CacheKey, module: str, package: str) -> Any:
    engine = regorus.Engine()
    engine.set_policy_length_config(
        max_col=MAX_MODULE_BYTES, max_file_bytes=MAX_MODULE_BYTES, max_lines=MAX_MODULE_LINES
    )
    failure: RegoCompileError | None = None
    try:
        engine.add_policy(_filename(key), module)
        engine.add_policy("acgs_decision.rego", DECISION_MODULE.format(package=package))
    except Exception as error:  # noqa: BLE001 - as above
        line, column = compile_error_position(str(error))
        failure = RegoCompileError(error_summary(str(error)), line, column)
    if failure is not None:
        del engine  # dropped on this thread, before the error travels
        raise failure
    return engine


def _decision(row: Any, package: str) -> Decision:
    if not isinstance(row, list) or len(row) != 3:
        raise RegoEvaluationError(f"data.{package} leaves allow, deny or obligations undefined")
    allow, deny, obligations = row
    if (
        not isinstance(allow, bool)
        or not isinstance(deny, list)
        or not isinstance(obligations, list)
    ):
        raise RegoEvaluationError(
            f"data.{package}: allow must be a boolean, deny and obligations sets"
        )
    return Decision(
        allow=allow,
        deny=frozenset(str(reason) for reason in deny),
        obligations=frozenset(canonical_text(item) for item in obligations),
    )

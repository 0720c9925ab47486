"""Compiled engines per (policy, version) and per thread, evicted in every thread."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from domain.policy.gate import RegoCompileError, RegoEvaluationError
from infra.rego.engine_cache import EngineCache

MODULE = """package acgs.t.{name}

default allow := false

allow if input.role == "{role}"

deny contains "no" if not allow

obligations := set()
"""


def _module(name: str, role: str) -> str:
    return MODULE.format(name=name, role=role)


def test_an_engine_is_compiled_once_per_version_and_thread() -> None:
    cache = EngineCache()
    for _ in range(3):
        assert cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {"role": "a"}).allow
    assert cache.compiled == 1
    decision = cache.evaluate(("p", 2), _module("p", "b"), "acgs.t.p", {"role": "a"})
    assert (decision.allow, decision.deny) == (False, frozenset({"no"}))
    assert cache.compiled == 2
    seen: list[int] = []

    def other_thread() -> None:
        cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {"role": "a"})
        seen.append(cache.cached_here())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert (cache.compiled, seen, cache.cached_here()) == (3, [1], 2)


def test_eviction_drops_a_policys_engines_in_every_thread_on_its_next_call() -> None:
    cache = EngineCache()
    cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {})
    cache.evaluate(("q", 1), _module("q", "a"), "acgs.t.q", {})
    cache.evict("p")
    cache.evaluate(("q", 1), _module("q", "a"), "acgs.t.q", {})
    assert cache.cached_here() == 1
    cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {})
    assert cache.compiled == 3


def test_the_least_recently_used_engine_goes_first() -> None:
    cache = EngineCache(per_thread=2)
    for version in (1, 2, 1, 3):
        cache.evaluate(("p", version), _module("p", "a"), "acgs.t.p", {})
    assert cache.cached_here() == 2
    cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {})
    assert cache.compiled == 3  # version 1 was kept, version 2 went


def test_compile_and_evaluation_errors_are_typed() -> None:
    cache = EngineCache()
    with pytest.raises(RegoCompileError) as compiled:
        cache.evaluate(("bad", 1), "package x\n\nallow if {\n", "x", {})
    assert compiled.value.line > 0
    shape = "package s\n\nallow := input.v\n\ndeny := set()\n\nobligations := set()\n"
    with pytest.raises(RegoEvaluationError):
        cache.evaluate(("s", 1), shape, "s", {"v": "yes"})
    with pytest.raises(RegoEvaluationError):
        cache.evaluate(("s", 1), shape, "s", {})  # allow undefined


def test_a_remembered_decision_is_shared_and_a_full_memory_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("infra.rego.engine_cache.MAX_REMEMBERED_RESULTS", 1)
    cache = EngineCache()
    module = _module("p", "a")
    first = cache.evaluate(("p", 1), module, "acgs.t.p", {"role": "a", "n": 1})
    again = cache.evaluate(("p", 1), module, "acgs.t.p", {"role": "a", "n": 2})
    assert again is first  # the same raw result: the same (immutable) decision
    for _ in range(2):  # alternating results, one remembered at a time: each still right
        denied = cache.evaluate(("p", 1), module, "acgs.t.p", {"role": "b"})
        assert (denied.allow, denied.deny) == (False, frozenset({"no"}))
        allowed = cache.evaluate(("p", 1), module, "acgs.t.p", {"role": "a"})
        assert (allowed.allow, allowed.deny) == (True, frozenset())


def test_a_discarded_cache_never_drops_an_engine_on_another_thread() -> None:
    """pyo3 refuses to drop an engine on a thread other than its own ("unsendable"): a cache
    collected on one thread while another holds its engines must leave them to that thread."""
    failures: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda hook: failures.append(str(hook.exc_value))
    try:
        cache: EngineCache | None = EngineCache()
        used, done = threading.Event(), threading.Event()

        def worker() -> None:
            assert cache is not None
            cache.evaluate(("p", 1), _module("p", "a"), "acgs.t.p", {"role": "a"})
            used.set()
            done.wait(10)
            later = EngineCache()  # its own engines, and the discarded one's evicted by the bound
            later.per_thread = 1
            later.evaluate(("q", 1), _module("q", "a"), "acgs.t.q", {"role": "a"})

        thread = threading.Thread(target=worker)
        thread.start()
        assert used.wait(10)
        cache = None
        gc.collect()  # the cache goes on this thread, while the worker still holds its engine
        done.set()
        thread.join()
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert failures == []


def test_generated_rego_runs_on_the_compiled_machine_and_decides_as_the_interpreter() -> None:
    machine, interpreter = EngineCache(), EngineCache()
    module = _module("p", "a")
    for request in ({"role": "a"}, {"role": "b"}, {}, {"role": "a", "n": 1}):
        decided = machine.evaluate(("p", 1), module, "acgs.t.p", request, generated=True)
        assert decided == interpreter.evaluate(("p", 1), module, "acgs.t.p", request)
    assert (machine.compiled, machine.machine_failures) == (1, 0)  # no interpreter's engine


@pytest.mark.parametrize(
    ("module", "request_"),
    [
        # the machine reads a failing builtin as undefined, the interpreter raises
        (
            "package s\n\ndefault allow := false\n\nallow if 1 / input.n > 0\n\n"
            "deny := set()\n\nobligations := set()\n",
            {"n": 0},
        ),
        # conflicting values: the machine leaves allow undefined, the interpreter raises
        (
            "package s\n\nallow := true if input.a\n\nallow := false if input.b\n\n"
            "deny := set()\n\nobligations := set()\n",
            {"a": True, "b": True},
        ),
    ],
)
def test_submitted_rego_is_left_to_the_interpreter_whose_errors_stand(
    module: str, request_: dict[str, object]
) -> None:
    with pytest.raises(RegoEvaluationError):
        EngineCache().evaluate(("s", 1), module, "s", request_)


def test_what_the_machine_does_not_decide_goes_to_the_interpreter_for_good() -> None:
    cache = EngineCache()
    conflicting = (
        "package s\n\nallow := true if input.a\n\nallow := false if input.b\n\n"
        "deny := set()\n\nobligations := set()\n"
    )
    with pytest.raises(RegoEvaluationError):  # the interpreter's error, not an undefined allow
        cache.evaluate(("s", 1), conflicting, "s", {"a": True, "b": True}, generated=True)
    assert cache.machine_failures == 1
    assert cache.evaluate(("s", 1), conflicting, "s", {"a": True}, generated=True).allow
    assert (cache.compiled, cache.machine_failures) == (2, 1)  # machine, then engine
    with pytest.raises(RegoCompileError):  # no machine for a module it does not compile
        cache.evaluate(("bad", 1), "package x\n\nallow if {\n", "x", {}, generated=True)


def test_a_negated_unification_is_left_to_the_interpreter() -> None:
    """The machine fails `not _ = input.role` when input.role is absent (the generator writes
    it for a field that must be absent): such a module is decided by the interpreter."""
    module = (
        "package s\n\ndefault allow := false\n\nallow if not _ = input.role\n\n"
        "deny := set()\n\nobligations := set()\n"
    )
    cache = EngineCache()
    assert cache.evaluate(("s", 1), module, "s", {}, generated=True).allow
    assert not cache.evaluate(("s", 1), module, "s", {"role": "r"}, generated=True).allow
    assert (cache.compiled, cache.machine_failures) == (1, 0)  # an engine, no machine tried


def test_a_module_the_machine_compiler_panics_on_is_left_to_the_interpreter() -> None:
    """regorus's compiler panics (pyo3's PanicException, a BaseException) on a rule needing
    more than its 255 registers."""
    body = "\n".join(f"\tinput.a{i} == {i}" for i in range(150))
    module = (
        f"package s\n\ndefault allow := false\n\nallow if {{\n{body}\n}}\n\n"
        "deny := set()\n\nobligations := set()\n"
    )
    cache = EngineCache()
    every = {f"a{i}": i for i in range(150)}
    assert cache.evaluate(("s", 1), module, "s", every, generated=True).allow
    assert not cache.evaluate(("s", 1), module, "s", {**every, "a7": 0}, generated=True).allow
    assert (cache.compiled, cache.machines, cache.machine_failures) == (1, 0, 0)

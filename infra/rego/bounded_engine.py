"""The Rego engine in a child process of its own, with a time budget per call and a memory cap.

regorus (as packaged for Python) has no execution time or memory limit to set, and a call into it
cannot be interrupted from Python; so one module that loops or allocates without end would hold
its worker. Here each engine owns one child process, reused call after call: a call over its time
budget, or a child over its memory cap, ends that child (by its PID) and fails that module only,
with a RegoEvaluationError in the toolkit's words; the next call starts a fresh child. The
budget counts from the call, not from the child's start: a child says it is ready (interpreter
and engine loaded) before its first call is sent, so a busy machine's slow start never fails a
module that evaluates within its budget.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from domain.policy.gate import RegoCompileError, RegoEvaluationError
from domain.policy.gate_inputs import request_json
from domain.policy.limits import DEFAULT_LIMITS
from domain.policy.reference_evaluator import Decision
from infra.rego.regorus_engine import RegorusEngine

# The child is a fresh interpreter (not a fork: it must not inherit the parent's threads, locks
# or sockets), started like any command so that nothing of the parent's __main__ is re-run.
_CHILD = "from infra.rego.bounded_engine import serve; serve()"
_OUT_OF_MEMORY = 86
_ABORTED = -6  # SIGABRT: how a Rust allocation failure ends the process
_READY = ("ready", None)  # the child's first message
_START_SECONDS = 60.0  # how long a child may take to say it is ready


class BoundedRegoEngine:
    """A RegoEngine: RegorusEngine behind a process boundary, a time budget and a memory cap."""

    name = RegorusEngine.name

    def __init__(
        self,
        seconds: float = DEFAULT_LIMITS.evaluation_seconds,
        memory_bytes: int = DEFAULT_LIMITS.evaluation_memory_bytes,
    ) -> None:
        self.seconds = seconds
        self.memory_bytes = memory_bytes
        self._child: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def decisions(
        self, filename: str, module: str, package: str, requests: Sequence[dict[str, Any]]
    ) -> list[Decision]:
        connection = self._started()
        try:
            # Only what the engine reads crosses the boundary: each request's JSON text.
            texts = [request_json(request) for request in requests]
            connection.send((filename, module, package, texts))
            answered = connection.poll(self.seconds)
            outcome = connection.recv() if answered else None
        except (EOFError, OSError):
            answered, outcome = True, None
        if not answered:
            self.close()
            raise RegoEvaluationError(
                f"evaluation of {filename} stopped after {self.seconds:g} s, "
                "its time budget (limit evaluation_seconds)"
            )
        if outcome is None:
            raise RegoEvaluationError(f"evaluation of {filename} stopped: {self._ended()}")
        return _result(outcome)

    def close(self) -> None:
        """Stop the child (if any); the next call starts a new one."""
        if self._finalizer is not None:
            self._finalizer()
        self._child, self._connection, self._finalizer = None, None, None

    def __enter__(self) -> BoundedRegoEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ended(self) -> str:
        """Why the child went away, once it has."""
        child = self._child
        code = child.wait(timeout=5) if child is not None else None
        self.close()
        if code in (_OUT_OF_MEMORY, _ABORTED):
            mebibytes = self.memory_bytes // (1024 * 1024)
            return f"the engine ran out of its {mebibytes:,} MiB (limit evaluation_memory_bytes)"
        return f"the engine ended unexpectedly (exit status {code})"

    def _started(self) -> Connection:
        child = self._child
        if self._connection is not None and child is not None and child.poll() is None:
            return self._connection
        self.close()
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, sys.path)))
        environment["ACGS_REGO_MEMORY_BYTES"] = str(self.memory_bytes)
        started = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed program
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # regorus reports a failed allocation there, at length
            env=environment,
        )
        if started.stdin is None or started.stdout is None:
            raise RuntimeError("the Rego engine process has no pipes")
        connection = _Channel(started.stdout.fileno(), started.stdin.fileno())
        self._child, self._connection = started, connection
        self._finalizer = weakref.finalize(self, _stop, started, connection)
        try:
            ready = connection.poll(_START_SECONDS) and connection.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            try:  # a child that closed the channel has exited, or is about to
                code: int | None = started.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            self.close()
            why = (
                f"exit status {code}" if code is not None else f"not ready in {_START_SECONDS:g} s"
            )
            raise RegoEvaluationError(f"the Rego engine did not start ({why})")
        return connection


class _Channel(Connection):
    """One Connection over two pipe descriptors (multiprocessing's framing and pickling)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(os.dup(read_fd), readable=True, writable=False)
        self._writer = Connection(os.dup(write_fd), readable=False, writable=True)

    def send(self, obj: Any) -> None:
        self._writer.send(obj)

    def close(self) -> None:
        self._writer.close()
        super().close()


def _stop(child: subprocess.Popen[bytes], connection: Connection) -> None:
    connection.close()
    if child.poll() is None:
        child.kill()  # this engine's own child, by its PID
    child.wait(timeout=5)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


def _result(outcome: tuple[str, Any]) -> list[Decision]:
    kind, payload = outcome
    if kind == "ok":
        rows, indices = payload
        distinct = [Decision(allow, frozenset(deny), frozenset(obl)) for allow, deny, obl in rows]
        return [distinct[index] for index in indices]
    if kind == "compile":
        message, line, column = payload
        raise RegoCompileError(message, line, column)
    raise RegoEvaluationError(str(payload))


def _answer(decisions: list[Decision]) -> tuple[str, Any]:
    """The decisions as sent back: each distinct one once, and its index for every request
    (a policy answers its many requests with few distinct decisions)."""
    places: dict[Decision, int] = {}
    indices = [places.setdefault(decision, len(places)) for decision in decisions]
    rows = [(item.allow, tuple(item.deny), tuple(item.obligations)) for item in places]
    return ("ok", (rows, indices))


def serve() -> None:
    """The child: answer calls on stdin/stdout until the parent closes its end."""
    requests_in = Connection(os.dup(0), readable=True, writable=False)
    answers_out = Connection(os.dup(1), readable=False, writable=True)
    os.dup2(2, 1)  # nothing printed may corrupt the channel
    _cap_memory(int(os.environ["ACGS_REGO_MEMORY_BYTES"]))
    engine = RegorusEngine()
    answers_out.send(_READY)
    while True:
        try:
            filename, module, package, requests = requests_in.recv()
        except (EOFError, OSError):
            return
        try:
            answer = _answer(engine.decisions_of_texts(filename, module, package, requests))
        except RegoCompileError as failure:
            answer = ("compile", (failure.message, failure.line, failure.column))
        except RegoEvaluationError as failure:
            answer = ("evaluation", failure.message)
        except MemoryError:
            os._exit(_OUT_OF_MEMORY)
        answers_out.send(answer)


def _cap_memory(memory_bytes: int) -> None:
    """Address space: what the child has mapped now (interpreter, regorus) plus the budget."""
    mapped = int(Path("/proc/self/statm").read_text("ascii").split()[0]) * resource.getpagesize()
    cap = mapped + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

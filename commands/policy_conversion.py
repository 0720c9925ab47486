"""Batch use-cases of the policy migration toolkit: convert, check (gate only), gaps.

File reading and writing happen here, not in the domain. `--jobs` runs chunks of sources in a
process pool; each worker builds its own Rego engine once (the factory must be picklable).
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any, Protocol

from domain.errors import DomainError
from domain.policy.conversion import (
    ConversionSettings,
    ConversionStatus,
    PolicyResult,
    convert_parsed,
)
from domain.policy.conversion_report import report_json, report_markdown
from domain.policy.diagnostics import error
from domain.policy.gaps.gap_report import GapFinding, policy_gaps, rego_gaps
from domain.policy.gate import RegoEngine, first_disagreement
from domain.policy.gate_inputs import gate_inputs
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits, too_many_files
from domain.policy.rego_generator import package_segment
from domain.policy.rule_model import Location, Policy
from domain.policy.sources import (
    EXTENSIONS,
    Parsed,
    SourceFormat,
    format_of,
    oversized_source,
    parse_source,
)
from domain.policy.work_budget import Clock

EngineFactory = Callable[[], RegoEngine]
Progress = Callable[[int, int], None]
CHUNK_SIZE = 25


class SourceNotFound(DomainError):
    code = "SOURCE_NOT_FOUND"


class SourceUnreadable(DomainError):
    code = "SOURCE_UNREADABLE"


class BatchTooLarge(DomainError):
    """More source files than `PolicyLimits.batch_files` in one run; nothing is read."""

    code = "POLICY_TOO_LARGE"


class StrictChecker(Protocol):
    """Port: a second, stricter compiler over written modules (`opa check --strict`)."""

    def check(self, files: Sequence[Path]) -> dict[str, str]:
        """Error message by file path, for the files that fail."""
        ...


@dataclass(frozen=True, slots=True)
class SourceText:
    """A source's text, or (`size` set, `text` empty) a source refused unread for its size."""

    name: str
    text: str
    size: int | None = None

    def parse(
        self, source_format: SourceFormat, limits: PolicyLimits = DEFAULT_LIMITS
    ) -> list[Parsed]:
        if self.size is not None:
            return [oversized_source(self.name, self.size, limits, format_of(self.name))]
        return parse_source(self.name, self.text, source_format, limits)


@dataclass(frozen=True)
class ConversionOutcome:
    results: list[PolicyResult]
    report: dict[str, Any]
    written: list[Path]

    @property
    def has_failures(self) -> bool:
        """Any policy failed, unproven or partial (what `--strict` refuses)."""
        return any(result.status is not ConversionStatus.CONVERTED for result in self.results)


def collect_sources(
    paths: Sequence[str | Path],
    source_format: SourceFormat,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> list[Path]:
    """Files named, and the legacy-format files under directories named; sorted per directory.
    More files than `limits.batch_files` is BatchTooLarge, before any is read."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                item
                for item in path.rglob("*")
                if item.is_file()
                and (source_format is not SourceFormat.AUTO or item.suffix.lower() in EXTENSIONS)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SourceNotFound(f"no such file or directory: {raw}")
        if len(files) > limits.batch_files:
            raise BatchTooLarge(too_many_files(len(files), limits).reason)
    return files


def read_sources(files: Sequence[Path], limits: PolicyLimits = DEFAULT_LIMITS) -> list[SourceText]:
    """Each file's text; a file over `limits.source_bytes` is not read (its policy fails)."""
    sources: list[SourceText] = []
    for file in files:
        try:
            size = file.stat().st_size
            if size > limits.source_bytes:
                sources.append(SourceText(str(file), "", size))
                continue
            with file.open("rb") as stream:  # the size may have grown since stat()
                data = stream.read(limits.source_bytes + 1)
            if len(data) > limits.source_bytes:
                sources.append(SourceText(str(file), "", len(data)))
                continue
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            sources.append(SourceText(str(file), text))
        except (OSError, UnicodeDecodeError) as failure:
            reason = failure.strerror if isinstance(failure, OSError) else "not UTF-8 text"
            raise SourceUnreadable(f"cannot read {file}: {reason}", {"reason": reason}) from None
    return sources


_worker_engine: RegoEngine | None = None


def _init_worker(factory: EngineFactory) -> None:
    global _worker_engine  # noqa: PLW0603 - one engine per worker process, built once
    _worker_engine = factory()
    close = getattr(_worker_engine, "close", None)
    if close is not None:
        # A worker leaves without running atexit hooks; its engine's own process (if any) is
        # stopped and waited for by the worker as it exits, not left to the system.
        Finalize(None, close, exitpriority=10)


def convert_chunk(
    chunk: Sequence[SourceText],
    source_format: SourceFormat,
    settings: ConversionSettings,
    engine: RegoEngine | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
    clock: Clock | None = time.monotonic,
) -> list[PolicyResult]:
    active = engine or _worker_engine
    if active is None:
        raise RuntimeError("no Rego engine in this worker")
    results: list[PolicyResult] = []
    with _cyclic_collection_deferred():
        for source in chunk:
            for parsed in source.parse(source_format, limits):
                results.append(convert_parsed(parsed, active, source.name, settings, clock))
    return results


@contextmanager
def _cyclic_collection_deferred() -> Iterator[None]:
    """A chunk allocates a great many short-lived objects (parse trees, gate requests,
    decisions) and the cyclic collector's passes over them cost about 7 % of the conversion's
    CPU. The collector waits for the end of the chunk (at most `CHUNK_SIZE` bounded sources) and
    then runs once over what the chunk left, so cycles are still freed."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


def _chunks(sources: Sequence[SourceText], size: int) -> Iterator[list[SourceText]]:
    for start in range(0, len(sources), size):
        yield list(sources[start : start + size])


def run_conversion(
    sources: Sequence[SourceText],
    engine_factory: EngineFactory,
    *,
    source_format: SourceFormat = SourceFormat.AUTO,
    settings: ConversionSettings = ConversionSettings(),  # noqa: B008 - frozen value object
    jobs: int = 1,
    progress: Progress | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
    on_results: Callable[[list[PolicyResult]], None] | None = None,
) -> list[PolicyResult]:
    """Every policy of every source, in source order; duplicates in the batch fail.

    `on_results` is given each chunk's results as the chunk is done, in the order chunks end
    (before duplicates are failed): `ModuleFiles.add` writes their modules meanwhile."""
    if jobs > 1 and len(sources) > CHUNK_SIZE:
        with ConversionPool(engine_factory, jobs) as pool:
            pending = pool.submit(sources, source_format, settings, limits)
            return pending.results(progress, on_results)
    chunks = list(_chunks(sources, CHUNK_SIZE if jobs > 1 else max(1, min(CHUNK_SIZE, 5))))
    results: list[PolicyResult] = []
    done = 0
    engine = engine_factory()
    for chunk in chunks:
        converted = convert_chunk(chunk, source_format, settings, engine, limits)
        results.extend(converted)
        if on_results:
            on_results(converted)
        done += len(chunk)
        if progress:
            progress(done, len(sources))
    return _fail_duplicates(results)


class ConversionPool:
    """Worker processes that convert chunks of sources, kept for as many runs as the owner
    gives them (a migration job's batches): each worker builds its Rego engine once, and a
    run can be submitted before the previous one's results are used. A context manager."""

    def __init__(self, engine_factory: EngineFactory, jobs: int) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=jobs, initializer=_init_worker, initargs=(engine_factory,)
        )

    def submit(
        self,
        sources: Sequence[SourceText],
        source_format: SourceFormat,
        settings: ConversionSettings,
        limits: PolicyLimits = DEFAULT_LIMITS,
    ) -> PendingConversion:
        """Start converting `sources`, chunk by chunk, in the workers."""
        futures: dict[Future[list[PolicyResult]], tuple[int, int]] = {}
        for index, chunk in enumerate(_chunks(sources, CHUNK_SIZE)):
            future = self._executor.submit(
                convert_chunk, chunk, source_format, settings, None, limits
            )
            futures[future] = (index, len(chunk))
        return PendingConversion(futures, len(sources))

    def close(self) -> None:
        """Stop the workers; chunks not started are dropped."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ConversionPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PendingConversion:
    """A run submitted to a ConversionPool: its results once every chunk is done."""

    def __init__(self, futures: dict[Future[list[PolicyResult]], tuple[int, int]], total: int):
        self._futures = futures
        self._total = total

    def results(
        self,
        progress: Progress | None = None,
        on_results: Callable[[list[PolicyResult]], None] | None = None,
    ) -> list[PolicyResult]:
        """As `run_conversion`: every policy in source order, duplicates failed; the first
        error of a worker is raised."""
        by_chunk: dict[int, list[PolicyResult]] = {}
        done = 0
        for future in as_completed(self._futures):
            index, size = self._futures[future]
            by_chunk[index] = future.result()
            if on_results:
                on_results(by_chunk[index])
            done += size
            if progress:
                progress(done, self._total)
        return _fail_duplicates(
            [result for index in sorted(by_chunk) for result in by_chunk[index]]
        )


def _fail_duplicates(results: list[PolicyResult]) -> list[PolicyResult]:
    seen_ids: dict[str, str] = {}
    seen_packages: dict[str, str] = {}
    checked: list[PolicyResult] = []
    for original in results:
        result = original
        segment = package_segment(result.policy_id)
        clash = seen_ids.get(result.policy_id) or seen_packages.get(segment)
        if clash is not None:
            what = f"policy_id '{result.policy_id}' is not unique in the batch (first in {clash})"
            result = original.as_failed(
                error("DUPLICATE_POLICY_ID", what, Location(result.source)),
                "Give every policy in the batch its own policy_id.",
            )
        else:
            seen_ids[result.policy_id] = result.source
            seen_packages[segment] = result.source
        checked.append(result)
    return checked


def write_outputs(
    results: list[PolicyResult],
    out_dir: Path,
    *,
    settings: ConversionSettings,
    engine_name: str,
    strict_checker: StrictChecker | None = None,
    module_files: ModuleFiles | None = None,
) -> ConversionOutcome:
    """The modules of `results` (through `module_files` when it wrote them during the
    conversion), then report.json and report.md, into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[Path, int] = {}
    modules: list[tuple[Path, str]] = []
    for index, result in enumerate(results):
        if result.rego is not None:
            target = out_dir / f"{result.policy_id}.rego"
            written[target] = index
            modules.append((target, result.rego))
    if module_files is not None:
        module_files.settle(modules)
    else:
        _write_modules(modules)
    if strict_checker is not None and written:
        for file, message in strict_checker.check(list(written)).items():
            position = next((i for path, i in written.items() if str(path) == file), None)
            if position is None:
                continue
            results[position] = results[position].as_failed(
                error("OPA_CHECK_FAILED", message, Location(file)),
                "Do not deploy: `opa check --strict` refused the module.",
            )
            Path(file).unlink(missing_ok=True)
    report = report_json(results, settings.constitutional_hash, engine_name)
    report["tenant"] = settings.tenant
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )
    (out_dir / "report.md").write_text(
        report_markdown(results, settings.constitutional_hash, engine_name), encoding="utf-8"
    )
    kept = [path for path in written if path.exists()]
    return ConversionOutcome(results, report, kept)


_WRITERS = 4


def _write_modules(modules: Sequence[tuple[Path, str]]) -> None:
    """Each module into its file. Creating a file costs far more than converting its text and
    holds no lock of the interpreter, so a few threads write at once (a batch of 10,000 modules
    took about 5 s written one by one); the first error is raised once all are done."""
    if len(modules) < 2 * _WRITERS:
        for target, text in modules:
            target.write_text(text, encoding="utf-8")
        return
    with ThreadPoolExecutor(max_workers=_WRITERS) as writers:
        for _size in writers.map(_write_module, modules):
            pass


def _write_module(module: tuple[Path, str]) -> int:
    target, text = module
    return target.write_text(text, encoding="utf-8")


class ModuleFiles:
    """Writes the modules of converted policies into a directory while the conversion goes on.

    Creating files mostly waits on the file system, so writing each chunk's modules as the chunk
    ends (`add`, given to `run_conversion` as `on_results`) takes that wait off the end of the
    run. `settle` (called by `write_outputs`) then makes the directory hold exactly the final
    modules: a policy failed afterwards (a duplicate id in the batch) loses the file written for
    it, and the first of duplicates keeps its own module. Use it as a context manager."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self._writers = ThreadPoolExecutor(max_workers=_WRITERS)
        self._pending: list[Future[int]] = []
        self._written: dict[Path, str] = {}

    def add(self, results: Sequence[PolicyResult]) -> None:
        for result in results:
            if result.rego is None:
                continue
            target = self.out_dir / f"{result.policy_id}.rego"
            if target in self._written:
                continue  # a duplicate id: `settle` writes the module that stays
            self._written[target] = result.rego
            self._pending.append(self._writers.submit(_write_module, (target, result.rego)))

    def settle(self, modules: Sequence[tuple[Path, str]]) -> None:
        """Wait for the writes (the first error is raised), then write what differs from
        `modules` and remove the files of modules not among them."""
        self._wait()
        final = dict(modules)
        for stale in self._written.keys() - final.keys():
            stale.unlink(missing_ok=True)
        missing = [
            (target, text) for target, text in final.items() if self._written.get(target) != text
        ]
        _write_modules(missing)
        self._written = final

    def close(self) -> None:
        self._writers.shutdown(wait=True)

    def __enter__(self) -> ModuleFiles:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        failure: OSError | None = None
        for future in pending:
            try:
                future.result()
            except OSError as error:
                failure = failure or error
        if failure is not None:
            raise failure


def default_jobs(requested: int | None, work_items: int) -> int:
    if requested is not None and requested > 0:
        return requested
    chunks = max(1, -(-work_items // CHUNK_SIZE))
    return max(1, min(os.cpu_count() or 1, chunks))


@dataclass(frozen=True, slots=True)
class CheckResult:
    file: str
    package: str
    passed: bool
    requests: int
    message: str


def _package_of(module: str) -> str:
    for line in module.splitlines():
        if line.startswith("package "):
            return line.split(None, 1)[1].strip()
    return ""


def _source_policies(report: dict[str, Any]) -> dict[str, Policy]:
    policies: dict[str, Policy] = {}
    sources = {entry.get("source") for entry in report.get("policies", [])}
    for source in sorted(s for s in sources if isinstance(s, str)):
        path = Path(source)
        if not path.is_file():
            continue
        for parsed in read_sources([path])[0].parse(SourceFormat.AUTO):
            if isinstance(parsed, Policy):
                policies.setdefault(parsed.policy_id, parsed)
    return policies


def check_directory(
    directory: Path, engine: RegoEngine, constitutional_hash: str
) -> list[CheckResult]:
    """The gate over written modules: against their sources when report.json names them,
    else compile, evaluate and verify the constitutional guard."""
    if not directory.is_dir():
        raise SourceNotFound(f"no such directory: {directory}")
    report_path = directory / "report.json"
    report: dict[str, Any] = {}
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        constitutional_hash = str(report.get("constitutional_hash") or constitutional_hash)
    policies = _source_policies(report)
    results: list[CheckResult] = []
    for file in sorted(directory.glob("*.rego")):
        read = read_sources([file])[0]
        if read.size is not None:
            refusal = oversized_source(read.name, read.size, DEFAULT_LIMITS).error.reason
            results.append(CheckResult(str(file), "", passed=False, requests=0, message=refusal))
            continue
        module = read.text
        package = _package_of(module)
        policy = policies.get(file.stem)
        if policy is not None:
            requests = list(gate_inputs(policy, constitutional_hash).requests)
        else:
            requests = [
                {"constitutional_hash": constitutional_hash},
                {"constitutional_hash": "0000000000000000"},
            ]
        try:
            decisions = engine.decisions(file.name, module, package, requests)
        except DomainError as failure:
            results.append(
                CheckResult(
                    str(file),
                    package,
                    passed=False,
                    requests=len(requests),
                    message=failure.message,
                )
            )
            continue
        if policy is not None:
            counterexample = first_disagreement(policy, requests, decisions, constitutional_hash)
            message = (
                "equal to its source"
                if counterexample is None
                else (
                    "differs from its source on "
                    + json.dumps(counterexample.request, sort_keys=True)
                )
            )
            results.append(
                CheckResult(str(file), package, counterexample is None, len(requests), message)
            )
            continue
        guarded = not decisions[-1].allow and "constitutional hash mismatch" in decisions[-1].deny
        message = (
            "compiles; constitutional guard holds" if guarded else "constitutional guard missing"
        )
        results.append(CheckResult(str(file), package, guarded, len(requests), message))
    return results


def find_gaps(
    paths: Sequence[str | Path],
    source_format: SourceFormat = SourceFormat.AUTO,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> tuple[list[GapFinding], int]:
    """Gap findings over legacy sources and `.rego` modules alike, with how many were analysed.
    The toolkit's own reports are not sources; a source over a bound is not analysed."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(
                    item
                    for item in path.rglob("*")
                    if item.is_file()
                    and (item.suffix.lower() in EXTENSIONS or item.suffix == ".rego")
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise SourceNotFound(f"no such file or directory: {raw}")
        if len(files) > limits.batch_files:
            raise BatchTooLarge(too_many_files(len(files), limits).reason)
    findings: list[GapFinding] = []
    analysed = 0
    for source in read_sources(files, limits):
        if source.name.endswith(".rego"):
            if source.size is None:
                analysed += 1
                findings.extend(rego_gaps(source.name, source.text))
            continue
        for parsed in source.parse(source_format, limits):
            if isinstance(parsed, Policy):
                analysed += 1
                findings.extend(policy_gaps(parsed, source.name))
    return findings, analysed

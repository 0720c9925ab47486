"""Benchmark: a generated corpus of legacy policies converted and gated (regorus), with --jobs.

Run: `python -m tests.load.bench_policy_conversion [--policies 10000] [--jobs N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from commands.policy_conversion import ModuleFiles, read_sources, run_conversion, write_outputs
from domain.policy.conversion import ConversionSettings
from infra.rego.regorus_engine import RegorusEngine
from tests.load.policy_corpus import corpus
from tests.load.targets import Targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acgs-bench-") as scratch:
        source_dir, out_dir = Path(scratch, "src"), Path(scratch, "out")
        source_dir.mkdir()
        for name, text in corpus(args.policies, args.seed):
            (source_dir / name).write_text(text, encoding="utf-8")
        files = sorted(source_dir.iterdir())
        cpu_started = _cpu_seconds()
        started = time.perf_counter()
        sources = read_sources(files)
        with ModuleFiles(out_dir) as module_files:
            results = run_conversion(
                sources,
                RegorusEngine,
                settings=ConversionSettings(),
                jobs=args.jobs,
                on_results=module_files.add,
            )
            converted_at = time.perf_counter()
            cpu_converted = _cpu_seconds()
            write_outputs(
                results,
                out_dir,
                settings=ConversionSettings(),
                engine_name="regorus",
                module_files=module_files,
            )
        finished = time.perf_counter()
        cpu_finished = _cpu_seconds()
    statuses = Counter(result.status.value for result in results)
    requests = sum(int(result.gate.get("requests", 0)) for result in results)
    total = finished - started
    print(f"policies: {len(results)} ({dict(sorted(statuses.items()))}) with --jobs {args.jobs}")
    print(f"gate requests evaluated on both sides: {requests}")
    print(
        f"convert + gate: {converted_at - started:.2f} s; "
        f"with writing Rego and reports: {total:.2f} s"
    )
    print(f"throughput: {len(results) / total:.0f} policies/s")
    cpu_total = cpu_finished - cpu_started
    print(
        f"CPU (this process and its workers): {cpu_total:.1f} s, "
        f"{cpu_total / max(1, len(results)) * 1000:.2f} s per 1,000 policies "
        f"(convert + gate {cpu_converted - cpu_started:.1f} s, "
        f"writing {cpu_finished - cpu_converted:.1f} s); load average {_load()}"
    )
    targets = Targets("bench_policy_conversion")
    every = targets.check(
        "every policy converted", statuses.get("converted", 0) == len(results) > 0
    )
    print(f"every policy converted and proven: {every}")
    if args.policies == 10_000:
        fast = targets.check("10,000 policies in under 60 s", total < 60)
        print(f"10,000 policies in {total:.1f} s (target < 60 s): {fast}")
    return targets.exit_status()


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its ended children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())

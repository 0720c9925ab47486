"""`acgs policy ...`: convert legacy policies to Rego, check converted Rego, analyse gaps, and
decide an input offline (`eval`)."""

from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from api.cli.console import table_console
from commands.policy_conversion import (
    BatchTooLarge,
    ModuleFiles,
    SourceNotFound,
    SourceUnreadable,
    check_directory,
    collect_sources,
    default_jobs,
    find_gaps,
    read_sources,
    run_conversion,
    write_outputs,
)
from commands.policy_intake import FORMATS, PolicyConversionFailed, PolicyIntake, SubmitPolicy
from domain.constitution import CONSTITUTIONAL_HASH_PATTERN, DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import ValidationFailed
from domain.policy.conversion import (
    ConversionSettings,
    ConversionStatus,
    PolicyResult,
)
from domain.policy.conversion_report import totals
from domain.policy.gaps.gap_report import gap_report_markdown, gap_report_text, score_summary
from domain.policy.gate import RegoCompileError, RegoEvaluationError
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.sources import SourceFormat
from infra.rego.bounded_engine import BoundedRegoEngine
from infra.rego.engine_cache import EngineCache
from infra.rego.opa_check import OpaStrictChecker

EXIT_USAGE = 2
_STATUS_STYLE = {"converted": "green", "unproven": "magenta", "partial": "yellow", "failed": "red"}


def _fail(message: str) -> NoReturn:
    click.echo(f"acgs policy: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _hash_option(value: str) -> str:
    if not CONSTITUTIONAL_HASH_PATTERN.fullmatch(value):
        raise click.BadParameter("must be 16 lowercase hex characters")
    return value


hash_option = click.option(
    "--constitutional-hash",
    default=lambda: os.environ.get("CONSTITUTIONAL_HASH", DEFAULT_CONSTITUTIONAL_HASH),
    show_default="env CONSTITUTIONAL_HASH or " + DEFAULT_CONSTITUTIONAL_HASH,
    callback=lambda _ctx, _param, value: _hash_option(value),
    help="Hash the generated Rego's constitutional guard requires.",
)


def _limits(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> PolicyLimits:
    overrides: dict[str, int] = {}
    for item in values:
        name, _, number = item.partition("=")
        if not number.isdigit():
            raise click.BadParameter(f"'{item}': expected NAME=INTEGER, e.g. source_bytes=8388608")
        overrides[name.strip().replace("-", "_")] = int(number)
    try:
        return DEFAULT_LIMITS.with_overrides(overrides)
    except ValueError as bad:
        raise click.BadParameter(str(bad)) from None


limit_option = click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="NAME=N",
    callback=_limits,
    help="Change one bound on the sources (repeatable), e.g. source_bytes=8388608; "
    "see docs/legacy-formats.md, Limits.",
)


@click.group()
def policy() -> None:
    """Legacy policy migration: convert to Rego, prove, analyse gaps."""


@policy.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "source_format",
    type=click.Choice([item.value for item in SourceFormat]),
    default="auto",
    show_default=True,
)
@click.option(
    "--tenant", default=None, help="Tenant slug: packages become acgs.tenants.<slug>.<id>."
)
@click.option(
    "--strict", is_flag=True, help="Exit 1 when any policy failed, is unproven or is partial."
)
@click.option("--jobs", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--progress/--no-progress", "show_progress", default=None, help="Progress bar.")
@limit_option
@hash_option
def convert(
    sources: tuple[str, ...],
    out_dir: Path,
    source_format: str,
    tenant: str | None,
    strict: bool,
    jobs: int | None,
    show_progress: bool | None,
    limits: PolicyLimits,
    constitutional_hash: str,
) -> None:
    """Convert legacy policies (files or directories) to Rego v1 in OUT, with report.json/.md."""
    try:
        files = collect_sources(sources, SourceFormat(source_format), limits)
        texts = read_sources(files, limits)
    except (SourceNotFound, SourceUnreadable, BatchTooLarge) as failure:
        _fail(failure.message)
    settings = ConversionSettings.bounded_by(limits, tenant, constitutional_hash)
    workers = default_jobs(jobs, len(texts))
    started = time.perf_counter()
    stderr = Console(stderr=True)
    visible = show_progress if show_progress is not None else stderr.is_terminal
    try:
        module_files = ModuleFiles(out_dir)  # modules are written while the conversion goes on
    except OSError as failure:
        _fail(f"cannot write to {out_dir}: {failure.strerror}")
    with module_files:
        with _progress_bar(stderr, visible) as bar:
            task = bar.add_task("converting", total=len(texts))
            results = run_conversion(
                texts,
                partial(
                    BoundedRegoEngine,
                    seconds=limits.evaluation_seconds,
                    memory_bytes=limits.evaluation_memory_bytes,
                ),
                source_format=SourceFormat(source_format),
                settings=settings,
                jobs=workers,
                progress=lambda done, _total: bar.update(task, completed=done),
                limits=limits,
                on_results=module_files.add,
            )
        try:
            outcome = write_outputs(
                results,
                out_dir,
                settings=settings,
                engine_name=BoundedRegoEngine.name,
                strict_checker=OpaStrictChecker.from_path(),
                module_files=module_files,
            )
        except OSError as failure:
            _fail(f"cannot write to {out_dir}: {failure.strerror}")
    elapsed = time.perf_counter() - started
    _print_summary(outcome.results, elapsed, out_dir)
    if strict and outcome.has_failures:
        sys.exit(1)


class RateColumn(ProgressColumn):
    """Files per second over the run so far."""

    def render(self, task: Task) -> Text:
        speed = task.speed or (task.completed / task.elapsed if task.elapsed else 0.0)
        return Text(f"{speed:,.0f} files/s", style="cyan")


def _progress_bar(console: Console, visible: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not visible,
    )


def _print_summary(results: list[PolicyResult], elapsed: float, out_dir: Path) -> None:
    console = table_console()
    table = Table(title="Policy conversion")
    for column in ("policy", "status", "rules", "warnings", "errors"):
        table.add_column(column)
    for result in results[:50]:
        style = _STATUS_STYLE[result.status.value]
        table.add_row(
            result.policy_id,
            f"[{style}]{result.status.value}[/]",
            f"{result.rules_converted}/{result.rules_total}",
            str(len(result.warnings)),
            str(len(result.errors)),
        )
    if len(results) > 50:
        table.caption = f"first 50 of {len(results)} policies; all in {out_dir / 'report.md'}"
    console.print(table)
    summary = totals(results)
    rate = len(results) / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{summary['policies']} policies: {summary['converted']} converted, "
        f"{summary['unproven']} unproven, {summary['partial']} partial, "
        f"{summary['failed']} failed; rules "
        f"{summary['rules_converted']}/{summary['rules_total']}; constitutional compliance "
        f"{summary['constitutional_compliance_rate']:.1%}; "
        f"{elapsed:.2f} s ({rate:.0f} policies/s). "
        f"Report: {out_dir / 'report.json'}"
    )
    for result in results:
        if result.status is ConversionStatus.FAILED and result.errors:
            click.echo(f"failed {result.policy_id}: {result.errors[0]}", err=True)
        if result.status is ConversionStatus.UNPROVEN:
            unreached = ", ".join(result.gate.get("unreached_rules", []))
            click.echo(f"unproven {result.policy_id}: rule(s) never reached: {unreached}", err=True)


@policy.command()
@click.argument("directory", type=click.Path(path_type=Path))
@limit_option
@hash_option
def check(directory: Path, limits: PolicyLimits, constitutional_hash: str) -> None:
    """The gate only: compile and evaluate every .rego in DIRECTORY; exit 1 if any fails."""
    engine = BoundedRegoEngine(limits.evaluation_seconds, limits.evaluation_memory_bytes)
    try:
        with engine:
            results = check_directory(directory, engine, constitutional_hash)
    except (SourceNotFound, SourceUnreadable) as failure:
        _fail(failure.message)
    console = table_console()
    table = Table(title=f"Rego gate ({BoundedRegoEngine.name})")
    for column in ("module", "package", "requests", "result"):
        table.add_column(column)
    for result in results:
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(
            Path(result.file).name,
            result.package,
            str(result.requests),
            f"{verdict} {result.message}",
        )
    console.print(table)
    failed = sum(1 for result in results if not result.passed)
    console.print(f"{len(results)} modules checked, {failed} failed.")
    if failed or not results:
        sys.exit(1)


@policy.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--format", "output", type=click.Choice(["md", "json"]), default="md", show_default=True
)
@limit_option
def gaps(sources: tuple[str, ...], output: str, limits: PolicyLimits) -> None:
    """Gap analysis of legacy sources and converted Rego: findings and severity score."""
    try:
        findings, analysed = find_gaps(sources, limits=limits)
    except (SourceNotFound, SourceUnreadable, BatchTooLarge) as failure:
        _fail(failure.message)
    text = (
        gap_report_text(findings, analysed)
        if output == "json"
        else gap_report_markdown(findings, analysed)
    )
    click.echo(text, nl=False)
    if output == "md":
        click.echo(score_summary(findings), err=True)


@policy.command("eval")
@click.argument("policy_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--input",
    "input_text",
    required=True,
    help="The input document: JSON text, @FILE to read it from a file, or - for stdin.",
)
@click.option(
    "--policy", "policy_id", default=None, help="The policy to use, when the file has several."
)
@click.option(
    "--format",
    "source_format",
    type=click.Choice(list(FORMATS)),
    default="auto",
    show_default=True,
)
@click.option(
    "--allow-unguarded", is_flag=True, help="Accept a Rego module without the constitutional guard."
)
@limit_option
@hash_option
def eval_policy(
    policy_file: Path,
    input_text: str,
    policy_id: str | None,
    source_format: str,
    allow_unguarded: bool,
    limits: PolicyLimits,
    constitutional_hash: str,
) -> None:
    """Decide INPUT with POLICY_FILE offline, as the decision API does: convert (or compile) and
    gate the file, then evaluate its Rego on the input (its constitutional_hash set when absent).
    Prints {allow, deny, obligations, policy_id, constitutional_hash}; exit 1 when the policy
    cannot be evaluated on the input, 2 when the file or input is unusable."""
    try:
        [text] = read_sources(collect_sources([policy_file], SourceFormat.AUTO, limits), limits)
    except (SourceNotFound, SourceUnreadable, BatchTooLarge) as failure:
        _fail(failure.message)
    if text.size is not None:
        _fail(f"{policy_file} is larger than {limits.source_bytes} bytes (limit source_bytes)")
    document = _input_document(input_text)
    intake = PolicyIntake(
        BoundedRegoEngine(limits.evaluation_seconds, limits.evaluation_memory_bytes),
        constitutional_hash,
        limits,
    )
    try:
        converted = intake.convert(
            SubmitPolicy(text.text, source_format, str(policy_file), allow_unguarded)
        )
    except (PolicyConversionFailed, ValidationFailed) as failure:
        where = failure.details.get("line")
        at = f" (line {where}, column {failure.details.get('column')})" if where else ""
        _fail(f"{policy_file} does not convert{at}: {failure.message}")
    finally:
        intake.close()
    by_id = {result.policy_id: result for result in converted.results}
    if policy_id is None and len(by_id) > 1:
        _fail(f"{policy_file} holds several policies; choose one with --policy: {', '.join(by_id)}")
    chosen = by_id.get(policy_id) if policy_id else next(iter(by_id.values()))
    if chosen is None:
        _fail(f"no policy {policy_id!r} in {policy_file}; it holds {', '.join(by_id)}")
    assert chosen is not None
    if "constitutional_hash" not in document:
        document["constitutional_hash"] = constitutional_hash
    try:
        decision = EngineCache().evaluate(
            (chosen.policy_id, 1),
            chosen.rego or "",
            chosen.package or "",
            document,
            generated=chosen.source_format != "rego",
        )
    except (RegoCompileError, RegoEvaluationError) as failure:
        click.echo(f"acgs policy: evaluation failed: {failure.message}", err=True)
        sys.exit(1)
    answer = {
        "allow": decision.allow,
        "deny": sorted(decision.deny),
        "obligations": [json.loads(item) for item in sorted(decision.obligations)],
        "policy_id": chosen.policy_id,
        "constitutional_hash": constitutional_hash,
    }
    click.echo(json.dumps(answer, ensure_ascii=False))


def _input_document(text: str) -> dict[str, Any]:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as failure:
            _fail(f"cannot read the input {text[1:]}: {failure}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as failure:
        _fail(f"--input is not JSON: {failure.msg} (line {failure.lineno}, column {failure.colno})")
    if not isinstance(document, dict):
        _fail("--input must be a JSON object")
    return document

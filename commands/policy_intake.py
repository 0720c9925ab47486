"""Policy intake: a submitted source (any legacy format of the toolkit, or Rego) converted and
gated, or refused as a whole. Used by the registry's commands and by `acgs policy eval`."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from commands.policy_conversion import SourceText, run_conversion
from domain.errors import DomainError, ValidationFailed
from domain.policy.conversion import ConversionSettings, ConversionStatus, PolicyResult
from domain.policy.conversion_report import report_json
from domain.policy.diagnostics import warning
from domain.policy.gate import RegoCompileError, RegoEngine
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.reference_evaluator import CONSTITUTIONAL_HASH_MISMATCH
from domain.policy.rule_model import Policy
from domain.policy.sources import EXTENSIONS, SourceFormat

FORMATS = ("auto", "json", "yaml", "dsl", "iam", "rego")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", re.M)
_DSL_START = re.compile(r"^\s*policy\s", re.M | re.I)
_WRONG_HASH = "0000000000000000"


class PolicyConversionFailed(DomainError):
    """A submitted source did not convert (or did not compile): nothing was registered."""

    code = "POLICY_CONVERSION_FAILED"


@dataclass(frozen=True)
class SubmitPolicy:
    source: str
    source_format: str = "auto"
    filename: str | None = None  # a multipart upload's file name (its extension helps `auto`)
    allow_unguarded: bool = False  # a Rego module without the constitutional guard


@dataclass(frozen=True)
class Intake:
    """Every policy of a source, converted: results in source order, names, the report."""

    results: list[PolicyResult]
    names: dict[str, str]
    report: dict[str, Any]


class PolicyIntake:
    def __init__(
        self,
        engine: RegoEngine,
        constitutional_hash: str,
        limits: PolicyLimits = DEFAULT_LIMITS,
    ) -> None:
        self._engine = engine  # bounded; one call at a time
        self._engine_lock = threading.Lock()
        self._hash = constitutional_hash
        self._limits = limits

    def close(self) -> None:
        """Stop the engine's child process, if it has one."""
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()

    def convert(self, command: SubmitPolicy) -> Intake:
        """Convert and gate; PolicyConversionFailed (nothing converted) if any policy fails."""
        if command.source_format not in FORMATS:
            raise ValidationFailed.field("format", f"must be one of {', '.join(FORMATS)}")
        if not command.source.strip():
            raise ValidationFailed.field("source", "must not be empty")
        chosen = _detected(command)
        if chosen == "rego":
            results, names = [self._rego_result(command)], dict[str, str]()
        else:
            results, names = self._converted(command, SourceFormat(chosen))
        report = report_json(results, self._hash, self._engine.name)
        _refuse_failures(results, report)
        return Intake(results, names, report)

    def _converted(
        self, command: SubmitPolicy, source_format: SourceFormat
    ) -> tuple[list[PolicyResult], dict[str, str]]:
        name = command.filename or f"submitted{_extension(source_format)}"
        text = SourceText(name, command.source.replace("\r\n", "\n"))
        parsed = text.parse(source_format, self._limits)
        names = {p.policy_id: p.name for p in parsed if isinstance(p, Policy) and p.name}
        settings = ConversionSettings.bounded_by(self._limits, None, self._hash)
        with self._engine_lock:
            results = run_conversion(
                [text],
                lambda: self._engine,
                source_format=source_format,
                settings=settings,
                limits=self._limits,
            )
        if not results:
            raise ValidationFailed.field("source", "holds no policy")
        return results, names

    def _rego_result(self, command: SubmitPolicy) -> PolicyResult:
        """A Rego module as submitted: it must compile, define allow, deny and obligations, and
        (unless `allow_unguarded`) deny a request with another constitutional hash."""
        module = command.source
        found = _PACKAGE.search(module)
        if found is None:
            raise PolicyConversionFailed(
                "the Rego module has no package declaration",
                {"line": 1, "column": 1, "errors": [{"code": "REGO_COMPILE_ERROR"}]},
            )
        package = found.group(1)
        policy_key = package.rsplit(".", 1)[-1]
        probes = [{"constitutional_hash": self._hash}, {"constitutional_hash": _WRONG_HASH}]
        filename = command.filename or f"{policy_key}.rego"
        try:
            with self._engine_lock:
                decisions = self._engine.decisions(filename, module, package, probes)
        except RegoCompileError as failure:
            raise PolicyConversionFailed(
                f"the Rego module does not compile: {failure.message}",
                {
                    "line": failure.line,
                    "column": failure.column,
                    "errors": [{"code": failure.code, "message": failure.message}],
                },
            ) from None
        except DomainError as failure:
            raise PolicyConversionFailed(
                f"the Rego module cannot decide: {failure.message}",
                {"errors": [{"code": failure.code, "message": failure.message}]},
            ) from None
        guarded = not decisions[1].allow and CONSTITUTIONAL_HASH_MISMATCH in decisions[1].deny
        if not guarded and not command.allow_unguarded:
            raise PolicyConversionFailed(
                "the Rego module lacks the constitutional guard: a request with another "
                "constitutional_hash must be denied with the reason "
                f"'{CONSTITUTIONAL_HASH_MISMATCH}' (or submit it with allow_unguarded: true)",
                {"errors": [{"code": "CONSTITUTIONAL_GUARD_MISSING"}]},
            )
        warnings = (
            ()
            if guarded
            else (
                warning(
                    "CONSTITUTIONAL_GUARD_MISSING", "submitted without the constitutional guard"
                ),
            )
        )
        return PolicyResult(
            policy_id=policy_key,
            source=filename,
            source_format="rego",
            status=ConversionStatus.CONVERTED,
            rules_converted=0,
            rules_total=0,
            warnings=warnings,
            recommendation="Compiled by regorus; the constitutional guard holds."
            if guarded
            else "Compiled by regorus; review: it has no constitutional guard.",
            package=package,
            rego=module,
            constitutional_compliant=guarded,
        )


def _detected(command: SubmitPolicy) -> str:  # noqa: PLR0911 - one answer per clue
    """The format of `auto`: the file name's extension if it has a known one, else the text's
    first significant token (`{`/`[` JSON, `package` Rego, `policy` the DSL, otherwise YAML)."""
    if command.source_format != "auto":
        return command.source_format
    suffix = PurePath(command.filename or "").suffix.lower()
    if suffix == ".rego":
        return "rego"
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix].value
    text = command.source.lstrip()
    if text.startswith(("{", "[")):
        return "json"
    if _PACKAGE.search(command.source) and not _DSL_START.search(command.source):
        return "rego"
    if _DSL_START.search(command.source):
        return "dsl"
    return "yaml"


def _extension(source_format: SourceFormat) -> str:
    if source_format in (SourceFormat.JSON, SourceFormat.IAM):
        return ".json"
    return {SourceFormat.YAML: ".yaml", SourceFormat.DSL: ".rules"}.get(source_format, "")


def _refuse_failures(results: list[PolicyResult], report: dict[str, Any]) -> None:
    failed = [r for r in results if r.status is ConversionStatus.FAILED]
    if not failed:
        return
    errors = [
        {"policy_id": r.policy_id, **diagnostic.as_json()}
        for r in failed
        for diagnostic in r.errors
    ]
    first = errors[0] if errors else {}
    names = ", ".join(r.policy_id for r in failed)
    raise PolicyConversionFailed(
        f"the source does not convert ({names}): {first.get('message', 'failed')}",
        {
            "line": first.get("line"),
            "column": first.get("column"),
            "errors": errors,
            "report": report,
        },
    )

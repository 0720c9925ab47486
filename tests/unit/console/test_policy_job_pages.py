"""The migration-job pages' pieces that need no service: the form's fields as the job's
`source_config`, the command's problems named as the form's fields, and the live part of a job's
page polling only while the job is unfinished."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from api.console.job_pages import _DEFAULTS, _errors_of, _source_config
from api.console.rendering import ENV
from domain.errors import ValidationFailed


def values(**changes: str) -> dict[str, str]:
    return {**_DEFAULTS, "activate": "", **changes}


def test_a_conversion_takes_its_own_fields_and_the_json_parameters() -> None:
    errors: dict[str, str] = {}
    config = _source_config(
        values(parameters='{"note": "x", "format": "yaml"}', format="dsl", activate="on",
               batch_size="25"),
        errors,
    )  # fmt: skip
    assert errors == {}
    assert config == {"note": "x", "format": "dsl", "validation_mode": "strict",
                      "activate": True, "batch_size": 25}  # fmt: skip


def test_a_gap_analysis_takes_only_its_scope_and_batch_size() -> None:
    errors: dict[str, str] = {}
    config = _source_config(values(job_type="gap_analysis", scope="latest", format="dsl"), errors)
    assert (config, errors) == ({"scope": "latest"}, {})


def test_another_kind_takes_the_json_parameters_alone() -> None:
    errors: dict[str, str] = {}
    raw = '{"format": "csv", "column_mapping": {"decision": "outcome"}}'
    config = _source_config(values(job_type="decision_log_import", parameters=raw), errors)
    assert config == {"format": "csv", "column_mapping": {"decision": "outcome"}}
    assert errors == {}


def test_every_bad_field_of_the_form_is_reported_at_once() -> None:
    errors: dict[str, str] = {}
    _source_config(values(parameters="[1]", batch_size="many"), errors)
    assert errors == {"parameters": "must be a JSON object", "batch_size": "must be a whole number"}
    errors = {}
    _source_config(values(parameters="{nope"), errors)
    assert errors["parameters"].startswith("is not valid JSON")


def test_the_commands_problems_land_on_the_forms_fields() -> None:
    refused = ValidationFailed.listing(
        [
            {"field": "job_type", "message": "must be one of a, b"},
            {"field": "file", "message": "is required"},
            {"field": "source_config.batch_size", "message": "an integer 1..1000"},
            {"field": "source_config.column_mapping", "message": "must be an object"},
            {"field": "source_config.delimiter", "message": "one character"},
        ]
    )
    assert _errors_of(refused) == {
        "job_type": "must be one of a, b",
        "file": "is required",
        "batch_size": "an integer 1..1000",
        "parameters": "column_mapping: must be an object. delimiter: one character.",
    }
    assert _errors_of(ValidationFailed("no fields")) == {"form": "no fields"}
    no_source = ValidationFailed.field("source", "a gap analysis reads the registry: no source")
    assert _errors_of(no_source) == {"file": "a gap analysis reads the registry: no source"}


def _job(status: str, processed: int, total: int | None) -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "job_id": uuid4(), "tenant_id": uuid4(), "job_type": "policy_conversion",
        "job_status": status, "processed_items": processed, "total_items": total,
        "successful_items": processed, "failed_items": 0, "started_at": now,
        "estimated_completion": now, "completed_at": now if status == "completed" else None,
        "cancelled_at": None, "error_details": None, "path": "/x/migrations/j",
        "progress": processed * 100 // total if total else 0,
        "finished": status in ("completed", "failed", "cancelled"),
    }  # fmt: skip


def test_the_live_part_polls_while_the_job_runs_and_stops_once_it_has_finished() -> None:
    template = ENV.get_template("job_live.html")
    running = template.render(job=_job("running", 3, 12), summary=[], failures=[],
                              can_cancel=True, csrf_field="c", csrf_token="t")  # fmt: skip
    assert 'hx-get="/console/x/migrations/j/live" hx-trigger="every 1s"' in running
    assert 'value="25"' in running
    assert 'id="cancel-job"' in running
    assert "Results" not in running
    done = template.render(
        job=_job("completed", 12, 12), summary=[("converted_policies", "12")],
        failures=[{"item_id": "<b>x</b>", "error": "e", "recommendation": "r"}],
        can_cancel=False, csrf_field="c", csrf_token="t",
    )  # fmt: skip
    assert "hx-trigger" not in done
    assert 'value="100"' in done
    assert "Results" in done
    assert "&lt;b&gt;x&lt;/b&gt;" in done
    assert 'id="cancel-job"' not in done

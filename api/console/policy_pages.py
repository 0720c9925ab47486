"""The console's policy pages: the tenant's policies (filters and paging as the API offers),
submitting a legacy source or Rego (text or file) with its conversion report or the refusal with
its line and column, one policy with its versions, one version (source, Rego, report), activate
and roll back, retire, and evaluating a sample input.

Every role of the tenant reads; LEGISLATIVE or EXECUTIVE author (the controls are shown only to
them, and the commands refuse everyone else anyway)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.freshness import since, wait_for_write
from api.console.permissions import may
from api.console.principal import SignedIn
from api.console.rendering import (
    PREFIX,
    Pending,
    api_of,
    context_of,
    field_errors,
    go,
    page,
    read_form,
    tenant_row,
    who_of,
)
from api.console.uploads import read_form_with_files, text_of
from api.http.command_calls import in_thread
from api.http.policy_dto import DecisionResult
from commands.authorization import Permission, authorize
from commands.decisions import DecisionRequest, DecisionService
from commands.policies import PolicyCommands
from commands.policy_intake import FORMATS, PolicyConversionFailed, SubmitPolicy
from domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from domain.policy.limits import DEFAULT_LIMITS
from domain.tenancy import SYSTEM_TENANT_ID
from projections.policies import find_policy, find_version, list_policies

PAGE_SIZE = 50
STATUSES = ("draft", "active", "retired")
SCOPES = {"own": False, "system": True}  # the list's `scope` filter -> system_wide
MAX_SOURCE = DEFAULT_LIMITS.source_bytes
MAX_INPUT = 64 * 1024  # characters of a sample input
SAMPLE_INPUT = '{\n  "user": {"role": "owner"},\n  "action": "read"\n}'


def _registry(request: Request[Any, Any, Any]) -> PolicyCommands:
    commands = api_of(request).system.policies
    assert commands is not None
    return commands


def _decisions(request: Request[Any, Any, Any]) -> DecisionService:
    service = api_of(request).system.decisions
    assert service is not None
    return service


def policy_path(tenant_id: UUID, policy_key: str) -> str:
    """A policy's path under /console (its id as one path segment)."""
    return f"/tenants/{tenant_id}/policies/{quote(policy_key, safe='')}"


# --- the list ---------------------------------------------------------------------------------


@get("/tenants/{tenant_id:uuid}/policies")
async def policies_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.POLICY_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    params = request.query_params
    status = params.get("status") if params.get("status") in STATUSES else None
    scope = params.get("scope", "")
    system_wide = SCOPES.get(scope)
    offset = _offset(params.get("offset", "0"))
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        rows, total = await list_policies(
            conn, status=status, system_wide=system_wide, limit=PAGE_SIZE, offset=offset
        )
    for r in rows:
        r["path"] = policy_path(tenant_id, r["policy_id"])
    filters = {"status": status or "", "scope": scope if system_wide is not None else ""}
    kept = {k: v for k, v in filters.items() if v}

    def link(at: int) -> str:
        return f"/tenants/{tenant_id}/policies?" + urlencode({**kept, "offset": at})

    return page(
        request, "policy_list.html", who=who, tenant=row, policies=rows, total=total,
        offset=offset, filters=filters, statuses=STATUSES,
        previous=link(max(0, offset - PAGE_SIZE)) if offset else None,
        next=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
        can_author=may(who.principal, Permission.POLICY_AUTHOR, tenant_id),
    )  # fmt: skip


def _offset(raw: str) -> int:
    return min(int(raw), 1_000_000) if raw.isdigit() else 0


# --- submitting a source ----------------------------------------------------------------------


@get("/tenants/{tenant_id:uuid}/policy-submission")
async def new_policy_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.POLICY_AUTHOR, tenant_id)
    row = await tenant_row(request, tenant_id)
    return page(
        request, "policy_new.html", who=who, tenant=row, formats=FORMATS,
        values={"format": "auto"}, errors={}, refusal=None,
    )  # fmt: skip


@post("/tenants/{tenant_id:uuid}/policies")
async def submit_policy(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    """The source as text or as a chosen file (not both); 201 with the conversion report, or
    the form again with every problem (a source that does not convert: its line and column)."""
    who = await who_of(request)
    form = await read_form_with_files(request, {"source": MAX_SOURCE})
    row = await tenant_row(request, tenant_id)
    values = {k: form.get(k) for k in ("source", "format", "filename", "allow_unguarded")}
    values["format"] = values["format"] or "auto"
    errors: dict[str, str] = {}
    refusal: dict[str, Any] | None = None
    upload = form.files.get("file")
    source, filename = values["source"], values["filename"] or None
    if upload is not None and source.strip():
        errors["file"] = "give the source as text or as a file, not both"
        errors["source"] = "give the source as text or as a file, not both"
    elif upload is not None:
        try:
            source = await text_of(upload, "file", MAX_SOURCE)
            filename = filename or upload.filename
        except ValidationFailed as invalid:
            errors.update(field_errors(invalid))
    elif not source.strip():
        errors["source"] = "give the policy's source here, or choose a file"
    if not errors:
        submission = SubmitPolicy(
            source, values["format"], filename, values["allow_unguarded"] == "on"
        )
        try:
            done = await in_thread(
                partial(
                    _registry(request).submit, context_of(who, form.values), tenant_id, submission
                )
            )
        except DomainError as refused:
            if isinstance(refused, Forbidden | NotFound):
                raise
            errors.update(field_errors(refused))
            placed = isinstance(refused, PolicyConversionFailed) or "line" in refused.details
            if not errors and placed:
                refusal = _refusal(refused)
            elif not errors:
                errors["form"] = refused.message
        else:
            _decisions(request).cache.invalidate_many(p.id for p, _ in done.versions)
            added = [
                {
                    "policy_id": policy.policy_key,
                    "path": policy_path(tenant_id, policy.policy_key),
                    "version": version.number,
                    "conversion_status": version.conversion_status,
                    "status": policy.status.value,
                    "active_version": policy.active_version,
                }
                for policy, version in done.versions
            ]
            return page(
                request, "policy_submitted.html", who=who, tenant=row, added=added,
                report=done.report, status=201,
            )  # fmt: skip
    if upload is not None:
        values["source"] = ""  # the file is not sent back; the visitor chooses it again
    return page(
        request, "policy_new.html", who=who, tenant=row, formats=FORMATS, values=values,
        errors=errors, refusal=refusal, status=422,
    )  # fmt: skip


def _refusal(refused: DomainError) -> dict[str, Any]:
    """A refused source: the message, where (line and column), each error, and the report."""
    details = refused.details
    return {
        "code": refused.code,
        "message": refused.message,
        "line": details.get("line"),
        "column": details.get("column"),
        "errors": list(details.get("errors") or []),
        "report": details.get("report"),
    }


# --- one policy, one version ------------------------------------------------------------------


async def _policy(request: Request[Any, Any, Any], tenant_id: UUID, key: str) -> dict[str, Any]:
    if "\x00" in key:
        raise NotFound("policy not found", {"policy_id": key.replace("\x00", "")})
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        row = await find_policy(conn, key)
    if row is None:
        if request.query_params.get("since"):
            raise Pending("the policy")
        raise NotFound("policy not found", {"policy_id": key})
    return row


async def _policy_page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant_id: UUID,
    key: str,
    *,
    sample: str = SAMPLE_INPUT,
    decision: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[str]:
    authorize(who.principal, Permission.POLICY_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    policy = await _policy(request, tenant_id, key)
    wait_for_write(request, policy["updated_at"], "the change")
    own = not policy["system_wide"] or tenant_id == SYSTEM_TENANT_ID
    writable = own and may(who.principal, Permission.POLICY_AUTHOR, tenant_id)
    return page(
        request, "policy.html", who=who, tenant=row, policy=policy,
        path=policy_path(tenant_id, policy["policy_id"]),
        can_write=writable and policy["status"] != "retired",
        can_decide=may(who.principal, Permission.DECISION_REQUEST, tenant_id),
        sample=sample, decision=decision, errors=errors or {}, status=status,
    )  # fmt: skip


@get("/tenants/{tenant_id:uuid}/policies/{policy_id:str}")
async def policy_page(
    request: Request[Any, Any, Any], tenant_id: UUID, policy_id: str
) -> Response[str]:
    who = await who_of(request)
    return await _policy_page(request, who, tenant_id, policy_id)


@get("/tenants/{tenant_id:uuid}/policies/{policy_id:str}/versions/{version:int}")
async def version_page(
    request: Request[Any, Any, Any], tenant_id: UUID, policy_id: str, version: int
) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.POLICY_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    if not 1 <= version <= 2**31 - 1 or "\x00" in policy_id:
        raise NotFound("version not found", {"version": version})
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        found = await find_version(conn, policy_id, version)
    if found is None:
        raise NotFound("version not found", {"policy_id": policy_id, "version": version})
    return page(
        request, "policy_version.html", who=who, tenant=row, version=found,
        path=policy_path(tenant_id, policy_id),
        report_json=json.dumps(found["report"], indent=2, sort_keys=True, default=str),
    )  # fmt: skip


# --- activate (roll back), retire -------------------------------------------------------------


@post("/tenants/{tenant_id:uuid}/policies/{policy_id:str}/activate")
async def activate_policy(
    request: Request[Any, Any, Any], tenant_id: UUID, policy_id: str
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    raw = form.get("version", "")
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise ValidationFailed.field("version", "must be a version number")
    done = await in_thread(
        partial(_registry(request).activate, context_of(who, form), tenant_id, policy_id, int(raw))
    )
    _decisions(request).cache.invalidate_many([done.policy.id])
    return go(f"{PREFIX}{policy_path(tenant_id, policy_id)}?since={since(done.policy.modified_on)}")


@post("/tenants/{tenant_id:uuid}/policies/{policy_id:str}/retire")
async def retire_policy(
    request: Request[Any, Any, Any], tenant_id: UUID, policy_id: str
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    if form.get("confirm") != "on":
        raise ValidationFailed.field("confirm", "tick the box: retiring a policy is final")
    policy = await in_thread(
        partial(_registry(request).retire, context_of(who, form), tenant_id, policy_id)
    )
    _decisions(request).cache.invalidate_many([policy.id])
    return go(f"{PREFIX}{policy_path(tenant_id, policy_id)}?since={since(policy.modified_on)}")


# --- evaluate a sample input ------------------------------------------------------------------


@post("/tenants/{tenant_id:uuid}/policies/{policy_id:str}/evaluate")
async def evaluate_policy(
    request: Request[Any, Any, Any], tenant_id: UUID, policy_id: str
) -> Response[Any]:
    """The decision of the active version on the sample input, exactly as POST .../decisions
    answers it (and logged like it); with htmx only the decision box is sent back."""
    who = await who_of(request)
    form = await read_form_with_files(request, {"input": MAX_INPUT})
    sample = form.get("input")
    errors: dict[str, str] = {}
    decision: dict[str, Any] | None = None
    try:
        document = json.loads(sample)
    except ValueError as bad:
        errors["input"] = f"is not valid JSON: {bad}"
    else:
        if not isinstance(document, dict):
            errors["input"] = "must be a JSON object"
    if not errors:
        api = api_of(request)
        call = partial(
            _decisions(request).decide,
            who.principal,
            tenant_id,
            [DecisionRequest(policy_id, document)],
        )
        try:
            outcome = (await in_thread(call))[0]
        except DomainError as refused:
            if isinstance(refused, Forbidden):
                raise
            errors["input"] = refused.message
        else:
            decision = _decision_view(DecisionResult.of(outcome, api.constitutional_hash))
    if request.headers.get("hx-request"):  # 200 either way: htmx swaps only a success
        return page(request, "policy_decision.html", who=who, decision=decision, errors=errors)
    return await _policy_page(
        request, who, tenant_id, policy_id, sample=sample, decision=decision, errors=errors,
        status=422 if errors else 200,
    )  # fmt: skip


def _decision_view(result: DecisionResult) -> dict[str, Any]:
    return {
        "decision_id": result.decision_id,
        "allow": result.allow,
        "deny": result.deny,
        "obligations": [json.dumps(o, sort_keys=True) for o in result.obligations],
        "policy_version": result.policy_version,
    }


ROUTES = [
    policies_page,
    new_policy_page,
    submit_policy,
    policy_page,
    version_page,
    activate_policy,
    retire_policy,
    evaluate_policy,
]

"""The policy registry (`/v1/tenants/{tid}/policies`), decisions (`/v1/tenants/{tid}/decisions`)
and the tenant's decision-log setting (`/v1/tenants/{tid}/decision-log/settings`).

Writes go through `PolicyCommands` (in a worker thread) and answer from the aggregate; reads
query the registry's read model in a session scoped to the tenant, which shows its own policies
and the system-wide ones. Decisions run on the process's cached engines: on the event loop when
every policy asked for is cached and the batch is small, else in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import Parameter
from msgspec import UNSET

from api.http import examples as ex
from api.http.auth import principal_from_scope
from api.http.command_calls import HashHeader, IdempotencyKey, command_context, supplied_hash
from api.http.dto import HASH_PATTERN
from api.http.encoded_json import EncodedJson
from api.http.errors import UnsupportedMediaType
from api.http.policy_dto import (
    ActivateRequest,
    DecisionAnswers,
    DecisionBatchResult,
    DecisionLogSettingsBody,
    DecisionLogSettingsView,
    DecisionRequestBody,
    DecisionResult,
    PolicyActivated,
    PolicyDetail,
    PolicyList,
    PolicyRetired,
    PolicyStatusName,
    PolicySubmitted,
    PolicySummary,
    SubmitPolicyRequest,
    VersionAdded,
    VersionDetail,
    VersionSummary,
)
from api.http.services import ApiServices
from api.http.tenants import MAX_OFFSET
from commands.authorization import Permission, authorize
from commands.constitution import verify_constitutional_hash
from commands.context import CommandContext, Principal
from commands.decisions import DecisionRequest, DecisionService
from commands.policy_intake import FORMATS, SubmitPolicy
from domain.errors import NotFound, ValidationFailed
from projections.policies import find_policy, find_version, list_policies

T = TypeVar("T")
INLINE_BATCH = 16  # at most this many cached decisions are made on the event loop itself
_MULTIPART = "multipart/form-data"
_TRUE = frozenset({"true", "1", "yes", "on"})


_SUBMIT_RESPONSES = {
    201: ResponseSpec(PolicySubmitted, description="Registered, with the report"),
    **ex.refusals(
        "POLICY_CONVERSION_FAILED",
        "FORBIDDEN",
        "NOT_FOUND",
        "INVALID_STATE_TRANSITION",
        "CONCURRENT_MODIFICATION",
        "IDEMPOTENCY_KEY_REUSED",
        *ex.WRITE,
    ),
}
_UPLOAD_FORM = Schema(
    type=OpenAPIType.OBJECT,
    required=["file"],
    properties={
        "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
        "format": Schema(type=OpenAPIType.STRING, enum=list(FORMATS)),
        "allow_unguarded": Schema(type=OpenAPIType.BOOLEAN),
        "constitutional_hash": Schema(type=OpenAPIType.STRING, pattern=HASH_PATTERN),
    },
)


@dataclass
class _UploadOperation(Operation):
    """The upload's operation, with its multipart request body documented (the handler reads
    the form itself)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={_MULTIPART: OpenAPIMediaType(schema=_UPLOAD_FORM)}, required=True
        )


class PolicyController(Controller):
    path = "/tenants/{tenant_id:uuid}/policies"
    tags = ["policies"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Submit a policy: a legacy source (converted and gated) or Rego",
        description="LEGISLATIVE or EXECUTIVE of the tenant, or a platform principal; on the "
        "system tenant this writes system-wide policies. Every policy in the source gets a new "
        "immutable version (not active until activated). A source that does not convert is 422 "
        "POLICY_CONVERSION_FAILED with the line and column; nothing is registered. `filename` "
        "(optional) names a policy whose source has none (its stem) and helps format auto. "
        "Honours Idempotency-Key. A file may be uploaded as multipart/form-data to "
        "POST .../policies/upload instead.",
        responses=_SUBMIT_RESPONSES,
    )
    async def submit_policy(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: SubmitPolicyRequest,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PolicySubmitted]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        filename = None if data.filename is UNSET else data.filename
        submission = SubmitPolicy(data.source, data.format, filename, data.allow_unguarded)
        return await _submit(request, api, principal, ctx, tenant_id, submission, idempotency_key)

    @post(
        "/upload",
        status_code=201,
        summary="Submit a policy file (multipart/form-data)",
        description="As POST .../policies, the source uploaded as the file field `file` (its "
        "name's stem names a policy whose source has none; its extension helps format auto), "
        "the other fields as form fields. Honours Idempotency-Key (the same body: the same "
        "bytes, boundary included).",
        responses=_SUBMIT_RESPONSES,
        operation_class=_UploadOperation,
    )
    async def upload_policy(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PolicySubmitted]:
        submission, in_body = await _upload(request)
        ctx = command_context(request, principal, in_body, constitutional_hash)
        return await _submit(request, api, principal, ctx, tenant_id, submission, idempotency_key)

    @get(
        "/",
        summary="List the tenant's policies and the system-wide ones",
        description="Every role of the tenant. Filters: status, system_wide. Ordered by policy "
        "id, the tenant's own first.",
        responses={200: ResponseSpec(PolicyList, description="A page of policies")},
    )
    async def list_policies(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        status: Annotated[
            PolicyStatusName | None, Parameter(query="status", required=False)
        ] = None,
        system_wide: Annotated[bool | None, Parameter(query="system_wide", required=False)] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> PolicyList:
        authorize(principal, Permission.POLICY_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows, total = await list_policies(
                conn, status=status, system_wide=system_wide, limit=limit, offset=offset
            )
        return PolicyList(
            policies=[PolicySummary(**row) for row in rows],
            total=total,
            limit=limit,
            offset=offset,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{policy_id:str}",
        summary="Read a policy: status, active version, versions",
        description="Every role of the tenant. The tenant's own policy of that id, else the "
        "system-wide one; another tenant's policy is 404.",
        responses={
            200: ResponseSpec(PolicyDetail, description="The policy"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_policy(
        self, tenant_id: UUID, policy_id: str, principal: Principal, api: ApiServices
    ) -> PolicyDetail:
        authorize(principal, Permission.POLICY_READ, tenant_id)
        if "\x00" in policy_id:  # PostgreSQL text cannot hold it: no policy has it
            raise NotFound("policy not found", {"policy_id": policy_id.replace("\x00", "")})
        async with api.database.tenant_session(tenant_id) as conn:
            row = await find_policy(conn, policy_id)
        if row is None:
            raise NotFound("policy not found", {"policy_id": policy_id})
        row.pop("aggregate_id")
        versions = [VersionSummary(**v) for v in row.pop("versions")]
        return PolicyDetail(**row, versions=versions, constitutional_hash=api.constitutional_hash)

    @get(
        "/{policy_id:str}/versions/{version:int}",
        summary="Read one version: source, Rego, conversion report",
        responses={
            200: ResponseSpec(VersionDetail, description="The version"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_version(
        self, tenant_id: UUID, policy_id: str, version: int, principal: Principal, api: ApiServices
    ) -> VersionDetail:
        authorize(principal, Permission.POLICY_READ, tenant_id)
        if not 1 <= version <= 2**31 - 1 or "\x00" in policy_id:
            raise NotFound("version not found", {"version": version})
        async with api.database.tenant_session(tenant_id) as conn:
            row = await find_version(conn, policy_id, version)
        if row is None:
            raise NotFound("version not found", {"policy_id": policy_id, "version": version})
        return VersionDetail(**row, constitutional_hash=api.constitutional_hash)

    @post(
        "/{policy_id:str}/activate",
        status_code=200,
        summary="Activate a version (or roll back to an earlier one)",
        description="LEGISLATIVE or EXECUTIVE. Activating an older version than the active one "
        "is a rollback (recorded as such); the active version again changes nothing. Every API "
        "process decides with the new version once the event reaches it (within about a "
        "second); the process that activated it at once.",
        responses={
            200: ResponseSpec(PolicyActivated, description="Active"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def activate_policy(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        policy_id: str,
        data: ActivateRequest,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> PolicyActivated:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        done = await in_thread(
            partial(_registry(api).activate, ctx, tenant_id, policy_id, data.version)
        )
        _decisions(api).cache.invalidate_many([done.policy.id])
        return PolicyActivated(
            policy_id=done.policy.policy_key,
            status=done.policy.status.value,
            active_version=done.policy.active_version,
            previous_version=done.previous,
            rolled_back=done.rolled_back,
            changed=done.changed,
            constitutional_hash=api.constitutional_hash,
        )

    @delete(
        "/{policy_id:str}",
        status_code=200,
        summary="Retire a policy",
        description="LEGISLATIVE or EXECUTIVE. Final: no more decisions (404), versions, or "
        "activations; its versions stay readable.",
        responses={
            200: ResponseSpec(PolicyRetired, description="Retired"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def retire_policy(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        policy_id: str,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> PolicyRetired:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        policy = await in_thread(partial(_registry(api).retire, ctx, tenant_id, policy_id))
        _decisions(api).cache.invalidate_many([policy.id])
        return PolicyRetired(
            policy_id=policy.policy_key,
            status=policy.status.value,
            constitutional_hash=api.constitutional_hash,
        )


class DecisionController(Controller):
    path = "/tenants/{tenant_id:uuid}"
    tags = ["decisions"]  # noqa: RUF012

    @post(
        "/decisions",
        status_code=200,
        summary="Decide: one request, or a batch of up to 1,000",
        description="Every role of the tenant. {policy_id, input} answers one decision; "
        "{requests: [{policy_id, input}, ...]} answers {results} in the same order. The policy "
        "is the tenant's own of that id, else the system-wide one, in its active version. The "
        "input's constitutional_hash is set to the deployment's when absent. A missing, "
        "inactive or retired policy is 404 (nothing decided); a policy that cannot be evaluated "
        "on the input is 500 DECISION_EVALUATION_FAILED, never an allow. The constitutional "
        "hash is optional here (a decision changes nothing); a different one is 409.",
        responses={
            200: ResponseSpec(DecisionResult, description="The decision (or DecisionBatchResult)"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "DECISION_EVALUATION_FAILED",
                "CONSTITUTIONAL_HASH_MISMATCH",
            ),
        },
    )
    async def decide(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: DecisionRequestBody,
        constitutional_hash: HashHeader = None,
    ) -> Response[DecisionResult | DecisionBatchResult]:
        # The hot path: the principal and the services are read from the scope and the app
        # rather than resolved as dependencies, and the answer is built by `decision_answer`
        # rather than by the framework's serialisation, and sent as it is (`EncodedJson`). The
        # edge serves most requests of this route itself (api/http/decision_route.py) with
        # the same `decision_answer`; this handler serves the others.
        api: ApiServices = request.app.state["api"]
        body = await decision_answer(
            api, principal_from_scope(request.scope), tenant_id, data, constitutional_hash
        )
        return EncodedJson(body)  # type: ignore[return-value]

    @get(
        "/decision-log/settings",
        summary="Read the tenant's decision-log setting",
        responses={200: ResponseSpec(DecisionLogSettingsView, description="The setting")},
    )
    async def get_log_settings(
        self, tenant_id: UUID, principal: Principal, api: ApiServices
    ) -> DecisionLogSettingsView:
        log_input, fields = await in_thread(
            partial(_registry(api).decision_log_setting, principal, tenant_id)
        )
        return DecisionLogSettingsView(
            log_input=log_input,
            mask_fields=list(fields),
            constitutional_hash=api.constitutional_hash,
        )

    @put(
        "/decision-log/settings",
        summary="Set whether decision logs keep the input, and which fields are masked",
        description="The tenant's EXECUTIVE or a platform EXECUTIVE. By default a decision log "
        "keeps only the input's SHA-256; with log_input the input is kept too, the values at "
        "the dotted paths of mask_fields replaced by ***.",
        responses={
            200: ResponseSpec(DecisionLogSettingsView, description="The new setting"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", "CONCURRENT_MODIFICATION", *ex.WRITE),
        },
    )
    async def put_log_settings(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: DecisionLogSettingsBody,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> DecisionLogSettingsView:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        settings = await in_thread(
            partial(
                _registry(api).configure_decision_log,
                ctx,
                tenant_id,
                log_input=data.log_input,
                fields=data.mask_fields,
            )
        )
        _decisions(api).cache.invalidate_settings(tenant_id)
        return DecisionLogSettingsView(
            log_input=settings.log_input,
            mask_fields=list(settings.mask_fields),
            constitutional_hash=api.constitutional_hash,
        )


async def decision_answer(
    api: ApiServices,
    principal: Principal,
    tenant_id: UUID,
    data: DecisionRequestBody,
    header_hash: str | None,
) -> bytes:
    """The decision route's answer (the JSON body of its 200) to `data`, the request's body, and
    `header_hash`, its X-Constitutional-Hash header; raises the refusal otherwise. Decisions
    are made on the event loop when every policy asked for is cached and the batch is small,
    else in a worker thread. The answer is `DecisionAnswers`' bytes: all but the decision id
    encoded once per decision and version."""
    supplied = supplied_hash(data.constitutional_hash, header_hash)
    if supplied:
        verify_constitutional_hash(supplied, api.constitutional_hash)
    single = data.requests is UNSET
    requests = _decision_requests(data)
    service = _decisions(api)
    if len(requests) <= INLINE_BATCH and service.all_cached(tenant_id, requests):
        outcomes = service.decide(principal, tenant_id, requests)
    else:
        outcomes = await in_thread(partial(service.decide, principal, tenant_id, requests))
    answers = _answers(api.constitutional_hash)
    return answers.one(outcomes[0]) if single else answers.batch(outcomes)


def _decision_requests(data: DecisionRequestBody) -> list[DecisionRequest]:
    single = data.policy_id is not UNSET or data.input is not UNSET
    if data.requests is not UNSET:
        if single:
            fields = [f for f in ("policy_id", "input") if getattr(data, f) is not UNSET]
            raise ValidationFailed(
                "give either policy_id and input, or requests",
                {"fields": [{"field": f, "message": "not allowed with requests"} for f in fields]},
            )
        if not data.requests:
            raise ValidationFailed.field("requests", "must hold at least one request")
        return [DecisionRequest(item.policy_id, item.input) for item in data.requests]
    missing = [f for f in ("policy_id", "input") if getattr(data, f) is UNSET]
    if missing:
        raise ValidationFailed(
            "give policy_id and input (or requests)",
            {"fields": [{"field": f, "message": "is required"} for f in missing]},
        )
    assert not isinstance(data.policy_id, type(UNSET))
    assert not isinstance(data.input, type(UNSET))
    return [DecisionRequest(data.policy_id, data.input)]


async def _submit(
    request: Request[Any, Any, Any],
    api: ApiServices,
    principal: Principal,
    ctx: CommandContext,
    tenant_id: UUID,
    submission: SubmitPolicy,
    idempotency_key: str | None,
) -> Response[PolicySubmitted]:
    async def submit() -> Response[Any]:
        done = await in_thread(partial(_registry(api).submit, ctx, tenant_id, submission))
        _decisions(api).cache.invalidate_many(p.id for p, _ in done.versions)
        body = PolicySubmitted(
            policies=[
                VersionAdded(
                    policy_id=policy.policy_key,
                    version=version.number,
                    conversion_status=version.conversion_status,
                    sha256=version.sha256,
                    status=policy.status.value,
                    active_version=policy.active_version,
                    system_wide=policy.system_wide,
                )
                for policy, version in done.versions
            ],
            report=done.report,
            constitutional_hash=api.constitutional_hash,
        )
        return Response(body, status_code=201)

    return await api.idempotency.run(request, principal, idempotency_key, submit)


async def _upload(request: Request[Any, Any, Any]) -> tuple[SubmitPolicy, Any]:
    """The uploaded source and the form's fields; and the hash among them."""
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media != _MULTIPART:
        raise UnsupportedMediaType(
            "upload the policy as multipart/form-data (JSON goes to POST .../policies)",
            {"supported": [_MULTIPART]},
        )
    await request.body()  # kept: the idempotency fingerprint reads it again
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - any malformed multipart body is the client's fault
        raise ValidationFailed.field("body", "is not a valid multipart/form-data body") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ValidationFailed.field("file", "is required (the policy source)")
    raw = await upload.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed.field("file", "must be UTF-8 text") from None
    if "\x00" in text:
        raise ValidationFailed.field("file", "must not contain the NUL character (U+0000)")
    source_format = str(form.get("format") or "auto")
    unguarded = str(form.get("allow_unguarded") or "false").lower() in _TRUE
    in_body = form.get("constitutional_hash") or UNSET
    submission = SubmitPolicy(text, source_format, upload.filename or None, unguarded)
    return submission, in_body


@cache
def _answers(constitutional_hash: str) -> DecisionAnswers:
    return DecisionAnswers(constitutional_hash)


def _decisions(api: ApiServices) -> DecisionService:
    service = api.system.decisions
    if service is None:
        raise RuntimeError("the decision service is not built")
    return service


def _registry(api: ApiServices) -> Any:
    commands = api.system.policies
    if commands is None:
        raise RuntimeError("the policy registry is not built")
    return commands


async def in_thread(call: partial[T]) -> T:
    return await anyio.to_thread.run_sync(call)

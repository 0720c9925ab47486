"""Request and response bodies of the policy registry and the decision API, as msgspec Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from msgspec import UNSET, UnsetType

from api.http.dto import HashValue, documented
from commands.decisions import MAX_BATCH, DecisionOutcome
from commands.policy_intake import FORMATS
from domain.registry.decision_log import FIELD_PATH, MAX_MASK_FIELDS

_encode = msgspec.json.Encoder().encode
NO_NUL = "^[^\\x00]*$"  # PostgreSQL text cannot hold U+0000; bodies.py refuses it
PolicyStatusName = Literal["draft", "active", "retired"]
FileName = Annotated[str, msgspec.Meta(min_length=1, max_length=255), documented(pattern=NO_NUL)]
PolicyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=255), documented(pattern=NO_NUL)]
SourceFormatName = Annotated[str, documented(enum=list(FORMATS))]


class SubmitPolicyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A policy source as JSON (the same fields go in a multipart/form-data upload, the source
    as the file field `file`)."""

    source: Annotated[str, documented(pattern=NO_NUL)]
    format: SourceFormatName = "auto"
    filename: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=255), documented(pattern=NO_NUL)]
        | UnsetType
    ) = UNSET
    allow_unguarded: bool = False
    constitutional_hash: HashValue | UnsetType = UNSET


class VersionAdded(msgspec.Struct, kw_only=True):
    policy_id: str
    version: int
    conversion_status: str
    sha256: str
    status: str
    active_version: int | None
    system_wide: bool


class PolicySubmitted(msgspec.Struct, kw_only=True):
    policies: list[VersionAdded]
    report: dict[str, Any]
    constitutional_hash: str


class PolicySummary(msgspec.Struct, kw_only=True):
    policy_id: str
    name: str
    status: str
    system_wide: bool
    active_version: int | None
    latest_version: int
    source_format: str | None
    package: str | None
    created_at: datetime
    updated_at: datetime


class PolicyList(msgspec.Struct, kw_only=True):
    policies: list[PolicySummary]
    total: int
    limit: int
    offset: int
    constitutional_hash: str


class VersionSummary(msgspec.Struct, kw_only=True):
    version: int
    source_format: str
    conversion_status: str
    sha256: str
    created_by: str
    created_at: datetime


class PolicyDetail(PolicySummary, kw_only=True):
    versions: list[VersionSummary]
    constitutional_hash: str


class VersionDetail(msgspec.Struct, kw_only=True):
    policy_id: str
    version: int
    system_wide: bool
    source: str
    source_format: str
    rego: str
    package: str
    conversion_status: str
    report: dict[str, Any]
    sha256: str
    created_by: str
    created_at: datetime
    constitutional_hash: str


class ActivateRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    version: Annotated[int, msgspec.Meta(ge=1)]
    constitutional_hash: HashValue | UnsetType = UNSET


class PolicyActivated(msgspec.Struct, kw_only=True):
    policy_id: str
    status: str
    active_version: int | None
    previous_version: int | None
    rolled_back: bool
    changed: bool
    constitutional_hash: str


class PolicyRetired(msgspec.Struct, kw_only=True):
    policy_id: str
    status: str
    constitutional_hash: str


class DecisionItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    policy_id: PolicyKey
    input: dict[str, Any]


class DecisionRequestBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One decision (`policy_id` and `input`) or a batch (`requests`, at most 1,000)."""

    policy_id: PolicyKey | UnsetType = UNSET
    input: dict[str, Any] | UnsetType = UNSET
    requests: Annotated[list[DecisionItem], msgspec.Meta(max_length=MAX_BATCH)] | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET


class DecisionResult(msgspec.Struct, kw_only=True):
    decision_id: str
    allow: bool
    deny: list[str]
    obligations: list[Any]
    policy_id: str
    policy_version: int
    constitutional_hash: str

    @classmethod
    def of(cls, outcome: DecisionOutcome, constitutional_hash: str) -> DecisionResult:
        decision = outcome.decision
        return cls(
            decision_id=str(outcome.decision_id),
            allow=decision.allow,
            deny=sorted(decision.deny),
            obligations=[msgspec.json.decode(item) for item in sorted(decision.obligations)],
            policy_id=outcome.policy.policy_key,
            policy_version=outcome.policy.version,
            constitutional_hash=constitutional_hash,
        )


class DecisionBatchResult(msgspec.Struct, kw_only=True):
    results: list[DecisionResult]
    constitutional_hash: str


_ID_FIELD = b'{"decision_id":"'
MAX_ENCODED_TAILS = 4096


class DecisionAnswers:
    """The JSON answers of the decision route, as `DecisionResult` and `DecisionBatchResult`
    encode them. Everything after the decision id depends only on the decision and the policy
    version, and a policy answers with few distinct decisions: that part is encoded once."""

    def __init__(self, constitutional_hash: str) -> None:
        self._hash = constitutional_hash
        self._batch_tail = b'],"constitutional_hash":' + _encode(constitutional_hash) + b"}"
        self._tails: dict[tuple[Any, str, int], bytes] = {}

    def one(self, outcome: DecisionOutcome) -> bytes:
        return b"".join((_ID_FIELD, str(outcome.decision_id).encode(), self._tail(outcome)))

    def batch(self, outcomes: list[DecisionOutcome]) -> bytes:
        return b"".join((b'{"results":[', b",".join(map(self.one, outcomes)), self._batch_tail))

    def _tail(self, outcome: DecisionOutcome) -> bytes:
        policy = outcome.policy
        key = (outcome.decision, policy.policy_key, policy.version)
        tail = self._tails.get(key)
        if tail is None:
            encoded = _encode(DecisionResult.of(outcome, self._hash))
            prefix = _ID_FIELD + str(outcome.decision_id).encode()
            if not encoded.startswith(prefix):  # the field order is this class's own
                raise RuntimeError("DecisionResult must encode decision_id first")
            tail = encoded[len(prefix) :]
            if len(self._tails) >= MAX_ENCODED_TAILS:
                self._tails.clear()
            self._tails[key] = tail
        return tail


class DecisionLogSettingsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    log_input: bool
    mask_fields: Annotated[
        list[str],
        documented(
            max_items=MAX_MASK_FIELDS,
            items=Schema(type=OpenAPIType.STRING, pattern=FIELD_PATH.pattern),
        ),
    ] = msgspec.field(default_factory=list)
    constitutional_hash: HashValue | UnsetType = UNSET


class DecisionLogSettingsView(msgspec.Struct, kw_only=True):
    log_input: bool
    mask_fields: list[str]
    constitutional_hash: str
